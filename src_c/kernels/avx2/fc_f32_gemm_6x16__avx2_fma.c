/* AVX2 + FMA SGEMM micro-kernel (6 x 16 tile) and packing.
 *
 * Compiled with -mavx2 -mfma (this folder only). Reached only through fc_gemm.c when
 * fc_active_isa() == FC_ISA_AVX2, i.e. after CPUID/XGETBV said yes.
 *
 * Register plan of the inner loop (16 ymm): 12 accumulators (6 rows x 2 halves of 16
 * columns), 2 for the B row of this k step, 1-2 for the broadcast A values. Per k step:
 * 2 aligned B loads, 6 broadcasts from the packed A panel, 12 FMAs. The contract is in
 * fc_gemm_kernels.h. */
#include "fc_gemm_kernels.h"
#include <immintrin.h>
#include <string.h>

#define MR FC_GEMM_AVX2_MR
#define NR FC_GEMM_AVX2_NR

/* One k step: b0/b1 hold B[p, 0:8] and B[p, 8:16]; A[p, 0:6] is at ap. */
#define FC_STEP(ap, bp)                                                          \
    do {                                                                         \
        const __m256 b0 = _mm256_load_ps(bp);                                    \
        const __m256 b1 = _mm256_load_ps((bp) + 8);                              \
        __m256 av = _mm256_broadcast_ss(ap);                                     \
        c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01);  \
        av = _mm256_broadcast_ss((ap) + 1);                                      \
        c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11);  \
        av = _mm256_broadcast_ss((ap) + 2);                                      \
        c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21);  \
        av = _mm256_broadcast_ss((ap) + 3);                                      \
        c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31);  \
        av = _mm256_broadcast_ss((ap) + 4);                                      \
        c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41);  \
        av = _mm256_broadcast_ss((ap) + 5);                                      \
        c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51);  \
    } while (0)

