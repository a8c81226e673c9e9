/* Direct convolution channel kernel, AVX-512 (see fc_conv_direct_kernels.h).
 *
 * Compiled with the AVX-512 flags (this folder only); the driver calls it only when
 * fc_active_isa() is FC_ISA_AVX512, after the CPUID/XGETBV check.
 *
 * Same packed weights as the AVX2 16-channel kernel ([Ci/g][kh][kw][16] per block of 16
 * output channels), so the layout needs no change per ISA: one zmm holds the 16 channel
 * weights of a tap. An interior tile is 16 channels x up to 28 consecutive output columns
 * = 28 zmm accumulators; per tap it loads one weight vector and broadcasts one input
 * pixel per column (stride_w apart in the NCHW row): 29 loads for 28 FMAs, 30 of the 32
 * zmm registers live. 28 columns divide the VGG maps (224, 112, 56, 28; 14 is a half
 * tile). A remainder of fewer than 8 columns is merged with the last full tile and split
 * in two halves, so no tile runs with so few chains that the FMA latency shows.
 *
 * Border columns (those whose kw taps leave the row) go through a checked tile of up to
 * 8 columns from the driver's column table, each over its own valid kw range. Every
 * output value is one chain: bias, then FMAs over (ci, kh, kw) ascending, whatever tile
 * computes it, so tiles and thread counts never change its bits.
 *
 * The two-block variant (fc_f32_conv_direct_32x14__avx512) runs two consecutive blocks
 * at once: 32 channels x 14 columns, two weight vectors and one broadcast per column per
 * tap (16 loads for 28 FMAs instead of 29), the same chains per output value.
 *
 * The epilogue writes the 16 x n tile through a stack buffer: per output channel one
 * gather of its n columns (stride 16 in the buffer) and one masked store into the row. */
#include <immintrin.h>
#include "../../fc_conv_direct_kernels.h"

#define FC_INLINE static inline __attribute__((always_inline))
#define TW 28 /* columns of a full interior tile */
#define EW 8   /* columns of a border tile */

FC_INLINE __m512 relu16(__m512 v) {
    /* maxps returns its second operand when either is NaN: max(0, NaN) = NaN */
    return _mm512_max_ps(_mm512_setzero_ps(), v);
}

/* Columns j < nc of buf (buf[j][l]: channel l of column j) to channels l < nco of the
 * output row at y (channel stride ycs), column j at y[col(j)]: contiguous from y when
 * cols is NULL, else y[cols[j]]. */
FC_INLINE void store_tile(const fc_direct_row *r, const float (*buf)[16], int nc,
                          const int32_t *cols, int64_t ow0) {
    const __m512i idx0 = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(16));
    const __m512i idx1 = _mm512_add_epi32(idx0, _mm512_set1_epi32(16 * 16));
    const int n0 = nc < 16 ? nc : 16, n1 = nc - n0;
    const __mmask16 m0 = (__mmask16)((1u << n0) - 1u), m1 = (__mmask16)((1u << n1) - 1u);
    if (cols) {
        for (int64_t l = 0; l < r->nco; l++) {
            float *y = r->y + l * r->y_cstride;
            for (int j = 0; j < nc; j++) y[cols[j]] = buf[j][l];
        }
        return;
    }
    for (int64_t l = 0; l < r->nco; l++) {
        float *y = r->y + l * r->y_cstride + ow0;
        const float *b = &buf[0][0] + l;
        _mm512_mask_storeu_ps(y, m0, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m0, idx0, b, 4));
        if (n1 > 0)
            _mm512_mask_storeu_ps(y + 16, m1,
                                  _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m1, idx1, b, 4));
    }
}

/* Interior tile: 16 channels x nc (1..28) consecutive columns from ow0; nc and sw are
 * compile-time constants at every call site, so the unused accumulators vanish. */
#define COLFMA(j)                                                                        \
    if (j < nc) c##j = _mm512_fmadd_ps(wv, _mm512_set1_ps(xp[(j) * sw]), c##j);
