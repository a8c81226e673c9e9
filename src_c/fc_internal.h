/* Internal helpers shared by the C kernels: checked size arithmetic, alignment,
 * OpenMP shims and the active instruction set. Not part of the public API. */
#ifndef FC_INTERNAL_H
#define FC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "fastconv.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Workspace carve-outs are aligned to a cache line (also enough for 32-byte AVX loads). */
#define FC_ALIGN 64
#define FC_ROUND_UP(x, a) ((((x) + (a) - 1) / (a)) * (a))
#define FC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* The instruction set every driver dispatches on; read once per call. */
fc_isa fc_active_isa(void);

/* 1 if the AVX2/FMA kernels may run under `isa`: AVX2 itself, and AVX-512 for the
 * operations that have no 512-bit kernel of their own. */
static inline int fc_isa_has_avx2(fc_isa isa) {
    return isa == FC_ISA_AVX2 || isa == FC_ISA_AVX512;
}

/* Checked size arithmetic: 0 on success, nonzero on overflow (result untouched). */
static inline int fc_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 1;
    *out = a * b;
    return 0;
}
static inline int fc_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 1;
    *out = a + b;
    return 0;
}
/* Product of n non-negative int64 values as size_t; nonzero on overflow or negative. */
static inline int fc_count(size_t *out, int n, const int64_t *v) {
    size_t acc = 1;
    for (int i = 0; i < n; i++) {
        if (v[i] < 0) return 1;
        if ((uint64_t)v[i] > (uint64_t)SIZE_MAX) return 1;
        if (fc_mul_size(acc, (size_t)v[i], &acc)) return 1;
    }
    *out = acc;
    return 0;
}
/* Round a byte count up to FC_ALIGN; nonzero on overflow. */
static inline int fc_align_size(size_t a, size_t *out) {
    if (a > SIZE_MAX - (FC_ALIGN - 1)) return 1;
    *out = FC_ROUND_UP(a, (size_t)FC_ALIGN);
    return 0;
}
/* Align a pointer up to FC_ALIGN. */
static inline void *fc_align_ptr(void *p) {
    uintptr_t u = (uintptr_t)p;
    return (void *)FC_ROUND_UP(u, (uintptr_t)FC_ALIGN);
}

/* The output-size rule of one axis (0 when there is no output or an argument is invalid);
 * arguments must fit in 31 bits, which every caller checks first. */
static inline int64_t fc_out_size(int64_t in, int64_t pad_begin, int64_t pad_end,
                                  int64_t kernel, int64_t stride, int64_t dilation,
                                  int ceil_mode) {
    const int64_t lim = INT32_MAX;
    if (stride < 1 || kernel < 1 || dilation < 1 || in < 0 || pad_begin < 0 || pad_end < 0 ||
        stride > lim || kernel > lim || dilation > lim || in > lim || pad_begin > lim ||
        pad_end > lim)
        return 0; /* invalid: the callers' checks reject it, but never divide by 0 here */
    int64_t span = in + pad_begin + pad_end - dilation * (kernel - 1) - 1;
    if (span < 0) return 0;
    int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    /* ceil_mode: a last window starting inside the end padding is dropped */
    if (ceil_mode && (out - 1) * stride >= in + pad_begin) out--;
    return out;
}

/* Flush-to-zero and denormals-are-zero for the span of a kernel's parallel region.
 * A subnormal float in an input, weight or partial sum makes each FMA touching it take a
 * microcode assist (100x and more slower); with FTZ (results) and DAZ (operands) set in
 * MXCSR such values count as zero. MXCSR is per thread, so every OpenMP region body sets
 * it on entry and puts the thread's own mode back before it ends: the caller's NumPy and
 * anything else on that thread keep IEEE gradual underflow.
 *     fc_fpmode m = fc_flush_denormals();  ...kernel work...  fc_restore_fpmode(m); */
#if defined(__x86_64__) || (defined(__i386__) && defined(__SSE__))
#include <xmmintrin.h>
typedef unsigned int fc_fpmode;
#define FC_MXCSR_FTZ_DAZ 0x8040u /* bit 15 FTZ, bit 6 DAZ */
static inline fc_fpmode fc_flush_denormals(void) {
    fc_fpmode m = _mm_getcsr();
    _mm_setcsr(m | FC_MXCSR_FTZ_DAZ);
    return m;
}
static inline fc_fpmode fc_current_fpmode(void) { return _mm_getcsr(); }
static inline void fc_restore_fpmode(fc_fpmode m) { _mm_setcsr(m); }
#else
static inline fc_fpmode fc_current_fpmode(void) { return 0; }
typedef int fc_fpmode;
static inline fc_fpmode fc_flush_denormals(void) { return 0; }
static inline void fc_restore_fpmode(fc_fpmode m) { (void)m; }
#endif

static inline int fc_clamp_threads(int n) { return n < 1 ? 1 : n; }

#endif /* FC_INTERNAL_H */
