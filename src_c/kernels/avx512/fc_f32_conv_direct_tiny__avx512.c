/* Direct convolution on tiny maps, AVX-512 (see fc_direct_tiny in fc_conv_direct_kernels.h).
 *
 * Compiled with the AVX-512 flags (this folder only); the driver calls it only when
 * fc_active_isa() is FC_ISA_AVX512.
 *
 * On maps of a few pixels (a CIFAR VGG's 2x2 and 1x1 layers: 512 -> 512 channels, 9.4 MB
 * of weights for 19 MFLOP) the work is bound by reading the weights, so the tile is laid
 * out for the weight stream: output channels across the lanes (one zmm per block of 16),
 * every output pixel of a few images (the "slots") as FMA chains, up to 4 blocks x 6
 * slots = 24 accumulators. Each packed weight vector is loaded once per call, in memory
 * order, and the line 8 KiB further on in each block's stream is prefetched (a
 * one-core DRAM read runs at about 11 GB/s without software prefetch and 14.5 GB/s with
 * it on the Xeon). Only taps inside the input of at least one slot are visited, so a 1x1
 * map with padding 1 reads only the centre tap's lines; a slot whose tap falls in the
 * padding skips it, which keeps every chain equal to the row kernels' one.
 *
 * nblk and nslot are compile-time constants in each instance (dispatch below), so the
 * accumulator arrays live in registers and the slot tests are tests of constant bits.
 * The tap loop is unrolled by 9 so that each (tap, slot) test sits at its own address
 * with one outcome for the whole call: one test per slot shared by all taps mispredicted
 * (64 -> 512 channels on 2x2, weights in L2: 0.074 -> 0.049 ms). */
#include <immintrin.h>
#include "../../fc_conv_direct_kernels.h"

#define FC_INLINE static inline __attribute__((always_inline))
#define TU 9
/* prefetch distance: 8 KiB ahead in all, split over the nblk streams (2 KiB each for 4
 * blocks measured best on the Xeon, 1 thread: 16.8 GB/s from DRAM; 8 KiB each: 15.6) */
#define PF_FLOATS (2048 / B)

FC_INLINE void tiny(const fc_direct_tiny *t, const float *w, int64_t bstr, const int B,
                    const int S, int nb, const float *bias, float *y, int64_t ycs,
                    int64_t nco) {
    const __mmask16 lm = nb == 16 ? (__mmask16)0xFFFF : (__mmask16)0x00FF;
    const int64_t wcs = t->ktaps * nb, xcs = t->x_cstride, cig = t->cig, ntap = t->ntap;
    /* whole input channels ahead, so the prefetch lands on a line of a visited tap */
    const int64_t pf = (PF_FLOATS + wcs - 1) / wcs * wcs;
    __m512 acc[4][FC_DIRECT_TINY_SLOTS];
    int64_t so[FC_DIRECT_TINY_SLOTS];
#pragma GCC unroll 4
    for (int b = 0; b < B; b++) {
        const __m512 bv = _mm512_maskz_loadu_ps(lm, bias + 16 * b);
#pragma GCC unroll 6
        for (int s = 0; s < S; s++) acc[b][s] = bv;
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
            __m512 wv[4];
#pragma GCC unroll 4
            for (int b = 0; b < B; b++) {
                wv[b] = _mm512_maskz_loadu_ps(lm, wp + b * bstr);
                _mm_prefetch((const char *)(wp + b * bstr + pf), _MM_HINT_T0);
            }
#pragma GCC unroll 6
            for (int s = 0; s < S; s++) {
                if (m & (1u << s)) {
                    const __m512 xv = _mm512_set1_ps(xc[so[s] + to]);
#pragma GCC unroll 4
                    for (int b = 0; b < B; b++) acc[b][s] = _mm512_fmadd_ps(wv[b], xv, acc[b][s]);
                }
            }
        }
        }
    }
    /* channel l of slot s to y[(16b + l) * ycs + yoff[s]]: one masked scatter per vector */
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)ycs));
#pragma GCC unroll 4
    for (int b = 0; b < B; b++) {
        const int64_t n = nco - 16 * b;
        if (n <= 0) break;
        const __mmask16 sm = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
        float *yb = y + 16 * b * ycs;
#pragma GCC unroll 6
        for (int s = 0; s < S; s++) {
            /* maxps returns its second operand when either is NaN: max(0, NaN) = NaN */
            const __m512 v = t->relu ? _mm512_max_ps(_mm512_setzero_ps(), acc[b][s]) : acc[b][s];
            _mm512_mask_i32scatter_ps(yb + t->yoff[s], sm, idx, v, 4);
        }
    }
}

#define TINY_S(B)                                                                        \
    static void tiny_##B(const fc_direct_tiny *t, const float *w, int64_t bstr, int nb,   \
                         const float *bias, float *y, int64_t ycs, int64_t nco) {         \
        switch (t->nslot) {                                                              \
        case 1: tiny(t, w, bstr, B, 1, nb, bias, y, ycs, nco); break;                    \
        case 2: tiny(t, w, bstr, B, 2, nb, bias, y, ycs, nco); break;                    \
        case 3: tiny(t, w, bstr, B, 3, nb, bias, y, ycs, nco); break;                    \
        case 4: tiny(t, w, bstr, B, 4, nb, bias, y, ycs, nco); break;                    \
        case 5: tiny(t, w, bstr, B, 5, nb, bias, y, ycs, nco); break;                    \
        case 6: tiny(t, w, bstr, B, 6, nb, bias, y, ycs, nco); break;                    \
        default: break;                                                                  \
        }                                                                                \
    }
TINY_S(1)
TINY_S(2)
TINY_S(3)
TINY_S(4)
#undef TINY_S

void fc_f32_conv_direct_tiny__avx512(const fc_direct_tiny *t, const float *w,
                                     int64_t w_bstride, int nblk, int nb, const float *bias,
                                     float *y, int64_t y_cstride, int64_t nco) {
    switch (nblk) {
    case 1: tiny_1(t, w, w_bstride, nb, bias, y, y_cstride, nco); break;
    case 2: tiny_2(t, w, w_bstride, nb, bias, y, y_cstride, nco); break;
    case 3: tiny_3(t, w, w_bstride, nb, bias, y, y_cstride, nco); break;
    case 4: tiny_4(t, w, w_bstride, nb, bias, y, y_cstride, nco); break;
    default: break;
    }
}
