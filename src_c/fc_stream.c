/* fc_stream_triad: the machine's sustainable memory bandwidth, the roof that the
 * benchmarks report memory-bound layers (pooling) against.
 *
 * A STREAM-style triad a[i] = b[i] + s * c[i] over three caller-provided float arrays
 * of n elements each. The caller sizes them well beyond the last-level cache (the
 * binding defaults to three arrays that together hold four times the L3), otherwise
 * this measures the cache, not memory.
 *
 * Each of num_threads OpenMP threads owns one contiguous, cache-line aligned slice of
 * the arrays. The slices are first written (initialised) by the thread that later
 * streams them, so on a NUMA machine the pages live next to the core that reads them.
 * One untimed pass warms the TLB and the page tables, then `repeats` passes are timed
 * one by one and the best (shortest) one is reported, as STREAM does: the best pass is
 * the one least disturbed by other jobs. Traffic is counted as STREAM counts it, two
 * reads and one write of 4 bytes per element (12 n bytes per pass); the write-allocate
 * read of `a` that ordinary stores cause is not counted.
 *
 * Plain C: the loop is memory-bound, so the compiler's baseline SIMD is enough. */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 199309L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 199309L
#endif
#include "fc_internal.h"
#include <time.h>

#define FC_STREAM_MAX_REPEATS 1000
/* slices start on a 64-byte line so that no line is written by two threads */
#define FC_STREAM_ALIGN_FLOATS 16

static double stream_seconds(void) {
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

/* [begin, end) of thread t's slice out of n elements shared by `threads`. */
static void stream_slice(int64_t n, int threads, int t, int64_t *begin, int64_t *end) {
    int64_t per = (n + threads - 1) / threads;
    per = FC_ROUND_UP(per, (int64_t)FC_STREAM_ALIGN_FLOATS);
    int64_t b = per * t, e = b + per;
    if (b > n) b = n;
    if (e > n) e = n;
    *begin = b;
    *end = e;
}

static void stream_init(float *a, float *b, float *c, int64_t n, int threads) {
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
#ifdef _OPENMP
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        const int t = 0, nt = 1;
#endif
        int64_t lo, hi;
        stream_slice(n, nt, t, &lo, &hi);
        for (int64_t i = lo; i < hi; i++) {
            a[i] = 0.0f;
            b[i] = 1.0f;
            c[i] = 2.0f;
        }
    }
}

static void stream_pass(float *restrict a, const float *restrict b,
                        const float *restrict c, int64_t n, float s, int threads) {
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
#ifdef _OPENMP
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        const int t = 0, nt = 1;
#endif
        int64_t lo, hi;
        stream_slice(n, nt, t, &lo, &hi);
        for (int64_t i = lo; i < hi; i++) a[i] = b[i] + s * c[i];
    }
}

double fc_stream_triad(float *a, float *b, float *c, int64_t n, float scalar, int repeats,
                       int num_threads) {
    size_t bytes;
    if (!a || !b || !c || n < 1 || repeats < 1) return (double)FC_EINVAL;
    if (fc_mul_size((size_t)n, 3 * sizeof(float), &bytes)) return (double)FC_EOVERFLOW;
    if (!(scalar > -1e30f && scalar < 1e30f)) return (double)FC_EINVAL;   /* NaN, inf */
    if (repeats > FC_STREAM_MAX_REPEATS) repeats = FC_STREAM_MAX_REPEATS;
    num_threads = fc_clamp_threads(num_threads);

    stream_init(a, b, c, n, num_threads);
    stream_pass(a, b, c, n, scalar, num_threads);   /* warm-up, untimed */
    double best = 0.0;
    for (int r = 0; r < repeats; r++) {
        const double t0 = stream_seconds();
        stream_pass(a, b, c, n, scalar, num_threads);
        const double dt = stream_seconds() - t0;
        if (dt > 0.0 && (best == 0.0 || dt < best)) best = dt;
    }
    /* the result must be what the triad computes: a cheap check at both ends and the
     * middle (a wrong value means the loop did not run as written) */
    const float want = 1.0f + scalar * 2.0f;
    const float tol = 1e-6f * (1.0f + (want < 0.0f ? -want : want));   /* FMA contraction */
    const int64_t probe[3] = {0, n / 2, n - 1};
    for (int k = 0; k < 3; k++) {
        const float d = a[probe[k]] - want;
        if (!(d <= tol && -d <= tol)) return (double)FC_EINVAL;
    }
    if (!(best > 0.0)) return 0.0;
    return (double)bytes / best * 1e-9;
}
