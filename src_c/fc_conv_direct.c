/* Direct convolution (no im2col buffer): the portable driver.
 *
 * y[n, co, oh, ow] = bias[co] + sum over (ci, kh, kw) of
 *     w[co, ci, kh, kw] * x[n, g*Ci/g + ci, oh*sh - pad_top + kh*dh, ow*sw - pad_left + kw*dw]
 * (cross-correlation, taps outside the input are zero), then max(0, .) with relu.
 *
 * Per call:
 *  1. the interior output columns (every kw tap inside the row) are found once; the
 *     border columns and the valid kh range of every output row go into two small
 *     tables in the workspace, so no work item divides;
 *  2. channel kernels (Co/g >= 8): the weights are repacked into the workspace as
 *     [group][block of 16 output channels][Ci/g][kh][kw][16] (a last block of at most 8
 *     channels is 8 wide), zero-padded, plus a zero-padded bias per block;
 *  3. OpenMP over output rows x channel blocks x images x groups (in that order of
 *     speed, so consecutive work items share a weight block); each work item takes the
 *     kh range of its row (clipped against the top/bottom padding) from the row table
 *     and calls the row kernel of the active ISA (see fc_conv_direct_kernels.h). The
 *     width kernel (Co/g < 8) takes whole (image, channel) planes when there are enough.
 *     On tiny maps (uses_tiny) the work items are units of channel blocks instead, each
 *     computing every output pixel of the batch (tiny_run).
 * No sum is split between threads: results are bit-identical for every thread count. */
#include "fc_conv_internal.h"
#include "fc_conv_direct_kernels.h"

/* Below 8 output channels per group a channel block would be mostly padding. */
static int uses_width_kernel(const fc_conv2d_params *p) {
    return p->out_channels / p->groups < 8;
}

/* Channel kernels: copy the input once into a row-padded buffer (zero columns left and
 * right, rows unchanged) so that every output column is computed by unchecked tiles, when
 * that is cheaper than the checked border tiles (fc_conv_padding_pays). */
static int uses_padded_input(const fc_conv2d_params *p) {
    if (uses_width_kernel(p)) return 0;
#ifdef FC_DIRECT_FORCE_PAD /* tests: 0 never pads, 1 always pads */
    return FC_DIRECT_FORCE_PAD;
#endif
    return fc_conv_padding_pays(p);
}

fc_status fc_conv2d_direct_supports(const fc_conv2d_params *p) {
    if (!p) return FC_EINVAL;
    return FC_OK; /* every configuration that fc_conv2d_check accepts */
}

/* Workspace carve-outs, each a multiple of FC_ALIGN bytes:
 *   packed weights  G * nblk * 16 * Ci/g * kh * kw floats  (channel kernels only)
 *   packed bias     G * nblk * 16 floats                   (channel kernels only)
 *   padded input    N * Ci * in_h * padded_width floats    (when uses_padded_input)
 *   row table       3 * out_h int32: first valid kh, number of valid kh, input row
 *   column table    4 * (round_up(out_w, 8) + 8) int32: the border columns (see
 *                   fc_direct_layer), padded so that 8 entries may be loaded from any of them */
typedef struct {
    size_t wpack, bpack, xpad, rows, cols, total;
} ws_layout;

/* with_packing: the workspace also holds the packed weights and bias (fc_conv2d_direct);
 * without, they come prepacked (fc_conv2d_direct_run). */