void fc_f32_gemm_6x16__avx2_fma(size_t kc, const float *a, const float *b, float *c,
                                size_t rs_c, int beta, const fc_gemm_epilogue *epi) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

    float *c0 = c, *c1 = c + rs_c, *c2 = c1 + rs_c;
    float *c3 = c2 + rs_c, *c4 = c3 + rs_c, *c5 = c4 + rs_c;
    /* C is touched only after the k loop: start bringing it in now */
    _mm_prefetch((const char *)c0, _MM_HINT_T0); _mm_prefetch((const char *)(c0 + 15), _MM_HINT_T0);
    _mm_prefetch((const char *)c1, _MM_HINT_T0); _mm_prefetch((const char *)(c1 + 15), _MM_HINT_T0);
    _mm_prefetch((const char *)c2, _MM_HINT_T0); _mm_prefetch((const char *)(c2 + 15), _MM_HINT_T0);
    _mm_prefetch((const char *)c3, _MM_HINT_T0); _mm_prefetch((const char *)(c3 + 15), _MM_HINT_T0);
    _mm_prefetch((const char *)c4, _MM_HINT_T0); _mm_prefetch((const char *)(c4 + 15), _MM_HINT_T0);
    _mm_prefetch((const char *)c5, _MM_HINT_T0); _mm_prefetch((const char *)(c5 + 15), _MM_HINT_T0);

    size_t p = kc;
    while (p >= 4) {
        FC_STEP(a, b);
        FC_STEP(a + MR, b + NR);
        FC_STEP(a + 2 * MR, b + 2 * NR);
        FC_STEP(a + 3 * MR, b + 3 * NR);
        a += 4 * MR;
        b += 4 * NR;
        p -= 4;
    }
    while (p > 0) {
        FC_STEP(a, b);
        a += MR;
        b += NR;
        p--;
    }

    if (beta) {
        c00 = _mm256_add_ps(c00, _mm256_loadu_ps(c0)); c01 = _mm256_add_ps(c01, _mm256_loadu_ps(c0 + 8));
        c10 = _mm256_add_ps(c10, _mm256_loadu_ps(c1)); c11 = _mm256_add_ps(c11, _mm256_loadu_ps(c1 + 8));
        c20 = _mm256_add_ps(c20, _mm256_loadu_ps(c2)); c21 = _mm256_add_ps(c21, _mm256_loadu_ps(c2 + 8));
        c30 = _mm256_add_ps(c30, _mm256_loadu_ps(c3)); c31 = _mm256_add_ps(c31, _mm256_loadu_ps(c3 + 8));
        c40 = _mm256_add_ps(c40, _mm256_loadu_ps(c4)); c41 = _mm256_add_ps(c41, _mm256_loadu_ps(c4 + 8));
        c50 = _mm256_add_ps(c50, _mm256_loadu_ps(c5)); c51 = _mm256_add_ps(c51, _mm256_loadu_ps(c5 + 8));
    }
    if (epi) {
        if (epi->bias_m) {
            const float *bm = epi->bias_m;
            __m256 v = _mm256_broadcast_ss(bm);
            c00 = _mm256_add_ps(c00, v); c01 = _mm256_add_ps(c01, v);
            v = _mm256_broadcast_ss(bm + 1);
            c10 = _mm256_add_ps(c10, v); c11 = _mm256_add_ps(c11, v);
            v = _mm256_broadcast_ss(bm + 2);
            c20 = _mm256_add_ps(c20, v); c21 = _mm256_add_ps(c21, v);
            v = _mm256_broadcast_ss(bm + 3);
            c30 = _mm256_add_ps(c30, v); c31 = _mm256_add_ps(c31, v);
            v = _mm256_broadcast_ss(bm + 4);
            c40 = _mm256_add_ps(c40, v); c41 = _mm256_add_ps(c41, v);
            v = _mm256_broadcast_ss(bm + 5);
            c50 = _mm256_add_ps(c50, v); c51 = _mm256_add_ps(c51, v);
        }
        if (epi->bias_n) {
            const __m256 v0 = _mm256_loadu_ps(epi->bias_n);
            const __m256 v1 = _mm256_loadu_ps(epi->bias_n + 8);
            c00 = _mm256_add_ps(c00, v0); c01 = _mm256_add_ps(c01, v1);
            c10 = _mm256_add_ps(c10, v0); c11 = _mm256_add_ps(c11, v1);
            c20 = _mm256_add_ps(c20, v0); c21 = _mm256_add_ps(c21, v1);
            c30 = _mm256_add_ps(c30, v0); c31 = _mm256_add_ps(c31, v1);
            c40 = _mm256_add_ps(c40, v0); c41 = _mm256_add_ps(c41, v1);
            c50 = _mm256_add_ps(c50, v0); c51 = _mm256_add_ps(c51, v1);
        }
        if (epi->relu) {
            /* maxps returns its second operand when either is NaN: max(0, x) keeps NaN */
            const __m256 z = _mm256_setzero_ps();
            c00 = _mm256_max_ps(z, c00); c01 = _mm256_max_ps(z, c01);
            c10 = _mm256_max_ps(z, c10); c11 = _mm256_max_ps(z, c11);
            c20 = _mm256_max_ps(z, c20); c21 = _mm256_max_ps(z, c21);
            c30 = _mm256_max_ps(z, c30); c31 = _mm256_max_ps(z, c31);
            c40 = _mm256_max_ps(z, c40); c41 = _mm256_max_ps(z, c41);
            c50 = _mm256_max_ps(z, c50); c51 = _mm256_max_ps(z, c51);
        }
    }
    _mm256_storeu_ps(c0, c00); _mm256_storeu_ps(c0 + 8, c01);
    _mm256_storeu_ps(c1, c10); _mm256_storeu_ps(c1 + 8, c11);
    _mm256_storeu_ps(c2, c20); _mm256_storeu_ps(c2 + 8, c21);
    _mm256_storeu_ps(c3, c30); _mm256_storeu_ps(c3 + 8, c31);
    _mm256_storeu_ps(c4, c40); _mm256_storeu_ps(c4 + 8, c41);
    _mm256_storeu_ps(c5, c50); _mm256_storeu_ps(c5 + 8, c51);
}

