/* gemm_kernel.c: a packed single-precision GEMM for CPUs with AVX-512.
 *
 * The GEMM shim (gemm.c) runs each part of a product here when the CPU has
 * AVX-512 (this file alone is built for x86-64-v4; gemm.c asks the CPU at
 * run time), and through OpenBLAS otherwise. The layout is the classic one of Goto's GEMM (as in BLIS and
 * OpenBLAS): the product is cut into blocks that fit the caches, each block
 * of op(A) and op(B) is copied ("packed") into the order the inner kernel
 * reads, and a register-blocked kernel computes one MR x NR tile of C at a
 * time, keeping the tile in 24 vector registers through the whole k loop.
 *
 *   for each NC columns of C          (block of op(B): KC x NC, in L2/L3)
 *     for each KC of the k dimension  (pack op(B) into NR-column panels)
 *       for each MC rows of C         (pack op(A) into MR-row panels, in L2)
 *         for each NR-column panel    (one panel of op(B), in L1)
 *           for each MR-row panel     C[MR x NR] += A panel . B panel
 *
 * Packing zero-fills the panels past the matrix edges, so the kernel always
 * computes a whole tile; the stores are masked to the rows and columns that
 * exist. Packing also absorbs the transposes: the kernel sees one layout.
 * The shapes here are those of a training step (a few thousand rows, tens to
 * hundreds of columns), where OpenBLAS's AVX2 kernels, which Debian's
 * OpenBLAS picks on current AMD CPUs, use half of each vector unit. */
#include "gemm_internal.h"

#if defined(__AVX512F__)

#include <immintrin.h>
#include <stdlib.h>

#define MR 12   /* rows of a tile: 12 x 2 accumulators + 2 B vectors + 1 broadcast fit 32 registers */
#define NR 32   /* columns of a tile: two vectors of 16 floats */
#define KC 256  /* depth of a block: an A panel (12 KB) and a B panel (32 KB) stay in L1 */
#define MC 192  /* rows of a packed A block (192 KB, in L2) */
#define NC 2048 /* columns of a packed B block (2 MB) */

/* Each thread packs into its own buffers, allocated on its first product. */
static __thread float *pack_a, *pack_b;

int gemm_kernel_ready(void)
{
    if (!pack_a) {
        void *a = NULL, *b = NULL;
        if (posix_memalign(&a, 64, sizeof(float) * MC * KC))
            return 0;
        if (posix_memalign(&b, 64, sizeof(float) * KC * NC)) {
            free(a);
            return 0;
        }
        pack_a = a;
        pack_b = b;
    }
    return 1;
}

/* Packs rows [i0, i0 + mc) and depths [p0, p0 + kc) of op(A) into MR-row
 * panels: panel q holds, for each depth p, the MR values of its rows. */
static void pack_a_block(int ta, const float *a, int lda, int i0, int mc, int p0, int kc, float *dst)
{
    for (int r0 = 0; r0 < mc; r0 += MR, dst += MR * kc) {
        int rows = mc - r0 < MR ? mc - r0 : MR;
        if (ta) { /* op(A)[i][p] = a[p][i]: the MR values of a depth are contiguous */
            __mmask16 m = (__mmask16)((1u << rows) - 1);
            for (int p = 0; p < kc; p++)
                _mm512_mask_storeu_ps(dst + p * MR, (__mmask16)((1u << MR) - 1),
                                      _mm512_maskz_loadu_ps(m, a + (long)(p0 + p) * lda + i0 + r0));
        } else { /* op(A)[i][p] = a[i][p]: a row of A is contiguous */
            for (int r = 0; r < MR; r++) {
                const float *src = r < rows ? a + (long)(i0 + r0 + r) * lda + p0 : NULL;
                for (int p = 0; p < kc; p++)
                    dst[p * MR + r] = src ? src[p] : 0.0f;
            }
        }
    }
}

/* Packs depths [p0, p0 + kc) and columns [j0, j0 + nc) of op(B) into
 * NR-column panels: panel q holds, for each depth p, the NR values of its
 * columns. */
static void pack_b_block(int tb, const float *b, int ldb, int p0, int kc, int j0, int nc, float *dst)
{
    for (int c0 = 0; c0 < nc; c0 += NR, dst += NR * kc) {
        int cols = nc - c0 < NR ? nc - c0 : NR;
        if (tb) { /* op(B)[p][j] = b[j][p]: a column of op(B) is a contiguous row of b */
            for (int c = 0; c < NR; c++) {
                const float *src = c < cols ? b + (long)(j0 + c0 + c) * ldb + p0 : NULL;
                for (int p = 0; p < kc; p++)
                    dst[p * NR + c] = src ? src[p] : 0.0f;
            }
        } else { /* op(B)[p][j] = b[p][j]: the NR values of a depth are contiguous */
            __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
            __mmask16 m1 = (__mmask16)(cols <= 16 ? 0 : cols >= 32 ? 0xFFFF : (1u << (cols - 16)) - 1);
            for (int p = 0; p < kc; p++) {
                const float *src = b + (long)(p0 + p) * ldb + j0 + c0;
                _mm512_store_ps(dst + p * NR, _mm512_maskz_loadu_ps(m0, src));
                _mm512_store_ps(dst + p * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
            }
        }
    }
}

/* Row r of a tile: c[0..NR) = beta c + (v0, v1), masked to the columns that exist. */
static inline void store_row(float *c, __m512 v0, __m512 v1, float beta, __mmask16 m0, __mmask16 m1)
{
    if (beta != 0.0f) {
        __m512 s = _mm512_set1_ps(beta);
        v0 = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m0, c), v0);
        v1 = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m1, c + 16), v1);
    }
    _mm512_mask_storeu_ps(c, m0, v0);
    _mm512_mask_storeu_ps(c + 16, m1, v1);
}

