/* AVX2 pooling kernels (compiled with -mavx2 -mfma; called only when fc_active_isa() is
 * FC_ISA_AVX2). Contracts in fc_pool_kernels.h.
 *
 * Vertical pass: 8 columns per vector, rows combined in order.
 * Horizontal pass, 8 outputs per vector:
 *   - stride 1: tap t of 8 outputs is one unaligned load at v + t*dw;
 *   - stride 2: 16 consecutive floats are split into even and odd elements with two
 *     in-lane shuffles; with dilation 1 one pair of loads serves taps t and t+1 (evens,
 *     odds), and a lone tap loads v + t .. v + t + 14 as [v+t, v+t+7] so nothing past
 *     the window's last tap is read. Vectors stay in the shuffled lane order (64-bit
 *     chunks 0 2 1 3) until one permute before the store;
 *   - other strides, and fewer than 8 outputs: the portable loop.
 * A tail shorter than a vector is done by recomputing the last 8 outputs (same values,
 * same thread). Results are bit-identical to the scalar kernels and the reference. */
#include <immintrin.h>
#include "fc_pool_kernels.h"

#define AI static inline __attribute__((always_inline))

/* fc_nanmax_f32 on 8 lanes: max_ps(v, m) is "v > m ? v : m" (m when either is NaN), then
 * a NaN v replaces m. */
