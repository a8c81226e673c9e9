/* AVX2 + FMA Winograd transforms, F(2x2, 3x3) and F(4x4, 3x3): 8 tiles per call, one
 * per lane. Contract: fc_winograd_kernels.h; matrices as in the scalar file (Lavin and
 * Gray 2015).
 *
 * Loads: the columns of 8 tiles lying side by side (tile l at m*l) are de-interleaved
 * with in-lane shuffles only, which leaves the tiles in the lane order [0 2 4 6 1 3 5 7]
 * (F(4x4)) or [0 1 4 5 2 3 6 7] (F(2x2)). The output kernels apply the inverse shuffles,
 * so that order never leaves this file. Each 2-D transform: the 1-D one along every row
 * (results parked on the stack), then down every column. */
#include "fc_winograd_kernels.h"
#include <immintrin.h>

#define PS(x) _mm256_castpd_ps(x)
#define PD(x) _mm256_castps_pd(x)

/* ---------------------------------------------------------------- F(4x4, 3x3) */

static inline void in1d_4(const __m256 *d, __m256 *w) {
    const __m256 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f);
    const __m256 two = _mm256_set1_ps(2.0f);
    const __m256 t1 = _mm256_fnmadd_ps(four, d[2], d[4]); /* d4 - 4 d2 */
    const __m256 t2 = _mm256_fnmadd_ps(four, d[1], d[3]); /* d3 - 4 d1 */
    const __m256 t3 = _mm256_sub_ps(d[4], d[2]);
    const __m256 t4 = _mm256_mul_ps(two, _mm256_sub_ps(d[3], d[1]));
    w[0] = _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4]));
    w[1] = _mm256_add_ps(t1, t2);
    w[2] = _mm256_sub_ps(t1, t2);
    w[3] = _mm256_add_ps(t3, t4);
    w[4] = _mm256_sub_ps(t3, t4);
    w[5] = _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5]));
}

static inline void out1d_4(const __m256 *m, __m256 *o) {
    const __m256 a = _mm256_add_ps(m[1], m[2]), b = _mm256_sub_ps(m[1], m[2]);
    const __m256 c = _mm256_add_ps(m[3], m[4]), d = _mm256_sub_ps(m[3], m[4]);
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], a), c);
    o[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d, b);
    o[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), c, a);
    o[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d, b), m[5]);
}

void fc_f32_wino_in_4x4__avx2_fma(const float *const *p, const float *const *q, float *v,
                                  size_t vs) {
    __m256 t[6][6];
    for (int r = 0; r < 6; r++) {
        __m256 d[6];
        const float *a = p[r], *b = q[r];
        const __m256 a0 = _mm256_loadu_ps(a), a1 = _mm256_loadu_ps(a + 8);
        const __m256 a2 = _mm256_loadu_ps(a + 16), a3 = _mm256_loadu_ps(a + 24);
        const __m256 u0 = _mm256_unpacklo_ps(a0, a1), u1 = _mm256_unpackhi_ps(a0, a1);
        const __m256 u2 = _mm256_unpacklo_ps(a2, a3), u3 = _mm256_unpackhi_ps(a2, a3);
        d[0] = PS(_mm256_unpacklo_pd(PD(u0), PD(u2)));
        d[1] = PS(_mm256_unpackhi_pd(PD(u0), PD(u2)));
        d[2] = PS(_mm256_unpacklo_pd(PD(u1), PD(u3)));
        d[3] = PS(_mm256_unpackhi_pd(PD(u1), PD(u3)));
        {
            const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
            const __m256 b2 = _mm256_loadu_ps(b + 16), b3 = _mm256_loadu_ps(b + 24);
            const __m256 s0 = _mm256_unpacklo_ps(b0, b1), s2 = _mm256_unpacklo_ps(b2, b3);
            d[4] = PS(_mm256_unpacklo_pd(PD(s0), PD(s2)));
            d[5] = PS(_mm256_unpackhi_pd(PD(s0), PD(s2)));
        }
        in1d_4(d, t[r]);
    }
    for (int j = 0; j < 6; j++) {
        __m256 col[6], w[6];
        for (int r = 0; r < 6; r++) col[r] = t[r][j];
        in1d_4(col, w);
        for (int i = 0; i < 6; i++) _mm256_store_ps(v + (size_t)(i * 6 + j) * vs, w[i]);
    }
}

