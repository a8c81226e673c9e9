/* Pooling drivers: parameter checks, border / interior split, threading, dispatch.
 *
 * Work is one output row of one plane (plane = batch * channels) per item; runs of rows
 * are handed to threads dynamically. A window is never split, so results are
 * bit-identical for any thread count.
 *
 * A row is pooled separably (see fc_pool_kernels.h): the valid input rows of its windows
 * are reduced column by column into a per-thread stack buffer whose columns outside the
 * input hold the padding value (-inf for max, 0 for average), then the ISA's horizontal
 * kernel runs over all output columns with no bounds test. Vertical border rows simply
 * have fewer valid rows. Max needs no border case at all; average redoes the few border
 * columns (precomputed range outside [ow_lo, ow_hi)) with their own divisor. Windows
 * wider than the buffer fall back to a direct loop with clipped tap ranges.
 *
 * Small maps (output rows of at most 8 columns, planes of at most LANES_MAX_HW positions)
 * go to the planes-in-lanes kernels instead when the ISA has AVX2: groups of 8 planes,
 * split statically over the threads (see pool_lanes below); 2x2 windows at stride 2 on
 * planes of even size, the most common case, to a kernel that needs no transposes
 * (pool_2x2). */
#include <math.h>
#include "fc_internal.h"
#include "fc_pool_kernels.h"

/* Every int64 field stays below this so that the output-size rule and tap positions
 * (sums of a few fields) cannot overflow int64. */
#define POOL_FIELD_MAX (INT64_MAX / 4)

fc_status fc_pool2d_check(const fc_pool2d_params *p) {
    if (!p) return FC_EINVAL;
    if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1 ||
        p->dilation_h < 1 || p->dilation_w < 1)
        return FC_EINVAL;
    if (p->pad_top < 0 || p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0)
        return FC_EINVAL;
    if ((p->ceil_mode != 0 && p->ceil_mode != 1) ||
        (p->count_include_pad != 0 && p->count_include_pad != 1) || p->num_threads < 1)
        return FC_EINVAL;
    if (p->batch < 0 || p->channels < 1 || p->in_h < 1 || p->in_w < 1) return FC_ESHAPE;
    const int64_t fields[] = {p->batch, p->channels, p->in_h, p->in_w, p->kernel_h,
                              p->kernel_w, p->stride_h, p->stride_w, p->pad_top,
                              p->pad_left, p->pad_bottom, p->pad_right, p->dilation_h,
                              p->dilation_w, p->out_h, p->out_w};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i] > POOL_FIELD_MAX) return FC_EOVERFLOW;
    if (p->kernel_h - 1 > POOL_FIELD_MAX / p->dilation_h ||
        p->kernel_w - 1 > POOL_FIELD_MAX / p->dilation_w)
        return FC_EOVERFLOW;
    int64_t oh = fc_out_size(p->in_h, p->pad_top, p->pad_bottom, p->kernel_h, p->stride_h,
                             p->dilation_h, p->ceil_mode);
    int64_t ow = fc_out_size(p->in_w, p->pad_left, p->pad_right, p->kernel_w, p->stride_w,
                             p->dilation_w, p->ceil_mode);
    if (oh < 1 || ow < 1 || p->out_h != oh || p->out_w != ow) return FC_ESHAPE;
    /* element and byte counts of x and y (per sample too, so batch = 0 is checked) */
    const int64_t xs[] = {p->batch, p->channels, p->in_h, p->in_w};
    const int64_t ys[] = {p->batch, p->channels, p->out_h, p->out_w};
    size_t n;
    for (int k = 0; k < 2; k++) {
        const int64_t *v = k ? ys : xs;
        if (fc_count(&n, 4, v) || fc_mul_size(n, sizeof(float), &n) || n > PTRDIFF_MAX ||
            fc_count(&n, 3, v + 1) || fc_mul_size(n, sizeof(float), &n) || n > PTRDIFF_MAX)
            return FC_EOVERFLOW;
    }
    return FC_OK;
}

/* Floats in each thread's column buffer (16 KB of stack): output rows are done in column
 * chunks whose windows span at most this many input columns. */
#define POOL_BUF 4096
/* Divisor counts up to this get a precomputed 1.0f / count (no divide per border column). */
#define POOL_INV 1024

