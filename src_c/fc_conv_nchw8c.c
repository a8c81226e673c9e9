/* Prepared direct convolution whose output is channel-blocked (NCHW8c), the conv a
 * compiled model runs when it keeps its activations blocked (issue 7). The input is
 * NCHW (a network's first layer: no reorder of the image) or NCHW8c.
 *
 * Blob (FC_ALIGN-aligned): header | weights [group][Ci][kh][kw][G] | bias [group][G],
 * G = the active ISA's group width (32 under avx512, 16 otherwise), lanes past Co zero.
 *
 * Per call: OpenMP over output rows x images x groups (rows fastest, so a thread runs one
 * group's weights over consecutive rows); each work item clips the kernel rows against
 * the top/bottom padding and calls the row kernel, which splits the row into border
 * columns and register tiles (fc_conv_nchw8c_kernels.h). On small maps a blocked input is
 * first copied into the workspace with zero columns (uses_padded_input), so no column is
 * a border one. No sum is split between threads, so the bits do not depend on the thread
 * count. */
#include "fc_conv_internal.h"
#include "fc_conv_nchw8c_kernels.h"

#define FC8C_MAGIC 0x6663386363763221ull /* "fc8ccv2!" */
#define FC8C_HEADER_BYTES 128

typedef struct {
    uint64_t magic;
    int32_t isa, group, has_bias, unused;
    int64_t out_channels, in_channels, kernel_h, kernel_w;
    uint64_t wbytes, bbytes;
} blob_header;

typedef char blob_header_fits[sizeof(blob_header) <= FC8C_HEADER_BYTES ? 1 : -1];

static int64_t group_width(fc_isa isa) {
    if (isa == FC_ISA_AVX512) return FC_CONV8C_G_AVX512;
    if (isa == FC_ISA_AVX2) return FC_CONV8C_G_AVX2;
    return FC_CONV8C_G_SCALAR;
}

static fc_conv8c_row_fn row_kernel(fc_isa isa) {
    if (isa == FC_ISA_AVX512) return fc_f32_conv8c_row__avx512;
    if (isa == FC_ISA_AVX2) return fc_f32_conv8c_row__avx2_fma;
    return fc_f32_conv8c_row__scalar;
}

static fc_status check_params(const fc_conv2d_params *p) {
    const fc_status st = fc_conv2d_check(p);
    if (st != FC_OK) return st;
    return p->groups == 1 ? FC_OK : FC_EUNSUPPORTED;
}

/* Bytes of the packed weights and bias for the ISA `isa` (each a multiple of FC_ALIGN). */
static fc_status array_bytes(const fc_conv2d_params *p, fc_isa isa, size_t *wb, size_t *bb) {
    const int64_t g = group_width(isa);
    const int64_t ngroups = (p->out_channels + g - 1) / g;
    const int64_t wdims[5] = {ngroups, p->in_channels, p->kernel_h, p->kernel_w, g};
    const int64_t bdims[2] = {ngroups, g};
    size_t nw, nb;
    if (fc_count(&nw, 5, wdims) || fc_count(&nb, 2, bdims) || fc_mul_size(nw, 4, &nw) ||
        fc_mul_size(nb, 4, &nb) || fc_align_size(nw, wb) || fc_align_size(nb, bb))
        return FC_EOVERFLOW;
    return FC_OK;
}

fc_status fc_conv2d_nchw8c_packed_size(const fc_conv2d_params *p, size_t *bytes) {
    if (!p || !bytes) return FC_EINVAL;
    fc_status st = check_params(p);
    if (st != FC_OK) return st;
    size_t wb, bb, t;
    st = array_bytes(p, fc_active_isa(), &wb, &bb);
    if (st != FC_OK) return st;
    if (fc_add_size(wb, bb, &t) || fc_add_size(t, FC8C_HEADER_BYTES, bytes)) return FC_EOVERFLOW;
    return FC_OK;
}

