/* Max and average pooling of channel-blocked (NCHW8c) tensors: x [N][CB][H][W][8] ->
 * y [N][CB][Ho][Wo][8], CB = ceil(C/8) (layout in fastconv.h).
 *
 * The 8 lanes of a pixel are 8 channels, so a window is reduced 8 channels at a time with
 * no transposes and no buffer: each output pixel walks its window's valid taps directly,
 * as 8-lane plain-C loops that gcc vectorizes. The taps go in the reference order
 * (src_c/ref/fc_ref_pool.c: kernel column outer, kernel row inner): max with
 * fc_nanmax_f32 from -inf, average summing each column from 0.0f and then the column
 * sums from 0.0f, times 1.0f / count. That makes every real lane bit-identical to
 * fc_max_pool2d / fc_avg_pool2d on the NCHW tensor (fc_pool_kernels.h says why those
 * match the reference). Taps outside the input are skipped rather than read as padding;
 * for max, -inf never changes a result, and for average a sum that starts at +0.0f
 * stays the same when +0.0f is added. The columns whose windows lie inside the input
 * (precomputed range) skip the clipping and go to an interior kernel: with AVX2 one
 * vector operation per tap (kernels/avx2/fc_f32_pool_nchw8c__avx2.c), else the portable
 * twin below; both give 2x2 and 3x3 windows constant trip counts.
 *
 * Tail lanes (channels past C in the last block) are stored as 0 explicitly: a window of
 * padding only gives -inf or NaN on every lane.
 *
 * Threads: items are output rows of one (image, channel block), in chunks handed out
 * dynamically; a window is never split, so any thread count gives the same bits. As in
 * fc_pool.c, average pooling flushes subnormals (FTZ/DAZ, also what the NCHW kernel
 * does), max pooling keeps the caller's mode: DAZ would make two subnormals compare
 * equal and change which one a max returns. */
#include <math.h>
#include "fc_internal.h"
#include "fc_pool_kernels.h"

#define LANES 8
/* Before a loop over the 8 lanes: keep it a loop, so that gcc's loop vectorizer makes it
 * two 4-wide SSE operations. Unrolled first (gcc's default for 8 iterations), it is left
 * to the basic-block vectorizer, which leaves the NaN-aware max select scalar. */
#define LANE_LOOP _Pragma("GCC unroll 1")
/* Input floats per chunk of rows handed to a thread (as fc_pool.c's POOL_CHUNK_ELEMS). */
#define POOL8_CHUNK_ELEMS 32768

typedef struct {
    const fc_pool2d_params *p;
    int64_t blocks;             /* channel blocks, ceil(C / 8) */
    size_t in_plane, out_plane; /* floats of one block: H * W * 8, Ho * Wo * 8 */
    int64_t ow_lo, ow_hi;       /* output columns whose windows lie inside the input */
    fc_f32_maxpool8c_fn max_int;   /* interior columns: AVX2 kernel or the portable twin */
    fc_f32_avgpool8c_fn avg_int;
} geom8;

static void max_interior(const float *x, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t step, int64_t nr,
                         int64_t nc, int64_t n, float *y, int nl);
static void avg_interior(const float *x, ptrdiff_t rs, ptrdiff_t step, int64_t nr, int64_t nc,
                         float inv, int64_t n, float *y, int nl);

static void geom8_init(geom8 *g, const fc_pool2d_params *p) {
    g->p = p;
    g->blocks = p->channels / LANES + (p->channels % LANES != 0);
    g->in_plane = (size_t)p->in_h * (size_t)p->in_w * LANES;
    g->out_plane = (size_t)p->out_h * (size_t)p->out_w * LANES;
    const int64_t lo = (p->pad_left + p->stride_w - 1) / p->stride_w;
    const int64_t last = p->in_w - 1 - (p->kernel_w - 1) * p->dilation_w + p->pad_left;
    const int64_t hi = last < 0 ? 0 : FC_MIN(p->out_w, last / p->stride_w + 1);
    g->ow_lo = FC_MIN(lo, p->out_w);
    g->ow_hi = FC_MAX(g->ow_lo, hi);
    const int avx2 = fc_isa_has_avx2(fc_active_isa());
    g->max_int = avx2 ? fc_f32_maxpool8c_interior__avx2 : max_interior;
    g->avg_int = avx2 ? fc_f32_avgpool8c_interior__avx2 : avg_interior;
}

