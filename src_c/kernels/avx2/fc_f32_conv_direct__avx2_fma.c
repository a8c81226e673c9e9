/* Direct convolution row kernels, AVX2/FMA (see fc_conv_direct_kernels.h).
 *
 * Compiled with -mavx2 -mfma; the driver calls these only when fc_active_isa() is
 * FC_ISA_AVX2, after the CPUID/XGETBV check.
 *
 * Channel kernels: an interior tile is 16 output channels x 6 consecutive output columns
 * = 12 ymm accumulators (c0j: channels 0-7 of column j, c1j: channels 8-15). Per tap
 * (ci, kh, kw) the tile loads the two packed weight vectors and broadcasts 6 input
 * pixels from the NCHW row (stride_w apart): 2 + 6 loads for 12 FMAs, 15 of the 16 ymm
 * registers live. stride_w 1 and 2 are compiled as constants so the 6 pixel addresses
 * are immediate offsets. The epilogue applies ReLU, transposes the 8x6 blocks in
 * registers and writes each output channel's 6 columns with a 16- and an 8-byte store.
 * The 8-channel variant (last block of a group with <= 8 channels) holds 6 accumulators.
 *
 * Border and leftover columns: a checked tile of up to 6 columns of the layer's border
 * table, each with its own valid kw range; same summation order, so the same bits as an
 * interior tile. A row is walked in groups of up to 8 tiles, and for each group the
 * input channels in blocks whose packed weights fill about 8 KB, so the weights are read
 * from L1 by every tile of the group (accumulators wait on the stack between blocks).
 *
 * Width kernel (Co/groups < 8): one output channel, 8 output columns per ymm, up to 8
 * ymm accumulators (64 columns) per pass; stride 1 loads 8 consecutive inputs, stride 2
 * de-interleaves two loads, larger strides insert the pixels one by one. Border columns,
 * 8 at a time: stride 1 uses a masked load per tap, other strides a masked gather. No
 * load touches memory outside the taps the output needs except the stride-2 pair, whose
 * extra element is provably inside the input row (masked lanes are never accessed). */
#include <immintrin.h>
#include "../../fc_conv_direct_kernels.h"
#include "kernels/fc_transpose8_avx.h"

#define FC_INLINE static inline __attribute__((always_inline))
#define MR FC_DIRECT_MR

FC_INLINE __m256 relu8(__m256 v) {
    /* maxps returns its second operand when either is NaN: max(0, NaN) = NaN */
    return _mm256_max_ps(_mm256_setzero_ps(), v);
}

/* Write 8 channels x 6 columns (rj = channels 0..7 of column j) to 6 consecutive
 * columns of channels 0..nco-1 (nco <= 8), channel stride ycs. */
FC_INLINE void store_8x6(float *y, int64_t ycs, int64_t nco, __m256 r0, __m256 r1, __m256 r2,
                         __m256 r3, __m256 r4, __m256 r5) {
    /* t0 = c0(r0 r1) c1(r0 r1) | c4(r0 r1) c5(r0 r1), t1 likewise for c2 c3 | c6 c7 */
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    /* s_c = channel c columns 0..3 | channel c+4 columns 0..3 */
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m128 lo[8], hi[8]; /* columns 0..3 and 4..5 (low half) of channel c */
    lo[0] = _mm256_castps256_ps128(s0); lo[4] = _mm256_extractf128_ps(s0, 1);
    lo[1] = _mm256_castps256_ps128(s1); lo[5] = _mm256_extractf128_ps(s1, 1);
    lo[2] = _mm256_castps256_ps128(s2); lo[6] = _mm256_extractf128_ps(s2, 1);
    lo[3] = _mm256_castps256_ps128(s3); lo[7] = _mm256_extractf128_ps(s3, 1);
    const __m128 u4 = _mm256_castps256_ps128(t4), v4 = _mm256_extractf128_ps(t4, 1);
    const __m128 u5 = _mm256_castps256_ps128(t5), v5 = _mm256_extractf128_ps(t5, 1);
    hi[0] = u4; hi[1] = _mm_movehl_ps(u4, u4);
    hi[2] = u5; hi[3] = _mm_movehl_ps(u5, u5);
    hi[4] = v4; hi[5] = _mm_movehl_ps(v4, v4);
    hi[6] = v5; hi[7] = _mm_movehl_ps(v5, v5);
    if (nco >= 8) {
        for (int c = 0; c < 8; c++) {
            _mm_storeu_ps(y + c * ycs, lo[c]);
            _mm_storel_pi((__m64 *)(void *)(y + c * ycs + 4), hi[c]);
        }
    } else {
        for (int c = 0; c < nco; c++) {
            _mm_storeu_ps(y + c * ycs, lo[c]);
            _mm_storel_pi((__m64 *)(void *)(y + c * ycs + 4), hi[c]);
        }
    }
}

