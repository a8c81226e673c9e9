/* AVX2/FMA throughput loop for fc_measure_fma_peak (src_c/fc_peak.c).
 *
 * Compiled with -mavx2 -mfma; only called after fc_active_isa() says FC_ISA_AVX2, so no
 * AVX instruction is reachable before the CPU check.
 *
 * 12 independent accumulator chains of _mm256_fmadd_ps: with an FMA latency of 4-5
 * cycles and 2 FMA pipes, at least 8-10 chains are needed to keep both pipes busy every
 * cycle, and 12 (plus 2 operand registers) still fit in the 16 YMM registers, so the
 * loop body is 12 vfmadd231ps with no loads or stores. Each iteration is 12 FMAs of
 * 8 lanes = 96 multiply-adds = 192 FLOPs (16 FLOPs per FMA).
 *
 * acc = acc * m + c with m slightly below 1 and c small converges to c / (1 - m), so the
 * values stay normal (no overflow, no denormals, no NaN) however long the loop runs. The
 * accumulators start from *sink (unknown at compile time) and their sum is written back
 * to *sink (volatile), so the compiler can neither precompute nor drop the work; without
 * -ffast-math it cannot reassociate the chains either. */
#include <immintrin.h>
#include <stdint.h>

#define FC_PEAK_CHAINS 12

/* Runs `iters` iterations; returns the number of FLOPs done. */
double fc_fma_peak_chunk__avx2(int64_t iters, volatile float *sink);

double fc_fma_peak_chunk__avx2(int64_t iters, volatile float *sink) {
    const float seed = *sink;
    const __m256 m = _mm256_set1_ps(0.9999999f);
    const __m256 c = _mm256_set1_ps(1.0e-7f);
    __m256 a0 = _mm256_set1_ps(seed + 0.01f), a1 = _mm256_set1_ps(seed + 0.02f);
    __m256 a2 = _mm256_set1_ps(seed + 0.03f), a3 = _mm256_set1_ps(seed + 0.04f);
    __m256 a4 = _mm256_set1_ps(seed + 0.05f), a5 = _mm256_set1_ps(seed + 0.06f);
    __m256 a6 = _mm256_set1_ps(seed + 0.07f), a7 = _mm256_set1_ps(seed + 0.08f);
    __m256 a8 = _mm256_set1_ps(seed + 0.09f), a9 = _mm256_set1_ps(seed + 0.10f);
    __m256 a10 = _mm256_set1_ps(seed + 0.11f), a11 = _mm256_set1_ps(seed + 0.12f);
    for (int64_t i = 0; i < iters; i++) {
        a0 = _mm256_fmadd_ps(a0, m, c);
        a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c);
        a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c);
        a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c);
        a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c);
        a9 = _mm256_fmadd_ps(a9, m, c);
        a10 = _mm256_fmadd_ps(a10, m, c);
        a11 = _mm256_fmadd_ps(a11, m, c);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    /* scale back down so the seed of the next chunk stays small */
    *sink = _mm_cvtss_f32(h) * (1.0f / 1024.0f);
    return (double)iters * FC_PEAK_CHAINS * 16.0;
}
