/* Elementwise and row-wise activations: relu and softmax. Plain C that the compiler
 * vectorises; threads split independent elements / rows only. */
#include <math.h>
#include "fc_internal.h"

/* Below this many elements a parallel region costs more than it saves. */
#define RELU_BLOCK 16384

static fc_status elementwise_check(int64_t n, const float *x, const float *y, int num_threads) {
    if (n < 0 || num_threads < 1) return FC_EINVAL;
    size_t bytes;
    if (fc_mul_size((size_t)n, sizeof(float), &bytes) || bytes > PTRDIFF_MAX) return FC_EOVERFLOW;
    if (n > 0 && (!x || !y)) return FC_EINVAL;
    return FC_OK;
}

/* x may equal y: each element is read before it is written, by one thread. */
static void relu_span(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v < 0.0f ? 0.0f : v;   /* NaN: the compare is false, NaN stays */
    }
}

fc_status fc_relu(int64_t n, const float *x, float *y, int num_threads) {
    fc_status st = elementwise_check(n, x, y, num_threads);
    if (st != FC_OK || n == 0) return st;
    const int64_t blocks = (n + RELU_BLOCK - 1) / RELU_BLOCK;
    const int nt = (int)FC_MIN((int64_t)num_threads, blocks);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && blocks > 1)
#endif
    for (int64_t b = 0; b < blocks; b++) {
        int64_t i0 = b * RELU_BLOCK;
        relu_span(x + i0, y + i0, FC_MIN(RELU_BLOCK, n - i0));
    }
    return FC_OK;
}

/* Softmax of `len` values at stride 1 (inner == 1). The max is NaN-propagating; a row
 * with +inf or NaN comes out all NaN (inf - inf), as NumPy's stable softmax does. */
static void softmax_row(const float *x, float *y, int64_t len) {
    float m = -INFINITY;
    for (int64_t i = 0; i < len; i++) m = (x[i] > m || x[i] != x[i]) ? x[i] : m;
    float s = 0.0f;
    for (int64_t i = 0; i < len; i++) {
        float e = expf(x[i] - m);
        y[i] = e;
        s += e;
    }
    for (int64_t i = 0; i < len; i++) y[i] = y[i] / s;
}

/* Softmax over `len` rows of a [len, inner] slab, for inner columns [c0, c0 + w) at
 * once, w <= SOFTMAX_COLS: the inner loops run along contiguous memory. */
#define SOFTMAX_COLS 256
static void softmax_cols(const float *x, float *y, int64_t len, int64_t inner, int64_t c0,
                         int64_t w) {
    float m[SOFTMAX_COLS], s[SOFTMAX_COLS];
    for (int64_t c = 0; c < w; c++) { m[c] = -INFINITY; s[c] = 0.0f; }
    for (int64_t l = 0; l < len; l++) {
        const float *xr = x + l * inner + c0;
        for (int64_t c = 0; c < w; c++) m[c] = (xr[c] > m[c] || xr[c] != xr[c]) ? xr[c] : m[c];
    }
    for (int64_t l = 0; l < len; l++) {
        const float *xr = x + l * inner + c0;
        float *yr = y + l * inner + c0;
        for (int64_t c = 0; c < w; c++) {
            float e = expf(xr[c] - m[c]);
            yr[c] = e;
            s[c] += e;
        }
    }
    for (int64_t l = 0; l < len; l++) {
        float *yr = y + l * inner + c0;
        for (int64_t c = 0; c < w; c++) yr[c] = yr[c] / s[c];
    }
}

fc_status fc_softmax(int64_t outer, int64_t len, int64_t inner, const float *x, float *y,
                     int num_threads) {
    if (outer < 0 || len < 0 || inner < 0 || num_threads < 1) return FC_EINVAL;
    const int64_t v[] = {outer, len, inner};
    size_t n;
    if (fc_count(&n, 3, v) || fc_mul_size(n, sizeof(float), &n) || n > PTRDIFF_MAX)
        return FC_EOVERFLOW;
    if (outer == 0 || len == 0 || inner == 0) return FC_OK;
    if (!x || !y) return FC_EINVAL;
    const int nt = num_threads;
    (void)nt;
    const size_t slab = (size_t)len * (size_t)inner;
    if (inner == 1) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && outer > 1)
#endif
        for (int64_t o = 0; o < outer; o++)
            softmax_row(x + (size_t)o * slab, y + (size_t)o * slab, len);
        return FC_OK;
    }
    /* one item = one outer index and one block of inner columns */
    const int64_t cblocks = (inner + SOFTMAX_COLS - 1) / SOFTMAX_COLS;
    const int64_t items = outer * cblocks;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && items > 1)
#endif
    for (int64_t it = 0; it < items; it++) {
        int64_t o = it / cblocks, c0 = (it % cblocks) * SOFTMAX_COLS;
        softmax_cols(x + (size_t)o * slab, y + (size_t)o * slab, len, inner, c0,
                     FC_MIN(SOFTMAX_COLS, inner - c0));
    }
    return FC_OK;
}
