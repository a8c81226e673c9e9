/* Winograd convolution F(4x4, 3x3) ("winograd") and F(2x2, 3x3) ("winograd2") for 3x3,
 * stride-1, dilation-1, ungrouped convolutions with any padding (Lavin and Gray 2015;
 * transforms in fc_winograd_kernels.h).
 *
 * Pack (once, a compiled model): U_t = (G g G^T)_t for every point t (n*n of them, n =
 * m + 2) as a Co x Ci matrix, each packed as the SGEMM's A operand (fc_sgemm_pack_a) for
 * the ISA in use, so whatever micro-kernel that ISA has is used.
 *
 * Run: the output tiles of the whole batch (image by image, row-major) are cut into
 * blocks of T tiles. Per block:
 *   1. input transform V_t = B^T d B of every (channel, group of L tiles: L = 16 under
 *      AVX-512, else 8), written straight into the packed-B panel layout of the GEMM (no
 *      packing pass). A group whose tiles lie side by side along one tile row is given to
 *      the kernels as a row run, any other (crossing tile rows or images, at the borders
 *      unless the ISA's run kernels mask) as L per-tile offsets with row and column masks
 *      (fc_winograd_kernels.h): the kernels load masked and transpose in registers, so
 *      nothing is copied or zero-padded;
 *   2. per point t, M_t[Co x T] = U_t[Co x Ci] * V_t[Ci x T] (fc_sgemm_ex, A and B both
 *      pre-packed, one thread per GEMM);
 *   3. output transform Y = A^T M A, bias and ReLU fused, writing only the valid part of
 *      edge tiles (masked stores), in the same two forms; or, for
 *      fc_conv2d_winograd_run_maxpool2, a 2x2 stride-2 max pool of each tile too
 *      (output_group_pool2): a tile starts at a multiple of m (even), so it holds whole
 *      pooling windows and only the pooled quarter is ever written.
 * Threads: either each thread runs its own contiguous range of tiles, block by block,
 * with its own V and M ("private": when there are at least as many blocks as threads;
 * no barriers, which matters on a shared machine), or the team runs every block together:
 * phase 1 split over (group, channel) items, phase 2 over points, phase 3 over (group,
 * channel) items, a barrier after phases 1 and 2 (few tiles, e.g. 14x14 maps at batch 1,
 * where splitting the points also splits the reading of U). No split touches a reduction and every tile's numbers
 * are computed the same way in any group or block, so results are bit-identical for any
 * team size.
 *
 * Accuracy (tests/test_winograd.py: VGG-16 layer shapes, He weights, ImageNet-scaled
 * inputs, max |err| / max |ref| against float64): F(4x4) 1.3e-5 (AVX2) / 1.5e-5 (scalar),
 * F(2x2) 7e-7; the points +-2 of F(4x4) amplify rounding by their powers up to 8. */
#include "fc_conv_internal.h"
#include "fc_gemm_internal.h"
#include "fc_pool_kernels.h" /* fc_nanmax_f32: the max pool's NaN rule */
#include "fc_winograd_kernels.h"
#include <string.h>

#if defined(__GNUC__)
#define WINO_PREFETCH(a, w) __builtin_prefetch((a), (w), 3)
#else
#define WINO_PREFETCH(a, w) ((void)(a))
#endif

/* software prefetch distance of the transforms, in channels (0: none; 4 and 8 measured
 * alike on VGG-16 conv1_2, see prefetch_segs) */
#ifndef WINO_PF
#define WINO_PF 4
#endif

/* Block sizing: V and M of a block (n*n*(Ci + Co)*T floats) should stay in L2; when U
 * itself is larger than L2 it streams from L3/memory once per block, so blocks get at
 * least WINO_T_BIG tiles to reuse each U element over that many columns. */
#ifndef FC_WINO_L2_BUDGET
#define FC_WINO_L2_BUDGET (1u << 20)
#endif
#define WINO_T_GRAIN 32 /* T is a multiple of every ISA's nr (8, 16, 32) */
#define WINO_T_BIG 64
#define WINO_T_MAX 1024
/* blocks and threads' tile ranges start at multiples of every ISA's group size */
#define LANES_MAX FC_WINO_MAX_LANES

typedef struct {
    int m, n, np;
    int lanes;               /* tiles per kernel call: 8, or 16 under AVX-512 */
    int run_masked;          /* the run kernels take runs with columns outside the image */
    fc_wino_in_tiles_fn in_tiles;
    fc_wino_in_run_fn in_run; /* NULL: every group in the tiles form */
    fc_wino_out_tiles_fn out_tiles;
    fc_wino_out_run_fn out_run;
} wino_impl;

static int tile_m(fc_conv_algo a) { return a == FC_CONV_WINOGRAD2 ? 2 : 4; }

