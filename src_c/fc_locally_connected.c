/* Locally connected 2-D layer: a convolution without weight sharing.
 *
 *   y[n, co, oh, ow] = bias[co, oh, ow] + sum over (ci, i, j) of
 *       w[oh, ow, co, ci, i, j] * x[n, ci, oh*sh - pad_top + i, ow*sw - pad_left + j]
 *
 * (taps outside the input are zero). Every output position (oh, ow) owns a filter bank
 * W_p = w[oh, ow] of shape [Co, K], K = Ci*kh*kw, so the layer is one small GEMM per
 * position: Y_p[Co, N] = W_p[Co, K] * P_p[K, N], where P_p holds the N input patches.
 *
 * Per work item (one position and a block of output channels; OpenMP over items, so no
 * sum is ever split between threads):
 *   for each block of up to LC_NB images: gather their patches into a per-thread buffer
 *   [nb][ldp] (zeros for padding and up to ldp, K rounded up to LC_LANES), then take dot
 *   products in register blocks: images four at a time (LC_NS) against one channel (two
 *   with AVX2), so each weight load serves four images; the images left over (all of
 *   them at batch 1) against four channels at a time (LC_MC), streaming four weight rows.
 *
 * Every dot product is summed the same way whatever the blocking: LC_LANES partial sums,
 * tap k going to lane k % LC_LANES in increasing k, then a fixed pairwise combine, then the
 * bias. So an output element does not depend on the thread count, the channel blocking or
 * on which other images share its batch: a chunk of a batch gives the same bits as the
 * whole. The portable version keeps the lanes in two 4-float vectors (gcc/clang vector
 * extensions; plain C loops for other compilers), no sum reassociated; the AVX2 twin
 * (target attribute) does the same lanes with FMA, so the two ISAs agree within float
 * rounding, not bit for bit.
 *
 * At batch 1 this streams every weight once with one multiply-add each, so it runs at
 * memory bandwidth, not at the FMA peak: the weights are Ho*Wo times a conv's. At large
 * batches the patch gather (kernel-wide strided reads of x for every image and position)
 * takes about as long as the arithmetic (perf, 64 images 64->64 3x3 at 32x32). */
#include <string.h>
#include "fc_internal.h"

#define LC_LANES 8   /* partial sums per dot product (part of the result's definition) */
#define LC_NS 4      /* images per dot-product call (register blocking only) */
#define LC_MB 2      /* AVX2: output channels per call in the image blocks (8 ymm sums) */
#define LC_MC 4      /* output channels per call at the odd images (register blocking only) */
#define LC_NB 16     /* images gathered per patch buffer fill (cache blocking only) */
#define LC_DIM_LIMIT ((int64_t)INT32_MAX)

static int lc_dim_ok(int64_t v, int64_t lo) { return v >= lo && v <= LC_DIM_LIMIT; }

fc_status fc_locally_connected2d_check(const fc_lc2d_params *p) {
    if (!p) return FC_EINVAL;
    if (!lc_dim_ok(p->batch, 0) || !lc_dim_ok(p->in_channels, 1) || !lc_dim_ok(p->in_h, 1) ||
        !lc_dim_ok(p->in_w, 1) || !lc_dim_ok(p->out_channels, 1) ||
        !lc_dim_ok(p->kernel_h, 1) || !lc_dim_ok(p->kernel_w, 1) ||
        !lc_dim_ok(p->stride_h, 1) || !lc_dim_ok(p->stride_w, 1) ||
        !lc_dim_ok(p->pad_top, 0) || !lc_dim_ok(p->pad_left, 0) ||
        !lc_dim_ok(p->pad_bottom, 0) || !lc_dim_ok(p->pad_right, 0) || p->num_threads < 1)
        return FC_EINVAL;
    const int64_t oh = fc_out_size(p->in_h, p->pad_top, p->pad_bottom, p->kernel_h,
                                   p->stride_h, 1, 0);
    const int64_t ow = fc_out_size(p->in_w, p->pad_left, p->pad_right, p->kernel_w,
                                   p->stride_w, 1, 0);
    if (oh < 1 || ow < 1 || oh != p->out_h || ow != p->out_w) return FC_ESHAPE;
    /* byte counts of x, w, bias and y must fit in size_t (and a pointer offset) */
    size_t n;
    const int64_t xs[5] = {p->batch, p->in_channels, p->in_h, p->in_w, 4};
    const int64_t ws[7] = {p->out_h, p->out_w, p->out_channels, p->in_channels,
                           p->kernel_h, p->kernel_w, 4};
    const int64_t ys[5] = {p->batch, p->out_channels, p->out_h, p->out_w, 4};
    if (fc_count(&n, 5, xs) || n > PTRDIFF_MAX || fc_count(&n, 7, ws) || n > PTRDIFF_MAX ||
        fc_count(&n, 5, ys) || n > PTRDIFF_MAX)
        return FC_EOVERFLOW;
    return FC_OK;
}

