/* Internal interface between the convolution front (fc_conv.c: validation, algorithm
 * choice, dispatch) and the algorithm drivers. Each driver validates nothing that
 * fc_conv2d_check already did, but must respect the workspace size it reported. */
#ifndef FC_CONV_INTERNAL_H
#define FC_CONV_INTERNAL_H
#include "fc_internal.h"

/* Geometry shared by the direct convolutions (fc_conv_direct.c on NCHW, fc_conv_nchw8c.c
 * into NCHW8c). Interior output columns [*lo, *hi): ow*sw - pl >= 0 and
 * ow*sw - pl + (kw-1)*dw <= in_w - 1 (*lo == *hi == 0 when there is none). */
static inline void fc_conv_interior_columns(const fc_conv2d_params *p, int64_t *lo,
                                            int64_t *hi) {
    const int64_t l = (p->pad_left + p->stride_w - 1) / p->stride_w;
    const int64_t last = p->in_w - 1 + p->pad_left - (p->kernel_w - 1) * p->dilation_w;
    const int64_t h = last < 0 ? 0 : FC_MIN(p->out_w, last / p->stride_w + 1);
    *lo = h > l ? l : 0;
    *hi = h > l ? h : 0;
}

/* Width of a row of an input copy padded with zero columns: input column iw is at
 * iw + pad_left, and the last tap of the last output column is inside. */
static inline int64_t fc_conv_padded_width(const fc_conv2d_params *p) {
    return (p->out_w - 1) * p->stride_w + (p->kernel_w - 1) * p->dilation_w + 1;
}

/* Whether copying the input once with zero columns (so every output column is an interior
 * one) costs less than the border columns do: a border column runs through a slower
 * checked tile, about 3-4x an interior column; the copy costs about one cycle per float;
 * a column of one output row costs Co/g*Ci*kh*kw/16 cycles at peak. */
static inline int fc_conv_padding_pays(const fc_conv2d_params *p) {
    int64_t lo, hi;
    fc_conv_interior_columns(p, &lo, &hi);
    const int64_t n_border = lo + (p->out_w - hi);
    if (n_border == 0) return 0;
    const double cost_col = (double)(p->out_channels / p->groups) * (double)p->in_channels *
                            (double)(p->kernel_h * p->kernel_w) / 16.0;
    const double border = 2.0 * (double)n_border * (double)p->out_h * cost_col;
    const double copy =
        (double)p->in_channels * (double)p->in_h * (double)fc_conv_padded_width(p);
    return border > copy;
}

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