/* kernel KIND (in_tiles, in_run, out_tiles, out_run) of ISA suffix SUF for tile size m */
#define WINO_PICK(m, KIND, SUF) \
    ((m) == 2 ? fc_f32_wino_##KIND##_2x2__##SUF : fc_f32_wino_##KIND##_4x4__##SUF)
#define WINO_KERNELS(w, m, SUF)                      \
    do {                                             \
        (w)->in_tiles = WINO_PICK(m, in_tiles, SUF);   \
        (w)->out_tiles = WINO_PICK(m, out_tiles, SUF); \
    } while (0)
#define WINO_RUN_KERNELS(w, m, SUF)                \
    do {                                           \
        (w)->in_run = WINO_PICK(m, in_run, SUF);   \
        (w)->out_run = WINO_PICK(m, out_run, SUF); \
    } while (0)

static void get_impl(fc_isa isa, int m, wino_impl *w) {
    w->m = m;
    w->n = m + 2;
    w->np = w->n * w->n;
    w->lanes = 8;
    w->run_masked = 0;
    if (isa == FC_ISA_AVX512) {
        /* 16 tiles per zmm. Against the 8-lane AVX2 transforms with the same AVX-512
         * GEMM (`perf record` samples outside the GEMM micro-kernels / inside, 1 thread):
         * 64->64 224x224 1.06-1.14 vs 1.27-1.34; 512->512 14x14 winograd2 0.23-0.30 vs
         * 0.33-0.35; 128->128 112x112 0.53-0.57 vs 0.56-0.60; 512->512 28x28 alike
         * (0.69-0.76 vs 0.66-0.73) */
        w->lanes = 16;
        w->run_masked = 1;
        WINO_KERNELS(w, m, avx512);
        WINO_RUN_KERNELS(w, m, avx512);
    } else if (isa != FC_ISA_SCALAR) {
        WINO_KERNELS(w, m, avx2_fma);
        WINO_RUN_KERNELS(w, m, avx2_fma);
    } else {
        WINO_KERNELS(w, m, scalar);
        w->in_run = NULL;
        w->out_run = NULL;
    }
}

static size_t cdiv(size_t a, size_t b) { return (a + b - 1) / b; }

fc_status fc_conv2d_winograd_supports(const fc_conv2d_params *p) {
    if (p->kernel_h != 3 || p->kernel_w != 3 || p->stride_h != 1 || p->stride_w != 1 ||
        p->dilation_h != 1 || p->dilation_w != 1 || p->groups != 1)
        return FC_EUNSUPPORTED;
    /* the input kernels fill `lanes` columns of a packed B panel at a time */
    wino_impl k;
    get_impl(fc_active_isa(), 4, &k);
    if (fc_sgemm_nr(fc_active_isa()) % (size_t)k.lanes != 0 ||
        WINO_T_GRAIN % fc_sgemm_nr(fc_active_isa()))
        return FC_EUNSUPPORTED;
    return FC_OK;
}

/* ---------------------------------------------------------------- sizes */

typedef struct {
    int m, n, np;
    int64_t th, tw;          /* tiles per image column / row */
    size_t ntiles;
    size_t Tb;               /* tiles per block (a multiple of LANES_MAX) */
    size_t T;                /* columns of a block's V and M: Tb rounded up to 32, a
                              * multiple of every ISA's nr */
    int priv;                /* threads run whole blocks each */
    size_t nbuf;             /* V/M buffer pairs: one per thread if priv, else one */
    size_t vbytes, mbytes;   /* of one buffer pair, each aligned */
    size_t ua_bytes;         /* one point's packed U, aligned */
} wino_geo;

static fc_status geometry(const fc_conv2d_params *p, int m, wino_geo *g) {
    const int64_t ci = p->in_channels, co = p->out_channels;
    size_t t, per_tile, u_bytes;
    g->m = m;
    g->n = m + 2;
    g->np = g->n * g->n;
    g->th = (p->out_h + m - 1) / m;
    g->tw = (p->out_w + m - 1) / m;
    {
        const int64_t d[3] = {p->batch > 0 ? p->batch : 1, g->th, g->tw};
        if (fc_count(&g->ntiles, 3, d)) return FC_EOVERFLOW;
    }
    if (fc_sgemm_packed_a_size(co, ci, &g->ua_bytes) || fc_align_size(g->ua_bytes, &g->ua_bytes))
        return FC_EOVERFLOW;
    {
        const int64_t d[3] = {g->np, ci + co, (int64_t)sizeof(float)};
        if (fc_count(&per_tile, 3, d)) return FC_EOVERFLOW;
    }
    if (fc_mul_size(g->ua_bytes, (size_t)g->np, &u_bytes)) return FC_EOVERFLOW;
    t = FC_WINO_L2_BUDGET / per_tile;
    t = t / WINO_T_GRAIN * WINO_T_GRAIN;
    if (u_bytes > FC_WINO_L2_BUDGET) t = FC_MAX(t, (size_t)WINO_T_BIG);
    t = FC_MAX(t, (size_t)WINO_T_GRAIN);
    t = FC_MIN(t, (size_t)WINO_T_MAX);
    t = FC_MIN(t, FC_ROUND_UP(g->ntiles, (size_t)WINO_T_GRAIN));
    {
        /* Threads take whole blocks when there are enough to go round (no barriers; each
         * core keeps its own V and M): each thread a contiguous range of the tiles (cut at
         * multiples of LANES_MAX), in near-equal blocks. Else the team shares every block. */
        const size_t nt = (size_t)p->num_threads;
        g->priv = nt > 1 && cdiv(g->ntiles, t) >= nt;
        const size_t span = g->priv ? cdiv(g->ntiles, nt) + LANES_MAX : g->ntiles;
        const size_t nb = cdiv(span, t);
        g->Tb = FC_MIN(t, FC_ROUND_UP(cdiv(span, nb), (size_t)LANES_MAX));
        g->T = FC_ROUND_UP(g->Tb, (size_t)WINO_T_GRAIN);
    }
    g->nbuf = g->priv ? (size_t)p->num_threads : 1;
    {
        const int64_t dv[4] = {g->np, ci, (int64_t)g->T, (int64_t)sizeof(float)};
        const int64_t dm[4] = {g->np, co, (int64_t)g->T, (int64_t)sizeof(float)};
        if (fc_count(&g->vbytes, 4, dv) || fc_align_size(g->vbytes, &g->vbytes) ||
            fc_count(&g->mbytes, 4, dm) || fc_align_size(g->mbytes, &g->mbytes))
            return FC_EOVERFLOW;
    }
    return FC_OK;
}

/* bytes of the run scratch: nbuf pairs of V and M, + FC_ALIGN slack */
static fc_status run_bytes(const wino_geo *g, size_t *bytes) {
    size_t t;
    if (fc_add_size(g->vbytes, g->mbytes, &t) || fc_mul_size(t, g->nbuf, &t) ||
        fc_add_size(t, FC_ALIGN, bytes))
        return FC_EOVERFLOW;
    return FC_OK;
}

/* The packed weights: np packed U matrices, then a Co x Ci scratch matrix the packing
 * computes each U_t into (unused afterwards). */
static fc_status weight_bytes(const fc_conv2d_params *p, const wino_geo *g, size_t *bytes) {
    size_t u, s;
    const int64_t d[3] = {p->out_channels, p->in_channels, (int64_t)sizeof(float)};
    if (fc_mul_size(g->ua_bytes, (size_t)g->np, &u) || fc_count(&s, 3, d) ||
        fc_align_size(s, &s) || fc_add_size(u, s, bytes))
        return FC_EOVERFLOW;
    return FC_OK;
}

fc_status fc_conv2d_winograd_packed_size(const fc_conv2d_params *p, fc_conv_algo algo,
                                         size_t *wbytes, size_t *bbytes) {
    wino_geo g;
    fc_status st = geometry(p, tile_m(algo), &g);
    if (st != FC_OK) return st;
    if ((st = weight_bytes(p, &g, wbytes)) != FC_OK) return st;
    const int64_t bd[2] = {p->out_channels, (int64_t)sizeof(float)};
    if (fc_count(bbytes, 2, bd) || fc_align_size(*bbytes, bbytes)) return FC_EOVERFLOW;
    return FC_OK;
}

fc_status fc_conv2d_winograd_run_workspace_size(const fc_conv2d_params *p, fc_conv_algo algo,
                                                size_t *bytes) {
    wino_geo g;
    fc_status st = geometry(p, tile_m(algo), &g);
    if (st != FC_OK) return st;
    return run_bytes(&g, bytes);
}

fc_status fc_conv2d_winograd_workspace_size(const fc_conv2d_params *p, fc_conv_algo algo,
                                            size_t *bytes) {
    wino_geo g;
    size_t w, r;
    fc_status st = geometry(p, tile_m(algo), &g);
    if (st != FC_OK) return st;
    if ((st = weight_bytes(p, &g, &w)) != FC_OK || (st = run_bytes(&g, &r)) != FC_OK) return st;
    /* + FC_ALIGN: the caller's buffer may start anywhere */
    if (fc_add_size(w, r, bytes) || fc_add_size(*bytes, FC_ALIGN, bytes)) return FC_EOVERFLOW;
    return FC_OK;
}

/* ---------------------------------------------------------------- filter transform */

static void split_range(size_t count, size_t parts, size_t idx, size_t *lo, size_t *hi) {
    *lo = count * idx / parts;
    *hi = count * (idx + 1) / parts;
}

/* G of F(2x2, 3x3) and F(4x4, 3x3) (Lavin and Gray 2015), rows = points. */
static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                {0, 0, 1}};