typedef struct {
    const fc_pool2d_params *p;
    size_t in_plane, out_plane;
    int64_t ow_lo, ow_hi;   /* output columns whose windows are fully inside the input */
    int64_t chunk;          /* output columns per buffer fill; 0: windows too wide, direct */
    int fused;              /* every column interior and windows disjoint: skip the buffer */
    int64_t ninv;           /* inv[c] = 1.0f / c for divisor counts c < ninv (average) */
    float inv[POOL_INV];
    fc_f32_pool_vert_fn vert;
    fc_f32_maxpool_h_fn hmax;
    fc_f32_avgpool_h_fn havg;
    fc_f32_avgpool3_row_fn avg3;   /* average, 3 columns wide, stride 1, pad 1 | 1: whole rows */
} pool_geom;

static void geom_init(pool_geom *g, const fc_pool2d_params *p, int is_max) {
    g->p = p;
    g->in_plane = (size_t)p->in_h * (size_t)p->in_w;
    g->out_plane = (size_t)p->out_h * (size_t)p->out_w;
    int64_t lo = (p->pad_left + p->stride_w - 1) / p->stride_w;
    int64_t last = p->in_w - 1 - (p->kernel_w - 1) * p->dilation_w + p->pad_left;
    int64_t hi = last < 0 ? 0 : FC_MIN(p->out_w, last / p->stride_w + 1);
    g->ow_lo = FC_MIN(lo, p->out_w);
    g->ow_hi = FC_MAX(g->ow_lo, hi);
    int64_t span = (p->kernel_w - 1) * p->dilation_w + 1;   /* input columns of one window */
    g->chunk = span > POOL_BUF ? 0 : (POOL_BUF - span) / p->stride_w + 1;
    g->fused = g->ow_lo == 0 && g->ow_hi == p->out_w && p->stride_w >= span;
    g->ninv = 0;
    if (!is_max && p->kernel_h <= POOL_INV / p->kernel_w) {
        g->ninv = p->kernel_h * p->kernel_w + 1;   /* counts never exceed the window */
        for (int64_t c = 0; c < g->ninv; c++) g->inv[c] = 1.0f / (float)c;
    }
    const int avx2 = fc_isa_has_avx2(fc_active_isa());
    if (is_max) g->vert = avx2 ? fc_f32_maxpool_v__avx2 : fc_f32_maxpool_v__scalar;
    else g->vert = avx2 ? fc_f32_sumpool_v__avx2 : fc_f32_sumpool_v__scalar;
    g->hmax = avx2 ? fc_f32_maxpool_h__avx2 : fc_f32_maxpool_h__scalar;
    g->havg = avx2 ? fc_f32_avgpool_h__avx2 : fc_f32_avgpool_h__scalar;
    g->avg3 = NULL;
    if (!is_max && p->kernel_w == 3 && p->stride_w == 1 && p->pad_left == 1 &&
        p->pad_right == 1 && p->in_w >= 2 && p->out_w == p->in_w)
        g->avg3 = avx2 ? fc_f32_avgpool3_row__avx2 : fc_f32_avgpool3_row__scalar;
}

/* buf[c - c0] for input columns c in [c0, c1): the vertical reduction of the nr rows at xr
 * inside the input, `pad` outside it. */
static inline void fill_columns(const pool_geom *g, const float *xr, ptrdiff_t rs, int64_t nr,
                                int64_t c0, int64_t c1, float pad, float *buf) {
    const int64_t in_w = g->p->in_w;
    const int64_t lo = FC_MIN(FC_MAX(c0, 0), c1), hi = FC_MAX(FC_MIN(c1, in_w), lo);
    for (int64_t c = c0; c < lo; c++) buf[c - c0] = pad;
    if (hi > lo) g->vert(xr + lo, rs, nr, buf + (lo - c0), hi - lo);
    for (int64_t c = hi; c < c1; c++) buf[c - c0] = pad;
}

/* Direct max over the clipped window of column ow, taps column-major (the reference
 * order); xr = first valid input row. For windows wider than the buffer. */
static float max_direct(const fc_pool2d_params *p, const float *xr, ptrdiff_t rs, int64_t nr,
                        int64_t ow) {
    const int64_t ws = ow * p->stride_w - p->pad_left;
    int64_t c0, c1;
    fc_pool_tap_range(ws, p->kernel_w, p->dilation_w, p->in_w, &c0, &c1);
    float m = -INFINITY;
    for (int64_t t = c0; t < c1; t++)
        for (int64_t r = 0; r < nr; r++)
            m = fc_nanmax_f32(m, xr[r * rs + ws + t * p->dilation_w]);
    return m;
}

