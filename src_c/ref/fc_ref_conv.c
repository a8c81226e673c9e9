/* The naive convolution oracle: every tap bounds-tested, double accumulation, one
 * thread, no SIMD. Slow on purpose; the fast drivers are tested against it. */
#include "../fc_conv_internal.h"

fc_status fc_ref_conv2d(const fc_conv2d_params *p, const float *x, const float *w,
                        const float *bias, float *y) {
    fc_status st = fc_conv2d_check(p);
    if (st != FC_OK) return st;
    if (p->batch == 0) return FC_OK;
    if (!x || !w || !y) return FC_EINVAL;
    const int64_t cig = p->in_channels / p->groups, cog = p->out_channels / p->groups;
    const int64_t H = p->in_h, W = p->in_w, KH = p->kernel_h, KW = p->kernel_w;
    for (int64_t n = 0; n < p->batch; n++)
        for (int64_t co = 0; co < p->out_channels; co++) {
            const int64_t g = co / cog;
            for (int64_t oh = 0; oh < p->out_h; oh++)
                for (int64_t ow = 0; ow < p->out_w; ow++) {
                    double acc = bias ? (double)bias[co] : 0.0;
                    for (int64_t c = 0; c < cig; c++)
                        for (int64_t kh = 0; kh < KH; kh++) {
                            const int64_t ih = oh * p->stride_h - p->pad_top + kh * p->dilation_h;
                            if (ih < 0 || ih >= H) continue;
                            for (int64_t kw = 0; kw < KW; kw++) {
                                const int64_t iw = ow * p->stride_w - p->pad_left + kw * p->dilation_w;
                                if (iw < 0 || iw >= W) continue;
                                const float xv = x[((n * p->in_channels + g * cig + c) * H + ih) * W + iw];
                                const float wv = w[((co * cig + c) * KH + kh) * KW + kw];
                                acc += (double)xv * (double)wv;
                            }
                        }
                    float v = (float)acc;
                    if (p->relu && v < 0.0f) v = 0.0f;
                    y[((n * p->out_channels + co) * p->out_h + oh) * p->out_w + ow] = v;
                }
        }
    return FC_OK;
}
