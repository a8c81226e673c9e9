/* AVX2 2x2 stride-2 pooling of whole tensors whose planes have even height and width
 * (compiled with -mavx2 -mfma; contract in fc_pool_kernels.h). Then the tensor is a plain
 * sequence of row pairs: row pair q is the 4 * ow floats at x + 4 * q * ow (two input
 * rows of 2 * ow), output row q the ow floats at y + q * ow, across plane boundaries. So
 * small planes need no transpose and no per-row call: a vector of 8 outputs comes from
 * 32 contiguous floats (1, 2 or 4 outputs per row) or from one row pair (8 or more).
 *
 * Order, per output (the reference's): max: m = nanmax(nanmax(x00, x10), nanmax(x01, x11))
 * (nanmax is associative, so this is the sequential column-major scan); average:
 * ((0 + (x00 + x10)) + (x01 + x11)) * 0.25f, the column sums added to 0.0f. The scalar
 * tail does the same operations, so every output has the same bits whichever path and
 * thread computes it. */
#include <immintrin.h>
#include "fc_pool_kernels.h"

#define AI static inline __attribute__((always_inline))

AI __m256 nanmax8(__m256 m, __m256 v) {
    return _mm256_blendv_ps(_mm256_max_ps(v, m), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* Vertical step: row 0 then row 1 of the same columns. */
AI __m256 vert(__m256 r0, __m256 r1, int is_max) {
    return is_max ? nanmax8(r0, r1) : _mm256_add_ps(r0, r1);
}

/* Horizontal step on the column results of the even and odd columns. */
AI __m256 horiz(__m256 e, __m256 o, int is_max) {
    if (is_max) return nanmax8(e, o);
    return _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(_mm256_setzero_ps(), e), o),
                         _mm256_set1_ps(0.25f));
}

/* even / odd elements of [lo, hi] in 64-bit chunk order 0 2 1 3, and its undoing */
#define EVENS(lo, hi) _mm256_shuffle_ps((lo), (hi), 0x88)
#define ODDS(lo, hi) _mm256_shuffle_ps((lo), (hi), 0xDD)
#define UNSHUFFLE(v) _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8))

AI float one(const float *r0, const float *r1, int is_max) {
    if (is_max) return fc_nanmax_f32(fc_nanmax_f32(r0[0], r1[0]), fc_nanmax_f32(r0[1], r1[1]));
    float s = 0.0f;
    s += r0[0] + r1[0];
    s += r0[1] + r1[1];
    return s * 0.25f;
}

/* 8 outputs of one row pair: row 0 at a, row 1 at b, 16 columns. */
AI __m256 out8(const float *a, const float *b, int is_max) {
    const __m256 lo = vert(_mm256_loadu_ps(a), _mm256_loadu_ps(b), is_max);
    const __m256 hi = vert(_mm256_loadu_ps(a + 8), _mm256_loadu_ps(b + 8), is_max);
    return UNSHUFFLE(horiz(EVENS(lo, hi), ODDS(lo, hi), is_max));
}

AI void pool2x2(const float *x, float *y, int64_t nq, int64_t ow, int is_max) {
    int64_t q = 0;
    if (ow >= 8) {   /* rows of 8 or more outputs; a short tail recomputes the last 8 */
        for (; q < nq; q++) {
            const float *a = x + q * 4 * ow, *b = a + 2 * ow;
            float *d = y + q * ow;
            int64_t j = 0;
            for (; j + 8 <= ow; j += 8) _mm256_storeu_ps(d + j, out8(a + 2 * j, b + 2 * j, is_max));
            if (j < ow)
                _mm256_storeu_ps(d + ow - 8, out8(a + 2 * (ow - 8), b + 2 * (ow - 8), is_max));
        }
        return;
    }
    if (ow == 4) {   /* 2 row pairs [r0 | r1] [r0 | r1] -> 8 outputs */
        for (; q + 2 <= nq; q += 2) {
            const float *s = x + q * 16;
            const __m256 v0 = vert(_mm256_loadu_ps(s), _mm256_loadu_ps(s + 8), is_max);
            const __m256 v1 = vert(_mm256_loadu_ps(s + 16), _mm256_loadu_ps(s + 24), is_max);
            _mm256_storeu_ps(y + q * 4, UNSHUFFLE(horiz(EVENS(v0, v1), ODDS(v0, v1), is_max)));
        }
    } else if (ow == 2) {   /* 4 row pairs of [r0 (4) | r1 (4)] -> 8 outputs */
        for (; q + 4 <= nq; q += 4) {
            const float *s = x + q * 8;
            const __m256 a = _mm256_loadu_ps(s), b = _mm256_loadu_ps(s + 8);
            const __m256 c = _mm256_loadu_ps(s + 16), d = _mm256_loadu_ps(s + 24);
            /* [q0 r0 | q1 r0] with [q0 r1 | q1 r1], and the same for q2, q3 */
            const __m256 v01 = vert(_mm256_permute2f128_ps(a, b, 0x20),
                                    _mm256_permute2f128_ps(a, b, 0x31), is_max);
            const __m256 v23 = vert(_mm256_permute2f128_ps(c, d, 0x20),
                                    _mm256_permute2f128_ps(c, d, 0x31), is_max);
            _mm256_storeu_ps(y + q * 2,
                             UNSHUFFLE(horiz(EVENS(v01, v23), ODDS(v01, v23), is_max)));
        }
    } else if (ow == 1) {   /* 8 row pairs of [r0c0 r0c1 r1c0 r1c1] -> 8 outputs */
        const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (; q + 8 <= nq; q += 8) {
            const float *s = x + q * 4;
            const __m256 a = _mm256_loadu_ps(s), b = _mm256_loadu_ps(s + 8);
            const __m256 c = _mm256_loadu_ps(s + 16), d = _mm256_loadu_ps(s + 24);
            /* lane halves: [qa c0 c1, qb c0 c1] with qa, qb = q0 q2 | q1 q3 (q4.. for w) */
            const __m256 v = vert(_mm256_shuffle_ps(a, b, 0x44), _mm256_shuffle_ps(a, b, 0xEE),
                                  is_max);
            const __m256 w = vert(_mm256_shuffle_ps(c, d, 0x44), _mm256_shuffle_ps(c, d, 0xEE),
                                  is_max);
            /* lanes q0 q2 q4 q6 | q1 q3 q5 q7, put in order */
            const __m256 m = horiz(_mm256_shuffle_ps(v, w, 0x88), _mm256_shuffle_ps(v, w, 0xDD),
                                   is_max);
            _mm256_storeu_ps(y + q, _mm256_permutevar8x32_ps(m, order));
        }
    }
    for (; q < nq; q++) {   /* the rest, one output at a time */
        const float *a = x + q * 4 * ow, *b = a + 2 * ow;
        for (int64_t j = 0; j < ow; j++) y[q * ow + j] = one(a + 2 * j, b + 2 * j, is_max);
    }
}

void fc_f32_maxpool2x2__avx2(const float *x, float *y, int64_t nq, int64_t ow) {
    pool2x2(x, y, nq, ow, 1);
}

void fc_f32_avgpool2x2__avx2(const float *x, float *y, int64_t nq, int64_t ow) {
    pool2x2(x, y, nq, ow, 0);
}
