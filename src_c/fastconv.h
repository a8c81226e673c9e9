/* fastconv C API: float32 kernels for convolutional networks.
 *
 * Conventions (all functions):
 *   - Tensors are dense, C-contiguous float32: NCHW for 2-D, NCW for 1-D (a 1-D op is
 *     the 2-D op with H = 1 and kernel_h = 1).
 *   - A kernel writes only into memory it is given and returns an fc_status; it never
 *     allocates inside its loops. Scratch memory is sized by the matching
 *     *_workspace_size() query and passed in by the caller.
 *   - Every function re-validates its parameters (sizes positive, products that do not
 *     overflow, output sizes that match the output-size rule) even though the Python
 *     layer already did: the C layer trusts nothing.
 *   - `num_threads` in a params struct is the OpenMP team size for that call (>= 1). Work
 *     is split over output elements only, never over a reduction, so the result is
 *     bit-identical for every thread count.
 *   - Pure C99 (plus OpenMP pragmas); no Python.h.
 */
#ifndef FASTCONV_H
#define FASTCONV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    FC_OK = 0,
    FC_EINVAL = -1,       /* bad argument: null pointer, size < 1, option out of range */
    FC_ESHAPE = -2,       /* sizes that do not fit together (e.g. output size rule) */
    FC_ENOMEM = -3,       /* workspace too small or allocation failed */
    FC_EOVERFLOW = -4,    /* an element count or byte count overflows size_t */
    FC_EUNSUPPORTED = -5  /* the requested algorithm cannot serve this configuration */
} fc_status;

const char *fc_status_string(fc_status s);

/* ---------------------------------------------------------------- CPU and threads */

/* AVX512: AVX-512 F, VL, DQ, BW kernels where they exist (GEMM), the AVX2 ones
 * elsewhere (every AVX-512 CPU runs AVX2/FMA). */
typedef enum { FC_ISA_SCALAR = 0, FC_ISA_AVX2 = 1, FC_ISA_AVX512 = 2 } fc_isa;

/* 1 if the CPU has AVX2 and FMA and the OS saves YMM state (CPUID + XGETBV). */
int fc_cpu_has_avx2_fma(void);
/* 1 if it also has AVX-512 F/VL/DQ/BW and the OS saves the opmask and ZMM state. */
int fc_cpu_has_avx512(void);
/* Select the kernel family; FC_EUNSUPPORTED if the CPU cannot run it. */
fc_status fc_set_isa(fc_isa isa);
fc_isa fc_get_isa(void);
const char *fc_isa_name(fc_isa isa);

/* 1 if built with OpenMP. */
int fc_have_openmp(void);
/* Default team size: OMP_NUM_THREADS if set, else the number of cores. */
int fc_default_num_threads(void);
/* The compiler that built the kernels, e.g. "gcc 12.2.0". */
const char *fc_compiler(void);
/* Release the OpenMP thread pool of the calling thread (before fork(): GNU libgomp
 * keeps a pool across fork, and the child's first parallel region would wait for
 * workers that do not exist there). The next parallel region starts a new pool.
 * Returns 0 on success (or without OpenMP). */
int fc_release_thread_pool(void);

/* ---------------------------------------------------------------- SGEMM
 * C[m, n] = A[m, k] * B[k, n] (+ bias) (then max(0, .) when relu),
 * with arbitrary element strides for A and B (row stride rs, column stride cs), so
 * transposed operands need no copy. C has unit column stride and row stride rs_c.
 * bias_m (length m, added to every row i) and bias_n (length n, added to every column j)
 * are optional (NULL). When accumulate is 1, C is added to instead of overwritten
 * (C += A*B, bias and relu applied after), e.g. to sum over groups of K.
 */
typedef struct {
    int64_t m, n, k;
    const float *a; int64_t rs_a, cs_a;
    const float *b; int64_t rs_b, cs_b;
    float *c; int64_t rs_c;
    const float *bias_m;
    const float *bias_n;
    int relu;
    int accumulate;
    int num_threads;
} fc_gemm_args;

/* Depends on m, n, k and num_threads only (pointers and strides may be unset). */
fc_status fc_sgemm_workspace_size(const fc_gemm_args *args, size_t *bytes);
fc_status fc_sgemm(const fc_gemm_args *args, void *workspace, size_t workspace_bytes);

/* ---------------------------------------------------------------- convolution */

