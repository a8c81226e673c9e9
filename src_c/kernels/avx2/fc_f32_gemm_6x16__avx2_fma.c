/* AVX2 + FMA SGEMM micro-kernel (6 x 16 tile) and packing.
 *
 * Compiled with -mavx2 -mfma (this folder only). Reached only through fc_gemm.c when
 * fc_active_isa() == FC_ISA_AVX2, i.e. after CPUID/XGETBV said yes.
 *
 * Register plan of the inner loop (16 ymm): 12 accumulators (6 rows x 2 halves of 16
 * columns), 2 for the B row of this k step, 1-2 for the broadcast A values. Per k step:
 * 2 aligned B loads, 6 broadcasts from the packed A panel, 12 FMAs. The contract is in
 * fc_gemm_kernels.h. */
#include "kernels/fc_transpose8_avx.h"
#include "fc_gemm_kernels.h"
#include <immintrin.h>
#include <string.h>

#define MR FC_GEMM_AVX2_MR
#define NR FC_GEMM_AVX2_NR
/* How far ahead (floats) the micro-kernel prefetches its A panel: 4 KiB. Measured on the
 * Xeon under the avx2 ISA (1 thread, prepacked weights, batch 1, 2026-12-02): a 512->512
 * 3x3 conv on a 4x4 map from memory took 1.63 ms without, 1.32 / 1.17 / 1.13 / 1.13 ms
 * at 256 / 512 / 1024 / 2048 floats ahead; large GEMMs (A from L2) unchanged by thread
 * CPU time (1024^3: 27.4 / 27.0 ms, VGG 56x56x256 im2col 49.7 / 49.5 ms). */
#ifndef FC_GEMM_AVX2_A_PF
#define FC_GEMM_AVX2_A_PF 1024
#endif

/* The kernel body for a tile of `mr` rows (1..6, a compile-time constant at every call
 * site below, so the unused accumulators and branches fold away). Rows past mr are
 * neither computed nor read from C nor written; the packed A panel keeps its stride of
 * MR floats per k step. Every element is computed exactly as in the 6-row kernel. */
static inline __attribute__((always_inline)) void
gemm_body(const size_t mr, const int nv, size_t kc, const float *a, const float *b, float *c, size_t rs_c,
          int beta, const fc_gemm_epilogue *epi) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    float *c0 = c, *c1 = c0 + rs_c, *c2 = c1 + rs_c;
    float *c3 = c2 + rs_c, *c4 = c3 + rs_c, *c5 = c4 + rs_c;

    /* C is touched only after the k loop: start bringing it in now */
#define FC_PF_ROW(r, cr)                                                                 \
    if (mr > r) {                                                                        \
        _mm_prefetch((const char *)(cr), _MM_HINT_T0);                                   \
        _mm_prefetch((const char *)((cr) + 15), _MM_HINT_T0);                            \
    }
    FC_PF_ROW(0, c0) FC_PF_ROW(1, c1) FC_PF_ROW(2, c2)
    FC_PF_ROW(3, c3) FC_PF_ROW(4, c4) FC_PF_ROW(5, c5)
#undef FC_PF_ROW

    /* One k step: b0/b1 hold B[p, 0:8] and B[p, 8:16]; A[p, 0:mr] is at ap. */
#define FC_ROW(r, x0, x1, ap)                                                            \
    if (mr > r) {                                                                        \
        const __m256 av = _mm256_broadcast_ss((ap) + r);                                 \
        x0 = _mm256_fmadd_ps(av, b0, x0);                                                \
        if (nv > 1) x1 = _mm256_fmadd_ps(av, b1, x1);                                    \
    }
#define FC_STEP(ap, bp)                                                                  \
    do {                                                                                 \
        const __m256 b0 = _mm256_load_ps(bp);                                            \
        const __m256 b1 = nv > 1 ? _mm256_load_ps((bp) + 8) : _mm256_setzero_ps();      \
        FC_ROW(0, c00, c01, ap) FC_ROW(1, c10, c11, ap) FC_ROW(2, c20, c21, ap)          \
        FC_ROW(3, c30, c31, ap) FC_ROW(4, c40, c41, ap) FC_ROW(5, c50, c51, ap)          \
    } while (0)

    while (kc >= 4) {
        /* prefetch the A panel ahead (see FC_GEMM_AVX2_A_PF): 4 steps use 24 floats */
        _mm_prefetch((const char *)(a + FC_GEMM_AVX2_A_PF), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + FC_GEMM_AVX2_A_PF + 16), _MM_HINT_T0);
        FC_STEP(a, b);
        FC_STEP(a + MR, b + NR);
        FC_STEP(a + 2 * MR, b + 2 * NR);
        FC_STEP(a + 3 * MR, b + 3 * NR);
        a += 4 * MR;
        b += 4 * NR;
        kc -= 4;
    }
    while (kc > 0) {
        FC_STEP(a, b);
        a += MR;
        b += NR;
        kc--;
    }
