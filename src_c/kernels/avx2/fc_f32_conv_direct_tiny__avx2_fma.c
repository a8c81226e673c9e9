/* Direct convolution on tiny maps, AVX2/FMA (see fc_direct_tiny in fc_conv_direct_kernels.h).
 *
 * Compiled with -mavx2 -mfma; the driver calls it only when fc_active_isa() is FC_ISA_AVX2.
 *
 * The AVX-512 kernel's idea (kernels/avx512/fc_f32_conv_direct_tiny__avx512.c) in 16
 * ymm registers: one block at a time, its 16 channels as two ymm (one for an 8-wide
 * block), up to 6 slots as FMA chains = 12 accumulators + 2 weight vectors + 1
 * broadcast. The blocks of a call run one after the other, each a single pass over its
 * packed weights in memory order with the line 8 KiB ahead prefetched; a slot skips the
 * taps that fall in its padding, so every output value is the row kernels' chain. The
 * tap loop is unrolled by 9 so that each slot test sits at its own address with a fixed
 * outcome for the whole call (one shared test per slot mispredicts across taps). */
#include <immintrin.h>
#include "../../fc_conv_direct_kernels.h"

#define FC_INLINE static inline __attribute__((always_inline))
#define TU 9          /* taps per unrolled step: a 3x3 kernel in one */
#define PF_FLOATS 2048 /* prefetch distance: 8 KiB of the block's stream */

/* One block of 8 * H channels (H = 1 or 2) for S slots. */
FC_INLINE void tiny_block(const fc_direct_tiny *t, const float *w, const int H, const int S,
                          const float *bias, float *y, int64_t ycs, int64_t nco) {
    const int64_t nb = 8 * H;
    const int64_t wcs = t->ktaps * nb, xcs = t->x_cstride, cig = t->cig, ntap = t->ntap;
    const int64_t pf = (PF_FLOATS + wcs - 1) / wcs * wcs; /* whole input channels ahead */
    __m256 acc[2][FC_DIRECT_TINY_SLOTS];
    int64_t so[FC_DIRECT_TINY_SLOTS];
#pragma GCC unroll 2
    for (int h = 0; h < H; h++) {
        const __m256 bv = _mm256_loadu_ps(bias + 8 * h);
#pragma GCC unroll 6
        for (int s = 0; s < S; s++) acc[h][s] = bv;
    }
#pragma GCC unroll 6
    for (int s = 0; s < S; s++) so[s] = t->soff[s];
    const float *xc = t->x;
    const float *wc = w;
    for (int64_t ci = 0; ci < cig; ci++, xc += xcs, wc += wcs) {
        for (int64_t a0 = 0; a0 < ntap; a0 += TU) {
#pragma GCC unroll 9
            for (int64_t a = a0; a < a0 + TU; a++) {
                if (a >= ntap) break;
                const float *wp = wc + (int64_t)t->tap[a] * nb;
                const int64_t to = t->toff[a];
                const uint32_t m = t->tmask[a];
                __m256 wv[2];
#pragma GCC unroll 2
                for (int h = 0; h < H; h++) wv[h] = _mm256_loadu_ps(wp + 8 * h);
                _mm_prefetch((const char *)(wp + pf), _MM_HINT_T0);
#pragma GCC unroll 6
                for (int s = 0; s < S; s++) {
                    if (m & (1u << s)) {
                        const __m256 xv = _mm256_broadcast_ss(xc + so[s] + to);
#pragma GCC unroll 2
                        for (int h = 0; h < H; h++)
                            acc[h][s] = _mm256_fmadd_ps(wv[h], xv, acc[h][s]);
                    }
                }
            }
        }
    }
    float buf[16] = {0};
#pragma GCC unroll 6
    for (int s = 0; s < S; s++) {
#pragma GCC unroll 2
        for (int h = 0; h < H; h++) {
            /* maxps returns its second operand when either is NaN: max(0, NaN) = NaN */
            const __m256 v = t->relu ? _mm256_max_ps(_mm256_setzero_ps(), acc[h][s]) : acc[h][s];
            _mm256_storeu_ps(buf + 8 * h, v);
        }
        float *ys = y + t->yoff[s];
        for (int64_t l = 0; l < nco; l++) ys[l * ycs] = buf[l];
    }
}

#define TINY_S(H)                                                                        \
    static void tiny_##H(const fc_direct_tiny *t, const float *w, const float *bias,     \
                         float *y, int64_t ycs, int64_t nco) {                            \
        switch (t->nslot) {                                                              \
        case 1: tiny_block(t, w, H, 1, bias, y, ycs, nco); break;                        \
        case 2: tiny_block(t, w, H, 2, bias, y, ycs, nco); break;                        \
        case 3: tiny_block(t, w, H, 3, bias, y, ycs, nco); break;                        \
        case 4: tiny_block(t, w, H, 4, bias, y, ycs, nco); break;                        \
        case 5: tiny_block(t, w, H, 5, bias, y, ycs, nco); break;                        \
        case 6: tiny_block(t, w, H, 6, bias, y, ycs, nco); break;                        \
        default: break;                                                                  \
        }                                                                                \
    }
TINY_S(1)
TINY_S(2)
#undef TINY_S

void fc_f32_conv_direct_tiny__avx2_fma(const fc_direct_tiny *t, const float *w,
                                       int64_t w_bstride, int nblk, int nb, const float *bias,
                                       float *y, int64_t y_cstride, int64_t nco) {
    for (int b = 0; b < nblk && nco > 16 * b; b++) {
        const float *wb = w + b * w_bstride, *bb = bias + 16 * b;
        float *yb = y + 16 * b * y_cstride;
        const int64_t n = FC_MIN((int64_t)nb, nco - 16 * b);
        if (nb == 8) tiny_1(t, wb, bb, yb, y_cstride, n);
        else tiny_2(t, wb, bb, yb, y_cstride, n);
    }
}