static fc_status layout(const fc_conv2d_params *p, int with_packing, ws_layout *l) {
    const int64_t cog = p->out_channels / p->groups;
    const int64_t nblk = (cog + FC_DIRECT_NB - 1) / FC_DIRECT_NB;
    l->wpack = l->bpack = l->xpad = 0;
    if (with_packing && !uses_width_kernel(p)) {
        const int64_t wd[7] = {p->groups, nblk, FC_DIRECT_NB, p->in_channels / p->groups,
                               p->kernel_h, p->kernel_w, (int64_t)sizeof(float)};
        const int64_t bd[4] = {p->groups, nblk, FC_DIRECT_NB, (int64_t)sizeof(float)};
        if (fc_count(&l->wpack, 7, wd) || fc_align_size(l->wpack, &l->wpack)) return FC_EOVERFLOW;
        if (fc_count(&l->bpack, 4, bd) || fc_align_size(l->bpack, &l->bpack)) return FC_EOVERFLOW;
    }
    if (uses_padded_input(p)) {
        const int64_t xd[5] = {p->batch, p->in_channels, p->in_h, fc_conv_padded_width(p),
                               (int64_t)sizeof(float)};
        if (fc_count(&l->xpad, 5, xd) || fc_align_size(l->xpad, &l->xpad)) return FC_EOVERFLOW;
    }
    const int64_t rd[3] = {3, p->out_h, (int64_t)sizeof(int32_t)};
    const int64_t cd[3] = {4, FC_ROUND_UP(p->out_w, 8) + 8, (int64_t)sizeof(int32_t)};
    if (fc_count(&l->rows, 3, rd) || fc_align_size(l->rows, &l->rows)) return FC_EOVERFLOW;
    if (fc_count(&l->cols, 3, cd) || fc_align_size(l->cols, &l->cols)) return FC_EOVERFLOW;
    size_t t;
    /* + FC_ALIGN so the caller's buffer may start anywhere */
    if (fc_add_size(l->wpack, l->bpack, &t) || fc_add_size(t, l->xpad, &t) ||
        fc_add_size(t, l->rows, &t) ||
        fc_add_size(t, l->cols, &t) || fc_add_size(t, FC_ALIGN, &t))
        return FC_EOVERFLOW;
    l->total = t;
    return FC_OK;
}

fc_status fc_conv2d_direct_workspace_size(const fc_conv2d_params *p, size_t *bytes) {
    if (!p || !bytes) return FC_EINVAL;
    ws_layout l;
    fc_status st = layout(p, 1, &l);
    if (st != FC_OK) return st;
    *bytes = l.total;
    return FC_OK;
}

fc_status fc_conv2d_direct_run_workspace_size(const fc_conv2d_params *p, size_t *bytes) {
    if (!p || !bytes) return FC_EINVAL;
    ws_layout l;
    fc_status st = layout(p, 0, &l);
    if (st != FC_OK) return st;
    *bytes = l.total;
    return FC_OK;
}

/* Prepacked weights: the channel kernels' blocks and padded bias, or for the width kernel
 * (which reads the weights as they are) a copy of w and of the bias (zeros if none). */
fc_status fc_conv2d_direct_packed_size(const fc_conv2d_params *p, size_t *wbytes,
                                       size_t *bbytes) {
    const int64_t cog = p->out_channels / p->groups, cig = p->in_channels / p->groups;
    const int64_t nblk = (cog + FC_DIRECT_NB - 1) / FC_DIRECT_NB;
    const int width = uses_width_kernel(p);
    const int64_t wd[7] = {p->groups, width ? cog : nblk * FC_DIRECT_NB, cig, p->kernel_h,
                           p->kernel_w, (int64_t)sizeof(float), 1};
    const int64_t bd[3] = {p->groups, width ? cog : nblk * FC_DIRECT_NB, (int64_t)sizeof(float)};
    if (fc_count(wbytes, 7, wd) || fc_align_size(*wbytes, wbytes)) return FC_EOVERFLOW;
    if (fc_count(bbytes, 3, bd) || fc_align_size(*bbytes, bbytes)) return FC_EOVERFLOW;
    return FC_OK;
}

/* The layer constants; padded: the kernels read the row-padded input copy, in which
 * every column is interior. */
static void layer_constants(const fc_conv2d_params *p, int padded, fc_direct_layer *L) {
    L->cig = p->in_channels / p->groups;
    L->in_h = p->in_h;
    L->in_w = padded ? fc_conv_padded_width(p) : p->in_w;
    L->kernel_h = p->kernel_h;
    L->kernel_w = p->kernel_w;
    L->stride_w = p->stride_w;
    L->dil_h = p->dilation_h;
    L->dil_w = p->dilation_w;
    L->pad_left = padded ? 0 : p->pad_left;
    L->out_w = p->out_w;
    L->relu = p->relu;
    if (padded) {
        L->int_lo = 0;
        L->int_hi = p->out_w;
    } else {
        fc_conv_interior_columns(p, &L->int_lo, &L->int_hi);
    }
    L->int_end = fc_direct_interior_end(L, uses_width_kernel(p));
    L->n_edge = L->int_lo + (p->out_w - L->int_end);
}

