/* Packed SGEMM: the portable BLIS-style five-loop driver.
 *
 *   jc: columns of C in blocks of NC
 *     pc: the reduction in blocks of KC            (B block: KC x NC, packed, shared)
 *       ic: rows of C in blocks of MC              (A block: MC x KC, packed, per thread)
 *         jr: NR-column micro-panels of the B block
 *           ir: MR-row micro-panels of the A block -> one micro-kernel call
 *
 * Threads: the (row tiles) x (B micro-panels) space of each jc block is cut into a
 * tm x tn grid of rectangles, one per thread. The reduction loop pc is never split and
 * its blocking KC depends on k only, so every element of C is the same sequence of
 * operations for every team size: results are bit-identical for 1, 2, 3... threads.
 *
 * B packing: when every thread owns whole B micro-panels (tm == 1, the usual case for
 * short-and-wide im2col GEMMs), each thread packs its own panels just before it first
 * uses them, prefetching the source of a panel a few steps ahead, so the streaming of B
 * from memory overlaps the arithmetic and needs no barrier. Otherwise (several thread rows
 * share a panel) the team packs the block together, then meets at a barrier.
 *
 * Edge tiles (m % MR, n % NR) run the full micro-kernel into a local MR x NR tile and
 * copy out the valid part, so no kernel ever reads or writes past A, B or C.
 *
 * Epilogue (fused into the micro-kernel of the last KC block): C = [C +] A*B, then
 * + bias_m[i], then + bias_n[j], then relu. The first KC block overwrites C (or adds to it
 * with accumulate); the later ones add to it.
 */
#include "fc_internal.h"
#include "fc_gemm_kernels.h"
#include "fc_gemm_internal.h"
#include <string.h>

/* ------------------------------------------------------------------ blocking
 * Per ISA (gemm_impl). Scalar and AVX2: tuned for AMD EPYC (Zen 4): 32 KiB L1d, 1 MiB L2
 * per core, 32 MiB L3.
 *   KC: the B micro-panel (KC x 16 floats = 24 KiB at KC = 384) stays in L1 while the
 *       ir loop runs, next to one A micro-panel (9 KiB).
 *   MC: the packed A block (MC x KC) lives in L2 (168 x 384 x 4 = 252 KiB).
 *   NC: the packed B block (KC x NC) lives in L3 (384 x 4080 x 4 = 6 MiB).
 * The k loop is cut into equal blocks of at most KC_MAX, a function of k alone. */
#ifndef FC_GEMM_KC_MAX
#define FC_GEMM_KC_MAX 384
#endif
#ifndef FC_GEMM_MC_MAX
#define FC_GEMM_MC_MAX 168 /* multiple of 6 and of 4 */
#endif
#ifndef FC_GEMM_NC_MAX
#define FC_GEMM_NC_MAX 4080 /* multiple of 16 and of 8 */
#endif
/* AVX-512 (14 x 32 kernel), tuned on a Sapphire-Rapids-class Xeon (48 KiB L1d, 2 MiB L2):
 *   KC: the B micro-panel (KC x 32 floats = 32 KiB at KC = 256) stays in L1 next to the
 *       A micro-panel (14 KiB) the ir loop streams from L2.
 *   MC: the packed A block (MC x KC, 336 x 256 x 4 = 336 KiB) lives in L2.
 *   NC: a multiple of 32. */
#ifndef FC_GEMM_AVX512_KC_MAX
#define FC_GEMM_AVX512_KC_MAX 256
#endif
#ifndef FC_GEMM_AVX512_MC_MAX
#define FC_GEMM_AVX512_MC_MAX 336 /* multiple of 14 */
#endif
#ifndef FC_GEMM_AVX512_NC_MAX
#define FC_GEMM_AVX512_NC_MAX 4096 /* multiple of 32 */
#endif
/* A GEMM with at most this many rows, B^T stored by rows (rs_b == 1) and A rows
 * contiguous (cs_a == 1) -- a linear layer on a small batch -- runs as dot products
 * straight from the operands: packing would cost as much as the arithmetic. */
#ifndef FC_GEMV_MAX_M
#define FC_GEMV_MAX_M 2
#endif
/* How many B micro-panels ahead the just-in-time packer prefetches. */
#define FC_GEMM_PF_PANELS 2

typedef struct {
    size_t mr, nr;
    size_t kc_max, mc_max, nc_max; /* blocking; mc_max a multiple of mr, nc_max of nr */
    fc_gemv_fn gemv;
    fc_gemm_ukernel_fn kernel;
    fc_gemm_pack_a_fn pack_a;
    fc_gemm_pack_b_fn pack_b;
} gemm_impl;