AI __m256 nanmax8(__m256 m, __m256 v) {
    return _mm256_blendv_ps(_mm256_max_ps(v, m), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* Shuffled-order evens / odds of the 16 floats p[0..15] (lo = p[0..7], hi = p[8..15]). */
#define EVENS(lo, hi) _mm256_shuffle_ps((lo), (hi), 0x88)
#define ODDS(lo, hi) _mm256_shuffle_ps((lo), (hi), 0xDD)
/* Shuffled-order evens p[0], p[2], .., p[14] from lo = p[0..7] and h7 = p[7..14]. */
#define EVENS7(lo, h7) _mm256_shuffle_ps((lo), (h7), 0xD8)
#define UNSHUFFLE(v) _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8))

/* ------------------------------------------------------------------ vertical passes */

AI void vmax8(const float *x, ptrdiff_t rs, int64_t nr, float *v) {
    __m256 m = _mm256_loadu_ps(x);
    for (int64_t r = 1; r < nr; r++) m = nanmax8(m, _mm256_loadu_ps(x + r * rs));
    _mm256_storeu_ps(v, m);
}

AI void vsum8(const float *x, ptrdiff_t rs, int64_t nr, float *v) {
    __m256 s = _mm256_loadu_ps(x);
    for (int64_t r = 1; r < nr; r++) s = _mm256_add_ps(s, _mm256_loadu_ps(x + r * rs));
    _mm256_storeu_ps(v, s);
}

/* One template for both reductions; nr is a constant where the caller specialises. */
AI void vpass(const float *x, ptrdiff_t rs, int64_t nr, float *v, int64_t w, int is_max) {
    int64_t c = 0;
    for (; c + 32 <= w; c += 32)
        for (int k = 0; k < 32; k += 8)
            is_max ? vmax8(x + c + k, rs, nr, v + c + k) : vsum8(x + c + k, rs, nr, v + c + k);
    for (; c + 8 <= w; c += 8)
        is_max ? vmax8(x + c, rs, nr, v + c) : vsum8(x + c, rs, nr, v + c);
    if (c < w) is_max ? vmax8(x + w - 8, rs, nr, v + w - 8) : vsum8(x + w - 8, rs, nr, v + w - 8);
}

void fc_f32_maxpool_v__avx2(const float *x, ptrdiff_t rs, int64_t nr, float *v, int64_t w) {
    if (w < 8) fc_maxpool_v_generic(x, rs, nr, v, w);
    else if (nr == 1) vpass(x, rs, 1, v, w, 1);
    else if (nr == 2) vpass(x, rs, 2, v, w, 1);
    else if (nr == 3) vpass(x, rs, 3, v, w, 1);
    else vpass(x, rs, nr, v, w, 1);
}

void fc_f32_sumpool_v__avx2(const float *x, ptrdiff_t rs, int64_t nr, float *v, int64_t w) {
    if (w < 8) fc_sumpool_v_generic(x, rs, nr, v, w);
    else if (nr == 1) vpass(x, rs, 1, v, w, 0);
    else if (nr == 2) vpass(x, rs, 2, v, w, 0);
    else if (nr == 3) vpass(x, rs, 3, v, w, 0);
    else vpass(x, rs, nr, v, w, 0);
}

/* ------------------------------------------------------------------ horizontal max */

/* 8 consecutive columns at p reduced over nr rows (nr = 1: a plain load). */
AI __m256 colmax(const float *p, ptrdiff_t rs, int64_t nr) {
    __m256 m = _mm256_loadu_ps(p);
    for (int64_t r = 1; r < nr; r++) m = nanmax8(m, _mm256_loadu_ps(p + r * rs));
    return m;
}

AI __m256 colsum(const float *p, ptrdiff_t rs, int64_t nr) {
    __m256 s = _mm256_loadu_ps(p);
    for (int64_t r = 1; r < nr; r++) s = _mm256_add_ps(s, _mm256_loadu_ps(p + r * rs));
    return s;
}

/* 8 outputs; natural lane order for sw == 1, shuffled order for sw == 2. */
AI __m256 hmax8(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw, int64_t sw, int64_t dw) {
    if (sw == 1) {
        __m256 m = colmax(v, rs, nr);
        for (int64_t t = 1; t < kw; t++) m = nanmax8(m, colmax(v + t * dw, rs, nr));
        return m;
    }
    if (dw == 1) {
        __m256 m;
        int64_t t;
        if (kw >= 2) {
            __m256 lo = colmax(v, rs, nr), hi = colmax(v + 8, rs, nr);
            m = nanmax8(EVENS(lo, hi), ODDS(lo, hi));
            t = 2;
        } else {
            m = EVENS7(colmax(v, rs, nr), colmax(v + 7, rs, nr));
            t = 1;
        }
        for (; t + 2 <= kw; t += 2) {
            __m256 lo = colmax(v + t, rs, nr), hi = colmax(v + t + 8, rs, nr);
            m = nanmax8(nanmax8(m, EVENS(lo, hi)), ODDS(lo, hi));
        }
        if (t < kw) m = nanmax8(m, EVENS7(colmax(v + t, rs, nr), colmax(v + t + 7, rs, nr)));
        return m;
    }
    __m256 m = EVENS7(colmax(v, rs, nr), colmax(v + 7, rs, nr));
    for (int64_t t = 1; t < kw; t++) {
        const float *q = v + t * dw;
        m = nanmax8(m, EVENS7(colmax(q, rs, nr), colmax(q + 7, rs, nr)));
    }
    return m;
}

AI void hmax_row(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw, int64_t sw, int64_t dw,
                 float *y, int64_t n) {
    int64_t j = 0;
    if (sw == 1) {
        for (; j + 8 <= n; j += 8) _mm256_storeu_ps(y + j, hmax8(v + j, rs, nr, kw, 1, dw));
        if (j < n) _mm256_storeu_ps(y + n - 8, hmax8(v + n - 8, rs, nr, kw, 1, dw));
    } else {
        for (; j + 8 <= n; j += 8)
            _mm256_storeu_ps(y + j, UNSHUFFLE(hmax8(v + 2 * j, rs, nr, kw, 2, dw)));
        if (j < n)
            _mm256_storeu_ps(y + n - 8, UNSHUFFLE(hmax8(v + 2 * (n - 8), rs, nr, kw, 2, dw)));
    }
}

void fc_f32_maxpool_h__avx2(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw,
                            int64_t sw, int64_t dw, float *y, int64_t n) {
    if (n < 8 || (sw != 1 && sw != 2)) fc_maxpool_h_generic(v, rs, nr, kw, sw, dw, y, n);
    else if (nr == 1 && dw == 1 && kw == 2) hmax_row(v, rs, 1, 2, sw, 1, y, n);
    else if (nr == 1 && dw == 1 && kw == 3) hmax_row(v, rs, 1, 3, sw, 1, y, n);
    else if (nr == 1 && dw == 1) hmax_row(v, rs, 1, kw, sw, 1, y, n);
    else if (nr == 1) hmax_row(v, rs, 1, kw, sw, dw, y, n);
    else if (nr == 2 && dw == 1 && kw == 2) hmax_row(v, rs, 2, 2, sw, 1, y, n);
    else if (nr == 3 && dw == 1 && kw == 3) hmax_row(v, rs, 3, 3, sw, 1, y, n);
    else hmax_row(v, rs, nr, kw, sw, dw, y, n);
}

/* ------------------------------------------------------------------ horizontal average */

AI __m256 hsum8(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw, int64_t sw) {
    __m256 s = _mm256_setzero_ps();
    if (sw == 1) {
        for (int64_t t = 0; t < kw; t++) s = _mm256_add_ps(s, colsum(v + t, rs, nr));
        return s;
    }
    int64_t t = 0;
    for (; t + 2 <= kw; t += 2) {
        __m256 lo = colsum(v + t, rs, nr), hi = colsum(v + t + 8, rs, nr);
        s = _mm256_add_ps(_mm256_add_ps(s, EVENS(lo, hi)), ODDS(lo, hi));
    }
    if (t < kw) s = _mm256_add_ps(s, EVENS7(colsum(v + t, rs, nr), colsum(v + t + 7, rs, nr)));
    return s;
}

AI void havg_row(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw, int64_t sw, float inv,
                 float *y, int64_t n) {
    const __m256 d = _mm256_set1_ps(inv);
    int64_t j = 0;
    if (sw == 1) {
        for (; j + 8 <= n; j += 8)
            _mm256_storeu_ps(y + j, _mm256_mul_ps(hsum8(v + j, rs, nr, kw, 1), d));
        if (j < n) _mm256_storeu_ps(y + n - 8, _mm256_mul_ps(hsum8(v + n - 8, rs, nr, kw, 1), d));
    } else {
        for (; j + 8 <= n; j += 8)
            _mm256_storeu_ps(y + j, UNSHUFFLE(_mm256_mul_ps(hsum8(v + 2 * j, rs, nr, kw, 2), d)));
        if (j < n)
            _mm256_storeu_ps(y + n - 8,
                             UNSHUFFLE(_mm256_mul_ps(hsum8(v + 2 * (n - 8), rs, nr, kw, 2), d)));
    }
}

void fc_f32_avgpool_h__avx2(const float *v, ptrdiff_t rs, int64_t nr, int64_t kw,
                            int64_t sw, float inv, float *y, int64_t n) {
    if (n < 8 || (sw != 1 && sw != 2)) fc_avgpool_h_generic(v, rs, nr, kw, sw, inv, y, n);
    else if (nr == 1 && kw == 2) havg_row(v, rs, 1, 2, sw, inv, y, n);
    else if (nr == 1 && kw == 3) havg_row(v, rs, 1, 3, sw, inv, y, n);
    else if (nr == 1) havg_row(v, rs, 1, kw, sw, inv, y, n);
    else if (nr == 2 && kw == 2) havg_row(v, rs, 2, 2, sw, inv, y, n);
    else havg_row(v, rs, nr, kw, sw, inv, y, n);
}

/* ------------------------------------------------------------------ 3-wide stride-1 average */

/* Column sums of 8 consecutive columns at p, lanes outside mask (maskload: never read) 0. */
AI __m256 colsum_m(const float *p, ptrdiff_t rs, int64_t nr, __m256i m) {
    __m256 s = _mm256_maskload_ps(p, m);
    for (int64_t r = 1; r < nr; r++) s = _mm256_add_ps(s, _mm256_maskload_ps(p + r * rs, m));
    return s;
}

/* 8 outputs from the column sums left of, at and right of them (reference order). */
AI __m256 avg3(__m256 l, __m256 c, __m256 r, __m256 d) {
    return _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_setzero_ps(), l), c), r), d);
}