/* Row r (= (n*Ci + c)*in_h + ih) of the padded copy: pad_left zeros, the input row (as
 * much of it as fits), zeros up to width wp. */
static void pad_row(const fc_conv2d_params *p, const float *x, int64_t r, int64_t wp, float *dst) {
    const float *src = x + r * p->in_w;
    float *d = dst + r * wp;
    const int64_t pl = FC_MIN(p->pad_left, wp);
    const int64_t nc = FC_MAX((int64_t)0, FC_MIN(p->in_w, wp - pl));
    int64_t j = 0;
    for (; j < pl; j++) d[j] = 0.0f;
    for (int64_t k = 0; k < nc; k++) d[j + k] = src[k];
    for (j += nc; j < wp; j++) d[j] = 0.0f;
}

/* The border column table (4 arrays of round_up(out_w, 8) + 8 int32 at `t`). */
static void column_table(fc_direct_layer *L, int32_t *t) {
    const int64_t cap = FC_ROUND_UP(L->out_w, 8) + 8;
    int32_t *ow_a = t, *lo_a = t + cap, *cnt_a = t + 2 * cap, *iw_a = t + 3 * cap;
    for (int64_t k = 0; k < cap; k++) {
        ow_a[k] = lo_a[k] = cnt_a[k] = iw_a[k] = 0;
        if (k >= L->n_edge) continue;
        const int64_t ow = k < L->int_lo ? k : L->int_end + (k - L->int_lo);
        int64_t lo, n, iw;
        fc_direct_col_taps(L, ow, &lo, &n, &iw);
        ow_a[k] = (int32_t)ow;
        lo_a[k] = (int32_t)lo;
        cnt_a[k] = (int32_t)n;
        iw_a[k] = (int32_t)iw;
    }
    L->e_ow = ow_a;
    L->e_lo = lo_a;
    L->e_cnt = cnt_a;
    L->e_iw = iw_a;
}

/* The row table (3 arrays of out_h int32 at `t`): valid kernel rows [lo, lo + n) of each
 * output row and the input row of tap lo (0 when no tap is valid: never read). */
static void row_table(const fc_conv2d_params *p, int32_t *t) {
    const int64_t Ho = p->out_h, dh = p->dilation_h, KH = p->kernel_h;
    for (int64_t oh = 0; oh < Ho; oh++) {
        const int64_t base = oh * p->stride_h - p->pad_top;
        int64_t a = 0, b;
        if (base < 0) a = (-base + dh - 1) / dh;
        if (base > p->in_h - 1) b = 0;
        else b = FC_MIN(KH, (p->in_h - 1 - base) / dh + 1);
        if (a > KH) a = KH;
        const int64_t n = b > a ? b - a : 0;
        t[oh] = (int32_t)a;
        t[Ho + oh] = (int32_t)n;
        t[2 * Ho + oh] = (int32_t)(n > 0 ? base + a * dh : 0);
    }
}

/* Block b of group g: [cig][kh][kw][nb], lanes past cog zero. */
static void pack_block(const fc_conv2d_params *p, const float *w, const float *bias,
                       int64_t g, int64_t b, float *wdst, float *bdst, fc_isa isa) {
    const int64_t cig = p->in_channels / p->groups, cog = p->out_channels / p->groups;
    const int64_t taps = cig * p->kernel_h * p->kernel_w;
    const int64_t co0 = b * FC_DIRECT_NB;
    const int64_t nco = FC_MIN(FC_DIRECT_NB, cog - co0);
    const int64_t nb = nco <= 8 ? 8 : FC_DIRECT_NB;
    const float *src = w + (g * cog + co0) * taps;
    if (fc_isa_has_avx2(isa)) fc_f32_conv_direct_pack__avx2_fma(src, taps, nco, nb, wdst);
    else fc_f32_conv_direct_pack__scalar(src, taps, nco, nb, wdst);
    for (int64_t l = 0; l < FC_DIRECT_NB; l++)
        bdst[l] = (bias && l < nco) ? bias[g * cog + co0 + l] : 0.0f;
}

