/* Convolution front: validation, algorithm choice and dispatch to the drivers.
 *
 * The `auto` rule (measured on the bench/shapes layers; README.md explains it):
 *   1. grouped convolutions with few channels per group (Co/g < 16 or Ci/g*kh*kw < 32,
 *      e.g. depthwise) -> direct: a GEMM with so few rows or so short a sum leaves the
 *      6x16 micro-kernel mostly empty, while direct runs SIMD across output width;
 *   2. 1x1 kernels -> im2col: a plain GEMM on the input (no im2col at stride 1), and the
 *      direct kernel has only one tap per input channel to reuse its loads over;
 *   3. sums shorter than 32 (Ci/g*kh*kw < 32, a 3-channel 3x3 first layer) -> im2col
 *      (AVX-512: only at stride 1 with at least 64 output channels, else direct);
 *   4. strided layers with output rows narrower than 32 columns -> im2col: the GEMM runs
 *      over the flattened map, while direct reads two input rows per output row and
 *      splits each short row into 6-column tiles;
 *   5. AVX-512 only: maps narrower than 12 columns with at least 16 pixels -> im2col: the
 *      16 x 28 direct tile runs with so few column chains that the FMA latency shows,
 *      while the 14 x 32 GEMM tiles the flattened map (CIFAR-VGG 8x8: 80 against 65
 *      GFLOP/s, 4x4: 59 against 44; 16x16 and wider, and 2x2, stay direct);
 *   6. everything else -> direct: it reads each input row once per 16 output channels
 *      and packs no image data. With the weights packed once (prepare_conv2d, a compiled
 *      model) it beats im2col on every 3x3 stride-1 VGG layer, the 14x14 one included
 *      (0.97x ORT against 0.85x); packing per call, the two tie there.
 *   0. before all these: 3x3 stride-1 dilation-1 ungrouped layers with at least
 *      WINO_MIN_CHANNELS input and output channels -> winograd (F(4x4)) or winograd2
 *      (F(2x2)), whichever does fewer multiplications counting whole GEMM panels of tiles (wino_gain), if that is
 *      at least WINO_MIN_GAIN times fewer than direct's. Prepacked, 1 thread, medians of
 *      5 interleaved runs timed by thread CPU time (the 2-core Xeon was shared;
 *      `scripts/bench_winograd.py --threads 1 --cpu-time --filter _`), GFLOP/s of
 *      direct / im2col / winograd / winograd2:
 *        VGG-16 conv1_2 224x224x64:    60 /  60 / 146 /  87   (gain F4 4.0)
 *        VGG-16 conv3_2 56x56x256:     74 /  72 / 184 / 141
 *        VGG-16 conv5_1 14x14x512:     67 /  67 / 127 /  97   (gain F4 3.1, F2 1.7)
 *        CIFAR conv2_1 16x16, 64->128: 73 /  70 / 128 / 123
 *        CIFAR conv3_2 8x8x256:        53 /  58 /  42 /  80   (gain F4 1.0, F2 2.25)
 *        CIFAR conv4_2 4x4x512:        37 /  42 /  10 /  23   (gain F4 0.25, F2 0.56)
 *        CIFAR conv4_2 4x4x512, b64:   54 /  70 / 211 / 124
 *        13 -> 27 channels, 56x56:     38 /  36 /  44 /  45
 *        VGG-16 conv1_1, 3 channels:   50 /  58 /  28 /  26   (the input transform per
 *                                      channel outweighs a 27-long reduction)
 *      Winograd's rounding error stays below 2e-5 of the output's scale on VGG-16 layers
 *      (tests/test_winograd.py), far inside the 1e-3 budget. */
#include "fc_conv_internal.h"
#include "fc_gemm_internal.h"

/* Winograd must save at least this factor of multiplications to be chosen (the
 * transforms and the per-point GEMMs' short sums eat the rest). */
#define WINO_MIN_GAIN 1.5
/* ... and the layer needs this many input and output channels: with fewer the transforms
 * cost more than the multiplications saved (13 -> 27 channels at 56x56, avx512, 1 thread:
 * direct 0.28-0.30 ms, winograd 0.38; 16 -> 32 at 16x16 in the digits model: direct 0.043,
 * winograd 0.069; 64 -> 128 at 16x16: winograd2 0.26 against direct 0.39). */
#define WINO_MIN_CHANNELS 32

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

