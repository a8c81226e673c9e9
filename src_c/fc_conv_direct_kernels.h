/* Direct convolution: the interface between the portable driver (fc_conv_direct.c) and
 * the per-ISA row kernels (kernels/scalar/fc_f32_conv_direct__scalar.c and
 * kernels/avx2/fc_f32_conv_direct__avx2_fma.c).
 *
 * The driver owns everything that is not arithmetic: weight packing, the split of the
 * output columns into a left border, an interior and a right border (once per layer),
 * the clipping of the kernel rows against the top/bottom padding (once per output row)
 * and the OpenMP split of the output rows. A kernel computes one output row (all out_w
 * columns) for one block of output channels, so a thread count never changes how any
 * single output value is summed.
 *
 * Two kernel shapes:
 *  - channel kernels (Co/groups >= 8): SIMD across output channels. The weights of a
 *    block of FC_DIRECT_NB output channels are packed as [Ci/g][kh][kw][nb] (nb = 16, or
 *    8 for a last block of at most 8 channels; lanes past Co/g are zero). An interior tile
 *    is nb channels x FC_DIRECT_MR consecutive output columns held in registers; each
 *    tap loads nb weights and broadcasts MR input pixels (stride_w apart in the NCHW row).
 *    Border and leftover columns go through a checked tile of up to MR border columns,
 *    each with its own valid kw range; it sums in the same order (ci, kh, kw ascending),
 *    so a pixel gets the same bits whichever tile computes it.
 *  - the width kernel (Co/groups < 8: depthwise and thin groups): one output channel per
 *    call, SIMD across output columns, weights read unpacked from the caller's array.
 *  - the tiny-map kernels (avx2, avx512; see fc_direct_tiny below): the channel kernels'
 *    packed blocks, every output pixel of a few images per call instead of one row.
 */
#ifndef FC_CONV_DIRECT_KERNELS_H
#define FC_CONV_DIRECT_KERNELS_H

#include "fc_internal.h"

#define FC_DIRECT_NB 16 /* output channels per packed weight block */
#define FC_DIRECT_MR 6  /* output columns per interior register tile */

/* Constants of one layer, computed once per call by the driver. */
typedef struct {
    int64_t cig;                /* input channels per group */
    int64_t in_h, in_w;
    int64_t kernel_h, kernel_w;
    int64_t stride_w;
    int64_t dil_h, dil_w;
    int64_t pad_left;
    int64_t out_w;
    /* Interior output columns [int_lo, int_hi): every kw tap of these columns falls inside
     * the input row (int_lo == int_hi == 0 when there is none). The kernel covers
     * [int_lo, int_end) with unchecked tiles (see fc_direct_interior_end). */
    int64_t int_lo, int_hi, int_end;
    /* The remaining (border) columns [0, int_lo) and [int_end, out_w), in that order:
     * n_edge entries, each array padded with entries of cnt 0 up to a multiple of 8.
     * Column e_ow[k] has the valid kw taps [e_lo[k], e_lo[k] + e_cnt[k]), and its tap
     * e_lo[k] reads input column e_iw[k] (0 when e_cnt[k] is 0). All fit in int32 because
     * fc_conv2d_check keeps every dimension below 2^31. */
    int64_t n_edge;
    const int32_t *e_ow, *e_lo, *e_cnt, *e_iw;
    int relu;
} fc_direct_layer;

/* One output row of one channel block (or one channel, for the width kernel). */
typedef struct {
    /* Input channel 0 of the group, at the input row of the first valid kernel row
     * (kh_lo), column 0. Channel c, kernel row kh_lo + t is at x + c*in_h*in_w + t*dil_h*in_w. */
    const float *x;
    int64_t kh_count;      /* valid kernel rows for this output row (may be 0) */
    /* Channel kernels: the packed block at (ci 0, kh_lo, kw 0); ci stride is
     * kernel_h*kernel_w*nb floats, kh stride kernel_w*nb.
     * Width kernel: the caller's weights of this output channel at (ci 0, kh_lo, kw 0);
     * ci stride kernel_h*kernel_w. */
    const float *w;
    /* Channel kernels: nb packed bias values (zero when the layer has no bias).
     * Width kernel: &bias[co], or NULL. */
    const float *bias;
    float *y;              /* output channel co0, this row, column 0 */
    int64_t y_cstride;     /* out_h*out_w: distance between output channels */
    int64_t nco;           /* channels of the block to store: 1..nb (1 for the width kernel);
                            * 17..32 for the AVX-512 two-block kernel */
    /* The AVX-512 two-block kernel only: floats from this block's packed weights to the
     * next block's (whose bias follows this one's, and whose output channels follow
     * these). */
    int64_t w_next;
} fc_direct_row;

