/* im2col, one tile of output pixels at a time.
 *
 * Each (kernel row, output row) pair clips its column range once: the columns whose tap
 * falls in the left or right padding are zero-filled, the rest is a straight copy
 * (memcpy at stride 1), so the copy loop tests no bounds. */
#include "fc_im2col.h"
#include <string.h>

/* First output column whose tap (offset off from ow*stride) lies at or right of 0, and
 * one past the last whose tap lies left of w_in; clipped to [0, w_out]. */
static void valid_cols(int64_t off, int64_t stride, int64_t w_in, int64_t w_out,
                       int64_t *lo, int64_t *hi) {
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t b = (w_in - 1 - off) < 0 ? 0 : (w_in - 1 - off) / stride + 1;
    *lo = FC_MIN(a, w_out);
    *hi = FC_MAX(FC_MIN(b, w_out), *lo);
}

void fc_im2col_tile(const fc_conv2d_params *p, int64_t cig, const float *x_g, int64_t j0,
                    int64_t j1, float *col, int64_t ld, int num_threads) {
    const int64_t KH = p->kernel_h, KW = p->kernel_w, H = p->in_h, W = p->in_w;
    const int64_t Wo = p->out_w, K = cig * KH * KW;
    (void)num_threads;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(num_threads) if (K * (j1 - j0) > 32768)
#endif
    for (int64_t k = 0; k < K; k++) {
        const int64_t c = k / (KH * KW), kh = (k / KW) % KH, kw = k % KW;
        const int64_t off_h = kh * p->dilation_h - p->pad_top;
        const int64_t off_w = kw * p->dilation_w - p->pad_left;
        int64_t lo, hi;
        valid_cols(off_w, p->stride_w, W, Wo, &lo, &hi);
        const float *plane = x_g + c * H * W;
        float *dst = col + k * ld - j0;
        for (int64_t j = j0; j < j1;) {
            const int64_t oh = j / Wo, ow0 = j % Wo;
            const int64_t ow1 = FC_MIN(Wo, ow0 + (j1 - j));
            const int64_t ih = oh * p->stride_h + off_h;
            float *d = dst + oh * Wo;
            if (ih < 0 || ih >= H) {
                memset(d + ow0, 0, (size_t)(ow1 - ow0) * sizeof(float));
            } else {
                const int64_t a = FC_MAX(ow0, FC_MIN(lo, ow1)), b = FC_MAX(a, FC_MIN(hi, ow1));
                if (a > ow0) memset(d + ow0, 0, (size_t)(a - ow0) * sizeof(float));
                const float *src = plane + ih * W + off_w;
                if (p->stride_w == 1) {
                    if (b > a) memcpy(d + a, src + a, (size_t)(b - a) * sizeof(float));
                } else {
                    const int64_t s = p->stride_w;
                    for (int64_t ow = a; ow < b; ow++) d[ow] = src[ow * s];
                }
                if (ow1 > b) memset(d + b, 0, (size_t)(ow1 - b) * sizeof(float));
            }
            j += ow1 - ow0;
        }
    }
}