/* Winograd's multiplications per direct one: 9 taps per output pixel against n*n points
 * per tile, the tiles rounded up to the GEMM columns the driver computes
 * (fc_wino_gemm_cols: whole panels of the active ISA, 16 columns under avx2 and 32 under
 * avx512, or half a panel for a last one at most half full). Since the driver computes
 * 16 F(4x4) tiles as half an avx512 panel (2026-12-02), F(4x4) wins VGG-16's 14x14 maps at
 * batch 1 and F(2x2) CIFAR's 8x8 ones; prepacked, 1 thread, batch 1, medians of 41 (9)
 * interleaved calls on a loaded machine, ms direct / im2col / winograd / winograd2:
 *   VGG-16 conv5_1 14x14x512:      10.57 / 11.52 / 4.56 / 8.89  (was F(2x2)); with the
 *                                  weights evicted before each call F(4x4) 4.49, F(2x2) 5.14
 *   CIFAR conv2_1 16x16, 64->128:  0.311 / 0.337 / 0.181 / 0.214 (was F(2x2))
 *   CIFAR conv2_2 16x16x128:       0.595 / 0.658 / 0.322 / 0.386 (was F(2x2))
 *   CIFAR conv3_1 8x8, 128->256:   0.330 / 0.326 / 0.472 / 0.267 (was im2col)
 *   CIFAR conv3_2 8x8x256:         0.641 / 0.672 / 0.883 / 0.487 (was im2col)
 *   CIFAR conv4_x 4x4, 2x2: unchanged (im2col / direct), Winograd 1.7-12x slower. */
static double wino_gain(const fc_conv2d_params *p, int64_t m) {
    const int64_t nr = (int64_t)fc_sgemm_nr(fc_active_isa());
    const int64_t tiles = p->batch * ((p->out_h + m - 1) / m) * ((p->out_w + m - 1) / m);
    const int64_t cols = (int64_t)fc_wino_gemm_cols((size_t)tiles, (size_t)nr);
    return 9.0 * (double)(p->batch * p->out_h * p->out_w) / ((double)((m + 2) * (m + 2)) *
                                                              (double)(cols > 0 ? cols : nr));
}

fc_conv_algo fc_conv2d_choose(const fc_conv2d_params *p) {
    const int64_t cog = p->out_channels / p->groups;
    const int64_t k = (p->in_channels / p->groups) * p->kernel_h * p->kernel_w;
    if (p->in_channels >= WINO_MIN_CHANNELS && p->out_channels >= WINO_MIN_CHANNELS &&
        fc_conv2d_winograd_supports(p) == FC_OK) {
        const double g4 = wino_gain(p, 4), g2 = wino_gain(p, 2);
        if (g4 >= WINO_MIN_GAIN && g4 >= g2) return FC_CONV_WINOGRAD;
        if (g2 >= WINO_MIN_GAIN) return FC_CONV_WINOGRAD2;
    }
    if (p->groups > 1 && (cog < 16 || k < 32)) return FC_CONV_DIRECT;
    if (fc_active_isa() == FC_ISA_AVX512) {
        /* avx512 (measured 2026-12-01 on the 2-core Xeon, `fastconv bench`, ms direct /
         * im2col at 1 thread; 2 threads): the zmm direct kernel wins the short sums of
         * first layers at 1 thread (VGG-16 conv1_1 2.87 / 3.14 and 3.37 / 3.80, CIFAR
         * conv1_1 0.086 / 0.095, 1-channel 32x32 0.032 / 0.041) and loses them at 2
         * threads when stride 1 (conv1_1 2.10 / 1.86, CIFAR 0.109 / 0.070); strided,
         * direct wins at both (3->64 s2 at 224: 0.378 / 0.887 and 0.356 / 0.496; 30->61
         * s2 at 56: 0.361 / 0.560 and 0.240 / 0.334). The rule never looks at the thread
         * count (DESIGN: same bits for any thread count, `auto` included), so it took
         * direct, the 1-thread winner, until the A-panel prefetch (below). */
        if (p->kernel_h * p->kernel_w == 1) return FC_CONV_IM2COL;
        /* Since the SGEMM prefetches its A panel (2026-12-02, prepacked, batch 1, ms
         * direct / im2col at 1 thread; 2 threads) im2col wins the short sums when the
         * output channels fill the 14-row GEMM tiles: VGG-16 conv1_1 (3->64 at 224) 2.60 /
         * 2.16 and 2.51 / 2.49; 2.17 / 1.90 and 2.24 / 2.06; CIFAR conv1_1 (3->64 at 32)
         * 0.083 / 0.088; 0.098 / 0.063, batch 64 4.44 / 4.58; 5.12 / 3.32. With fewer
         * output channels the tiles run part empty and direct stays ahead at 1 thread
         * (1->16 at 32: 0.022 / 0.026; 3->32 at 56: 0.090 / 0.103), as on strided layers
         * (3->64 s2 at 224: 0.71 / 0.80). */
        if (k < 32 && p->stride_h == 1 && p->stride_w == 1 && cog >= 64) return FC_CONV_IM2COL;
        if (k < 32) return FC_CONV_DIRECT;
        if (p->out_w < 12 && p->out_h * p->out_w >= 16) return FC_CONV_IM2COL;
        return FC_CONV_DIRECT;
    }
    if (p->kernel_h * p->kernel_w == 1 || k < 32 || (p->stride_w > 1 && p->out_w < 32))
        return FC_CONV_IM2COL;
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
    case FC_CONV_WINOGRAD:
    case FC_CONV_WINOGRAD2: return fc_conv2d_winograd_supports(p);
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
    case FC_CONV_WINOGRAD:
    case FC_CONV_WINOGRAD2: return fc_conv2d_winograd_workspace_size(p, resolve(p, algo), bytes);
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
    case FC_CONV_WINOGRAD:
    case FC_CONV_WINOGRAD2:
        return fc_conv2d_winograd(p, resolve(p, algo), x, w, bias, y, workspace, workspace_bytes);
    default: return FC_EINVAL;
    }
}