/* U_t for every point into the packed A of that point, via the Co x Ci scratch. In
 * float64, rounded once. */
static fc_status pack_filters(const fc_conv2d_params *p, const wino_geo *g, fc_isa isa,
                              const float *w, char *dst) {
    const int64_t Co = p->out_channels, Ci = p->in_channels;
    float *scratch = (float *)(void *)(dst + g->ua_bytes * (size_t)g->np);
    const double(*G)[3] = g->m == 2 ? G2 : G4;
    const int64_t nk = Co * Ci;
    for (int t = 0; t < g->np; t++) {
        const int i = t / g->n, j = t % g->n;
        const double gi0 = G[i][0], gi1 = G[i][1], gi2 = G[i][2];
        const double gj0 = G[j][0], gj1 = G[j][1], gj2 = G[j][2];
        const int nt = (p->num_threads > 1 && nk >= 4096) ? p->num_threads : 1;
        /* separable: rows of g against G[j], then the three results against G[i] */
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
        {
            fc_fpmode fpm = fc_flush_denormals();
            size_t lo = 0, hi = (size_t)nk;
#ifdef _OPENMP
            split_range((size_t)nk, (size_t)omp_get_num_threads(), (size_t)omp_get_thread_num(),
                        &lo, &hi);
#endif
            for (size_t k = lo; k < hi; k++) {
                const float *f = w + k * 9;
                const double r0 = gj0 * f[0] + gj1 * f[1] + gj2 * f[2];
                const double r1 = gj0 * f[3] + gj1 * f[4] + gj2 * f[5];
                const double r2 = gj0 * f[6] + gj1 * f[7] + gj2 * f[8];
                scratch[k] = (float)(gi0 * r0 + gi1 * r1 + gi2 * r2);
            }
            fc_restore_fpmode(fpm);
        }
        fc_status st = fc_sgemm_pack_a(isa, Co, Ci, scratch, Ci, 1,
                                       (float *)(void *)(dst + g->ua_bytes * (size_t)t),
                                       p->num_threads);
        if (st != FC_OK) return st;
    }
    return FC_OK;
}

