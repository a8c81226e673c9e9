/* fc_measure_fma_peak: the machine's measured multiply-add throughput, the peak that the
 * benchmarks report speeds against.
 *
 * Each of num_threads OpenMP threads runs a register-only loop of independent
 * multiply-add chains for about `seconds`: the AVX-512 loop
 * (src_c/kernels/avx512/fc_fma_peak__avx512.c) when the active ISA is AVX512, the AVX2/FMA
 * loop (src_c/kernels/avx2/fc_fma_peak__avx2.c) when it is AVX2, else the plain C loop
 * below. The threads start together after a barrier; the result is the total FLOPs
 * of all threads divided by the wall time from the common start to the last thread's
 * end, in GFLOP/s. Work is done in chunks of fixed size between clock reads, so the
 * overshoot past `seconds` is one chunk (well under a millisecond). */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 199309L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 199309L
#endif
#include "fc_internal.h"
#include <time.h>

/* src_c/kernels/avx2/fc_fma_peak__avx2.c */
double fc_fma_peak_chunk__avx2(int64_t iters, volatile float *sink);
/* src_c/kernels/avx512/fc_fma_peak__avx512.c */
double fc_fma_peak_chunk__avx512(int64_t iters, volatile float *sink);

#define FC_PEAK_SCALAR_LANES 32

/* Plain C multiply-add loop: 32 independent chains (the compiler may map them onto
 * whatever SIMD the baseline target has, e.g. SSE2 on x86-64 -- that is what portable C
 * code gets). Same convergent recurrence as the AVX2 loop; 2 FLOPs per multiply-add. */
static double fma_peak_chunk_scalar(int64_t iters, volatile float *sink) {
    float acc[FC_PEAK_SCALAR_LANES];
    const float seed = *sink;
    const float m = 0.9999999f, c = 1.0e-7f;
    for (int j = 0; j < FC_PEAK_SCALAR_LANES; j++) acc[j] = seed + 0.01f * (float)(j + 1);
    for (int64_t i = 0; i < iters; i++) {
        for (int j = 0; j < FC_PEAK_SCALAR_LANES; j++) acc[j] = acc[j] * m + c;
    }
    float s = 0.0f;
    for (int j = 0; j < FC_PEAK_SCALAR_LANES; j++) s += acc[j];
    *sink = s * (1.0f / 1024.0f);
    return (double)iters * FC_PEAK_SCALAR_LANES * 2.0;
}

static double wall_seconds(void) {
#ifdef _OPENMP
    return omp_get_wtime();
#elif defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#else
    return (double)clock() / (double)CLOCKS_PER_SEC;
#endif
}

typedef double (*peak_chunk_fn)(int64_t iters, volatile float *sink);

double fc_measure_fma_peak(int num_threads, double seconds) {
    const fc_isa isa = fc_active_isa();
    const peak_chunk_fn chunk = isa == FC_ISA_AVX512 ? fc_fma_peak_chunk__avx512
                                : isa == FC_ISA_AVX2 ? fc_fma_peak_chunk__avx2
                                                     : fma_peak_chunk_scalar;
    /* AVX2: 2^15 iterations x 12 FMAs ~ 0.2 M cycles per chunk; AVX-512 (16 FMAs) and
     * scalar likewise. */
    const int64_t iters = isa == FC_ISA_SCALAR ? ((int64_t)1 << 13) : ((int64_t)1 << 15);
    if (!(seconds > 0.0)) seconds = 0.0; /* also catches NaN: one chunk per thread */
    if (seconds > 60.0) seconds = 60.0;
    num_threads = fc_clamp_threads(num_threads);

    double total_flops = 0.0, t_start = 0.0, t_end = 0.0;
#ifdef _OPENMP
#pragma omp parallel num_threads(num_threads) reduction(+ : total_flops)
#endif
    {
        volatile float sink = 0.5f;
        /* warm-up: wake the core and its vector unit before the clock starts */
        double tw = wall_seconds();
        do { chunk(iters, &sink); } while (wall_seconds() - tw < 0.02 && seconds > 0.0);
#ifdef _OPENMP
#pragma omp barrier
#pragma omp single
#endif
        t_start = wall_seconds(); /* implicit barrier after single: everyone starts here */
        const double deadline = t_start + seconds;
        double flops = 0.0, now;
        do {
            flops += chunk(iters, &sink);
            now = wall_seconds();
        } while (now < deadline);
        total_flops += flops;
#ifdef _OPENMP
#pragma omp critical(fc_peak_end)
#endif
        {
            if (now > t_end) t_end = now;
        }
    }
    const double elapsed = t_end - t_start;
    if (!(elapsed > 0.0)) return 0.0;
    return total_flops / elapsed * 1e-9;
}