static void gemm_get_impl(fc_isa isa, gemm_impl *g) {
    g->kc_max = FC_GEMM_KC_MAX;
    g->mc_max = FC_GEMM_MC_MAX;
    g->nc_max = FC_GEMM_NC_MAX;
    if (isa == FC_ISA_AVX512) {
        g->mr = FC_GEMM_AVX512_MR;
        g->nr = FC_GEMM_AVX512_NR;
        g->kc_max = FC_GEMM_AVX512_KC_MAX;
        g->mc_max = FC_GEMM_AVX512_MC_MAX;
        g->nc_max = FC_GEMM_AVX512_NC_MAX;
        g->kernel = fc_f32_gemm_14x32__avx512;
        g->gemv = fc_f32_gemv_t__avx512;
        g->pack_a = fc_f32_gemm_pack_a_14__avx512;
        g->pack_b = fc_f32_gemm_pack_b_32__avx512;
    } else if (isa == FC_ISA_AVX2) {
        g->mr = FC_GEMM_AVX2_MR;
        g->nr = FC_GEMM_AVX2_NR;
        g->kernel = fc_f32_gemm_6x16__avx2_fma;
        g->gemv = fc_f32_gemv_t__avx2_fma;
        g->pack_a = fc_f32_gemm_pack_a_6__avx2;
        g->pack_b = fc_f32_gemm_pack_b_16__avx2;
    } else {
        g->mr = FC_GEMM_SCALAR_MR;
        g->nr = FC_GEMM_SCALAR_NR;
        g->kernel = fc_f32_gemm_4x8__scalar;
        g->gemv = fc_f32_gemv_t__scalar;
        g->pack_a = fc_f32_gemm_pack_a_4__scalar;
        g->pack_b = fc_f32_gemm_pack_b_8__scalar;
    }
}

static size_t cdiv(size_t a, size_t b) { return (a + b - 1) / b; }

/* KC actually used: k cut into equal blocks of at most KC_MAX (depends on k and the ISA
 * only, never on the thread count). */
static size_t gemm_kc(size_t k, const gemm_impl *g) {
    size_t nblocks = cdiv(k, g->kc_max);
    return cdiv(k, nblocks);
}

typedef struct {
    size_t kc, mc_alloc, nc_alloc;
    size_t b_bytes, a_bytes; /* each rounded up to FC_ALIGN; a_bytes: per thread, A + panel */
    size_t p_bytes;          /* the B micro-panel part of a_bytes (at its end) */
    size_t total;
} gemm_plan;

static void choose_grid(size_t nth, size_t mtiles, size_t npanels, size_t *tm, size_t *tn);

/* 1 if some team size up to nt makes gemm_thread use the shared B block, i.e. unless
 * every thread always owns whole B panels (tm == 1) and all rows fit one row block:
 * then each panel goes through a per-thread buffer only. */
static int needs_bblock(size_t m, size_t n, size_t nt, const gemm_impl *g) {
    const size_t mtiles = cdiv(m, g->mr);
    const size_t shapes[2] = {FC_MIN(n, g->nc_max), n - (cdiv(n, g->nc_max) - 1) * g->nc_max};
    size_t i, nth, tm, tn;
    if (mtiles > g->mc_max / g->mr) return 1;
    for (i = 0; i < 2; i++)
        for (nth = 1; nth <= nt; nth++) {
            choose_grid(nth, mtiles, cdiv(shapes[i], g->nr), &tm, &tn);
            if (tm != 1) return 1;
        }
    return 0;
}

static fc_status gemm_plan_ws(size_t m, size_t n, size_t k, size_t nt, const gemm_impl *g,
                              int apacked, gemm_plan *pl) {
    size_t t;
    pl->kc = gemm_kc(k, g);
    pl->mc_alloc = FC_ROUND_UP(FC_MIN(m, g->mc_max), g->mr);
    pl->nc_alloc = FC_ROUND_UP(FC_MIN(n, g->nc_max), g->nr);
    if (fc_mul_size(pl->kc, pl->nc_alloc, &t) || fc_mul_size(t, sizeof(float), &t) ||
        fc_align_size(t, &pl->b_bytes))
        return FC_EOVERFLOW;
    if (!needs_bblock(m, n, nt, g)) pl->b_bytes = 0;
    if (fc_mul_size(pl->kc, pl->mc_alloc, &t) || fc_mul_size(t, sizeof(float), &t) ||
        fc_align_size(t, &pl->a_bytes))
        return FC_EOVERFLOW;
    {
        /* per thread: an A block (none if the caller packed all of A beforehand) and one
         * B micro-panel */
        size_t pb;
        if (fc_mul_size(pl->kc, g->nr * sizeof(float), &t) || fc_align_size(t, &pb))
            return FC_EOVERFLOW;
        if (apacked) pl->a_bytes = 0;
        pl->p_bytes = pb;
        if (fc_add_size(pl->a_bytes, pb, &pl->a_bytes)) return FC_EOVERFLOW;
    }
    if (fc_mul_size(pl->a_bytes, nt, &t) || fc_add_size(t, pl->b_bytes, &t) ||
        fc_add_size(t, FC_ALIGN, &pl->total)) /* slack to align the caller's pointer */
        return FC_EOVERFLOW;
    return FC_OK;
}

