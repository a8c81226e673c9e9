/* AVX-512 Winograd transforms, F(2x2, 3x3) and F(4x4, 3x3): 16 tiles per call, one per
 * zmm lane, in natural tile order. Contract: fc_winograd_kernels.h; matrices as in the
 * scalar file (Lavin and Gray 2015), the same operations as the AVX2 file's.
 *
 * Against the AVX2 kernels (8 tiles): half the transform instructions per tile, and each
 * point's 16 floats are one whole 64-byte line of the GEMM's 32-wide B panel (measured
 * in fc_conv_winograd.c, get_impl).
 *  - Runs (16 tiles side by side): the row span is loaded with masks ([clo, chi) inside
 *    the image, so border runs need no padded copy) and de-interleaved with two-source
 *    permutes (vpermt2ps); columns m, m+1 of tile l are columns 0, 1 of tile l+1, one
 *    lane along (valignd).
 *  - Tiles form: 4 columns of tile 4k+p go to 128-bit chunk k of vector p by masked loads
 *    (the mask shifted to chunk k, the address back by 4k floats), then a 4x4 transpose
 *    within each chunk gives column c of the 16 tiles in natural order. The output does
 *    the reverse with masked stores. */
#include "fc_winograd_kernels.h"
#include <immintrin.h>

typedef __m512 V;

/* ---------------------------------------------------------------- shared pieces */

static inline __mmask16 row_mask(uint32_t rows, int r, uint32_t bits) {
    return (__mmask16)(((rows >> r) & 1) ? bits : 0);
}

/* the bits [lo, hi) of a 16-bit mask, lo and hi clamped to 0..16 */
static inline __mmask16 span16(int lo, int hi) {
    lo = lo < 0 ? 0 : lo > 16 ? 16 : lo;
    hi = hi < 0 ? 0 : hi > 16 ? 16 : hi;
    return (__mmask16)(hi > lo ? ((1u << hi) - 1u) & ~((1u << lo) - 1u) : 0u);
}

/* Columns c0 .. c0+3 of row r of the 16 tiles (only the first `want` columns used):
 * d[c] lane l = tile l's column c0 + c. */
static inline void tiles_cols4(const float *x, ptrdiff_t rs, const fc_wino_tiles *t, int r,
                               int c0, int want, V d[4]) {
    V z[4];
    for (int p = 0; p < 4; p++) {
        z[p] = _mm512_setzero_ps();
        for (int k = 0; k < 4; k++) {
            const int l = 4 * k + p;
            const uint32_t bits = ((t->cols[l] >> c0) & 0xf) << (4 * k);
            z[p] = _mm512_mask_loadu_ps(z[p], row_mask(t->rows[l], r, bits),
                                        x + t->off[l] + r * rs + c0 - 4 * k);
        }
    }
    const V t0 = _mm512_unpacklo_ps(z[0], z[1]), t2 = _mm512_unpacklo_ps(z[2], z[3]);
    d[0] = _mm512_shuffle_ps(t0, t2, 0x44);
    d[1] = _mm512_shuffle_ps(t0, t2, 0xEE);
    if (want > 2) {
        const V t1 = _mm512_unpackhi_ps(z[0], z[1]), t3 = _mm512_unpackhi_ps(z[2], z[3]);
        d[2] = _mm512_shuffle_ps(t1, t3, 0x44);
        d[3] = _mm512_shuffle_ps(t1, t3, 0xEE);
    }
}

/* Lane l of e[0..m-1] (m = 2 or 4 columns) to tile l's row r, masked. */
static inline void tiles_store(const V *e, int m, float *y, ptrdiff_t rs,
                               const fc_wino_tiles *t, int r) {
    if (m == 4) {
        const V t0 = _mm512_unpacklo_ps(e[0], e[1]), t1 = _mm512_unpackhi_ps(e[0], e[1]);
        const V t2 = _mm512_unpacklo_ps(e[2], e[3]), t3 = _mm512_unpackhi_ps(e[2], e[3]);
        /* z[p] chunk k = tile 4k + p's 4 columns */
        const V z[4] = {_mm512_shuffle_ps(t0, t2, 0x44), _mm512_shuffle_ps(t0, t2, 0xEE),
                        _mm512_shuffle_ps(t1, t3, 0x44), _mm512_shuffle_ps(t1, t3, 0xEE)};
        for (int l = 0; l < 16; l++) {
            const int k = l >> 2, sh = 4 * k;
            _mm512_mask_storeu_ps(y + t->off[l] + r * rs - sh,
                                  row_mask(t->rows[l], r, (t->cols[l] & 0xf) << sh), z[l & 3]);
        }
    } else {
        /* z[j] chunk k: tile 4k + 2j at floats 0-1, tile 4k + 2j + 1 at floats 2-3 */
        const V z[2] = {_mm512_unpacklo_ps(e[0], e[1]), _mm512_unpackhi_ps(e[0], e[1])};
        for (int l = 0; l < 16; l++) {
            const int sh = 4 * (l >> 2) + 2 * (l & 1);
            _mm512_mask_storeu_ps(y + t->off[l] + r * rs - sh,
                                  row_mask(t->rows[l], r, (t->cols[l] & 3) << sh),
                                  z[(l >> 1) & 1]);
        }
    }
}

