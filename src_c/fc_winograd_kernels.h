/* Winograd F(m x m, 3 x 3) transform kernels (internal to fc_conv_winograd.c).
 *
 * Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (2015): a 3x3
 * convolution over an n x n input tile (n = m + 2) gives an m x m output tile as
 *     Y = A^T [ (G g G^T) .* (B^T d B) ] A,
 * interpolation points 0, +-1 (F(2x2)) and 0, +-1, +-2, inf (F(4x4)). The element-wise
 * product over the n*n "points" becomes one GEMM per point across channels and tiles.
 *
 * Every kernel works on a group of 8 tiles (lanes) at once:
 *
 * Input, d -> V = B^T d B: input row r (r < n) of the 8 tiles is given by two pointers,
 * p[r] holding columns 0..m-1 of tile l at p[r][m*l + c] and q[r] holding columns m, m+1
 * at q[r][m*l + c - m]; each of p[r], q[r] is read for 8*m floats. When the 8 tiles
 * follow each other along an input row, q[r] = p[r] + m and both point into the image.
 * Point t = i*n + j of the 8 tiles is written as 8 floats at v + t*vs (32-byte aligned).
 * The order of the tiles within those 8 floats is the kernel's own (the AVX2 shuffles
 * leave them permuted); only the matching output kernel of the same ISA may read them.
 *
 * Output, M -> Y = A^T M A (+ bias) (relu): point t of the 8 tiles is read as 8 floats at
 * mv + t*ms (in the input kernel's tile order); output row r (r < m) is written as 8*m
 * floats at y + r*rs_y, tile l at y[r*rs_y + m*l + c]. bias: NULL or one value (the
 * output channel's); relu keeps NaN (max(0, NaN) = NaN as elsewhere in fastconv).
 *
 * Pooled output (the conv + ReLU + 2x2/2 max pool fusion; AVX2 only, the driver pools
 * a plain output kernel's rows otherwise): the same M and epilogue, then every 2x2
 * window of each tile (tiles start at multiples of m, so their windows are whole) is
 * reduced to m/2 x m/2 maxima, in the order of fastconv's max pool: fc_nanmax_f32 over
 * (r0 c0, r1 c0) and (r0 c1, r1 c1), then of the two (fc_pool_kernels.h). Pooled row r
 * (r < m/2) is written as 8*m/2 floats at y + r*rs_y, tile l at y[r*rs_y + (m/2)*l + c].
 *
 * Each output element is a fixed sequence of operations on its own tile: the result does
 * not depend on which other tiles share the group or on the thread that runs it. */
#ifndef FC_WINOGRAD_KERNELS_H
#define FC_WINOGRAD_KERNELS_H

#include <stddef.h>

typedef void (*fc_wino_in_fn)(const float *const *p, const float *const *q, float *v,
                              size_t vs);
typedef void (*fc_wino_out_fn)(const float *mv, size_t ms, const float *bias, int relu,
                               float *y, size_t rs_y);
/* the pooled output kernels have the fc_wino_out_fn signature and the contract above */

/* ---- portable C: kernels/scalar/fc_f32_winograd__scalar.c */
void fc_f32_wino_in_2x2__scalar(const float *const *p, const float *const *q, float *v, size_t vs);
void fc_f32_wino_out_2x2__scalar(const float *mv, size_t ms, const float *bias, int relu,
                                 float *y, size_t rs_y);
void fc_f32_wino_in_4x4__scalar(const float *const *p, const float *const *q, float *v, size_t vs);
void fc_f32_wino_out_4x4__scalar(const float *mv, size_t ms, const float *bias, int relu,
                                 float *y, size_t rs_y);

/* ---- AVX2 + FMA: kernels/avx2/fc_f32_winograd__avx2_fma.c (only when the active ISA is
 * AVX2) */
void fc_f32_wino_in_2x2__avx2_fma(const float *const *p, const float *const *q, float *v, size_t vs);
void fc_f32_wino_out_2x2__avx2_fma(const float *mv, size_t ms, const float *bias, int relu,
                                   float *y, size_t rs_y);
void fc_f32_wino_in_4x4__avx2_fma(const float *const *p, const float *const *q, float *v, size_t vs);
void fc_f32_wino_out_4x4__avx2_fma(const float *mv, size_t ms, const float *bias, int relu,
                                   float *y, size_t rs_y);
void fc_f32_wino_out_2x2_maxpool2__avx2_fma(const float *mv, size_t ms, const float *bias,
                                            int relu, float *y, size_t rs_y);
void fc_f32_wino_out_4x4_maxpool2__avx2_fma(const float *mv, size_t ms, const float *bias,
                                            int relu, float *y, size_t rs_y);

#endif /* FC_WINOGRAD_KERNELS_H */