/* |s1| * (n1 - 1) + |s2| * (n2 - 1) fits in a ptrdiff_t (n1, n2 >= 1). */
static int extent_ok(int64_t n1, int64_t s1, int64_t n2, int64_t s2) {
    const uint64_t lim = (uint64_t)PTRDIFF_MAX;
    uint64_t a1, a2;
    if (s1 == INT64_MIN || s2 == INT64_MIN) return 0;
    a1 = (uint64_t)(s1 < 0 ? -s1 : s1);
    a2 = (uint64_t)(s2 < 0 ? -s2 : s2);
    if (a1 != 0 && (uint64_t)(n1 - 1) > lim / a1) return 0;
    if (a2 != 0 && (uint64_t)(n2 - 1) > lim / a2) return 0;
    a1 *= (uint64_t)(n1 - 1);
    a2 *= (uint64_t)(n2 - 1);
    return a1 <= lim - a2;
}

static fc_status gemm_validate(const fc_gemm_args *args) {
    size_t t;
    if (!args || !args->a || !args->b || !args->c) return FC_EINVAL;
    if (args->m < 1 || args->n < 1 || args->k < 1 || args->num_threads < 1) return FC_EINVAL;
    if (args->m > 1 && args->rs_c < args->n) return FC_EINVAL; /* rows of C would overlap */
    {
        const int64_t mk[2] = {args->m, args->k}, kn[2] = {args->k, args->n},
                      mn[2] = {args->m, args->n};
        if (fc_count(&t, 2, mk) || fc_count(&t, 2, kn) || fc_count(&t, 2, mn))
            return FC_EOVERFLOW;
        if (fc_mul_size(t, sizeof(float), &t)) return FC_EOVERFLOW;
    }
    if (!extent_ok(args->m, args->rs_a, args->k, args->cs_a) ||
        !extent_ok(args->k, args->rs_b, args->n, args->cs_b) ||
        !extent_ok(args->m, args->rs_c, args->n, 1))
        return FC_EOVERFLOW;
    return FC_OK;
}

static const fc_isa all_isas[3] = {FC_ISA_SCALAR, FC_ISA_AVX2, FC_ISA_AVX512};

/* Workspace for the largest of all ISAs, so a size queried before an ISA switch is
 * still enough after it. */
static fc_status gemm_ws_bytes2(int64_t m, int64_t n, int64_t k, int nt, int apacked,
                                size_t *bytes) {
    gemm_impl g;
    gemm_plan pl;
    fc_status st;
    size_t best = 0;
    for (int i = 0; i < 3; i++) {
        gemm_get_impl(all_isas[i], &g);
        st = gemm_plan_ws((size_t)m, (size_t)n, (size_t)k, (size_t)nt, &g, apacked, &pl);
        if (st != FC_OK) return st;
        best = FC_MAX(best, pl.total);
    }
    *bytes = best;
    return FC_OK;
}

static fc_status gemm_ws_bytes(const fc_gemm_args *args, size_t *bytes) {
    return gemm_ws_bytes2(args->m, args->n, args->k, args->num_threads, 0, bytes);
}

/* The workspace depends on m, n, k and num_threads only: pointers and strides may still
 * be unset when a caller sizes its buffers ahead of the call. */
fc_status fc_sgemm_workspace_size(const fc_gemm_args *args, size_t *bytes) {
    size_t t;
    if (!bytes || !args) return FC_EINVAL;
    if (args->m < 1 || args->n < 1 || args->k < 1 || args->num_threads < 1) return FC_EINVAL;
    {
        const int64_t mk[2] = {args->m, args->k}, kn[2] = {args->k, args->n},
                      mn[2] = {args->m, args->n};
        if (fc_count(&t, 2, mk) || fc_count(&t, 2, kn) || fc_count(&t, 2, mn))
            return FC_EOVERFLOW;
    }
    return gemm_ws_bytes(args, bytes);
}

/* ------------------------------------------------------------------ the driver */