/* ---------------------------------------------------------------- F(4x4, 3x3) */

static inline void in1d_4(const V *d, V *w) {
    const V four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f);
    const V two = _mm512_set1_ps(2.0f);
    const V t1 = _mm512_fnmadd_ps(four, d[2], d[4]); /* d4 - 4 d2 */
    const V t2 = _mm512_fnmadd_ps(four, d[1], d[3]); /* d3 - 4 d1 */
    const V t3 = _mm512_sub_ps(d[4], d[2]);
    const V t4 = _mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1]));
    w[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
    w[1] = _mm512_add_ps(t1, t2);
    w[2] = _mm512_sub_ps(t1, t2);
    w[3] = _mm512_add_ps(t3, t4);
    w[4] = _mm512_sub_ps(t3, t4);
    w[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

static inline void out1d_4(const V *m, V *o) {
    const V a = _mm512_add_ps(m[1], m[2]), b = _mm512_sub_ps(m[1], m[2]);
    const V c = _mm512_add_ps(m[3], m[4]), d = _mm512_sub_ps(m[3], m[4]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], a), c);
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d, b);
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), c, a);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d, b), m[5]);
}

static inline void in_cols_4(V t[6][6], float *v, size_t vs) {
    for (int j = 0; j < 6; j++) {
        V col[6], w[6];
        for (int r = 0; r < 6; r++) col[r] = t[r][j];
        in1d_4(col, w);
        for (int i = 0; i < 6; i++) _mm512_store_ps(v + (size_t)(i * 6 + j) * vs, w[i]);
    }
}

void fc_f32_wino_in_run_4x4__avx512(const float *x, ptrdiff_t rs, const fc_wino_run *tr,
                                    float *v, size_t vs) {
    /* a[k] = floats 16k .. 16k+15 of the span (tiles 4k .. 4k+3), e = floats 64, 65 */
    const __m512i lo01 =
        _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i hi01 =
        _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    __mmask16 ka[4];
    for (int k = 0; k < 4; k++) ka[k] = span16(tr->clo - 16 * k, tr->chi - 16 * k);
    const __mmask16 ke = span16(tr->clo - 64, tr->chi - 64);
    V t[6][6];
    for (int r = 0; r < 6; r++) {
        const float *a = x + tr->off + r * rs;
        V d[6], w01[2], w23[2];
        const V e = _mm512_maskz_loadu_ps(row_mask(tr->rows, r, ke & 3), a + 64);
        for (int h = 0; h < 2; h++) {
            const V a0 = _mm512_maskz_loadu_ps(row_mask(tr->rows, r, ka[2 * h]), a + 32 * h);
            const V a1 =
                _mm512_maskz_loadu_ps(row_mask(tr->rows, r, ka[2 * h + 1]), a + 32 * h + 16);
            /* columns 0|1 and 2|3 of tiles 8h .. 8h+7 */
            w01[h] = _mm512_permutex2var_ps(a0, lo01, a1);
            w23[h] = _mm512_permutex2var_ps(a0, hi01, a1);
        }
        d[0] = _mm512_shuffle_f32x4(w01[0], w01[1], 0x44);
        d[1] = _mm512_shuffle_f32x4(w01[0], w01[1], 0xEE);
        d[2] = _mm512_shuffle_f32x4(w23[0], w23[1], 0x44);
        d[3] = _mm512_shuffle_f32x4(w23[0], w23[1], 0xEE);
        /* column 4 (5) of tile l = column 0 (1) of tile l + 1; tile 16's from e */
        d[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(e),
                                                       _mm512_castps_si512(d[0]), 1));
        d[5] = _mm512_castsi512_ps(_mm512_alignr_epi32(
            _mm512_castps_si512(_mm512_permutexvar_ps(_mm512_set1_epi32(1), e)),
            _mm512_castps_si512(d[1]), 1));
        in1d_4(d, t[r]);
    }
    in_cols_4(t, v, vs);
}

