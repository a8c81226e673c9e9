/* Convolution front: validation, algorithm choice and dispatch to the drivers.
 *
 * The `auto` rule (documented in README.md): grouped convolutions with few channels per
 * group (depthwise and the like) go to `direct`, because a GEMM with M = Co/groups < 16
 * rows or K = Ci/groups*kh*kw < 32 leaves the micro-kernel mostly empty; everything else
 * goes to `im2col`, whose packed SGEMM runs closest to the FMA peak, and a 1x1 stride-1
 * unpadded convolution is a plain GEMM on the input with no im2col at all. */
#include "fc_conv_internal.h"

/* Every dimension must fit in 31 bits so that the int64 size rule cannot overflow. */
#define FC_DIM_LIMIT ((int64_t)INT32_MAX)

static int dim_ok(int64_t v, int64_t lo) { return v >= lo && v <= FC_DIM_LIMIT; }

fc_status fc_conv2d_check(const fc_conv2d_params *p) {
    if (!p) return FC_EINVAL;
    if (!dim_ok(p->batch, 0) || !dim_ok(p->in_channels, 1) || !dim_ok(p->in_h, 1) ||
        !dim_ok(p->in_w, 1) || !dim_ok(p->out_channels, 1) || !dim_ok(p->kernel_h, 1) ||
        !dim_ok(p->kernel_w, 1) || !dim_ok(p->stride_h, 1) || !dim_ok(p->stride_w, 1) ||
        !dim_ok(p->pad_top, 0) || !dim_ok(p->pad_left, 0) || !dim_ok(p->pad_bottom, 0) ||
        !dim_ok(p->pad_right, 0) || !dim_ok(p->dilation_h, 1) || !dim_ok(p->dilation_w, 1) ||
        !dim_ok(p->groups, 1) || p->num_threads < 1 || (p->relu != 0 && p->relu != 1))
        return FC_EINVAL;
    if (p->in_channels % p->groups != 0 || p->out_channels % p->groups != 0) return FC_ESHAPE;
    int64_t oh = fc_out_size(p->in_h, p->pad_top, p->pad_bottom, p->kernel_h, p->stride_h,
                             p->dilation_h, 0);
    int64_t ow = fc_out_size(p->in_w, p->pad_left, p->pad_right, p->kernel_w, p->stride_w,
                             p->dilation_w, 0);
    if (oh < 1 || ow < 1 || oh != p->out_h || ow != p->out_w) return FC_ESHAPE;
    /* element counts of x, w and y, in bytes, must fit in size_t */
    size_t n;
    const int64_t xs[5] = {p->batch, p->in_channels, p->in_h, p->in_w, 4};
    const int64_t ws[5] = {p->out_channels, p->in_channels / p->groups, p->kernel_h, p->kernel_w, 4};
    const int64_t ys[5] = {p->batch, p->out_channels, p->out_h, p->out_w, 4};
    if (fc_count(&n, 5, xs) || fc_count(&n, 5, ws) || fc_count(&n, 5, ys)) return FC_EOVERFLOW;
    return FC_OK;
}

fc_conv_algo fc_conv2d_choose(const fc_conv2d_params *p) {
    int64_t cog = p->out_channels / p->groups;
    int64_t k = (p->in_channels / p->groups) * p->kernel_h * p->kernel_w;
    if (p->groups > 1 && (cog < 16 || k < 32) && fc_conv2d_direct_supports(p) == FC_OK)
        return FC_CONV_DIRECT;
    if (fc_conv2d_im2col_supports(p) == FC_OK) return FC_CONV_IM2COL;
    return FC_CONV_DIRECT;
}

static fc_conv_algo resolve(const fc_conv2d_params *p, fc_conv_algo algo) {
    return algo == FC_CONV_AUTO ? fc_conv2d_choose(p) : algo;
}

fc_status fc_conv2d_supports(const fc_conv2d_params *p, fc_conv_algo algo) {
    fc_status st = fc_conv2d_check(p);
    if (st != FC_OK) return st;
    switch (resolve(p, algo)) {
    case FC_CONV_DIRECT: return fc_conv2d_direct_supports(p);
    case FC_CONV_IM2COL: return fc_conv2d_im2col_supports(p);
    default: return FC_EINVAL;
    }
}

fc_status fc_conv2d_workspace_size(const fc_conv2d_params *p, fc_conv_algo algo, size_t *bytes) {
    if (!bytes) return FC_EINVAL;
    fc_status st = fc_conv2d_supports(p, algo);
    if (st != FC_OK) return st;
    switch (resolve(p, algo)) {
    case FC_CONV_DIRECT: return fc_conv2d_direct_workspace_size(p, bytes);
    case FC_CONV_IM2COL: return fc_conv2d_im2col_workspace_size(p, bytes);
    default: return FC_EINVAL;
    }
}

fc_status fc_conv2d(const fc_conv2d_params *p, fc_conv_algo algo, const float *x,
                    const float *w, const float *bias, float *y, void *workspace,
                    size_t workspace_bytes) {
    fc_status st = fc_conv2d_supports(p, algo);
    if (st != FC_OK) return st;
    if (p->batch == 0) return FC_OK;
    if (!x || !w || !y) return FC_EINVAL;
    switch (resolve(p, algo)) {
    case FC_CONV_DIRECT:
        return fc_conv2d_direct(p, x, w, bias, y, workspace, workspace_bytes);
    case FC_CONV_IM2COL:
        return fc_conv2d_im2col(p, x, w, bias, y, workspace, workspace_bytes);
    default: return FC_EINVAL;
    }
}
