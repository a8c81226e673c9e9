/* im2col over a range of output pixels: the tile of the im2col matrix that the
 * im2col+GEMM convolution multiplies, so the buffer stays bounded for any image size. */
#ifndef FC_IM2COL_H
#define FC_IM2COL_H
#include "fc_internal.h"

/* For one image and one group (x_g points at its first input channel, cig planes of
 * in_h x in_w), write col[k * ld + (j - j0)] for k in [0, cig*kernel_h*kernel_w) and the
 * flattened output pixels j in [j0, j1); k runs over (channel, kernel row, kernel column)
 * like the weight layout, taps in the padding are 0. */
void fc_im2col_tile(const fc_conv2d_params *p, int64_t cig, const float *x_g, int64_t j0,
                    int64_t j1, float *col, int64_t ld, int num_threads);

#endif
