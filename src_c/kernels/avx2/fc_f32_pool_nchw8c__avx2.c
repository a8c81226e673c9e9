/* AVX2 interior windows of NCHW8c pooling (compiled with -mavx2 -mfma; contract in
 * fc_pool_kernels.h, driver src_c/fc_pool_nchw8c.c). A blocked pixel's 8 channels are one
 * __m256, so a window is one vector operation per tap. The taps go in the order of the
 * portable loops (kernel column outer, kernel row inner; average: each column summed
 * from 0, the column sums added to 0, times inv) with the same IEEE operations, so the
 * bits equal the portable path and the NCHW kernels. */
#include <immintrin.h>
#include "fc_pool_kernels.h"

#define AI static inline __attribute__((always_inline))

/* fc_nanmax_f32 on 8 lanes: max_ps(v, m) is v > m ? v : m (m on ties and when m is NaN),
 * then a NaN v wins. */
AI __m256 nanmax8(__m256 m, __m256 v) {
    return _mm256_blendv_ps(_mm256_max_ps(v, m), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* All-ones on the nl real lanes, zero on the tail lanes. */
AI __m256 lane_mask(int nl) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(nl), idx));
}

AI __m256 max_window(const float *x, ptrdiff_t rs, ptrdiff_t cs, int64_t nr, int64_t nc) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    for (int64_t t = 0; t < nc; t++)
        for (int64_t r = 0; r < nr; r++) m = nanmax8(m, _mm256_loadu_ps(x + t * cs + r * rs));
    return m;
}

AI __m256 sum_window(const float *x, ptrdiff_t rs, int64_t nr, int64_t nc) {
    __m256 s = _mm256_setzero_ps();
    for (int64_t t = 0; t < nc; t++) {
        __m256 c = _mm256_setzero_ps();
        for (int64_t r = 0; r < nr; r++) c = _mm256_add_ps(c, _mm256_loadu_ps(x + t * 8 + r * rs));
        s = _mm256_add_ps(s, c);
    }
    return s;
}

void fc_f32_maxpool8c_interior__avx2(const float *x, ptrdiff_t rs, ptrdiff_t cs,
                                     ptrdiff_t step, int64_t nr, int64_t nc, int64_t n,
                                     float *y, int nl) {
    const __m256 keep = lane_mask(nl);
    for (int64_t j = 0; j < n; j++) {
        const float *xj = x + j * step;
        __m256 m;
        if (nr == 2 && nc == 2) m = max_window(xj, rs, cs, 2, 2);
        else if (nr == 3 && nc == 3) m = max_window(xj, rs, cs, 3, 3);
        else m = max_window(xj, rs, cs, nr, nc);
        _mm256_storeu_ps(y + j * 8, _mm256_and_ps(m, keep));
    }
}

void fc_f32_avgpool8c_interior__avx2(const float *x, ptrdiff_t rs, ptrdiff_t step, int64_t nr,
                                     int64_t nc, float inv, int64_t n, float *y, int nl) {
    const __m256 keep = lane_mask(nl), vinv = _mm256_set1_ps(inv);
    for (int64_t j = 0; j < n; j++) {
        const float *xj = x + j * step;
        __m256 s;
        if (nr == 2 && nc == 2) s = sum_window(xj, rs, 2, 2);
        else if (nr == 3 && nc == 3) s = sum_window(xj, rs, 3, 3);
        else s = sum_window(xj, rs, nr, nc);
        _mm256_storeu_ps(y + j * 8, _mm256_and_ps(_mm256_mul_ps(s, vinv), keep));
    }
}
