/* An 8 x 8 float transpose with AVX (unpack, shuffle, lane permute), shared by the
 * B packers of the AVX2 and AVX-512 SGEMM kernels, the AVX2 direct conv's weight packer
 * and the AVX2 planes-in-lanes pooling; include only from files compiled with
 * -mavx2 (kernels/avx2/ and kernels/avx512/). */
#ifndef FC_TRANSPOSE8_AVX_H
#define FC_TRANSPOSE8_AVX_H

#include <immintrin.h>
#include <stddef.h>

/* In-register 8 x 8 transpose: afterwards r[j] lane i holds what r[i] lane j held. */
static inline __attribute__((always_inline)) void fc_transpose8(__m256 r[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Transpose the 8 x 8 block whose row r starts at s + r*ld, writing row p of the result
 * (8 floats, 32-byte aligned) to d + p*ld_d. */
static inline void fc_transpose8_store(const float *s, ptrdiff_t ld, float *d, ptrdiff_t ld_d) {
    __m256 r[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(s + i * ld);
    fc_transpose8(r);
    for (int i = 0; i < 8; i++) _mm256_store_ps(d + i * ld_d, r[i]);
}

#endif /* FC_TRANSPOSE8_AVX_H */
