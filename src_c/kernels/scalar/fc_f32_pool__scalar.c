/* Portable pooling kernels (always built, no SIMD flags; the compiler may vectorise the
 * vertical passes). Same contracts as the AVX2 kernels; see fc_pool_kernels.h. */
#include "fc_pool_kernels.h"

void fc_f32_maxpool_v__scalar(const float *x, ptrdiff_t rs, int64_t nr, float *v, int64_t w) {
    if (nr == 1) {
        for (int64_t c = 0; c < w; c++) v[c] = x[c];
        return;
    }
    /* row by row over contiguous columns: vectorisable, same per-column order */
    for (int64_t c = 0; c < w; c++) v[c] = fc_nanmax_f32(x[c], x[rs + c]);
    for (int64_t r = 2; r < nr; r++) {
        const float *xr = x + r * rs;
        for (int64_t c = 0; c < w; c++) v[c] = fc_nanmax_f32(v[c], xr[c]);
    }
}

void fc_f32_sumpool_v__scalar(const float *x, ptrdiff_t rs, int64_t nr, float *v, int64_t w) {
    if (nr == 1) {
        for (int64_t c = 0; c < w; c++) v[c] = x[c];
        return;
    }
    for (int64_t c = 0; c < w; c++) v[c] = x[c] + x[rs + c];
    for (int64_t r = 2; r < nr; r++) {
        const float *xr = x + r * rs;
        for (int64_t c = 0; c < w; c++) v[c] += xr[c];
    }
}

void fc_f32_maxpool_h__scalar(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw,
                              int64_t sw, int64_t dw, float *y, int64_t n) {
    fc_maxpool_h_generic(v, rs, nr, kw, sw, dw, y, n);
}

void fc_f32_avgpool_h__scalar(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw,
                              int64_t sw, float inv, float *y, int64_t n) {
    fc_avgpool_h_generic(v, rs, nr, kw, sw, inv, y, n);
}

void fc_f32_avgpool3_row__scalar(const float *x, ptrdiff_t rs, int64_t nr, int64_t w,
                                 float inv, float inv_edge, float *y) {
    fc_avgpool3_row_generic(x, rs, nr, w, inv, inv_edge, y);
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