/* WINOGRAD: F(4x4, 3x3); WINOGRAD2: F(2x2, 3x3) (fewer points, smaller rounding error,
 * more work per output). Both serve 3x3 stride-1 dilation-1 ungrouped convolutions only
 * (fc_conv2d_supports says FC_EUNSUPPORTED otherwise). A NaN or Inf in the input can
 * spread to every output of the tiles (4x4 or 2x2 outputs) whose 6x6 / 4x4 input patch
 * holds it, where the other algorithms limit it to the outputs whose window holds it. */
typedef enum {
    FC_CONV_AUTO = 0,
    FC_CONV_DIRECT = 1,
    FC_CONV_IM2COL = 2,
    FC_CONV_WINOGRAD = 3,
    FC_CONV_WINOGRAD2 = 4
} fc_conv_algo;

typedef struct {
    int64_t batch, in_channels, in_h, in_w;
    int64_t out_channels, kernel_h, kernel_w;
    int64_t stride_h, stride_w;
    int64_t pad_top, pad_left, pad_bottom, pad_right;   /* >= 0 */
    int64_t dilation_h, dilation_w;
    int64_t groups;
    int64_t out_h, out_w;     /* must equal the output-size rule (checked) */
    int relu;                 /* fuse max(0, .) after the bias */
    int num_threads;
} fc_conv2d_params;

/* Validate every field; FC_ESHAPE if out_h/out_w disagree with
 * floor((in + pad_begin + pad_end - dilation*(kernel-1) - 1) / stride) + 1. */
fc_status fc_conv2d_check(const fc_conv2d_params *p);
/* FC_OK if `algo` can serve p, else FC_EUNSUPPORTED. */
fc_status fc_conv2d_supports(const fc_conv2d_params *p, fc_conv_algo algo);
/* The algorithm FC_CONV_AUTO resolves to for p (see fc_conv.c for the rule). */
fc_conv_algo fc_conv2d_choose(const fc_conv2d_params *p);
fc_status fc_conv2d_workspace_size(const fc_conv2d_params *p, fc_conv_algo algo, size_t *bytes);
/* x: [batch, in_channels, in_h, in_w]; w: [out_channels, in_channels/groups, kernel_h,
 * kernel_w]; bias: [out_channels] or NULL; y: [batch, out_channels, out_h, out_w]. */
fc_status fc_conv2d(const fc_conv2d_params *p, fc_conv_algo algo,
                    const float *x, const float *w, const float *bias, float *y,
                    void *workspace, size_t workspace_bytes);

/* Prepared convolution (what a compiled model keeps): the weights and bias packed once
 * for an algorithm and the ISA in use, then run on any number of inputs. The packed blob
 * starts with a header recording the algorithm, the ISA and the weight shape; a run
 * checks them against p (batch and spatial sizes may differ from the packing call's)
 * and fails with FC_EINVAL on a mismatch, e.g. after an ISA switch. `algo` may be
 * FC_CONV_AUTO: it is resolved for p when packing and recorded in the blob. */
fc_status fc_conv2d_packed_size(const fc_conv2d_params *p, fc_conv_algo algo, size_t *bytes);
fc_status fc_conv2d_pack(const fc_conv2d_params *p, fc_conv_algo algo, const float *w,
                         const float *bias, void *packed, size_t packed_bytes);
/* The algorithm a packed blob holds (FC_CONV_AUTO if it is not a valid blob). */
fc_conv_algo fc_conv2d_packed_algo(const void *packed, size_t packed_bytes);
fc_status fc_conv2d_run_workspace_size(const fc_conv2d_params *p, const void *packed,
                                       size_t packed_bytes, size_t *bytes);
fc_status fc_conv2d_run(const fc_conv2d_params *p, const float *x, const void *packed,
                        size_t packed_bytes, float *y, void *workspace, size_t workspace_bytes);
/* A prepared convolution followed by a 2x2 stride-2 max pool (no padding, floor mode: an
 * odd last row or column of the conv output is dropped), in one call: y: [batch,
 * out_channels, out_h / 2, out_w / 2] = max_pool2d(conv(x) + bias, then ReLU if p->relu),
 * bit for bit what fc_conv2d_run then fc_max_pool2d give. A Winograd blob pools each
 * output tile as it is written (its tiles hold whole windows), so the unpooled map is
 * never stored; the other algorithms write it into the workspace and pool it from there
 * (so their workspace is larger by its size). FC_ESHAPE if out_h or out_w is below 2. */