typedef struct {
    fc_direct_row_fn c16, c8, width;
    fc_direct_row_fn c32; /* two 16-channel blocks at once, or NULL */
    fc_direct_tiny_fn tiny; /* tiny maps (see uses_tiny), or NULL */
} kernel_table;

static kernel_table kernels_for_isa(fc_isa isa) {
    kernel_table t;
    t.c32 = isa == FC_ISA_AVX512 ? fc_f32_conv_direct_32x14__avx512 : NULL;
    t.tiny = isa == FC_ISA_AVX512  ? fc_f32_conv_direct_tiny__avx512
             : fc_isa_has_avx2(isa) ? fc_f32_conv_direct_tiny__avx2_fma
                                    : NULL;
    if (fc_isa_has_avx2(isa)) {
        t.c16 = isa == FC_ISA_AVX512 ? fc_f32_conv_direct_16x28__avx512
                                     : fc_f32_conv_direct_16x6__avx2_fma;
        t.c8 = fc_f32_conv_direct_8x6__avx2_fma;
        t.width = fc_f32_conv_direct_width__avx2_fma;
    } else {
        t.c16 = fc_f32_conv_direct_16x6__scalar;
        t.c8 = fc_f32_conv_direct_8x6__scalar;
        t.width = fc_f32_conv_direct_width__scalar;
    }
    return t;
}

static void pack_all(const fc_conv2d_params *p, const float *w, const float *bias,
                     float *wpack, float *bpack, fc_isa isa) {
    const int64_t cog = p->out_channels / p->groups, cig = p->in_channels / p->groups;
    const int64_t nblk = (cog + FC_DIRECT_NB - 1) / FC_DIRECT_NB;
    const int64_t blk_stride = FC_DIRECT_NB * cig * p->kernel_h * p->kernel_w;
    const int64_t packs = p->groups * nblk;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(fc_clamp_threads(p->num_threads))
#endif
    for (int64_t gb = 0; gb < packs; gb++)
        pack_block(p, w, bias, gb / nblk, gb % nblk, wpack + gb * blk_stride,
                   bpack + gb * FC_DIRECT_NB, isa);
}

fc_status fc_conv2d_direct_pack(const fc_conv2d_params *p, const float *w, const float *bias,
                                float *wpack, float *bpack) {
    if (!p || !w || !wpack || !bpack) return FC_EINVAL;
    if (uses_width_kernel(p)) {
        const size_t nw = (size_t)p->out_channels * (size_t)(p->in_channels / p->groups) *
                          (size_t)(p->kernel_h * p->kernel_w);
        for (size_t i = 0; i < nw; i++) wpack[i] = w[i];
        for (int64_t c = 0; c < p->out_channels; c++) bpack[c] = bias ? bias[c] : 0.0f;
        return FC_OK;
    }
    pack_all(p, w, bias, wpack, bpack, fc_active_isa());
    return FC_OK;
}

static fc_status direct_run(const fc_conv2d_params *p, const ws_layout *wlp, const float *x,
                            const float *w, const float *bias, float *y, char *ws);

fc_status fc_conv2d_direct(const fc_conv2d_params *p, const float *x, const float *w,
                           const float *bias, float *y, void *workspace, size_t workspace_bytes) {
    if (!p) return FC_EINVAL;
    ws_layout wl;
    fc_status st = layout(p, 1, &wl);
    if (st != FC_OK) return st;
    if (workspace_bytes < wl.total || !workspace) return FC_ENOMEM;
    if (p->batch == 0) return FC_OK;
    if (!x || !w || !y) return FC_EINVAL;
    char *ws = (char *)fc_align_ptr(workspace);
    if (uses_width_kernel(p)) return direct_run(p, &wl, x, w, bias, y, ws);
    float *wpack = (float *)ws, *bpack = (float *)(ws + wl.wpack);
    pack_all(p, w, bias, wpack, bpack, fc_active_isa());
    return direct_run(p, &wl, x, wpack, bpack, y, ws + wl.wpack + wl.bpack);
}