/* Valid input columns [*c0, *c1) (tap indices) of the window of output column ow. */
static inline void col_taps(const geom8 *g, int64_t ow, int64_t dw, int64_t *c0, int64_t *c1) {
    const fc_pool2d_params *p = g->p;
    if (ow >= g->ow_lo && ow < g->ow_hi) {
        *c0 = 0;
        *c1 = p->kernel_w;
    } else {
        fc_pool_tap_range(ow * p->stride_w - p->pad_left, p->kernel_w, dw, p->in_w, c0, c1);
    }
}

/* y[0..7] = v, the lanes from nl on as 0. */
static inline void store8(float *y, const float *v, int nl) {
    if (nl == LANES) {
        for (int l = 0; l < LANES; l++) y[l] = v[l];
    } else {
        for (int l = 0; l < LANES; l++) y[l] = l < nl ? v[l] : 0.0f;
    }
}

/* Max over nc columns (stride cs) of nr rows (stride rs) starting at x, column-major. */
static inline void max_window(const float *x, ptrdiff_t rs, ptrdiff_t cs, int64_t nr,
                              int64_t nc, float *m) {
    for (int l = 0; l < LANES; l++) m[l] = -INFINITY;
    for (int64_t t = 0; t < nc; t++)
        for (int64_t r = 0; r < nr; r++) {
            const float *v = x + t * cs + r * rs;
            LANE_LOOP
            for (int l = 0; l < LANES; l++) m[l] = fc_nanmax_f32(m[l], v[l]);
        }
}

/* fc_f32_maxpool8c_fn, portable (fc_pool_kernels.h): the common window sizes get
 * constant trip counts, so only the lane loop stays a loop. */
static void max_interior(const float *x, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t step, int64_t nr,
                         int64_t nc, int64_t n, float *y, int nl) {
    float m[LANES];
    for (int64_t j = 0; j < n; j++) {
        if (nr == 2 && nc == 2) max_window(x + j * step, rs, cs, 2, 2, m);
        else if (nr == 3 && nc == 3) max_window(x + j * step, rs, cs, 3, 3, m);
        else max_window(x + j * step, rs, cs, nr, nc, m);
        store8(y + j * LANES, m, nl);
    }
}

/* One output row oh of one block plane: xb, yb = the block's input and output planes. */
static void max_row8(const geom8 *g, const float *xb, float *yb, int64_t oh, int nl) {
    const fc_pool2d_params *p = g->p;
    const int64_t dh = p->dilation_h, dw = p->dilation_w;
    const int64_t hs = oh * p->stride_h - p->pad_top;
    int64_t r0, r1;
    fc_pool_tap_range(hs, p->kernel_h, dh, p->in_h, &r0, &r1);
    const int64_t nr = r1 - r0;
    const ptrdiff_t rs = (ptrdiff_t)(dh * p->in_w * LANES), cs = (ptrdiff_t)(dw * LANES);
    /* first valid input row of the windows (only formed when there is one) */
    const float *xr = nr > 0 ? xb + (size_t)(hs + r0 * dh) * (size_t)p->in_w * LANES : xb;
    float *yr = yb + (size_t)oh * (size_t)p->out_w * LANES;
    float m[LANES];
    for (int64_t ow = 0; ow < p->out_w; ow++) {
        if (ow == g->ow_lo && g->ow_hi > ow && nr > 0) {   /* interior columns */
            const ptrdiff_t step = (ptrdiff_t)(p->stride_w * LANES);
            const float *xw = xr + (ow * p->stride_w - p->pad_left) * LANES;
            g->max_int(xw, rs, cs, step, nr, p->kernel_w, g->ow_hi - ow, yr + ow * LANES, nl);
            ow = g->ow_hi - 1;
            continue;
        }
        int64_t c0, c1;
        col_taps(g, ow, dw, &c0, &c1);
        const int64_t ws = ow * p->stride_w - p->pad_left;
        if (nr > 0 && c1 > c0)
            max_window(xr + (ws + c0 * dw) * LANES, rs, cs, nr, c1 - c0, m);
        else
            for (int l = 0; l < LANES; l++) m[l] = -INFINITY;
        store8(yr + ow * LANES, m, nl);
    }
}