fc_status fc_conv2d_run_maxpool2_workspace_size(const fc_conv2d_params *p, const void *packed,
                                                size_t packed_bytes, size_t *bytes);
fc_status fc_conv2d_run_maxpool2(const fc_conv2d_params *p, const float *x, const void *packed,
                                 size_t packed_bytes, float *y, void *workspace,
                                 size_t workspace_bytes);

/* Prepared direct convolution into the channel-blocked layout NCHW8c (see the NCHW8c
 * section below): y [batch][ceil(out_channels/8)][out_h][out_w][8], the lanes past
 * out_channels zero. x is NCHW when x_blocked is 0 (a network's first layer) or NCHW8c
 * when it is 1. groups must be 1 (FC_EUNSUPPORTED otherwise); any kernel size, stride,
 * padding and dilation. The blob is packed for the ISA in use (FC_EINVAL on a mismatch
 * of ISA or weight shape). The workspace (0 bytes on most layers) holds a column-padded
 * copy of a blocked input on small maps. */
fc_status fc_conv2d_nchw8c_packed_size(const fc_conv2d_params *p, size_t *bytes);
fc_status fc_conv2d_nchw8c_pack(const fc_conv2d_params *p, const float *w, const float *bias,
                                void *packed, size_t packed_bytes);
fc_status fc_conv2d_nchw8c_run_workspace_size(const fc_conv2d_params *p, int x_blocked,
                                              size_t *bytes);
fc_status fc_conv2d_nchw8c_run(const fc_conv2d_params *p, int x_blocked, const float *x,
                               const void *packed, size_t packed_bytes, float *y,
                               void *workspace, size_t workspace_bytes);

/* The naive oracle (src_c/ref/): seven nested loops, bounds tested per tap, no SIMD,
 * one thread. Same layout and semantics as fc_conv2d. */
fc_status fc_ref_conv2d(const fc_conv2d_params *p, const float *x, const float *w,
                        const float *bias, float *y);

/* ---------------------------------------------------------------- pooling */

typedef struct {
    int64_t batch, channels, in_h, in_w;
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;
    int64_t pad_top, pad_left, pad_bottom, pad_right;   /* >= 0 */
    int64_t dilation_h, dilation_w;   /* max pooling only; must be 1 for average */
    int ceil_mode;
    int count_include_pad;            /* average pooling only */
    int64_t out_h, out_w;             /* must equal the output-size rule (checked) */
    int num_threads;
} fc_pool2d_params;

/* Output size per axis: floor (or ceil with ceil_mode) of
 * (in + pad_begin + pad_end - dilation*(kernel-1) - 1) / stride, plus 1; with ceil_mode a
 * last window that would start inside the end padding is dropped (PyTorch / ONNX Runtime).
 * A max-pool window holding a NaN gives NaN. Average pooling divides by the taps inside
 * [-pad_begin, in + pad_end) with count_include_pad, else by the taps inside the input. */
fc_status fc_pool2d_check(const fc_pool2d_params *p);
fc_status fc_max_pool2d(const fc_pool2d_params *p, const float *x, float *y);
fc_status fc_avg_pool2d(const fc_pool2d_params *p, const float *x, float *y);
/* x: [planes, size] -> y: [planes]: the mean / max over each plane of `size` floats. */
fc_status fc_global_avg_pool(int64_t planes, int64_t size, const float *x, float *y, int num_threads);
fc_status fc_global_max_pool(int64_t planes, int64_t size, const float *x, float *y, int num_threads);

fc_status fc_ref_max_pool2d(const fc_pool2d_params *p, const float *x, float *y);
fc_status fc_ref_avg_pool2d(const fc_pool2d_params *p, const float *x, float *y);

/* ---------------------------------------------------------------- elementwise */

/* y = max(0, x), NaN stays NaN; x may equal y. */
fc_status fc_relu(int64_t n, const float *x, float *y, int num_threads);
/* Softmax over the middle axis of x viewed as [outer, len, inner]; x may equal y. */
fc_status fc_softmax(int64_t outer, int64_t len, int64_t inner, const float *x, float *y,
                     int num_threads);

