/* cgrad_gemm.h: the GEMM shim that host-flavour code calls (libcgrad_gemm).
 *
 * cgrt_sgemm computes C = op(A) op(B) + beta C for row-major matrices, as
 * cblas_sgemm does with alpha = 1, and splits large products into blocks of
 * rows, of columns or of the depth k, run at once on a small pool of
 * threads. Each block runs on the shim's own AVX-512 kernel
 * (gemm_kernel.c) when the build targets AVX-512, and on single-threaded
 * OpenBLAS otherwise. On the sizes of a training step (batch 64, a few
 * hundred units) this uses two cores where OpenBLAS's own threading does
 * not pay off. CGRAD_THREADS sets the number of threads (default: the
 * CPUs of the process's affinity mask, fewer under a cgroup CPU quota, at
 * most 8); 1 turns the pool off. Idle threads sleep after a short spin, and
 * a thread that does not start its piece of a product in time (its core is
 * busy) leaves it to the caller. CGRAD_GEMM=openblas runs every product
 * through OpenBLAS. */
#ifndef CGRAD_GEMM_H
#define CGRAD_GEMM_H

/* 1 when products run on OpenBLAS: the shim was built without its kernel
 * (no AVX-512), or CGRAD_GEMM=openblas. */
int cgrt_gemm_uses_openblas(void);

void cgrt_sgemm(int transpose_a, int transpose_b, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                float beta, float *c, int ldc);

/* y[n] = x[k] . W[k][n] + y for one row x, W row-major (k, n): the one-sample
 * Dense product, split by columns across the pool. */
void cgrt_sgemv_rows(int k, int n, const float *x, const float *w, float *y);

/* y[c] = the sum over r of x[r][c], x row-major (rows, cols): a bias
 * gradient, summed over every sample and position of a batch, split by
 * rows across the pool (each piece its own partial sum). */
void cgrt_sum_rows(int rows, int cols, const float *x, float *y);

/* The same product for the pieces of a parallel loop: on the calling thread
 * while the pool runs the loop, on the pool when the loop was too short to
 * split and runs whole on the caller. */
void cgrt_sgemm_here(int transpose_a, int transpose_b, int m, int n, int k, const float *a, int lda, const float *b,
                     int ldb, float beta, float *c, int ldc);

/* Runs body(arg, lo, hi) over [0, count) cut into one piece per thread of
 * the pool, each a multiple of grain long (the caller runs the first), and
 * returns when all are done. Fewer than two grains run on the caller alone. */
void cgrt_parallel_for(long count, long grain, void (*body)(void *arg, long lo, long hi), void *arg);

/* The arguments of a kernel whose samples are split across the pool. */
typedef struct cgrt_kernel_args {
    const float *in[3];
    float *out;
    float *cols;
} cgrt_kernel_args;

#endif
