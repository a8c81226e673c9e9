/* Reorders between NCHW and the channel-blocked layout NCHW8c (fastconv.h): a blocked
 * tensor is [N][ceil(C/8)][H*W][8], channel c at block c/8, lane c%8, the lanes past C
 * zero.
 *
 * These run once at a model's edges, so they are plain C: 8x8 tiles (8 channels by 8
 * pixels) staged through a small array, which gcc turns into vector loads and stores
 * with shuffles. Work items are (image, channel block, pixel chunk) of the OUTPUT, split
 * statically over the threads; a copy has no rounding, so any split gives the same bits. */
#include <string.h>
#include "fc_internal.h"

#define LANES 8
/* Pixels per work item: 32 KB of blocked output. */
#define REORDER_CHUNK 1024
/* Elements per thread below which a call stays on one thread. */
#define REORDER_MIN_PER_THREAD 65536

/* Shared checks: sizes, overflow of both layouts' element and byte counts, pointers. */
static fc_status reorder_check(int64_t batch, int64_t channels, int64_t hw, const float *x,
                               const float *y, int num_threads) {
    if (batch < 0 || channels < 1 || hw < 1 || num_threads < 1) return FC_EINVAL;
    const int64_t blocks = channels / LANES + (channels % LANES != 0);
    const int64_t plain[] = {batch, channels, hw};
    const int64_t blocked[] = {batch, blocks, hw, LANES};
    size_t n;
    if (fc_count(&n, 3, plain) || fc_mul_size(n, sizeof(float), &n) || n > PTRDIFF_MAX ||
        fc_count(&n, 4, blocked) || fc_mul_size(n, sizeof(float), &n) || n > PTRDIFF_MAX ||
        fc_count(&n, 3, blocked + 1) || fc_mul_size(n, sizeof(float), &n) || n > PTRDIFF_MAX)
        return FC_EOVERFLOW;
    if (batch > 0 && (!x || !y)) return FC_EINVAL;
    return FC_OK;
}

/* One block's pixels [p0, p1): y[p][l] = src(l)[p] for l < nl, 0 for the tail lanes.
 * xs: channel (block * 8) of this image; hw: plane stride. */
static void to_blocked(const float *xs, size_t hw, int nl, int64_t p0, int64_t p1, float *yb) {
    int64_t p = p0;
    if (nl == LANES) {
        for (; p + LANES <= p1; p += LANES) {
            float t[LANES][LANES];   /* t[pixel][lane] */
            for (int l = 0; l < LANES; l++)
                for (int q = 0; q < LANES; q++) t[q][l] = xs[(size_t)l * hw + (size_t)(p + q)];
            memcpy(yb + (size_t)p * LANES, t, sizeof t);
        }
    }
    for (; p < p1; p++)
        for (int l = 0; l < LANES; l++)
            yb[(size_t)p * LANES + l] = l < nl ? xs[(size_t)l * hw + (size_t)p] : 0.0f;
}

/* The inverse of to_blocked for the nl real lanes. */
static void from_blocked(const float *xb, size_t hw, int nl, int64_t p0, int64_t p1, float *ys) {
    int64_t p = p0;
    if (nl == LANES) {
        for (; p + LANES <= p1; p += LANES) {
            float t[LANES][LANES];   /* t[pixel][lane] */
            memcpy(t, xb + (size_t)p * LANES, sizeof t);
            for (int l = 0; l < LANES; l++)
                for (int q = 0; q < LANES; q++) ys[(size_t)l * hw + (size_t)(p + q)] = t[q][l];
        }
    }
    for (; p < p1; p++)
        for (int l = 0; l < nl; l++) ys[(size_t)l * hw + (size_t)p] = xb[(size_t)p * LANES + l];
}

static fc_status reorder(int64_t batch, int64_t channels, int64_t hw, const float *x, float *y,
                         int num_threads, int to_nchw8c) {
    fc_status st = reorder_check(batch, channels, hw, x, y, num_threads);
    if (st != FC_OK || batch == 0) return st;
    const int64_t blocks = channels / LANES + (channels % LANES != 0);
    const int64_t chunks = (hw + REORDER_CHUNK - 1) / REORDER_CHUNK;
    const int64_t items = batch * blocks * chunks;
    const int64_t elems = batch * blocks * hw * LANES;
    const int nt = (int)FC_MIN(FC_MIN((int64_t)num_threads,
                                      FC_MAX((int64_t)1, elems / REORDER_MIN_PER_THREAD)),
                               items);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        const fc_fpmode fpm = fc_flush_denormals();
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t it = 0; it < items; it++) {
            const int64_t chunk = it % chunks, plane = it / chunks;   /* n * blocks + b */
            const int64_t n = plane / blocks, b = plane % blocks;
            const int nl = (int)FC_MIN((int64_t)LANES, channels - b * LANES);
            const int64_t p0 = chunk * REORDER_CHUNK, p1 = FC_MIN(hw, p0 + REORDER_CHUNK);
            const size_t plain_off =
                ((size_t)n * (size_t)channels + (size_t)(b * LANES)) * (size_t)hw;
            const size_t blocked_off = (size_t)plane * (size_t)hw * LANES;
            if (to_nchw8c) to_blocked(x + plain_off, (size_t)hw, nl, p0, p1, y + blocked_off);
            else from_blocked(x + blocked_off, (size_t)hw, nl, p0, p1, y + plain_off);
        }
        fc_restore_fpmode(fpm);
    }
    return FC_OK;
}

fc_status fc_reorder_nchw_to_nchw8c(int64_t batch, int64_t channels, int64_t hw,
                                    const float *x, float *y, int num_threads) {
    return reorder(batch, channels, hw, x, y, num_threads, 1);
}

fc_status fc_reorder_nchw8c_to_nchw(int64_t batch, int64_t channels, int64_t hw,
                                    const float *x, float *y, int num_threads) {
    return reorder(batch, channels, hw, x, y, num_threads, 0);
}