/* One output row (plane, oh) of max pooling. */
static void max_row(const pool_geom *g, const float *x, float *y, int64_t plane, int64_t oh,
                    float *buf) {
    const fc_pool2d_params *p = g->p;
    float *yr = y + (size_t)plane * g->out_plane + (size_t)oh * (size_t)p->out_w;
    const int64_t hs = oh * p->stride_h - p->pad_top;
    int64_t r0, r1;
    fc_pool_tap_range(hs, p->kernel_h, p->dilation_h, p->in_h, &r0, &r1);
    if (r1 == r0) {   /* a row of windows that hold only padding */
        for (int64_t ow = 0; ow < p->out_w; ow++) yr[ow] = -INFINITY;
        return;
    }
    const float *xr = x + (size_t)plane * g->in_plane +
                      (size_t)(hs + r0 * p->dilation_h) * (size_t)p->in_w;
    const ptrdiff_t rs = (ptrdiff_t)(p->dilation_h * p->in_w);
    const int64_t nr = r1 - r0;
    if (g->fused) {   /* no padding in this row, windows do not overlap: no buffer */
        g->hmax(xr - p->pad_left, rs, nr, p->kernel_w, p->stride_w, p->dilation_w, yr, p->out_w);
        return;
    }
    if (g->chunk == 0) {
        for (int64_t ow = 0; ow < p->out_w; ow++) yr[ow] = max_direct(p, xr, rs, nr, ow);
        return;
    }
    /* -inf padding never changes a max, so border columns need no special case */
    for (int64_t o0 = 0; o0 < p->out_w; o0 += g->chunk) {
        const int64_t o1 = FC_MIN(p->out_w, o0 + g->chunk);
        const int64_t c0 = o0 * p->stride_w - p->pad_left;
        const int64_t c1 = (o1 - 1) * p->stride_w - p->pad_left +
                           (p->kernel_w - 1) * p->dilation_w + 1;
        fill_columns(g, xr, rs, nr, c0, c1, -INFINITY, buf);
        g->hmax(buf, 0, 1, p->kernel_w, p->stride_w, p->dilation_w, yr + o0, o1 - o0);
    }
}

/* 1.0f / count, from the table when it has it (same bits either way). */
static inline float inv_count(const pool_geom *g, int64_t c) {
    return c < g->ninv ? g->inv[c] : 1.0f / (float)c;
}

/* Direct mean over the clipped window of column ow (column sums, then their sum: the
 * reference order). For windows wider than the buffer and rows of padding only. */
static float avg_direct(const pool_geom *g, const float *xr, int64_t nr, int64_t cnt_h,
                        int64_t ow) {
    const fc_pool2d_params *p = g->p;
    const int64_t ws = ow * p->stride_w - p->pad_left;
    int64_t c0, c1;
    fc_pool_tap_range(ws, p->kernel_w, 1, p->in_w, &c0, &c1);
    float s = 0.0f;
    for (int64_t t = c0; t < c1; t++) {
        float c = 0.0f;
        for (int64_t r = 0; r < nr; r++) c += xr[r * p->in_w + ws + t];
        s += c;
    }
    return s * inv_count(g, cnt_h * fc_pool_avg_cols(p, ow));   /* 0 * inf = NaN: padding only */
}

