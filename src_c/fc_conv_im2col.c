/* im2col + GEMM convolution, with an implicit im2col.
 *
 * Per image and group: y_g[Co/g, Ho*Wo] = w_g[Co/g, K] * col[K, Ho*Wo] with
 * K = Ci/g * kh * kw, bias and ReLU fused in the GEMM epilogue. The im2col matrix `col` is
 * never built: the GEMM driver asks fc_im2col_pack_b for each packed B micro-panel, which
 * reads the image directly (fc_im2col.c). When the weights of a group would otherwise be
 * packed more than once (several images, several column blocks, or several threads of a
 * column split), they are packed once per call (fc_sgemm_pack_a) and shared; else the
 * GEMM packs them block by block as it goes. A 1x1 stride-1 unpadded convolution
 * multiplies the input directly (B is the input viewed as Ci x H*W).
 *
 * Workspace: the packed weights of one group (when packed beforehand) + the GEMM's own
 * (per thread a KC x NR panel and, unless A is pre-packed, an MC x KC block of A; a shared
 * KC x NC block of B only when threads share B panels or M needs several row blocks). */
#include "fc_conv_internal.h"
#include "fc_gemm_internal.h"
#include "fc_im2col.h"

static int is_pointwise(const fc_conv2d_params *p) {
    return p->kernel_h == 1 && p->kernel_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
           p->pad_top == 0 && p->pad_left == 0 && p->pad_bottom == 0 && p->pad_right == 0;
}

fc_status fc_conv2d_im2col_supports(const fc_conv2d_params *p) {
    (void)p;
    return FC_OK;
}

/* Whether the weights of a group are packed once for the call (they are reused by
 * several images, column blocks or threads); else the GEMM packs them block by block. */
static int prepack(const fc_conv2d_params *p) {
    return fc_sgemm_packed_a_pays(p->out_channels / p->groups, p->out_h * p->out_w, p->batch,
                                  p->num_threads);
}

/* Bytes of the packed weights of one group (aligned; 0 without prepack) and of the GEMM
 * workspace. */
static fc_status ws_parts(const fc_conv2d_params *p, size_t *a_bytes, size_t *g_bytes) {
    const int64_t cog = p->out_channels / p->groups;
    const int64_t K = (p->in_channels / p->groups) * p->kernel_h * p->kernel_w;
    const int64_t N = p->out_h * p->out_w;
    const int pre = prepack(p);
    *a_bytes = 0;
    if (pre) {
        fc_status st = fc_sgemm_packed_a_size(cog, K, a_bytes);
        if (st != FC_OK) return st;
    }
    return fc_sgemm_ex_workspace_size(cog, N, K, p->num_threads, pre, g_bytes);
}

fc_status fc_conv2d_im2col_workspace_size(const fc_conv2d_params *p, size_t *bytes) {
    size_t a_bytes, g_bytes, total;
    fc_status st = ws_parts(p, &a_bytes, &g_bytes);
    if (st != FC_OK) return st;
    /* + FC_ALIGN so the caller's buffer may start anywhere */
    if (fc_add_size(a_bytes, g_bytes, &total) || fc_add_size(total, FC_ALIGN, &total))
        return FC_EOVERFLOW;
    *bytes = total;
    return FC_OK;
}

/* The GEMMs of every image and group. A comes prepacked (apack_all: the groups' packed
 * weights, a_stride bytes apart), packed here once per group into apack (pre), or is
 * packed by the GEMM itself from w. */
static fc_status run_groups(const fc_conv2d_params *p, fc_isa isa, const float *x,
                            const float *w, const char *apack_all, size_t a_stride, int pre,
                            float *apack, const float *bias, float *y, void *gemm_ws,
                            size_t g_bytes) {
    const int64_t G = p->groups, cig = p->in_channels / G, cog = p->out_channels / G;
    const int64_t K = cig * p->kernel_h * p->kernel_w;
    const int64_t HW = p->in_h * p->in_w, N = p->out_h * p->out_w;
    const int pointwise = is_pointwise(p);
    fc_status st;

    for (int64_t g = 0; g < G; g++) {
        const float *w_g = w ? w + g * cog * K : NULL;
        const float *a_g = apack_all ? (const float *)(const void *)(apack_all + g * a_stride)
                                     : NULL;
        if (!a_g && pre) {
            st = fc_sgemm_pack_a(isa, cog, K, w_g, K, 1, apack, p->num_threads);
            if (st != FC_OK) return st;
            a_g = apack;
        }
        for (int64_t n = 0; n < p->batch; n++) {
            const float *x_g = x + (n * p->in_channels + g * cig) * HW;
            fc_im2col_pack_ctx cx;
            fc_gemm_ex_args a = {0};
            cx.p = p;
            cx.x_g = x_g;
            cx.cig = cig;
            cx.use_avx2 = fc_isa_has_avx2(isa);
            a.isa = isa;
            a.m = cog;
            a.n = N;
            a.k = K;
            if (a_g) {
                a.apacked = a_g;
            } else {
                a.a = w_g; a.rs_a = K; a.cs_a = 1;
            }
            if (pointwise) {
                a.b = x_g; a.rs_b = HW; a.cs_b = 1;
            } else {
                a.pack_b = fc_im2col_pack_b;
                a.pack_b_ctx = &cx;
            }
            a.c = y + (n * p->out_channels + g * cog) * N;
            a.rs_c = N;
            a.bias_m = bias ? bias + g * cog : NULL;
            a.relu = p->relu;
            a.num_threads = p->num_threads;
            st = fc_sgemm_ex(&a, gemm_ws, g_bytes);
            if (st != FC_OK) return st;
        }
    }
    return FC_OK;
}