/* ---------------------------------------------------------------- prepared convolution
 *
 * Blob layout (FC_ALIGN-aligned): header | packed weights | packed bias. For `direct` the
 * arrays are the direct kernels' blocks; for `im2col` the SGEMM's packed A panels of
 * every group. Both are laid out for one ISA, which the header records. */

#define FC_PACKED_MAGIC 0x6663636f6e763221ull /* "fcconv2!" */
#define FC_PACKED_HEADER_BYTES 128 /* a multiple of FC_ALIGN that holds packed_header */

typedef struct {
    uint64_t magic;
    int32_t algo, isa, has_bias, unused;
    int64_t out_channels, cig, kernel_h, kernel_w, groups;
    uint64_t wbytes, bbytes;
} packed_header;

typedef char packed_header_fits[sizeof(packed_header) <= FC_PACKED_HEADER_BYTES ? 1 : -1];

static fc_status packed_arrays(const fc_conv2d_params *p, fc_conv_algo algo, size_t *wbytes,
                               size_t *bbytes) {
    if (algo == FC_CONV_DIRECT) return fc_conv2d_direct_packed_size(p, wbytes, bbytes);
    if (algo == FC_CONV_WINOGRAD || algo == FC_CONV_WINOGRAD2)
        return fc_conv2d_winograd_packed_size(p, algo, wbytes, bbytes);
    return fc_conv2d_im2col_packed_size(p, wbytes, bbytes);
}

fc_status fc_conv2d_packed_size(const fc_conv2d_params *p, fc_conv_algo algo, size_t *bytes) {
    if (!bytes) return FC_EINVAL;
    fc_status st = fc_conv2d_supports(p, algo);
    if (st != FC_OK) return st;
    size_t wb, bb, t;
    st = packed_arrays(p, resolve(p, algo), &wb, &bb);
    if (st != FC_OK) return st;
    if (fc_add_size(wb, bb, &t) || fc_add_size(t, FC_PACKED_HEADER_BYTES, bytes))
        return FC_EOVERFLOW;
    return FC_OK;
}

fc_status fc_conv2d_pack(const fc_conv2d_params *p, fc_conv_algo algo, const float *w,
                         const float *bias, void *packed, size_t packed_bytes) {
    size_t need, wb, bb;
    fc_status st = fc_conv2d_packed_size(p, algo, &need);
    if (st != FC_OK) return st;
    if (!w || !packed) return FC_EINVAL;
    if (((uintptr_t)packed % FC_ALIGN) != 0) return FC_EINVAL;
    if (packed_bytes < need) return FC_ENOMEM;
    const fc_conv_algo a = resolve(p, algo);
    packed_arrays(p, a, &wb, &bb);
    float *wpack = (float *)((char *)packed + FC_PACKED_HEADER_BYTES);
    float *bpack = (float *)((char *)packed + FC_PACKED_HEADER_BYTES + wb);
    if (a == FC_CONV_DIRECT)
        st = fc_conv2d_direct_pack(p, w, bias, wpack, bpack);
    else if (a == FC_CONV_IM2COL)
        st = fc_conv2d_im2col_pack(p, w, bias, wpack, bpack);
    else
        st = fc_conv2d_winograd_pack(p, a, w, bias, wpack, bpack);
    if (st != FC_OK) return st;
    packed_header h = {FC_PACKED_MAGIC, (int32_t)a, (int32_t)fc_active_isa(), bias != NULL, 0,
                       p->out_channels,
                       p->in_channels / p->groups, p->kernel_h, p->kernel_w, p->groups,
                       (uint64_t)wb, (uint64_t)bb};
    *(packed_header *)packed = h;
    return FC_OK;
}

