/* Direct convolution into the channel-blocked layout NCHW8c: the interface between the
 * driver (fc_conv_nchw8c.c) and the per-ISA row kernels (kernels/scalar/,
 * kernels/avx2/, kernels/avx512/ fc_f32_conv_nchw8c__*.c).
 *
 * The output is blocked ([N][ceil(Co/8)][Ho][Wo][8], fastconv.h), so the G output
 * channels of a packed group (two or four blocks of 8) at one output pixel are G
 * consecutive-by-block floats: a register tile is G channels x MR output columns and
 * is stored with whole 8-float vector stores, no transposes. The input is either NCHW
 * (a network's first layer) or blocked: the kernels only ever broadcast single input
 * floats, so the two differ only in the strides below.
 *
 * Weights of group g are packed as [Ci][kh][kw][G] (lanes past Co zero) and its bias as
 * [G]. Every output value is one chain, the bias then (ci, kh, kw) ascending, then the
 * ReLU, whichever tile (interior or border column) computes it: a thread count or tile
 * split never changes a bit.
 * Not part of the public API. */
#ifndef FC_CONV_NCHW8C_KERNELS_H
#define FC_CONV_NCHW8C_KERNELS_H

#include "fc_internal.h"

/* One output row of one packed group of output channels. */
typedef struct {
    /* Input channel 0 of the image at the input row of the first valid kernel row
     * (kh_lo), column 0. Channel c at input row kh_lo + t, column iw is at
     *   x + (c / 8) * x_block + (c % 8) * x_lane + t * dil_h * x_row + iw * x_pix. */
    const float *x;
    int64_t cin;
    int64_t x_block, x_lane, x_row, x_pix;
    int64_t kh_count;       /* valid kernel rows for this output row (may be 0) */
    int64_t kernel_w, stride_w, dil_h, dil_w, pad_left, in_w;
    /* The packed group at (ci 0, kh_lo, kw 0); ci stride w_ci = kernel_h*kernel_w*G,
     * kh stride kernel_w*G. */
    const float *w;
    int64_t w_ci;
    const float *bias;      /* G floats (zero when the layer has none) */
    float *y;               /* the group's first output block, this row, column 0 */
    int64_t y_block;        /* floats between output blocks: out_h * out_w * 8 */
    int64_t nblocks;        /* blocks of the group to store: 1 .. G / 8 */
    int64_t last_lanes;     /* real channels of the last stored block, 1..8; lanes past
                               it are stored as 0 (the layout's zero tail) */
    int64_t out_w;
    /* Interior columns [int_lo, int_hi): every kw tap inside the input row. */
    int64_t int_lo, int_hi;
    int relu;
} fc_conv8c_row;

typedef void (*fc_conv8c_row_fn)(const fc_conv8c_row *r);

/* The valid kw taps [*lo, *hi) of output column ow (lo >= hi: none). */
static inline void fc_conv8c_col_taps(const fc_conv8c_row *r, int64_t ow, int64_t *lo,
                                      int64_t *hi) {
    const int64_t iw0 = ow * r->stride_w - r->pad_left;
    const int64_t d = r->dil_w;
    *lo = iw0 < 0 ? (-iw0 + d - 1) / d : 0;
    const int64_t last = r->in_w - 1 - iw0; /* largest kw*d allowed */
    *hi = last < 0 ? 0 : FC_MIN(r->kernel_w, last / d + 1);
}

#define FC_CONV8C_G_SCALAR 16
#define FC_CONV8C_G_AVX2 16
#define FC_CONV8C_G_AVX512 32

void fc_f32_conv8c_row__scalar(const fc_conv8c_row *r);
void fc_f32_conv8c_row__avx2_fma(const fc_conv8c_row *r);
void fc_f32_conv8c_row__avx512(const fc_conv8c_row *r);

#endif
