/* Pooling micro-kernels: the interface between the drivers (fc_pool.c) and the per-ISA
 * kernels (kernels/scalar/fc_f32_pool__scalar.c, kernels/avx2/fc_f32_pool__avx2.c, and
 * for small maps kernels/avx2/fc_f32_pool_lanes__avx2.c and fc_f32_pool2x2__avx2.c).
 *
 * Pooling is done separably, one output row at a time:
 *   1. vertical: the nr valid input rows of the row's windows are reduced column by
 *      column (v[c] = x[0][c] op x[rs][c] op ..., rows in order) into a buffer whose
 *      columns outside the input hold the padding value (-inf for max, 0 for average);
 *   2. horizontal: output j reduces v[j*sw + t*dw] over the kw taps t, in order.
 * So every window is reduced column-major (kw outer, kh inner), which is the order the
 * reference (src_c/ref/fc_ref_pool.c) uses too:
 *   - max uses fc_nanmax_f32 (keep m unless v > m or v is NaN). That operation is
 *     associative, so any grouping that keeps the tap order gives the same bits, and
 *     -inf padding never changes a result: max pooling is bit-exact vs the reference.
 *   - average: the reference sums each column from 0.0f, then the column sums from 0.0f;
 *     the kernels do the same (a +0 or -0 column sum added to a sum that starts at +0
 *     gives the same bits), then multiply by the same 1.0f / count: also bit-exact.
 * Not part of the public API. */
#ifndef FC_POOL_KERNELS_H
#define FC_POOL_KERNELS_H

#include <math.h>
#include <stddef.h>
#include "fc_internal.h"

/* The NaN-propagating max used everywhere: a NaN tap wins and, once m is NaN, stays. */
static inline float fc_nanmax_f32(float m, float v) { return (v > m || v != v) ? v : m; }

/* Vertical pass: v[c] = reduce over r < nr (nr >= 1) of x[r*rs + c], c < w. */
typedef void (*fc_f32_pool_vert_fn)(const float *x, ptrdiff_t rs, int64_t nr, float *v,
                                    int64_t w);
/* Horizontal pass: y[j] = reduce over taps t < kw of col(j*sw + t*dw), j < n, where
 * col(c) = v[c] reduced over the nr rows v[c], v[rs + c], .. (nr = 1 for the buffer; a
 * row whose windows are all inside the input and do not overlap is pooled straight from
 * the input with nr > 1, the vertical step fused). The average one multiplies the sum by
 * inv (1 / count). Reads nothing outside v[r*rs + 0 .. (n-1)*sw + (kw-1)*dw]. */
typedef void (*fc_f32_maxpool_h_fn)(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw,
                                    int64_t sw, int64_t dw, float *y, int64_t n);
typedef void (*fc_f32_avgpool_h_fn)(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw,
                                    int64_t sw, float inv, float *y, int64_t n);
/* Average pooling of one output row for windows 3 columns wide, stride 1, one column of
 * padding each side (so n = w outputs): with col(c) = x[c] + x[rs + c] + .. over the nr
 * rows (in order) for 0 <= c < w and col(-1) = col(w) = 0,
 *   y[j] = (((0 + col(j-1)) + col(j)) + col(j+1)) * (j == 0 || j == w-1 ? inv_edge : inv),
 * i.e. the reference order and divisor. Reads only x[r*rs + 0 .. w-1]. Needs w >= 2. */
typedef void (*fc_f32_avgpool3_row_fn)(const float *x, ptrdiff_t rs, int64_t nr, int64_t w,
                                       float inv, float inv_edge, float *y);
/* Sum (in a kernel-defined fixed order) / NaN-propagating max of n >= 1 floats. */
typedef float (*fc_f32_reduce_fn)(const float *x, size_t n);

void fc_f32_maxpool_v__scalar(const float *x, ptrdiff_t rs, int64_t nr, float *v, int64_t w);
void fc_f32_sumpool_v__scalar(const float *x, ptrdiff_t rs, int64_t nr, float *v, int64_t w);
void fc_f32_maxpool_h__scalar(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw,
                              int64_t sw, int64_t dw, float *y, int64_t n);
void fc_f32_avgpool_h__scalar(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw,
                              int64_t sw, float inv, float *y, int64_t n);
void fc_f32_avgpool3_row__scalar(const float *x, ptrdiff_t rs, int64_t nr, int64_t w,
                                 float inv, float inv_edge, float *y);
float fc_f32_sum__scalar(const float *x, size_t n);
float fc_f32_max__scalar(const float *x, size_t n);

void fc_f32_maxpool_v__avx2(const float *x, ptrdiff_t rs, int64_t nr, float *v, int64_t w);
void fc_f32_sumpool_v__avx2(const float *x, ptrdiff_t rs, int64_t nr, float *v, int64_t w);
void fc_f32_maxpool_h__avx2(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw,
                            int64_t sw, int64_t dw, float *y, int64_t n);
