/* The naive pooling oracle: one thread, no SIMD, every tap of every window visited with
 * a bounds test. Taps go column-major (kernel column outer, kernel row inner); average
 * pooling sums each kernel column from 0.0f and then the column sums from 0.0f. That is
 * the order the separable fast kernels (fc_pool_kernels.h) reduce in, so they match
 * this oracle bit for bit. Same checks and semantics as fc_max_pool2d / fc_avg_pool2d. */
#include <math.h>
#include "fc_internal.h"

fc_status fc_ref_max_pool2d(const fc_pool2d_params *p, const float *x, float *y) {
    fc_status st = fc_pool2d_check(p);
    if (st != FC_OK) return st;
    if (p->batch == 0) return FC_OK;
    if (!x || !y) return FC_EINVAL;
    const int64_t planes = p->batch * p->channels;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + (size_t)pl * (size_t)(p->in_h * p->in_w);
        float *yp = y + (size_t)pl * (size_t)(p->out_h * p->out_w);
        for (int64_t oh = 0; oh < p->out_h; oh++) {
            for (int64_t ow = 0; ow < p->out_w; ow++) {
                float m = -INFINITY;
                for (int64_t kw = 0; kw < p->kernel_w; kw++) {
                    for (int64_t kh = 0; kh < p->kernel_h; kh++) {
                        int64_t ih = oh * p->stride_h - p->pad_top + kh * p->dilation_h;
                        int64_t iw = ow * p->stride_w - p->pad_left + kw * p->dilation_w;
                        if (ih < 0 || ih >= p->in_h || iw < 0 || iw >= p->in_w) continue;
                        float v = xp[ih * p->in_w + iw];
                        if (v > m || v != v) m = v;
                    }
                }
                yp[oh * p->out_w + ow] = m;
            }
        }
    }
    return FC_OK;
}

fc_status fc_ref_avg_pool2d(const fc_pool2d_params *p, const float *x, float *y) {
    fc_status st = fc_pool2d_check(p);
    if (st != FC_OK) return st;
    if (p->dilation_h != 1 || p->dilation_w != 1) return FC_EINVAL;
    if (p->batch == 0) return FC_OK;
    if (!x || !y) return FC_EINVAL;
    const int64_t planes = p->batch * p->channels;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + (size_t)pl * (size_t)(p->in_h * p->in_w);
        float *yp = y + (size_t)pl * (size_t)(p->out_h * p->out_w);
        for (int64_t oh = 0; oh < p->out_h; oh++) {
            for (int64_t ow = 0; ow < p->out_w; ow++) {
                float s = 0.0f;
                int64_t n_in = 0, n_pad = 0;
                for (int64_t kw = 0; kw < p->kernel_w; kw++) {
                    float c = 0.0f;   /* this kernel column's sum */
                    for (int64_t kh = 0; kh < p->kernel_h; kh++) {
                        int64_t ih = oh * p->stride_h - p->pad_top + kh;
                        int64_t iw = ow * p->stride_w - p->pad_left + kw;
                        /* count_include_pad counts taps in [-pad_begin, in + pad_end) */
                        if (ih >= -p->pad_top && ih < p->in_h + p->pad_bottom &&
                            iw >= -p->pad_left && iw < p->in_w + p->pad_right)
                            n_pad++;
                        if (ih < 0 || ih >= p->in_h || iw < 0 || iw >= p->in_w) continue;
                        c += xp[ih * p->in_w + iw];
                        n_in++;
                    }
                    s += c;
                }
                /* times 1/count (as the fast kernels do); a window of padding only
                 * without count_include_pad gives 0 * inf = NaN */
                yp[oh * p->out_w + ow] = s * (1.0f / (float)(p->count_include_pad ? n_pad : n_in));
            }
        }
    }
    return FC_OK;
}