void fc_f32_wino_in_tiles_4x4__avx512(const float *x, ptrdiff_t rs, const fc_wino_tiles *tl,
                                      float *v, size_t vs) {
    V t[6][6];
    for (int r = 0; r < 6; r++) {
        V d[8];
        tiles_cols4(x, rs, tl, r, 0, 4, d);
        tiles_cols4(x, rs, tl, r, 4, 2, d + 4);
        in1d_4(d, t[r]);
    }
    in_cols_4(t, v, vs);
}

static inline void out_core_4(const float *mv, size_t ms, const float *bias, int relu,
                              V o[4][4]) {
    V t[6][4];
    for (int i = 0; i < 6; i++) {
        V row[6];
        for (int j = 0; j < 6; j++) row[j] = _mm512_load_ps(mv + (size_t)(i * 6 + j) * ms);
        out1d_4(row, t[i]);
    }
    const V zero = _mm512_setzero_ps();
    for (int c = 0; c < 4; c++) {
        V col[6], r4[4];
        for (int i = 0; i < 6; i++) col[i] = t[i][c];
        out1d_4(col, r4);
        for (int r = 0; r < 4; r++) {
            V e = r4[r];
            if (bias) e = _mm512_add_ps(e, _mm512_set1_ps(*bias));
            if (relu) e = _mm512_max_ps(zero, e); /* NaN (2nd operand) stays NaN */
            o[r][c] = e;
        }
    }
}

void fc_f32_wino_out_run_4x4__avx512(const float *mv, size_t ms, const float *bias, int relu,
                                     float *y, ptrdiff_t rs, const fc_wino_run *tr) {
    /* out[k] = output floats 16k .. 16k+15 of the row (tiles 4k .. 4k+3): from
     * c01 = columns 0|1 and c23 = columns 2|3 of 8 tiles */
    const __m512i ilo =
        _mm512_setr_epi32(0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27);
    const __m512i ihi =
        _mm512_setr_epi32(4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31);
    __mmask16 ka[4];
    for (int k = 0; k < 4; k++) ka[k] = span16(tr->clo - 16 * k, tr->chi - 16 * k);
    V o[4][4];
    out_core_4(mv, ms, bias, relu, o);
    for (int r = 0; r < 4; r++) {
        if (!((tr->rows >> r) & 1)) continue;
        const V *e = o[r];
        float *dst = y + tr->off + r * rs;
        for (int h = 0; h < 2; h++) { /* tiles 8h .. 8h+7 */
            const V c01 = h ? _mm512_shuffle_f32x4(e[0], e[1], 0xEE)
                            : _mm512_shuffle_f32x4(e[0], e[1], 0x44);
            const V c23 = h ? _mm512_shuffle_f32x4(e[2], e[3], 0xEE)
                            : _mm512_shuffle_f32x4(e[2], e[3], 0x44);
            _mm512_mask_storeu_ps(dst + 32 * h, ka[2 * h],
                                  _mm512_permutex2var_ps(c01, ilo, c23));
            _mm512_mask_storeu_ps(dst + 32 * h + 16, ka[2 * h + 1],
                                  _mm512_permutex2var_ps(c01, ihi, c23));
        }
    }
}

void fc_f32_wino_out_tiles_4x4__avx512(const float *mv, size_t ms, const float *bias, int relu,
                                       float *y, ptrdiff_t rs, const fc_wino_tiles *tl) {
    V o[4][4];
    out_core_4(mv, ms, bias, relu, o);
    for (int r = 0; r < 4; r++) tiles_store(o[r], 4, y, rs, tl, r);
}

/* ---------------------------------------------------------------- F(2x2, 3x3) */

static inline void in1d_2(const V *d, V *w) {
    w[0] = _mm512_sub_ps(d[0], d[2]);
    w[1] = _mm512_add_ps(d[1], d[2]);
    w[2] = _mm512_sub_ps(d[2], d[1]);
    w[3] = _mm512_sub_ps(d[1], d[3]);
}

static inline void out1d_2(const V *m, V *o) {
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], m[1]), m[2]);
    o[1] = _mm512_sub_ps(_mm512_sub_ps(m[1], m[2]), m[3]);
}