fc_status fc_conv2d_direct_run(const fc_conv2d_params *p, const float *x, const float *wpack,
                               const float *bpack, float *y, void *workspace,
                               size_t workspace_bytes) {
    if (!p) return FC_EINVAL;
    ws_layout wl;
    fc_status st = layout(p, 0, &wl);
    if (st != FC_OK) return st;
    if (workspace_bytes < wl.total || !workspace) return FC_ENOMEM;
    if (p->batch == 0) return FC_OK;
    if (!x || !wpack || !bpack || !y) return FC_EINVAL;
    return direct_run(p, &wl, x, wpack, bpack, y, (char *)fc_align_ptr(workspace));
}

/* Output rows per row group of the channel kernels' work order: all of them (Ho), or 1.
 * Items run row by row within a channel block, block by block within a row group, so:
 *  - Ho (rows fastest): a block's packed weights stay in L2 while it sweeps every output
 *    row; each item brings stride_h * Ci/g input rows of WX floats that the previous item
 *    did not read (none once the whole input of the image sits in L2 next to a block).
 *    Those rows are Ci/g short segments in different channel planes, which the hardware
 *    prefetchers follow poorly (they cost about twice what their bytes suggest).
 *  - 1 (blocks fastest): the item's Ci/g * kh input rows stay in L2 for all the blocks of
 *    the row; each item streams one packed block (contiguous, prefetched well).
 * Rows fastest unless the input does not fit in L2 and twice the new input bytes of an item
 * exceed the bytes of a block: e.g. stride 2 over 256 channels of 56x56 (28x28 output:
 * about 5% less time at 1 thread and 15% at 2, measured on Zen 4), while VGG's stride-1
 * layers keep rows fastest. The order never changes how an output value is summed. */
#ifndef FC_DIRECT_L2_BYTES
#define FC_DIRECT_L2_BYTES (1024 * 1024)
#endif
static int64_t direct_row_group(const fc_conv2d_params *p, int64_t wx, int64_t blk_floats) {
    const int64_t Ho = FC_MAX(p->out_h, (int64_t)1);
    const double row_bytes = (double)(p->in_channels / p->groups) * (double)wx * 4.0;
    const double blk_bytes = (double)blk_floats * 4.0;
    if ((double)p->in_h * row_bytes + blk_bytes <= (double)FC_DIRECT_L2_BYTES) return Ho;
    const double new_rows = (double)FC_MIN(p->stride_h, p->kernel_h);
    return 2.0 * new_rows * row_bytes > blk_bytes ? 1 : Ho;
}

/* Tiny maps: at most 16 output pixels per image under avx512, 4 under avx2 (any batch),
 * kernels of at most FC_DIRECT_TINY_TAPS taps. There the row kernels run border tiles of
 * 1..4 columns per output row, re-read a block's weights for every row and leave the
 * weight stream to the hardware prefetchers; the tiny kernel reads them once per slot
 * group, in order, with software prefetch (see fc_direct_tiny). Interleaved on the Xeon
 * (busy), 1 thread, 512 -> 512 3x3, ms cached / weights from DRAM, rows -> tiny:
 *   avx512: 2x2 map 0.61/1.03 -> 0.55/0.64, 3x3 0.94/1.41 -> 0.79/0.90,
 *           4x4 1.10/1.77 -> 1.13/1.18, 5x5 1.27/1.70 -> 1.38/1.52; 64 x 2x2 62 -> 8.4
 *   avx2:   2x2 1.19/1.67 -> 0.97/1.11, 4 x 2x2 2.91/3.83 -> 1.84/1.87; but 3x3
 *           1.08/1.79 -> 1.37/3.50 and 4x4 1.62/2.17 -> 2.02/2.19 (one block per pass:
 *           the broadcasts and slot tests are shared by 16 channels, not 64). */