typedef struct {
    const gemm_impl *g;
    size_t m, n, k, kc;
    const float *a; ptrdiff_t rs_a, cs_a;
    const float *b; ptrdiff_t rs_b, cs_b;
    float *c; size_t rs_c;
    const float *bias_m, *bias_n;
    int relu, accumulate, has_epi;
    const float *apacked;  /* all of A packed (fc_sgemm_pack_a), or NULL */
    size_t mpad;           /* rows of apacked: m rounded up to MR */
    fc_gemm_packb_fn packb_cb; const void *packb_ctx; /* B from a callback, or NULL */
    const float *bpacked;  /* all of B packed by the caller (full-k panels), or NULL */
    float *bpack;          /* shared packed B block */
    unsigned char *apack0; /* first per-thread packed A block */
    size_t a_bytes, p_bytes;
} gemm_ctx;

/* Split `count` items into `parts` near-equal ranges; range `idx` is [*lo, *hi). */
static void split_range(size_t count, size_t parts, size_t idx, size_t *lo, size_t *hi) {
    *lo = count * idx / parts;
    *hi = count * (idx + 1) / parts;
}

/* Thread grid tm x tn (tm * tn <= nth) minimising the largest rectangle of tiles.
 * Near-ties (within 3%) go to tm = 1 (threads own whole B panels: just-in-time packing). */
static void choose_grid(size_t nth, size_t mtiles, size_t npanels, size_t *tm, size_t *tn) {
    size_t best = SIZE_MAX, t;
    *tm = 1;
    *tn = nth;
    for (t = 1; t <= nth; t++) {
        size_t u = nth / t;
        size_t load = cdiv(mtiles, t) * cdiv(npanels, u);
        /* a split of the rows must win clearly: whole B panels per thread need no
         * barrier and no shared B block */
        if (t == 1 ? load < best : load + load / 32 < best) {
            best = load;
            *tm = t;
            *tn = u;
        }
    }
}

/* One MR x NR tile of C at (i0, j0) with mr x nr valid elements. The kernel handles a
 * short tile (mr < MR) and a half-width one (nr == NR/2) itself; any other narrow one
 * runs the micro-kernel into a local tile, then the valid part is copied out. */
static void run_tile(const gemm_ctx *x, size_t kc, const float *ap, const float *bp,
                     size_t i0, size_t j0, size_t mr, size_t nr, int beta, int last) {
    const gemm_impl *g = x->g;
    float *c = x->c + i0 * x->rs_c + j0;
    fc_gemm_epilogue epi;
    const fc_gemm_epilogue *ep = NULL;
    float bm[FC_GEMM_MAX_MR], bn[FC_GEMM_MAX_NR];
    size_t i, j;

    if (last && x->has_epi) {
        epi.bias_m = NULL;
        epi.bias_n = NULL;
        epi.relu = x->relu;
        ep = &epi;
        if (x->bias_m) {
            if (mr == g->mr) {
                epi.bias_m = x->bias_m + i0;
            } else { /* the kernel may read MR values */
                for (i = 0; i < g->mr; i++) bm[i] = i < mr ? x->bias_m[i0 + i] : 0.0f;
                epi.bias_m = bm;
            }
        }
        if (x->bias_n) {
            if (nr == fc_gemm_width(nr, g->nr)) {
                epi.bias_n = x->bias_n + j0;
            } else {
                for (j = 0; j < g->nr; j++) bn[j] = j < nr ? x->bias_n[j0 + j] : 0.0f;
                epi.bias_n = bn;
            }
        }
    }
    if (nr == fc_gemm_width(nr, g->nr)) {
        g->kernel(mr, nr, kc, ap, bp, c, x->rs_c, beta, ep);
    } else {
        float tile[FC_GEMM_MAX_MR * FC_GEMM_MAX_NR];
        const size_t ld = g->nr;
        memset(tile, 0, sizeof(tile));
        if (beta)
            for (i = 0; i < mr; i++) memcpy(tile + i * ld, c + i * x->rs_c, nr * sizeof(float));
        g->kernel(mr, nr, kc, ap, bp, tile, ld, beta, ep);
        for (i = 0; i < mr; i++) memcpy(c + i * x->rs_c, tile + i * ld, nr * sizeof(float));
    }
}

/* Pack B panel(s) [j0, j0 + nc) of the jc block at jc, KC block at pc, into dst. */
static inline void pack_b_panel(const gemm_ctx *x, size_t pc, size_t kc, size_t jc, size_t j0,
                                size_t nc, float *dst, const float *bsrc, const float *pf) {
    if (x->packb_cb)
        x->packb_cb(x->packb_ctx, pc, kc, jc + j0, nc, x->g->nr, dst);
    else
        x->g->pack_b(kc, nc, bsrc + (ptrdiff_t)j0 * x->cs_b, x->rs_b, x->cs_b, dst, pf);
}

/* Prefetch of the source of the next A block (row-major A) spread over the tiles of the
 * current block, so packing it later finds it in L2 rather than memory. */
