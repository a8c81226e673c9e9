/* AVX-512 SGEMM micro-kernel (14 x 32 tile), its packing routines and the GEMV path.
 *
 * Compiled with the AVX-512 flags (this folder only, see setup.py). Reached only through
 * fc_gemm.c when fc_active_isa() == FC_ISA_AVX512, i.e. after CPUID/XGETBV said yes.
 *
 * Register plan of the inner loop (32 zmm): 28 accumulators (14 rows x 2 halves of 32
 * columns), 2 for the B row of this k step; the A values are broadcast from memory as
 * the third operand of the FMAs ({1to16}), so they need no register. Per k step: 2
 * aligned 64-byte B loads and 28 FMAs with a broadcast load each; two FMA pipes give 14
 * cycles per step, more than the loads need. The contract is in fc_gemm_kernels.h: every
 * element is one chain of FMAs in k order, then + C, + bias_m, + bias_n, relu. */
#include "kernels/fc_transpose8_avx.h"
#include "fc_gemm_kernels.h"
#include <immintrin.h>
#include <string.h>

#define MR FC_GEMM_AVX512_MR
#define NR FC_GEMM_AVX512_NR
/* How far ahead (floats) the micro-kernel prefetches its A panel: 8 KiB. Measured
 * (1 thread, prepacked weights, batch 1, 2026-12-02): with no prefetch a 512->512 3x3
 * conv on a 4x4 map streamed its 9.4 MB of weights at 6.6 GB/s from memory; 256, 512,
 * 1024, 2048 and 4096 floats ahead gave 7.9, 8.8, 9.3, 9.4 and 8.9 GB/s. Large GEMMs
 * (A from L2) did not change or got up to 12% faster. */
#ifndef FC_GEMM_AVX512_A_PF
#define FC_GEMM_AVX512_A_PF 2048
#endif

/* The kernel body for `mr` rows (1..14) and nv = 1 or 2 zmm of columns, both constants
 * at every call site, so unused accumulators and branches fold away. Rows past mr are
 * neither computed nor read nor written; the packed A panel keeps its MR floats per k
 * step. Every element is computed exactly as in the 14-row kernel. */
