/* Winograd F(m x m, 3 x 3) transform kernels (internal to fc_conv_winograd.c).
 *
 * Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (2015): a 3x3
 * convolution over an n x n input tile (n = m + 2) gives an m x m output tile as
 *     Y = A^T [ (G g G^T) .* (B^T d B) ] A,
 * interpolation points 0, +-1 (F(2x2)) and 0, +-1, +-2, inf (F(4x4)). The element-wise
 * product over the n*n "points" becomes one GEMM per point across channels and tiles.
 *
 * Every kernel works on a group of L tiles (lanes) at once: L = 8 (scalar, AVX2) or 16
 * (AVX-512). A group is described in one of two forms, both relative to one channel's
 * plane `x` (input) or `y` (output) with row stride rs (tiles of different images differ
 * by whole image offsets in off):
 *
 *  - fc_wino_tiles, any L tiles: tile l's top-left element at x + off[l]; its row r is
 *    read (written) where bit r of rows[l] is set, column c of that row where bit c of
 *    cols[l] is set; everything else is read as zero (not written). Lanes without a tile
 *    have rows = cols = 0 (zeros in; nothing out). Masked loads and stores only: memory
 *    outside the masks is never touched (off may point before the image's border).
 *  - fc_wino_run, L tiles side by side along one tile row, tile l at x + off + m*l: rows
 *    as above (one mask for all), columns [clo, chi) of the row span (L*m + 2 floats in,
 *    L*m out) inside the image. Only the ISAs whose run kernels handle clo > 0 or chi
 *    short of the span (run_masked in the driver) are given such runs.
 *
 * Input, d -> V = B^T d B: point t = i*n + j of the L tiles is written as L floats at
 * v + t*vs (aligned to 4*L bytes). Output, M -> Y = A^T M A (+ bias) (relu): point t is
 * read as L floats at mv + t*ms. bias: NULL or one value (the output channel's); relu
 * keeps NaN (max(0, NaN) = NaN as elsewhere in fastconv).
 *
 * The order of the tiles within the L floats of a point is the ISA's own (the AVX2
 * shuffles leave them permuted); an ISA's four kernels use one order, so the output
 * kernels may be given either form whatever form the input kernels were given.
 *
 * Each output element is a fixed sequence of operations on its own tile: the result does
 * not depend on the form, on which other tiles share the group or on the thread. */
#ifndef FC_WINOGRAD_KERNELS_H
#define FC_WINOGRAD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define FC_WINO_MAX_LANES 16

typedef struct {
    ptrdiff_t off[FC_WINO_MAX_LANES];
    uint32_t rows[FC_WINO_MAX_LANES], cols[FC_WINO_MAX_LANES];
} fc_wino_tiles;

typedef struct {
    ptrdiff_t off;
    uint32_t rows;
    int clo, chi;
} fc_wino_run;

typedef void (*fc_wino_in_tiles_fn)(const float *x, ptrdiff_t rs, const fc_wino_tiles *t,
                                    float *v, size_t vs);
typedef void (*fc_wino_in_run_fn)(const float *x, ptrdiff_t rs, const fc_wino_run *t, float *v,
                                  size_t vs);
typedef void (*fc_wino_out_tiles_fn)(const float *mv, size_t ms, const float *bias, int relu,
                                     float *y, ptrdiff_t rs, const fc_wino_tiles *t);
typedef void (*fc_wino_out_run_fn)(const float *mv, size_t ms, const float *bias, int relu,
                                   float *y, ptrdiff_t rs, const fc_wino_run *t);

#define FC_WINO_DECLARE(M, SUF)                                                            \
    void fc_f32_wino_in_tiles_##M##x##M##__##SUF(const float *x, ptrdiff_t rs,             \
                                                 const fc_wino_tiles *t, float *v, size_t vs); \
    void fc_f32_wino_out_tiles_##M##x##M##__##SUF(const float *mv, size_t ms,              \
                                                  const float *bias, int relu, float *y,   \
                                                  ptrdiff_t rs, const fc_wino_tiles *t);

#define FC_WINO_DECLARE_RUN(M, SUF)                                                        \
    void fc_f32_wino_in_run_##M##x##M##__##SUF(const float *x, ptrdiff_t rs,               \
                                               const fc_wino_run *t, float *v, size_t vs); \
    void fc_f32_wino_out_run_##M##x##M##__##SUF(const float *mv, size_t ms,                \
                                                const float *bias, int relu, float *y,     \
                                                ptrdiff_t rs, const fc_wino_run *t);

/* ---- portable C, L = 8, tiles form only: kernels/scalar/fc_f32_winograd__scalar.c */
FC_WINO_DECLARE(2, scalar)
FC_WINO_DECLARE(4, scalar)

/* ---- AVX2 + FMA, L = 8: kernels/avx2/fc_f32_winograd__avx2_fma.c (active ISA avx2);
 * the run kernels take only runs whose columns are all inside (clo = 0, chi = span) */
FC_WINO_DECLARE(2, avx2_fma)
FC_WINO_DECLARE(4, avx2_fma)
FC_WINO_DECLARE_RUN(2, avx2_fma)
FC_WINO_DECLARE_RUN(4, avx2_fma)

/* ---- AVX-512 F/VL/DQ/BW, L = 16: kernels/avx512/fc_f32_winograd__avx512.c (active ISA
 * avx512); runs with any [clo, chi) */
FC_WINO_DECLARE(2, avx512)
FC_WINO_DECLARE(4, avx512)
FC_WINO_DECLARE_RUN(2, avx512)
FC_WINO_DECLARE_RUN(4, avx512)

#endif /* FC_WINOGRAD_KERNELS_H */