typedef struct {
    const char *base;
    ptrdiff_t rs;       /* bytes between rows */
    size_t rows, row_bytes, r, off, per_tile;
} a_prefetch;

static inline void a_prefetch_step(a_prefetch *c) {
#if defined(__GNUC__)
    size_t n = c->per_tile;
    while (n-- && c->r < c->rows) {
        __builtin_prefetch(c->base + (ptrdiff_t)c->r * c->rs + (ptrdiff_t)c->off, 0, 2);
        c->off += 64;
        if (c->off >= c->row_bytes) {
            c->off = 0;
            c->r++;
        }
    }
#else
    (void)c;
#endif
}

/* The work of thread `tid` of a team of `nth`. Every thread runs the same jc / pc loops
 * (so barriers and worksharing loops match up); the rectangle of tiles it computes in a
 * jc block comes from choose_grid, a function of the block shape and nth only. */
static void gemm_thread_work(const gemm_ctx *x, size_t tid, size_t nth) {
    const gemm_impl *g = x->g;
    const size_t mr = g->mr, nr = g->nr;
    const size_t mtiles = cdiv(x->m, mr);
    const size_t mc_tiles = g->mc_max / mr;
    float *apack = x->apacked ? NULL : (float *)(void *)(x->apack0 + tid * x->a_bytes);
    float *bpanel = x->bpacked ? NULL
                    : (float *)(void *)(x->apack0 + (tid + 1) * x->a_bytes - x->p_bytes);
    size_t jc;

    for (jc = 0; jc < x->n; jc += g->nc_max) {
        const size_t nc = FC_MIN(g->nc_max, x->n - jc);
        const size_t npanels = cdiv(nc, nr);
        size_t tm, tn, t0 = 0, t1 = 0, q0 = 0, q1 = 0, pc;
        int jit;
        choose_grid(nth, mtiles, npanels, &tm, &tn);
        jit = (tm == 1);
        if (tid < tm * tn) {
            split_range(mtiles, tm, tid / tn, &t0, &t1);
            split_range(npanels, tn, tid % tn, &q0, &q1);
        }
        /* everyone is done with the previous block's packed B (a team of one skips it:
         * it may run inside a caller's parallel region, fc_conv_winograd.c) */
#ifdef _OPENMP
        if (nth > 1) {
#pragma omp barrier
        }
#endif
        for (pc = 0; pc < x->k; pc += x->kc) {
            const size_t kc = FC_MIN(x->kc, x->k - pc);
            const int beta = (pc > 0) || x->accumulate;
            const int last = (pc + kc >= x->k);
            const float *bsrc = (x->packb_cb || x->bpacked) ? NULL
                                : x->b + (ptrdiff_t)pc * x->rs_b + (ptrdiff_t)jc * x->cs_b;
            size_t it;

            if (!jit && !x->bpacked) {
                long q;
#ifdef _OPENMP
#pragma omp barrier
#pragma omp for schedule(static)
#endif
                for (q = 0; q < (long)npanels; q++) {
                    const size_t j0 = (size_t)q * nr;
                    const size_t qp = (size_t)q + FC_GEMM_PF_PANELS;
                    const float *pf = (bsrc && (qp + 1) * nr <= nc) ? bsrc + (ptrdiff_t)(qp * nr) * x->cs_b : NULL;
                    pack_b_panel(x, pc, kc, jc, j0, FC_MIN(nr, nc - j0), x->bpack + (size_t)q * x->kc * nr,
                                 bsrc, pf);
                }
                /* implicit barrier: the whole B block is packed */
            }

            /* row blocks of near-equal size (no thin last block), at most MC rows each */
            const size_t ic_step = t1 > t0 ? cdiv(t1 - t0, cdiv(t1 - t0, mc_tiles)) : 1;
            for (it = t0; it < t1; it += ic_step) {
                const size_t it1 = FC_MIN(t1, it + ic_step);
                const size_t i0 = it * mr;
                const size_t mc = FC_MIN(x->m, it1 * mr) - i0;
                const int single = (it == t0 && it1 == t1);
                size_t q;
                a_prefetch apf = {0};
                if (x->apacked)
                    apack = (float *)(x->apacked + x->mpad * pc + it * mr * kc);
                else
                    g->pack_a(mc, kc, x->a + (ptrdiff_t)i0 * x->rs_a + (ptrdiff_t)pc * x->cs_a,
                              x->rs_a, x->cs_a, apack);
                if (!x->apacked && x->cs_a == 1 && q1 > q0) {
                    /* the next block: the next rows of this KC block, else the first rows
                     * of the next KC block */
                    size_t nit = it1, npc = pc;
                    if (nit >= t1) {
                        nit = t0;
                        npc = pc + kc;
                    }
                    if (npc < x->k && nit < t1) {
                        const size_t ni0 = nit * mr;
                        const size_t nit1 = FC_MIN(t1, nit + ic_step);
                        const size_t nkc = FC_MIN(x->kc, x->k - npc);
                        apf.base = (const char *)(x->a + (ptrdiff_t)ni0 * x->rs_a + (ptrdiff_t)npc);
                        apf.rs = x->rs_a * (ptrdiff_t)sizeof(float);
                        apf.rows = FC_MIN(x->m, nit1 * mr) - ni0;
                        apf.row_bytes = nkc * sizeof(float);
                        apf.per_tile = cdiv(apf.rows * cdiv(apf.row_bytes, 64),
                                            (q1 - q0) * (it1 - it));
                    }
                }
                for (q = q0; q < q1; q++) {
                    const size_t j0 = q * nr;
                    const size_t nrv = FC_MIN(nr, nc - j0);
                    /* This thread's only row block and its own panels (jit): the panel is
                     * used right after it is packed and never again, so it goes to a small
                     * buffer that stays in L1 instead of the B block. Otherwise, fixed
                     * stride: a panel never moves between KC blocks. */
                    float *bp = x->bpacked ? NULL
                                : (jit && single) ? bpanel : x->bpack + q * x->kc * nr;
                    const float *bk = bp; /* the panel the micro-kernel reads */
                    size_t ir;
                    if (x->bpacked) {
                        /* the caller's full-k panel (jc is a multiple of nr) */
                        bk = x->bpacked + ((jc + j0) / nr) * x->k * nr + pc * nr;
                    } else if (jit && it == t0) {
                        /* this thread alone uses panel q: pack it now, prefetch a later one */
                        const size_t qp = q + FC_GEMM_PF_PANELS;
                        const float *pf = (bsrc && qp < q1 && (qp + 1) * nr <= nc)
                                              ? bsrc + (ptrdiff_t)(qp * nr) * x->cs_b : NULL;
                        pack_b_panel(x, pc, kc, jc, j0, nrv, bp, bsrc, pf);
                    }
                    for (ir = it; ir < it1; ir++) {
                        const size_t r0 = ir * mr;
                        run_tile(x, kc, apack + (ir - it) * kc * mr, bk, r0, jc + j0,
                                 FC_MIN(mr, x->m - r0), nrv, beta, last);
                        a_prefetch_step(&apf);
                    }
                }
            }
        }
    }
}