#define ALLCOLS \
    COLFMA(0) \
    COLFMA(1) \
    COLFMA(2) \
    COLFMA(3) \
    COLFMA(4) \
    COLFMA(5) \
    COLFMA(6) \
    COLFMA(7) \
    COLFMA(8) \
    COLFMA(9) \
    COLFMA(10) \
    COLFMA(11) \
    COLFMA(12) \
    COLFMA(13) \
    COLFMA(14) \
    COLFMA(15) \
    COLFMA(16) \
    COLFMA(17) \
    COLFMA(18) \
    COLFMA(19) \
    COLFMA(20) \
    COLFMA(21) \
    COLFMA(22) \
    COLFMA(23) \
    COLFMA(24) \
    COLFMA(25) \
    COLFMA(26) \
    COLFMA(27)

FC_INLINE void tile(const fc_direct_layer *L, const fc_direct_row *r, int64_t ow0,
                    const int64_t sw, const int nc) {
    const int64_t KW = L->kernel_w, dw = L->dil_w, khn = r->kh_count, cig = L->cig;
    const int64_t xcs = L->in_h * L->in_w, xhs = L->dil_h * L->in_w;
    const int64_t whs = KW * 16, wcs = L->kernel_h * whs;
    const __m512 bias = _mm512_loadu_ps(r->bias);
    __m512 c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, c20, c21, c22, c23, c24, c25, c26, c27;
    c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = c8 = c9 = c10 = c11 = c12 = c13 = c14 = c15 = c16 = c17 = c18 = c19 = c20 = c21 = c22 = c23 = c24 = c25 = c26 = c27 = bias;
    const float *xc = r->x + ow0 * sw - L->pad_left;
    const float *wc = r->w;
    if (KW == 1 && khn == 1) { /* 1x1 (or one valid tap): one flat loop over channels */
        const float *xp = xc;
        const float *wp = wc;
        for (int64_t ci = 0; ci < cig; ci++, xp += xcs, wp += wcs) {
            const __m512 wv = _mm512_loadu_ps(wp);
            ALLCOLS
        }
    } else {
        for (int64_t ci = 0; ci < cig; ci++, xc += xcs, wc += wcs) {
            const float *xr = xc;
            const float *wr = wc;
            for (int64_t t = 0; t < khn; t++, xr += xhs, wr += whs) {
                const float *xp = xr;
                const float *wp = wr;
                for (int64_t k = 0; k < KW; k++, xp += dw, wp += 16) {
                    const __m512 wv = _mm512_loadu_ps(wp);
                    ALLCOLS
                }
            }
        }
    }
    float buf[TW][16] __attribute__((aligned(64)));
    if (0 < nc) _mm512_store_ps(buf[0], L->relu ? relu16(c0) : c0);
    if (1 < nc) _mm512_store_ps(buf[1], L->relu ? relu16(c1) : c1);
    if (2 < nc) _mm512_store_ps(buf[2], L->relu ? relu16(c2) : c2);
    if (3 < nc) _mm512_store_ps(buf[3], L->relu ? relu16(c3) : c3);
    if (4 < nc) _mm512_store_ps(buf[4], L->relu ? relu16(c4) : c4);
    if (5 < nc) _mm512_store_ps(buf[5], L->relu ? relu16(c5) : c5);
    if (6 < nc) _mm512_store_ps(buf[6], L->relu ? relu16(c6) : c6);
    if (7 < nc) _mm512_store_ps(buf[7], L->relu ? relu16(c7) : c7);
    if (8 < nc) _mm512_store_ps(buf[8], L->relu ? relu16(c8) : c8);
    if (9 < nc) _mm512_store_ps(buf[9], L->relu ? relu16(c9) : c9);
    if (10 < nc) _mm512_store_ps(buf[10], L->relu ? relu16(c10) : c10);
    if (11 < nc) _mm512_store_ps(buf[11], L->relu ? relu16(c11) : c11);
    if (12 < nc) _mm512_store_ps(buf[12], L->relu ? relu16(c12) : c12);
    if (13 < nc) _mm512_store_ps(buf[13], L->relu ? relu16(c13) : c13);
    if (14 < nc) _mm512_store_ps(buf[14], L->relu ? relu16(c14) : c14);
    if (15 < nc) _mm512_store_ps(buf[15], L->relu ? relu16(c15) : c15);
    if (16 < nc) _mm512_store_ps(buf[16], L->relu ? relu16(c16) : c16);
    if (17 < nc) _mm512_store_ps(buf[17], L->relu ? relu16(c17) : c17);
    if (18 < nc) _mm512_store_ps(buf[18], L->relu ? relu16(c18) : c18);
    if (19 < nc) _mm512_store_ps(buf[19], L->relu ? relu16(c19) : c19);
    if (20 < nc) _mm512_store_ps(buf[20], L->relu ? relu16(c20) : c20);
    if (21 < nc) _mm512_store_ps(buf[21], L->relu ? relu16(c21) : c21);
    if (22 < nc) _mm512_store_ps(buf[22], L->relu ? relu16(c22) : c22);
    if (23 < nc) _mm512_store_ps(buf[23], L->relu ? relu16(c23) : c23);
    if (24 < nc) _mm512_store_ps(buf[24], L->relu ? relu16(c24) : c24);
    if (25 < nc) _mm512_store_ps(buf[25], L->relu ? relu16(c25) : c25);
    if (26 < nc) _mm512_store_ps(buf[26], L->relu ? relu16(c26) : c26);
    if (27 < nc) _mm512_store_ps(buf[27], L->relu ? relu16(c27) : c27);
    store_tile(r, (const float (*)[16])buf, nc, NULL, ow0);
}
#undef COLFMA
#undef ALLCOLS