/* Bytes of one thread's patch buffer: LC_NB (or fewer, for a smaller batch) patches of K
 * floats, rounded up to FC_ALIGN. */
static fc_status lc_slot_bytes(const fc_lc2d_params *p, size_t *bytes) {
    const int64_t nb = FC_MAX((int64_t)1, FC_MIN(p->batch, (int64_t)LC_NB));
    const int64_t v[3] = {p->in_channels, p->kernel_h, p->kernel_w};
    size_t k, b;
    if (fc_count(&k, 3, v) || fc_add_size(k, LC_LANES - 1, &k)) return FC_EOVERFLOW;
    k -= k % LC_LANES;   /* ldp: K rounded up to LC_LANES */
    if (fc_mul_size(k, (size_t)nb * sizeof(float), &b) || fc_align_size(b, bytes))
        return FC_EOVERFLOW;
    return FC_OK;
}

fc_status fc_locally_connected2d_workspace_size(const fc_lc2d_params *p, size_t *bytes) {
    if (!bytes) return FC_EINVAL;
    fc_status st = fc_locally_connected2d_check(p);
    if (st != FC_OK) return st;
    size_t slot, total;
    if ((st = lc_slot_bytes(p, &slot)) != FC_OK) return st;
    if (fc_mul_size(slot, (size_t)p->num_threads, &total) ||
        fc_add_size(total, FC_ALIGN, &total)) /* slack to align the caller's pointer */
        return FC_EOVERFLOW;
    *bytes = total;
    return FC_OK;
}

