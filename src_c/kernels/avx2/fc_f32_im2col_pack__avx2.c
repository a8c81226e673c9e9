/* im2col straight into packed 16-wide B panels, AVX2 (compiled with -mavx2 -mfma; only
 * called when the GEMM runs its AVX2 kernel, so after the CPUID/XGETBV check). */
#include "../../fc_im2col_panel.h"
#include <immintrin.h>

/* The AVX2 packer for NR = 16: the same values as pack_panel_c. Only reached when the
 * GEMM runs its AVX2 kernel (so after the CPUID/XGETBV check). Needs every flat index
 * used below to fit in int32 (checked by the caller). Per row k, by cost:
 *   1. one run of 16 pixels, stride 1, all taps inside: two loads;
 *   2. up to 3 runs (a panel crossing output rows), stride 1 or 2, every run inside the
 *      image: masked loads of a window of 16*stride floats per run (a masked lane is not
 *      read), merged, then for stride 2 the even lanes picked out;
 *   3. anything else (taps in the padding, other strides): a masked gather. */
#define FC_WIN_SEGS 3
#ifndef FC_IM2COL_PF_PANELS
#define FC_IM2COL_PF_PANELS 4
#endif
#ifndef FC_IM2COL_PF_HINT
#define FC_IM2COL_PF_HINT _MM_HINT_T1
#endif
/* Case 2 of pack_panel_avx2 for one row: each run s reads its window (positions
 * [SW*col, SW*(col+n-1)] of 16*SW floats starting SW*col floats before its first tap)
 * with masked loads; lanes whose tap lies left or right of the image are masked off too,
 * and a run whose input row lies in the padding reads nothing. SW: 1 or 2. */
static inline __attribute__((always_inline)) void
window_row(const int64_t SW, const im2col_seg *seg, int ns, __m256i wm[][4],
           const float *plane, int64_t H, int64_t W, int64_t sh, int64_t off_h,
           int64_t off_w, float *d) {
    __m256 acc[4];
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int v = 0; v < 2 * SW; v++) acc[v] = _mm256_setzero_ps();
    for (int s = 0; s < ns; s++) {
        const int64_t ih = seg[s].oh * sh + off_h, iw0 = seg[s].ow * SW + off_w;
        if ((uint64_t)ih >= (uint64_t)H) continue;
        /* window start: may lie before the row (or the plane); those lanes are masked */
        const float *base = (const float *)((uintptr_t)(plane + ih * W) +
                                            (uintptr_t)(iw0 - SW * seg[s].col) * sizeof(float));
        if (iw0 >= 0 && iw0 + SW * (seg[s].n - 1) < W) {
            for (int v = 0; v < 2 * SW; v++)
                acc[v] = _mm256_or_ps(acc[v], _mm256_maskload_ps(base + 8 * v, wm[s][v]));
        } else {
            /* position pos is tap iw0 + pos - SW*col: inside iff lo <= pos < lo + W */
            const int32_t lo = (int32_t)(SW * seg[s].col - iw0);
            const __m256i vlo = _mm256_set1_epi32(lo - 1), vhi = _mm256_set1_epi32(lo + (int32_t)W);
            for (int v = 0; v < 2 * SW; v++) {
                const __m256i pos = _mm256_add_epi32(lane, _mm256_set1_epi32(8 * v));
                const __m256i m = _mm256_and_si256(
                    wm[s][v], _mm256_and_si256(_mm256_cmpgt_epi32(pos, vlo),
                                               _mm256_cmpgt_epi32(vhi, pos)));
                acc[v] = _mm256_or_ps(acc[v], _mm256_maskload_ps(base + 8 * v, m));
            }
        }
    }
    if (SW == 1) {
        _mm256_store_ps(d, acc[0]);
        _mm256_store_ps(d + 8, acc[1]);
    } else {
        /* even lanes: (0 2 8 10 | 4 6 12 14) then reorder the 64-bit pairs */
        const __m256 e0 = _mm256_shuffle_ps(acc[0], acc[1], 0x88);
        const __m256 e1 = _mm256_shuffle_ps(acc[2], acc[3], 0x88);
        _mm256_store_ps(d, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e0), 0xD8)));
        _mm256_store_ps(d + 8, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e1), 0xD8)));
    }
}

