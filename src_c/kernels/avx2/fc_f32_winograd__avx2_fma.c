/* AVX2 + FMA Winograd transforms, F(2x2, 3x3) and F(4x4, 3x3): 8 tiles per call, one
 * per lane. Contract: fc_winograd_kernels.h; matrices as in the scalar file (Lavin and
 * Gray 2015).
 *
 * Runs: the columns of 8 tiles lying side by side (tile l at m*l) are de-interleaved
 * with in-lane shuffles only, which leaves the tiles in the lane order [0 2 4 6 1 3 5 7]
 * (F(4x4)) or [0 1 4 5 2 3 6 7] (F(2x2)) (PERM4, PERM2). The tiles form loads lane i's
 * tile PERM[i], masked, and transposes in registers (fc_transpose8), which gives the
 * same order; the output kernels apply the inverse shuffles, so that order never leaves
 * this file. Each 2-D transform: the 1-D one along every row (results parked on the
 * stack), then down every column. */
#include "kernels/fc_transpose8_avx.h"
#include "fc_winograd_kernels.h"
#include <immintrin.h>

static const int PERM4[8] = {0, 2, 4, 6, 1, 3, 5, 7};
static const int PERM2[8] = {0, 1, 4, 5, 2, 3, 6, 7};
/* rows outside the image of a run: the run kernels read up to 8*m + 8 floats per row */
static const float zeros[8 * 4 + 8] __attribute__((aligned(32))) = {0};

/* lane c all ones where bit c of bits is set */
static inline __m256i mask8(uint32_t bits) {
    const __m256i b = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits), b), b);
}

static inline __m128i mask4(uint32_t bits) {
    const __m128i b = _mm_setr_epi32(1, 2, 4, 8);
    return _mm_cmpeq_epi32(_mm_and_si128(_mm_set1_epi32((int)bits), b), b);
}

static inline const float *run_row(const float *x, ptrdiff_t rs, const fc_wino_run *t, int r) {
    return ((t->rows >> r) & 1) ? x + t->off + r * rs : zeros;
}

/* The column masks of the 8 tiles of the tiles form, lane i = tile perm[i]. */
static inline void tiles_masks(const fc_wino_tiles *t, const int *perm, uint32_t cmask,
                               __m256i cm[8]) {
    for (int i = 0; i < 8; i++) cm[i] = mask8(t->cols[perm[i]] & cmask);
}

/* Row r of the 8 tiles (columns 0..7, zero outside the masks), transposed: d[c] lane i =
 * column c of tile perm[i]. */
static inline void tiles_rows(const float *x, ptrdiff_t rs, const fc_wino_tiles *t,
                              const int *perm, const __m256i cm[8], int r, __m256 d[8]) {
    for (int i = 0; i < 8; i++) {
        const int l = perm[i];
        const __m256i rv = _mm256_set1_epi32(-(int)((t->rows[l] >> r) & 1));
        d[i] = _mm256_maskload_ps(x + t->off[l] + r * rs, _mm256_and_si256(cm[i], rv));
    }
    fc_transpose8(d);
}

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

/* down every column of the row-transformed t, storing the 36 points */
static inline void in_cols_4(__m256 t[6][6], float *v, size_t vs) {
    for (int j = 0; j < 6; j++) {
        __m256 col[6], w[6];
        for (int r = 0; r < 6; r++) col[r] = t[r][j];
        in1d_4(col, w);
        for (int i = 0; i < 6; i++) _mm256_store_ps(v + (size_t)(i * 6 + j) * vs, w[i]);
    }
}