/* One output row (plane, oh) of average pooling (dilation 1). */
static void avg_row(const pool_geom *g, const float *x, float *y, int64_t plane, int64_t oh,
                    float *buf) {
    const fc_pool2d_params *p = g->p;
    float *yr = y + (size_t)plane * g->out_plane + (size_t)oh * (size_t)p->out_w;
    const int64_t hs = oh * p->stride_h - p->pad_top;
    int64_t r0, r1;
    fc_pool_tap_range(hs, p->kernel_h, 1, p->in_h, &r0, &r1);
    const int64_t nr = r1 - r0;
    const int64_t cnt_h = fc_pool_avg_rows(p, oh, nr);
    const float *xr = x + (size_t)plane * g->in_plane;
    if (nr > 0) xr += (size_t)(hs + r0) * (size_t)p->in_w;
    if (g->avg3 && nr > 0) {   /* 3 wide, stride 1, pad 1: straight from the input rows */
        const float inv = inv_count(g, cnt_h * 3);
        g->avg3(xr, (ptrdiff_t)p->in_w, nr, p->in_w, inv,
                p->count_include_pad ? inv : inv_count(g, cnt_h * 2), yr);
        return;
    }
    if (g->fused && nr > 0) {
        g->havg(xr - p->pad_left, (ptrdiff_t)p->in_w, nr, p->kernel_w, p->stride_w,
                inv_count(g, cnt_h * p->kernel_w), yr, p->out_w);
        return;
    }
    if (nr == 0 || g->chunk == 0) {
        for (int64_t ow = 0; ow < p->out_w; ow++) yr[ow] = avg_direct(g, xr, nr, cnt_h, ow);
        return;
    }
    const int64_t kw = p->kernel_w, sw = p->stride_w;
    for (int64_t o0 = 0; o0 < p->out_w; o0 += g->chunk) {
        const int64_t o1 = FC_MIN(p->out_w, o0 + g->chunk);
        const int64_t c0 = o0 * sw - p->pad_left;
        const int64_t c1 = (o1 - 1) * sw - p->pad_left + kw;
        fill_columns(g, xr, (ptrdiff_t)p->in_w, nr, c0, c1, 0.0f, buf);
        /* every column with the interior divisor, then the border columns again */
        g->havg(buf, 0, 1, kw, sw, inv_count(g, cnt_h * kw), yr + o0, o1 - o0);
        for (int64_t ow = o0; ow < o1; ow++) {
            if (ow == g->ow_lo && g->ow_hi > ow) ow = FC_MIN(g->ow_hi, o1) - 1;
            if (ow >= g->ow_lo && ow < g->ow_hi) continue;
            const float *v = buf + (ow * sw - p->pad_left - c0);
            float s = 0.0f;
            for (int64_t t = 0; t < kw; t++) s += v[t];
            yr[ow] = s * inv_count(g, cnt_h * fc_pool_avg_cols(p, ow));
        }
    }
}

/* Threads: rows go out in chunks of about POOL_CHUNK_ELEMS input elements, handed out
 * dynamically (a thread that is descheduled on a busy machine holds up one chunk, not a
 * static share); a call with little work uses fewer threads. Which thread computes a row
 * never changes its value. */
#define POOL_CHUNK_ELEMS 32768

static void pool_rows(const pool_geom *g, const float *x, float *y, int is_max) {
    const fc_pool2d_params *p = g->p;
    const int64_t items = p->batch * p->channels * p->out_h;
    const fc_pool_split sp = fc_pool_split_rows(items, g->in_plane, p->out_h, POOL_CHUNK_ELEMS,
                                                p->num_threads);
    const int64_t rows_per_chunk = sp.rows_per_chunk, chunks = sp.chunks;
    const int nt = sp.threads;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        float buf[POOL_BUF] __attribute__((aligned(64)));
        /* averages flush subnormals (sums of them are slow); a max is exact and fast, so
         * max pooling keeps them */
        const fc_fpmode fpm = is_max ? fc_current_fpmode() : fc_flush_denormals();
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int64_t ch = 0; ch < chunks; ch++) {
            const int64_t b = ch * rows_per_chunk, e = FC_MIN(items, b + rows_per_chunk);
            int64_t plane = b / p->out_h, oh = b % p->out_h;
            for (int64_t it = b; it < e; it++) {
                if (is_max) max_row(g, x, y, plane, oh, buf);
                else avg_row(g, x, y, plane, oh, buf);
                if (++oh == p->out_h) { oh = 0; plane++; }
            }
        }
        fc_restore_fpmode(fpm);
    }
}

/* ------------------------------------------------------------------ small maps */

/* Planes in lanes (fc_pool_kernels.h): for output rows of up to 8 columns (below 8 the
 * row kernels fall back to scalar loops; at 8 the per-row call still costs more than the
 * transposes) and planes small enough that a transposed group stays in L1 next to the
 * input stream (measured: 32x32 planes are faster on the row kernels). */
#define LANES_MAX_HW 512    /* input positions per plane: a 16 KB transposed group */
#define LANES_MAX_OHW 512   /* output positions per plane (the divisor table) */
/* Input elements per thread below which the call stays on one thread: a team costs a
 * few microseconds, about what one thread needs for this much of a small map. */
#define LANES_MIN_PER_THREAD 65536

/* Team size for `units` work items over `elems` input elements: at most one thread per
 * LANES_MIN_PER_THREAD elements and per unit (shape and thread count only). */
static int small_team(const fc_pool2d_params *p, int64_t elems, int64_t units) {
    const int64_t want = FC_MAX((int64_t)1, elems / LANES_MIN_PER_THREAD);
    return (int)FC_MIN(FC_MIN((int64_t)p->num_threads, want), units);
}

