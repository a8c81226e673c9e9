/* Portable SGEMM micro-kernel (4 x 8 tile) and packing, plain C99.
 * Built with the default flags (SSE2 on x86-64): the fixed-size loops below are
 * simple enough for gcc to keep the 4x8 accumulator tile in vector registers. The
 * contract is documented in fc_gemm_kernels.h. No FMA contraction happens here (the
 * file is never compiled with -mfma), so each product is rounded, then added. */
#include "fc_gemm_kernels.h"
#include <string.h>

#define MR FC_GEMM_SCALAR_MR
#define NR FC_GEMM_SCALAR_NR

/* max(0, x) that keeps NaN (a NaN compares false) and -0.0, matching _mm256_max_ps(0, x) */
static inline float relu1(float x) { return (0.0f > x) ? 0.0f : x; }

void fc_f32_gemm_4x8__scalar(size_t mr, size_t nr, size_t kc, const float *a, const float *b,
                             float *c, size_t rs_c, int beta, const fc_gemm_epilogue *epi) {
    const size_t rows = mr < MR ? mr : MR;
    const int cols = nr > NR / 2 ? NR : NR / 2; /* columns read from C and written */
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = 0.0f;

    for (size_t p = 0; p < kc; p++) {
        const float *ap = a + p * MR;
        const float *bp = b + p * NR;
        for (int i = 0; i < MR; i++) {
            const float ai = ap[i];
            for (int j = 0; j < NR; j++) acc[i][j] += ai * bp[j];
        }
    }

    if (beta) {
        for (size_t i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) acc[i][j] += c[i * rs_c + j];
    }
    if (epi) {
        if (epi->bias_m) {
            for (int i = 0; i < MR; i++) {
                const float bi = epi->bias_m[i];
                for (int j = 0; j < NR; j++) acc[i][j] += bi;
            }
        }
        if (epi->bias_n) {
            for (int i = 0; i < MR; i++)
                for (int j = 0; j < cols; j++) acc[i][j] += epi->bias_n[j];
        }
        if (epi->relu) {
            for (int i = 0; i < MR; i++)
                for (int j = 0; j < NR; j++) acc[i][j] = relu1(acc[i][j]);
        }
    }
    for (size_t i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) c[i * rs_c + j] = acc[i][j];
}

void fc_f32_gemm_pack_a_4__scalar(size_t mc, size_t kc, const float *a, ptrdiff_t rs_a,
                                  ptrdiff_t cs_a, float *dst) {
    for (size_t i0 = 0; i0 < mc; i0 += MR) {
        const size_t mr = (mc - i0 < MR) ? mc - i0 : MR;
        const float *src = a + (ptrdiff_t)i0 * rs_a;
        if (mr == MR && cs_a == 1) {
            for (size_t p = 0; p < kc; p++)
                for (int i = 0; i < MR; i++) dst[p * MR + i] = src[i * rs_a + (ptrdiff_t)p];
        } else {
            fc_gemm_pack_panel_strided(MR, mr, kc, src, rs_a, cs_a, dst);
        }
        dst += kc * MR;
    }
}

void fc_f32_gemm_pack_b_8__scalar(size_t kc, size_t nc, const float *b, ptrdiff_t rs_b,
                                  ptrdiff_t cs_b, float *dst, const float *pf) {
    (void)pf; /* no portable prefetch in C99 */
    for (size_t j0 = 0; j0 < nc; j0 += NR) {
        const size_t nr = (nc - j0 < NR) ? nc - j0 : NR;
        const float *src = b + (ptrdiff_t)j0 * cs_b;
        if (nr == NR && cs_b == 1) {
            for (size_t p = 0; p < kc; p++)
                memcpy(dst + p * NR, src + (ptrdiff_t)p * rs_b, NR * sizeof(float));
        } else {
            fc_gemm_pack_panel_strided(NR, nr, kc, src, cs_b, rs_b, dst);
        }
        dst += kc * NR;
    }
}

/* Per element: four interleaved partial sums over k (k = 4q + r: sums of p = 0, 1, 2, 3
 * mod 4 for the first 4q terms), combined as (s0 + s1) + (s2 + s3), then the r
 * remaining terms in order. */
static float dot_scalar(const float *x, const float *y, size_t k) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f, s;
    size_t p = 0;
    for (; p + 4 <= k; p += 4) {
        s0 += x[p] * y[p];
        s1 += x[p + 1] * y[p + 1];
        s2 += x[p + 2] * y[p + 2];
        s3 += x[p + 3] * y[p + 3];
    }
    s = (s0 + s1) + (s2 + s3);
    for (; p < k; p++) s += x[p] * y[p];
    return s;
}

void fc_f32_gemv_t__scalar(size_t m, size_t n, size_t k, const float *a, ptrdiff_t rs_a,
                           const float *w, ptrdiff_t ldw, float *c, size_t rs_c, int beta,
                           const float *bias_m, const float *bias_n, int relu) {
    for (size_t j = 0; j < n; j++) {
        const float *wj = w + (ptrdiff_t)j * ldw;
        for (size_t i = 0; i < m; i++) {
            float v = dot_scalar(a + (ptrdiff_t)i * rs_a, wj, k);
            float *ci = c + i * rs_c + j;
            if (beta) v += *ci;
            if (bias_m) v += bias_m[i];
            if (bias_n) v += bias_n[j];
            if (relu) v = relu1(v);
            *ci = v;
        }
    }
}