#undef FC_STEP
#undef FC_ROW

#define FC_ALL_ROWS(OP)                                                                  \
    OP(0, c00, c01, c0) OP(1, c10, c11, c1) OP(2, c20, c21, c2)                          \
    OP(3, c30, c31, c3) OP(4, c40, c41, c4) OP(5, c50, c51, c5)

    if (beta) {
#define FC_ADD_C(r, x0, x1, cr)                                                          \
    if (mr > r) {                                                                        \
        x0 = _mm256_add_ps(x0, _mm256_loadu_ps(cr));                                     \
        if (nv > 1) x1 = _mm256_add_ps(x1, _mm256_loadu_ps((cr) + 8));                   \
    }
        FC_ALL_ROWS(FC_ADD_C)
#undef FC_ADD_C
    }
    if (epi) {
        if (epi->bias_m) {
            const float *bm = epi->bias_m;
#define FC_ADD_BM(r, x0, x1, cr)                                                         \
    if (mr > r) {                                                                        \
        const __m256 v = _mm256_broadcast_ss(bm + r);                                    \
        x0 = _mm256_add_ps(x0, v);                                                       \
        if (nv > 1) x1 = _mm256_add_ps(x1, v);                                           \
    }
            FC_ALL_ROWS(FC_ADD_BM)
#undef FC_ADD_BM
        }
        if (epi->bias_n) {
            const __m256 v0 = _mm256_loadu_ps(epi->bias_n);
            const __m256 v1 = nv > 1 ? _mm256_loadu_ps(epi->bias_n + 8) : _mm256_setzero_ps();
#define FC_ADD_BN(r, x0, x1, cr)                                                         \
    if (mr > r) {                                                                        \
        x0 = _mm256_add_ps(x0, v0);                                                      \
        if (nv > 1) x1 = _mm256_add_ps(x1, v1);                                          \
    }
            FC_ALL_ROWS(FC_ADD_BN)
#undef FC_ADD_BN
        }
        if (epi->relu) {
            /* maxps returns its second operand when either is NaN: max(0, x) keeps NaN */
            const __m256 z = _mm256_setzero_ps();
#define FC_RELU(r, x0, x1, cr)                                                           \
    if (mr > r) {                                                                        \
        x0 = _mm256_max_ps(z, x0);                                                       \
        if (nv > 1) x1 = _mm256_max_ps(z, x1);                                           \
    }
            FC_ALL_ROWS(FC_RELU)
#undef FC_RELU
        }
    }
#define FC_STORE(r, x0, x1, cr)                                                          \
    if (mr > r) {                                                                        \
        _mm256_storeu_ps(cr, x0);                                                        \
        if (nv > 1) _mm256_storeu_ps((cr) + 8, x1);                                      \
    }
    FC_ALL_ROWS(FC_STORE)
#undef FC_STORE
#undef FC_ALL_ROWS
}

/* One instance per row count and width (16 or 8 columns); 6 x 16 is the hot path. */
#define FC_GEMM_INSTANCE(R)                                                              \
    static void gemm_##R##x16(size_t kc, const float *a, const float *b, float *c,       \
                              size_t rs_c, int beta, const fc_gemm_epilogue *epi) {      \
        gemm_body(R, 2, kc, a, b, c, rs_c, beta, epi);                                   \
    }                                                                                    \
    static void gemm_##R##x8(size_t kc, const float *a, const float *b, float *c,        \
                             size_t rs_c, int beta, const fc_gemm_epilogue *epi) {       \
        gemm_body(R, 1, kc, a, b, c, rs_c, beta, epi);                                   \
    }
FC_GEMM_INSTANCE(1)
FC_GEMM_INSTANCE(2)
FC_GEMM_INSTANCE(3)
FC_GEMM_INSTANCE(4)
FC_GEMM_INSTANCE(5)
FC_GEMM_INSTANCE(6)
#undef FC_GEMM_INSTANCE