fc_status fc_conv2d_winograd_pack(const fc_conv2d_params *p, fc_conv_algo algo, const float *w,
                                  const float *bias, float *wpack, float *bpack) {
    wino_geo g;
    fc_status st = geometry(p, tile_m(algo), &g);
    if (st != FC_OK) return st;
    if (!w || !wpack || !bpack) return FC_EINVAL;
    st = pack_filters(p, &g, fc_active_isa(), w, (char *)wpack);
    if (st != FC_OK) return st;
    for (int64_t c = 0; c < p->out_channels; c++) bpack[c] = bias ? bias[c] : 0.0f;
    return FC_OK;
}

/* ---------------------------------------------------------------- the run */

typedef struct {
    const fc_conv2d_params *p;
    wino_geo g;
    wino_impl k;
    fc_isa isa;
    size_t nr;
    const float *x, *bias;
    float *y;                /* [N, Co, Ho, Wo], or [N, Co, Ho/2, Wo/2] if pool2 */
    int pool2;               /* 2x2 stride-2 max pool (floor) after the bias and ReLU */
    const char *u;           /* packed U of point t at u + t*ua_bytes */
    char *bufs;              /* nbuf pairs (V, M) */
    int err;                 /* a GEMM failed (never expected: sizes checked up front) */
} wino_ctx;

typedef struct { int64_t img, ty, tx; } tile_pos;

static void tile_at(const wino_ctx *c, size_t t, tile_pos *tp) {
    const size_t per_img = (size_t)(c->g.th * c->g.tw);
    const size_t r = t % per_img;
    tp->img = (int64_t)(t / per_img);
    tp->ty = (int64_t)(r / (size_t)c->g.tw);
    tp->tx = (int64_t)(r % (size_t)c->g.tw);
}

static void tile_next(const wino_ctx *c, tile_pos *tp) {
    if (++tp->tx == c->g.tw) {
        tp->tx = 0;
        if (++tp->ty == c->g.th) {
            tp->ty = 0;
            tp->img++;
        }
    }
}

/* The `lanes` tiles of a group from global tile t0 (nvalid of them exist), in both of the
 * kernels' forms (fc_winograd_kernels.h) for the input and the output, offsets relative
 * to channel 0's plane of the batch; computed once per group, used for every channel. */
#define WINO_MAX_SEGS 4
typedef struct {
    size_t nvalid;
    int in_run, out_run;     /* give the kernels the run form */
    fc_wino_run rin, rout;
    fc_wino_tiles tin, tout;
    fc_wino_tiles tloc;      /* the tiles side by side in output_group_pool2's buffer */
    struct { int64_t img, ty, tx; } pos[FC_WINO_MAX_LANES]; /* of the valid tiles */
    /* the input row segments of the group (runs of tiles side by side): for prefetching */
    int nseg, nseg_out;
    ptrdiff_t seg_off[WINO_MAX_SEGS], oseg_off[WINO_MAX_SEGS];
    int seg_len[WINO_MAX_SEGS], oseg_len[WINO_MAX_SEGS];
} tile_group;

static uint32_t inside_bits(int64_t lo, int count, int64_t size) {
    uint32_t b = 0;
    for (int i = 0; i < count; i++)
        if (lo + i >= 0 && lo + i < size) b |= 1u << i;
    return b;
}

