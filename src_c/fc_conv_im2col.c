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

fc_status fc_conv2d_im2col(const fc_conv2d_params *p, const float *x, const float *w,
                           const float *bias, float *y, void *workspace, size_t workspace_bytes) {
    size_t need, a_bytes, g_bytes;
    fc_status st = fc_conv2d_im2col_workspace_size(p, &need);
    if (st != FC_OK) return st;
    if (workspace_bytes < need || !workspace) return FC_ENOMEM;
    st = ws_parts(p, &a_bytes, &g_bytes);
    if (st != FC_OK) return st;

    const fc_isa isa = fc_active_isa(); /* read once: packing and GEMM agree */
    const int64_t G = p->groups, cig = p->in_channels / G, cog = p->out_channels / G;
    const int64_t K = cig * p->kernel_h * p->kernel_w;
    const int64_t HW = p->in_h * p->in_w, N = p->out_h * p->out_w;
    const int pointwise = is_pointwise(p);
    const int pre = prepack(p);

    char *base = (char *)fc_align_ptr(workspace);
    float *apack = (float *)(void *)base;
    void *gemm_ws = base + a_bytes;

    for (int64_t g = 0; g < G; g++) {
        const float *w_g = w + g * cog * K;
        if (pre) {
            st = fc_sgemm_pack_a(isa, cog, K, w_g, K, 1, apack, p->num_threads);
            if (st != FC_OK) return st;
        }
        for (int64_t n = 0; n < p->batch; n++) {
            const float *x_g = x + (n * p->in_channels + g * cig) * HW;
            fc_im2col_pack_ctx cx;
            fc_gemm_ex_args a = {0};
            cx.p = p;
            cx.x_g = x_g;
            cx.cig = cig;
            cx.use_avx2 = (isa == FC_ISA_AVX2);
            a.isa = isa;
            a.m = cog;
            a.n = N;
            a.k = K;
            if (pre) {
                a.apacked = apack;
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
