/* Internal interface between the convolution front (fc_conv.c: validation, algorithm
 * choice, dispatch) and the algorithm drivers. Each driver validates nothing that
 * fc_conv2d_check already did, but must respect the workspace size it reported. */
#ifndef FC_CONV_INTERNAL_H
#define FC_CONV_INTERNAL_H
#include "fc_internal.h"

/* direct convolution: src_c/fc_conv_direct.c */
fc_status fc_conv2d_direct_supports(const fc_conv2d_params *p);
fc_status fc_conv2d_direct_workspace_size(const fc_conv2d_params *p, size_t *bytes);
fc_status fc_conv2d_direct(const fc_conv2d_params *p, const float *x, const float *w,
                           const float *bias, float *y, void *workspace, size_t workspace_bytes);

/* prepacked direct convolution: packed_size gives the bytes of the weight and bias
 * arrays (each a multiple of FC_ALIGN), pack fills them, run convolves with them using
 * run_workspace_size bytes of scratch. */
fc_status fc_conv2d_direct_packed_size(const fc_conv2d_params *p, size_t *wbytes,
                                       size_t *bbytes);
fc_status fc_conv2d_direct_pack(const fc_conv2d_params *p, const float *w, const float *bias,
                                float *wpack, float *bpack);
fc_status fc_conv2d_direct_run_workspace_size(const fc_conv2d_params *p, size_t *bytes);
fc_status fc_conv2d_direct_run(const fc_conv2d_params *p, const float *x, const float *wpack,
                               const float *bpack, float *y, void *workspace,
                               size_t workspace_bytes);

/* im2col + GEMM: src_c/fc_conv_im2col.c */
fc_status fc_conv2d_im2col_supports(const fc_conv2d_params *p);
fc_status fc_conv2d_im2col_workspace_size(const fc_conv2d_params *p, size_t *bytes);
fc_status fc_conv2d_im2col(const fc_conv2d_params *p, const float *x, const float *w,
                           const float *bias, float *y, void *workspace, size_t workspace_bytes);
/* prepacked im2col + GEMM: the weights of every group packed for the GEMM once
 * (same contract as the direct functions above) */
fc_status fc_conv2d_im2col_packed_size(const fc_conv2d_params *p, size_t *wbytes,
                                       size_t *bbytes);
fc_status fc_conv2d_im2col_pack(const fc_conv2d_params *p, const float *w, const float *bias,
                                float *wpack, float *bpack);
fc_status fc_conv2d_im2col_run_workspace_size(const fc_conv2d_params *p, size_t *bytes);
fc_status fc_conv2d_im2col_run(const fc_conv2d_params *p, const float *x, const float *wpack,
                               const float *bias, float *y, void *workspace,
                               size_t workspace_bytes);

/* Winograd F(4x4, 3x3) (FC_CONV_WINOGRAD) and F(2x2, 3x3) (FC_CONV_WINOGRAD2):
 * src_c/fc_conv_winograd.c; same contract as above, `algo` selecting the variant. */
fc_status fc_conv2d_winograd_supports(const fc_conv2d_params *p);
/* GEMM columns the Winograd driver computes for `tiles` tiles with panels of nr: whole
 * panels, except that a last panel at most half full costs half (the micro-kernels'
 * half-width case, fc_gemm_width) when that half is whole groups of 8 tiles. Shared by
 * the driver and the `auto` rule's multiplication count. */
static inline size_t fc_wino_gemm_cols(size_t tiles, size_t nr) {
    const size_t rest = tiles % nr, half = nr / 2;
    if (rest && rest <= half && half % 8 == 0) return (tiles + half - 1) / half * half;
    return (tiles + nr - 1) / nr * nr;
}
fc_status fc_conv2d_winograd_workspace_size(const fc_conv2d_params *p, fc_conv_algo algo,
                                            size_t *bytes);
fc_status fc_conv2d_winograd(const fc_conv2d_params *p, fc_conv_algo algo, const float *x,
                             const float *w, const float *bias, float *y, void *workspace,
                             size_t workspace_bytes);
fc_status fc_conv2d_winograd_packed_size(const fc_conv2d_params *p, fc_conv_algo algo,
                                         size_t *wbytes, size_t *bbytes);
fc_status fc_conv2d_winograd_pack(const fc_conv2d_params *p, fc_conv_algo algo, const float *w,
                                  const float *bias, float *wpack, float *bpack);
fc_status fc_conv2d_winograd_run_workspace_size(const fc_conv2d_params *p, fc_conv_algo algo,
                                                size_t *bytes);
fc_status fc_conv2d_winograd_run(const fc_conv2d_params *p, fc_conv_algo algo, const float *x,
                                 const float *wpack, const float *bias, float *y,
                                 void *workspace, size_t workspace_bytes);
/* The same run with a 2x2 stride-2 max pool (floor mode) after the bias and ReLU, pooled
 * tile by tile: y is [batch, Co, out_h / 2, out_w / 2]; same workspace. */
fc_status fc_conv2d_winograd_run_maxpool2(const fc_conv2d_params *p, fc_conv_algo algo,
                                          const float *x, const float *wpack,
                                          const float *bias, float *y, void *workspace,
                                          size_t workspace_bytes);

#endif