FC_INLINE void tile_any(const fc_direct_layer *L, const fc_direct_row *r, int64_t ow0,
                        const int64_t sw, int n) {
    switch (n) {
    case 28: tile(L, r, ow0, sw, 28); break;
    case 27: tile(L, r, ow0, sw, 27); break;
    case 26: tile(L, r, ow0, sw, 26); break;
    case 25: tile(L, r, ow0, sw, 25); break;
    case 24: tile(L, r, ow0, sw, 24); break;
    case 23: tile(L, r, ow0, sw, 23); break;
    case 22: tile(L, r, ow0, sw, 22); break;
    case 21: tile(L, r, ow0, sw, 21); break;
    case 20: tile(L, r, ow0, sw, 20); break;
    case 19: tile(L, r, ow0, sw, 19); break;
    case 18: tile(L, r, ow0, sw, 18); break;
    case 17: tile(L, r, ow0, sw, 17); break;
    case 16: tile(L, r, ow0, sw, 16); break;
    case 15: tile(L, r, ow0, sw, 15); break;
    case 14: tile(L, r, ow0, sw, 14); break;
    case 13: tile(L, r, ow0, sw, 13); break;
    case 12: tile(L, r, ow0, sw, 12); break;
    case 11: tile(L, r, ow0, sw, 11); break;
    case 10: tile(L, r, ow0, sw, 10); break;
    case 9: tile(L, r, ow0, sw, 9); break;
    case 8: tile(L, r, ow0, sw, 8); break;
    case 7: tile(L, r, ow0, sw, 7); break;
    case 6: tile(L, r, ow0, sw, 6); break;
    case 5: tile(L, r, ow0, sw, 5); break;
    case 4: tile(L, r, ow0, sw, 4); break;
    case 3: tile(L, r, ow0, sw, 3); break;
    case 2: tile(L, r, ow0, sw, 2); break;
    case 1: tile(L, r, ow0, sw, 1); break;
    default: break;
    }
}

/* Border tile: entries k0 .. k0+nc-1 (nc <= EW) of the column table, each column over
 * its own valid taps [lo, lo + cnt) in ascending kw for every (ci, kh). */
#define ECOL(j)                                                                          \
    if (j < nc) {                                                                        \
        const float *xp = xr + iw[j];                                                    \
        const float *wp = wr + lo[j] * 16;                                               \
        for (int64_t k = 0; k < cn[j]; k++, xp += dw, wp += 16)                          \
            e##j = _mm512_fmadd_ps(_mm512_loadu_ps(wp), _mm512_set1_ps(*xp), e##j);      \
    }