void fc_f32_avgpool_h__avx2(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw,
                            int64_t sw, float inv, float *y, int64_t n);
void fc_f32_avgpool3_row__avx2(const float *x, ptrdiff_t rs, int64_t nr, int64_t w,
                               float inv, float inv_edge, float *y);
float fc_f32_sum__avx2(const float *x, size_t n);
float fc_f32_max__avx2(const float *x, size_t n);

/* Small maps, planes in lanes (kernels/avx2/fc_f32_pool_lanes__avx2.c): a group of up to
 * 8 planes is transposed into a buffer t[pos][8] (pos = row * in_w + col of the input
 * plane, lane = plane), each output position is then one 8-lane reduction of its window's
 * taps in the reference order (column-major; average: each column summed, the column sums
 * added to 0.0f, times inv[pos]), and blocks of 8 output positions are transposed back.
 * Any geometry works, since the driver gives each output row / column its valid taps:
 * output row oh reads the nrow[oh] input rows row0[oh] + r * dil_h, output column ow the
 * ncol[ow] input columns col0[ow] + c * dil_w (a count of 0: a window of padding only,
 * max -inf, average 0 * inv). */
typedef struct {
    int64_t in_w, hw;       /* input row length and plane size */
    int64_t out_w, ohw;     /* output row length and plane size */
    int64_t dil_h, dil_w;
    const int32_t *row0, *nrow, *col0, *ncol;
    const float *inv;       /* average: 1 / divisor per output position */
} fc_pool_lanes_geom;

/* Pools np (1..8) planes: plane i at x + i * hw -> y + i * ohw. t: 32-byte aligned,
 * 8 * (hw rounded up to 8) floats. */
typedef void (*fc_f32_pool_lanes_fn)(const fc_pool_lanes_geom *g, const float *x, float *y,
                                     int np, float *t);
void fc_f32_maxpool_lanes__avx2(const fc_pool_lanes_geom *g, const float *x, float *y, int np,
                                float *t);
void fc_f32_avgpool_lanes__avx2(const fc_pool_lanes_geom *g, const float *x, float *y, int np,
                                float *t);

/* 2x2 windows, stride 2, no padding, planes of even height and width
 * (kernels/avx2/fc_f32_pool2x2__avx2.c): the tensor is nq row pairs of 4 * ow floats
 * (two input rows), each giving ow outputs (one output row); ow is 1, 2, 4 or >= 8.
 * Bit-identical to the reference, whatever nq (the driver splits nq at multiples of 8). */
void fc_f32_maxpool2x2__avx2(const float *x, float *y, int64_t nq, int64_t ow);
void fc_f32_avgpool2x2__avx2(const float *x, float *y, int64_t nq, int64_t ow);

/* NCHW8c pooling (src_c/fc_pool_nchw8c.c, kernels/avx2/fc_f32_pool_nchw8c__avx2.c): n
 * outputs of one row of a blocked plane whose windows (nr rows, row stride rs; nc columns,
 * column stride cs; all inside the input) start at x + j * step, each 8 lanes wide, into
 * y + j * 8, lanes from nl on stored as 0. Max: fc_nanmax_f32 over the taps column-major
 * from -inf; average: each column summed from 0.0f, the column sums added to 0.0f, times
 * inv. The driver has a portable twin of each (same operations, same bits). */
typedef void (*fc_f32_maxpool8c_fn)(const float *x, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t step,
                                    int64_t nr, int64_t nc, int64_t n, float *y, int nl);
typedef void (*fc_f32_avgpool8c_fn)(const float *x, ptrdiff_t rs, ptrdiff_t step, int64_t nr,
                                    int64_t nc, float inv, int64_t n, float *y, int nl);
void fc_f32_maxpool8c_interior__avx2(const float *x, ptrdiff_t rs, ptrdiff_t cs,
                                     ptrdiff_t step, int64_t nr, int64_t nc, int64_t n,
                                     float *y, int nl);
void fc_f32_avgpool8c_interior__avx2(const float *x, ptrdiff_t rs, ptrdiff_t step, int64_t nr,
                                     int64_t nc, float inv, int64_t n, float *y, int nl);

/* Portable loops shared by both kernel files (the SIMD kernel uses them for the cases it
 * does not specialise, e.g. stride >= 3 or fewer than 8 outputs). */
static inline void fc_maxpool_v_generic(const float *x, ptrdiff_t rs, int64_t nr, float *v,
                                        int64_t w) {
    for (int64_t c = 0; c < w; c++) {
        float m = x[c];
        for (int64_t r = 1; r < nr; r++) m = fc_nanmax_f32(m, x[r * rs + c]);
        v[c] = m;
    }
}

