/* An 8 x 8 float transpose with AVX (unpack, shuffle, lane permute), shared by the
 * B packers of the AVX2 and AVX-512 SGEMM kernels; include only from files compiled with
 * -mavx2 (kernels/avx2/ and kernels/avx512/). */
#ifndef FC_TRANSPOSE8_AVX_H
#define FC_TRANSPOSE8_AVX_H

#include <immintrin.h>
#include <stddef.h>

/* Transpose the 8 x 8 block whose row r starts at s + r*ld, writing row p of the result
 * (8 floats, 32-byte aligned) to d + p*ld_d. */
static inline void fc_transpose8_store(const float *s, ptrdiff_t ld, float *d, ptrdiff_t ld_d) {
    __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ld);
    __m256 r2 = _mm256_loadu_ps(s + 2 * ld), r3 = _mm256_loadu_ps(s + 3 * ld);
    __m256 r4 = _mm256_loadu_ps(s + 4 * ld), r5 = _mm256_loadu_ps(s + 5 * ld);
    __m256 r6 = _mm256_loadu_ps(s + 6 * ld), r7 = _mm256_loadu_ps(s + 7 * ld);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_store_ps(d + 0 * ld_d, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_store_ps(d + 1 * ld_d, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_store_ps(d + 2 * ld_d, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_store_ps(d + 3 * ld_d, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_store_ps(d + 4 * ld_d, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_store_ps(d + 5 * ld_d, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_store_ps(d + 6 * ld_d, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_store_ps(d + 7 * ld_d, _mm256_permute2f128_ps(u3, u7, 0x31));
}

#endif /* FC_TRANSPOSE8_AVX_H */
