/* Pooling micro-kernels: the interface between the drivers (fc_pool.c) and the per-ISA
 * kernels (kernels/scalar/fc_f32_pool__scalar.c, kernels/avx2/fc_f32_pool__avx2.c).
 *
 * A row kernel computes n consecutive outputs of one output row whose windows lie fully
 * inside the input (the driver precomputes that interior column range and handles the
 * border columns itself), so a kernel never tests bounds. Output j (0 <= j < n) reads
 *     x[r*rs + j*sw + t*dw]    for rows r < nr and taps t < kw
 * where x points at the first tap of output 0 in the first valid input row and rs is the
 * distance between two valid input rows (dilation_h * in_w).
 *
 * Every kernel visits the taps of a window in the reference order (row-major over
 * (r, t)), so its result is bit-identical to the naive oracle in src_c/ref/:
 *   - max uses fc_nanmax_f32: keep m unless v > m or v is NaN. That operation is
 *     associative, so SIMD code may group taps as long as it keeps their order.
 *   - average starts from 0.0f, adds the taps in order and divides by `div`.
 * Not part of the public API. */
#ifndef FC_POOL_KERNELS_H
#define FC_POOL_KERNELS_H

#include <math.h>
#include <stddef.h>
#include "fc_internal.h"

/* The NaN-propagating max used everywhere: a NaN tap wins and, once m is NaN, stays. */
static inline float fc_nanmax_f32(float m, float v) { return (v > m || v != v) ? v : m; }

typedef void (*fc_f32_maxpool_row_fn)(const float *x, ptrdiff_t rs, int64_t nr, int64_t kw,
                                      int64_t sw, int64_t dw, float *y, int64_t n);
typedef void (*fc_f32_avgpool_row_fn)(const float *x, ptrdiff_t rs, int64_t nr, int64_t kw,
                                      int64_t sw, float div, float *y, int64_t n);
/* Sum (in a kernel-defined fixed order) / NaN-propagating max of n >= 1 floats. */
typedef float (*fc_f32_reduce_fn)(const float *x, size_t n);

void fc_f32_maxpool_row__scalar(const float *x, ptrdiff_t rs, int64_t nr, int64_t kw,
                                int64_t sw, int64_t dw, float *y, int64_t n);
void fc_f32_avgpool_row__scalar(const float *x, ptrdiff_t rs, int64_t nr, int64_t kw,
                                int64_t sw, float div, float *y, int64_t n);
float fc_f32_sum__scalar(const float *x, size_t n);
float fc_f32_max__scalar(const float *x, size_t n);

void fc_f32_maxpool_row__avx2(const float *x, ptrdiff_t rs, int64_t nr, int64_t kw,
                              int64_t sw, int64_t dw, float *y, int64_t n);
void fc_f32_avgpool_row__avx2(const float *x, ptrdiff_t rs, int64_t nr, int64_t kw,
                              int64_t sw, float div, float *y, int64_t n);
float fc_f32_sum__avx2(const float *x, size_t n);
float fc_f32_max__avx2(const float *x, size_t n);

/* Portable row loops shared by both kernel files (used for the cases a SIMD kernel does
 * not specialise, e.g. stride >= 3 or rows shorter than one vector). */
static inline void fc_maxpool_row_generic(const float *x, ptrdiff_t rs, int64_t nr,
                                          int64_t kw, int64_t sw, int64_t dw, float *y,
                                          int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        const float *xj = x + j * sw;
        float m = -INFINITY;
        for (int64_t r = 0; r < nr; r++) {
            const float *xr = xj + r * rs;
            for (int64_t t = 0; t < kw; t++) m = fc_nanmax_f32(m, xr[t * dw]);
        }
        y[j] = m;
    }
}

static inline void fc_avgpool_row_generic(const float *x, ptrdiff_t rs, int64_t nr,
                                          int64_t kw, int64_t sw, float div, float *y,
                                          int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        const float *xj = x + j * sw;
        float s = 0.0f;
        for (int64_t r = 0; r < nr; r++) {
            const float *xr = xj + r * rs;
            for (int64_t t = 0; t < kw; t++) s += xr[t];
        }
        y[j] = s / div;
    }
}

#endif /* FC_POOL_KERNELS_H */