fc_status fc_conv2d_nchw8c_pack(const fc_conv2d_params *p, const float *w, const float *bias,
                                void *packed, size_t packed_bytes) {
    size_t need, wb, bb;
    fc_status st = fc_conv2d_nchw8c_packed_size(p, &need);
    if (st != FC_OK) return st;
    if (!w || !packed || ((uintptr_t)packed % FC_ALIGN) != 0) return FC_EINVAL;
    if (packed_bytes < need) return FC_ENOMEM;
    const fc_isa isa = fc_active_isa();
    array_bytes(p, isa, &wb, &bb);
    const int64_t g = group_width(isa), co = p->out_channels, ci = p->in_channels;
    const int64_t taps = p->kernel_h * p->kernel_w, ngroups = (co + g - 1) / g;
    float *wpack = (float *)((char *)packed + FC8C_HEADER_BYTES);
    float *bpack = (float *)((char *)packed + FC8C_HEADER_BYTES + wb);
    for (int64_t gi = 0; gi < ngroups; gi++) {
        for (int64_t j = 0; j < g; j++) {
            const int64_t o = gi * g + j;
            bpack[gi * g + j] = (o < co && bias) ? bias[o] : 0.0f;
        }
        float *dst = wpack + gi * ci * taps * g;
        for (int64_t c = 0; c < ci; c++)
            for (int64_t t = 0; t < taps; t++)
                for (int64_t j = 0; j < g; j++) {
                    const int64_t o = gi * g + j;
                    dst[(c * taps + t) * g + j] = o < co ? w[(o * ci + c) * taps + t] : 0.0f;
                }
    }
    blob_header h = {FC8C_MAGIC, (int32_t)isa, (int32_t)g, bias != NULL, 0, co, ci,
                     p->kernel_h, p->kernel_w, (uint64_t)wb, (uint64_t)bb};
    *(blob_header *)packed = h;
    return FC_OK;
}

/* The blob's header if it is one, for p's weight shape and the ISA in use; else NULL. */
static const blob_header *check_blob(const fc_conv2d_params *p, const void *packed,
                                     size_t packed_bytes) {
    if (!packed || packed_bytes < FC8C_HEADER_BYTES || ((uintptr_t)packed % FC_ALIGN) != 0)
        return NULL;
    const blob_header *h = (const blob_header *)packed;
    const fc_isa isa = fc_active_isa();
    size_t wb, bb;
    if (h->magic != FC8C_MAGIC || h->isa != (int32_t)isa || h->group != group_width(isa) ||
        h->out_channels != p->out_channels || h->in_channels != p->in_channels ||
        h->kernel_h != p->kernel_h || h->kernel_w != p->kernel_w)
        return NULL;
    if (array_bytes(p, isa, &wb, &bb) != FC_OK || h->wbytes != wb || h->bbytes != bb ||
        packed_bytes - FC8C_HEADER_BYTES < wb + bb)
        return NULL;
    return h;
}

/* Whether a blocked input is first copied with zero columns left and right, so that every
 * output column is an interior one: a border column runs as a one-column tile, whose two
 * FMA chains wait on the FMA latency (about 4x an interior column). The rule of the NCHW
 * direct conv (fc_conv_padding_pays) picks VGG's 14x14 layers, not its 224x224 ones. An
 * NCHW input (a first layer, few channels) is never copied. */
static int uses_padded_input(const fc_conv2d_params *p, int x_blocked) {
    return x_blocked && fc_conv_padding_pays(p);
}

fc_status fc_conv2d_nchw8c_run_workspace_size(const fc_conv2d_params *p, int x_blocked,
                                              size_t *bytes) {
    if (!p || !bytes || (x_blocked != 0 && x_blocked != 1)) return FC_EINVAL;
    fc_status st = check_params(p);
    if (st != FC_OK) return st;
    *bytes = 0;
    if (!uses_padded_input(p, x_blocked)) return FC_OK;
    const int64_t d[5] = {p->batch, (p->in_channels + 7) / 8, p->in_h,
                          fc_conv_padded_width(p), 8};
    size_t n;
    if (fc_count(&n, 5, d) || fc_mul_size(n, 4, &n) || fc_add_size(n, FC_ALIGN, bytes))
        return FC_EOVERFLOW;
    return FC_OK;
}

