/* gemm_internal.h: the GEMM shim's own kernel (gemm_kernel.c), shared with
 * gemm.c only. */
#ifndef CGRAD_GEMM_INTERNAL_H
#define CGRAD_GEMM_INTERNAL_H

/* 1 when gemm_kernel can run on this thread: the build targets AVX-512 and
 * the thread's packing buffers are allocated (on its first call). */
int gemm_kernel_ready(void);

/* C = op(A) op(B) + beta C, row-major, as cblas_sgemm with alpha = 1, on
 * the calling thread. */
void gemm_kernel(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                 float *c, int ldc);

#endif