/* Input-channel blocking: a row is processed in groups of up to SEG tiles; for each group
 * the input channels are visited in blocks of CB so that CB channels' packed weights
 * (CB*kh*kw*nb floats, about FC_DIRECT_WBLOCK bytes) stay in L1 while every tile of the
 * group uses them. Between blocks a tile's accumulators wait in a stack buffer in their
 * register layout; they are stored and reloaded as floats, so the sums are bit-for-bit
 * those of one uninterrupted pass. */
#define SEG 8
#ifndef FC_DIRECT_WBLOCK
#define FC_DIRECT_WBLOCK 8192
#endif

typedef struct {
    int64_t ci0, ci1; /* input channels of this pass */
    int first, last;  /* start from the bias / finish with the epilogue */
} ci_pass;

/* Interior tile, nb (16 or 8) channels x mr (1..6) consecutive columns from ow0, input
 * channels [ci0, ci1). mr, sw and nb are compile-time constants where inlined with
 * constants; the accumulators of columns >= mr are dead and disappear. */
#define COLFMA(j)                                                                        \
    if (j < mr) {                                                                        \
        const __m256 b = _mm256_broadcast_ss(xp + (j) * sw);                             \
        c0##j = _mm256_fmadd_ps(w0, b, c0##j);                                           \
        if (nb == 16) c1##j = _mm256_fmadd_ps(w1, b, c1##j);                             \
    }
#define TAP16                                                                            \
    {                                                                                    \
        const __m256 w0 = _mm256_loadu_ps(wp);                                           \
        const __m256 w1 = nb == 16 ? _mm256_loadu_ps(wp + 8) : w0;                       \
        COLFMA(0) COLFMA(1) COLFMA(2) COLFMA(3) COLFMA(4) COLFMA(5)                      \
    }

/* Start values of a tile's 12 accumulators: the bias, or the state of the previous pass. */
#define TILE_LOAD_STATE                                                                   \
    __m256 c00, c01, c02, c03, c04, c05, c10, c11, c12, c13, c14, c15;                    \
    if (ps->first) {                                                                      \
        const __m256 bias0 = _mm256_loadu_ps(r->bias);                                    \
        const __m256 bias1 = nb == 16 ? _mm256_loadu_ps(r->bias + 8) : bias0;            \
        c00 = c01 = c02 = c03 = c04 = c05 = bias0;                                        \
        c10 = c11 = c12 = c13 = c14 = c15 = bias1;                                        \
    } else {                                                                              \
        c00 = st[0]; c01 = st[1]; c02 = st[2]; c03 = st[3]; c04 = st[4]; c05 = st[5];     \
        c10 = st[6]; c11 = st[7]; c12 = st[8]; c13 = st[9]; c14 = st[10]; c15 = st[11];   \
    }
#define TILE_SAVE_STATE                                                                   \
    st[0] = c00; st[1] = c01; st[2] = c02; st[3] = c03; st[4] = c04; st[5] = c05;         \
    st[6] = c10; st[7] = c11; st[8] = c12; st[9] = c13; st[10] = c14; st[11] = c15;

/* Store ncols (<= MR) columns v0[j] (channels 0..7) and v1[j] (8..15) of a tile to the
 * output columns col(j) = cols ? cols[j] : ow0 + j, channels 0..nco-1. */
FC_INLINE void store_cols(const fc_direct_layer *L, const fc_direct_row *r, int ncols,
                          const __m256 *v0, const __m256 *v1, const int32_t *cols, int64_t ow0) {
    float buf[MR][16] __attribute__((aligned(32)));
    for (int j = 0; j < ncols; j++) {
        __m256 a = v0[j], b = v1[j];
        if (L->relu) { a = relu8(a); b = relu8(b); }
        _mm256_store_ps(buf[j], a);
        _mm256_store_ps(buf[j] + 8, b);
    }
    for (int64_t l = 0; l < r->nco; l++) {
        float *y = r->y + l * r->y_cstride;
        for (int j = 0; j < ncols; j++) y[cols ? cols[j] : ow0 + j] = buf[j][l];
    }
}