fc_status fc_conv2d_im2col(const fc_conv2d_params *p, const float *x, const float *w,
                           const float *bias, float *y, void *workspace, size_t workspace_bytes) {
    size_t need, a_bytes, g_bytes;
    fc_status st = fc_conv2d_im2col_workspace_size(p, &need);
    if (st != FC_OK) return st;
    if (workspace_bytes < need || !workspace) return FC_ENOMEM;
    st = ws_parts(p, &a_bytes, &g_bytes);
    if (st != FC_OK) return st;
    char *base = (char *)fc_align_ptr(workspace);
    /* the ISA is read once, so that packing and GEMM agree */
    return run_groups(p, fc_active_isa(), x, w, NULL, 0, prepack(p), (float *)(void *)base,
                      bias, y, base + a_bytes, g_bytes);
}

/* ---------------------------------------------------------------- prepacked weights
 * The packed A of every group (fc_sgemm_pack_a for the ISA in use), each a multiple of
 * FC_ALIGN bytes, then the bias. */

static fc_status group_a_bytes(const fc_conv2d_params *p, size_t *bytes) {
    const int64_t cog = p->out_channels / p->groups;
    const int64_t K = (p->in_channels / p->groups) * p->kernel_h * p->kernel_w;
    fc_status st = fc_sgemm_packed_a_size(cog, K, bytes);
    if (st != FC_OK) return st;
    return fc_align_size(*bytes, bytes) ? FC_EOVERFLOW : FC_OK;
}

fc_status fc_conv2d_im2col_packed_size(const fc_conv2d_params *p, size_t *wbytes,
                                       size_t *bbytes) {
    size_t a;
    fc_status st = group_a_bytes(p, &a);
    if (st != FC_OK) return st;
    const int64_t bd[2] = {p->out_channels, (int64_t)sizeof(float)};
    if (fc_mul_size(a, (size_t)p->groups, wbytes)) return FC_EOVERFLOW;
    if (fc_count(bbytes, 2, bd) || fc_align_size(*bbytes, bbytes)) return FC_EOVERFLOW;
    return FC_OK;
}

fc_status fc_conv2d_im2col_pack(const fc_conv2d_params *p, const float *w, const float *bias,
                                float *wpack, float *bpack) {
    size_t a;
    fc_status st = group_a_bytes(p, &a);
    if (st != FC_OK) return st;
    if (!w || !wpack || !bpack) return FC_EINVAL;
    const int64_t cog = p->out_channels / p->groups;
    const int64_t K = (p->in_channels / p->groups) * p->kernel_h * p->kernel_w;
    const fc_isa isa = fc_active_isa();
    for (int64_t g = 0; g < p->groups; g++) {
        st = fc_sgemm_pack_a(isa, cog, K, w + g * cog * K, K, 1,
                             (float *)(void *)((char *)wpack + g * a), p->num_threads);
        if (st != FC_OK) return st;
    }
    for (int64_t c = 0; c < p->out_channels; c++) bpack[c] = bias ? bias[c] : 0.0f;
    return FC_OK;
}

fc_status fc_conv2d_im2col_run_workspace_size(const fc_conv2d_params *p, size_t *bytes) {
    const int64_t cog = p->out_channels / p->groups;
    const int64_t K = (p->in_channels / p->groups) * p->kernel_h * p->kernel_w;
    size_t g;
    fc_status st = fc_sgemm_ex_workspace_size(cog, p->out_h * p->out_w, K, p->num_threads, 1, &g);
    if (st != FC_OK) return st;
    return fc_add_size(g, FC_ALIGN, bytes) ? FC_EOVERFLOW : FC_OK;
}

fc_status fc_conv2d_im2col_run(const fc_conv2d_params *p, const float *x, const float *wpack,
                               const float *bias, float *y, void *workspace,
                               size_t workspace_bytes) {
    size_t need, a;
    fc_status st = fc_conv2d_im2col_run_workspace_size(p, &need);
    if (st != FC_OK) return st;
    if (workspace_bytes < need || !workspace) return FC_ENOMEM;
    if (!x || !wpack || !y) return FC_EINVAL;
    st = group_a_bytes(p, &a);
    if (st != FC_OK) return st;
    return run_groups(p, fc_active_isa(), x, NULL, (const char *)wpack, a, 1, NULL, bias, y,
                      fc_align_ptr(workspace), need - FC_ALIGN);
}