/* The runs of tiles side by side (offsets m apart) among the first nv tile offsets, as at
 * most WINO_MAX_SEGS row segments: a tile's rows span `width` floats (n in, m out), each
 * further tile of a run adds m. Returns the number of segments. */
static int row_segments(const ptrdiff_t *off, size_t nv, int m, int width, ptrdiff_t *seg_off,
                        int *seg_len) {
    int ns = 0;
    for (size_t l = 0; l < nv; l++) {
        if (ns && off[l] == off[l - 1] + m) {
            seg_len[ns - 1] += m;
            continue;
        }
        if (ns == WINO_MAX_SEGS) break;
        seg_off[ns] = off[l];
        seg_len[ns++] = width;
    }
    return ns;
}

static void group_at(const wino_ctx *c, size_t t0, tile_group *tg) {
    const fc_conv2d_params *p = c->p;
    const int m = c->g.m, n = c->g.n, L = c->k.lanes;
    const int64_t H = p->in_h, W = p->in_w, Ho = p->out_h, Wo = p->out_w;
    tile_pos tp = {0, 0, 0};
    tg->nvalid = t0 < c->g.ntiles ? FC_MIN((size_t)L, c->g.ntiles - t0) : 0;
    if (tg->nvalid) tile_at(c, t0, &tp);
    for (int l = 0; l < L; l++) {
        if ((size_t)l >= tg->nvalid) {
            tg->tin.off[l] = tg->tout.off[l] = 0;
            tg->tin.rows[l] = tg->tin.cols[l] = tg->tout.rows[l] = tg->tout.cols[l] = 0;
            tg->tloc.off[l] = 0;
            tg->tloc.rows[l] = tg->tloc.cols[l] = 0;
            continue;
        }
        const int64_t h0 = tp.ty * m - p->pad_top, w0 = tp.tx * m - p->pad_left;
        const int64_t oh0 = tp.ty * m, ow0 = tp.tx * m;
        tg->tin.off[l] = (ptrdiff_t)(tp.img * p->in_channels * H * W + h0 * W + w0);
        tg->tin.rows[l] = inside_bits(h0, n, H);
        tg->tin.cols[l] = inside_bits(w0, n, W);
        tg->tout.off[l] = (ptrdiff_t)(tp.img * p->out_channels * Ho * Wo + oh0 * Wo + ow0);
        tg->tout.rows[l] = inside_bits(oh0, m, Ho);
        tg->tout.cols[l] = inside_bits(ow0, m, Wo);
        tg->tloc.off[l] = (ptrdiff_t)m * l;
        tg->tloc.rows[l] = tg->tloc.cols[l] = (1u << m) - 1u;
        tg->pos[l].img = tp.img;
        tg->pos[l].ty = tp.ty;
        tg->pos[l].tx = tp.tx;
        tile_next(c, &tp);
    }
    tg->nseg = row_segments(tg->tin.off, tg->nvalid, m, n, tg->seg_off, tg->seg_len);
    tg->nseg_out = row_segments(tg->tout.off, tg->nvalid, m, m, tg->oseg_off, tg->oseg_len);
    tg->in_run = tg->out_run = 0;
    if (!c->k.in_run || tg->nvalid != (size_t)L) return;
    tile_at(c, t0, &tp);
    if (tp.tx + L > c->g.tw) return; /* crosses a tile row (or an image) */
    {
        const int64_t w0 = tp.tx * m - p->pad_left, span = (int64_t)L * m + 2;
        tg->rin.off = tg->tin.off[0];
        tg->rin.rows = tg->tin.rows[0];
        tg->rin.clo = (int)FC_MAX((int64_t)0, -w0);
        tg->rin.chi = (int)FC_MIN(span, W - w0);
        /* unmasked run kernels read (L + 1) * m floats of each row */
        tg->in_run = c->k.run_masked || (w0 >= 0 && w0 + (int64_t)(L + 1) * m <= W);
    }
    {
        const int64_t ow0 = tp.tx * m, span = (int64_t)L * m;
        tg->rout.off = tg->tout.off[0];
        tg->rout.rows = tg->tout.rows[0];
        tg->rout.clo = 0;
        tg->rout.chi = (int)FC_MIN(span, Wo - ow0);
        tg->out_run = c->k.run_masked || tg->rout.chi == span;
    }
}

/* Prefetch `rows` rows (rs apart) of each of a group's row segments in a plane WINO_PF
 * channels on: the segments are a few cache lines each, a plane apart, too short for the
 * hardware prefetchers. `perf` on VGG-16 conv1_2 (12.8 MB in, 12.8 MB out): without it
 * most of the transform kernels' time waited on these lines; with it the non-GEMM time
 * fell by ~20% (224x224), ~8% (112x112), ~0 (56x56). */