/* This thread's index and the team's size inside a parallel region (0, 1 outside). */
static void team_position(int *tid, int *team) {
    *tid = 0;
    *team = 1;
#ifdef _OPENMP
    *tid = omp_get_thread_num();
    *team = omp_get_num_threads();
#endif
}

/* Pools with the lanes kernels if the shape suits them; returns 0 (nothing done) if not. */
static int pool_lanes(const fc_pool2d_params *p, const float *x, float *y, int is_max) {
    if (!fc_isa_has_avx2(fc_active_isa())) return 0;
    const int64_t hw = p->in_h * p->in_w, ohw = p->out_h * p->out_w;
    if (p->out_w > 8 || hw > LANES_MAX_HW || ohw > LANES_MAX_OHW) return 0;
    int32_t row0[LANES_MAX_OHW], nrow[LANES_MAX_OHW], col0[LANES_MAX_OHW], ncol[LANES_MAX_OHW];
    float inv[LANES_MAX_OHW];
    int64_t t0, t1;
    for (int64_t oh = 0; oh < p->out_h; oh++) {
        const int64_t hs = oh * p->stride_h - p->pad_top;
        fc_pool_tap_range(hs, p->kernel_h, p->dilation_h, p->in_h, &t0, &t1);
        nrow[oh] = (int32_t)(t1 - t0);
        row0[oh] = t1 > t0 ? (int32_t)(hs + t0 * p->dilation_h) : 0;
    }
    for (int64_t ow = 0; ow < p->out_w; ow++) {
        const int64_t ws = ow * p->stride_w - p->pad_left;
        fc_pool_tap_range(ws, p->kernel_w, p->dilation_w, p->in_w, &t0, &t1);
        ncol[ow] = (int32_t)(t1 - t0);
        col0[ow] = t1 > t0 ? (int32_t)(ws + t0 * p->dilation_w) : 0;
    }
    if (!is_max)   /* the divisors of avg_row / avg_direct, 1.0f / count as inv_count */
        for (int64_t oh = 0; oh < p->out_h; oh++) {
            const int64_t cnt_h = fc_pool_avg_rows(p, oh, nrow[oh]);
            for (int64_t ow = 0; ow < p->out_w; ow++)
                inv[oh * p->out_w + ow] = 1.0f / (float)(cnt_h * fc_pool_avg_cols(p, ow));
        }
    const fc_pool_lanes_geom lg = {p->in_w, hw, p->out_w, ohw, p->dilation_h, p->dilation_w,
                                   row0, nrow, col0, ncol, inv};
    const fc_f32_pool_lanes_fn f = is_max ? fc_f32_maxpool_lanes__avx2 : fc_f32_avgpool_lanes__avx2;
    const int64_t planes = p->batch * p->channels, groups = (planes + 7) / 8;
    /* a static split of the groups: it depends on the shape and the thread count only */
    const int nt = small_team(p, planes * hw, groups);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        float t[8 * LANES_MAX_HW] __attribute__((aligned(32)));
        /* as pool_rows: averages flush subnormals, max pooling keeps them */
        const fc_fpmode fpm = is_max ? fc_current_fpmode() : fc_flush_denormals();
        int tid, team;
        team_position(&tid, &team);
        const int64_t g0 = groups * tid / team, g1 = groups * (tid + 1) / team;
        for (int64_t gi = g0; gi < g1; gi++) {
            const int np = (int)FC_MIN((int64_t)8, planes - gi * 8);
            f(&lg, x + (size_t)gi * 8 * (size_t)hw, y + (size_t)gi * 8 * (size_t)ohw, np, t);
        }
        fc_restore_fpmode(fpm);
    }
    return 1;
}

/* 2x2 windows at stride 2 without padding on planes of even height and width, rows of 1,
 * 2, 4 or 8..16 outputs: the whole tensor as one sequence of row pairs (fc_pool_kernels.h),
 * no transposes. Threads get runs of whole 8-row-pair blocks, split statically. */