static void edge_tile(const fc_direct_layer *L, const fc_direct_row *r, int64_t k0, int nc) {
    const int64_t dw = L->dil_w, khn = r->kh_count, cig = L->cig;
    const int64_t xcs = L->in_h * L->in_w, xhs = L->dil_h * L->in_w;
    const int64_t whs = L->kernel_w * 16, wcs = L->kernel_h * whs;
    int64_t lo[EW], cn[EW], iw[EW];
    for (int j = 0; j < EW; j++) {
        lo[j] = cn[j] = iw[j] = 0;
        if (j < nc) {
            lo[j] = L->e_lo[k0 + j];
            cn[j] = L->e_cnt[k0 + j];
            iw[j] = L->e_iw[k0 + j];
        }
    }
    const __m512 bias = _mm512_loadu_ps(r->bias);
    __m512 e0 = bias, e1 = bias, e2 = bias, e3 = bias, e4 = bias, e5 = bias, e6 = bias, e7 = bias;
    const float *xc = r->x;
    const float *wc = r->w;
    for (int64_t ci = 0; ci < cig; ci++, xc += xcs, wc += wcs) {
        const float *xr = xc;
        const float *wr = wc;
        for (int64_t t = 0; t < khn; t++, xr += xhs, wr += whs) {
            ECOL(0) ECOL(1) ECOL(2) ECOL(3) ECOL(4) ECOL(5) ECOL(6) ECOL(7)
        }
    }
    float buf[EW][16] __attribute__((aligned(64)));
    const __m512 v[EW] = {e0, e1, e2, e3, e4, e5, e6, e7};
    for (int j = 0; j < nc; j++) _mm512_store_ps(buf[j], L->relu ? relu16(v[j]) : v[j]);
    store_tile(r, (const float (*)[16])buf, nc, L->e_ow + k0, 0);
}
#undef ECOL

/* Cut n interior columns into `full` tiles of tw plus a remainder of wa (+ wb) columns:
 * a remainder shorter than `short_rem` is merged into the last full tile and the result
 * split in two near-equal halves, so no tile runs nearly empty. */
static inline void split_interior(int64_t n, int tw, int short_rem, int64_t *full, int *wa,
                                  int *wb) {
    const int rem = (int)(n % tw);
    *full = n / tw;
    *wa = rem;
    *wb = 0;
    if (rem > 0 && rem < short_rem && *full > 0) {
        (*full)--;
        *wa = (rem + tw + 1) / 2;
        *wb = rem + tw - *wa;
    }
}

/* The interior in tiles of TW columns, a short remainder merged into the last full tile
 * and split in halves; then the border columns EW at a time. */
FC_INLINE void channel_row_sw(const fc_direct_layer *L, const fc_direct_row *r, const int64_t sw) {
    int64_t full, ow = L->int_lo;
    int wa, wb;
    split_interior(L->int_end - L->int_lo, TW, 8, &full, &wa, &wb);
    for (int64_t t = 0; t < full; t++, ow += TW) tile(L, r, ow, sw, TW);
    if (wa) tile_any(L, r, ow, sw, wa);
    if (wb) tile_any(L, r, ow + wa, sw, wb);
    for (int64_t k0 = 0; k0 < L->n_edge; k0 += EW)
        edge_tile(L, r, k0, (int)FC_MIN((int64_t)EW, L->n_edge - k0));
}

void fc_f32_conv_direct_16x28__avx512(const fc_direct_layer *L, const fc_direct_row *r) {
    if (L->stride_w == 1) channel_row_sw(L, r, 1);
    else if (L->stride_w == 2) channel_row_sw(L, r, 2);
    else channel_row_sw(L, r, L->stride_w);
}

/* ------------------------------------------------------------------ two blocks */

/* The row of the second block: same layer, its weights, bias and output channels. */
FC_INLINE fc_direct_row second_block(const fc_direct_row *r) {
    fc_direct_row s = *r;
    s.w = r->w + r->w_next;
    s.bias = r->bias + 16;
    s.y = r->y + 16 * r->y_cstride;
    s.nco = r->nco - 16;
    s.w_next = 0;
    return s;
}

/* Interior tile of both blocks: 32 channels x nc (1..14) columns; per tap two weight
 * vectors and one broadcast per column, 28 accumulators. */
