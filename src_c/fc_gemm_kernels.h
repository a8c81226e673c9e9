/* SGEMM micro-kernels and their packing routines (internal to fc_gemm.c).
 *
 * A micro-kernel computes one MR x NR tile of C from a packed A micro-panel
 * (kc x MR, stored p-major: a[p*MR + i]) and a packed B micro-panel (kc x NR, stored
 * p-major: b[p*NR + j]):
 *
 *     acc[i][j]  = sum_{p=0..kc-1} a[p*MR+i] * b[p*NR+j]     (in order of p, from 0)
 *     if beta:     acc += C                                    (C was the running sum)
 *     if epi:      acc += bias_m[i]; acc += bias_n[j]; relu    (only after the last KC block)
 *     C = acc
 *
 * Every element is one chain of multiply-adds in p order, so a tile gives the same bits
 * whichever thread runs it and whatever tile shape surrounds it. kc >= 1 always; C is
 * written with row stride rs_c (in floats) and unit column stride.
 *
 * Only the first `mr` rows (1 <= mr <= MR) are read from C and written (a kernel may
 * skip computing the others): the bottom edge of C needs no copy. Columns: with
 * 1 <= nr <= NR, the kernel reads (beta, bias_n) and writes the first
 * fc_gemm_width(nr, NR) columns, i.e. NR/2 when nr <= NR/2 (a half-width kernel saves
 * the work of the empty half), else NR. When that width exceeds nr, the driver passes a
 * local MR x NR tile as C and copies the valid part out.
 *
 * Kernel names follow fc_<datatype>_<op>_<MR>x<NR>__<isa>.
 */
#ifndef FC_GEMM_KERNELS_H
#define FC_GEMM_KERNELS_H

#include <stddef.h>

/* Fused epilogue of the last KC block. A NULL pointer means "no such bias". The bias
 * pointers address the MR (bias_m) and NR (bias_n) values of this tile; on an edge tile
 * the driver passes zero-padded copies, so a kernel may always read MR / NR values. */
typedef struct {
    const float *bias_m;
    const float *bias_n;
    int relu;
} fc_gemm_epilogue;

typedef void (*fc_gemm_ukernel_fn)(size_t mr, size_t nr, size_t kc, const float *a,
                                   const float *b, float *c, size_t rs_c, int beta,
                                   const fc_gemm_epilogue *epi);

/* Pack an mc x kc block of A (element (i, p) at a[i*rs_a + p*cs_a]) into MR-row
 * micro-panels; the rows of the last panel past mc are zero. */
typedef void (*fc_gemm_pack_a_fn)(size_t mc, size_t kc, const float *a, ptrdiff_t rs_a,
                                  ptrdiff_t cs_a, float *dst);
/* Pack a kc x nc block of B (element (p, j) at b[p*rs_b + j*cs_b]) into NR-column
 * micro-panels; the columns of the last panel past nc are zero. `pf` (may be NULL) is the
 * source of a later NR-column panel with the same strides (kc x NR valid elements): the
 * packer may prefetch it while it works, so memory streams in ahead of use. */
typedef void (*fc_gemm_pack_b_fn)(size_t kc, size_t nc, const float *b, ptrdiff_t rs_b,
                                  ptrdiff_t cs_b, float *dst, const float *pf);

/* The general case of every packer: one micro-panel of `width` lanes and kc steps, lane
 * l of step q read from src[l*lane_stride + q*step_stride] for l < valid, zero beyond. */
static inline void fc_gemm_pack_panel_strided(size_t width, size_t valid, size_t kc,
                                              const float *src, ptrdiff_t lane_stride,
                                              ptrdiff_t step_stride, float *dst) {
    for (size_t q = 0; q < kc; q++) {
        size_t l = 0;
        for (; l < valid; l++)
            dst[q * width + l] = src[(ptrdiff_t)l * lane_stride + (ptrdiff_t)q * step_stride];
        for (; l < width; l++) dst[q * width + l] = 0.0f;
    }
}

/* GEMV-style kernel for a few rows of A against B^T stored by rows (rs_b == 1: column j
 * of B is contiguous, as the weight of a linear layer): for each of the m rows i and the
 * n columns j,
 *     c[i*rs_c + j] = dot(a + i*rs_a, w + j*ldw, k) [+ C] [+ bias_m[i]] [+ bias_n[j]] [relu]
 * Each element is one fixed sequence of operations, whichever other columns it is
 * computed with, so any split of the columns over threads gives the same bits.
 * bias_m, bias_n: NULL or the values of these rows / columns. */