static int uses_tiny(const fc_conv2d_params *p, fc_isa isa) {
    const int64_t pix = p->out_h * p->out_w;
    const int64_t max_pix = isa == FC_ISA_AVX512 ? 16 : 4;
    return !uses_width_kernel(p) && pix >= 1 && pix <= max_pix &&
           p->kernel_h * p->kernel_w <= FC_DIRECT_TINY_TAPS;
}

/* Slots q0 .. q1-1 (slot q: image q / pixels, output pixel q % pixels) into t: their
 * offsets and the taps inside the input of at least one of them, in (kh, kw) order. */
static void tiny_slots(const fc_conv2d_params *p, int64_t q0, int64_t q1, fc_direct_tiny *t) {
    const int64_t H = p->in_h, W = p->in_w, Wo = p->out_w, P = p->out_h * p->out_w;
    int64_t ih0[FC_DIRECT_TINY_SLOTS], iw0[FC_DIRECT_TINY_SLOTS];
    t->nslot = q1 - q0;
    for (int64_t s = 0; s < t->nslot; s++) {
        const int64_t n = (q0 + s) / P, pix = (q0 + s) % P;
        ih0[s] = (pix / Wo) * p->stride_h - p->pad_top;
        iw0[s] = (pix % Wo) * p->stride_w - p->pad_left;
        t->soff[s] = n * p->in_channels * H * W + ih0[s] * W + iw0[s];
        t->yoff[s] = n * p->out_channels * P + pix;
    }
    t->ntap = 0;
    for (int64_t kh = 0; kh < p->kernel_h; kh++) {
        for (int64_t kw = 0; kw < p->kernel_w; kw++) {
            uint32_t m = 0;
            for (int64_t s = 0; s < t->nslot; s++) {
                const int64_t ih = ih0[s] + kh * p->dilation_h, iw = iw0[s] + kw * p->dilation_w;
                if (ih >= 0 && ih < H && iw >= 0 && iw < W) m |= 1u << s;
            }
            if (!m) continue;
            t->toff[t->ntap] = kh * p->dilation_h * W + kw * p->dilation_w;
            t->tap[t->ntap] = (int32_t)(kh * p->kernel_w + kw);
            t->tmask[t->ntap] = m;
            t->ntap++;
        }
    }
}

/* Work item: a unit of up to 4 consecutive 16-wide blocks of one group (or the lone
 * 8-wide last block), for every slot of the batch, FC_DIRECT_TINY_SLOTS at a time: the
 * unit's weights come from memory once and from L2 for the later slot groups. Fewer
 * blocks per unit when 4 would leave fewer than two units per thread (the blocks per
 * unit never change how a value is summed). */
static fc_status tiny_run(const fc_conv2d_params *p, const float *x, const float *w,
                          const float *bias, float *y, fc_direct_tiny_fn fn, int nthreads) {
    const int64_t N = p->batch, G = p->groups, Ci = p->in_channels, Co = p->out_channels;
    const int64_t cig = Ci / G, cog = Co / G, H = p->in_h, W = p->in_w;
    const int64_t P = p->out_h * p->out_w, ktaps = p->kernel_h * p->kernel_w;
    const int64_t nblk = (cog + FC_DIRECT_NB - 1) / FC_DIRECT_NB;
    const int64_t blk_stride = FC_DIRECT_NB * cig * ktaps;
    const int64_t last8 = cog - (nblk - 1) * FC_DIRECT_NB <= 8 ? 1 : 0;
    const int64_t n16 = nblk - last8;
    int64_t bpu = 4;
    while (bpu > 1 && (n16 + bpu - 1) / bpu < 2 * (int64_t)nthreads) bpu /= 2;
    const int64_t nu16 = (n16 + bpu - 1) / bpu, nunit = nu16 + last8;
    const int64_t slots = N * P;
    const int64_t ngrp = (slots + FC_DIRECT_TINY_SLOTS - 1) / FC_DIRECT_TINY_SLOTS;
    const int64_t items = G * nunit;
#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads)
#endif
    {
        const fc_fpmode fpm = fc_flush_denormals(); /* per thread, see fc_internal.h */
        fc_direct_tiny t;
        t.x_cstride = H * W;
        t.cig = cig;
        t.ktaps = ktaps;
        t.relu = p->relu;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int64_t it = 0; it < items; it++) {
            const int64_t g = it / nunit, u = it % nunit;
            const int64_t b0 = u < nu16 ? u * bpu : n16;
            const int nb_call = u < nu16 ? (int)FC_MIN(bpu, n16 - b0) : 1;
            const int nb = u < nu16 ? FC_DIRECT_NB : 8;
            const int64_t co0 = b0 * FC_DIRECT_NB;
            const int64_t nco = FC_MIN((int64_t)nb_call * FC_DIRECT_NB, cog - co0);
            const float *wu = w + (g * nblk + b0) * blk_stride;
            const float *bu = bias + (g * nblk + b0) * FC_DIRECT_NB;
            float *yu = y + (g * cog + co0) * P;
            t.x = x + g * cig * H * W;
            /* near-equal slot groups, none above FC_DIRECT_TINY_SLOTS */
            for (int64_t k = 0; k < ngrp; k++) {
                tiny_slots(p, k * slots / ngrp, (k + 1) * slots / ngrp, &t);
                fn(&t, wu, blk_stride, nb_call, nb, bu, yu, P, nco);
            }
        }
        fc_restore_fpmode(fpm);
    }
    return FC_OK;
}