void fc_f32_gemm_6x16__avx2_fma(size_t mr, size_t nr, size_t kc, const float *a,
                                const float *b, float *c, size_t rs_c, int beta,
                                const fc_gemm_epilogue *epi) {
    if (nr > NR / 2) {
        switch (mr) {
        case 6: gemm_6x16(kc, a, b, c, rs_c, beta, epi); break;
        case 5: gemm_5x16(kc, a, b, c, rs_c, beta, epi); break;
        case 4: gemm_4x16(kc, a, b, c, rs_c, beta, epi); break;
        case 3: gemm_3x16(kc, a, b, c, rs_c, beta, epi); break;
        case 2: gemm_2x16(kc, a, b, c, rs_c, beta, epi); break;
        default: gemm_1x16(kc, a, b, c, rs_c, beta, epi); break;
        }
    } else {
        switch (mr) {
        case 6: gemm_6x8(kc, a, b, c, rs_c, beta, epi); break;
        case 5: gemm_5x8(kc, a, b, c, rs_c, beta, epi); break;
        case 4: gemm_4x8(kc, a, b, c, rs_c, beta, epi); break;
        case 3: gemm_3x8(kc, a, b, c, rs_c, beta, epi); break;
        case 2: gemm_2x8(kc, a, b, c, rs_c, beta, epi); break;
        default: gemm_1x8(kc, a, b, c, rs_c, beta, epi); break;
        }
    }
}

/* ------------------------------------------------------------------ packing */

/* 8 k steps of a 6-row panel of row-major A: rows s, s+ld, ..., s+5*ld, 8 floats each, to
 * d[p*6 + i] (48 floats). */
static inline void pack_a6_block8(const float *s, ptrdiff_t ld, float *d) {
    const __m256 z = _mm256_setzero_ps();
    const __m256 a0 = _mm256_loadu_ps(s), a1 = _mm256_loadu_ps(s + ld);
    const __m256 a2 = _mm256_loadu_ps(s + 2 * ld), a3 = _mm256_loadu_ps(s + 3 * ld);
    const __m256 a4 = _mm256_loadu_ps(s + 4 * ld), a5 = _mm256_loadu_ps(s + 5 * ld);
    const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
    const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
    const __m256 t4 = _mm256_unpacklo_ps(a4, a5), t5 = _mm256_unpackhi_ps(a4, a5);
    /* lane 0 holds k step q, lane 1 holds k step q + 4 */
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 v0 = _mm256_shuffle_ps(t4, z, 0x44), v1 = _mm256_shuffle_ps(t4, z, 0xEE);
    const __m256 v2 = _mm256_shuffle_ps(t5, z, 0x44), v3 = _mm256_shuffle_ps(t5, z, 0xEE);
#define FC_PUT(q, u, v)                                                                   \
    _mm_storeu_ps(d + (q) * MR, _mm256_castps256_ps128(u));                               \
    _mm_storel_pi((__m64 *)(void *)(d + (q) * MR + 4), _mm256_castps256_ps128(v));        \
    _mm_storeu_ps(d + ((q) + 4) * MR, _mm256_extractf128_ps(u, 1));                       \
    _mm_storel_pi((__m64 *)(void *)(d + ((q) + 4) * MR + 4), _mm256_extractf128_ps(v, 1));
    FC_PUT(0, u0, v0)
    FC_PUT(1, u1, v1)
    FC_PUT(2, u2, v2)
    FC_PUT(3, u3, v3)
#undef FC_PUT
}