void fc_f32_wino_in_run_4x4__avx2_fma(const float *x, ptrdiff_t rs, const fc_wino_run *tr,
                                      float *v, size_t vs) {
    __m256 t[6][6];
    for (int r = 0; r < 6; r++) {
        __m256 d[6];
        const float *a = run_row(x, rs, tr, r), *b = a + 4;
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
    in_cols_4(t, v, vs);
}

void fc_f32_wino_in_tiles_4x4__avx2_fma(const float *x, ptrdiff_t rs, const fc_wino_tiles *tl,
                                        float *v, size_t vs) {
    __m256 t[6][6];
    __m256i cm[8];
    tiles_masks(tl, PERM4, 0x3f, cm);
    for (int r = 0; r < 6; r++) {
        __m256 d[8];
        tiles_rows(x, rs, tl, PERM4, cm, r, d);
        in1d_4(d, t[r]);
    }
    in_cols_4(t, v, vs);
}

/* o[r][c] = output row r, column c of the 8 tiles, bias and relu applied */
static inline void out_core_4(const float *mv, size_t ms, const float *bias, int relu,
                              __m256 o[4][4]) {
    __m256 t[6][4];
    for (int i = 0; i < 6; i++) {
        __m256 row[6];
        for (int j = 0; j < 6; j++) row[j] = _mm256_load_ps(mv + (size_t)(i * 6 + j) * ms);
        out1d_4(row, t[i]);
    }
    const __m256 zero = _mm256_setzero_ps();
    for (int c = 0; c < 4; c++) {
        __m256 col[6], r4[4];
        for (int i = 0; i < 6; i++) col[i] = t[i][c];
        out1d_4(col, r4);
        for (int r = 0; r < 4; r++) {
            __m256 e = r4[r];
            if (bias) e = _mm256_add_ps(e, _mm256_broadcast_ss(bias));
            if (relu) e = _mm256_max_ps(zero, e); /* NaN (2nd operand) stays NaN */
            o[r][c] = e;
        }
    }
}

void fc_f32_wino_out_run_4x4__avx2_fma(const float *mv, size_t ms, const float *bias, int relu,
                                       float *y, ptrdiff_t rs, const fc_wino_run *tr) {
    __m256 o[4][4];
    out_core_4(mv, ms, bias, relu, o);
    for (int r = 0; r < 4; r++) {
        if (!((tr->rows >> r) & 1)) continue;
        const __m256 *e = o[r];
        /* inverse of the input de-interleave: tile l's 4 columns at y[4l ...] */
        const __m256 u0 = PS(_mm256_unpacklo_pd(PD(e[0]), PD(e[1])));
        const __m256 u2 = PS(_mm256_unpackhi_pd(PD(e[0]), PD(e[1])));
        const __m256 u1 = PS(_mm256_unpacklo_pd(PD(e[2]), PD(e[3])));
        const __m256 u3 = PS(_mm256_unpackhi_pd(PD(e[2]), PD(e[3])));
        float *dst = y + tr->off + r * rs;
        _mm256_storeu_ps(dst, _mm256_shuffle_ps(u0, u1, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm256_storeu_ps(dst + 8, _mm256_shuffle_ps(u0, u1, _MM_SHUFFLE(3, 1, 3, 1)));
        _mm256_storeu_ps(dst + 16, _mm256_shuffle_ps(u2, u3, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm256_storeu_ps(dst + 24, _mm256_shuffle_ps(u2, u3, _MM_SHUFFLE(3, 1, 3, 1)));
    }
}

void fc_f32_wino_out_tiles_4x4__avx2_fma(const float *mv, size_t ms, const float *bias,
                                         int relu, float *y, ptrdiff_t rs,
                                         const fc_wino_tiles *tl) {
    __m256 o[4][4];
    out_core_4(mv, ms, bias, relu, o);
    for (int r = 0; r < 4; r++) {
        const __m256 *e = o[r];
        /* 4x4 transposes within each 128-bit half: z[p] half k = lane 4k + p's row */
        const __m256 t0 = _mm256_unpacklo_ps(e[0], e[1]), t1 = _mm256_unpackhi_ps(e[0], e[1]);
        const __m256 t2 = _mm256_unpacklo_ps(e[2], e[3]), t3 = _mm256_unpackhi_ps(e[2], e[3]);
        const __m256 z[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                             _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
        for (int i = 0; i < 8; i++) {
            const int l = PERM4[i];
            const uint32_t bits = ((tl->rows[l] >> r) & 1) ? tl->cols[l] : 0;
            const __m128 h =
                i < 4 ? _mm256_castps256_ps128(z[i]) : _mm256_extractf128_ps(z[i - 4], 1);
            _mm_maskstore_ps(y + tl->off[l] + r * rs, mask4(bits), h);
        }
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

static inline void in_cols_2(__m256 t[4][4], float *v, size_t vs) {
    for (int j = 0; j < 4; j++) {
        __m256 col[4], w[4];
        for (int r = 0; r < 4; r++) col[r] = t[r][j];
        in1d_2(col, w);
        for (int i = 0; i < 4; i++) _mm256_store_ps(v + (size_t)(i * 4 + j) * vs, w[i]);
    }
}

void fc_f32_wino_in_run_2x2__avx2_fma(const float *x, ptrdiff_t rs, const fc_wino_run *tr,
                                      float *v, size_t vs) {
    __m256 t[4][4];
    for (int r = 0; r < 4; r++) {
        __m256 d[4];
        const float *a = run_row(x, rs, tr, r), *b = a + 2;
        const __m256 a0 = _mm256_loadu_ps(a), a1 = _mm256_loadu_ps(a + 8);
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        d[0] = _mm256_shuffle_ps(a0, a1, _MM_SHUFFLE(2, 0, 2, 0));
        d[1] = _mm256_shuffle_ps(a0, a1, _MM_SHUFFLE(3, 1, 3, 1));
        d[2] = _mm256_shuffle_ps(b0, b1, _MM_SHUFFLE(2, 0, 2, 0));
        d[3] = _mm256_shuffle_ps(b0, b1, _MM_SHUFFLE(3, 1, 3, 1));
        in1d_2(d, t[r]);
    }
    in_cols_2(t, v, vs);
}

void fc_f32_wino_in_tiles_2x2__avx2_fma(const float *x, ptrdiff_t rs, const fc_wino_tiles *tl,
                                        float *v, size_t vs) {
    __m256 t[4][4];
    __m256i cm[8];
    tiles_masks(tl, PERM2, 0xf, cm);
    for (int r = 0; r < 4; r++) {
        __m256 d[8];
        tiles_rows(x, rs, tl, PERM2, cm, r, d);
        in1d_2(d, t[r]);
    }
    in_cols_2(t, v, vs);
}

static inline void out_core_2(const float *mv, size_t ms, const float *bias, int relu,
                              __m256 o[2][2]) {
    __m256 t[4][2];
    for (int i = 0; i < 4; i++) {
        __m256 row[4];
        for (int j = 0; j < 4; j++) row[j] = _mm256_load_ps(mv + (size_t)(i * 4 + j) * ms);
        out1d_2(row, t[i]);
    }
    const __m256 zero = _mm256_setzero_ps();
    for (int c = 0; c < 2; c++) {
        __m256 col[4], r2[2];
        for (int i = 0; i < 4; i++) col[i] = t[i][c];
        out1d_2(col, r2);
        for (int r = 0; r < 2; r++) {
            __m256 e = r2[r];
            if (bias) e = _mm256_add_ps(e, _mm256_broadcast_ss(bias));
            if (relu) e = _mm256_max_ps(zero, e);
            o[r][c] = e;
        }
    }
}

void fc_f32_wino_out_run_2x2__avx2_fma(const float *mv, size_t ms, const float *bias, int relu,
                                       float *y, ptrdiff_t rs, const fc_wino_run *tr) {
    __m256 o[2][2];
    out_core_2(mv, ms, bias, relu, o);
    for (int r = 0; r < 2; r++) {
        if (!((tr->rows >> r) & 1)) continue;
        float *dst = y + tr->off + r * rs;
        _mm256_storeu_ps(dst, _mm256_unpacklo_ps(o[r][0], o[r][1]));
        _mm256_storeu_ps(dst + 8, _mm256_unpackhi_ps(o[r][0], o[r][1]));
    }
}

void fc_f32_wino_out_tiles_2x2__avx2_fma(const float *mv, size_t ms, const float *bias,
                                         int relu, float *y, ptrdiff_t rs,
                                         const fc_wino_tiles *tl) {
    __m256 o[2][2];
    out_core_2(mv, ms, bias, relu, o);
    for (int r = 0; r < 2; r++) {
        /* z[p] half k: lanes 4k + 2p and 4k + 2p + 1, 2 columns each */
        const __m256 z[2] = {_mm256_unpacklo_ps(o[r][0], o[r][1]),
                             _mm256_unpackhi_ps(o[r][0], o[r][1])};
        for (int i = 0; i < 8; i++) {
            const int l = PERM2[i], sh = 2 * (i & 1);
            const uint32_t bits = ((tl->rows[l] >> r) & 1) ? (tl->cols[l] & 3) << sh : 0;
            const __m256 zz = z[(i >> 1) & 1];
            const __m128 h = i < 4 ? _mm256_castps256_ps128(zz) : _mm256_extractf128_ps(zz, 1);
            _mm_maskstore_ps(y + tl->off[l] + r * rs - sh, mask4(bits), h);
        }
    }
}
