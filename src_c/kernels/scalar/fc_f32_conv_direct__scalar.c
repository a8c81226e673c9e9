/* Direct convolution row kernels, portable C (see fc_conv_direct_kernels.h).
 *
 * Same structure as the AVX2/FMA file: channel kernels keep an nb x MR tile of sums in a
 * local array (the compiler maps the nb lanes onto whatever SIMD the baseline target
 * has), interior tiles run without bounds tests, border columns go through a checked
 * tile; the width kernel handles layers with fewer than 8 output channels per group.
 * Every output value is summed over (ci, kh, kw) in ascending order, starting from the
 * bias. */
#include "../../fc_conv_direct_kernels.h"

#define MR FC_DIRECT_MR
#define NBMAX FC_DIRECT_NB

static inline float relu_keep_nan(float v) { return v < 0.0f ? 0.0f : v; }

/* Store an MR-column tile acc[j][l] (column j, channel l) to columns cols[j]. */
static void store_tile(const fc_direct_layer *L, const fc_direct_row *r, int nb, int ncols,
                       const int64_t *cols, float acc[MR][NBMAX]) {
    (void)nb;
    for (int64_t l = 0; l < r->nco; l++) {
        float *yl = r->y + l * r->y_cstride;
        for (int j = 0; j < ncols; j++) {
            const float v = acc[j][l];
            yl[cols[j]] = L->relu ? relu_keep_nan(v) : v;
        }
    }
}

/* Interior tile: ncols (<= MR) consecutive columns from ow0, every tap in bounds. */
static void interior_tile(const fc_direct_layer *L, const fc_direct_row *r, int nb, int64_t ow0,
                          int ncols) {
    const int64_t cig = L->cig, KW = L->kernel_w, sw = L->stride_w, dw = L->dil_w;
    const int64_t xcs = L->in_h * L->in_w, xhs = L->dil_h * L->in_w;
    const int64_t wcs = L->kernel_h * KW * nb;
    float acc[MR][NBMAX];
    int64_t cols[MR];
    for (int j = 0; j < MR; j++) {
        cols[j] = ow0 + j;
        for (int l = 0; l < NBMAX; l++) acc[j][l] = r->bias[l]; /* 16 packed values */
    }
    const float *xb = r->x + ow0 * sw - L->pad_left;
    for (int64_t ci = 0; ci < cig; ci++) {
        for (int64_t t = 0; t < r->kh_count; t++) {
            const float *xp = xb + ci * xcs + t * xhs;
            const float *wp = r->w + ci * wcs + t * KW * nb;
            for (int64_t k = 0; k < KW; k++, xp += dw, wp += nb) {
                for (int j = 0; j < ncols; j++) {
                    const float xv = xp[j * sw];
                    for (int l = 0; l < nb; l++) acc[j][l] += wp[l] * xv;
                }
            }
        }
    }
    store_tile(L, r, nb, ncols, cols, acc);
}

/* Checked tile: border columns k0 .. k0+ncols-1 of the layer's column table, each with its
 * own valid kw range; every tap (ci, kh, kw) is added, in the interior order, to the
 * columns for which it is valid. */
static void edge_tile(const fc_direct_layer *L, const fc_direct_row *r, int nb, int64_t k0,
                      int ncols) {
    const int64_t cig = L->cig, KW = L->kernel_w, dw = L->dil_w;
    const int64_t xcs = L->in_h * L->in_w, xhs = L->dil_h * L->in_w;
    const int64_t wcs = L->kernel_h * KW * nb;
    int64_t lo[MR], cnt[MR], of[MR], cols[MR];
    float acc[MR][NBMAX];
    for (int j = 0; j < ncols; j++) {
        cols[j] = L->e_ow[k0 + j];
        lo[j] = L->e_lo[k0 + j];
        cnt[j] = L->e_cnt[k0 + j];
        of[j] = (int64_t)L->e_iw[k0 + j] - lo[j] * dw;
        for (int l = 0; l < NBMAX; l++) acc[j][l] = r->bias[l];
    }
    for (int64_t ci = 0; ci < cig; ci++) {
        for (int64_t t = 0; t < r->kh_count; t++) {
            const float *xr = r->x + ci * xcs + t * xhs;
            const float *wr = r->w + ci * wcs + t * KW * nb;
            for (int64_t k = 0; k < KW; k++) {
                const float *wp = wr + k * nb;
                for (int j = 0; j < ncols; j++) {
                    if ((uint64_t)(k - lo[j]) >= (uint64_t)cnt[j]) continue;
                    const float xv = xr[of[j] + k * dw];
                    for (int l = 0; l < nb; l++) acc[j][l] += wp[l] * xv;
                }
            }
        }
    }
    store_tile(L, r, nb, ncols, cols, acc);
}