/* ---------------------------------------------------------------- locally connected
 * A convolution without weight sharing: every output position (oh, ow) has its own
 * filter bank. x: [batch, in_channels, in_h, in_w];
 * w: [out_h, out_w, out_channels, in_channels, kernel_h, kernel_w] (the bank of one
 * position is a contiguous [Co, Ci*kh*kw] matrix, rows laid out as a conv filter);
 * bias: [out_channels, out_h, out_w] or NULL; y: [batch, out_channels, out_h, out_w].
 *   y[n, co, oh, ow] = bias[co, oh, ow] + sum over (ci, i, j) of
 *       w[oh, ow, co, ci, i, j] * x[n, ci, oh*stride_h - pad_top + i, ow*stride_w - pad_left + j]
 * with zeros outside the input. Each output element is summed in a fixed order that does
 * not depend on num_threads or on the batch size (see fc_locally_connected.c). */
typedef struct {
    int64_t batch, in_channels, in_h, in_w;
    int64_t out_channels, kernel_h, kernel_w;
    int64_t stride_h, stride_w;
    int64_t pad_top, pad_left, pad_bottom, pad_right;   /* >= 0 */
    int64_t out_h, out_w;     /* must equal the output-size rule (dilation 1; checked) */
    int num_threads;
} fc_lc2d_params;

fc_status fc_locally_connected2d_check(const fc_lc2d_params *p);
/* Depends on batch, in_channels, kernel size and num_threads. */
fc_status fc_locally_connected2d_workspace_size(const fc_lc2d_params *p, size_t *bytes);
fc_status fc_locally_connected2d(const fc_lc2d_params *p, const float *x, const float *w,
                                 const float *bias, float *y, void *workspace,
                                 size_t workspace_bytes);

/* ---------------------------------------------------------------- machine limits */

/* GFLOP/s of a loop of independent FMAs run on num_threads threads for about `seconds`
 * (the AVX2/FMA loop when the active ISA is AVX2, else a plain C multiply-add loop):
 * the peak that the benchmark reports speeds against. */
double fc_measure_fma_peak(int num_threads, double seconds);

/* ---------------------------------------------------------------- memory bandwidth */

/* STREAM-style triad a[i] = b[i] + scalar * c[i] over three caller-provided arrays of n
 * floats (src_c/fc_stream.c): the arrays are initialised by the threads that stream
 * them, one untimed pass, then `repeats` timed passes on num_threads OpenMP threads.
 * Returns the best pass's bandwidth in GB/s (1e9 bytes/s, counting 12 bytes per element:
 * two reads and one write), or a negative fc_status (as a double) for bad arguments.
 * The arrays must be much larger than the last-level cache to measure memory. */
double fc_stream_triad(float *a, float *b, float *c, int64_t n, float scalar, int repeats,
                       int num_threads);

/* ------------------------------------------------ NCHW8c (channel-blocked) activations
 * A blocked tensor of C channels, H x W, batch N is float32 [N][ceil(C/8)][H][W][8]:
 * channel c of pixel (h, w) sits at block c/8, lane c%8. The lanes past C in the last
 * block ("tail lanes") are always ZERO: every kernel that writes a blocked tensor writes
 * them as zero (the pools store 0 there explicitly: a window of padding only would give
 * -inf (max) or NaN (average without count_include_pad) even on zero lanes). */

/* x: [batch, channels, hw] (NCHW, hw = H * W) -> y: [batch][ceil(channels/8)][hw][8],
 * tail lanes written as zero. */
fc_status fc_reorder_nchw_to_nchw8c(int64_t batch, int64_t channels, int64_t hw,
                                    const float *x, float *y, int num_threads);
/* The inverse: blocked x -> y [batch, channels, hw] (tail lanes are not read). */
fc_status fc_reorder_nchw8c_to_nchw(int64_t batch, int64_t channels, int64_t hw,
                                    const float *x, float *y, int num_threads);
/* Same params struct and semantics as fc_max_pool2d / fc_avg_pool2d (p->channels is C, the
 * real channel count), x and y blocked. Bit-identical to the NCHW kernels on every real lane. */
fc_status fc_max_pool2d_nchw8c(const fc_pool2d_params *p, const float *x, float *y);
fc_status fc_avg_pool2d_nchw8c(const fc_pool2d_params *p, const float *x, float *y);

#ifdef __cplusplus
}
#endif
#endif /* FASTCONV_H */
