/* Internal SGEMM entry points (not part of the public C API): the same packed five-loop
 * driver as fc_sgemm, with
 *   - A pre-packed once (fc_sgemm_pack_a) and reused by many calls (the weights of a
 *     convolution across images, column blocks and, later, across model runs), and
 *   - B produced by a callback that writes packed micro-panels directly (the implicit
 *     im2col of fc_conv_im2col.c: no im2col matrix in memory at all), or
 *   - B already packed by the caller (the Winograd input transform of
 *     fc_conv_winograd.c writes its panels directly).
 * Every element of C is computed by exactly the same operations as fc_sgemm would with
 * the same m, n, k and ISA (same KC blocking, no split reduction), so the result does not
 * depend on the thread count. */
#ifndef FC_GEMM_INTERNAL_H
#define FC_GEMM_INTERNAL_H

#include "fc_internal.h"

/* Write the packed B micro-panels of rows [k0, k0 + kc) and columns [j0, j0 + nc) of the
 * (virtual) k x n matrix B: cdiv(nc, nr) panels one after the other, panel q holding
 * columns j0 + q*nr ... as dst[q*kc*nr + p*nr + jj] (p: row k0 + p), columns past nc set
 * to 0. nr is the micro-kernel width of the ISA the GEMM runs (16: AVX2, 8: scalar); dst
 * is 32-byte aligned. Called concurrently from several threads on disjoint panels. */
typedef void (*fc_gemm_packb_fn)(const void *ctx, size_t k0, size_t kc, size_t j0,
                                 size_t nc, size_t nr, float *dst);

typedef struct {
    fc_isa isa;            /* the ISA to run (read once by the caller, fc_active_isa()) */
    int64_t m, n, k;
    /* A: either apacked (from fc_sgemm_pack_a with the same isa, m, k) or a/rs_a/cs_a */
    const float *apacked;
    const float *a; int64_t rs_a, cs_a;
    /* B: either the callback or b/rs_b/cs_b */
    fc_gemm_packb_fn pack_b; const void *pack_b_ctx;
    const float *b; int64_t rs_b, cs_b;
    float *c; int64_t rs_c;
    const float *bias_m, *bias_n;
    int relu, accumulate, num_threads;
    /* B already packed (takes precedence over pack_b and b): panel q of nr columns
     * (fc_sgemm_nr(isa)) holds columns q*nr ... as bpacked[q*k*nr + p*nr + jj] for all k
     * rows, i.e. the panels a pack_b callback would write for the whole of k; 32-byte
     * aligned, n rounded up to nr columns readable. With apacked too, fc_sgemm_ex needs
     * no workspace (workspace may be NULL). */
    const float *bpacked;
} fc_gemm_ex_args;

/* The micro-kernel width nr of an ISA: the columns of a packed B panel. */
size_t fc_sgemm_nr(fc_isa isa);

/* Bytes of a packed A of m x k for any ISA (the largest): */
fc_status fc_sgemm_packed_a_size(int64_t m, int64_t k, size_t *bytes);
/* Pack A (element (i, p) at a[i*rs_a + p*cs_a]) for the given ISA into dst (aligned to
 * FC_ALIGN, fc_sgemm_packed_a_size bytes). Layout: for each KC block starting at pc, at
 * dst + mpad*pc, the MR-row micro-panels of that block (kc x MR each). */
fc_status fc_sgemm_pack_a(fc_isa isa, int64_t m, int64_t k, const float *a, int64_t rs_a,
                          int64_t cs_a, float *dst, int num_threads);

/* 1 if packing A beforehand saves work: A would otherwise be packed again for each of
 * `uses` GEMMs of n columns (e.g. the images of a batch), each column block, or thread. */
int fc_sgemm_packed_a_pays(int64_t m, int64_t n, int64_t uses, int num_threads);

/* Workspace of fc_sgemm_ex for these sizes (any ISA), with or without a pre-packed A. */
fc_status fc_sgemm_ex_workspace_size(int64_t m, int64_t n, int64_t k, int num_threads,
                                     int apacked, size_t *bytes);
fc_status fc_sgemm_ex(const fc_gemm_ex_args *args, void *workspace, size_t workspace_bytes);

#endif /* FC_GEMM_INTERNAL_H */
