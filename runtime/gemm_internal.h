/* gemm_internal.h: the GEMM shim's own kernel (gemm_kernel.c), shared with
 * gemm.c only, and how gemm.c sizes its pool (declared here for its tests). */
#ifndef CGRAD_GEMM_INTERNAL_H
#define CGRAD_GEMM_INTERNAL_H

/* 1 when gemm_kernel can run on this thread, given a CPU with AVX-512
 * (which the caller checks): this file was built for AVX-512 and the
 * thread's packing buffers are allocated (on its first call). */
int gemm_kernel_ready(void);

/* C = op(A) op(B) + beta C, row-major, as cblas_sgemm with alpha = 1, on
 * the calling thread. */
void gemm_kernel(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                 float *c, int ldc);

/* y += rows [lo, hi) of w (n floats each) weighted by x, or summed when x
 * is NULL: the GEMV loop, in copies for x86-64-v4, v3 and the baseline. */
void gemm_gemv_rows(long lo, long hi, long n, const float *restrict x, const float *restrict w, float *restrict y);

/* The CPUs that a cgroup CPU quota allows, from the text of cgroup v2's
 * cpu.max ("max 100000", or "QUOTA PERIOD" in microseconds) and of v1's
 * cpu.cfs_quota_us and cpu.cfs_period_us (a quota of -1: none); either may
 * be NULL, and the smaller quota wins. 0 when there is no quota, or the text
 * is not one. */
double gemm_quota_cpus(const char *cpu_max, const char *cfs_quota, const char *cfs_period);

/* The number of threads of the pool: env (CGRAD_THREADS) when it is a whole
 * number of at least 1, otherwise the cpus the process may run on, fewer
 * when a quota of `quota` CPUs (0: none) allows fewer (rounded up); at most
 * 8 either way. */
int gemm_pool_size(const char *env, int cpus, double quota);

/* The CPUs of the process's affinity mask (the online CPUs where it cannot
 * be read). */
int gemm_affinity_cpus(void);

/* The smallest CPU quota (in CPUs) of the process's cgroup and its parents,
 * v2 or v1, read from /proc/self/cgroup and /sys/fs/cgroup; 0 when none is
 * set or the files cannot be read. */
double gemm_cgroup_quota(void);

#endif