static inline __attribute__((always_inline)) void
gemm_body(const size_t mr, const int nv, size_t kc, const float *a, const float *b, float *c,
          size_t rs_c, int beta, const fc_gemm_epilogue *epi) {
    __m512 c0a = _mm512_setzero_ps(), c0b = _mm512_setzero_ps();
    __m512 c1a = _mm512_setzero_ps(), c1b = _mm512_setzero_ps();
    __m512 c2a = _mm512_setzero_ps(), c2b = _mm512_setzero_ps();
    __m512 c3a = _mm512_setzero_ps(), c3b = _mm512_setzero_ps();
    __m512 c4a = _mm512_setzero_ps(), c4b = _mm512_setzero_ps();
    __m512 c5a = _mm512_setzero_ps(), c5b = _mm512_setzero_ps();
    __m512 c6a = _mm512_setzero_ps(), c6b = _mm512_setzero_ps();
    __m512 c7a = _mm512_setzero_ps(), c7b = _mm512_setzero_ps();
    __m512 c8a = _mm512_setzero_ps(), c8b = _mm512_setzero_ps();
    __m512 c9a = _mm512_setzero_ps(), c9b = _mm512_setzero_ps();
    __m512 c10a = _mm512_setzero_ps(), c10b = _mm512_setzero_ps();
    __m512 c11a = _mm512_setzero_ps(), c11b = _mm512_setzero_ps();
    __m512 c12a = _mm512_setzero_ps(), c12b = _mm512_setzero_ps();
    __m512 c13a = _mm512_setzero_ps(), c13b = _mm512_setzero_ps();
    float *c0 = c;
    float *c1 = c0 + rs_c;
    float *c2 = c1 + rs_c;
    float *c3 = c2 + rs_c;
    float *c4 = c3 + rs_c;
    float *c5 = c4 + rs_c;
    float *c6 = c5 + rs_c;
    float *c7 = c6 + rs_c;
    float *c8 = c7 + rs_c;
    float *c9 = c8 + rs_c;
    float *c10 = c9 + rs_c;
    float *c11 = c10 + rs_c;
    float *c12 = c11 + rs_c;
    float *c13 = c12 + rs_c;

    /* C is touched only after the k loop: start bringing it in now (a row of 32 floats
     * spans two or three lines) */
#define FC_PF_ROW(r, x0, x1, cr)                                                         \
    if (mr > r) {                                                                        \
        _mm_prefetch((const char *)(cr), _MM_HINT_T0);                                   \
        if (nv > 1) _mm_prefetch((const char *)((cr) + 16), _MM_HINT_T0);                \
        _mm_prefetch((const char *)((cr) + 16 * nv - 1), _MM_HINT_T0);                   \
    }
    FC_PF_ROW(0, c0a, c0b, c0) FC_PF_ROW(1, c1a, c1b, c1) FC_PF_ROW(2, c2a, c2b, c2) FC_PF_ROW(3, c3a, c3b, c3) FC_PF_ROW(4, c4a, c4b, c4) FC_PF_ROW(5, c5a, c5b, c5) FC_PF_ROW(6, c6a, c6b, c6) FC_PF_ROW(7, c7a, c7b, c7) FC_PF_ROW(8, c8a, c8b, c8) FC_PF_ROW(9, c9a, c9b, c9) FC_PF_ROW(10, c10a, c10b, c10) FC_PF_ROW(11, c11a, c11b, c11) FC_PF_ROW(12, c12a, c12b, c12) FC_PF_ROW(13, c13a, c13b, c13)
#undef FC_PF_ROW

    /* One k step: b0/b1 hold B[p, 0:16] and B[p, 16:32]; A[p, 0:mr] is at ap. */
#define FC_ROW(r, x0, x1, ap)                                                            \
    if (mr > r) {                                                                        \
        const __m512 av = _mm512_set1_ps((ap)[r]);                                       \
        x0 = _mm512_fmadd_ps(av, b0, x0);                                                \
        if (nv > 1) x1 = _mm512_fmadd_ps(av, b1, x1);                                    \
    }
#define FC_STEP(ap, bp)                                                                  \
    do {                                                                                 \
        const __m512 b0 = _mm512_load_ps(bp);                                            \
        const __m512 b1 = nv > 1 ? _mm512_load_ps((bp) + 16) : _mm512_setzero_ps();     \
        FC_ROW(0, c0a, c0b, ap) \
        FC_ROW(1, c1a, c1b, ap) \
        FC_ROW(2, c2a, c2b, ap) \
        FC_ROW(3, c3a, c3b, ap) \
        FC_ROW(4, c4a, c4b, ap) \
        FC_ROW(5, c5a, c5b, ap) \
        FC_ROW(6, c6a, c6b, ap) \
        FC_ROW(7, c7a, c7b, ap) \
        FC_ROW(8, c8a, c8b, ap) \
        FC_ROW(9, c9a, c9b, ap) \
        FC_ROW(10, c10a, c10b, ap) \
        FC_ROW(11, c11a, c11b, ap) \
        FC_ROW(12, c12a, c12b, ap) \
        FC_ROW(13, c13a, c13b, ap) \
    } while (0)

    while (kc >= 4) {
        /* A is read once per call and, for a prepacked A on a few columns (the weights of
         * a layer on a tiny map), straight from memory: ask for it ahead of the hardware
         * prefetcher. 4 steps use 56 floats; 4 lines cover them. */
        _mm_prefetch((const char *)(a + FC_GEMM_AVX512_A_PF), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + FC_GEMM_AVX512_A_PF + 16), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + FC_GEMM_AVX512_A_PF + 32), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + FC_GEMM_AVX512_A_PF + 48), _MM_HINT_T0);
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