void fc_f32_gemm_pack_a_6__avx2(size_t mc, size_t kc, const float *a, ptrdiff_t rs_a,
                                ptrdiff_t cs_a, float *dst) {
    for (size_t i0 = 0; i0 < mc; i0 += MR) {
        const size_t mr = (mc - i0 < MR) ? mc - i0 : MR;
        const float *src = a + (ptrdiff_t)i0 * rs_a;
        if (mr == MR && cs_a == 1) {
            /* row-major A (conv weights): transpose 6 x 8 blocks */
            const float *r0 = src, *r1 = src + rs_a, *r2 = r1 + rs_a;
            const float *r3 = r2 + rs_a, *r4 = r3 + rs_a, *r5 = r4 + rs_a;
            float *d = dst;
            size_t p = 0;
            /* the row segments are short (kc floats): prefetch the next panel's rows */
            const int more = (i0 + 2 * MR <= mc);
            const float *nx = r0 + MR * rs_a;
            for (; p + 8 <= kc; p += 8, d += 8 * MR) {
                if (more && (p & 15) == 0) {
                    _mm_prefetch((const char *)(nx + p), _MM_HINT_T0);
                    _mm_prefetch((const char *)(nx + rs_a + p), _MM_HINT_T0);
                    _mm_prefetch((const char *)(nx + 2 * rs_a + p), _MM_HINT_T0);
                    _mm_prefetch((const char *)(nx + 3 * rs_a + p), _MM_HINT_T0);
                    _mm_prefetch((const char *)(nx + 4 * rs_a + p), _MM_HINT_T0);
                    _mm_prefetch((const char *)(nx + 5 * rs_a + p), _MM_HINT_T0);
                }
                pack_a6_block8(r0 + p, rs_a, d);
            }
            for (; p < kc; p++, d += MR) {
                d[0] = r0[p]; d[1] = r1[p]; d[2] = r2[p];
                d[3] = r3[p]; d[4] = r4[p]; d[5] = r5[p];
            }
        } else if (mr == MR && rs_a == 1) {
            for (size_t p = 0; p < kc; p++)
                memcpy(dst + p * MR, src + (ptrdiff_t)p * cs_a, MR * sizeof(float));
        } else {
            fc_gemm_pack_panel_strided(MR, mr, kc, src, rs_a, cs_a, dst);
        }
        dst += kc * MR;
    }
}


void fc_f32_gemm_pack_b_16__avx2(size_t kc, size_t nc, const float *b, ptrdiff_t rs_b,
                                 ptrdiff_t cs_b, float *dst, const float *pf) {
    for (size_t j0 = 0; j0 < nc; j0 += NR) {
        const size_t nr = (nc - j0 < NR) ? nc - j0 : NR;
        const float *src = b + (ptrdiff_t)j0 * cs_b;
        if (nr == NR && cs_b == 1) {
            if (pf) {
                for (size_t p = 0; p < kc; p++) {
                    const float *s = src + (ptrdiff_t)p * rs_b;
                    const float *f = pf + (ptrdiff_t)p * rs_b;
                    _mm_prefetch((const char *)f, _MM_HINT_T2); /* into L2: frees L1 miss buffers sooner */
                    _mm_prefetch((const char *)(f + NR - 1), _MM_HINT_T2);
                    _mm256_store_ps(dst + p * NR, _mm256_loadu_ps(s));
                    _mm256_store_ps(dst + p * NR + 8, _mm256_loadu_ps(s + 8));
                }
            } else {
                for (size_t p = 0; p < kc; p++) {
                    const float *s = src + (ptrdiff_t)p * rs_b;
                    _mm256_store_ps(dst + p * NR, _mm256_loadu_ps(s));
                    _mm256_store_ps(dst + p * NR + 8, _mm256_loadu_ps(s + 8));
                }
            }
        } else if (nr == NR && rs_b == 1) {
            /* B^T stored row-major (e.g. the weight of a linear layer): column j of B is
             * contiguous in k. Transpose 8 x 8 blocks. */
            size_t p = 0;
            for (; p + 8 <= kc; p += 8) {
                if (pf && (p & 15) == 0)
                    for (size_t j = 0; j < NR; j++)
                        _mm_prefetch((const char *)(pf + (ptrdiff_t)j * cs_b + (ptrdiff_t)p), _MM_HINT_T0);
                fc_transpose8_store(src + p, cs_b, dst + p * NR, NR);
                fc_transpose8_store(src + 8 * cs_b + p, cs_b, dst + p * NR + 8, NR);
            }
            for (; p < kc; p++)
                for (size_t j = 0; j < NR; j++) dst[p * NR + j] = src[(ptrdiff_t)j * cs_b + (ptrdiff_t)p];
        } else {
            fc_gemm_pack_panel_strided(NR, nr, kc, src, cs_b, rs_b, dst);
        }
        dst += kc * NR;
    }
}

/* ------------------------------------------------------------------ GEMV (B^T by rows) */

static inline float fma1(float x, float y, float z) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(x), _mm_set_ss(y), _mm_set_ss(z)));
}

