/* im2col for the im2col+GEMM convolution in its implicit form: fc_im2col_pack_b is a
 * packing callback of the GEMM driver (fc_gemm_internal.h) that reads the image straight
 * into packed B micro-panels, so no im2col matrix is ever written. */
#ifndef FC_IM2COL_H
#define FC_IM2COL_H
#include "fc_internal.h"

/* Context of fc_im2col_pack_b: one image and one group (x_g points at its first input
 * channel, cig planes of in_h x in_w). Row k of the im2col matrix runs over (channel,
 * kernel row, kernel column) like the weight layout; taps in the padding are 0. */
typedef struct {
    const fc_conv2d_params *p;
    const float *x_g;
    int64_t cig;
    int use_avx2; /* 1: the AVX2 packer may run (the GEMM runs the AVX2 or AVX-512 ISA) */
} fc_im2col_pack_ctx;

/* An fc_gemm_packb_fn: packed micro-panels of rows [k0, k0+kc) and columns (output
 * pixels) [j0, j0+nc) of the im2col matrix of ctx, nr columns per panel, zero-padded. */
void fc_im2col_pack_b(const void *ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr,
                      float *dst);

#endif