#define FC_ALL_ROWS(OP) \
    OP(0, c0a, c0b, c0) \
    OP(1, c1a, c1b, c1) \
    OP(2, c2a, c2b, c2) \
    OP(3, c3a, c3b, c3) \
    OP(4, c4a, c4b, c4) \
    OP(5, c5a, c5b, c5) \
    OP(6, c6a, c6b, c6) \
    OP(7, c7a, c7b, c7) \
    OP(8, c8a, c8b, c8) \
    OP(9, c9a, c9b, c9) \
    OP(10, c10a, c10b, c10) \
    OP(11, c11a, c11b, c11) \
    OP(12, c12a, c12b, c12) \
    OP(13, c13a, c13b, c13)

    if (beta) {
#define FC_ADD_C(r, x0, x1, cr)                                                          \
    if (mr > r) {                                                                        \
        x0 = _mm512_add_ps(x0, _mm512_loadu_ps(cr));                                     \
        if (nv > 1) x1 = _mm512_add_ps(x1, _mm512_loadu_ps((cr) + 16));                  \
    }
        FC_ALL_ROWS(FC_ADD_C)
#undef FC_ADD_C
    }
    if (epi) {
        if (epi->bias_m) {
            const float *bm = epi->bias_m;
#define FC_ADD_BM(r, x0, x1, cr)                                                         \
    if (mr > r) {                                                                        \
        const __m512 v = _mm512_set1_ps(bm[r]);                                          \
        x0 = _mm512_add_ps(x0, v);                                                       \
        if (nv > 1) x1 = _mm512_add_ps(x1, v);                                           \
    }
            FC_ALL_ROWS(FC_ADD_BM)
#undef FC_ADD_BM
        }
        if (epi->bias_n) {
            const __m512 v0 = _mm512_loadu_ps(epi->bias_n);
            const __m512 v1 = nv > 1 ? _mm512_loadu_ps(epi->bias_n + 16) : _mm512_setzero_ps();
#define FC_ADD_BN(r, x0, x1, cr)                                                         \
    if (mr > r) {                                                                        \
        x0 = _mm512_add_ps(x0, v0);                                                      \
        if (nv > 1) x1 = _mm512_add_ps(x1, v1);                                          \
    }
            FC_ALL_ROWS(FC_ADD_BN)
#undef FC_ADD_BN
        }
        if (epi->relu) {
            /* maxps returns its second operand when either is NaN: max(0, x) keeps NaN */
            const __m512 z = _mm512_setzero_ps();
#define FC_RELU(r, x0, x1, cr)                                                           \
    if (mr > r) {                                                                        \
        x0 = _mm512_max_ps(z, x0);                                                       \
        if (nv > 1) x1 = _mm512_max_ps(z, x1);                                           \
    }
            FC_ALL_ROWS(FC_RELU)
#undef FC_RELU
        }
    }
#define FC_STORE(r, x0, x1, cr)                                                          \
    if (mr > r) {                                                                        \
        _mm512_storeu_ps(cr, x0);                                                        \
        if (nv > 1) _mm512_storeu_ps((cr) + 16, x1);                                     \
    }
    FC_ALL_ROWS(FC_STORE)
#undef FC_STORE
#undef FC_ALL_ROWS
}

/* One instance per row count and width (32 or 16 columns); 14 x 32 is the hot path. */
typedef void (*tile_fn)(size_t kc, const float *a, const float *b, float *c, size_t rs_c,
                        int beta, const fc_gemm_epilogue *epi);
#define FC_GEMM_INSTANCE(R)                                                              \
    static void gemm_##R##x32(size_t kc, const float *a, const float *b, float *c,       \
                              size_t rs_c, int beta, const fc_gemm_epilogue *epi) {      \
        gemm_body(R, 2, kc, a, b, c, rs_c, beta, epi);                                   \
    }                                                                                    \
    static void gemm_##R##x16(size_t kc, const float *a, const float *b, float *c,       \
                              size_t rs_c, int beta, const fc_gemm_epilogue *epi) {      \
        gemm_body(R, 1, kc, a, b, c, rs_c, beta, epi);                                   \
    }