/* Y = A^T M A of 8 tiles, bias added and ReLU applied: e[r][c] = row r, column c (tile
 * lanes in the input kernel's order). Shared by the plain and the pooled output. */
static inline void out_tiles_4(const float *mv, size_t ms, const float *bias, int relu,
                               __m256 e[4][4]) {
    __m256 t[6][4];
    for (int i = 0; i < 6; i++) {
        __m256 row[6];
        for (int j = 0; j < 6; j++) row[j] = _mm256_loadu_ps(mv + (size_t)(i * 6 + j) * ms);
        out1d_4(row, t[i]);
    }
    for (int c = 0; c < 4; c++) {
        __m256 col[6], r4[4];
        for (int i = 0; i < 6; i++) col[i] = t[i][c];
        out1d_4(col, r4);
        for (int r = 0; r < 4; r++) e[r][c] = r4[r];
    }
    const __m256 zero = _mm256_setzero_ps();
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            if (bias) e[r][c] = _mm256_add_ps(e[r][c], _mm256_broadcast_ss(bias));
            if (relu) e[r][c] = _mm256_max_ps(zero, e[r][c]); /* NaN (2nd operand) stays NaN */
        }
}

void fc_f32_wino_out_4x4__avx2_fma(const float *mv, size_t ms, const float *bias, int relu,
                                   float *y, size_t rs_y) {
    __m256 o[4][4];
    out_tiles_4(mv, ms, bias, relu, o);
    for (int r = 0; r < 4; r++) {
        const __m256 *e = o[r];
        /* inverse of the input de-interleave: tile l's 4 columns at y[4l ...] */
        const __m256 u0 = PS(_mm256_unpacklo_pd(PD(e[0]), PD(e[1])));
        const __m256 u2 = PS(_mm256_unpackhi_pd(PD(e[0]), PD(e[1])));
        const __m256 u1 = PS(_mm256_unpacklo_pd(PD(e[2]), PD(e[3])));
        const __m256 u3 = PS(_mm256_unpackhi_pd(PD(e[2]), PD(e[3])));
        float *dst = y + (size_t)r * rs_y;
        _mm256_storeu_ps(dst, _mm256_shuffle_ps(u0, u1, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm256_storeu_ps(dst + 8, _mm256_shuffle_ps(u0, u1, _MM_SHUFFLE(3, 1, 3, 1)));
        _mm256_storeu_ps(dst + 16, _mm256_shuffle_ps(u2, u3, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm256_storeu_ps(dst + 24, _mm256_shuffle_ps(u2, u3, _MM_SHUFFLE(3, 1, 3, 1)));
    }
}

/* fc_nanmax_f32(m, v) of fc_pool_kernels.h on 8 lanes: v if v > m or v is NaN, else m */
static inline __m256 nanmax8(__m256 m, __m256 v) {
    return _mm256_blendv_ps(_mm256_max_ps(v, m), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* The max of the 2x2 window at rows r, r+1 and columns c, c+1 of every lane, in the max
 * pool's column-major order. */
static inline __m256 window_max(const __m256 *row0, const __m256 *row1, int c) {
    return nanmax8(nanmax8(row0[c], row1[c]), nanmax8(row0[c + 1], row1[c + 1]));
}

void fc_f32_wino_out_4x4_maxpool2__avx2_fma(const float *mv, size_t ms, const float *bias,
                                            int relu, float *y, size_t rs_y) {
    __m256 o[4][4];
    out_tiles_4(mv, ms, bias, relu, o);
    for (int r = 0; r < 2; r++) {
        const __m256 p0 = window_max(o[2 * r], o[2 * r + 1], 0);
        const __m256 p1 = window_max(o[2 * r], o[2 * r + 1], 2);
        /* lanes hold tiles [0 2 4 6 1 3 5 7]: interleaving gives the 64-bit (tile) pairs
         * in the order [0 2 1 3] and [4 6 5 7], which one cross-lane permute undoes */
        const __m256 lo = _mm256_unpacklo_ps(p0, p1), hi = _mm256_unpackhi_ps(p0, p1);
        float *dst = y + (size_t)r * rs_y;
        _mm256_storeu_ps(dst, PS(_mm256_permute4x64_pd(PD(lo), 0xD8)));
        _mm256_storeu_ps(dst + 8, PS(_mm256_permute4x64_pd(PD(hi), 0xD8)));
    }
}

/* ---------------------------------------------------------------- F(2x2, 3x3) */

static inline void in1d_2(const __m256 *d, __m256 *w) {
    w[0] = _mm256_sub_ps(d[0], d[2]);
    w[1] = _mm256_add_ps(d[1], d[2]);
    w[2] = _mm256_sub_ps(d[2], d[1]);
    w[3] = _mm256_sub_ps(d[1], d[3]);
}

static inline void out1d_2(const __m256 *m, __m256 *o) {
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], m[1]), m[2]);
    o[1] = _mm256_sub_ps(_mm256_sub_ps(m[1], m[2]), m[3]);
}

void fc_f32_wino_in_2x2__avx2_fma(const float *const *p, const float *const *q, float *v,
                                  size_t vs) {
    __m256 t[4][4];
    for (int r = 0; r < 4; r++) {
        __m256 d[4];
        const __m256 a0 = _mm256_loadu_ps(p[r]), a1 = _mm256_loadu_ps(p[r] + 8);
        const __m256 b0 = _mm256_loadu_ps(q[r]), b1 = _mm256_loadu_ps(q[r] + 8);
        d[0] = _mm256_shuffle_ps(a0, a1, _MM_SHUFFLE(2, 0, 2, 0));
        d[1] = _mm256_shuffle_ps(a0, a1, _MM_SHUFFLE(3, 1, 3, 1));
        d[2] = _mm256_shuffle_ps(b0, b1, _MM_SHUFFLE(2, 0, 2, 0));
        d[3] = _mm256_shuffle_ps(b0, b1, _MM_SHUFFLE(3, 1, 3, 1));
        in1d_2(d, t[r]);
    }
    for (int j = 0; j < 4; j++) {
        __m256 col[4], w[4];
        for (int r = 0; r < 4; r++) col[r] = t[r][j];
        in1d_2(col, w);
        for (int i = 0; i < 4; i++) _mm256_store_ps(v + (size_t)(i * 4 + j) * vs, w[i]);
    }
}

/* As out_tiles_4, for F(2x2). */
static inline void out_tiles_2(const float *mv, size_t ms, const float *bias, int relu,
                               __m256 e[2][2]) {
    __m256 t[4][2];
    for (int i = 0; i < 4; i++) {
        __m256 row[4];
        for (int j = 0; j < 4; j++) row[j] = _mm256_loadu_ps(mv + (size_t)(i * 4 + j) * ms);
        out1d_2(row, t[i]);
    }
    for (int c = 0; c < 2; c++) {
        __m256 col[4], r2[2];
        for (int i = 0; i < 4; i++) col[i] = t[i][c];
        out1d_2(col, r2);
        e[0][c] = r2[0];
        e[1][c] = r2[1];
    }
    const __m256 zero = _mm256_setzero_ps();
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 2; c++) {
            if (bias) e[r][c] = _mm256_add_ps(e[r][c], _mm256_broadcast_ss(bias));
            if (relu) e[r][c] = _mm256_max_ps(zero, e[r][c]);
        }
}

void fc_f32_wino_out_2x2__avx2_fma(const float *mv, size_t ms, const float *bias, int relu,
                                   float *y, size_t rs_y) {
    __m256 o[2][2];
    out_tiles_2(mv, ms, bias, relu, o);
    for (int r = 0; r < 2; r++) {
        float *dst = y + (size_t)r * rs_y;
        _mm256_storeu_ps(dst, _mm256_unpacklo_ps(o[r][0], o[r][1]));
        _mm256_storeu_ps(dst + 8, _mm256_unpackhi_ps(o[r][0], o[r][1]));
    }
}

void fc_f32_wino_out_2x2_maxpool2__avx2_fma(const float *mv, size_t ms, const float *bias,
                                            int relu, float *y, size_t rs_y) {
    __m256 o[2][2];
    (void)rs_y; /* one pooled row */
    out_tiles_2(mv, ms, bias, relu, o);
    /* one maximum per tile; lanes hold tiles [0 1 4 5 2 3 6 7], i.e. the tile pairs in
     * the order [0 2 1 3] */
    const __m256 p = window_max(o[0], o[1], 0);
    _mm256_storeu_ps(y, PS(_mm256_permute4x64_pd(PD(p), 0xD8)));
}
