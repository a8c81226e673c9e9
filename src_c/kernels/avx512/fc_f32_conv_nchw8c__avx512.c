/* Direct convolution into NCHW8c, AVX-512 row kernel (see fc_conv_nchw8c_kernels.h).
 *
 * Compiled with the AVX-512 flags (this folder only); the driver calls it only when
 * fc_active_isa() is FC_ISA_AVX512, after the CPUID/XGETBV check.
 *
 * A group is 32 output channels (four blocks of 8) = two zmm per output column. An
 * interior tile is 14 columns: 28 accumulators, two weight vectors and one broadcast
 * live (31 of 32 zmm); per tap 2 weight loads and 14 broadcasts feed 28 FMAs. 14 columns
 * divide VGG's 28, 56, 112 and 224 maps and are all of a 14x14 map. Border columns run
 * as one-column tiles over their own valid kw range; the chain of every output value is
 * bias, then (ci, kh, kw) ascending, in every tile. */
#include <immintrin.h>
#include "../../fc_conv_nchw8c_kernels.h"

#define FC_INLINE static inline __attribute__((always_inline))
#define G FC_CONV8C_G_AVX512
#define MR 14

/* Columns ow0 .. ow0 + n - 1 over the kw taps [klo, khi). */
FC_INLINE void tile(const fc_conv8c_row *r, int64_t ow0, const int n, int64_t klo,
                    int64_t khi, __mmask16 keep0, __mmask16 keep1) {
    __m512 a0[MR], a1[MR];
    const __m512 b0 = _mm512_loadu_ps(r->bias), b1 = _mm512_loadu_ps(r->bias + 16);
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
                    const __m512 w0 = _mm512_loadu_ps(wr + k * G);
                    const __m512 w1 = _mm512_loadu_ps(wr + k * G + 16);
                    const float *xp = xr + (col0 + k * r->dil_w) * r->x_pix;
                    for (int p = 0; p < n; p++) {
                        const __m512 v = _mm512_set1_ps(xp[p * sx]);
                        a0[p] = _mm512_fmadd_ps(v, w0, a0[p]);
                        a1[p] = _mm512_fmadd_ps(v, w1, a1[p]);
                    }
                }
            }
        }
    }
    const __m512 z = _mm512_setzero_ps();
    for (int p = 0; p < n; p++) {
        __m512 v0 = a0[p], v1 = a1[p];
        if (r->relu) { /* maxps returns its second operand on NaN: max(0, NaN) = NaN */
            v0 = _mm512_max_ps(z, v0);
            v1 = _mm512_max_ps(z, v1);
        }
        v0 = _mm512_maskz_mov_ps(keep0, v0);
        v1 = _mm512_maskz_mov_ps(keep1, v1);
        float *y = r->y + (ow0 + p) * 8;
        _mm256_storeu_ps(y, _mm512_castps512_ps256(v0));
        if (r->nblocks > 1) _mm256_storeu_ps(y + r->y_block, _mm512_extractf32x8_ps(v0, 1));
        if (r->nblocks > 2)
            _mm256_storeu_ps(y + 2 * r->y_block, _mm512_castps512_ps256(v1));
        if (r->nblocks > 3)
            _mm256_storeu_ps(y + 3 * r->y_block, _mm512_extractf32x8_ps(v1, 1));
    }
}

FC_INLINE void border(const fc_conv8c_row *r, int64_t ow, __mmask16 k0, __mmask16 k1) {
    int64_t lo, hi;
    fc_conv8c_col_taps(r, ow, &lo, &hi);
    tile(r, ow, 1, lo, hi > lo ? hi : lo, k0, k1);
}

void fc_f32_conv8c_row__avx512(const fc_conv8c_row *r) {
    /* lanes kept: the real channels of the group; the rest of the stored blocks are 0 */
    const int64_t real = (r->nblocks - 1) * 8 + r->last_lanes;
    const uint32_t keep = real >= 32 ? 0xffffffffu : ((1u << real) - 1u);
    const __mmask16 k0 = (__mmask16)(keep & 0xffffu), k1 = (__mmask16)(keep >> 16);
    for (int64_t ow = 0; ow < r->int_lo; ow++) border(r, ow, k0, k1);
    int64_t ow = r->int_lo;
    for (; ow + MR <= r->int_hi; ow += MR) tile(r, ow, MR, 0, r->kernel_w, k0, k1);
    switch (r->int_hi - ow) {
#define REST(n) case n: tile(r, ow, n, 0, r->kernel_w, k0, k1); break;
        REST(1) REST(2) REST(3) REST(4) REST(5) REST(6) REST(7)
        REST(8) REST(9) REST(10) REST(11) REST(12) REST(13)
#undef REST
        default: break;
    }
    for (ow = FC_MAX(r->int_hi, r->int_lo); ow < r->out_w; ow++) border(r, ow, k0, k1);
}