static int pool_2x2(const fc_pool2d_params *p, const float *x, float *y, int is_max) {
    if (!fc_isa_has_avx2(fc_active_isa())) return 0;
    if (p->kernel_h != 2 || p->kernel_w != 2 || p->stride_h != 2 || p->stride_w != 2 ||
        p->dilation_h != 1 || p->dilation_w != 1 || p->pad_top != 0 || p->pad_left != 0 ||
        p->pad_bottom != 0 || p->pad_right != 0 || p->in_h != 2 * p->out_h ||
        p->in_w != 2 * p->out_w)
        return 0;
    const int64_t ow = p->out_w;
    if (!(ow == 1 || ow == 2 || ow == 4 || (ow >= 8 && ow <= 16))) return 0;
    const int64_t nq = p->batch * p->channels * p->out_h, blocks = (nq + 7) / 8;
    const int nt = small_team(p, nq * 4 * ow, blocks);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        const fc_fpmode fpm = is_max ? fc_current_fpmode() : fc_flush_denormals();
        int tid, team;
        team_position(&tid, &team);
        const int64_t q0 = blocks * tid / team * 8, q1 = FC_MIN(nq, blocks * (tid + 1) / team * 8);
        if (q1 > q0) {
            const float *xs = x + (size_t)q0 * 4 * (size_t)ow;
            float *ys = y + (size_t)q0 * (size_t)ow;
            if (is_max) fc_f32_maxpool2x2__avx2(xs, ys, q1 - q0, ow);
            else fc_f32_avgpool2x2__avx2(xs, ys, q1 - q0, ow);
        }
        fc_restore_fpmode(fpm);
    }
    return 1;
}

fc_status fc_max_pool2d(const fc_pool2d_params *p, const float *x, float *y) {
    fc_status st = fc_pool2d_check(p);
    if (st != FC_OK) return st;
    if (p->batch == 0) return FC_OK;
    if (!x || !y) return FC_EINVAL;
    if (pool_2x2(p, x, y, 1) || pool_lanes(p, x, y, 1)) return FC_OK;
    pool_geom g;
    geom_init(&g, p, 1);
    pool_rows(&g, x, y, 1);
    return FC_OK;
}

fc_status fc_avg_pool2d(const fc_pool2d_params *p, const float *x, float *y) {
    fc_status st = fc_pool2d_check(p);
    if (st != FC_OK) return st;
    if (p->dilation_h != 1 || p->dilation_w != 1) return FC_EINVAL;
    if (p->batch == 0) return FC_OK;
    if (!x || !y) return FC_EINVAL;
    if (pool_2x2(p, x, y, 0) || pool_lanes(p, x, y, 0)) return FC_OK;
    pool_geom g;
    geom_init(&g, p, 0);
    pool_rows(&g, x, y, 0);
    return FC_OK;
}

/* ------------------------------------------------------------------ global pooling */

static fc_status global_check(int64_t planes, int64_t size, const float *x, const float *y,
                              int num_threads) {
    if (planes < 0 || num_threads < 1) return FC_EINVAL;
    if (size < 1) return FC_ESHAPE;
    const int64_t v[] = {planes, size};
    size_t n;
    if (fc_count(&n, 2, v) || fc_mul_size(n, sizeof(float), &n) || n > PTRDIFF_MAX ||
        fc_mul_size((size_t)size, sizeof(float), &n) || n > PTRDIFF_MAX)
        return FC_EOVERFLOW;
    if (planes > 0 && (!x || !y)) return FC_EINVAL;
    return FC_OK;
}

/* One plane per item, each reduced by one thread in the kernel's fixed order. */
static fc_status global_pool(int64_t planes, int64_t size, const float *x, float *y,
                             int num_threads, int is_max) {
    fc_status st = global_check(planes, size, x, y, num_threads);
    if (st != FC_OK || planes == 0) return st;
    const int avx2 = fc_isa_has_avx2(fc_active_isa());
    const fc_f32_reduce_fn f = is_max ? (avx2 ? fc_f32_max__avx2 : fc_f32_max__scalar)
                                      : (avx2 ? fc_f32_sum__avx2 : fc_f32_sum__scalar);
    const size_t n = (size_t)size;
    const float div_f = (float)size;
    /* at least POOL_CHUNK_ELEMS elements per thread, else fewer threads */
    const int64_t work = (int64_t)FC_MIN((size_t)INT64_MAX, (size_t)planes * n);
    const int nt = (int)FC_MIN((int64_t)num_threads, work / POOL_CHUNK_ELEMS + 1);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16) if (nt > 1 && planes > 1)
#endif
    for (int64_t i = 0; i < planes; i++) {
        float r = f(x + (size_t)i * n, n);
        y[i] = is_max ? r : r / div_f;
    }
    return FC_OK;
}

fc_status fc_global_avg_pool(int64_t planes, int64_t size, const float *x, float *y,
                             int num_threads) {
    return global_pool(planes, size, x, y, num_threads, 0);
}

fc_status fc_global_max_pool(int64_t planes, int64_t size, const float *x, float *y,
                             int num_threads) {
    return global_pool(planes, size, x, y, num_threads, 1);
}