/* One tile: C[rows x cols] = beta C + A (MR x kc) . B panel (kc x NR).
 * Row r of A at depth p is a[r * ra + p * ca]: a packed panel (ra 1,
 * ca MR) or MR whole rows of a row-major A read in place (ra lda, ca 1). */
__attribute__((noinline)) static void tile(int kc, const float *restrict a, long ra, long ca, const float *restrict bp,
                                           long rb, float *c, int ldc, float beta, int rows, int cols)
{
    const float *restrict a0 = a, *restrict a4 = a + 4 * ra, *restrict a8 = a + 8 * ra;
/* clang-format off */
#define ACC(r) __m512 c##r##a = _mm512_setzero_ps(), c##r##b = _mm512_setzero_ps()
    ACC(0); ACC(1); ACC(2); ACC(3); ACC(4); ACC(5); ACC(6); ACC(7); ACC(8); ACC(9); ACC(10); ACC(11);
#undef ACC
    for (int p = 0; p < kc; p++, a0 += ca, a4 += ca, a8 += ca, bp += rb) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
#define FMA(r, base, i)                                                                                              \
    do {                                                                                                             \
        __m512 av = _mm512_set1_ps(base[(i) * ra]);                                                                  \
        c##r##a = _mm512_fmadd_ps(av, b0, c##r##a);                                                                  \
        c##r##b = _mm512_fmadd_ps(av, b1, c##r##b);                                                                  \
    } while (0)
        FMA(0, a0, 0); FMA(1, a0, 1); FMA(2, a0, 2); FMA(3, a0, 3);
        FMA(4, a4, 0); FMA(5, a4, 1); FMA(6, a4, 2); FMA(7, a4, 3);
        FMA(8, a8, 0); FMA(9, a8, 1); FMA(10, a8, 2); FMA(11, a8, 3);
#undef FMA
        /* clang-format on */
    }
    __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
    __mmask16 m1 = (__mmask16)(cols <= 16 ? 0 : cols >= 32 ? 0xFFFF : (1u << (cols - 16)) - 1);
#define STORE(r)                                                          \
    do {                                                                  \
        if (r < rows)                                                     \
            store_row(c + (long)(r)*ldc, c##r##a, c##r##b, beta, m0, m1); \
    } while (0)
    STORE(0);
    STORE(1);
    STORE(2);
    STORE(3);
    STORE(4);
    STORE(5);
    STORE(6);
    STORE(7);
    STORE(8);
    STORE(9);
    STORE(10);
    STORE(11);
#undef STORE
}

void gemm_kernel(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                 float *c, int ldc)
{
    if (k == 0) { /* no products: C = beta C */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(long)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(long)i * ldc + j];
        return;
    }
    for (int j0 = 0; j0 < n; j0 += NC) {
        int nc = n - j0 < NC ? n - j0 : NC;
        for (int p0 = 0; p0 < k; p0 += KC) {
            int kc = k - p0 < KC ? k - p0 : KC;
            float bk = p0 == 0 ? beta : 1.0f; /* later depth blocks add onto the first */
            /* likewise a row-major B is read in place, but for a last partial panel */
            int b_in_place = tb ? 0 : nc / NR * NR;
            pack_b_block(tb, b, ldb, p0, kc, j0 + b_in_place, nc - b_in_place, pack_b);
            for (int i0 = 0; i0 < m; i0 += MC) {
                int mc = m - i0 < MC ? m - i0 : MC;
                /* a row-major A is read in place, but for a last partial tile, which is packed with
                 * zeros below it; a transposed A is packed whole */
                int in_place = ta ? 0 : mc / MR * MR;
                pack_a_block(ta, a, lda, i0 + in_place, mc - in_place, p0, kc, pack_a);
                for (int c0 = 0; c0 < nc; c0 += NR) {
                    int cols = nc - c0 < NR ? nc - c0 : NR;
                    const float *bp = c0 < b_in_place ? b + (long)p0 * ldb + j0 + c0
                                                      : pack_b + (long)(c0 - b_in_place) * kc;
                    long rb = c0 < b_in_place ? ldb : NR;
                    for (int r0 = 0; r0 < mc; r0 += MR) {
                        int rows = mc - r0 < MR ? mc - r0 : MR;
                        float *ct = c + (long)(i0 + r0) * ldc + j0 + c0;
                        if (r0 < in_place)
                            tile(kc, a + (long)(i0 + r0) * lda + p0, lda, 1, bp, rb, ct, ldc, bk, rows, cols);
                        else
                            tile(kc, pack_a + (long)(r0 - in_place) * kc, 1, MR, bp, rb, ct, ldc, bk, rows, cols);
                    }
                }
            }
        }
    }
}

#else

int gemm_kernel_ready(void)
{
    return 0;
}

void gemm_kernel(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                 float *c, int ldc)
{
    (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)beta, (void)c,
        (void)ldc;
}

#endif