static void prefetch_segs(const float *plane, int64_t rs, int rows, int nseg,
                          const ptrdiff_t *off, const int *len, int write) {
    for (int sg = 0; sg < nseg; sg++)
        for (int r = 0; r < rows; r++) {
            const float *a = plane + off[sg] + r * rs;
            for (int f = 0; f < len[sg]; f += 16) {
                if (write) WINO_PREFETCH(a + f, 1); else WINO_PREFETCH(a + f, 0);
            }
            if (write) WINO_PREFETCH(a + len[sg] - 1, 1); else WINO_PREFETCH(a + len[sg] - 1, 0);
        }
}

/* Input transform of one channel of a group into V (lanes floats per point, vs apart). */
static void input_group(const wino_ctx *c, const tile_group *tg, int64_t ci, float *v, size_t vs) {
    const fc_conv2d_params *p = c->p;
    const float *plane = c->x + ci * p->in_h * p->in_w;
    if (WINO_PF > 0 && ci + WINO_PF < p->in_channels)
        prefetch_segs(plane + WINO_PF * p->in_h * p->in_w, p->in_w, c->g.n, tg->nseg,
                      tg->seg_off, tg->seg_len, 0);
    if (tg->in_run)
        c->k.in_run(plane, (ptrdiff_t)p->in_w, &tg->rin, v, vs);
    else
        c->k.in_tiles(plane, (ptrdiff_t)p->in_w, &tg->tin, v, vs);
}

/* Output transform of one channel of a group from M (lanes floats per point, ms apart). */
static void output_group(const wino_ctx *c, const tile_group *tg, int64_t co, const float *mv,
                         size_t ms) {
    const fc_conv2d_params *p = c->p;
    const float *bias = c->bias ? c->bias + co : NULL;
    float *plane = c->y + co * p->out_h * p->out_w;
    if (WINO_PF > 0 && co + WINO_PF < p->out_channels)
        prefetch_segs(plane + WINO_PF * p->out_h * p->out_w, p->out_w, c->g.m, tg->nseg_out,
                      tg->oseg_off, tg->oseg_len, 1);
    if (tg->out_run)
        c->k.out_run(mv, ms, bias, p->relu, plane, (ptrdiff_t)p->out_w, &tg->rout);
    else
        c->k.out_tiles(mv, ms, bias, p->relu, plane, (ptrdiff_t)p->out_w, &tg->tout);
}

/* output_group with the 2x2 stride-2 max pool fused (floor mode: an odd last row or
 * column of the conv output belongs to no window and is never written). Pooled row ph of
 * tile (ty, tx) comes from conv rows 2 ph, 2 ph + 1 of the same tile, because the tile's
 * origin (ty m, tx m) is even. The output kernel writes the group's tiles side by side
 * into a local m x L*m buffer (tiles form, all rows and columns), whose 2x2 windows are
 * reduced in fastconv's max pool order -- fc_nanmax_f32 over (r0 c0, r1 c0) and (r0 c1,
 * r1 c1), then of the two; the AVX2 2x2/2 pooling kernel when the ISA has AVX2 -- so
 * every output has the bits of max_pool2d of the unpooled conv; the valid pooled part is
 * then copied out, in one piece per row for a group along one pooled row. */
static void output_group_pool2(const wino_ctx *c, const tile_group *tg, int64_t co,
                               const float *mv, size_t ms) {
    const fc_conv2d_params *p = c->p;
    const int m = c->g.m, h = m / 2, L = c->k.lanes;
    const int64_t Hp = p->out_h / 2, Wp = p->out_w / 2, rs = (int64_t)L * m;
    const float *bias = c->bias ? c->bias + co : NULL;
    float loc[4 * FC_WINO_MAX_LANES * 4], ploc[2 * FC_WINO_MAX_LANES * 2];
    const size_t nv = tg->nvalid;
    const int64_t pw_all = (int64_t)L * h; /* pooled floats per row of the buffer */
    if (!nv) return;
    c->k.out_tiles(mv, ms, bias, p->relu, loc, (ptrdiff_t)rs, &tg->tloc);
    /* buffer rows 2r, 2r+1 are one row pair of 2 * rs floats: the AVX2 2x2/2 pooling
     * kernel (same order, same bits) pools all h pairs in one call */
    if (c->isa != FC_ISA_SCALAR) {
        fc_f32_maxpool2x2__avx2(loc, ploc, h, pw_all);
    } else {
        for (int r = 0; r < h; r++) {
            const float *a = loc + 2 * r * rs, *b = a + rs;
            for (int64_t j = 0; j < pw_all; j++)
                ploc[r * pw_all + j] = fc_nanmax_f32(fc_nanmax_f32(a[2 * j], b[2 * j]),
                                                     fc_nanmax_f32(a[2 * j + 1], b[2 * j + 1]));
        }
    }
    const int64_t img = tg->pos[0].img, ty = tg->pos[0].ty, tx = tg->pos[0].tx;
    const int run = tg->pos[nv - 1].img == img && tg->pos[nv - 1].ty == ty &&
                    tg->pos[nv - 1].tx == tx + (int64_t)nv - 1;
    for (size_t l = 0; l < (run ? 1 : nv); l++) {
        const int64_t ph = tg->pos[l].ty * h, pw = tg->pos[l].tx * h;
        const int64_t rows = FC_MIN((int64_t)h, Hp - ph);
        const int64_t cols = FC_MIN((int64_t)(run ? (int64_t)nv * h : h), Wp - pw);
        float *dst = c->y + ((tg->pos[l].img * p->out_channels + co) * Hp + ph) * Wp + pw;
        for (int64_t r = 0; r < rows; r++) {
            const float *src = ploc + r * pw_all + (int64_t)h * l;
            for (int64_t j = 0; j < cols; j++) dst[r * Wp + j] = src[j];
        }
    }
}