FC_INLINE void tile_part(const fc_direct_layer *L, const fc_direct_row *r, int64_t ow0,
                         const ci_pass *ps, __m256 *st, const int nb, const int64_t sw,
                         const int mr) {
    const int64_t KW = L->kernel_w, dw = L->dil_w, khn = r->kh_count;
    const int64_t xcs = L->in_h * L->in_w, xhs = L->dil_h * L->in_w;
    const int64_t whs = KW * nb, wcs = L->kernel_h * whs;
    TILE_LOAD_STATE
    const float *xc = r->x + ow0 * sw - L->pad_left + ps->ci0 * xcs;
    const float *wc = r->w + ps->ci0 * wcs;
    if (KW == 1 && khn == 1) { /* 1x1 (or one valid tap): one flat loop over channels */
        const float *xp = xc;
        const float *wp = wc;
        for (int64_t ci = ps->ci0; ci < ps->ci1; ci++, xp += xcs, wp += wcs) TAP16
    } else {
        for (int64_t ci = ps->ci0; ci < ps->ci1; ci++, xc += xcs, wc += wcs) {
            const float *xr = xc;
            const float *wr = wc;
            for (int64_t t = 0; t < khn; t++, xr += xhs, wr += whs) {
                const float *xp = xr;
                const float *wp = wr;
                for (int64_t k = 0; k < KW; k++, xp += dw, wp += nb) TAP16
            }
        }
    }
    if (!ps->last) {
        TILE_SAVE_STATE
        return;
    }
    if (mr == MR) {
        if (L->relu) {
            c00 = relu8(c00); c01 = relu8(c01); c02 = relu8(c02);
            c03 = relu8(c03); c04 = relu8(c04); c05 = relu8(c05);
            c10 = relu8(c10); c11 = relu8(c11); c12 = relu8(c12);
            c13 = relu8(c13); c14 = relu8(c14); c15 = relu8(c15);
        }
        float *y = r->y + ow0;
        store_8x6(y, r->y_cstride, FC_MIN(r->nco, 8), c00, c01, c02, c03, c04, c05);
        if (nb == 16 && r->nco > 8)
            store_8x6(y + 8 * r->y_cstride, r->y_cstride, r->nco - 8, c10, c11, c12, c13, c14, c15);
        return;
    }
    const __m256 v0[MR] = {c00, c01, c02, c03, c04, c05};
    const __m256 v1[MR] = {c10, c11, c12, c13, c14, c15};
    store_cols(L, r, mr, v0, v1, NULL, ow0);
}
#undef COLFMA
#undef TAP16

/* Checked tile: border columns k0 .. k0+ncols-1 of the layer's column table (ncols <= MR),
 * each with its own valid kw range [lo, lo + cn). For every (ci, kh) each column runs over
 * its own valid taps in ascending kw, so it is summed in the interior order (the same
 * bits as an interior tile would give it). The columns' loops are unrolled so that the
 * accumulators stay in registers and the chains of different columns overlap. */
#define ECOL(j)                                                                          \
    if (j < ncols) {                                                                     \
        const float *xp = xr + iw[j];                                                    \
        const float *wp = wr + lo[j] * nb;                                               \
        for (int64_t k = 0; k < cn[j]; k++, xp += dw, wp += nb) {                        \
            const __m256 b = _mm256_broadcast_ss(xp);                                    \
            c0##j = _mm256_fmadd_ps(_mm256_loadu_ps(wp), b, c0##j);                      \
            if (nb == 16) c1##j = _mm256_fmadd_ps(_mm256_loadu_ps(wp + 8), b, c1##j);    \
        }                                                                                \
    }

