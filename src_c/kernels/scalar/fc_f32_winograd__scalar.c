/* Portable Winograd transforms, F(2x2, 3x3) and F(4x4, 3x3), one tile (lane) at a time
 * in natural tile order, the tiles form only. Contract: fc_winograd_kernels.h. Matrices
 * B^T and A^T from Lavin and Gray (2015); each 2-D transform is the 1-D one over rows,
 * then over columns. */
#include "fc_winograd_kernels.h"

#define LANES 8

/* B^T of F(2x2, 3x3): [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] */
static void in1d_2(const float *d, size_t s, float *w, size_t ws) {
    const float d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s];
    w[0] = d0 - d2;
    w[ws] = d1 + d2;
    w[2 * ws] = d2 - d1;
    w[3 * ws] = d1 - d3;
}

/* A^T of F(2x2, 3x3): [1 1 1 0; 0 1 -1 -1] */
static void out1d_2(const float *m, size_t s, float *o, size_t os) {
    const float m0 = m[0], m1 = m[s], m2 = m[2 * s], m3 = m[3 * s];
    o[0] = m0 + m1 + m2;
    o[os] = m1 - m2 - m3;
}

/* B^T of F(4x4, 3x3):
 *   [4  0 -5  0 1 0]
 *   [0 -4 -4  1 1 0]
 *   [0  4 -4 -1 1 0]
 *   [0 -2 -1  2 1 0]
 *   [0  2 -1 -2 1 0]
 *   [0  4  0 -5 0 1]  */
static void in1d_4(const float *d, size_t s, float *w, size_t ws) {
    const float d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s],
                d5 = d[5 * s];
    const float t1 = d4 - 4.0f * d2, t2 = d3 - 4.0f * d1;
    const float t3 = d4 - d2, t4 = 2.0f * (d3 - d1);
    w[0] = 4.0f * d0 + (d4 - 5.0f * d2);
    w[ws] = t1 + t2;
    w[2 * ws] = t1 - t2;
    w[3 * ws] = t3 + t4;
    w[4 * ws] = t3 - t4;
    w[5 * ws] = 4.0f * d1 + (d5 - 5.0f * d3);
}

/* A^T of F(4x4, 3x3):
 *   [1 1  1 1  1 0]
 *   [0 1 -1 2 -2 0]
 *   [0 1  1 4  4 0]
 *   [0 1 -1 8 -8 1]  */
static void out1d_4(const float *m, size_t s, float *o, size_t os) {
    const float a = m[s] + m[2 * s], b = m[s] - m[2 * s];
    const float c = m[3 * s] + m[4 * s], d = m[3 * s] - m[4 * s];
    o[0] = m[0] + a + c;
    o[os] = b + 2.0f * d;
    o[2 * os] = a + 4.0f * c;
    o[3 * os] = b + 8.0f * d + m[5 * s];
}

static float epilogue(float v, const float *bias, int relu) {
    if (bias) v += *bias;
    if (relu && v < 0.0f) v = 0.0f; /* NaN stays NaN */
    return v;
}

/* The tiles form (fc_winograd_kernels.h), tiles in natural lane order. */
#define WINO_SCALAR(M, N)                                                                \
    void fc_f32_wino_in_tiles_##M##x##M##__scalar(const float *x, ptrdiff_t rs,          \
                                                  const fc_wino_tiles *tl, float *v,     \
                                                  size_t vs) {                           \
        for (size_t l = 0; l < LANES; l++) {                                             \
            float d[N][N], t[N][N];                                                      \
            for (size_t r = 0; r < N; r++) {                                             \
                const int rin = (int)(tl->rows[l] >> r) & 1;                             \
                for (size_t c = 0; c < N; c++)                                           \
                    d[r][c] = rin && ((tl->cols[l] >> c) & 1)                            \
                                  ? x[tl->off[l] + (ptrdiff_t)r * rs + (ptrdiff_t)c]     \
                                  : 0.0f;                                                \
                in1d_##M(d[r], 1, t[r], 1); /* along the row */                          \
            }                                                                            \
            for (size_t j = 0; j < N; j++) {                                             \
                float w[N];                                                              \
                in1d_##M(&t[0][j], N, w, 1); /* down the column */                       \
                for (size_t i = 0; i < N; i++) v[(i * N + j) * vs + l] = w[i];           \
            }                                                                            \
        }                                                                                \
    }                                                                                    \
    void fc_f32_wino_out_tiles_##M##x##M##__scalar(const float *mv, size_t ms,           \
                                                   const float *bias, int relu, float *y, \
                                                   ptrdiff_t rs, const fc_wino_tiles *tl) { \
        for (size_t l = 0; l < LANES; l++) {                                             \
            float mm[N][N], t[N][M];                                                     \
            if (!tl->rows[l]) continue;                                                  \
            for (size_t i = 0; i < N; i++) {                                             \
                for (size_t j = 0; j < N; j++) mm[i][j] = mv[(i * N + j) * ms + l];      \
                out1d_##M(mm[i], 1, t[i], 1);                                            \
            }                                                                            \
            for (size_t c = 0; c < M; c++) {                                             \
                float o[M];                                                              \
                out1d_##M(&t[0][c], M, o, 1);                                            \
                for (size_t r = 0; r < M; r++)                                           \
                    if ((tl->rows[l] >> r) & (tl->cols[l] >> c) & 1)                     \
                        y[tl->off[l] + (ptrdiff_t)r * rs + (ptrdiff_t)c] =               \
                            epilogue(o[r], bias, relu);                                  \
            }                                                                            \
        }                                                                                \
    }

WINO_SCALAR(2, 4)
WINO_SCALAR(4, 6)