/* The header of a blob if it is one, matches p's weight shape and was packed for the ISA
 * in use; NULL otherwise. */
static const packed_header *check_blob(const fc_conv2d_params *p, const void *packed,
                                       size_t packed_bytes) {
    if (!packed || packed_bytes < FC_PACKED_HEADER_BYTES || ((uintptr_t)packed % FC_ALIGN) != 0)
        return NULL;
    const packed_header *h = (const packed_header *)packed;
    if (h->magic != FC_PACKED_MAGIC) return NULL;
    if (h->algo != FC_CONV_DIRECT && h->algo != FC_CONV_IM2COL && h->algo != FC_CONV_WINOGRAD &&
        h->algo != FC_CONV_WINOGRAD2)
        return NULL;
    if (packed_bytes - FC_PACKED_HEADER_BYTES < h->wbytes ||
        packed_bytes - FC_PACKED_HEADER_BYTES - h->wbytes < h->bbytes)
        return NULL;
    if (!p) return h;
    size_t wb, bb;
    if (h->isa != (int32_t)fc_active_isa() || h->out_channels != p->out_channels ||
        h->cig * p->groups != p->in_channels || h->kernel_h != p->kernel_h ||
        h->kernel_w != p->kernel_w || h->groups != p->groups ||
        packed_arrays(p, (fc_conv_algo)h->algo, &wb, &bb) != FC_OK || wb != h->wbytes ||
        bb != h->bbytes)
        return NULL;
    return h;
}

fc_conv_algo fc_conv2d_packed_algo(const void *packed, size_t packed_bytes) {
    const packed_header *h = check_blob(NULL, packed, packed_bytes);
    return h ? (fc_conv_algo)h->algo : FC_CONV_AUTO;
}

fc_status fc_conv2d_run_workspace_size(const fc_conv2d_params *p, const void *packed,
                                       size_t packed_bytes, size_t *bytes) {
    if (!bytes) return FC_EINVAL;
    fc_status st = fc_conv2d_check(p);
    if (st != FC_OK) return st;
    const packed_header *h = check_blob(p, packed, packed_bytes);
    if (!h) return FC_EINVAL;
    if (h->algo == FC_CONV_DIRECT) return fc_conv2d_direct_run_workspace_size(p, bytes);
    if (h->algo == FC_CONV_WINOGRAD || h->algo == FC_CONV_WINOGRAD2) {
        if (fc_conv2d_winograd_supports(p) != FC_OK) return FC_EINVAL;
        return fc_conv2d_winograd_run_workspace_size(p, (fc_conv_algo)h->algo, bytes);
    }
    return fc_conv2d_im2col_run_workspace_size(p, bytes);
}

fc_status fc_conv2d_run(const fc_conv2d_params *p, const float *x, const void *packed,
                        size_t packed_bytes, float *y, void *workspace, size_t workspace_bytes) {
    fc_status st = fc_conv2d_check(p);
    if (st != FC_OK) return st;
    const packed_header *h = check_blob(p, packed, packed_bytes);
    if (!h) return FC_EINVAL;
    if (p->batch == 0) return FC_OK;
    if (!x || !y) return FC_EINVAL;
    const float *wpack = (const float *)((const char *)packed + FC_PACKED_HEADER_BYTES);
    const float *bpack =
        (const float *)((const char *)packed + FC_PACKED_HEADER_BYTES + h->wbytes);
    if (h->algo == FC_CONV_DIRECT)
        return fc_conv2d_direct_run(p, x, wpack, bpack, y, workspace, workspace_bytes);
    if (h->algo == FC_CONV_WINOGRAD || h->algo == FC_CONV_WINOGRAD2) {
        if (fc_conv2d_winograd_supports(p) != FC_OK) return FC_EINVAL;
        return fc_conv2d_winograd_run(p, (fc_conv_algo)h->algo, x, wpack,
                                      h->has_bias ? bpack : NULL, y, workspace, workspace_bytes);
    }
    /* no bias stays no bias: adding zeros would turn -0.0 into +0.0 */
    return fc_conv2d_im2col_run(p, x, wpack, h->has_bias ? bpack : NULL, y, workspace,
                                workspace_bytes);
}

/* ---------------------------------------------------------------- conv + 2x2 max pool */