static inline void team_barrier(int nth) {
#ifdef _OPENMP
    if (nth > 1) {
#pragma omp barrier
    }
#else
    (void)nth;
#endif
}

/* Item `it` of a transform phase over `ngroups` groups x `nch` channels, ordered (panel,
 * channel, group of the panel) with gpp groups per panel (fewer in a last, partial one):
 * its panel q, channel ch and group g. The groups of a panel are innermost so that each
 * point's row of a panel (nr floats, whole cache lines) of V is written, and of M read,
 * in one go; with the channel innermost every line went half at a time, an eviction
 * apart (`perf`: 15% of VGG-16 conv1_2 in the input transform). */
static void item_at(size_t it, size_t nch, size_t gpp, size_t ngroups, size_t *q, size_t *ch,
                    size_t *g) {
    const size_t qq = it / (nch * gpp), gl = FC_MIN(gpp, ngroups - qq * gpp);
    const size_t r = it - qq * nch * gpp;
    *q = qq;
    *ch = r / gl;
    *g = qq * gpp + r % gl;
}

/* The block of `valid` tiles from tile t0 (a multiple of LANES_MAX) by thread tid of a team of
 * nth sharing the buffers V, M. */
static void run_block(wino_ctx *c, size_t t0, size_t valid, int tid, int nth, float *V,
                      float *M) {
    const fc_conv2d_params *p = c->p;
    const int64_t Ci = p->in_channels, Co = p->out_channels;
    const size_t T = c->g.T, nr = c->nr;
    const size_t L = (size_t)c->k.lanes;
    /* GEMM columns (extra lanes zero): 16 tiles (a 14x14 map with F(4x4) at batch 1) cost
     * 16 columns under avx512, not 32 */
    size_t ncols = fc_wino_gemm_cols(valid, nr);
    if (ncols % L) ncols = FC_ROUND_UP(valid, nr);
    const size_t gin = ncols / L, gout = cdiv(valid, L);
    const size_t vs = (size_t)Ci * T, msz = (size_t)Co * T;
    const size_t gpp = nr / L;
    size_t lo, hi, it, q, ch, gi, cur = SIZE_MAX;
    tile_group tgs[WINO_T_GRAIN / 8]; /* the groups of one panel (nr | WINO_T_GRAIN) */

    /* 1. input transform */
    split_range(gin * (size_t)Ci, (size_t)nth, (size_t)tid, &lo, &hi);
    for (it = lo; it < hi; it++) {
        item_at(it, (size_t)Ci, gpp, gin, &q, &ch, &gi);
        if (q != cur) {
            cur = q;
            for (size_t k = 0; k < gpp && q * gpp + k < gin; k++) {
                /* padding lanes of the last panel: no tiles, zeros */
                const size_t ck = (q * gpp + k) * L;
                group_at(c, ck < valid ? t0 + ck : c->g.ntiles, &tgs[k]);
            }
        }
        input_group(c, &tgs[gi - q * gpp], (int64_t)ch,
                    V + q * (size_t)Ci * nr + ch * nr + (gi - q * gpp) * L, vs);
    }
    team_barrier(nth);

    /* 2. one GEMM per point */
    split_range((size_t)c->g.np, (size_t)nth, (size_t)tid, &lo, &hi);
    for (it = lo; it < hi; it++) {
        fc_gemm_ex_args a = {0};
        a.isa = c->isa;
        a.m = Co;
        a.n = (int64_t)ncols;
        a.k = Ci;
        a.apacked = (const float *)(const void *)(c->u + it * c->g.ua_bytes);
        a.bpacked = V + it * vs;
        a.c = M + it * msz;
        a.rs_c = (int64_t)T;
        a.num_threads = 1;
        if (fc_sgemm_ex(&a, NULL, 0) != FC_OK) c->err = 1;
    }
    team_barrier(nth);

    /* 3. output transform, in the same order */
    split_range(gout * (size_t)Co, (size_t)nth, (size_t)tid, &lo, &hi);
    cur = SIZE_MAX;
    for (it = lo; it < hi; it++) {
        item_at(it, (size_t)Co, gpp, gout, &q, &ch, &gi);
        if (q != cur) {
            cur = q;
            for (size_t k = 0; k < gpp && q * gpp + k < gout; k++)
                group_at(c, t0 + (q * gpp + k) * L, &tgs[k]);
        }
        if (c->pool2)
            output_group_pool2(c, &tgs[gi - q * gpp], (int64_t)ch, M + ch * T + gi * L, msz);
        else
            output_group(c, &tgs[gi - q * gpp], (int64_t)ch, M + ch * T + gi * L, msz);
    }
}