FC_GEMM_INSTANCE(1)
FC_GEMM_INSTANCE(2)
FC_GEMM_INSTANCE(3)
FC_GEMM_INSTANCE(4)
FC_GEMM_INSTANCE(5)
FC_GEMM_INSTANCE(6)
FC_GEMM_INSTANCE(7)
FC_GEMM_INSTANCE(8)
FC_GEMM_INSTANCE(9)
FC_GEMM_INSTANCE(10)
FC_GEMM_INSTANCE(11)
FC_GEMM_INSTANCE(12)
FC_GEMM_INSTANCE(13)
FC_GEMM_INSTANCE(14)
#undef FC_GEMM_INSTANCE

static const tile_fn tiles32[MR] = {gemm_1x32, gemm_2x32, gemm_3x32, gemm_4x32, gemm_5x32, gemm_6x32, gemm_7x32, gemm_8x32, gemm_9x32, gemm_10x32, gemm_11x32, gemm_12x32, gemm_13x32, gemm_14x32};
static const tile_fn tiles16[MR] = {gemm_1x16, gemm_2x16, gemm_3x16, gemm_4x16, gemm_5x16, gemm_6x16, gemm_7x16, gemm_8x16, gemm_9x16, gemm_10x16, gemm_11x16, gemm_12x16, gemm_13x16, gemm_14x16};

void fc_f32_gemm_14x32__avx512(size_t mr, size_t nr, size_t kc, const float *a,
                               const float *b, float *c, size_t rs_c, int beta,
                               const fc_gemm_epilogue *epi) {
    const size_t r = (mr >= 1 && mr <= MR) ? mr - 1 : MR - 1;
    if (nr > NR / 2)
        tiles32[r](kc, a, b, c, rs_c, beta, epi);
    else
        tiles16[r](kc, a, b, c, rs_c, beta, epi);
}

/* ------------------------------------------------------------------ packing */

/* Row-major A (conv weights, cs_a == 1): a 14-row panel, 16 k steps at a time. Each row
 * segment is one zmm load; the 14 x 16 block is written transposed through a small
 * stack tile, which stays in L1. */
/* The transpose tile lives in thread-local storage, not on the stack: gcc stores to a
 * local tile with aligned zmm moves, and AddressSanitizer's fake stack (detect_stack_use_
 * after_return) does not keep 64-byte alignment, which made those stores fault under
 * scripts/sanitize.sh. */
static _Thread_local float pack_a_tile[MR][16] __attribute__((aligned(64)));

void fc_f32_gemm_pack_a_14__avx512(size_t mc, size_t kc, const float *a, ptrdiff_t rs_a,
                                   ptrdiff_t cs_a, float *dst) {
    for (size_t i0 = 0; i0 < mc; i0 += MR) {
        const size_t mr = (mc - i0 < MR) ? mc - i0 : MR;
        const float *src = a + (ptrdiff_t)i0 * rs_a;
        if (mr == MR && cs_a == 1) {
            float *d = dst;
            size_t p = 0;
            const int more = (i0 + 2 * MR <= mc);
            const float *nx = src + MR * rs_a;
            for (; p + 16 <= kc; p += 16, d += 16 * MR) {
                float(*t)[16] = pack_a_tile;
                for (size_t i = 0; i < MR; i++) {
                    if (more) _mm_prefetch((const char *)(nx + (ptrdiff_t)i * rs_a + p), _MM_HINT_T0);
                    _mm512_storeu_ps(t[i], _mm512_loadu_ps(src + (ptrdiff_t)i * rs_a + p));
                }
                for (size_t q = 0; q < 16; q++)
                    for (size_t i = 0; i < MR; i++) d[q * MR + i] = t[i][q];
            }
            for (; p < kc; p++, d += MR)
                for (size_t i = 0; i < MR; i++) d[i] = src[(ptrdiff_t)i * rs_a + (ptrdiff_t)p];
        } else if (mr == MR && rs_a == 1) {
            for (size_t p = 0; p < kc; p++)
                memcpy(dst + p * MR, src + (ptrdiff_t)p * cs_a, MR * sizeof(float));
        } else {
            fc_gemm_pack_panel_strided(MR, mr, kc, src, rs_a, cs_a, dst);
        }
        dst += kc * MR;
    }
}