/* ------------------------------------------------------------------ packing */

void fc_f32_gemm_pack_a_6__avx2(size_t mc, size_t kc, const float *a, ptrdiff_t rs_a,
                                ptrdiff_t cs_a, float *dst) {
    for (size_t i0 = 0; i0 < mc; i0 += MR) {
        const size_t mr = (mc - i0 < MR) ? mc - i0 : MR;
        const float *src = a + (ptrdiff_t)i0 * rs_a;
        if (mr == MR && cs_a == 1) {
            const float *r0 = src, *r1 = src + rs_a, *r2 = r1 + rs_a;
            const float *r3 = r2 + rs_a, *r4 = r3 + rs_a, *r5 = r4 + rs_a;
            float *d = dst;
            for (size_t p = 0; p < kc; p++, d += MR) {
                d[0] = r0[p]; d[1] = r1[p]; d[2] = r2[p];
                d[3] = r3[p]; d[4] = r4[p]; d[5] = r5[p];
            }
        } else if (mr == MR && rs_a == 1) {
            for (size_t p = 0; p < kc; p++)
                memcpy(dst + p * MR, src + (ptrdiff_t)p * cs_a, MR * sizeof(float));
        } else {
            for (size_t p = 0; p < kc; p++) {
                size_t i = 0;
                for (; i < mr; i++) dst[p * MR + i] = src[(ptrdiff_t)i * rs_a + (ptrdiff_t)p * cs_a];
                for (; i < MR; i++) dst[p * MR + i] = 0.0f;
            }
        }
        dst += kc * MR;
    }
}

/* Transpose the 8 x 8 block whose row r (r = column j of B) starts at s + r*ld, writing
 * row p of the result (8 floats) to d + p*NR. */
static inline void transpose8_store(const float *s, ptrdiff_t ld, float *d) {
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
    _mm256_store_ps(d + 0 * NR, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_store_ps(d + 1 * NR, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_store_ps(d + 2 * NR, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_store_ps(d + 3 * NR, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_store_ps(d + 4 * NR, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_store_ps(d + 5 * NR, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_store_ps(d + 6 * NR, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_store_ps(d + 7 * NR, _mm256_permute2f128_ps(u3, u7, 0x31));
}

void fc_f32_gemm_pack_b_16__avx2(size_t kc, size_t nc, const float *b, ptrdiff_t rs_b,
                                 ptrdiff_t cs_b, float *dst) {
    for (size_t j0 = 0; j0 < nc; j0 += NR) {
        const size_t nr = (nc - j0 < NR) ? nc - j0 : NR;
        const float *src = b + (ptrdiff_t)j0 * cs_b;
        if (nr == NR && cs_b == 1) {
            for (size_t p = 0; p < kc; p++) {
                const float *s = src + (ptrdiff_t)p * rs_b;
                _mm256_store_ps(dst + p * NR, _mm256_loadu_ps(s));
                _mm256_store_ps(dst + p * NR + 8, _mm256_loadu_ps(s + 8));
            }
        } else if (nr == NR && rs_b == 1) {
            /* B^T stored row-major (e.g. the weight of a linear layer): column j of B is
             * contiguous in k. Transpose 8 x 8 blocks. */
            size_t p = 0;
            for (; p + 8 <= kc; p += 8) {
                transpose8_store(src + p, cs_b, dst + p * NR);
                transpose8_store(src + 8 * cs_b + p, cs_b, dst + p * NR + 8);
            }
            for (; p < kc; p++)
                for (size_t j = 0; j < NR; j++) dst[p * NR + j] = src[(ptrdiff_t)j * cs_b + (ptrdiff_t)p];
        } else {
            for (size_t p = 0; p < kc; p++) {
                size_t j = 0;
                for (; j < nr; j++) dst[p * NR + j] = src[(ptrdiff_t)p * rs_b + (ptrdiff_t)j * cs_b];
                for (; j < NR; j++) dst[p * NR + j] = 0.0f;
            }
        }
        dst += kc * NR;
    }
}