static void run_thread(wino_ctx *c, int tid, int nth) {
    fc_fpmode fpm = fc_flush_denormals();
    const size_t pair = c->g.vbytes + c->g.mbytes, n = c->g.ntiles, Tb = c->g.Tb;
    if (c->g.priv) {
        char *buf = c->bufs + (size_t)tid * pair;
        const size_t lo = FC_MIN(n, FC_ROUND_UP(n * (size_t)tid / (size_t)nth, (size_t)LANES_MAX));
        const size_t hi =
            FC_MIN(n, FC_ROUND_UP(n * (size_t)(tid + 1) / (size_t)nth, (size_t)LANES_MAX));
        for (size_t t0 = lo; t0 < hi; t0 += Tb)
            run_block(c, t0, FC_MIN(Tb, hi - t0), 0, 1, (float *)(void *)buf,
                      (float *)(void *)(buf + c->g.vbytes));
    } else {
        for (size_t t0 = 0; t0 < n; t0 += Tb)
            run_block(c, t0, FC_MIN(Tb, n - t0), tid, nth, (float *)(void *)c->bufs,
                      (float *)(void *)(c->bufs + c->g.vbytes));
    }
    fc_restore_fpmode(fpm);
}

static fc_status run(const fc_conv2d_params *p, fc_conv_algo algo, fc_isa isa, const float *x,
                     const char *u, const float *bias, float *y, int pool2, char *bufs) {
    wino_ctx c;
    fc_status st = geometry(p, tile_m(algo), &c.g);
    if (st != FC_OK) return st;
    c.p = p;
    get_impl(isa, c.g.m, &c.k);
    c.isa = isa;
    c.nr = fc_sgemm_nr(isa);
    if (c.nr % (size_t)c.k.lanes != 0 || c.g.T % c.nr != 0) return FC_EUNSUPPORTED;
    c.x = x;
    c.bias = bias;
    c.y = y;
    c.pool2 = pool2;
    c.u = u;
    c.bufs = bufs;
    c.err = 0;
#ifdef _OPENMP
    if (p->num_threads > 1) {
#pragma omp parallel num_threads(p->num_threads)
        run_thread(&c, omp_get_thread_num(), omp_get_num_threads());
    } else
#endif
        run_thread(&c, 0, 1);
    return c.err ? FC_EINVAL : FC_OK;
}

fc_status fc_conv2d_winograd_run(const fc_conv2d_params *p, fc_conv_algo algo, const float *x,
                                 const float *wpack, const float *bias, float *y,
                                 void *workspace, size_t workspace_bytes) {
    size_t need;
    fc_status st = fc_conv2d_winograd_run_workspace_size(p, algo, &need);
    if (st != FC_OK) return st;
    if (workspace_bytes < need || !workspace) return FC_ENOMEM;
    if (!x || !wpack || !y) return FC_EINVAL;
    return run(p, algo, fc_active_isa(), x, (const char *)wpack, bias, y, 0,
               (char *)fc_align_ptr(workspace));
}

fc_status fc_conv2d_winograd_run_maxpool2(const fc_conv2d_params *p, fc_conv_algo algo,
                                          const float *x, const float *wpack,
                                          const float *bias, float *y, void *workspace,
                                          size_t workspace_bytes) {
    size_t need;
    fc_status st = fc_conv2d_winograd_run_workspace_size(p, algo, &need);
    if (st != FC_OK) return st;
    if (workspace_bytes < need || !workspace) return FC_ENOMEM;
    if (!x || !wpack || !y) return FC_EINVAL;
    return run(p, algo, fc_active_isa(), x, (const char *)wpack, bias, y, 1,
               (char *)fc_align_ptr(workspace));
}

fc_status fc_conv2d_winograd(const fc_conv2d_params *p, fc_conv_algo algo, const float *x,
                             const float *w, const float *bias, float *y, void *workspace,
                             size_t workspace_bytes) {
    size_t need, wb;
    wino_geo g;
    fc_status st = fc_conv2d_winograd_workspace_size(p, algo, &need);
    if (st != FC_OK) return st;
    if (workspace_bytes < need || !workspace) return FC_ENOMEM;
    if ((st = geometry(p, tile_m(algo), &g)) != FC_OK || (st = weight_bytes(p, &g, &wb)) != FC_OK)
        return st;
    char *base = (char *)fc_align_ptr(workspace);
    const fc_isa isa = fc_active_isa(); /* read once: packing and run agree */
    if ((st = pack_filters(p, &g, isa, w, base)) != FC_OK) return st;
    return run(p, algo, isa, x, base, bias, y, 0, base + wb);
}
