/* AVX2 pooling of small maps with planes in lanes (compiled with -mavx2 -mfma; contract
 * in fc_pool_kernels.h). On a map with fewer than 8 output columns the row kernels leave
 * most of a vector idle and pay a call per output row; here 8 planes share every
 * instruction, so any window geometry costs k*k vector operations per 8 outputs, plus two
 * 8x8 transposes (in and out) per 64 elements. Each lane reduces its window in the
 * reference order, so the results are bit-identical to the row kernels and the oracle. */
#include <immintrin.h>
#include "fc_pool_kernels.h"
#include "kernels/fc_transpose8_avx.h"

#define AI static inline __attribute__((always_inline))

/* fc_nanmax_f32 on 8 lanes: max_ps(v, m) is "v > m ? v : m", then a NaN v replaces m. */
AI __m256 nanmax8(__m256 m, __m256 v) {
    return _mm256_blendv_ps(_mm256_max_ps(v, m), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* The first k (0..8) lanes set. */
AI __m256i lane_mask(int64_t k) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* t[pos][lane] = plane lane's element pos, for pos < hw rounded up to 8 (lanes >= np and
 * positions >= hw hold 0; maskload reads nothing past a plane). */
AI void load_planes(const float *x, int64_t hw, int np, float *t) {
    const __m256i tail = lane_mask(hw & 7);
    for (int64_t i = 0; i < hw; i += 8) {
        __m256 r[8];
        const int full = i + 8 <= hw;
        for (int p = 0; p < 8; p++) {
            const float *s = x + p * hw + i;
            /* the next group (a group is 8 * hw contiguous floats); never faults */
            if ((i & 15) == 0) _mm_prefetch((const char *)(s + 8 * hw), _MM_HINT_T0);
            r[p] = p >= np ? _mm256_setzero_ps()
                           : full ? _mm256_loadu_ps(s) : _mm256_maskload_ps(s, tail);
        }
        fc_transpose8(r);
        for (int k = 0; k < 8; k++) _mm256_store_ps(t + (i + k) * 8, r[k]);
    }
}

/* load_planes for 8 planes of 2x2 (32 contiguous floats): 4 loads and 8 shuffles instead
 * of 8 loads and a full transpose, leaving lane L with plane PERM4[L] = 0 2 4 6 1 3 5 7. */
AI void load_planes4(const float *x, float *t) {
    const __m256 r0 = _mm256_loadu_ps(x), r1 = _mm256_loadu_ps(x + 8);
    const __m256 r2 = _mm256_loadu_ps(x + 16), r3 = _mm256_loadu_ps(x + 24);
    const __m256 a0 = _mm256_unpacklo_ps(r0, r1), a1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 a2 = _mm256_unpacklo_ps(r2, r3), a3 = _mm256_unpackhi_ps(r2, r3);
    _mm256_store_ps(t, _mm256_shuffle_ps(a0, a2, 0x44));
    _mm256_store_ps(t + 8, _mm256_shuffle_ps(a0, a2, 0xEE));
    _mm256_store_ps(t + 16, _mm256_shuffle_ps(a1, a3, 0x44));
    _mm256_store_ps(t + 24, _mm256_shuffle_ps(a1, a3, 0xEE));
}

/* Window at b (its first valid tap): nc columns cs floats apart, nr rows rs apart;
 * column-major, as the reference. nr, nc >= 1. */
AI __m256 win_max(const float *b, int64_t nr, int64_t nc, int64_t rs, int64_t cs) {
    __m256 m = _mm256_load_ps(b);
    for (int64_t r = 1; r < nr; r++) m = nanmax8(m, _mm256_load_ps(b + r * rs));
    for (int64_t c = 1; c < nc; c++)
        for (int64_t r = 0; r < nr; r++) m = nanmax8(m, _mm256_load_ps(b + c * cs + r * rs));
    return m;
}

/* Each column summed (first tap, then the rest in order), the column sums added to 0. */
AI __m256 win_sum(const float *b, int64_t nr, int64_t nc, int64_t rs, int64_t cs) {
    __m256 s = _mm256_setzero_ps();
    for (int64_t c = 0; c < nc; c++) {
        __m256 v = _mm256_load_ps(b + c * cs);
        for (int64_t r = 1; r < nr; r++) v = _mm256_add_ps(v, _mm256_load_ps(b + c * cs + r * rs));
        s = _mm256_add_ps(s, v);
    }
    return s;
}

/* One output position for the 8 lanes; the common square windows get constant loops. */
AI __m256 window(const fc_pool_lanes_geom *g, const float *t, int64_t oh, int64_t ow,
                 int64_t o, int64_t rs, int64_t cs, int is_max) {
    const int64_t nr = g->nrow[oh], nc = g->ncol[ow];
    if (nr == 0 || nc == 0)
        return is_max ? _mm256_set1_ps(-INFINITY)
                      : _mm256_mul_ps(_mm256_setzero_ps(), _mm256_set1_ps(g->inv[o]));
    const float *b = t + ((int64_t)g->row0[oh] * g->in_w + g->col0[ow]) * 8;
    if (is_max) {
        if (nr == 2 && nc == 2 && cs == 8) return win_max(b, 2, 2, rs, 8);
        if (nr == 3 && nc == 3 && cs == 8) return win_max(b, 3, 3, rs, 8);
        return win_max(b, nr, nc, rs, cs);
    }
    __m256 s;
    if (nr == 2 && nc == 2 && cs == 8) s = win_sum(b, 2, 2, rs, 8);
    else if (nr == 3 && nc == 3 && cs == 8) s = win_sum(b, 3, 3, rs, 8);
    else s = win_sum(b, nr, nc, rs, cs);
    return _mm256_mul_ps(s, _mm256_set1_ps(g->inv[o]));
}

/* perm4: the planes were loaded by load_planes4 (lane order PERM4, undone per output
 * vector by one permute). */
AI void pool_lanes(const fc_pool_lanes_geom *g, const float *x, float *y, int np, float *t,
                   int is_max, int perm4) {
    if (perm4) load_planes4(x, t);
    else load_planes(x, g->hw, np, t);
    const __m256i unperm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const int64_t rs = g->dil_h * g->in_w * 8, cs = g->dil_w * 8, ohw = g->ohw;
    if (ohw == 1) {   /* the 8 planes' outputs are contiguous: no transpose */
        __m256 v = window(g, t, 0, 0, 0, rs, cs, is_max);
        if (perm4) v = _mm256_permutevar8x32_ps(v, unperm);
        if (np == 8) _mm256_storeu_ps(y, v);
        else _mm256_maskstore_ps(y, lane_mask(np), v);
        return;
    }
    int64_t oh = 0, ow = 0;
    for (int64_t o0 = 0; o0 < ohw; o0 += 8) {
        const int64_t n = FC_MIN((int64_t)8, ohw - o0);
        __m256 v[8];
        for (int64_t k = 0; k < 8; k++) {
            if (k >= n) {
                v[k] = _mm256_setzero_ps();
                continue;
            }
            v[k] = window(g, t, oh, ow, o0 + k, rs, cs, is_max);
            if (perm4) v[k] = _mm256_permutevar8x32_ps(v[k], unperm);
            if (++ow == g->out_w) {
                ow = 0;
                oh++;
            }
        }
        fc_transpose8(v);   /* v[p] = plane p's outputs o0 .. o0 + n - 1 */
        if (n == 8)
            for (int p = 0; p < np; p++) _mm256_storeu_ps(y + p * ohw + o0, v[p]);
        else
            for (int p = 0; p < np; p++) _mm256_maskstore_ps(y + p * ohw + o0, lane_mask(n), v[p]);
    }
}

void fc_f32_maxpool_lanes__avx2(const fc_pool_lanes_geom *g, const float *x, float *y, int np,
                                float *t) {
    if (np == 8 && g->hw == 4) pool_lanes(g, x, y, 8, t, 1, 1);
    else if (np == 8) pool_lanes(g, x, y, 8, t, 1, 0);
    else pool_lanes(g, x, y, np, t, 1, 0);
}

void fc_f32_avgpool_lanes__avx2(const fc_pool_lanes_geom *g, const float *x, float *y, int np,
                                float *t) {
    if (np == 8 && g->hw == 4) pool_lanes(g, x, y, 8, t, 0, 1);
    else if (np == 8) pool_lanes(g, x, y, 8, t, 0, 0);
    else pool_lanes(g, x, y, np, t, 0, 0);
}
