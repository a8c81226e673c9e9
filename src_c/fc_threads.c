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

int fc_release_thread_pool(void) {
/* OpenMP 5.0's call; gcc's libgomp has it since gcc 10 while still saying _OPENMP 4.5 */
#if defined(_OPENMP) && (_OPENMP >= 201811 || \
                         (defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10))
    return omp_pause_resource_all(omp_pause_hard);
#else
    return 0;
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