/* Horizontal sum in a fixed order. */
static inline float hsum8(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

/* Per element: two 8-lane accumulators over 16-float steps, one more 8-float step if
 * left, the sum of the lanes, then the remaining < 8 terms in order. The 4-column loop
 * below runs exactly these operations per column, sharing only the loads of a. */
static inline float epi1(float v, float *ci, size_t i, size_t j, int beta, const float *bias_m,
                         const float *bias_n, int relu) {
    if (beta) v += *ci;
    if (bias_m) v += bias_m[i];
    if (bias_n) v += bias_n[j];
    if (relu) v = (0.0f > v) ? 0.0f : v;
    return v;
}

void fc_f32_gemv_t__avx2_fma(size_t m, size_t n, size_t k, const float *a, ptrdiff_t rs_a,
                             const float *w, ptrdiff_t ldw, float *c, size_t rs_c, int beta,
                             const float *bias_m, const float *bias_n, int relu) {
    const size_t k16 = k & ~(size_t)15;
    const int has8 = (k - k16) >= 8;
    const size_t kt = k16 + (has8 ? 8 : 0);
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *w0 = w + (ptrdiff_t)j * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        for (size_t i = 0; i < m; i++) {
            const float *x = a + (ptrdiff_t)i * rs_a;
            __m256 s0a = _mm256_setzero_ps(), s0b = _mm256_setzero_ps();
            __m256 s1a = _mm256_setzero_ps(), s1b = _mm256_setzero_ps();
            __m256 s2a = _mm256_setzero_ps(), s2b = _mm256_setzero_ps();
            __m256 s3a = _mm256_setzero_ps(), s3b = _mm256_setzero_ps();
            float r[4];
            size_t p;
            for (p = 0; p < k16; p += 16) {
                const __m256 xa = _mm256_loadu_ps(x + p), xb = _mm256_loadu_ps(x + p + 8);
                s0a = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w0 + p), s0a);
                s0b = _mm256_fmadd_ps(xb, _mm256_loadu_ps(w0 + p + 8), s0b);
                s1a = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w1 + p), s1a);
                s1b = _mm256_fmadd_ps(xb, _mm256_loadu_ps(w1 + p + 8), s1b);
                s2a = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w2 + p), s2a);
                s2b = _mm256_fmadd_ps(xb, _mm256_loadu_ps(w2 + p + 8), s2b);
                s3a = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w3 + p), s3a);
                s3b = _mm256_fmadd_ps(xb, _mm256_loadu_ps(w3 + p + 8), s3b);
            }
            if (has8) {
                const __m256 xa = _mm256_loadu_ps(x + k16);
                s0a = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w0 + k16), s0a);
                s1a = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w1 + k16), s1a);
                s2a = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w2 + k16), s2a);
                s3a = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w3 + k16), s3a);
            }
            r[0] = hsum8(_mm256_add_ps(s0a, s0b));
            r[1] = hsum8(_mm256_add_ps(s1a, s1b));
            r[2] = hsum8(_mm256_add_ps(s2a, s2b));
            r[3] = hsum8(_mm256_add_ps(s3a, s3b));
            for (p = kt; p < k; p++) {
                r[0] = fma1(x[p], w0[p], r[0]);
                r[1] = fma1(x[p], w1[p], r[1]);
                r[2] = fma1(x[p], w2[p], r[2]);
                r[3] = fma1(x[p], w3[p], r[3]);
            }
            for (int q = 0; q < 4; q++) {
                float *ci = c + i * rs_c + j + (size_t)q;
                *ci = epi1(r[q], ci, i, j + (size_t)q, beta, bias_m, bias_n, relu);
            }
        }
    }
    for (; j < n; j++) {
        const float *w0 = w + (ptrdiff_t)j * ldw;
        for (size_t i = 0; i < m; i++) {
            const float *x = a + (ptrdiff_t)i * rs_a;
            __m256 s0a = _mm256_setzero_ps(), s0b = _mm256_setzero_ps();
            float r0;
            size_t p;
            for (p = 0; p < k16; p += 16) {
                s0a = _mm256_fmadd_ps(_mm256_loadu_ps(x + p), _mm256_loadu_ps(w0 + p), s0a);
                s0b = _mm256_fmadd_ps(_mm256_loadu_ps(x + p + 8), _mm256_loadu_ps(w0 + p + 8), s0b);
            }
            if (has8)
                s0a = _mm256_fmadd_ps(_mm256_loadu_ps(x + k16), _mm256_loadu_ps(w0 + k16), s0a);
            r0 = hsum8(_mm256_add_ps(s0a, s0b));
            for (p = kt; p < k; p++) r0 = fma1(x[p], w0[p], r0);
            {
                float *ci = c + i * rs_c + j;
                *ci = epi1(r0, ci, i, j, beta, bias_m, bias_n, relu);
            }
        }
    }
}