FC_INLINE void edge_part(const fc_direct_layer *L, const fc_direct_row *r, int64_t k0,
                         int ncols, const ci_pass *ps, __m256 *st, const int nb) {
    const int64_t KW = L->kernel_w, dw = L->dil_w, khn = r->kh_count;
    const int64_t xcs = L->in_h * L->in_w, xhs = L->dil_h * L->in_w;
    const int64_t whs = KW * nb, wcs = L->kernel_h * whs;
    int64_t lo[MR], cn[MR], iw[MR];
    for (int j = 0; j < MR; j++) {
        lo[j] = cn[j] = iw[j] = 0;
        if (j < ncols) {
            lo[j] = L->e_lo[k0 + j];
            cn[j] = L->e_cnt[k0 + j];
            iw[j] = L->e_iw[k0 + j];
        }
    }
    TILE_LOAD_STATE
    const float *xc = r->x + ps->ci0 * xcs;
    const float *wc = r->w + ps->ci0 * wcs;
    for (int64_t ci = ps->ci0; ci < ps->ci1; ci++, xc += xcs, wc += wcs) {
        const float *xr = xc;
        const float *wr = wc;
        for (int64_t t = 0; t < khn; t++, xr += xhs, wr += whs) {
            ECOL(0) ECOL(1) ECOL(2) ECOL(3) ECOL(4) ECOL(5)
        }
    }
    if (!ps->last) {
        TILE_SAVE_STATE
        return;
    }
    const __m256 v0[MR] = {c00, c01, c02, c03, c04, c05};
    const __m256 v1[MR] = {c10, c11, c12, c13, c14, c15};
    store_cols(L, r, ncols, v0, v1, L->e_ow + k0, 0);
}
#undef ECOL
#undef TILE_LOAD_STATE
#undef TILE_SAVE_STATE

FC_INLINE void tile_any(const fc_direct_layer *L, const fc_direct_row *r, int64_t ow0,
                        const ci_pass *ps, __m256 *st, const int nb, const int64_t sw, int mr) {
    switch (mr) {
    case 6: tile_part(L, r, ow0, ps, st, nb, sw, 6); break;
    case 5: tile_part(L, r, ow0, ps, st, nb, sw, 5); break;
    case 4: tile_part(L, r, ow0, ps, st, nb, sw, 4); break;
    case 3: tile_part(L, r, ow0, ps, st, nb, sw, 3); break;
    case 2: tile_part(L, r, ow0, ps, st, nb, sw, 2); break;
    default: tile_part(L, r, ow0, ps, st, nb, sw, 1); break;
    }
}

/* Tiles of the row: the interior tiles of fc_direct_tile_plan, then the border tiles
 * (MR columns each). */
FC_INLINE void channel_row_sw(const fc_direct_layer *L, const fc_direct_row *r, const int nb,
                              const int64_t sw) {
    int64_t n_full;
    int w_a, w_b;
    fc_direct_tile_plan(L->int_end - L->int_lo, &n_full, &w_a, &w_b);
    const int64_t n_int = n_full + (w_a > 0) + (w_b > 0);
    const int64_t units = n_int + (L->n_edge + MR - 1) / MR;
    const int64_t cig = L->cig;
    const int64_t per_ci = L->kernel_h * L->kernel_w * nb * (int64_t)sizeof(float);
    const int64_t cb = FC_MAX((int64_t)1, (int64_t)FC_DIRECT_WBLOCK / per_ci);
    __m256 state[SEG][12];
    for (int64_t u0 = 0; u0 < units; u0 += SEG) {
        const int64_t u1 = FC_MIN(units, u0 + SEG);
        for (int64_t c0 = 0; c0 < cig; c0 += cb) {
            ci_pass ps;
            ps.ci0 = c0;
            ps.ci1 = FC_MIN(cig, c0 + cb);
            ps.first = c0 == 0;
            ps.last = ps.ci1 == cig;
            for (int64_t u = u0; u < u1; u++) {
                if (u < n_full) {
                    tile_part(L, r, L->int_lo + u * MR, &ps, state[u - u0], nb, sw, MR);
                } else if (u < n_int) {
                    const int64_t ow = L->int_lo + n_full * MR;
                    if (u == n_full && w_a) tile_any(L, r, ow, &ps, state[u - u0], nb, sw, w_a);
                    else tile_any(L, r, ow + w_a, &ps, state[u - u0], nb, sw, w_b);
                } else {
                    const int64_t k0 = (u - n_int) * MR;
                    edge_part(L, r, k0, (int)FC_MIN((int64_t)MR, L->n_edge - k0), &ps,
                              state[u - u0], nb);
                }
            }
        }
    }
}

FC_INLINE void channel_row(const fc_direct_layer *L, const fc_direct_row *r, const int nb) {
    if (L->stride_w == 1) channel_row_sw(L, r, nb, 1);
    else if (L->stride_w == 2) channel_row_sw(L, r, nb, 2);
    else channel_row_sw(L, r, nb, L->stride_w);
}

void fc_f32_conv_direct_16x6__avx2_fma(const fc_direct_layer *L, const fc_direct_row *r) {
    channel_row(L, r, 16);
}

