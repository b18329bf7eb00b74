/* blas_tune.c: picks OpenBLAS's AVX-512 kernels where its CPU detection
 * misses them.
 *
 * OpenBLAS 0.3.21, as packaged in Debian 12, predates AMD Zen 4 and Zen 5:
 * on those CPUs it reports the core as "Zen" or "Haswell" and runs its AVX2
 * kernels, although the CPU has AVX-512. OpenBLAS reads OPENBLAS_CORETYPE
 * once, when the library is loaded, so the only way to change its choice
 * from inside the program is to run the program again with the variable
 * set. Users who set OPENBLAS_CORETYPE (or CGRAD_NO_BLAS_TUNE) keep their
 * choice. */
#include "rt_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* True when the CPU runs the AVX-512 subsets OpenBLAS's SkylakeX kernels use. */
static int cpu_has_avx512(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

void cgrt_tune_openblas(char **argv, const char *corename)
{
    if (getenv("OPENBLAS_CORETYPE") || getenv("CGRAD_NO_BLAS_TUNE") || !corename || !cpu_has_avx512())
        return;
    if (strcmp(corename, "Haswell") && strcmp(corename, "Zen"))
        return;
    if (setenv("OPENBLAS_CORETYPE", "SkylakeX", 1))
        return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: carry on with the AVX2 kernels */
}
