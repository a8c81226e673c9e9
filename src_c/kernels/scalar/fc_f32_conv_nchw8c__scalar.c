/* Direct convolution into NCHW8c, portable row kernel (see fc_conv_nchw8c_kernels.h).
 *
 * A group is 16 output channels (two blocks of 8); a tile is 4 output columns x 16
 * channels of plain float accumulators, which the compiler may keep in SSE registers.
 * Same chains as the SIMD kernels (bias, then (ci, kh, kw) ascending), with separate
 * multiplies and adds instead of FMAs, so results agree within float rounding. */
#include "../../fc_conv_nchw8c_kernels.h"

#define G FC_CONV8C_G_SCALAR
#define MR 4

static void tile(const fc_conv8c_row *r, int64_t ow0, int n, int64_t klo, int64_t khi,
                 int64_t real) {
    float acc[MR][G];
    for (int p = 0; p < n; p++)
        for (int j = 0; j < G; j++) acc[p][j] = r->bias[j];
    const int64_t sx = r->stride_w * r->x_pix;
    const int64_t col0 = ow0 * r->stride_w - r->pad_left;
    const int64_t nblk = (r->cin + 7) / 8;
    for (int64_t b = 0; b < nblk; b++) {
        const int64_t lanes = FC_MIN(8, r->cin - b * 8);
        for (int64_t l = 0; l < lanes; l++) {
            const float *xc = r->x + b * r->x_block + l * r->x_lane;
            const float *wc = r->w + (b * 8 + l) * r->w_ci;
            for (int64_t t = 0; t < r->kh_count; t++) {
                const float *xr = xc + t * r->dil_h * r->x_row;
                const float *wr = wc + t * r->kernel_w * G;
                for (int64_t k = klo; k < khi; k++) {
                    const float *w = wr + k * G;
                    const float *xp = xr + (col0 + k * r->dil_w) * r->x_pix;
                    for (int p = 0; p < n; p++) {
                        const float v = xp[p * sx];
                        for (int j = 0; j < G; j++) acc[p][j] += v * w[j];
                    }
                }
            }
        }
    }
    for (int p = 0; p < n; p++) {
        float *y = r->y + (ow0 + p) * 8;
        for (int64_t blk = 0; blk < r->nblocks; blk++)
            for (int l = 0; l < 8; l++) {
                const int64_t j = blk * 8 + l;
                float v = acc[p][j];
                if (r->relu && v < 0.0f) v = 0.0f; /* NaN stays NaN */
                y[blk * r->y_block + l] = j < real ? v : 0.0f;
            }
    }
}

void fc_f32_conv8c_row__scalar(const fc_conv8c_row *r) {
    const int64_t real = (r->nblocks - 1) * 8 + r->last_lanes;
    int64_t ow = 0;
    for (; ow < r->int_lo; ow++) {
        int64_t lo, hi;
        fc_conv8c_col_taps(r, ow, &lo, &hi);
        tile(r, ow, 1, lo, hi > lo ? hi : lo, real);
    }
    for (; ow < r->int_hi; ow += MR)
        tile(r, ow, (int)FC_MIN(MR, r->int_hi - ow), 0, r->kernel_w, real);
    for (ow = FC_MAX(r->int_hi, r->int_lo); ow < r->out_w; ow++) {
        int64_t lo, hi;
        fc_conv8c_col_taps(r, ow, &lo, &hi);
        tile(r, ow, 1, lo, hi > lo ? hi : lo, real);
    }
}
