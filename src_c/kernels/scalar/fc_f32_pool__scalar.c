/* Portable pooling kernels (always built, no SIMD flags). Same contracts as the AVX2
 * kernels; see fc_pool_kernels.h. */
#include "fc_pool_kernels.h"

void fc_f32_maxpool_row__scalar(const float *x, ptrdiff_t rs, int64_t nr, int64_t kw,
                                int64_t sw, int64_t dw, float *y, int64_t n) {
    fc_maxpool_row_generic(x, rs, nr, kw, sw, dw, y, n);
}

void fc_f32_avgpool_row__scalar(const float *x, ptrdiff_t rs, int64_t nr, int64_t kw,
                                int64_t sw, float div, float *y, int64_t n) {
    fc_avgpool_row_generic(x, rs, nr, kw, sw, div, y, n);
}

/* Eight interleaved partial sums (element i goes to lane i % 8), combined pairwise: a
 * fixed order, shorter dependency chains and a smaller rounding error than one chain. */
float fc_f32_sum__scalar(const float *x, size_t n) {
    float a[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) a[l] += x[i + l];
    for (int l = 0; i < n; i++, l++) a[l] += x[i];
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

float fc_f32_max__scalar(const float *x, size_t n) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = fc_nanmax_f32(m, x[i]);
    return m;
}