/* [a7, b0 .. b6] and [b1 .. b7, c0] from t = [a4..a7, b0..b3] / u = [b4..b7, c0..c3]. */
AI __m256 shl1(__m256 t, __m256 b) {
    return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(b), _mm256_castps_si256(t), 12));
}
AI __m256 shr1(__m256 b, __m256 u) {
    return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(u), _mm256_castps_si256(b), 4));
}

/* Column sums of 8 columns are computed once (nr loads); the left / right neighbours of
 * each output come from the neighbouring blocks' sums by a lane-crossing permute and two
 * in-lane alignr (same values, so the same bits as the reference). Column -1 is the zero
 * vector before block 0. Blocks run while the next full block is inside the row; the rest
 * (fewer than 16 columns) uses overlapping loads at x + j - 1, x + j, x + j + 1, the last
 * vector at w - 8 with its right taps masked (maskload never reads masked lanes), so
 * nothing outside the row is read; recomputed outputs get the same values. */
AI void avg3_row(const float *x, ptrdiff_t rs, int64_t nr, int64_t w, float inv, float inv_edge,
                 float *y) {
    const __m256 d = _mm256_set1_ps(inv);
    const __m256 d0 = _mm256_blend_ps(d, _mm256_set1_ps(inv_edge), 0x01);
    const __m256 d7 = _mm256_blend_ps(d, _mm256_set1_ps(inv_edge), 0x80);
    const __m256i m0 = _mm256_setr_epi32(0, -1, -1, -1, -1, -1, -1, -1);
    const __m256i m7 = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, -1, 0);
    int64_t j = 8;
    if (w >= 16) {
        __m256 m = colsum(x, rs, nr), mn = colsum(x + 8, rs, nr);
        __m256 t = _mm256_permute2f128_ps(_mm256_setzero_ps(), m, 0x21);
        __m256 u = _mm256_permute2f128_ps(m, mn, 0x21);
        _mm256_storeu_ps(y, avg3(shl1(t, m), m, shr1(m, u), d0));
        for (; j + 16 <= w; j += 8) {
            t = u;
            m = mn;
            mn = colsum(x + j + 8, rs, nr);
            u = _mm256_permute2f128_ps(m, mn, 0x21);
            _mm256_storeu_ps(y + j, avg3(shl1(t, m), m, shr1(m, u), d));
        }
    } else {
        _mm256_storeu_ps(y, avg3(colsum_m(x - 1, rs, nr, m0), colsum(x, rs, nr),
                                 colsum(x + 1, rs, nr), d0));
    }
    if (j + 9 <= w)
        _mm256_storeu_ps(y + j, avg3(colsum(x + j - 1, rs, nr), colsum(x + j, rs, nr),
                                     colsum(x + j + 1, rs, nr), d));
    const int64_t e = w - 8;
    _mm256_storeu_ps(y + e, avg3(colsum(x + e - 1, rs, nr), colsum(x + e, rs, nr),
                                 colsum_m(x + e + 1, rs, nr, m7), d7));
}

