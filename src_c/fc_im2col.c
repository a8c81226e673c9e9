/* Implicit im2col: the image read straight into the GEMM's packed B panels.
 *
 * One packed panel holds the NR output pixels j0 .. j0+NR-1 (flattened oh*Wo + ow) for
 * the kc rows k0 .. k0+kc-1 of the im2col matrix (k = (c*KH + kh)*KW + kw). The pixels of
 * a panel form at most a few runs along output rows ("segments"), found once per panel.
 * Per row k, the common case -- one segment, stride 1, every tap inside the image -- is a
 * copy of NR contiguous floats; anything else goes element by element with bounds tests
 * (plain C) or through a masked gather (AVX2). */

#include "fc_im2col_panel.h"
#include "fc_gemm_kernels.h"
#include <string.h>

/* Row k of a panel, element by element with bounds tests; columns past nv are 0. */
static inline void panel_row_generic(const fc_conv2d_params *p, const float *plane,
                                     int64_t off_h, int64_t off_w, const im2col_seg *seg,
                                     int ns, int64_t nv, size_t NR, float *d) {
    const int64_t H = p->in_h, W = p->in_w, sh = p->stride_h, sw = p->stride_w;
    for (int s = 0; s < ns; s++) {
        const int64_t ih = seg[s].oh * sh + off_h;
        float *ds = d + seg[s].col;
        const int64_t n = seg[s].n;
        if ((uint64_t)ih >= (uint64_t)H) {
            for (int64_t t = 0; t < n; t++) ds[t] = 0.0f;
        } else {
            const float *row = plane + ih * W;
            const int64_t iw0 = seg[s].ow * sw + off_w;
            for (int64_t t = 0; t < n; t++) {
                const int64_t iw = iw0 + t * sw;
                ds[t] = (uint64_t)iw < (uint64_t)W ? row[iw] : 0.0f;
            }
        }
    }
    for (size_t t = (size_t)nv; t < NR; t++) d[t] = 0.0f;
}

/* Portable packer for one panel of NR columns (NR a compile-time constant at each use). */
static inline __attribute__((always_inline)) void
pack_panel_c(const fc_im2col_pack_ctx *cx, size_t k0, size_t kc, int64_t j0, int64_t nv,
             const size_t NR, float *dst) {
    const fc_conv2d_params *p = cx->p;
    const int64_t H = p->in_h, W = p->in_w, KH = p->kernel_h, KW = p->kernel_w;
    const int64_t HW = H * W;
    im2col_seg seg[FC_GEMM_MAX_NR];
    const int ns = panel_segments(p->out_w, j0, nv, seg);
    const int fast = (ns == 1 && (size_t)nv == NR && p->stride_w == 1);
    const int64_t r = (int64_t)k0 % (KH * KW);
    int64_t c = (int64_t)k0 / (KH * KW), kh = r / KW, kw = r % KW;
    const int64_t oh_s = seg[0].oh * p->stride_h, ow_s = seg[0].ow; /* fast path */

    for (size_t q = 0; q < kc; q++) {
        float *d = dst + q * NR;
        const float *plane = cx->x_g + c * HW;
        const int64_t off_h = kh * p->dilation_h - p->pad_top;
        const int64_t off_w = kw * p->dilation_w - p->pad_left;
        const int64_t ih = oh_s + off_h, iw = ow_s + off_w;
        if (fast && (uint64_t)ih < (uint64_t)H && iw >= 0 && iw + (int64_t)NR <= W)
            memcpy(d, plane + ih * W + iw, NR * sizeof(float));
        else
            panel_row_generic(p, plane, off_h, off_w, seg, ns, nv, NR, d);
        if (++kw == KW) {
            kw = 0;
            if (++kh == KH) {
                kh = 0;
                c++;
            }
        }
    }
}


/* Flat indices of the AVX2 packer fit in int32 (with margin for the offsets). */
static int fits_int32(const fc_conv2d_params *p) {
    const int64_t lim = (int64_t)1 << 29;
    return p->in_h * p->in_w < lim && p->in_h + p->pad_top + p->pad_bottom < lim &&
           p->in_w + p->pad_left + p->pad_right < lim &&
           p->out_h * p->stride_h < lim && p->out_w * p->stride_w < lim &&
           p->kernel_h * p->dilation_h < lim && p->kernel_w * p->dilation_w < lim;
}

void fc_im2col_pack_b(const void *ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr,
                      float *dst) {
    const fc_im2col_pack_ctx *cx = (const fc_im2col_pack_ctx *)ctx;
    for (size_t q = 0; q < nc; q += nr, dst += kc * nr) {
        const int64_t nv = (int64_t)FC_MIN(nr, nc - q);
        const int64_t jq = (int64_t)(j0 + q);
        if (nr == 16) {
            if (cx->use_avx2 && fits_int32(cx->p)) {
                fc_f32_im2col_pack_panel16__avx2(cx, k0, kc, jq, nv, 16, dst);
                continue;
            }
            pack_panel_c(cx, k0, kc, jq, nv, 16, dst);
        } else if (nr == 32) {
            /* AVX-512 panels: two 16-column halves side by side (the AVX2 packer runs
             * on every AVX-512 CPU); an empty right half is zero */
            if (cx->use_avx2 && fits_int32(cx->p)) {
                fc_f32_im2col_pack_panel16__avx2(cx, k0, kc, jq, FC_MIN(nv, 16), 32, dst);
                if (nv > 16) {
                    fc_f32_im2col_pack_panel16__avx2(cx, k0, kc, jq + 16, nv - 16, 32, dst + 16);
                } else {
                    for (size_t r = 0; r < kc; r++) memset(dst + r * 32 + 16, 0, 16 * sizeof(float));
                }
                continue;
            }
            pack_panel_c(cx, k0, kc, jq, nv, 32, dst);
        } else if (nr == 8) {
            pack_panel_c(cx, k0, kc, jq, nv, 8, dst);
        } else if (nr <= FC_GEMM_MAX_NR) {
            pack_panel_c(cx, k0, kc, jq, nv, nr, dst); /* no such ISA today */
        }
    }
}