/* The convolution proper. w, bias: the packed blocks (channel kernels) or the weights as
 * they are (width kernel); ws: the aligned scratch after any packed weights. */
static fc_status direct_run(const fc_conv2d_params *p, const ws_layout *wlp, const float *x,
                            const float *w, const float *bias, float *y, char *ws) {
    const ws_layout wl = *wlp;
    const fc_isa isa = fc_active_isa();
    const kernel_table kt = kernels_for_isa(isa);
    const int64_t N = p->batch, G = p->groups, Ci = p->in_channels, Co = p->out_channels;
    const int64_t cig = Ci / G, cog = Co / G;
    const int64_t H = p->in_h, W = p->in_w, KH = p->kernel_h, KW = p->kernel_w;
    const int64_t Ho = p->out_h, Wo = p->out_w;
    const int64_t out_plane = Ho * Wo;
    const int nthreads = fc_clamp_threads(p->num_threads);
    if (kt.tiny && uses_tiny(p, isa)) return tiny_run(p, x, w, bias, y, kt.tiny, nthreads);

    float *xpad = (float *)ws;
    int32_t *rows = (int32_t *)(ws + wl.xpad);
    int32_t *cols = (int32_t *)(ws + wl.xpad + wl.rows);
    const int padded = wl.xpad > 0;
    fc_direct_layer L;
    layer_constants(p, padded, &L);
    column_table(&L, cols);
    row_table(p, rows);
    const int32_t *row_lo = rows, *row_n = rows + Ho, *row_ih = rows + 2 * Ho;

    if (uses_width_kernel(p)) {
        /* work item: all output rows of one (image, output channel) plane when there are
         * enough planes to share out, else one output row */
        const int64_t planes = N * Co;
        const int by_plane = planes >= 4 * (int64_t)nthreads;
        const int64_t items = by_plane ? planes : planes * Ho;
        const int64_t rows_per_item = by_plane ? Ho : 1;
        const int chunk = by_plane ? 1 : 16;
        (void)chunk;
        /* dynamic: on a shared machine a thread that loses its core does not hold up the
         * others; which thread computes an item never changes its bits */
#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads)
#endif
        {
        const fc_fpmode fpm = fc_flush_denormals(); /* per thread, see fc_internal.h */
#ifdef _OPENMP
#pragma omp for schedule(dynamic, chunk)
#endif
        for (int64_t it = 0; it < items; it++) {
            const int64_t plane = by_plane ? it : it / Ho;
            const int64_t co = plane % Co, n = plane / Co, g = co / cog;
            const int64_t oh0 = by_plane ? 0 : it % Ho;
            const float *xg = x + (n * Ci + g * cig) * H * W;
            const float *wc = w + co * cig * KH * KW;
            float *yp = y + (n * Co + co) * out_plane;
            for (int64_t oh = oh0; oh < oh0 + rows_per_item; oh++) {
                fc_direct_row r;
                r.x = xg + (int64_t)row_ih[oh] * W;
                r.kh_count = row_n[oh];
                r.w = wc + (int64_t)row_lo[oh] * KW;
                r.bias = bias ? bias + co : NULL;
                r.y = yp + oh * Wo;
                r.y_cstride = out_plane;
                r.nco = 1;
                r.w_next = 0;
                kt.width(&L, &r);
            }
        }
        fc_restore_fpmode(fpm);
        }
        return FC_OK;
    }

    const int64_t nblk = (cog + FC_DIRECT_NB - 1) / FC_DIRECT_NB;
    const int64_t blk_stride = FC_DIRECT_NB * cig * KH * KW; /* floats per packed block */
    const int64_t WX = L.in_w; /* row length of the input the kernels read */
    const float *xs = padded ? xpad : x;
    const int64_t pad_rows = padded ? N * Ci * H : 0;
    /* work item: output row (fastest), unit of channel blocks, row group, image, group
     * (slowest); see direct_row_group. A unit is one block, or two with a two-block
     * kernel (AVX-512), which then runs both where both are 16 wide. Two blocks only for
     * maps narrower than 16 columns: there the one-block tile (up to 28 columns) would
     * run short, while on wider maps its 28-column tiles read each weight vector for
     * twice the columns and win (interleaved on the Xeon, 1 thread: VGG-16 224..28
     * columns 13-25% faster with one block; 14 columns 15% slower; CIFAR 16x16 5-10%
     * faster, 32x32 5% slower, 2x2 10% slower). */
    const int64_t bpu = (kt.c32 && p->out_w < 16) ? 2 : 1;
    const int64_t nunit = (nblk + bpu - 1) / bpu;
    const int64_t items = G * N * nunit * Ho;
    const int64_t row_grp = direct_row_group(p, WX, blk_stride * bpu);

#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads)
#endif
    {
        const fc_fpmode fpm = fc_flush_denormals(); /* per thread, see fc_internal.h */
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t pr = 0; pr < pad_rows; pr++) pad_row(p, x, pr, WX, xpad);
        /* the implicit barrier of the loop above publishes the padded input */
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int64_t it = 0; it < items; it++) {
            /* it = (group, image) * Ho*nunit + row group * R*nunit + u * rows + row */
            const int64_t per_img = Ho * nunit;
            const int64_t rest = it / per_img, il = it - rest * per_img;
            const int64_t rg = il / (row_grp * nunit);
            const int64_t oh0 = rg * row_grp, rows_g = FC_MIN(row_grp, Ho - oh0);
            const int64_t off = il - oh0 * nunit;
            const int64_t u = off / rows_g, oh = oh0 + off % rows_g;
            const int64_t n = rest % N, g = rest / N;
            const int64_t b1 = FC_MIN(nblk, (u + 1) * bpu);
            for (int64_t b = u * bpu; b < b1; b++) {
                const int64_t co0 = b * FC_DIRECT_NB;
                const int64_t nco = FC_MIN(FC_DIRECT_NB, cog - co0);
                const int64_t nb = nco <= 8 ? 8 : FC_DIRECT_NB;
                fc_direct_row r;
                r.x = xs + ((n * Ci + g * cig) * H + row_ih[oh]) * WX;
                r.kh_count = row_n[oh];
                r.w = w + (g * nblk + b) * blk_stride + row_lo[oh] * KW * nb;
                r.bias = bias + (g * nblk + b) * FC_DIRECT_NB;
                r.y = y + (n * Co + g * cog + co0) * out_plane + oh * Wo;
                r.y_cstride = out_plane;
                r.nco = nco;
                r.w_next = 0;
                if (b + 1 < b1 && cog - co0 > FC_DIRECT_NB + 8) {
                    /* this block and the next, both 16 wide */
                    r.nco = FC_MIN(2 * FC_DIRECT_NB, cog - co0);
                    r.w_next = blk_stride;
                    kt.c32(&L, &r);
                    b++;
                } else if (nb == 8) {
                    kt.c8(&L, &r);
                } else {
                    kt.c16(&L, &r);
                }
            }
        }
        fc_restore_fpmode(fpm);
    }
    return FC_OK;
}