/* One thread's share, with subnormals flushed to zero for its duration (MXCSR is per
 * thread; see fc_flush_denormals). */
static void gemm_thread(const gemm_ctx *x, size_t tid, size_t nth) {
    const fc_fpmode fpm = fc_flush_denormals();
    gemm_thread_work(x, tid, nth);
    fc_restore_fpmode(fpm);
}

/* The driver proper, shared by fc_sgemm and fc_sgemm_ex: arguments already validated,
 * workspace at least as large as the plan pl for implementation g. */
static void gemm_drive(const fc_gemm_ex_args *e, const gemm_impl *g, const gemm_plan *pl,
                       void *workspace) {
    unsigned char *ws = (unsigned char *)fc_align_ptr(workspace);
    gemm_ctx x;
    x.g = g;
    x.m = (size_t)e->m;
    x.n = (size_t)e->n;
    x.k = (size_t)e->k;
    x.kc = pl->kc;
    x.a = e->a; x.rs_a = (ptrdiff_t)e->rs_a; x.cs_a = (ptrdiff_t)e->cs_a;
    x.b = e->b; x.rs_b = (ptrdiff_t)e->rs_b; x.cs_b = (ptrdiff_t)e->cs_b;
    x.c = e->c;
    x.rs_c = e->m > 1 ? (size_t)e->rs_c : (size_t)e->n;
    x.bias_m = e->bias_m;
    x.bias_n = e->bias_n;
    x.relu = e->relu != 0;
    x.accumulate = e->accumulate != 0;
    x.has_epi = x.bias_m != NULL || x.bias_n != NULL || x.relu;
    x.apacked = e->apacked;
    x.mpad = FC_ROUND_UP(x.m, g->mr);
    x.packb_cb = e->pack_b;
    x.packb_ctx = e->pack_b_ctx;
    x.bpacked = e->bpacked;
    x.bpack = ws ? (float *)(void *)ws : NULL;
    x.apack0 = ws ? ws + pl->b_bytes : NULL;
    x.a_bytes = pl->a_bytes;
    x.p_bytes = pl->p_bytes;
#ifdef _OPENMP
    if (e->num_threads > 1) {
#pragma omp parallel num_threads(e->num_threads)
        gemm_thread(&x, (size_t)omp_get_thread_num(), (size_t)omp_get_num_threads());
        return;
    }
#endif
    gemm_thread(&x, 0, 1);
}