/* Sum over nc columns of nr rows starting at x: each column from 0.0f, then the column
 * sums from 0.0f (the reference order). */
static inline void sum_window(const float *x, ptrdiff_t rs, int64_t nr, int64_t nc,
                              float *s) {
    for (int l = 0; l < LANES; l++) s[l] = 0.0f;
    for (int64_t t = 0; t < nc; t++) {
        float c[LANES];
        for (int l = 0; l < LANES; l++) c[l] = 0.0f;
        for (int64_t r = 0; r < nr; r++) {
            const float *v = x + t * LANES + r * rs;
            LANE_LOOP
            for (int l = 0; l < LANES; l++) c[l] += v[l];
        }
        LANE_LOOP
        for (int l = 0; l < LANES; l++) s[l] += c[l];
    }
}

/* fc_f32_avgpool8c_fn, portable; constant trip counts for the common sizes. */
static void avg_interior(const float *x, ptrdiff_t rs, ptrdiff_t step, int64_t nr, int64_t nc,
                         float inv, int64_t n, float *y, int nl) {
    float s[LANES];
    for (int64_t j = 0; j < n; j++) {
        if (nr == 2 && nc == 2) sum_window(x + j * step, rs, 2, 2, s);
        else if (nr == 3 && nc == 3) sum_window(x + j * step, rs, 3, 3, s);
        else sum_window(x + j * step, rs, nr, nc, s);
        LANE_LOOP
        for (int l = 0; l < LANES; l++) s[l] *= inv;
        store8(y + j * LANES, s, nl);
    }
}

/* One output row of average pooling (dilation 1); divisors as fc_avg_pool2d's. */
static void avg_row8(const geom8 *g, const float *xb, float *yb, int64_t oh, int nl) {
    const fc_pool2d_params *p = g->p;
    const int64_t hs = oh * p->stride_h - p->pad_top;
    int64_t r0, r1;
    fc_pool_tap_range(hs, p->kernel_h, 1, p->in_h, &r0, &r1);
    const int64_t nr = r1 - r0;
    const int64_t cnt_h = fc_pool_avg_rows(p, oh, nr);
    const ptrdiff_t rs = (ptrdiff_t)(p->in_w * LANES);
    const float *xr = nr > 0 ? xb + (size_t)(hs + r0) * (size_t)p->in_w * LANES : xb;
    float *yr = yb + (size_t)oh * (size_t)p->out_w * LANES;
    int64_t last_cnt = -1;
    float inv = 0.0f, s[LANES];
    for (int64_t ow = 0; ow < p->out_w; ow++) {
        if (ow == g->ow_lo && g->ow_hi > ow && nr > 0) {
            /* interior columns: all kw columns inside the input, so one divisor */
            const float *xw = xr + (ow * p->stride_w - p->pad_left) * LANES;
            g->avg_int(xw, rs, (ptrdiff_t)(p->stride_w * LANES), nr, p->kernel_w,
                         1.0f / (float)(cnt_h * p->kernel_w), g->ow_hi - ow, yr + ow * LANES,
                         nl);
            ow = g->ow_hi - 1;
            continue;
        }
        int64_t c0, c1;
        col_taps(g, ow, 1, &c0, &c1);
        const int64_t ws = ow * p->stride_w - p->pad_left;
        if (nr > 0 && c1 > c0)
            sum_window(xr + (ws + c0) * LANES, rs, nr, c1 - c0, s);
        else
            for (int l = 0; l < LANES; l++) s[l] = 0.0f;
        const int64_t cnt = cnt_h * fc_pool_avg_cols(p, ow);
        if (cnt != last_cnt) {   /* one division per change of divisor, same bits */
            last_cnt = cnt;
            inv = 1.0f / (float)cnt;   /* count 0 (padding only): 0 * inf = NaN, as NCHW */
        }
        LANE_LOOP
        for (int l = 0; l < LANES; l++) s[l] *= inv;
        store8(yr + ow * LANES, s, nl);
    }
}