typedef void (*fc_direct_row_fn)(const fc_direct_layer *L, const fc_direct_row *r);

/* Channel kernels: nb = 16 (nco 1..16) and nb = 8 (nco 1..8); width kernel. */
void fc_f32_conv_direct_16x6__scalar(const fc_direct_layer *L, const fc_direct_row *r);
void fc_f32_conv_direct_8x6__scalar(const fc_direct_layer *L, const fc_direct_row *r);
void fc_f32_conv_direct_width__scalar(const fc_direct_layer *L, const fc_direct_row *r);

void fc_f32_conv_direct_16x6__avx2_fma(const fc_direct_layer *L, const fc_direct_row *r);
void fc_f32_conv_direct_8x6__avx2_fma(const fc_direct_layer *L, const fc_direct_row *r);
void fc_f32_conv_direct_width__avx2_fma(const fc_direct_layer *L, const fc_direct_row *r);

/* AVX-512 (kernels/avx512/fc_f32_conv_direct__avx512.c): the 16-channel kernel with
 * 16 x 28 register tiles over the same packed blocks; the AVX-512 ISA runs the AVX2
 * 8-channel and width kernels. */
void fc_f32_conv_direct_16x28__avx512(const fc_direct_layer *L, const fc_direct_row *r);
/* Two consecutive 16-channel blocks at once (32 channels x 14 columns per tile: each
 * broadcast input pixel feeds two FMAs), nco 17..32; the second block's weights at
 * r->w + r->w_next. Per output value the same chain as the one-block kernel. */
void fc_f32_conv_direct_32x14__avx512(const fc_direct_layer *L, const fc_direct_row *r);

/* Tiny maps (a few output pixels per image; the driver decides, see fc_conv_direct.c):
 * one call computes every output pixel of a list of "slots" (an image and one of its
 * output pixels) for 1..4 consecutive channel blocks, reading each weight vector of the
 * blocks once, in packed order, with software prefetch ahead of the stream (the weights
 * are the big operand: they do not stay in cache between images). Per tap of each input
 * channel the kernel loads the blocks' weight vectors and, for each slot whose tap lies
 * inside the input, broadcasts that input pixel into one FMA per block. Each output value
 * is one chain: bias, then its valid taps in (ci, kh, kw) order (the row kernels' order,
 * so the same bits as they give on the unpadded input). */
#define FC_DIRECT_TINY_SLOTS 6   /* slots per call: 6 x 4 blocks = 24 accumulators */
#define FC_DIRECT_TINY_TAPS 64   /* kh * kw at most */
typedef struct {
    const float *x;         /* input channel 0 of the group, image 0 */
    int64_t x_cstride;      /* in_h * in_w */
    int64_t cig;            /* input channels per group */
    int64_t ktaps;          /* kh * kw: a block's packed ci stride is ktaps * nb floats */
    int64_t ntap;           /* taps valid for at least one slot, in ascending (kh, kw) */
    int64_t nslot;          /* 1..FC_DIRECT_TINY_SLOTS */
    int64_t toff[FC_DIRECT_TINY_TAPS];  /* input offset of the tap: kh*dil_h*in_w + kw*dil_w */
    int32_t tap[FC_DIRECT_TINY_TAPS];   /* its index kh * kw_count + kw in the packed block */
    uint32_t tmask[FC_DIRECT_TINY_TAPS]; /* bit s: the tap is inside the input for slot s */
    /* Slot s: input offset of its tap (0, 0), which may lie outside (only taps of tmask
     * are read), and offset of its output pixel from the calls' y (channel 0). */
    int64_t soff[FC_DIRECT_TINY_SLOTS];
    int64_t yoff[FC_DIRECT_TINY_SLOTS];
    int relu;
} fc_direct_tiny;

