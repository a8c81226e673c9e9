/* What the portable and the AVX2 im2col panel packers share: the runs a panel's pixels
 * form along output rows. */
#ifndef FC_IM2COL_PANEL_H
#define FC_IM2COL_PANEL_H
#include "fc_im2col.h"

typedef struct {
    int64_t oh, ow, n, col;
} im2col_seg;

/* Split pixels [j0, j0 + nv) into runs along output rows; returns the number of runs. */
static inline int panel_segments(int64_t Wo, int64_t j0, int64_t nv, im2col_seg *seg) {
    int ns = 0;
    int64_t j = j0;
    while (j < j0 + nv) {
        const int64_t oh = j / Wo, ow = j % Wo;
        const int64_t n = FC_MIN(Wo - ow, j0 + nv - j);
        seg[ns].oh = oh;
        seg[ns].ow = ow;
        seg[ns].n = n;
        seg[ns].col = j - j0;
        ns++;
        j += n;
    }
    return ns;
}

/* The AVX2 packer of 16 columns (src_c/kernels/avx2/fc_f32_im2col_pack__avx2.c): the
 * same values as the portable one, 1 <= nv <= 16 valid columns, row q of the panel at
 * dst + q*ld (ld = 16 for an AVX2 panel; 32 for one half of an AVX-512 panel, dst 32-byte
 * aligned either way). Every flat index must fit in int32. */
void fc_f32_im2col_pack_panel16__avx2(const fc_im2col_pack_ctx *cx, size_t k0, size_t kc,
                                      int64_t j0, int64_t nv, size_t ld, float *dst);

#endif