/* Checks shared by both pools: fc_pool2d_check, then the blocked element and byte counts
 * (CB * 8 may exceed C), then pointers. Returns FC_OK with *done = 1 for batch 0. */
static fc_status check8(const fc_pool2d_params *p, const float *x, const float *y, int is_max,
                        int *done) {
    *done = 0;
    fc_status st = fc_pool2d_check(p);
    if (st != FC_OK) return st;
    if (!is_max && (p->dilation_h != 1 || p->dilation_w != 1)) return FC_EINVAL;
    const int64_t blocks = p->channels / LANES + (p->channels % LANES != 0);
    const int64_t xs[] = {p->batch, blocks, p->in_h, p->in_w, LANES};
    const int64_t ys[] = {p->batch, blocks, p->out_h, p->out_w, LANES};
    size_t n;
    for (int k = 0; k < 2; k++) {
        const int64_t *v = k ? ys : xs;
        if (fc_count(&n, 5, v) || fc_mul_size(n, sizeof(float), &n) || n > PTRDIFF_MAX ||
            fc_count(&n, 4, v + 1) || fc_mul_size(n, sizeof(float), &n) || n > PTRDIFF_MAX)
            return FC_EOVERFLOW;
    }
    if (p->batch == 0) {
        *done = 1;
        return FC_OK;
    }
    if (!x || !y) return FC_EINVAL;
    return FC_OK;
}

static fc_status pool8(const fc_pool2d_params *p, const float *x, float *y, int is_max) {
    int done;
    fc_status st = check8(p, x, y, is_max, &done);
    if (st != FC_OK || done) return st;
    geom8 g;
    geom8_init(&g, p);
    const int64_t items = p->batch * g.blocks * p->out_h;
    const fc_pool_split sp = fc_pool_split_rows(items, g.in_plane, p->out_h, POOL8_CHUNK_ELEMS,
                                                p->num_threads);
    const int64_t rows_per_chunk = sp.rows_per_chunk, chunks = sp.chunks;
    const int nt = sp.threads;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        const fc_fpmode fpm = is_max ? fc_current_fpmode() : fc_flush_denormals();
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int64_t ch = 0; ch < chunks; ch++) {
            const int64_t b = ch * rows_per_chunk, e = FC_MIN(items, b + rows_per_chunk);
            int64_t plane = b / p->out_h, oh = b % p->out_h;   /* plane = n * CB + block */
            for (int64_t it = b; it < e; it++) {
                const int64_t blk = plane % g.blocks;
                const int nl = (int)FC_MIN((int64_t)LANES, p->channels - blk * LANES);
                const float *xb = x + (size_t)plane * g.in_plane;
                float *yb = y + (size_t)plane * g.out_plane;
                if (is_max) max_row8(&g, xb, yb, oh, nl);
                else avg_row8(&g, xb, yb, oh, nl);
                if (++oh == p->out_h) {
                    oh = 0;
                    plane++;
                }
            }
        }
        fc_restore_fpmode(fpm);
    }
    return FC_OK;
}

fc_status fc_max_pool2d_nchw8c(const fc_pool2d_params *p, const float *x, float *y) {
    return pool8(p, x, y, 1);
}

fc_status fc_avg_pool2d_nchw8c(const fc_pool2d_params *p, const float *x, float *y) {
    return pool8(p, x, y, 0);
}