static void channel_row(const fc_direct_layer *L, const fc_direct_row *r, int nb) {
    int64_t n_full;
    int w_a, w_b;
    fc_direct_tile_plan(L->int_end - L->int_lo, &n_full, &w_a, &w_b);
    int64_t ow = L->int_lo;
    for (int64_t t = 0; t < n_full; t++, ow += MR) interior_tile(L, r, nb, ow, MR);
    if (w_a) interior_tile(L, r, nb, ow, w_a);
    if (w_b) interior_tile(L, r, nb, ow + w_a, w_b);
    for (int64_t k = 0; k < L->n_edge; k += MR)
        edge_tile(L, r, nb, k, (int)FC_MIN((int64_t)MR, L->n_edge - k));
}

void fc_f32_conv_direct_16x6__scalar(const fc_direct_layer *L, const fc_direct_row *r) {
    channel_row(L, r, 16);
}

void fc_f32_conv_direct_8x6__scalar(const fc_direct_layer *L, const fc_direct_row *r) {
    channel_row(L, r, 8);
}

/* Width kernel: one output channel, VW consecutive interior columns at a time. */
#define VW FC_DIRECT_VW

void fc_f32_conv_direct_width__scalar(const fc_direct_layer *L, const fc_direct_row *r) {
    const int64_t cig = L->cig, KH = L->kernel_h, KW = L->kernel_w;
    const int64_t sw = L->stride_w, dw = L->dil_w;
    const int64_t xcs = L->in_h * L->in_w, xhs = L->dil_h * L->in_w;
    const float b0 = r->bias ? *r->bias : 0.0f;
    for (int64_t ow = L->int_lo; ow < L->int_end; ow += VW) {
        float acc[VW];
        for (int j = 0; j < VW; j++) acc[j] = b0;
        const float *xb = r->x + ow * sw - L->pad_left;
        for (int64_t ci = 0; ci < cig; ci++) {
            for (int64_t t = 0; t < r->kh_count; t++) {
                const float *xp = xb + ci * xcs + t * xhs;
                const float *wp = r->w + (ci * KH + t) * KW;
                for (int64_t k = 0; k < KW; k++, xp += dw) {
                    const float wv = wp[k];
                    for (int j = 0; j < VW; j++) acc[j] += wv * xp[j * sw];
                }
            }
        }
        for (int j = 0; j < VW; j++) r->y[ow + j] = L->relu ? relu_keep_nan(acc[j]) : acc[j];
    }
    for (int64_t e = 0; e < L->n_edge; e++) {
        const int64_t lo = L->e_lo[e], cnt = L->e_cnt[e], iw = L->e_iw[e];
        float acc = b0;
        for (int64_t ci = 0; ci < cig; ci++) {
            for (int64_t t = 0; t < r->kh_count; t++) {
                const float *xp = r->x + ci * xcs + t * xhs + iw;
                const float *wp = r->w + (ci * KH + t) * KW + lo;
                for (int64_t k = 0; k < cnt; k++, xp += dw) acc += wp[k] * *xp;
            }
        }
        r->y[L->e_ow[e]] = L->relu ? relu_keep_nan(acc) : acc;
    }
}

void fc_f32_conv_direct_pack__scalar(const float *src, int64_t taps, int64_t nco, int64_t nb,
                                     float *dst) {
    /* in runs of 16 taps, so the destination run (16 x nb floats) stays in L1 */
    for (int64_t t0 = 0; t0 < taps; t0 += 16) {
        const int64_t t1 = FC_MIN(taps, t0 + 16);
        for (int64_t l = 0; l < nco; l++) {
            const float *s = src + l * taps;
            for (int64_t t = t0; t < t1; t++) dst[t * nb + l] = s[t];
        }
        for (int64_t l = nco; l < nb; l++)
            for (int64_t t = t0; t < t1; t++) dst[t * nb + l] = 0.0f;
    }
}
