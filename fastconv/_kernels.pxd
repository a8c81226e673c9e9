# Declarations of the C API (src_c/fastconv.h) for the binding. Every function is nogil.
from libc.stdint cimport int64_t

cdef extern from "fastconv.h" nogil:
    ctypedef enum fc_status:
        FC_OK
        FC_EINVAL
        FC_ESHAPE
        FC_ENOMEM
        FC_EOVERFLOW
        FC_EUNSUPPORTED
    const char *fc_status_string(fc_status s)

    ctypedef enum fc_isa:
        FC_ISA_SCALAR
        FC_ISA_AVX2
        FC_ISA_AVX512
    int fc_cpu_has_avx2_fma()
    int fc_cpu_has_avx512()
    fc_status fc_set_isa(fc_isa isa)
    fc_isa fc_get_isa()
    const char *fc_isa_name(fc_isa isa)
    int fc_have_openmp()
    int fc_default_num_threads()
    int fc_release_thread_pool() nogil
    const char *fc_compiler()

    ctypedef struct fc_gemm_args:
        int64_t m, n, k
        const float *a
        int64_t rs_a, cs_a
        const float *b
        int64_t rs_b, cs_b
        float *c
        int64_t rs_c
        const float *bias_m
        const float *bias_n
        int relu
        int accumulate
        int num_threads
    fc_status fc_sgemm_workspace_size(const fc_gemm_args *args, size_t *bytes)
    fc_status fc_sgemm(const fc_gemm_args *args, void *workspace, size_t workspace_bytes)

    ctypedef enum fc_conv_algo:
        FC_CONV_AUTO
        FC_CONV_DIRECT
        FC_CONV_IM2COL
        FC_CONV_WINOGRAD
        FC_CONV_WINOGRAD2
    ctypedef struct fc_conv2d_params:
        int64_t batch, in_channels, in_h, in_w
        int64_t out_channels, kernel_h, kernel_w
        int64_t stride_h, stride_w
        int64_t pad_top, pad_left, pad_bottom, pad_right
        int64_t dilation_h, dilation_w
        int64_t groups
        int64_t out_h, out_w
        int relu
        int num_threads
    fc_status fc_conv2d_check(const fc_conv2d_params *p)
    fc_status fc_conv2d_supports(const fc_conv2d_params *p, fc_conv_algo algo)
    fc_conv_algo fc_conv2d_choose(const fc_conv2d_params *p)
    fc_status fc_conv2d_workspace_size(const fc_conv2d_params *p, fc_conv_algo algo, size_t *bytes)
    fc_status fc_conv2d(const fc_conv2d_params *p, fc_conv_algo algo, const float *x,
                        const float *w, const float *bias, float *y, void *workspace,
                        size_t workspace_bytes)
    fc_status fc_conv2d_packed_size(const fc_conv2d_params *p, fc_conv_algo algo, size_t *bytes)
    fc_status fc_conv2d_pack(const fc_conv2d_params *p, fc_conv_algo algo, const float *w,
                             const float *bias, void *packed, size_t packed_bytes)
    fc_conv_algo fc_conv2d_packed_algo(const void *packed, size_t packed_bytes)
    fc_status fc_conv2d_run_workspace_size(const fc_conv2d_params *p, const void *packed,
                                           size_t packed_bytes, size_t *bytes)
    fc_status fc_conv2d_run(const fc_conv2d_params *p, const float *x, const void *packed,
                            size_t packed_bytes, float *y, void *workspace,
                            size_t workspace_bytes)
    fc_status fc_conv2d_run_maxpool2_workspace_size(const fc_conv2d_params *p,
                                                    const void *packed, size_t packed_bytes,
                                                    size_t *bytes)
    fc_status fc_conv2d_run_maxpool2(const fc_conv2d_params *p, const float *x,
                                     const void *packed, size_t packed_bytes, float *y,
                                     void *workspace, size_t workspace_bytes)
    fc_status fc_conv2d_nchw8c_packed_size(const fc_conv2d_params *p, size_t *bytes)
    fc_status fc_conv2d_nchw8c_pack(const fc_conv2d_params *p, const float *w,
                                    const float *bias, void *packed, size_t packed_bytes)
    fc_status fc_conv2d_nchw8c_run_workspace_size(const fc_conv2d_params *p, int x_blocked,
                                                  size_t *bytes)
    fc_status fc_conv2d_nchw8c_run(const fc_conv2d_params *p, int x_blocked, const float *x,
                                   const void *packed, size_t packed_bytes, float *y,
                                   void *workspace, size_t workspace_bytes)
    fc_status fc_ref_conv2d(const fc_conv2d_params *p, const float *x, const float *w,
                            const float *bias, float *y)

    ctypedef struct fc_pool2d_params:
        int64_t batch, channels, in_h, in_w
        int64_t kernel_h, kernel_w
        int64_t stride_h, stride_w
        int64_t pad_top, pad_left, pad_bottom, pad_right
        int64_t dilation_h, dilation_w
        int ceil_mode
        int count_include_pad
        int64_t out_h, out_w
        int num_threads
    fc_status fc_pool2d_check(const fc_pool2d_params *p)
    fc_status fc_max_pool2d(const fc_pool2d_params *p, const float *x, float *y)
    fc_status fc_avg_pool2d(const fc_pool2d_params *p, const float *x, float *y)
    fc_status fc_global_avg_pool(int64_t planes, int64_t size, const float *x, float *y, int num_threads)
    fc_status fc_global_max_pool(int64_t planes, int64_t size, const float *x, float *y, int num_threads)
    fc_status fc_ref_max_pool2d(const fc_pool2d_params *p, const float *x, float *y)
    fc_status fc_ref_avg_pool2d(const fc_pool2d_params *p, const float *x, float *y)

    fc_status fc_relu(int64_t n, const float *x, float *y, int num_threads)
    fc_status fc_softmax(int64_t outer, int64_t len, int64_t inner, const float *x, float *y,
                         int num_threads)

    double fc_measure_fma_peak(int num_threads, double seconds)

cdef extern from "fc_internal.h" nogil:
    int64_t fc_out_size(int64_t n, int64_t pad_begin, int64_t pad_end, int64_t kernel,
                        int64_t stride, int64_t dilation, int ceil_mode)