/* The max pool that follows: 2x2 windows, stride 2, no padding, floor mode. */
static void maxpool2_params(const fc_conv2d_params *p, fc_pool2d_params *q) {
    q->batch = p->batch;
    q->channels = p->out_channels;
    q->in_h = p->out_h;
    q->in_w = p->out_w;
    q->kernel_h = q->kernel_w = q->stride_h = q->stride_w = 2;
    q->pad_top = q->pad_left = q->pad_bottom = q->pad_right = 0;
    q->dilation_h = q->dilation_w = 1;
    q->ceil_mode = 0;
    q->count_include_pad = 0;
    q->out_h = p->out_h / 2;
    q->out_w = p->out_w / 2;
    q->num_threads = p->num_threads;
}

/* The header of a blob that can run p with the pool after it (NULL: FC_EINVAL), and in
 * *scratch the bytes of the unpooled map the algorithm needs in the workspace: none for
 * Winograd, whose tiles hold whole windows and are pooled as they are written; the whole
 * [batch, Co, out_h, out_w] map (aligned) for the others, which write it and pool it. */
static fc_status maxpool2_plan(const fc_conv2d_params *p, const void *packed,
                               size_t packed_bytes, const packed_header **hp, size_t *scratch) {
    fc_status st = fc_conv2d_check(p);
    if (st != FC_OK) return st;
    if (p->out_h < 2 || p->out_w < 2) return FC_ESHAPE; /* no whole window */
    const packed_header *h = check_blob(p, packed, packed_bytes);
    if (!h) return FC_EINVAL;
    *hp = h;
    *scratch = 0;
    if (h->algo == FC_CONV_WINOGRAD || h->algo == FC_CONV_WINOGRAD2) return FC_OK;
    const int64_t d[5] = {p->batch, p->out_channels, p->out_h, p->out_w, (int64_t)sizeof(float)};
    if (fc_count(scratch, 5, d) || fc_align_size(*scratch, scratch)) return FC_EOVERFLOW;
    return FC_OK;
}

fc_status fc_conv2d_run_maxpool2_workspace_size(const fc_conv2d_params *p, const void *packed,
                                                size_t packed_bytes, size_t *bytes) {
    const packed_header *h;
    size_t scratch, run;
    if (!bytes) return FC_EINVAL;
    fc_status st = maxpool2_plan(p, packed, packed_bytes, &h, &scratch);
    if (st != FC_OK) return st;
    if ((st = fc_conv2d_run_workspace_size(p, packed, packed_bytes, &run)) != FC_OK) return st;
    if (scratch == 0) {
        *bytes = run;
        return FC_OK;
    }
    /* + FC_ALIGN: the map is placed at the first aligned byte */
    if (fc_add_size(run, scratch, bytes) || fc_add_size(*bytes, FC_ALIGN, bytes))
        return FC_EOVERFLOW;
    return FC_OK;
}

fc_status fc_conv2d_run_maxpool2(const fc_conv2d_params *p, const float *x, const void *packed,
                                 size_t packed_bytes, float *y, void *workspace,
                                 size_t workspace_bytes) {
    const packed_header *h;
    size_t scratch, need;
    fc_status st = maxpool2_plan(p, packed, packed_bytes, &h, &scratch);
    if (st != FC_OK) return st;
    if (p->batch == 0) return FC_OK;
    if (!x || !y) return FC_EINVAL;
    if ((st = fc_conv2d_run_maxpool2_workspace_size(p, packed, packed_bytes, &need)) != FC_OK)
        return st;
    if (workspace_bytes < need || !workspace) return FC_ENOMEM;
    if (scratch == 0) {
        if (fc_conv2d_winograd_supports(p) != FC_OK) return FC_EINVAL;
        const float *wpack = (const float *)((const char *)packed + FC_PACKED_HEADER_BYTES);
        const float *bpack =
            (const float *)((const char *)packed + FC_PACKED_HEADER_BYTES + h->wbytes);
        return fc_conv2d_winograd_run_maxpool2(p, (fc_conv_algo)h->algo, x, wpack,
                                               h->has_bias ? bpack : NULL, y, workspace,
                                               workspace_bytes);
    }
    /* other algorithms: the conv into the workspace, then the pool (no pass saved, but one
     * call, and the same bits as the two separate ones) */
    char *base = (char *)fc_align_ptr(workspace);
    const size_t used = (size_t)(base - (char *)workspace) + scratch;
    float *full = (float *)(void *)base;
    st = fc_conv2d_run(p, x, packed, packed_bytes, full, base + scratch, workspace_bytes - used);
    if (st != FC_OK) return st;
    fc_pool2d_params q;
    maxpool2_params(p, &q);
    return fc_max_pool2d(&q, full, y);
}