/* The fixed combine of the lanes (the same expression for every dot product). */
static inline float lc_combine(const float *a) {
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

/* LC_DOTS(name, MC, NS) (the plain C version, for compilers without vector extensions)
 * defines name(w, K, patch, ldp, out):
 *   out[m*NS + s] = dot(w[m*K : m*K + K], patch[s*ldp : s*ldp + K])
 * for m < MC (output channels) and s < NS (images). Sizes are compile-time constants, so
 * the loops unroll, every index into acc is a constant and the accumulators stay in SIMD
 * registers (which needs a single loop over acc: the weight tail, K % LC_LANES values, is
 * copied into a zero-padded local block that the last step reads instead of w). The
 * patch rows are zero-padded to ldp = K rounded up to LC_LANES, so that last step is a
 * full one whose padding adds 0 * 0. Each output gets the same operations in the same
 * order whatever MC and NS are. */
/* Kept out of line: inlined into the OpenMP body, gcc spills the accumulators. */
#if defined(__GNUC__)
#define FC_LC_NOINLINE __attribute__((noinline))
#else
#define FC_LC_NOINLINE
#endif
#define LC_DOTS(name, MC, NS)                                                              \
    static FC_LC_NOINLINE void name(const float *restrict w, int64_t K,                   \
                                    const float *restrict patch, int64_t ldp, float *out) { \
        float acc[(MC) * (NS)][LC_LANES];                                                  \
        for (int r = 0; r < (MC) * (NS); r++)                                              \
            for (int l = 0; l < LC_LANES; l++) acc[r][l] = 0.0f;                           \
        const int64_t kfull = K - K % LC_LANES;                                            \
        const int64_t kend = kfull < K ? kfull + LC_LANES : kfull;                         \
        float wt[MC][LC_LANES];                                                            \
        for (int m = 0; m < (MC); m++)                                                     \
            for (int l = 0; l < LC_LANES; l++)                                             \
                wt[m][l] = kfull + l < K ? w[m * K + kfull + l] : 0.0f;                    \
        for (int64_t k = 0; k < kend; k += LC_LANES)                                       \
            for (int m = 0; m < (MC); m++) {                                               \
                const float *wk = k < kfull ? w + m * K + k : wt[m];                       \
                for (int s = 0; s < (NS); s++) {                                           \
                    const float *ps = patch + s * ldp + k;                                 \
                    for (int l = 0; l < LC_LANES; l++) acc[m * (NS) + s][l] += wk[l] * ps[l]; \
                }                                                                          \
            }                                                                              \
        for (int r = 0; r < (MC) * (NS); r++) out[r] = lc_combine(acc[r]);                 \
    }

#if defined(__GNUC__)
/* With gcc or clang the portable version spells the lanes as two 4-float vectors
 * (vector extensions: SSE2 on x86-64, NEON on ARM, scalar code elsewhere), which keeps
 * the sums in registers where the plain loops above end up spilled or shuffled. Same
 * operations, same order: elementwise vector multiply and add round like scalar ones. */
typedef float lc_v4 __attribute__((vector_size(16)));

static inline lc_v4 lc_load4(const float *p) {
    lc_v4 v;
    memcpy(&v, p, sizeof v);   /* an unaligned load */
    return v;
}

#define LC_DOTS_V4(name, MC, NS)                                                           \
    static FC_LC_NOINLINE void name(const float *restrict w, int64_t K,                   \
                                    const float *restrict patch, int64_t ldp, float *out) { \
        lc_v4 lo[(MC) * (NS)], hi[(MC) * (NS)];                                            \
        for (int r = 0; r < (MC) * (NS); r++) lo[r] = hi[r] = (lc_v4){0, 0, 0, 0};         \
        const int64_t kfull = K - K % LC_LANES;                                            \
        for (int64_t k = 0; k < kfull; k += LC_LANES)                                      \
            for (int m = 0; m < (MC); m++) {                                               \
                const lc_v4 w0 = lc_load4(w + m * K + k), w1 = lc_load4(w + m * K + k + 4); \
                for (int s = 0; s < (NS); s++) {                                           \
                    const float *ps = patch + s * ldp + k;                                 \
                    lo[m * (NS) + s] += w0 * lc_load4(ps);                                 \
                    hi[m * (NS) + s] += w1 * lc_load4(ps + 4);                             \
                }                                                                          \
            }                                                                              \
        if (kfull < K) {                                                                   \
            for (int m = 0; m < (MC); m++) {                                               \
                float t[LC_LANES];                                                         \
                for (int l = 0; l < LC_LANES; l++)                                         \
                    t[l] = kfull + l < K ? w[m * K + kfull + l] : 0.0f;                    \
                const lc_v4 w0 = lc_load4(t), w1 = lc_load4(t + 4);                        \
                for (int s = 0; s < (NS); s++) {                                           \
                    const float *ps = patch + s * ldp + kfull;                             \
                    lo[m * (NS) + s] += w0 * lc_load4(ps);                                 \
                    hi[m * (NS) + s] += w1 * lc_load4(ps + 4);                             \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
        for (int r = 0; r < (MC) * (NS); r++) {                                            \
            float a[LC_LANES];                                                             \
            memcpy(a, &lo[r], sizeof lo[r]);                                               \
            memcpy(a + 4, &hi[r], sizeof hi[r]);                                           \
            out[r] = lc_combine(a);                                                        \
        }                                                                                  \
    }

LC_DOTS_V4(lc_dots_1x4, 1, LC_NS)
LC_DOTS_V4(lc_dots_4x1, LC_MC, 1)
LC_DOTS_V4(lc_dots_1x1, 1, 1)
#else
LC_DOTS(lc_dots_1x4, 1, LC_NS)
LC_DOTS(lc_dots_4x1, LC_MC, 1)
LC_DOTS(lc_dots_1x1, 1, 1)
#endif

/* The AVX2/FMA twin: one 8-float register per dot product holds the LC_LANES partial sums
 * (lane l sums the taps k = l mod 8, as above), each step a fused multiply-add, the tail a
 * masked load (nothing read past w); then the same combine. It differs from the portable
 * version only by the rounding FMA saves. Compiled for AVX2 by the target attribute and
 * reached only when the active ISA is AVX2 (checked by CPUID/XGETBV at import). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FC_LC_HAVE_AVX2 1
#include <immintrin.h>

#define LC_DOTS_AVX2(name, MC, NS)                                                         \
    static FC_LC_NOINLINE __attribute__((target("avx2,fma"))) void name(                   \
        const float *restrict w, int64_t K, const float *restrict patch, int64_t ldp,      \
        float *out) {                                                                      \
        __m256 acc[(MC) * (NS)];                                                           \
        for (int r = 0; r < (MC) * (NS); r++) acc[r] = _mm256_setzero_ps();                \
        const int64_t kfull = K - K % LC_LANES;                                            \
        for (int64_t k = 0; k < kfull; k += LC_LANES)                                      \
            for (int m = 0; m < (MC); m++) {                                               \
                const __m256 wv = _mm256_loadu_ps(w + m * K + k);                          \
                for (int s = 0; s < (NS); s++)                                             \
                    acc[m * (NS) + s] = _mm256_fmadd_ps(                                   \
                        wv, _mm256_loadu_ps(patch + s * ldp + k), acc[m * (NS) + s]);      \
            }                                                                              \
        if (kfull < K) {                                                                   \
            const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                \
            const __m256i mask =                                                           \
                _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(K - kfull)), lane);             \
            for (int m = 0; m < (MC); m++) {                                               \
                const __m256 wv = _mm256_maskload_ps(w + m * K + kfull, mask);             \
                for (int s = 0; s < (NS); s++)                                             \
                    acc[m * (NS) + s] = _mm256_fmadd_ps(                                   \
                        wv, _mm256_loadu_ps(patch + s * ldp + kfull), acc[m * (NS) + s]);  \
            }                                                                              \
        }                                                                                  \
        for (int r = 0; r < (MC) * (NS); r++) {                                            \
            float a[LC_LANES];                                                             \
            _mm256_storeu_ps(a, acc[r]);                                                   \
            out[r] = lc_combine(a);                                                        \
        }                                                                                  \
    }

LC_DOTS_AVX2(lc_dots_2x4__avx2, LC_MB, LC_NS)
LC_DOTS_AVX2(lc_dots_1x4__avx2, 1, LC_NS)
LC_DOTS_AVX2(lc_dots_4x1__avx2, LC_MC, 1)
LC_DOTS_AVX2(lc_dots_1x1__avx2, 1, 1)
#endif

typedef void (*lc_dots_fn)(const float *restrict, int64_t, const float *restrict, int64_t,
                           float *);
/* mb x LC_NS, 1 x LC_NS, LC_MC x 1 and 1 x 1 blocks. The portable build blocks only 1
 * channel over LC_NS images: with 8 lanes in two SSE registers per sum, more would spill. */
typedef struct { int mb; lc_dots_fn dmbx4, d1x4, d4x1, d1x1; } lc_impl;

static lc_impl lc_get_impl(void) {
    lc_impl f = {1, lc_dots_1x4, lc_dots_1x4, lc_dots_4x1, lc_dots_1x1};
#ifdef FC_LC_HAVE_AVX2
    if (fc_isa_has_avx2(fc_active_isa())) {
        f.mb = LC_MB;
        f.dmbx4 = lc_dots_2x4__avx2;
        f.d1x4 = lc_dots_1x4__avx2;
        f.d4x1 = lc_dots_4x1__avx2;
        f.d1x1 = lc_dots_1x1__avx2;
    }
#endif
    return f;
}

/* Patches of images n0 .. n0+nb-1 for output position (oh, ow) into buf [nb][ldp]
 * (K values, then zeros up to ldp). */
static void lc_gather(const fc_lc2d_params *p, const float *x, int64_t n0, int64_t nb,
                      int64_t oh, int64_t ow, int64_t ldp, float *buf) {
    const int64_t C = p->in_channels, H = p->in_h, W = p->in_w;
    const int64_t KH = p->kernel_h, KW = p->kernel_w, K = C * KH * KW;
    const int64_t ih0 = oh * p->stride_h - p->pad_top, iw0 = ow * p->stride_w - p->pad_left;
    /* the kernel columns j in [j_lo, j_hi) fall inside the row */
    const int64_t j_lo = FC_MAX((int64_t)0, -iw0), j_hi = FC_MIN(KW, W - iw0);
    for (int64_t s = 0; s < nb; s++) {
        const float *xn = x + (size_t)(n0 + s) * (size_t)(C * H * W);
        float *dst = buf + s * ldp;
        for (int64_t k = K; k < ldp; k++) dst[k] = 0.0f;
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < KH; i++, dst += KW) {
                const int64_t ih = ih0 + i;
                if (ih < 0 || ih >= H || j_hi <= j_lo) {
                    for (int64_t j = 0; j < KW; j++) dst[j] = 0.0f;
                    continue;
                }
                /* a plain loop, not memcpy: rows are kernel-wide (a few floats), where a
                 * library call per row costs more than the copy */
                const float *src = xn + (size_t)(c * H + ih) * (size_t)W + iw0;
                for (int64_t j = 0; j < j_lo; j++) dst[j] = 0.0f;
                for (int64_t j = j_lo; j < j_hi; j++) dst[j] = src[j];
                for (int64_t j = j_hi; j < KW; j++) dst[j] = 0.0f;
            }
    }
}

/* y0[s'*ys + co'*plane] = d[m*ns + t] + bias[co', pos] for the mc x ns block at channel
 * co and image s (co' = co + m, s' = s + t); y0 points at image n0, position pos. */
static inline void lc_store(float *y0, size_t ys, size_t plane, int64_t pos,
                            const float *bias, int64_t co, int64_t s, const float *d,
                            int mc, int ns) {
    for (int m = 0; m < mc; m++) {
        const size_t c = (size_t)(co + m) * plane;
        const float b = bias ? bias[c + (size_t)pos] : 0.0f;
        for (int t = 0; t < ns; t++) y0[(size_t)(s + t) * ys + c] = d[m * ns + t] + b;
    }
}

fc_status fc_locally_connected2d(const fc_lc2d_params *p, const float *x, const float *w,
                                 const float *bias, float *y, void *workspace,
                                 size_t workspace_bytes) {
    fc_status st = fc_locally_connected2d_check(p);
    if (st != FC_OK) return st;
    if (p->batch == 0) return FC_OK;
    if (!x || !w || !y || !workspace) return FC_EINVAL;
    size_t need, slot;
    if ((st = fc_locally_connected2d_workspace_size(p, &need)) != FC_OK) return st;
    if (workspace_bytes < need) return FC_ENOMEM;
    if ((st = lc_slot_bytes(p, &slot)) != FC_OK) return st;

    const int64_t N = p->batch, Co = p->out_channels, OH = p->out_h, OW = p->out_w;
    const int64_t K = p->in_channels * p->kernel_h * p->kernel_w;
    const int64_t ldp = FC_ROUND_UP(K, (int64_t)LC_LANES);
    const int64_t npos = OH * OW;
    const size_t plane = (size_t)npos;  /* stride of co in y and bias */
    /* Channel blocks only to give every thread work when there are few positions; the
     * blocking never changes a result. Blocks of a multiple of 4 channels. */
    const int nt = fc_clamp_threads(p->num_threads);
    int64_t cob = Co;
    if (npos < 4 * (int64_t)nt) {
        const int64_t want = (4 * (int64_t)nt + npos - 1) / npos;   /* blocks per position */
        cob = FC_ROUND_UP((Co + want - 1) / want, 4);
    }
    const int64_t ncob = (Co + cob - 1) / cob;
    const int64_t items = npos * ncob;
    unsigned char *ws = (unsigned char *)fc_align_ptr(workspace);
    const int team = (int)FC_MIN((int64_t)nt, items);
    const lc_impl f = lc_get_impl();   /* the ISA is read once per call */
    (void)team;
    (void)ws;

#ifdef _OPENMP
#pragma omp parallel num_threads(team) if (team > 1)
#endif
    {
        const fc_fpmode fpm = fc_flush_denormals(); /* per thread, see fc_internal.h */
#ifdef _OPENMP
        float *buf = (float *)(ws + (size_t)omp_get_thread_num() * slot);
#pragma omp for schedule(static)
#else
        float *buf = (float *)ws;
#endif
        for (int64_t it = 0; it < items; it++) {
            /* consecutive items of a thread walk positions in memory order of w */
            const int64_t pos = it / ncob, cb = it % ncob;
            const int64_t oh = pos / OW, ow = pos % OW;
            const int64_t co0 = cb * cob, co1 = FC_MIN(Co, co0 + cob);
            const float *wp = w + (size_t)pos * (size_t)(Co * K);
            for (int64_t n0 = 0; n0 < N; n0 += LC_NB) {
                const int64_t nb = FC_MIN((int64_t)LC_NB, N - n0);
                lc_gather(p, x, n0, nb, oh, ow, ldp, buf);
                const size_t ys = (size_t)Co * plane;  /* next image in y */
                float *y0 = y + (size_t)n0 * ys + (size_t)pos;
                float d[LC_MC * LC_NS];
                int64_t s = 0;
                /* blocks of LC_NS images: f.mb channels at once, each weight load serving
                 * LC_NS images and each patch load f.mb channels ... */
                for (; s + LC_NS <= nb; s += LC_NS) {
                    int64_t co = co0;
                    for (; co + f.mb <= co1; co += f.mb) {
                        f.dmbx4(wp + (size_t)co * (size_t)K, K, buf + s * ldp, ldp, d);
                        lc_store(y0, ys, plane, pos, bias, co, s, d, f.mb, LC_NS);
                    }
                    for (; co < co1; co++) {
                        f.d1x4(wp + (size_t)co * (size_t)K, K, buf + s * ldp, ldp, d);
                        lc_store(y0, ys, plane, pos, bias, co, s, d, 1, LC_NS);
                    }
                }
                /* ... and the other images (all of them at batch 1) LC_MC channels at
                 * once, streaming LC_MC weight rows side by side */
                for (; s < nb; s++) {
                    int64_t co = co0;
                    for (; co + LC_MC <= co1; co += LC_MC) {
                        f.d4x1(wp + (size_t)co * (size_t)K, K, buf + s * ldp, ldp, d);
                        lc_store(y0, ys, plane, pos, bias, co, s, d, LC_MC, 1);
                    }
                    for (; co < co1; co++) {
                        f.d1x1(wp + (size_t)co * (size_t)K, K, buf + s * ldp, ldp, d);
                        lc_store(y0, ys, plane, pos, bias, co, s, d, 1, 1);
                    }
                }
            }
        }
        fc_restore_fpmode(fpm);
    }
    return FC_OK;
}