void fc_f32_avgpool3_row__avx2(const float *x, ptrdiff_t rs, int64_t nr, int64_t w,
                               float inv, float inv_edge, float *y) {
    if (w < 9) fc_avgpool3_row_generic(x, rs, nr, w, inv, inv_edge, y);
    else if (nr == 3) avg3_row(x, rs, 3, w, inv, inv_edge, y);
    else if (nr == 2) avg3_row(x, rs, 2, w, inv, inv_edge, y);
    else if (nr == 1) avg3_row(x, rs, 1, w, inv, inv_edge, y);
    else avg3_row(x, rs, nr, w, inv, inv_edge, y);
}

/* ------------------------------------------------------------------ global reductions */

static inline float hadd8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Four 8-lane partial sums over 32-float steps, then one vector step, combined in a
 * fixed order, then the scalar tail: the same order for any thread count. */
float fc_f32_sum__avx2(const float *x, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    float s = hadd8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += x[i];
    return s;
}

/* Plain max_ps over the plane while OR-ing an unordered-compare mask; if a NaN was seen
 * the plane is rescanned in order with fc_nanmax_f32 (rare path, same answer as the
 * scalar kernel). */
float fc_f32_max__avx2(const float *x, size_t n) {
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    __m256 u = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        __m256 v2 = _mm256_loadu_ps(x + i + 16), v3 = _mm256_loadu_ps(x + i + 24);
        m0 = _mm256_max_ps(m0, v0);
        m1 = _mm256_max_ps(m1, v1);
        m2 = _mm256_max_ps(m2, v2);
        m3 = _mm256_max_ps(m3, v3);
        u = _mm256_or_ps(u, _mm256_or_ps(_mm256_cmp_ps(v0, v1, _CMP_UNORD_Q),
                                         _mm256_cmp_ps(v2, v3, _CMP_UNORD_Q)));
    }
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        m0 = _mm256_max_ps(m0, v);
        u = _mm256_or_ps(u, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    float m = -INFINITY;
    for (; i < n; i++) {
        if (x[i] != x[i]) return fc_f32_max__scalar(x, n);
        m = x[i] > m ? x[i] : m;
    }
    if (_mm256_movemask_ps(u)) return fc_f32_max__scalar(x, n);
    m0 = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float hv = _mm_cvtss_f32(h);
    return hv > m ? hv : m;
}
