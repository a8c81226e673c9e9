/* AVX-512 FMA throughput loop for fc_measure_fma_peak (src_c/fc_peak.c): the roof the
 * 512-bit kernels are measured against.
 *
 * Compiled with the AVX-512 flags; only called after fc_active_isa() says FC_ISA_AVX512.
 * 16 independent chains of _mm512_fmadd_ps (latency 4 x 2 pipes needs >= 8; 16 leaves
 * margin and fits the 32 zmm registers), no loads or stores. Each iteration is 16 FMAs of
 * 16 lanes = 512 FLOPs. The recurrence acc = acc * m + c converges (values stay normal);
 * the seed comes from and the sum goes to a volatile, so nothing can be precomputed. */
#include <immintrin.h>
#include <stdint.h>

#define FC_PEAK_CHAINS 16

double fc_fma_peak_chunk__avx512(int64_t iters, volatile float *sink);

double fc_fma_peak_chunk__avx512(int64_t iters, volatile float *sink) {
    const float seed = *sink;
    const __m512 m = _mm512_set1_ps(0.9999999f);
    const __m512 c = _mm512_set1_ps(1.0e-7f);
    __m512 a[FC_PEAK_CHAINS];
    for (int j = 0; j < FC_PEAK_CHAINS; j++) a[j] = _mm512_set1_ps(seed + 0.01f * (float)(j + 1));
    for (int64_t i = 0; i < iters; i++) {
#pragma GCC unroll 16
        for (int j = 0; j < FC_PEAK_CHAINS; j++) a[j] = _mm512_fmadd_ps(a[j], m, c);
    }
    __m512 s = a[0];
    for (int j = 1; j < FC_PEAK_CHAINS; j++) s = _mm512_add_ps(s, a[j]);
    /* scale back down so the seed of the next chunk stays small */
    *sink = _mm512_reduce_add_ps(s) * (1.0f / 1024.0f);
    return (double)iters * FC_PEAK_CHAINS * 32.0;
}