void fc_f32_gemm_pack_b_32__avx512(size_t kc, size_t nc, const float *b, ptrdiff_t rs_b,
                                   ptrdiff_t cs_b, float *dst, const float *pf) {
    for (size_t j0 = 0; j0 < nc; j0 += NR) {
        const size_t nr = (nc - j0 < NR) ? nc - j0 : NR;
        const float *src = b + (ptrdiff_t)j0 * cs_b;
        if (nr == NR && cs_b == 1) {
            for (size_t p = 0; p < kc; p++) {
                const float *s = src + (ptrdiff_t)p * rs_b;
                if (pf) {
                    const float *f = pf + (ptrdiff_t)p * rs_b;
                    _mm_prefetch((const char *)f, _MM_HINT_T2); /* into L2 */
                    _mm_prefetch((const char *)(f + 16), _MM_HINT_T2);
                    _mm_prefetch((const char *)(f + NR - 1), _MM_HINT_T2);
                }
                _mm512_store_ps(dst + p * NR, _mm512_loadu_ps(s));
                _mm512_store_ps(dst + p * NR + 16, _mm512_loadu_ps(s + 16));
            }
        } else if (nr == NR && rs_b == 1) {
            /* B^T stored row-major (the weight of a linear layer): transpose 8 x 8 blocks */
            size_t p = 0;
            for (; p + 8 <= kc; p += 8) {
                if (pf && (p & 15) == 0)
                    for (size_t j = 0; j < NR; j++)
                        _mm_prefetch((const char *)(pf + (ptrdiff_t)j * cs_b + (ptrdiff_t)p), _MM_HINT_T0);
                for (size_t jb = 0; jb < NR; jb += 8)
                    fc_transpose8_store(src + (ptrdiff_t)jb * cs_b + p, cs_b, dst + p * NR + jb, NR);
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

/* Per element: two 16-lane accumulators over 32-float steps, one more 16-float step if
 * left, the last k % 16 terms as one masked step into the second accumulator (masked
 * lanes load 0 and read no memory), then the two summed and reduced in a fixed order.
 * The 4-column loop runs exactly these operations per column, sharing only the loads of
 * a, so any split of the columns gives the same bits. */
static inline float hsum16(__m512 v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

static inline float epi1(float v, float *ci, size_t i, size_t j, int beta, const float *bias_m,
                         const float *bias_n, int relu) {
    if (beta) v += *ci;
    if (bias_m) v += bias_m[i];
    if (bias_n) v += bias_n[j];
    if (relu) v = (0.0f > v) ? 0.0f : v;
    return v;
}

void fc_f32_gemv_t__avx512(size_t m, size_t n, size_t k, const float *a, ptrdiff_t rs_a,
                           const float *w, ptrdiff_t ldw, float *c, size_t rs_c, int beta,
                           const float *bias_m, const float *bias_n, int relu) {
    const size_t k32 = k & ~(size_t)31;
    const int has16 = (k - k32) >= 16;
    const size_t kt = k32 + (has16 ? 16 : 0);
    const __mmask16 tm = (__mmask16)((1u << (k - kt)) - 1u);
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *w0 = w + (ptrdiff_t)j * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        for (size_t i = 0; i < m; i++) {
            const float *x = a + (ptrdiff_t)i * rs_a;
            __m512 s0a = _mm512_setzero_ps(), s0b = _mm512_setzero_ps();
            __m512 s1a = _mm512_setzero_ps(), s1b = _mm512_setzero_ps();
            __m512 s2a = _mm512_setzero_ps(), s2b = _mm512_setzero_ps();
            __m512 s3a = _mm512_setzero_ps(), s3b = _mm512_setzero_ps();
            float r[4];
            size_t p;
            for (p = 0; p < k32; p += 32) {
                const __m512 xa = _mm512_loadu_ps(x + p), xb = _mm512_loadu_ps(x + p + 16);
                s0a = _mm512_fmadd_ps(xa, _mm512_loadu_ps(w0 + p), s0a);
                s0b = _mm512_fmadd_ps(xb, _mm512_loadu_ps(w0 + p + 16), s0b);
                s1a = _mm512_fmadd_ps(xa, _mm512_loadu_ps(w1 + p), s1a);
                s1b = _mm512_fmadd_ps(xb, _mm512_loadu_ps(w1 + p + 16), s1b);
                s2a = _mm512_fmadd_ps(xa, _mm512_loadu_ps(w2 + p), s2a);
                s2b = _mm512_fmadd_ps(xb, _mm512_loadu_ps(w2 + p + 16), s2b);
                s3a = _mm512_fmadd_ps(xa, _mm512_loadu_ps(w3 + p), s3a);
                s3b = _mm512_fmadd_ps(xb, _mm512_loadu_ps(w3 + p + 16), s3b);
            }
            if (has16) {
                const __m512 xa = _mm512_loadu_ps(x + k32);
                s0a = _mm512_fmadd_ps(xa, _mm512_loadu_ps(w0 + k32), s0a);
                s1a = _mm512_fmadd_ps(xa, _mm512_loadu_ps(w1 + k32), s1a);
                s2a = _mm512_fmadd_ps(xa, _mm512_loadu_ps(w2 + k32), s2a);
                s3a = _mm512_fmadd_ps(xa, _mm512_loadu_ps(w3 + k32), s3a);
            }
            if (tm) {
                const __m512 xt = _mm512_maskz_loadu_ps(tm, x + kt);
                s0b = _mm512_fmadd_ps(xt, _mm512_maskz_loadu_ps(tm, w0 + kt), s0b);
                s1b = _mm512_fmadd_ps(xt, _mm512_maskz_loadu_ps(tm, w1 + kt), s1b);
                s2b = _mm512_fmadd_ps(xt, _mm512_maskz_loadu_ps(tm, w2 + kt), s2b);
                s3b = _mm512_fmadd_ps(xt, _mm512_maskz_loadu_ps(tm, w3 + kt), s3b);
            }
            r[0] = hsum16(_mm512_add_ps(s0a, s0b));
            r[1] = hsum16(_mm512_add_ps(s1a, s1b));
            r[2] = hsum16(_mm512_add_ps(s2a, s2b));
            r[3] = hsum16(_mm512_add_ps(s3a, s3b));
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
            __m512 s0a = _mm512_setzero_ps(), s0b = _mm512_setzero_ps();
            size_t p;
            for (p = 0; p < k32; p += 32) {
                s0a = _mm512_fmadd_ps(_mm512_loadu_ps(x + p), _mm512_loadu_ps(w0 + p), s0a);
                s0b = _mm512_fmadd_ps(_mm512_loadu_ps(x + p + 16), _mm512_loadu_ps(w0 + p + 16), s0b);
            }
            if (has16)
                s0a = _mm512_fmadd_ps(_mm512_loadu_ps(x + k32), _mm512_loadu_ps(w0 + k32), s0a);
            if (tm)
                s0b = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, x + kt),
                                      _mm512_maskz_loadu_ps(tm, w0 + kt), s0b);
            {
                float *ci = c + i * rs_c + j;
                *ci = epi1(hsum16(_mm512_add_ps(s0a, s0b)), ci, i, j, beta, bias_m, bias_n, relu);
            }
        }
    }
}