typedef void (*fc_gemv_fn)(size_t m, size_t n, size_t k, const float *a, ptrdiff_t rs_a,
                           const float *w, ptrdiff_t ldw, float *c, size_t rs_c, int beta,
                           const float *bias_m, const float *bias_n, int relu);

/* ---- portable C: kernels/scalar/fc_f32_gemm__scalar.c (always built) */
#define FC_GEMM_SCALAR_MR 4
#define FC_GEMM_SCALAR_NR 8
void fc_f32_gemm_4x8__scalar(size_t mr, size_t nr, size_t kc, const float *a, const float *b,
                             float *c, size_t rs_c, int beta, const fc_gemm_epilogue *epi);
void fc_f32_gemm_pack_a_4__scalar(size_t mc, size_t kc, const float *a, ptrdiff_t rs_a,
                                  ptrdiff_t cs_a, float *dst);
void fc_f32_gemm_pack_b_8__scalar(size_t kc, size_t nc, const float *b, ptrdiff_t rs_b,
                                  ptrdiff_t cs_b, float *dst, const float *pf);

void fc_f32_gemv_t__scalar(size_t m, size_t n, size_t k, const float *a, ptrdiff_t rs_a,
                           const float *w, ptrdiff_t ldw, float *c, size_t rs_c, int beta,
                           const float *bias_m, const float *bias_n, int relu);

/* ---- AVX2 + FMA: kernels/avx2/fc_f32_gemm_6x16__avx2_fma.c (compiled with -mavx2 -mfma;
 * call only when fc_active_isa() == FC_ISA_AVX2) */
#define FC_GEMM_AVX2_MR 6
#define FC_GEMM_AVX2_NR 16
void fc_f32_gemm_6x16__avx2_fma(size_t mr, size_t nr, size_t kc, const float *a,
                                const float *b, float *c, size_t rs_c, int beta,
                                const fc_gemm_epilogue *epi);
void fc_f32_gemm_pack_a_6__avx2(size_t mc, size_t kc, const float *a, ptrdiff_t rs_a,
                                ptrdiff_t cs_a, float *dst);
void fc_f32_gemm_pack_b_16__avx2(size_t kc, size_t nc, const float *b, ptrdiff_t rs_b,
                                 ptrdiff_t cs_b, float *dst, const float *pf);

static inline size_t fc_gemm_width(size_t nr, size_t NR_) { return nr > NR_ / 2 ? NR_ : NR_ / 2; }

void fc_f32_gemv_t__avx2_fma(size_t m, size_t n, size_t k, const float *a, ptrdiff_t rs_a,
                             const float *w, ptrdiff_t ldw, float *c, size_t rs_c, int beta,
                             const float *bias_m, const float *bias_n, int relu);

/* ---- AVX-512 F/VL/DQ/BW: kernels/avx512/fc_f32_gemm_14x32__avx512.c (compiled with the
 * AVX-512 flags; call only when fc_active_isa() == FC_ISA_AVX512). 14 rows x 2 zmm:
 * 28 accumulators + 2 B registers, the A values broadcast from memory into the FMAs. */
#define FC_GEMM_AVX512_MR 14
#define FC_GEMM_AVX512_NR 32
void fc_f32_gemm_14x32__avx512(size_t mr, size_t nr, size_t kc, const float *a,
                               const float *b, float *c, size_t rs_c, int beta,
                               const fc_gemm_epilogue *epi);
void fc_f32_gemm_pack_a_14__avx512(size_t mc, size_t kc, const float *a, ptrdiff_t rs_a,
                                   ptrdiff_t cs_a, float *dst);
void fc_f32_gemm_pack_b_32__avx512(size_t kc, size_t nc, const float *b, ptrdiff_t rs_b,
                                   ptrdiff_t cs_b, float *dst, const float *pf);
void fc_f32_gemv_t__avx512(size_t m, size_t n, size_t k, const float *a, ptrdiff_t rs_a,
                           const float *w, ptrdiff_t ldw, float *c, size_t rs_c, int beta,
                           const float *bias_m, const float *bias_n, int relu);

/* The largest MR and NR of any kernel (sizes the driver's local edge tile). */
#define FC_GEMM_MAX_MR 14
#define FC_GEMM_MAX_NR 32

#endif /* FC_GEMM_KERNELS_H */