#define COLFMA2(j)                                                                       \
    if (j < nc) {                                                                        \
        const __m512 xv = _mm512_set1_ps(xp[(j) * sw]);                                  \
        c##j = _mm512_fmadd_ps(wa, xv, c##j);                                            \
        d##j = _mm512_fmadd_ps(wb, xv, d##j);                                            \
    }
#define ALLCOLS2 \
    COLFMA2(0) \
    COLFMA2(1) \
    COLFMA2(2) \
    COLFMA2(3) \
    COLFMA2(4) \
    COLFMA2(5) \
    COLFMA2(6) \
    COLFMA2(7) \
    COLFMA2(8) \
    COLFMA2(9) \
    COLFMA2(10) \
    COLFMA2(11) \
    COLFMA2(12) \
    COLFMA2(13)

FC_INLINE void tile2(const fc_direct_layer *L, const fc_direct_row *r, int64_t ow0,
                     const int64_t sw, const int nc) {
    const int64_t KW = L->kernel_w, dw = L->dil_w, khn = r->kh_count, cig = L->cig;
    const int64_t xcs = L->in_h * L->in_w, xhs = L->dil_h * L->in_w;
    const int64_t whs = KW * 16, wcs = L->kernel_h * whs, wn = r->w_next;
    const __m512 bias0 = _mm512_loadu_ps(r->bias), bias1 = _mm512_loadu_ps(r->bias + 16);
    __m512 c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13;
    __m512 d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13;
    c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = c8 = c9 = c10 = c11 = c12 = c13 = bias0;
    d0 = d1 = d2 = d3 = d4 = d5 = d6 = d7 = d8 = d9 = d10 = d11 = d12 = d13 = bias1;
    const float *xc = r->x + ow0 * sw - L->pad_left;
    const float *wc = r->w;
    if (KW == 1 && khn == 1) {
        const float *xp = xc;
        const float *wp = wc;
        for (int64_t ci = 0; ci < cig; ci++, xp += xcs, wp += wcs) {
            const __m512 wa = _mm512_loadu_ps(wp), wb = _mm512_loadu_ps(wp + wn);
            ALLCOLS2
        }
    } else {
        for (int64_t ci = 0; ci < cig; ci++, xc += xcs, wc += wcs) {
            const float *xr = xc;
            const float *wr = wc;
            for (int64_t t = 0; t < khn; t++, xr += xhs, wr += whs) {
                const float *xp = xr;
                const float *wp = wr;
                for (int64_t k = 0; k < KW; k++, xp += dw, wp += 16) {
                    const __m512 wa = _mm512_loadu_ps(wp), wb = _mm512_loadu_ps(wp + wn);
                    ALLCOLS2
                }
            }
        }
    }
    float bufa[14][16] __attribute__((aligned(64)));
    float bufb[14][16] __attribute__((aligned(64)));
    if (0 < nc) { _mm512_store_ps(bufa[0], L->relu ? relu16(c0) : c0); _mm512_store_ps(bufb[0], L->relu ? relu16(d0) : d0); }
    if (1 < nc) { _mm512_store_ps(bufa[1], L->relu ? relu16(c1) : c1); _mm512_store_ps(bufb[1], L->relu ? relu16(d1) : d1); }
    if (2 < nc) { _mm512_store_ps(bufa[2], L->relu ? relu16(c2) : c2); _mm512_store_ps(bufb[2], L->relu ? relu16(d2) : d2); }
    if (3 < nc) { _mm512_store_ps(bufa[3], L->relu ? relu16(c3) : c3); _mm512_store_ps(bufb[3], L->relu ? relu16(d3) : d3); }
    if (4 < nc) { _mm512_store_ps(bufa[4], L->relu ? relu16(c4) : c4); _mm512_store_ps(bufb[4], L->relu ? relu16(d4) : d4); }
    if (5 < nc) { _mm512_store_ps(bufa[5], L->relu ? relu16(c5) : c5); _mm512_store_ps(bufb[5], L->relu ? relu16(d5) : d5); }
    if (6 < nc) { _mm512_store_ps(bufa[6], L->relu ? relu16(c6) : c6); _mm512_store_ps(bufb[6], L->relu ? relu16(d6) : d6); }
    if (7 < nc) { _mm512_store_ps(bufa[7], L->relu ? relu16(c7) : c7); _mm512_store_ps(bufb[7], L->relu ? relu16(d7) : d7); }
    if (8 < nc) { _mm512_store_ps(bufa[8], L->relu ? relu16(c8) : c8); _mm512_store_ps(bufb[8], L->relu ? relu16(d8) : d8); }
    if (9 < nc) { _mm512_store_ps(bufa[9], L->relu ? relu16(c9) : c9); _mm512_store_ps(bufb[9], L->relu ? relu16(d9) : d9); }
    if (10 < nc) { _mm512_store_ps(bufa[10], L->relu ? relu16(c10) : c10); _mm512_store_ps(bufb[10], L->relu ? relu16(d10) : d10); }
    if (11 < nc) { _mm512_store_ps(bufa[11], L->relu ? relu16(c11) : c11); _mm512_store_ps(bufb[11], L->relu ? relu16(d11) : d11); }
    if (12 < nc) { _mm512_store_ps(bufa[12], L->relu ? relu16(c12) : c12); _mm512_store_ps(bufb[12], L->relu ? relu16(d12) : d12); }
    if (13 < nc) { _mm512_store_ps(bufa[13], L->relu ? relu16(c13) : c13); _mm512_store_ps(bufb[13], L->relu ? relu16(d13) : d13); }
    const fc_direct_row s = second_block(r);
    fc_direct_row f = *r;
    f.nco = 16;
    store_tile(&f, (const float (*)[16])bufa, nc, NULL, ow0);
    store_tile(&s, (const float (*)[16])bufb, nc, NULL, ow0);
}
#undef COLFMA2
#undef ALLCOLS2