fc_status fc_sgemm(const fc_gemm_args *args, void *workspace, size_t workspace_bytes) {
    gemm_impl g;
    gemm_plan pl;
    size_t need;
    const fc_isa isa = fc_active_isa(); /* read once per call */
    fc_status st = gemm_validate(args);
    if (st != FC_OK) return st;
    st = gemm_ws_bytes(args, &need);
    if (st != FC_OK) return st;
    if (workspace_bytes < need) return FC_ENOMEM;
    if (!workspace) return FC_EINVAL;

    gemm_get_impl(isa, &g);
    st = gemm_plan_ws((size_t)args->m, (size_t)args->n, (size_t)args->k,
                      (size_t)args->num_threads, &g, 0, &pl);
    if (st != FC_OK) return st;

    if (args->m <= FC_GEMV_MAX_M && args->rs_b == 1 && args->cs_a == 1) {
        /* columns split over threads; each element is computed the same way whatever
         * the split */
        const size_t n = (size_t)args->n, m = (size_t)args->m;
        const size_t rs_c = m > 1 ? (size_t)args->rs_c : n;
        long t, nt = args->num_threads;
        if ((size_t)nt > n) nt = (long)n;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
        for (t = 0; t < nt; t++) {
            size_t j0, j1;
            split_range(n, (size_t)nt, (size_t)t, &j0, &j1);
            const fc_fpmode fpm = fc_flush_denormals(); /* one chunk per thread */
            if (j1 > j0)
                g.gemv(m, j1 - j0, (size_t)args->k, args->a, (ptrdiff_t)args->rs_a,
                       args->b + (ptrdiff_t)j0 * args->cs_b, (ptrdiff_t)args->cs_b, args->c + j0,
                       rs_c, args->accumulate != 0, args->bias_m,
                       args->bias_n ? args->bias_n + j0 : NULL, args->relu != 0);
            fc_restore_fpmode(fpm);
        }
        return FC_OK;
    }

    {
        const fc_gemm_ex_args e = {
            .isa = isa, .m = args->m, .n = args->n, .k = args->k,
            .a = args->a, .rs_a = args->rs_a, .cs_a = args->cs_a,
            .b = args->b, .rs_b = args->rs_b, .cs_b = args->cs_b,
            .c = args->c, .rs_c = args->rs_c, .bias_m = args->bias_m, .bias_n = args->bias_n,
            .relu = args->relu, .accumulate = args->accumulate,
            .num_threads = args->num_threads};
        gemm_drive(&e, &g, &pl, workspace);
    }
    return FC_OK;
}

/* ------------------------------------------------------------------ internal entry points
 * (fc_gemm_internal.h): pre-packed A, B from a packing callback. */

static fc_status packed_a_rows(const gemm_impl *g, int64_t m, int64_t k, size_t *mpad,
                               size_t *bytes) {
    size_t t;
    if (m < 1 || k < 1) return FC_EINVAL;
    if ((uint64_t)m > (uint64_t)(SIZE_MAX / 2)) return FC_EOVERFLOW;
    *mpad = FC_ROUND_UP((size_t)m, g->mr);
    if (fc_mul_size(*mpad, (size_t)k, &t) || fc_mul_size(t, sizeof(float), &t) ||
        fc_align_size(t, bytes))
        return FC_EOVERFLOW;
    return FC_OK;
}

fc_status fc_sgemm_packed_a_size(int64_t m, int64_t k, size_t *bytes) {
    gemm_impl g;
    size_t mp, b, best = 0;
    fc_status st;
    if (!bytes) return FC_EINVAL;
    for (int i = 0; i < 3; i++) {
        gemm_get_impl(all_isas[i], &g);
        if ((st = packed_a_rows(&g, m, k, &mp, &b)) != FC_OK) return st;
        best = FC_MAX(best, b);
    }
    *bytes = best;
    return FC_OK;
}

fc_status fc_sgemm_pack_a(fc_isa isa, int64_t m, int64_t k, const float *a, int64_t rs_a,
                          int64_t cs_a, float *dst, int num_threads) {
    gemm_impl g;
    size_t mpad, bytes, kc, mtiles, nblk;
    long t, ntasks;
    fc_status st;
    if (!a || !dst || num_threads < 1) return FC_EINVAL;
    gemm_get_impl(isa, &g);
    if ((st = packed_a_rows(&g, m, k, &mpad, &bytes)) != FC_OK) return st;
    if (!extent_ok(m, rs_a, k, cs_a)) return FC_EOVERFLOW;
    kc = gemm_kc((size_t)k, &g);
    mtiles = mpad / g.mr;
    nblk = cdiv((size_t)k, kc);
    ntasks = (long)(mtiles * nblk);
    (void)num_threads;
    /* each task packs one MR-row micro-panel of one KC block: the same bytes as the
     * driver's own pack_a of any row block containing it */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(num_threads) if (num_threads > 1 && ntasks > 1)
#endif
    for (t = 0; t < ntasks; t++) {
        const size_t b = (size_t)t / mtiles, it = (size_t)t % mtiles;
        const size_t pc = b * kc, kcb = FC_MIN(kc, (size_t)k - pc);
        const size_t i0 = it * g.mr, mc = FC_MIN(g.mr, (size_t)m - i0);
        g.pack_a(mc, kcb, a + (ptrdiff_t)i0 * (ptrdiff_t)rs_a + (ptrdiff_t)pc * (ptrdiff_t)cs_a,
                 (ptrdiff_t)rs_a, (ptrdiff_t)cs_a, dst + mpad * pc + i0 * kcb);
    }
    return FC_OK;
}