void fc_f32_im2col_pack_panel16__avx2(const fc_im2col_pack_ctx *cx, size_t k0, size_t kc,
                                      int64_t j0, int64_t nv, size_t ld, float *dst) {
    enum { NR = 16 };
    const fc_conv2d_params *p = cx->p;
    const int64_t H = p->in_h, W = p->in_w, KH = p->kernel_h, KW = p->kernel_w;
    const int64_t HW = H * W;
    const int64_t Wo = p->out_w, sh = p->stride_h, sw = p->stride_w;
    int32_t bh[NR], bw[NR], bi[NR];
    im2col_seg seg[NR];
    const int ns = panel_segments(Wo, j0, nv, seg);
    const int64_t r = (int64_t)k0 % (KH * KW);
    int64_t c = (int64_t)k0 / (KH * KW), kh = r / KW, kw = r % KW;
    const int64_t oh0 = seg[0].oh, ow0 = seg[0].ow;

    /* per column: the input row and column of tap (0, 0) before padding, and its flat
     * index; columns past nv get a row far below 0 so every test fails */
    for (int t = 0; t < NR; t++) {
        if (t < nv) {
            const int64_t j = j0 + t, oh = j / Wo, ow = j % Wo;
            bh[t] = (int32_t)(oh * sh);
            bw[t] = (int32_t)(ow * sw);
            bi[t] = (int32_t)(oh * sh * W + ow * sw);
        } else {
            bh[t] = INT32_MIN / 2;
            bw[t] = 0;
            bi[t] = 0;
        }
    }
    const int fast = ns == 1 && nv == NR && sw == 1;
    const int win = ns <= FC_WIN_SEGS && (sw == 1 || sw == 2);
    /* window masks: run s reads window positions [sw*col, sw*(col+n-1)] */
    __m256i wm[FC_WIN_SEGS][4];
    if (win) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for (int s = 0; s < ns; s++) {
            const int32_t lo = (int32_t)(sw * seg[s].col);
            const int32_t hi = (int32_t)(sw * (seg[s].col + seg[s].n - 1));
            for (int v = 0; v < 2 * (int)sw; v++) {
                const __m256i pos = _mm256_add_epi32(lane, _mm256_set1_epi32(8 * v));
                wm[s][v] = _mm256_andnot_si256(
                    _mm256_cmpgt_epi32(_mm256_set1_epi32(lo), pos),
                    _mm256_cmpgt_epi32(_mm256_set1_epi32(hi + 1), pos));
            }
        }
    }
    /* the first pixel of the next panel: its source lines are fetched into L2 while this
     * panel is packed (per row, the lines of its tap for this row) */
    const int64_t jp = j0 + FC_IM2COL_PF_PANELS * NR, N = p->out_h * Wo;
    const int do_pf = jp < N;
    const int64_t pf_h = do_pf ? (jp / Wo) * sh : 0, pf_w = do_pf ? (jp % Wo) * sw : 0;
    const __m256i vbh0 = _mm256_loadu_si256((const __m256i *)bh);
    const __m256i vbh1 = _mm256_loadu_si256((const __m256i *)(bh + 8));
    const __m256i vbw0 = _mm256_loadu_si256((const __m256i *)bw);
    const __m256i vbw1 = _mm256_loadu_si256((const __m256i *)(bw + 8));
    const __m256i vbi0 = _mm256_loadu_si256((const __m256i *)bi);
    const __m256i vbi1 = _mm256_loadu_si256((const __m256i *)(bi + 8));
    const __m256i vH = _mm256_set1_epi32((int32_t)H), vW = _mm256_set1_epi32((int32_t)W);
    const __m256i vm1 = _mm256_set1_epi32(-1);
    const __m256 z = _mm256_setzero_ps();

    for (size_t q = 0; q < kc; q++) {
        float *d = dst + q * ld;
        const float *plane = cx->x_g + c * HW;
        const int64_t dw = p->dilation_w;
        const int64_t off_h = kh * p->dilation_h - p->pad_top;
        const int64_t off_w = kw * dw - p->pad_left;
        const int64_t ih = oh0 * sh + off_h, iw = ow0 * sw + off_w;
        if (do_pf && (kw == 0 || q == 0)) {
            /* once per (channel, kernel row): the lines of all its kernel columns */
            const int64_t ph = FC_MIN(FC_MAX(pf_h + off_h, 0), H - 1);
            const int64_t pw = FC_MIN(FC_MAX(pf_w + off_w, 0), W - 1);
            const int64_t pe = FC_MIN(pf_w + off_w + (NR - 1) * sw + (KW - 1 - kw) * p->dilation_w, W - 1);
            const float *pr = plane + ph * W;
            for (int64_t a = pw; a < pe; a += 16) _mm_prefetch((const char *)(pr + a), FC_IM2COL_PF_HINT);
            _mm_prefetch((const char *)(pr + FC_MAX(pe, pw)), FC_IM2COL_PF_HINT);
        }
        if (fast && (uint64_t)ih < (uint64_t)H && iw >= 0) {
            /* the rest of this kernel row (kernel columns kw .. KW-1, within the block)
             * in one go when all of it lies inside the image */
            const size_t cnt = FC_MIN((size_t)(KW - kw), kc - q);
            const float *s = plane + ih * W + iw;
            if (iw + (int64_t)(cnt - 1) * dw + NR <= W) {
                for (size_t t = 0; t < cnt; t++, s += dw, d += ld) {
                    _mm256_store_ps(d, _mm256_loadu_ps(s));
                    _mm256_store_ps(d + 8, _mm256_loadu_ps(s + 8));
                }
                q += cnt - 1;
                kw += (int64_t)cnt - 1;
                goto next;
            }
            if (iw + NR <= W) {
                _mm256_store_ps(d, _mm256_loadu_ps(s));
                _mm256_store_ps(d + 8, _mm256_loadu_ps(s + 8));
                goto next;
            }
        }
        if (win) {
            if (sw == 1)
                window_row(1, seg, ns, wm, plane, H, W, sh, off_h, off_w, d);
            else
                window_row(2, seg, ns, wm, plane, H, W, sh, off_h, off_w, d);
            goto next;
        }
        {
            const __m256i oh = _mm256_set1_epi32((int32_t)off_h);
            const __m256i ow = _mm256_set1_epi32((int32_t)off_w);
            const __m256i oi = _mm256_set1_epi32((int32_t)(off_h * W + off_w));
#define FC_HALF(vbh, vbw, vbi, dd)                                                       \
    do {                                                                                 \
        const __m256i vh = _mm256_add_epi32(vbh, oh), vw = _mm256_add_epi32(vbw, ow);     \
        __m256i m = _mm256_and_si256(_mm256_cmpgt_epi32(vh, vm1), _mm256_cmpgt_epi32(vH, vh)); \
        m = _mm256_and_si256(m, _mm256_cmpgt_epi32(vw, vm1));                            \
        m = _mm256_and_si256(m, _mm256_cmpgt_epi32(vW, vw));                             \
        const __m256i vi = _mm256_add_epi32(vbi, oi);                                    \
        _mm256_store_ps(dd, _mm256_mask_i32gather_ps(z, plane, vi, _mm256_castsi256_ps(m), 4)); \
    } while (0)
            FC_HALF(vbh0, vbw0, vbi0, d);
            FC_HALF(vbh1, vbw1, vbi1, d + 8);
#undef FC_HALF
        }
    next:
        if (++kw == KW) {
            kw = 0;
            if (++kh == KH) {
                kh = 0;
                c++;
            }
        }
    }
}