FC_INLINE void tile2_any(const fc_direct_layer *L, const fc_direct_row *r, int64_t ow0,
                         const int64_t sw, int n) {
    switch (n) {
    case 14: tile2(L, r, ow0, sw, 14); break;
    case 13: tile2(L, r, ow0, sw, 13); break;
    case 12: tile2(L, r, ow0, sw, 12); break;
    case 11: tile2(L, r, ow0, sw, 11); break;
    case 10: tile2(L, r, ow0, sw, 10); break;
    case 9: tile2(L, r, ow0, sw, 9); break;
    case 8: tile2(L, r, ow0, sw, 8); break;
    case 7: tile2(L, r, ow0, sw, 7); break;
    case 6: tile2(L, r, ow0, sw, 6); break;
    case 5: tile2(L, r, ow0, sw, 5); break;
    case 4: tile2(L, r, ow0, sw, 4); break;
    case 3: tile2(L, r, ow0, sw, 3); break;
    case 2: tile2(L, r, ow0, sw, 2); break;
    case 1: tile2(L, r, ow0, sw, 1); break;
    default: break;
    }
}

#define TW2 14
FC_INLINE void channel_row2_sw(const fc_direct_layer *L, const fc_direct_row *r, const int64_t sw) {
    int64_t full, ow = L->int_lo;
    int wa, wb;
    split_interior(L->int_end - L->int_lo, TW2, 6, &full, &wa, &wb);
    for (int64_t t = 0; t < full; t++, ow += TW2) tile2(L, r, ow, sw, TW2);
    if (wa) tile2_any(L, r, ow, sw, wa);
    if (wb) tile2_any(L, r, ow + wa, sw, wb);
    if (L->n_edge > 0) {
        /* border columns block by block (each channel's chain is the same either way) */
        fc_direct_row f = *r;
        const fc_direct_row s = second_block(r);
        f.nco = 16;
        for (int64_t k0 = 0; k0 < L->n_edge; k0 += EW) {
            const int ne = (int)FC_MIN((int64_t)EW, L->n_edge - k0);
            edge_tile(L, &f, k0, ne);
            edge_tile(L, &s, k0, ne);
        }
    }
}

void fc_f32_conv_direct_32x14__avx512(const fc_direct_layer *L, const fc_direct_row *r) {
    if (L->stride_w == 1) channel_row2_sw(L, r, 1);
    else if (L->stride_w == 2) channel_row2_sw(L, r, 2);
    else channel_row2_sw(L, r, L->stride_w);
}
