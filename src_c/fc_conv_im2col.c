/* im2col + GEMM convolution.
 *
 * Per image and group: y_g[Co/g, Ho*Wo] = w_g[Co/g, K] * col[K, Ho*Wo] with
 * K = Ci/g * kh * kw, bias and ReLU fused in the GEMM epilogue. The im2col matrix is built
 * one tile of output pixels at a time, so the workspace stays bounded; a 1x1 stride-1
 * unpadded convolution multiplies the input directly and needs no im2col buffer. */
#include "fc_conv_internal.h"
#include "fc_im2col.h"

/* Tile sizing: a tile should stay near the L2 cache, but hold at least 4*M pixels so the
 * weights, packed again for every tile, cost at most a quarter of the tile's traffic. */
#define FC_IM2COL_TILE_TARGET_BYTES ((size_t)512 * 1024)
#define FC_IM2COL_TILE_MAX_BYTES ((size_t)32 * 1024 * 1024)

static int is_pointwise(const fc_conv2d_params *p) {
    return p->kernel_h == 1 && p->kernel_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
           p->pad_top == 0 && p->pad_left == 0 && p->pad_bottom == 0 && p->pad_right == 0;
}

/* Output pixels per im2col tile (a multiple of 16 unless it is all of them). */
static int64_t tile_pixels(const fc_conv2d_params *p) {
    const int64_t cog = p->out_channels / p->groups;
    const int64_t K = (p->in_channels / p->groups) * p->kernel_h * p->kernel_w;
    const int64_t N = p->out_h * p->out_w;
    int64_t nt = (int64_t)(FC_IM2COL_TILE_TARGET_BYTES / ((size_t)K * sizeof(float)));
    nt = FC_MAX(nt, 4 * cog);
    nt = FC_MIN(nt, (int64_t)(FC_IM2COL_TILE_MAX_BYTES / ((size_t)K * sizeof(float))));
    nt = FC_MAX(16, nt / 16 * 16);
    return FC_MIN(nt, N);
}

fc_status fc_conv2d_im2col_supports(const fc_conv2d_params *p) {
    (void)p;
    return FC_OK;
}

static void gemm_args_for(const fc_conv2d_params *p, int64_t n_cols, fc_gemm_args *a) {
    const int64_t K = (p->in_channels / p->groups) * p->kernel_h * p->kernel_w;
    *a = (fc_gemm_args){0};
    a->m = p->out_channels / p->groups;
    a->n = n_cols;
    a->k = K;
    a->rs_a = K; a->cs_a = 1;
    a->relu = p->relu;
    a->num_threads = p->num_threads;
}

fc_status fc_conv2d_im2col_workspace_size(const fc_conv2d_params *p, size_t *bytes) {
    const int64_t K = (p->in_channels / p->groups) * p->kernel_h * p->kernel_w;
    const int64_t nt = is_pointwise(p) ? p->out_h * p->out_w : tile_pixels(p);
    fc_gemm_args a;
    gemm_args_for(p, nt, &a);
    size_t gemm_bytes, col_bytes = 0, total;
    fc_status st = fc_sgemm_workspace_size(&a, &gemm_bytes);
    if (st != FC_OK) return st;
    if (!is_pointwise(p)) {
        const int64_t dims[3] = {K, nt, (int64_t)sizeof(float)};
        if (fc_count(&col_bytes, 3, dims) || fc_align_size(col_bytes, &col_bytes))
            return FC_EOVERFLOW;
    }
    /* + FC_ALIGN so the caller's buffer may start anywhere */
    if (fc_add_size(col_bytes, gemm_bytes, &total) || fc_add_size(total, FC_ALIGN, &total))
        return FC_EOVERFLOW;
    *bytes = total;
    return FC_OK;
}

fc_status fc_conv2d_im2col(const fc_conv2d_params *p, const float *x, const float *w,
                           const float *bias, float *y, void *workspace, size_t workspace_bytes) {
    size_t need;
    fc_status st = fc_conv2d_im2col_workspace_size(p, &need);
    if (st != FC_OK) return st;
    if (workspace_bytes < need || !workspace) return FC_ENOMEM;

    const int64_t G = p->groups, cig = p->in_channels / G, cog = p->out_channels / G;
    const int64_t K = cig * p->kernel_h * p->kernel_w;
    const int64_t HW = p->in_h * p->in_w, N = p->out_h * p->out_w;
    const int pointwise = is_pointwise(p);
    const int64_t nt = pointwise ? N : tile_pixels(p);

    char *base = (char *)fc_align_ptr(workspace);
    size_t col_bytes = pointwise ? 0 : FC_ROUND_UP((size_t)K * (size_t)nt * sizeof(float), (size_t)FC_ALIGN);
    float *col = (float *)base;
    void *gemm_ws = base + col_bytes;
    size_t gemm_ws_bytes = need - FC_ALIGN - col_bytes;

    for (int64_t n = 0; n < p->batch; n++)
        for (int64_t g = 0; g < G; g++) {
            const float *x_g = x + (n * p->in_channels + g * cig) * HW;
            float *y_g = y + (n * p->out_channels + g * cog) * N;
            for (int64_t j0 = 0; j0 < N; j0 += nt) {
                const int64_t j1 = FC_MIN(N, j0 + nt);
                fc_gemm_args a;
                gemm_args_for(p, j1 - j0, &a);
                a.a = w + g * cog * K;
                a.c = y_g + j0;
                a.rs_c = N;
                a.bias_m = bias ? bias + g * cog : NULL;
                if (pointwise) {
                    a.b = x_g + j0; a.rs_b = HW; a.cs_b = 1;
                } else {
                    fc_im2col_tile(p, cig, x_g, j0, j1, col, j1 - j0, p->num_threads);
                    a.b = col; a.rs_b = j1 - j0; a.cs_b = 1;
                }
                st = fc_sgemm(&a, gemm_ws, gemm_ws_bytes);
                if (st != FC_OK) return st;
            }
        }
    return FC_OK;
}