/* nblk (1..4) blocks of nb (16, or 8 for a lone last block) channels: block b's packed
 * weights at w + b * w_bstride (at ci 0, tap 0), its nb bias values at bias + 16 * b, its
 * channel l at y + (16 * b + l) * y_cstride; channels nco and up are not stored. */
typedef void (*fc_direct_tiny_fn)(const fc_direct_tiny *t, const float *w, int64_t w_bstride,
                                  int nblk, int nb, const float *bias, float *y,
                                  int64_t y_cstride, int64_t nco);
void fc_f32_conv_direct_tiny__avx512(const fc_direct_tiny *t, const float *w,
                                     int64_t w_bstride, int nblk, int nb, const float *bias,
                                     float *y, int64_t y_cstride, int64_t nco);
void fc_f32_conv_direct_tiny__avx2_fma(const fc_direct_tiny *t, const float *w,
                                       int64_t w_bstride, int nblk, int nb, const float *bias,
                                       float *y, int64_t y_cstride, int64_t nco);

/* Weight packing of one channel block: dst[t*nb + l] = src[l*taps + t] for l < nco, and 0
 * for nco <= l < nb (t < taps = Ci/g*kh*kw: the taps of one output channel, in order). */
void fc_f32_conv_direct_pack__scalar(const float *src, int64_t taps, int64_t nco, int64_t nb,
                                     float *dst);
void fc_f32_conv_direct_pack__avx2_fma(const float *src, int64_t taps, int64_t nco, int64_t nb,
                                       float *dst);

/* Output columns per vector of the width kernel. */
#define FC_DIRECT_VW 8

/* End of the unchecked columns. Channel kernels cover all of [int_lo, int_hi) with
 * unchecked tiles of 1..MR columns (see fc_direct_tile_plan). The width kernel takes
 * whole vectors of VW columns inside [int_lo, int_hi); with stride 2 it loads 16
 * consecutive inputs for 8 columns, one past the last tap of column ow+7; that pixel is
 * inside the row when column ow+8 is interior, so its vectors must end one column before
 * int_hi. */
static inline int64_t fc_direct_interior_end(const fc_direct_layer *L, int width_kernel) {
    const int64_t lo = L->int_lo;
    if (!width_kernel) return L->int_hi;
    const int64_t hi = L->stride_w == 2 ? L->int_hi - 1 : L->int_hi;
    if (hi <= lo) return lo;
    return lo + (hi - lo) / FC_DIRECT_VW * FC_DIRECT_VW;
}

/* How a channel kernel splits n interior columns into tiles: *n_full tiles of MR columns,
 * then up to two shorter tiles of *w_a and *w_b columns (0 when absent). A remainder of
 * 1..3 columns is merged with the last full tile and split in two nearly equal halves
 * (7 = 4+3, 8 = 4+4, 9 = 5+4), so no tile has fewer than 3 columns when n >= MR. */
static inline void fc_direct_tile_plan(int64_t n, int64_t *n_full, int *w_a, int *w_b) {
    int64_t full = n / FC_DIRECT_MR;
    int rem = (int)(n % FC_DIRECT_MR);
    *w_a = *w_b = 0;
    if (rem == 0 || rem >= 4 || full == 0) {
        *w_a = rem;
    } else {
        full--;
        rem += FC_DIRECT_MR;
        *w_a = (rem + 1) / 2;
        *w_b = rem - *w_a;
    }
    *n_full = full;
}

/* The valid kw taps [*lo, *lo + *n) of output column ow, and the input column of tap *lo
 * (0 when there is none). */
static inline void fc_direct_col_taps(const fc_direct_layer *L, int64_t ow, int64_t *lo,
                                      int64_t *n, int64_t *first_iw) {
    const int64_t base = ow * L->stride_w - L->pad_left;
    const int64_t dw = L->dil_w, KW = L->kernel_w;
    int64_t a = 0, b;
    if (base < 0) a = (-base + dw - 1) / dw;
    if (base > L->in_w - 1) b = 0;
    else b = FC_MIN(KW, (L->in_w - 1 - base) / dw + 1);
    if (a > KW) a = KW;
    *lo = a;
    *n = b > a ? b - a : 0;
    *first_iw = *n > 0 ? base + a * dw : 0;
}

#endif /* FC_CONV_DIRECT_KERNELS_H */