static inline void fc_sumpool_v_generic(const float *x, ptrdiff_t rs, int64_t nr, float *v,
                                        int64_t w) {
    for (int64_t c = 0; c < w; c++) {
        float s = x[c];
        for (int64_t r = 1; r < nr; r++) s += x[r * rs + c];
        v[c] = s;
    }
}

static inline void fc_maxpool_h_generic(const float *v, ptrdiff_t rs, int64_t nr,
                                        int64_t kw, int64_t sw, int64_t dw, float *y,
                                        int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        const float *vj = v + j * sw;
        float m = -INFINITY;
        for (int64_t t = 0; t < kw; t++)
            for (int64_t r = 0; r < nr; r++) m = fc_nanmax_f32(m, vj[r * rs + t * dw]);
        y[j] = m;
    }
}

static inline void fc_avgpool_h_generic(const float *v, ptrdiff_t rs, int64_t nr,
                                        int64_t kw, int64_t sw, float inv, float *y,
                                        int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        const float *vj = v + j * sw;
        float s = 0.0f;
        for (int64_t t = 0; t < kw; t++) {
            float c = vj[t];
            for (int64_t r = 1; r < nr; r++) c += vj[r * rs + t];
            s += c;
        }
        y[j] = s * inv;
    }
}

/* fc_f32_avgpool3_row_fn, portable: column sums kept in a 3-column sliding window. */
static inline void fc_avgpool3_row_generic(const float *x, ptrdiff_t rs, int64_t nr,
                                           int64_t w, float inv, float inv_edge, float *y) {
    float cl = 0.0f, cm = 0.0f, cr;
    for (int64_t r = 0; r < nr; r++) cm = r ? cm + x[r * rs] : x[0];
    for (int64_t j = 0; j < w; j++) {
        cr = 0.0f;
        if (j + 1 < w) {
            cr = x[j + 1];
            for (int64_t r = 1; r < nr; r++) cr += x[r * rs + j + 1];
        }
        y[j] = (((0.0f + cl) + cm) + cr) * (j == 0 || j == w - 1 ? inv_edge : inv);
        cl = cm;
        cm = cr;
    }
}

/* Window geometry shared by the NCHW and NCHW8c drivers (fc_pool.c, fc_pool_nchw8c.c). */

/* Taps t in [*t0, *t1) of a window starting at s (step d, k taps) that fall in [0, n). */
static inline void fc_pool_tap_range(int64_t s, int64_t k, int64_t d, int64_t n, int64_t *t0,
                                     int64_t *t1) {
    int64_t a, b;
    if (d == 1) {   /* the common case, without divisions */
        a = s >= 0 ? 0 : -s;
        b = FC_MIN(k, n - s);
    } else {
        a = s >= 0 ? 0 : (-s + d - 1) / d;
        b = s > n - 1 ? 0 : FC_MIN(k, (n - 1 - s) / d + 1);
    }
    *t0 = FC_MIN(a, k);
    *t1 = FC_MAX(*t0, b);
}

/* The OpenMP split of a pooling call over `items` output rows, each reading about
 * in_plane / out_h input floats: chunks of rows of about `elems` input floats each, handed
 * out dynamically, and a team of at most one thread per two chunks (a call with little
 * work stays on one thread). */
typedef struct {
    int64_t rows_per_chunk, chunks;
    int threads;
} fc_pool_split;

static inline fc_pool_split fc_pool_split_rows(int64_t items, size_t in_plane, int64_t out_h,
                                               int64_t elems, int num_threads) {
    fc_pool_split s;
    const int64_t per_row = FC_MAX((int64_t)1, (int64_t)(in_plane / (size_t)out_h));
    s.rows_per_chunk = FC_MAX((int64_t)1, elems / per_row);
    s.chunks = (items + s.rows_per_chunk - 1) / s.rows_per_chunk;
    s.threads = (int)FC_MIN((int64_t)num_threads, s.chunks / 2 + 1);
    return s;
}

/* Rows of the window of output row oh counted by the divisor, nr of them inside the
 * input: those, or with count_include_pad those inside [-pad_top, in_h + pad_bottom). */
static inline int64_t fc_pool_avg_rows(const fc_pool2d_params *p, int64_t oh, int64_t nr) {
    const int64_t hs = oh * p->stride_h - p->pad_top;
    return p->count_include_pad ? FC_MIN(hs + p->kernel_h, p->in_h + p->pad_bottom) - hs : nr;
}

/* Columns of the window of output column ow counted by the divisor. */
static inline int64_t fc_pool_avg_cols(const fc_pool2d_params *p, int64_t ow) {
    const int64_t ws = ow * p->stride_w - p->pad_left;
    if (p->count_include_pad) return FC_MIN(ws + p->kernel_w, p->in_w + p->pad_right) - ws;
    return FC_MAX(0, FC_MIN(ws + p->kernel_w, p->in_w) - FC_MAX(ws, 0));
}

#endif /* FC_POOL_KERNELS_H */