void fc_f32_conv_direct_8x6__avx2_fma(const fc_direct_layer *L, const fc_direct_row *r) {
    channel_row(L, r, 8);
}

/* ------------------------------------------------------------------ width kernel */

/* 8 output columns' inputs for one tap: xp[0], xp[sw], ..., xp[7*sw].
 * sw == 2 reads xp[0..15]; fc_direct_interior_end keeps xp[15] inside the row. */
FC_INLINE __m256 load_cols(const float *xp, const int64_t sw) {
    if (sw == 1) return _mm256_loadu_ps(xp);
    if (sw == 2) {
        const __m256 a = _mm256_loadu_ps(xp), b = _mm256_loadu_ps(xp + 8);
        /* a0 a2 b0 b2 | a4 a6 b4 b6 -> a0 a2 a4 a6 b0 b2 b4 b6 */
        const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
        return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
    }
    return _mm256_setr_ps(xp[0], xp[sw], xp[2 * sw], xp[3 * sw], xp[4 * sw], xp[5 * sw],
                          xp[6 * sw], xp[7 * sw]);
}

/* nv vectors (8*nv consecutive interior columns from ow0), nv = 1..8: nv independent
 * accumulator chains, one weight broadcast per tap. */
FC_INLINE void width_block(const fc_direct_layer *L, const fc_direct_row *r, int64_t ow0,
                           const int nv, const int64_t sw, __m256 bias) {
    const int64_t cig = L->cig, KH = L->kernel_h, KW = L->kernel_w, dw = L->dil_w;
    const int64_t xcs = L->in_h * L->in_w, xhs = L->dil_h * L->in_w, khn = r->kh_count;
    __m256 a[8];
#pragma GCC unroll 8
    for (int v = 0; v < 8; v++) a[v] = bias;
    const float *xc = r->x + ow0 * sw - L->pad_left;
    for (int64_t ci = 0; ci < cig; ci++, xc += xcs) {
        const float *xr = xc;
        const float *wr = r->w + ci * KH * KW;
        for (int64_t t = 0; t < khn; t++, xr += xhs, wr += KW) {
            const float *xp = xr;
            for (int64_t k = 0; k < KW; k++, xp += dw) {
                const __m256 wv = _mm256_broadcast_ss(wr + k);
#pragma GCC unroll 8
                for (int v = 0; v < 8; v++)
                    if (v < nv) a[v] = _mm256_fmadd_ps(wv, load_cols(xp + 8 * v * sw, sw), a[v]);
            }
        }
    }
    float *y = r->y + ow0;
#pragma GCC unroll 8
    for (int v = 0; v < 8; v++)
        if (v < nv) _mm256_storeu_ps(y + 8 * v, L->relu ? relu8(a[v]) : a[v]);
}

FC_INLINE void width_interior(const fc_direct_layer *L, const fc_direct_row *r,
                              const int64_t sw, __m256 bias) {
    int64_t ow = L->int_lo;
    const int64_t end = L->int_end;
    for (; ow + 64 <= end; ow += 64) width_block(L, r, ow, 8, sw, bias);
    switch ((end - ow) / 8) {
    case 7: width_block(L, r, ow, 7, sw, bias); break;
    case 6: width_block(L, r, ow, 6, sw, bias); break;
    case 5: width_block(L, r, ow, 5, sw, bias); break;
    case 4: width_block(L, r, ow, 4, sw, bias); break;
    case 3: width_block(L, r, ow, 3, sw, bias); break;
    case 2: width_block(L, r, ow, 2, sw, bias); break;
    case 1: width_block(L, r, ow, 1, sw, bias); break;
    default: break;
    }
}

/* Border columns k0 .. k0+n-1 (n <= 8) of the column table. Lane j is valid for tap kw
 * when 0 <= kw - lo_j < cnt_j; invalid lanes are neither read nor added to.
 * consecutive = 1 (stride 1, the entries are consecutive columns): one masked load per
 * tap. Otherwise one masked gather per tap at input column iw_j + (kw - lo_j)*dw. */