fc_status fc_sgemm_ex_workspace_size(int64_t m, int64_t n, int64_t k, int num_threads,
                                     int apacked, size_t *bytes) {
    size_t t;
    if (!bytes) return FC_EINVAL;
    if (m < 1 || n < 1 || k < 1 || num_threads < 1) return FC_EINVAL;
    {
        const int64_t mk[2] = {m, k}, kn[2] = {k, n}, mn[2] = {m, n};
        if (fc_count(&t, 2, mk) || fc_count(&t, 2, kn) || fc_count(&t, 2, mn))
            return FC_EOVERFLOW;
    }
    return gemm_ws_bytes2(m, n, k, num_threads, apacked != 0, bytes);
}

fc_status fc_sgemm_ex(const fc_gemm_ex_args *e, void *workspace, size_t workspace_bytes) {
    gemm_impl g;
    gemm_plan pl;
    size_t need;
    fc_status st;
    if (!e || !e->c || e->num_threads < 1) return FC_EINVAL;
    if (!e->apacked && !e->a) return FC_EINVAL;
    if (!e->pack_b && !e->b && !e->bpacked) return FC_EINVAL;
    if (e->m > 1 && e->rs_c < e->n) return FC_EINVAL;
    if (!(e->apacked && e->bpacked)) {
        st = fc_sgemm_ex_workspace_size(e->m, e->n, e->k, e->num_threads, e->apacked != NULL,
                                        &need);
        if (st != FC_OK) return st;
        if (workspace_bytes < need) return FC_ENOMEM;
        if (!workspace) return FC_EINVAL;
    } else {
        /* both pre-packed: no scratch at all, so no sizing either (the Winograd driver
         * makes one such call per point and block: sizing for every ISA each time was
         * 4% of a VGG-16 conv1_2) -- only the checks it did */
        size_t t;
        const int64_t mk[2] = {e->m, e->k}, kn[2] = {e->k, e->n}, mn[2] = {e->m, e->n};
        if (e->m < 1 || e->n < 1 || e->k < 1) return FC_EINVAL;
        if (fc_count(&t, 2, mk) || fc_count(&t, 2, kn) || fc_count(&t, 2, mn))
            return FC_EOVERFLOW;
        workspace = NULL;
    }
    if (!e->apacked && !extent_ok(e->m, e->rs_a, e->k, e->cs_a)) return FC_EOVERFLOW;
    if (!e->pack_b && !e->bpacked && !extent_ok(e->k, e->rs_b, e->n, e->cs_b))
        return FC_EOVERFLOW;
    if (!extent_ok(e->m, e->rs_c, e->n, 1)) return FC_EOVERFLOW;

    gemm_get_impl(e->isa, &g);
    st = gemm_plan_ws((size_t)e->m, (size_t)e->n, (size_t)e->k, (size_t)e->num_threads, &g,
                      e->apacked != NULL, &pl);
    if (st != FC_OK) return st;

    gemm_drive(e, &g, &pl, workspace);
    return FC_OK;
}

size_t fc_sgemm_nr(fc_isa isa) {
    gemm_impl g;
    gemm_get_impl(isa, &g);
    return g.nr;
}

int fc_sgemm_packed_a_pays(int64_t m, int64_t n, int64_t uses, int num_threads) {
    /* A is packed once per KC block of each jc block by every thread column of the grid
     * (fc_sgemm); pack it beforehand when that would happen more than once */
    gemm_impl g;
    gemm_get_impl(fc_active_isa(), &g);
    if (uses > 1 || (size_t)n > g.nc_max) return 1;
    if (num_threads > 1 && m > 0 && n > 0) {
        size_t tm, tn;
        choose_grid((size_t)num_threads, cdiv((size_t)m, g.mr), cdiv((size_t)n, g.nr), &tm, &tn);
        return tn > 1; /* several threads would pack the same rows of A */
    }
    return 0;
}
