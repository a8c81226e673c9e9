/* CPU feature detection and the kernel-family switch.
 *
 * AVX2 kernels may only run after this check says yes: CPUID leaf 7 for AVX2, leaf 1 for
 * FMA, OSXSAVE and AVX, and XGETBV to make sure the OS saves the YMM upper halves on a
 * context switch. AVX-512 kernels additionally need CPUID leaf 7 EBX bits F (16), DQ (17),
 * BW (30) and VL (31), and XCR0 bits 5, 6, 7 (opmask, upper halves of ZMM0-15, ZMM16-31)
 * set by the OS. Nothing here executes an AVX instruction. */
#include "fc_internal.h"
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    /* xgetbv with ecx = 0, spelled as bytes so no -mxsave flag is needed */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static int detect_avx2_fma(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned int fma = 1u << 12, osxsave = 1u << 27, avx = 1u << 28;
    if ((ecx & (fma | osxsave | avx)) != (fma | osxsave | avx)) return 0;
    if ((read_xcr0() & 0x6) != 0x6) return 0; /* XMM and YMM state enabled by the OS */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    return (ebx & (1u << 5)) != 0; /* AVX2 */
}

static int detect_avx512(void) {
    unsigned int eax, ebx, ecx, edx;
    const unsigned int need = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);
    if (!detect_avx2_fma()) return 0;
    if ((read_xcr0() & 0xE6) != 0xE6) return 0; /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM */
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    return (ebx & need) == need;
}
#else
static int detect_avx2_fma(void) { return 0; }
static int detect_avx512(void) { return 0; }
#endif

static int g_has_avx2 = -1, g_has_avx512 = -1;
static fc_isa g_isa = FC_ISA_SCALAR;

int fc_cpu_has_avx2_fma(void) {
    if (g_has_avx2 < 0) g_has_avx2 = detect_avx2_fma();
    return g_has_avx2;
}

int fc_cpu_has_avx512(void) {
    if (g_has_avx512 < 0) g_has_avx512 = detect_avx512();
    return g_has_avx512;
}

fc_status fc_set_isa(fc_isa isa) {
    if (isa == FC_ISA_SCALAR) { g_isa = isa; return FC_OK; }
    if (isa == FC_ISA_AVX2) {
        if (!fc_cpu_has_avx2_fma()) return FC_EUNSUPPORTED;
        g_isa = isa;
        return FC_OK;
    }
    if (isa == FC_ISA_AVX512) {
        if (!fc_cpu_has_avx512()) return FC_EUNSUPPORTED;
        g_isa = isa;
        return FC_OK;
    }
    return FC_EINVAL;
}

fc_isa fc_get_isa(void) { return g_isa; }
fc_isa fc_active_isa(void) { return g_isa; }

const char *fc_isa_name(fc_isa isa) {
    switch (isa) {
    case FC_ISA_SCALAR: return "scalar";
    case FC_ISA_AVX2: return "avx2";
    case FC_ISA_AVX512: return "avx512";
    }
    return "unknown";
}

const char *fc_status_string(fc_status s) {
    switch (s) {
    case FC_OK: return "ok";
    case FC_EINVAL: return "invalid argument";
    case FC_ESHAPE: return "shape mismatch";
    case FC_ENOMEM: return "out of memory or workspace too small";
    case FC_EOVERFLOW: return "size overflows";
    case FC_EUNSUPPORTED: return "unsupported configuration";
    }
    return "unknown status";
}