FC_INLINE void width_edge(const fc_direct_layer *L, const fc_direct_row *r, int64_t k0,
                          int64_t n, __m256 bias, const int consecutive) {
    const int64_t cig = L->cig, KH = L->kernel_h, KW = L->kernel_w, dwl = L->dil_w;
    const int64_t xcs = L->in_h * L->in_w, xhs = L->dil_h * L->in_w, khn = r->kh_count;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), lane);
    const __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)(L->e_lo + k0));
    const __m256i cn = _mm256_and_si256(
        live, _mm256_loadu_si256((const __m256i *)(const void *)(L->e_cnt + k0)));
    const __m256i iw = _mm256_loadu_si256((const __m256i *)(const void *)(L->e_iw + k0));
    const __m256i dw = _mm256_set1_epi32((int)dwl), minus1 = _mm256_set1_epi32(-1);
    const __m256 zero = _mm256_setzero_ps();
    /* consecutive: lane j of tap kw reads row[ow0 + j - pad_left + kw*dw] */
    const int64_t first = (int64_t)L->e_ow[k0] - L->pad_left;
    __m256 acc = bias;
    for (int64_t ci = 0; ci < cig; ci++) {
        for (int64_t t = 0; t < khn; t++) {
            const float *xr = r->x + ci * xcs + t * xhs;
            const float *wr = r->w + (ci * KH + t) * KW;
            for (int64_t kw = 0; kw < KW; kw++) {
                const __m256i d = _mm256_sub_epi32(_mm256_set1_epi32((int)kw), lo);
                const __m256i ok = _mm256_and_si256(_mm256_cmpgt_epi32(cn, d), _mm256_cmpgt_epi32(d, minus1));
                if (_mm256_testz_si256(ok, ok)) continue;
                const __m256 okf = _mm256_castsi256_ps(ok);
                __m256 v;
                if (consecutive) {
                    /* masked-off lanes are not accessed (and cannot fault), even where
                     * their address lies outside the row */
                    v = _mm256_maskload_ps(xr + (first + kw * dwl), ok);
                } else {
                    const __m256i idx = _mm256_and_si256(ok, _mm256_add_epi32(iw, _mm256_mullo_epi32(d, dw)));
                    v = _mm256_mask_i32gather_ps(zero, xr, idx, okf, 4);
                }
                const __m256 s = _mm256_fmadd_ps(_mm256_broadcast_ss(wr + kw), v, acc);
                acc = _mm256_blendv_ps(acc, s, okf);
            }
        }
    }
    if (L->relu) acc = relu8(acc);
    float buf[8] __attribute__((aligned(32)));
    _mm256_store_ps(buf, acc);
    for (int64_t j = 0; j < n; j++) r->y[L->e_ow[k0 + j]] = buf[j];
}

void fc_f32_conv_direct_width__avx2_fma(const fc_direct_layer *L, const fc_direct_row *r) {
    const int64_t sw = L->stride_w;
    const __m256 bias = _mm256_set1_ps(r->bias ? *r->bias : 0.0f);
    if (sw == 1) {
        width_interior(L, r, 1, bias);
        /* two runs of consecutive columns: [0, int_lo) and [int_end, out_w) */
        for (int64_t k = 0; k < L->int_lo; k += 8)
            width_edge(L, r, k, FC_MIN((int64_t)8, L->int_lo - k), bias, 1);
        for (int64_t k = L->int_lo; k < L->n_edge; k += 8)
            width_edge(L, r, k, FC_MIN((int64_t)8, L->n_edge - k), bias, 1);
        return;
    }
    if (sw == 2) width_interior(L, r, 2, bias);
    else width_interior(L, r, sw, bias);
    for (int64_t k = 0; k < L->n_edge; k += 8)
        width_edge(L, r, k, FC_MIN((int64_t)8, L->n_edge - k), bias, 0);
}

/* ------------------------------------------------------------------ weight packing */


void fc_f32_conv_direct_pack__avx2_fma(const float *src, int64_t taps, int64_t nco, int64_t nb,
                                       float *dst) {
    int64_t t0 = 0;
    /* 8 taps x 8 channels at a time: 8 row loads, a transpose, 8 stores */
    for (; t0 + 8 <= taps; t0 += 8) {
        for (int64_t c0 = 0; c0 < nb; c0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = c0 + i < nco ? _mm256_loadu_ps(src + (c0 + i) * taps + t0) : _mm256_setzero_ps();
            fc_transpose8(r);
            for (int k = 0; k < 8; k++) _mm256_storeu_ps(dst + (t0 + k) * nb + c0, r[k]);
        }
    }
    for (; t0 < taps; t0++)
        for (int64_t l = 0; l < nb; l++) dst[t0 * nb + l] = l < nco ? src[l * taps + t0] : 0.0f;
}
