/* Direct convolution into NCHW8c, AVX2/FMA row kernel (see fc_conv_nchw8c_kernels.h).
 *
 * Compiled with -mavx2 -mfma (this folder only); the driver calls it only after the
 * CPUID/XGETBV check.
 *
 * A group is 16 output channels (two blocks of 8) = two ymm per output column, one per
 * block. An interior tile is 6 columns: 12 accumulators, two weight vectors and one
 * broadcast live (15 of 16 ymm); per tap 2 weight loads and 6 broadcasts feed 12 FMAs.
 * Border columns run as one-column tiles over their own valid kw range; the chain of
 * every output value is bias, then (ci, kh, kw) ascending, in every tile. */
#include <immintrin.h>
#include "../../fc_conv_nchw8c_kernels.h"

#define FC_INLINE static inline __attribute__((always_inline))
#define G FC_CONV8C_G_AVX2
#define MR 6

/* Columns ow0 .. ow0 + n - 1 over the kw taps [klo, khi). keep0/keep1: all-ones in the
 * lanes of real channels of block 0 / 1, zero elsewhere. */
FC_INLINE void tile(const fc_conv8c_row *r, int64_t ow0, const int n, int64_t klo,
                    int64_t khi, __m256 keep0, __m256 keep1) {
    __m256 a0[MR], a1[MR];
    const __m256 b0 = _mm256_loadu_ps(r->bias), b1 = _mm256_loadu_ps(r->bias + 8);
    for (int p = 0; p < n; p++) {
        a0[p] = b0;
        a1[p] = b1;
    }
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
                    const __m256 w0 = _mm256_loadu_ps(wr + k * G);
                    const __m256 w1 = _mm256_loadu_ps(wr + k * G + 8);
                    const float *xp = xr + (col0 + k * r->dil_w) * r->x_pix;
                    for (int p = 0; p < n; p++) {
                        const __m256 v = _mm256_broadcast_ss(xp + p * sx);
                        a0[p] = _mm256_fmadd_ps(v, w0, a0[p]);
                        a1[p] = _mm256_fmadd_ps(v, w1, a1[p]);
                    }
                }
            }
        }
    }
    const __m256 z = _mm256_setzero_ps();
    for (int p = 0; p < n; p++) {
        __m256 v0 = a0[p], v1 = a1[p];
        if (r->relu) { /* maxps returns its second operand on NaN: max(0, NaN) = NaN */
            v0 = _mm256_max_ps(z, v0);
            v1 = _mm256_max_ps(z, v1);
        }
        float *y = r->y + (ow0 + p) * 8;
        _mm256_storeu_ps(y, _mm256_and_ps(v0, keep0));
        if (r->nblocks > 1) _mm256_storeu_ps(y + r->y_block, _mm256_and_ps(v1, keep1));
    }
}

FC_INLINE void border(const fc_conv8c_row *r, int64_t ow, __m256 k0, __m256 k1) {
    int64_t lo, hi;
    fc_conv8c_col_taps(r, ow, &lo, &hi);
    tile(r, ow, 1, lo, hi > lo ? hi : lo, k0, k1);
}

/* All-ones in lanes l < n of a block, zero in the others. */
FC_INLINE __m256 lane_mask(int64_t n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx));
}

void fc_f32_conv8c_row__avx2_fma(const fc_conv8c_row *r) {
    const int64_t real = (r->nblocks - 1) * 8 + r->last_lanes;
    const __m256 k0 = lane_mask(FC_MIN(real, 8)), k1 = lane_mask(real - 8);
    for (int64_t ow = 0; ow < r->int_lo; ow++) border(r, ow, k0, k1);
    int64_t ow = r->int_lo;
    for (; ow + MR <= r->int_hi; ow += MR) tile(r, ow, MR, 0, r->kernel_w, k0, k1);
    switch (r->int_hi - ow) {
#define REST(n) case n: tile(r, ow, n, 0, r->kernel_w, k0, k1); break;
        REST(1) REST(2) REST(3) REST(4) REST(5)
#undef REST
        default: break;
    }
    for (ow = FC_MAX(r->int_hi, r->int_lo); ow < r->out_w; ow++) border(r, ow, k0, k1);
}