fc_status fc_conv2d_nchw8c_run(const fc_conv2d_params *p, int x_blocked, const float *x,
                               const void *packed, size_t packed_bytes, float *y,
                               void *workspace, size_t workspace_bytes) {
    if (!p) return FC_EINVAL;
    size_t need;
    fc_status st = fc_conv2d_nchw8c_run_workspace_size(p, x_blocked, &need);
    if (st != FC_OK) return st;
    const blob_header *h = check_blob(p, packed, packed_bytes);
    if (!h) return FC_EINVAL;
    if (p->batch == 0) return FC_OK;
    if (!x || !y) return FC_EINVAL;
    if (need && (!workspace || workspace_bytes < need)) return FC_ENOMEM;
    const int64_t ci = p->in_channels, co = p->out_channels, g = h->group;
    const int64_t cbi = (ci + 7) / 8, cbo = (co + 7) / 8, ngroups = (co + g - 1) / g;
    const int64_t in_hw = p->in_h * p->in_w, out_hw = p->out_h * p->out_w;
    /* element counts of x and y must fit (the caller's arrays exist, but check anyway) */
    const int64_t xd[3] = {p->batch, x_blocked ? cbi * 8 : ci, in_hw};
    const int64_t yd[3] = {p->batch, cbo * 8, out_hw};
    size_t nx, ny;
    if (fc_count(&nx, 3, xd) || fc_count(&ny, 3, yd)) return FC_EOVERFLOW;

    fc_conv8c_row proto = {0};
    proto.cin = ci;
    proto.x_block = 8 * in_hw;
    proto.x_lane = x_blocked ? 1 : in_hw;
    proto.x_pix = x_blocked ? 8 : 1;
    proto.x_row = proto.x_pix * p->in_w;
    proto.kernel_w = p->kernel_w;
    proto.stride_w = p->stride_w;
    proto.dil_h = p->dilation_h;
    proto.dil_w = p->dilation_w;
    proto.pad_left = p->pad_left;
    proto.in_w = p->in_w;
    proto.w_ci = p->kernel_h * p->kernel_w * g;
    proto.y_block = out_hw * 8;
    proto.out_w = p->out_w;
    proto.relu = p->relu;
    fc_conv_interior_columns(p, &proto.int_lo, &proto.int_hi);
    const int pad = uses_padded_input(p, x_blocked);
    const int64_t xw = pad ? fc_conv_padded_width(p) : p->in_w; /* width of the rows read */
    float *xpad = pad ? (float *)fc_align_ptr(workspace) : NULL;
    if (pad) {
        proto.x_block = 8 * p->in_h * xw;
        proto.x_row = 8 * xw;
        proto.in_w = xw;
        proto.pad_left = 0;
        proto.int_lo = 0;
        proto.int_hi = p->out_w;
    }
    const int64_t x_image = pad ? cbi * proto.x_block : xd[1] * in_hw;
    const int64_t y_image = cbo * 8 * out_hw;
    const int64_t pad_rows = pad ? p->batch * cbi * p->in_h : 0;
    const float *wpack = (const float *)((const char *)packed + FC8C_HEADER_BYTES);
    const float *bpack = (const float *)((const char *)packed + FC8C_HEADER_BYTES + h->wbytes);
    const fc_conv8c_row_fn kernel = row_kernel(fc_active_isa());
    const int64_t items = ngroups * p->batch * p->out_h;
    const fc_conv2d_params q = *p;

#ifdef _OPENMP
#pragma omp parallel num_threads(fc_clamp_threads(q.num_threads))
#endif
    {
        fc_fpmode fpm = fc_flush_denormals();
        if (pad_rows) {
            /* copy each input row (image, block, row) between zero columns */
            const int64_t left = q.pad_left * 8, row = q.in_w * 8, total = xw * 8;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
            for (int64_t r = 0; r < pad_rows; r++) {
                const float *src = x + r * row;
                float *dst = xpad + r * total;
                const int64_t copy = FC_MIN(row, total - left);
                for (int64_t i = 0; i < left; i++) dst[i] = 0.0f;
                for (int64_t i = 0; i < copy; i++) dst[left + i] = src[i];
                for (int64_t i = left + copy; i < total; i++) dst[i] = 0.0f;
            }   /* the implied barrier: every row is copied before any is read */
        }
        const float *xs = pad_rows ? xpad : x;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t it = 0; it < items; it++) {
            const int64_t oh = it % q.out_h, n = (it / q.out_h) % q.batch;
            const int64_t gi = it / (q.out_h * q.batch);
            const int64_t ih0 = oh * q.stride_h - q.pad_top, dh = q.dilation_h;
            const int64_t kh_lo = ih0 < 0 ? (-ih0 + dh - 1) / dh : 0;
            const int64_t last = q.in_h - 1 - ih0;
            const int64_t kh_hi = last < 0 ? 0 : FC_MIN(q.kernel_h, last / dh + 1);
            fc_conv8c_row r = proto;
            r.kh_count = kh_hi > kh_lo ? kh_hi - kh_lo : 0;
            const int64_t kh0 = r.kh_count ? kh_lo : 0;
            r.x = xs + n * x_image + (r.kh_count ? (ih0 + kh0 * dh) * proto.x_row : 0);
            r.w = wpack + gi * ci * proto.w_ci + kh0 * q.kernel_w * g;
            r.bias = bpack + gi * g;
            r.y = y + n * y_image + gi * (g / 8) * proto.y_block + oh * q.out_w * 8;
            r.nblocks = FC_MIN(g / 8, cbo - gi * (g / 8));
            r.last_lanes = FC_MIN(8, co - (gi * g + (r.nblocks - 1) * 8));
            kernel(&r);
        }
        fc_restore_fpmode(fpm);
    }
    return FC_OK;
}
