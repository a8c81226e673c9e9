/* OpenMP presence and the default team size. The team size of each call travels in its
 * params struct (read once by the caller), so changing it from another thread never
 * races with a running kernel. */
#include "fc_internal.h"
#include <stdlib.h>

int fc_have_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fc_default_num_threads(void) {
#ifdef _OPENMP
    return fc_clamp_threads(omp_get_max_threads()); /* honours OMP_NUM_THREADS */
#else
    return 1;
#endif
}

const char *fc_compiler(void) {
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown C compiler";
#endif
}