static inline void in_cols_2(V t[4][4], float *v, size_t vs) {
    for (int j = 0; j < 4; j++) {
        V col[4], w[4];
        for (int r = 0; r < 4; r++) col[r] = t[r][j];
        in1d_2(col, w);
        for (int i = 0; i < 4; i++) _mm512_store_ps(v + (size_t)(i * 4 + j) * vs, w[i]);
    }
}

void fc_f32_wino_in_run_2x2__avx512(const float *x, ptrdiff_t rs, const fc_wino_run *tr,
                                    float *v, size_t vs) {
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __mmask16 k0 = span16(tr->clo, tr->chi), k1 = span16(tr->clo - 16, tr->chi - 16);
    const __mmask16 ke = span16(tr->clo - 32, tr->chi - 32);
    V t[4][4];
    for (int r = 0; r < 4; r++) {
        const float *a = x + tr->off + r * rs;
        V d[4];
        const V a0 = _mm512_maskz_loadu_ps(row_mask(tr->rows, r, k0), a);
        const V a1 = _mm512_maskz_loadu_ps(row_mask(tr->rows, r, k1), a + 16);
        const V e = _mm512_maskz_loadu_ps(row_mask(tr->rows, r, ke & 3), a + 32);
        d[0] = _mm512_permutex2var_ps(a0, even, a1);
        d[1] = _mm512_permutex2var_ps(a0, odd, a1);
        d[2] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(e),
                                                       _mm512_castps_si512(d[0]), 1));
        d[3] = _mm512_castsi512_ps(_mm512_alignr_epi32(
            _mm512_castps_si512(_mm512_permutexvar_ps(_mm512_set1_epi32(1), e)),
            _mm512_castps_si512(d[1]), 1));
        in1d_2(d, t[r]);
    }
    in_cols_2(t, v, vs);
}

void fc_f32_wino_in_tiles_2x2__avx512(const float *x, ptrdiff_t rs, const fc_wino_tiles *tl,
                                      float *v, size_t vs) {
    V t[4][4];
    for (int r = 0; r < 4; r++) {
        V d[4];
        tiles_cols4(x, rs, tl, r, 0, 4, d);
        in1d_2(d, t[r]);
    }
    in_cols_2(t, v, vs);
}

static inline void out_core_2(const float *mv, size_t ms, const float *bias, int relu,
                              V o[2][2]) {
    V t[4][2];
    for (int i = 0; i < 4; i++) {
        V row[4];
        for (int j = 0; j < 4; j++) row[j] = _mm512_load_ps(mv + (size_t)(i * 4 + j) * ms);
        out1d_2(row, t[i]);
    }
    const V zero = _mm512_setzero_ps();
    for (int c = 0; c < 2; c++) {
        V col[4], r2[2];
        for (int i = 0; i < 4; i++) col[i] = t[i][c];
        out1d_2(col, r2);
        for (int r = 0; r < 2; r++) {
            V e = r2[r];
            if (bias) e = _mm512_add_ps(e, _mm512_set1_ps(*bias));
            if (relu) e = _mm512_max_ps(zero, e);
            o[r][c] = e;
        }
    }
}

void fc_f32_wino_out_run_2x2__avx512(const float *mv, size_t ms, const float *bias, int relu,
                                     float *y, ptrdiff_t rs, const fc_wino_run *tr) {
    const __m512i ilo =
        _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ihi =
        _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __mmask16 k0 = span16(tr->clo, tr->chi), k1 = span16(tr->clo - 16, tr->chi - 16);
    V o[2][2];
    out_core_2(mv, ms, bias, relu, o);
    for (int r = 0; r < 2; r++) {
        if (!((tr->rows >> r) & 1)) continue;
        float *dst = y + tr->off + r * rs;
        _mm512_mask_storeu_ps(dst, k0, _mm512_permutex2var_ps(o[r][0], ilo, o[r][1]));
        _mm512_mask_storeu_ps(dst + 16, k1, _mm512_permutex2var_ps(o[r][0], ihi, o[r][1]));
    }
}

void fc_f32_wino_out_tiles_2x2__avx512(const float *mv, size_t ms, const float *bias, int relu,
                                       float *y, ptrdiff_t rs, const fc_wino_tiles *tl) {
    V o[2][2];
    out_core_2(mv, ms, bias, relu, o);
    for (int r = 0; r < 2; r++) tiles_store(o[r], 2, y, rs, tl, r);
}
