/* test_gemm.c: the GEMM shim (libcgrad_gemm) against a double-precision
 * triple loop: cgrt_sgemm for every transpose pair over shapes at the edges
 * of the kernel's tiles and blocks, beta 0 (over NaN), 0.5 and 1, padded
 * leading dimensions with guards around C, k = 0, the products the pool
 * splits by rows, columns and depth on 1, 2 and 3 threads, and the OpenBLAS
 * path; cgrt_sgemm_here outside and inside a parallel loop,
 * cgrt_parallel_for's cover of its range, cgrt_sgemv_rows and cgrt_sum_rows.
 * Criterion runs each test in its own process, so each sets CGRAD_THREADS
 * (and CGRAD_GEMM) before its first call, when the pool reads them.
 *
 * Then the pool on a busy machine: its size from CGRAD_THREADS, the
 * affinity mask and a cgroup quota (gemm_pool_size on given texts);
 * products of whole numbers (exact in float) checked exactly, under several
 * CGRAD_THREADS and pinned to one CPU; workers held in a signal handler
 * leave their pieces to the caller instead of stalling it; idle workers
 * sleep. */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#include "cgrad_gemm.h"
#include "../../runtime/gemm_internal.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define GUARD 777.0f /* the value around a C that is a block of a bigger matrix */

/* The edge shapes: MR = 12 rows, NR = 32 columns, KC = 256 depths, MC = 192 rows. */
static const int ms[] = {1, 5, 12, 13, 121, 200, 385};
static const int ns[] = {1, 10, 31, 32, 33, 64, 100};
static const int ks[] = {1, 9, 255, 256, 257, 600};
#define COUNT(x) ((int)(sizeof(x) / sizeof((x)[0])))

/* Deterministic pseudo-random values in [-1, 1], exact in float. */
static uint64_t lcg_state;
static void seed(uint64_t s)
{
    lcg_state = s * 2862933555777941757ULL + 3037000493ULL;
}
static float rnd(void)
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg_state >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

/* Sets the pool's thread count (and the OpenBLAS-only switch) for this test's process. */
static void use(const char *threads, int openblas)
{
    cr_assert_eq(setenv("CGRAD_THREADS", threads, 1), 0);
    if (openblas)
        cr_assert_eq(setenv("CGRAD_GEMM", "openblas", 1), 0);
    else
        cr_assert_eq(unsetenv("CGRAD_GEMM"), 0);
}

static const char *threads_text(void)
{
    const char *t = getenv("CGRAD_THREADS");
    return t ? t : "default";
}

/* One product with its inputs and the reference result. A is op(A) m x k
 * stored (ta ? k x m : m x k), B is op(B) k x n stored (tb ? n x k : k x n);
 * the padding of their rows holds NaN, which must not be read into C. With
 * guard, C is a block of a bigger matrix (a row above and below, a column on
 * the left and 1 + pad on the right) filled with GUARD. */
typedef struct prod {
    int ta, tb, m, n, k, lda, ldb, ldc, guard, crows;
    float beta;
    float *a, *b, *cbuf, *c;
    double *want, *tol; /* m x n: the reference C and each element's tolerance */
} prod;

static float *alloc_floats(long n)
{
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    cr_assert_not_null(p);
    return p;
}

static double *alloc_doubles(long n)
{
    double *p = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    cr_assert_not_null(p);
    return p;
}

/* Fills a rows x cols matrix of leading dimension ld: values, NaN in the padding. */
static void fill(float *x, int rows, int cols, int ld)
{
    for (int r = 0; r < rows; r++)
        for (int q = 0; q < ld; q++)
            x[(long)r * ld + q] = q < cols ? rnd() : NAN;
}

/* Sets up a product and computes its reference: C = op(A) op(B) + beta C0,
 * with tolerance 1e-5 (sum |a b| + |beta C0|) + 1e-6 per element. C0 is NaN
 * when beta is 0 (it must be overwritten, not scaled). */
static void prod_make(prod *p, int ta, int tb, int m, int n, int k, float beta, int pad, int guard)
{
    int ra = ta ? k : m, ca = ta ? m : k, rb = tb ? n : k, cb = tb ? k : n;
    memset(p, 0, sizeof *p);
    p->ta = ta, p->tb = tb, p->m = m, p->n = n, p->k = k, p->beta = beta, p->guard = guard;
    p->lda = (ca > 0 ? ca : 1) + pad;
    p->ldb = (cb > 0 ? cb : 1) + pad;
    seed((uint64_t)(((ta * 2 + tb) * 1000003L + m) * 1000003L + n) * 1000003ULL + (uint64_t)k + (uint64_t)pad);
    p->a = alloc_floats((long)ra * p->lda);
    p->b = alloc_floats((long)rb * p->ldb);
    fill(p->a, ra, ca, p->lda);
    fill(p->b, rb, cb, p->ldb);
    if (guard) {
        p->ldc = n + 2 + pad;
        p->crows = m + 2;
        p->cbuf = alloc_floats((long)p->crows * p->ldc);
        for (long i = 0; i < (long)p->crows * p->ldc; i++)
            p->cbuf[i] = GUARD;
        p->c = p->cbuf + p->ldc + 1;
    } else {
        p->ldc = (n > 0 ? n : 1) + pad;
        p->crows = m;
        p->cbuf = alloc_floats((long)p->crows * p->ldc);
        for (long i = 0; i < (long)p->crows * p->ldc; i++)
            p->cbuf[i] = NAN;
        p->c = p->cbuf;
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            p->c[(long)i * p->ldc + j] = beta == 0.0f ? NAN : rnd();

    /* op(A) as rows of k doubles, op(B) as columns of k doubles */
    double *oa = alloc_doubles((long)m * k), *ob = alloc_doubles((long)n * k);
    for (int i = 0; i < m; i++)
        for (int q = 0; q < k; q++)
            oa[(long)i * k + q] = ta ? p->a[(long)q * p->lda + i] : p->a[(long)i * p->lda + q];
    for (int j = 0; j < n; j++)
        for (int q = 0; q < k; q++)
            ob[(long)j * k + q] = tb ? p->b[(long)j * p->ldb + q] : p->b[(long)q * p->ldb + j];
    p->want = alloc_doubles((long)m * n);
    p->tol = alloc_doubles((long)m * n);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            const double *x = oa + (long)i * k, *y = ob + (long)j * k;
            double s = 0.0, t = 0.0;
            for (int q = 0; q < k; q++) {
                double v = x[q] * y[q];
                s += v;
                t += fabs(v);
            }
            if (beta != 0.0f) {
                double c0 = (double)beta * p->c[(long)i * p->ldc + j];
                s += c0;
                t += fabs(c0);
            }
            p->want[(long)i * n + j] = s;
            p->tol[(long)i * n + j] = 1e-5 * t + 1e-6;
        }
    free(oa);
    free(ob);
}

/* Asserts that C matches the reference (the worst element is reported) and
 * that every element around it kept its guard value. */
static void prod_check(const prod *p, const char *what)
{
    double worst = -1.0, worst_err = 0.0;
    int wi = 0, wj = 0;
    for (int i = 0; i < p->m; i++)
        for (int j = 0; j < p->n; j++) {
            double got = p->c[(long)i * p->ldc + j], want = p->want[(long)i * p->n + j];
            double err = fabs(got - want), tol = p->tol[(long)i * p->n + j];
            double ratio = err == err ? err / tol : INFINITY;
            if (ratio > worst) {
                worst = ratio, worst_err = err, wi = i, wj = j;
            }
        }
    if (p->m > 0 && p->n > 0)
        cr_assert(worst <= 1.0,
                  "%s: ta %d tb %d m %d n %d k %d lda %d ldb %d ldc %d beta %g threads %s: C[%d][%d] = %.9g, want "
                  "%.9g (error %.3g, tolerance %.3g)",
                  what, p->ta, p->tb, p->m, p->n, p->k, p->lda, p->ldb, p->ldc, (double)p->beta, threads_text(), wi, wj,
                  (double)p->c[(long)wi * p->ldc + wj], p->want[(long)wi * p->n + wj], worst_err,
                  p->tol[(long)wi * p->n + wj]);
    if (p->guard) {
        long bad = 0, first = -1;
        for (int r = 0; r < p->crows; r++)
            for (int q = 0; q < p->ldc; q++) {
                int inside = r >= 1 && r <= p->m && q >= 1 && q <= p->n;
                if (!inside && !(p->cbuf[(long)r * p->ldc + q] == GUARD)) {
                    if (first < 0)
                        first = (long)r * p->ldc + q;
                    bad++;
                }
            }
        cr_assert_eq(bad, 0,
                     "%s: ta %d tb %d m %d n %d k %d beta %g threads %s: %ld elements around C changed, the first "
                     "at row %ld column %ld of the bigger matrix (now %g)",
                     what, p->ta, p->tb, p->m, p->n, p->k, (double)p->beta, threads_text(), bad, first / p->ldc,
                     first % p->ldc, first >= 0 ? (double)p->cbuf[first] : 0.0);
    }
}

static void prod_free(prod *p)
{
    free(p->a);
    free(p->b);
    free(p->cbuf);
    free(p->want);
    free(p->tol);
}

typedef void (*gemm_fn)(int, int, int, int, int, const float *, int, const float *, int, float, float *, int);

/* Makes, runs (through fn) and checks one product. */
static void run(gemm_fn fn, int ta, int tb, int m, int n, int k, float beta, int pad, int guard, const char *what)
{
    prod p;
    prod_make(&p, ta, tb, m, n, k, beta, pad, guard);
    fn(ta, tb, m, n, k, p.a, p.lda, p.b, p.ldb, p.beta, p.c, p.ldc);
    prod_check(&p, what);
    prod_free(&p);
}

/* Every m x n x k of the edge lists for one transpose pair, tight leading
 * dimensions, beta cycling through 0, 0.5 and 1. */
static void sweep(gemm_fn fn, int ta, int tb, const char *what)
{
    static const float betas[3] = {0.0f, 0.5f, 1.0f};
    int idx = 0;
    for (int im = 0; im < COUNT(ms); im++)
        for (int in = 0; in < COUNT(ns); in++)
            for (int ik = 0; ik < COUNT(ks); ik++, idx++)
                run(fn, ta, tb, ms[im], ns[in], ks[ik], betas[idx % 3], 0, 0, what);
}

/* Records the pieces a parallel loop ran: per-index counts, each call's range and thread. */
#define MAX_CALLS 64
typedef struct cover {
    long count, grain;
    int *hits;
    int calls;
    long lo[MAX_CALLS], hi[MAX_CALLS];
    pthread_t thread[MAX_CALLS];
} cover;

static void cover_body(void *arg, long lo, long hi)
{
    cover *cv = arg;
    int call = __atomic_fetch_add(&cv->calls, 1, __ATOMIC_RELAXED);
    if (call < MAX_CALLS) {
        cv->lo[call] = lo;
        cv->hi[call] = hi;
        cv->thread[call] = pthread_self();
    }
    for (long i = lo; i < hi; i++)
        if (i >= 0 && i < cv->count)
            __atomic_fetch_add(&cv->hits[i], 1, __ATOMIC_RELAXED);
}

/* The number of threads of the pool: a loop of 64 single-index grains runs
 * one piece per thread. */
static int pool_threads(void)
{
    cover cv;
    memset(&cv, 0, sizeof cv);
    cv.count = 64;
    cv.grain = 1;
    cv.hits = calloc(64, sizeof(int));
    cr_assert_not_null(cv.hits);
    cgrt_parallel_for(64, 1, cover_body, &cv);
    free(cv.hits);
    return cv.calls;
}

/* The large products, which the pool splits: by rows (m > n), by columns
 * (n >= m) and by depth (k >= 8 max(m, n)); each with beta 0 over NaN and
 * with beta 0.5 and padded leading dimensions inside guards. */
static void large_products(gemm_fn fn, const char *what)
{
    static const int shapes[][5] = {
        {0, 0, 7744, 64, 288}, /* rows */
        {0, 1, 7744, 288, 64}, /* rows */
        {1, 0, 288, 64, 7744}, /* depth */
        {1, 0, 9, 32, 43264},  /* depth */
        {0, 0, 25, 40, 8001},  /* depth, each transpose pair */
        {0, 1, 25, 40, 8001},  /* depth */
        {1, 1, 25, 40, 8001},  /* depth */
        {1, 1, 100, 4001, 64}, /* columns, more than NC = 2048 of them */
        {0, 0, 64, 2100, 130}, /* columns */
    };
    for (int s = 0; s < COUNT(shapes); s++) {
        const int *x = shapes[s];
        run(fn, x[0], x[1], x[2], x[3], x[4], 0.0f, 0, 0, what);
        run(fn, x[0], x[1], x[2], x[3], x[4], 0.5f, 7, 1, what);
    }
}

/* The sweep of every transpose pair, on 1 and on 2 threads: one process each
 * (no pointers in a case: Criterion copies it into another process). */
typedef struct sweep_case {
    int threads, ta, tb;
} sweep_case;

ParameterizedTestParameters(sgemm, shapes)
{
    static sweep_case cases[] = {{1, 0, 0}, {1, 0, 1}, {1, 1, 0}, {1, 1, 1},
                                 {2, 0, 0}, {2, 0, 1}, {2, 1, 0}, {2, 1, 1}};
    return cr_make_param_array(sweep_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(sweep_case *c, sgemm, shapes)
{
    use(c->threads == 1 ? "1" : "2", 0);
    sweep(cgrt_sgemm, c->ta, c->tb, "sgemm");
}

/* beta 0 over NaN, 0.5 and 1 explicitly, on tile-edge shapes, each transpose pair. */
Test(sgemm, beta)
{
    static const int shapes[][3] = {{13, 33, 257}, {121, 100, 600}, {200, 64, 9}, {12, 32, 256}, {1, 1, 1}};
    static const float betas[3] = {0.0f, 0.5f, 1.0f};
    use("2", 0);
    for (int t = 0; t < 4; t++)
        for (int s = 0; s < COUNT(shapes); s++)
            for (int b = 0; b < 3; b++)
                run(cgrt_sgemm, t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2], betas[b], 0, 0, "beta");
}

/* lda, ldb and ldc 7 more than needed (NaN in A's and B's padding), C a
 * block of a bigger matrix whose other elements stay untouched. */
Test(sgemm, leading_dimensions_and_guards)
{
    static const float betas[3] = {0.0f, 0.5f, 1.0f};
    use("2", 0);
    for (int t = 0; t < 4; t++)
        for (int im = 0; im < COUNT(ms); im++)
            for (int s = 0; s < COUNT(ns); s++) {
                int n = ns[s], k = ks[(im + s) % COUNT(ks)];
                run(cgrt_sgemm, t >> 1, t & 1, ms[im], n, k, betas[(im + s) % 3], 7, 1, "padded");
            }
}

/* k = 0: C = beta C (beta 0 zeroes a NaN C). */
Test(sgemm, k_zero)
{
    static const int shapes[][2] = {{1, 1}, {13, 33}, {200, 100}, {700, 300}};
    static const float betas[3] = {0.0f, 0.5f, 1.0f};
    use("2", 0);
    for (int t = 0; t < 4; t++)
        for (int s = 0; s < COUNT(shapes); s++)
            for (int b = 0; b < 3; b++) {
                run(cgrt_sgemm, t >> 1, t & 1, shapes[s][0], shapes[s][1], 0, betas[b], 0, 0, "k = 0");
                run(cgrt_sgemm, t >> 1, t & 1, shapes[s][0], shapes[s][1], 0, betas[b], 7, 1, "k = 0");
            }
}

Test(sgemm, large_1_thread)
{
    use("1", 0);
    cr_assert_eq(pool_threads(), 1);
    large_products(cgrt_sgemm, "large");
}

Test(sgemm, large_2_threads)
{
    use("2", 0);
    cr_assert_eq(pool_threads(), 2);
    large_products(cgrt_sgemm, "large");
}

Test(sgemm, large_3_threads)
{
    use("3", 0);
    cr_assert_eq(pool_threads(), 3);
    large_products(cgrt_sgemm, "large");
}

/* CGRAD_GEMM=openblas: every part of a product through OpenBLAS. */
Test(sgemm, openblas)
{
    use("2", 1);
    for (int t = 0; t < 4; t++) {
        for (int im = 0; im < COUNT(ms); im++)
            for (int s = 0; s < COUNT(ns); s++) {
                int n = ns[s], k = ks[(im + s) % COUNT(ks)];
                run(cgrt_sgemm, t >> 1, t & 1, ms[im], n, k, (float)((im + s) % 3) * 0.5f, (im + s) % 2 ? 7 : 0,
                    (im + s) % 2, "openblas");
            }
        for (int b = 0; b < 3; b++)
            run(cgrt_sgemm, t >> 1, t & 1, 13, 33, 0, (float)b * 0.5f, 7, 1, "openblas k = 0");
    }
    large_products(cgrt_sgemm, "openblas large");
}

/* Outside a parallel loop cgrt_sgemm_here is cgrt_sgemm (and may use the pool). */
Test(sgemm_here, outside_a_loop)
{
    use("2", 0);
    for (int t = 0; t < 4; t++) {
        run(cgrt_sgemm_here, t >> 1, t & 1, 13, 33, 257, 0.5f, 7, 1, "sgemm_here");
        run(cgrt_sgemm_here, t >> 1, t & 1, 385, 100, 600, 0.0f, 0, 0, "sgemm_here");
    }
    run(cgrt_sgemm_here, 0, 0, 7744, 64, 288, 1.0f, 7, 1, "sgemm_here");
    run(cgrt_sgemm_here, 1, 0, 288, 64, 7744, 0.0f, 0, 0, "sgemm_here");
}

/* A parallel loop over the rows of C, each piece computing its own rows. */
static void rows_body(void *arg, long lo, long hi)
{
    prod *p = arg;
    const float *a = p->ta ? p->a + lo : p->a + lo * p->lda;
    cgrt_sgemm_here(p->ta, p->tb, (int)(hi - lo), p->n, p->k, a, p->lda, p->b, p->ldb, p->beta, p->c + lo * p->ldc,
                    p->ldc);
}

static void rows_in_loop(int m, int n, int k, long grain)
{
    for (int t = 0; t < 4; t++)
        for (int b = 0; b < 2; b++) {
            prod p;
            prod_make(&p, t >> 1, t & 1, m, n, k, b ? 0.5f : 0.0f, b ? 7 : 0, b);
            cgrt_parallel_for(m, grain, rows_body, &p);
            prod_check(&p, "sgemm_here in a loop");
            prod_free(&p);
        }
}

Test(sgemm_here, inside_a_loop_1_thread)
{
    use("1", 0);
    rows_in_loop(301, 70, 257, 12);
    rows_in_loop(200, 100, 600, 128); /* too short to split: runs whole on the caller */
}

Test(sgemm_here, inside_a_loop_2_threads)
{
    use("2", 0);
    rows_in_loop(301, 70, 257, 12);
    rows_in_loop(1000, 33, 600, 1);
    rows_in_loop(200, 100, 600, 128); /* too short to split: the product itself may use the pool */
}

Test(sgemm_here, inside_a_loop_3_threads)
{
    use("3", 0);
    rows_in_loop(301, 70, 257, 12);
    rows_in_loop(200, 100, 600, 128);
}

/* cgrt_parallel_for covers [0, count) exactly once, in pieces starting at
 * multiples of the grain, one per thread at most; a loop shorter than two
 * grains is one call on the caller. */
static void check_cover(int threads)
{
    static const long cases[][2] = {{0, 4},     {1, 1},   {5, 4},  {7, 4}, {8, 4},       {9, 4},       {1000, 1},
                                    {1003, 10}, {37, 16}, {10, 0}, {2, 1}, {100000, 64}, {12345, 100}, {3, 1}};
    pthread_t self = pthread_self();
    for (int s = 0; s < COUNT(cases); s++) {
        long count = cases[s][0], grain = cases[s][1], g = grain > 0 ? grain : 1;
        cover cv;
        memset(&cv, 0, sizeof cv);
        cv.count = count;
        cv.grain = grain;
        cv.hits = calloc((size_t)(count > 0 ? count : 1), sizeof(int));
        cr_assert_not_null(cv.hits);
        cgrt_parallel_for(count, grain, cover_body, &cv);
        for (long i = 0; i < count; i++)
            cr_assert_eq(cv.hits[i], 1, "count %ld grain %ld threads %d: index %ld covered %d times", count, grain,
                         threads, i, cv.hits[i]);
        cr_assert(cv.calls <= MAX_CALLS && cv.calls >= 1, "count %ld grain %ld: %d calls", count, grain, cv.calls);
        for (int c = 0; c < cv.calls; c++) {
            cr_assert(cv.lo[c] >= 0 && cv.lo[c] <= cv.hi[c] && cv.hi[c] <= count,
                      "count %ld grain %ld threads %d: piece [%ld, %ld)", count, grain, threads, cv.lo[c], cv.hi[c]);
            cr_assert_eq(cv.lo[c] % g, 0, "count %ld grain %ld threads %d: piece [%ld, %ld) off the grain", count,
                         grain, threads, cv.lo[c], cv.hi[c]);
            if (threads == 1)
                cr_assert(pthread_equal(cv.thread[c], self),
                          "count %ld grain %ld: a piece off the caller with 1 "
                          "thread",
                          count, grain);
        }
        if (count < 2 * g) {
            cr_assert_eq(cv.calls, 1, "count %ld grain %ld threads %d: %d calls", count, grain, threads, cv.calls);
            cr_assert(cv.lo[0] == 0 && cv.hi[0] == count && pthread_equal(cv.thread[0], self),
                      "count %ld grain %ld: the short loop is not one call on the caller", count, grain);
        } else {
            long blocks = (count + g - 1) / g;
            int want = blocks >= threads ? threads : -1;
            cr_assert(cv.calls <= threads, "count %ld grain %ld threads %d: %d calls", count, grain, threads, cv.calls);
            if (want > 0)
                cr_assert_eq(cv.calls, want, "count %ld grain %ld threads %d: %d calls", count, grain, threads,
                             cv.calls);
        }
        free(cv.hits);
    }
}

Test(parallel_for, cover_1_thread)
{
    use("1", 0);
    check_cover(1);
}

Test(parallel_for, cover_2_threads)
{
    use("2", 0);
    check_cover(2);
}

Test(parallel_for, cover_3_threads)
{
    use("3", 0);
    check_cover(3);
}

/* cgrt_sgemv_rows: y += x W (W row-major k x n), run twice on the same y (the
 * partial sums start from zero each call); y has a guard on each side. */
static void check_gemv(int k, int n)
{
    float *x = alloc_floats(k), *w = alloc_floats((long)k * n), *ybuf = alloc_floats(n + 2), *y = ybuf + 1;
    double *y0 = alloc_doubles(n), *xw = alloc_doubles(n), *t = alloc_doubles(n);
    seed((uint64_t)k * 7919 + (uint64_t)n);
    fill(x, 1, k, k);
    fill(w, k, n, n);
    ybuf[0] = ybuf[n + 1] = GUARD;
    for (int c = 0; c < n; c++) {
        y[c] = rnd();
        y0[c] = y[c];
        xw[c] = 0.0;
        t[c] = 0.0;
    }
    for (int r = 0; r < k; r++)
        for (int c = 0; c < n; c++) {
            double v = (double)x[r] * w[(long)r * n + c];
            xw[c] += v;
            t[c] += fabs(v);
        }
    for (int round = 1; round <= 2; round++) {
        cgrt_sgemv_rows(k, n, x, w, y);
        for (int c = 0; c < n; c++) {
            double want = y0[c] + round * xw[c], tol = 1e-5 * (round * t[c] + fabs(y0[c])) + 1e-6;
            double err = fabs(y[c] - want);
            cr_assert(err <= tol,
                      "sgemv_rows k %d n %d threads %s call %d: y[%d] = %.9g, want %.9g (error %.3g, "
                      "tolerance %.3g)",
                      k, n, threads_text(), round, c, (double)y[c], want, err, tol);
        }
        cr_assert(ybuf[0] == GUARD && ybuf[n + 1] == GUARD, "sgemv_rows k %d n %d: wrote outside y", k, n);
    }
    free(x);
    free(w);
    free(ybuf);
    free(y0);
    free(xw);
    free(t);
}

static void gemv_sizes(void)
{
    static const int sizes[][2] = {{1, 1},     {3, 5},     {4, 16},    {7, 33},    {100, 10},
                                   {255, 255}, {1600, 64}, {784, 256}, {1603, 70}, {4099, 17}};
    for (int s = 0; s < COUNT(sizes); s++)
        check_gemv(sizes[s][0], sizes[s][1]);
}

Test(sgemv_rows, sizes_1_thread)
{
    use("1", 0);
    gemv_sizes();
}

Test(sgemv_rows, sizes_2_threads)
{
    use("2", 0);
    gemv_sizes();
}

Test(sgemv_rows, sizes_3_threads)
{
    use("3", 0);
    gemv_sizes();
}

/* The per-thread partial sums are shared by GEMVs and products split by
 * depth: alternate them, growing and shrinking, and check each result. */
Test(sgemv_rows, partials_shared_with_depth_split)
{
    use("2", 0);
    /* products of at least 4M multiply-adds, which the pool splits */
    run(cgrt_sgemm, 1, 0, 16, 16, 20000, 0.5f, 7, 1, "depth split"); /* partials of 256 */
    check_gemv(1600, 64);
    check_gemv(784, 256);
    run(cgrt_sgemm, 1, 0, 8, 40, 16384, 0.0f, 0, 0, "depth split"); /* partials of 320 */
    check_gemv(280, 300);                                           /* within them */
    run(cgrt_sgemm, 0, 1, 12, 20, 20000, 1.0f, 7, 1, "depth split");
    check_gemv(200, 400); /* grows them to 400 */
    check_gemv(1600, 64);
}

/* cgrt_sum_rows: y[c] = the sum of x's rows, overwriting y (which starts as
 * NaN), on small sizes the caller sums alone and on large ones split with
 * partial sums (a bias gradient over a batch of 64 26x26 maps of 32). */
static void check_sum_rows(int rows, int cols)
{
    float *x = alloc_floats((long)rows * cols), *ybuf = alloc_floats(cols + 2), *y = ybuf + 1;
    double *want = alloc_doubles(cols), *t = alloc_doubles(cols);
    seed((uint64_t)rows * 31 + (uint64_t)cols);
    fill(x, rows, cols, cols);
    ybuf[0] = ybuf[cols + 1] = GUARD;
    for (int c = 0; c < cols; c++) {
        y[c] = NAN;
        want[c] = t[c] = 0.0;
    }
    for (long r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            want[c] += x[r * cols + c];
            t[c] += fabs(x[r * cols + c]);
        }
    cgrt_sum_rows(rows, cols, x, y);
    for (int c = 0; c < cols; c++) {
        double err = fabs(y[c] - want[c]), tol = 1e-5 * t[c] + 1e-6;
        cr_assert(err <= tol, "sum_rows rows %d cols %d threads %s: y[%d] = %.9g, want %.9g (error %.3g)", rows, cols,
                  threads_text(), c, (double)y[c], want[c], err);
    }
    cr_assert(ybuf[0] == GUARD && ybuf[cols + 1] == GUARD, "sum_rows rows %d cols %d: wrote outside y", rows, cols);
    free(x);
    free(ybuf);
    free(want);
    free(t);
}

static void sum_rows_sizes(void)
{
    static const int sizes[][2] = {{1, 1}, {3, 10}, {7, 33}, {7744, 64}, {43264, 32}, {4099, 17}};
    for (int s = 0; s < COUNT(sizes); s++)
        check_sum_rows(sizes[s][0], sizes[s][1]);
}

Test(sum_rows, sizes_1_thread)
{
    use("1", 0);
    sum_rows_sizes();
}

Test(sum_rows, sizes_2_threads)
{
    use("2", 0);
    sum_rows_sizes();
}

/* ---- the pool on a busy machine ----------------------------------------------------- */

/* The pool's size from CGRAD_THREADS, the affinity mask's CPU count and the
 * text of cgroup v2's cpu.max or v1's cpu.cfs_quota_us and cpu.cfs_period_us;
 * text that is not a quota is ignored, an explicit thread count wins. */
Test(pool_size, from_env_affinity_and_quota)
{
    static const struct {
        const char *env;
        int cpus;
        const char *cpu_max, *cfs_quota, *cfs_period;
        int want;
    } cases[] = {
        {NULL, 2, NULL, NULL, NULL, 2},
        {NULL, 1, NULL, NULL, NULL, 1},              /* taskset -c 0 */
        {NULL, 0, NULL, NULL, NULL, 1},              /* a mask that could not be read */
        {NULL, 64, NULL, NULL, NULL, 8},             /* at most 8 */
        {NULL, 4, "max 100000\n", NULL, NULL, 4},    /* v2 without a quota */
        {NULL, 4, "100000 100000\n", NULL, NULL, 1}, /* one CPU's worth */
        {NULL, 4, "50000 100000\n", NULL, NULL, 1},  /* half a CPU: still one thread */
        {NULL, 4, "150000 100000\n", NULL, NULL, 2}, /* 1.5 CPUs: rounded up */
        {NULL, 4, "200000 100000", NULL, NULL, 2},
        {NULL, 2, "800000 100000\n", NULL, NULL, 2}, /* a quota above the mask */
        {NULL, 4, NULL, "-1\n", "100000\n", 4},      /* v1 without a quota */
        {NULL, 4, NULL, "250000\n", "100000\n", 3},
        {NULL, 8, "300000 100000\n", "100000\n", "100000\n", 1}, /* both set: the smaller */
        {NULL, 8, "100000 100000\n", "300000\n", "100000\n", 1},
        {NULL, 4, "", NULL, NULL, 4}, /* garbage: ignored */
        {NULL, 4, "max\n", NULL, NULL, 4},
        {NULL, 4, "banana 100000\n", NULL, NULL, 4},
        {NULL, 4, "100000\n", NULL, NULL, 4},
        {NULL, 4, "100000 0\n", NULL, NULL, 4},
        {NULL, 4, "-5 100000\n", NULL, NULL, 4},
        {NULL, 4, "100000 100000 7\n", NULL, NULL, 4},
        {NULL, 4, "1e5 1e5\n", NULL, NULL, 4},
        {NULL, 4, "99999999999999999999999 100000\n", NULL, NULL, 4},
        {NULL, 4, "\x01\xff\n", NULL, NULL, 4},
        {NULL, 4, NULL, "abc\n", "100000\n", 4},
        {NULL, 4, NULL, "100000\n", NULL, 4},
        {NULL, 4, NULL, "100000\n", "0\n", 4},
        {NULL, 4, NULL, "100000 5\n", "100000\n", 4},
        {"1", 4, NULL, NULL, NULL, 1}, /* CGRAD_THREADS wins */
        {"3", 1, NULL, NULL, NULL, 3},
        {"3", 4, "100000 100000\n", NULL, NULL, 3},
        {" 2\n", 1, NULL, NULL, NULL, 2},
        {"12", 2, NULL, NULL, NULL, 8},
        {"0", 2, NULL, NULL, NULL, 2}, /* not a count: ignored */
        {"-1", 2, NULL, NULL, NULL, 2},
        {"two", 2, NULL, NULL, NULL, 2},
        {"2x", 1, NULL, NULL, NULL, 1},
        {"", 2, NULL, NULL, NULL, 2},
    };
    for (int i = 0; i < COUNT(cases); i++) {
        double quota = gemm_quota_cpus(cases[i].cpu_max, cases[i].cfs_quota, cases[i].cfs_period);
        int got = gemm_pool_size(cases[i].env, cases[i].cpus, quota);
        cr_expect_eq(got, cases[i].want,
                     "case %d: CGRAD_THREADS %s, %d CPUs, cpu.max \"%s\", cfs \"%s\" / \"%s\" (quota %g CPUs): %d "
                     "threads, want %d",
                     i, cases[i].env ? cases[i].env : "unset", cases[i].cpus, cases[i].cpu_max ? cases[i].cpu_max : "-",
                     cases[i].cfs_quota ? cases[i].cfs_quota : "-", cases[i].cfs_period ? cases[i].cfs_period : "-",
                     quota, got, cases[i].want);
    }
}

/* Pins this process to the first CPU of its mask; threads started later
 * (the pool's) inherit it. */
static void pin_one_cpu(void)
{
    cpu_set_t set;
    int cpu = 0;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &set))
        cpu++;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    cr_assert_eq(sched_setaffinity(0, sizeof set, &set), 0, "cannot pin the test to CPU %d", cpu);
}

/* A whole number in [-3, 3]: sums of their products are exact in float in
 * any order, so every split of a product gives the same C. */
static float small_int(void)
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((int)((lcg_state >> 33) % 7) - 3);
}

/* One product of whole numbers through cgrt_sgemm (beta 0 over NaN, or 1
 * over whole numbers), compared exactly with a loop. */
static void exact_product(int ta, int tb, int m, int n, int k, float beta)
{
    int lda = ta ? m : k, ldb = tb ? k : n;
    float *a = alloc_floats((long)m * k), *b = alloc_floats((long)k * n), *c = alloc_floats((long)m * n);
    double *want = alloc_doubles((long)m * n);
    seed((uint64_t)m * 131 + (uint64_t)n * 17 + (uint64_t)k + (uint64_t)(ta * 2 + tb));
    for (long i = 0; i < (long)m * k; i++)
        a[i] = small_int();
    for (long i = 0; i < (long)k * n; i++)
        b[i] = small_int();
    for (long i = 0; i < (long)m * n; i++)
        c[i] = beta == 0.0f ? NAN : small_int();
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            long long s = beta == 0.0f ? 0 : (long long)c[(long)i * n + j];
            for (int q = 0; q < k; q++)
                s += (long long)(ta ? a[(long)q * lda + i] : a[(long)i * lda + q]) *
                     (long long)(tb ? b[(long)j * ldb + q] : b[(long)q * ldb + j]);
            want[(long)i * n + j] = (double)s;
        }
    cgrt_sgemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, n);
    for (long i = 0; i < (long)m * n; i++)
        cr_assert(c[i] == want[i], "ta %d tb %d m %d n %d k %d beta %g threads %s: C[%ld][%ld] = %.9g, want %.9g", ta,
                  tb, m, n, k, (double)beta, threads_text(), i / n, i % n, (double)c[i], want[i]);
    free(a);
    free(b);
    free(c);
    free(want);
}

/* A bias gradient of whole numbers through cgrt_sum_rows, compared exactly. */
static void exact_sum_rows(int rows, int cols)
{
    float *x = alloc_floats((long)rows * cols), *y = alloc_floats(cols);
    seed((uint64_t)rows * 7 + (uint64_t)cols);
    for (long i = 0; i < (long)rows * cols; i++)
        x[i] = small_int();
    cgrt_sum_rows(rows, cols, x, y);
    for (int c = 0; c < cols; c++) {
        long long s = 0;
        for (long r = 0; r < rows; r++)
            s += (long long)x[r * cols + c];
        cr_assert(y[c] == (float)s, "sum_rows rows %d cols %d threads %s: y[%d] = %.9g, want %lld", rows, cols,
                  threads_text(), c, (double)y[c], s);
    }
    free(x);
    free(y);
}

/* One round of the jobs the pool splits (products by rows, columns and
 * depth, each over 4M multiply-adds; a bias gradient; a parallel loop),
 * each checked exactly. With caller_only, every piece of the loop must run
 * on the calling thread. */
static void pool_round(int threads, int caller_only)
{
    exact_product(0, 0, 600, 64, 128, 0.0f); /* rows */
    exact_product(1, 1, 600, 64, 128, 1.0f); /* rows */
    exact_product(0, 1, 64, 600, 128, 1.0f); /* columns */
    exact_product(1, 0, 64, 600, 128, 0.0f); /* columns */
    exact_product(1, 0, 32, 32, 8192, 0.0f); /* depth */
    exact_product(0, 1, 24, 40, 8192, 1.0f); /* depth */
    exact_sum_rows(4096, 64);
    cover cv;
    memset(&cv, 0, sizeof cv);
    cv.count = 1000;
    cv.grain = 10;
    cv.hits = calloc(1000, sizeof(int));
    cr_assert_not_null(cv.hits);
    cgrt_parallel_for(cv.count, cv.grain, cover_body, &cv);
    cr_assert_eq(cv.calls, threads, "a loop ran %d pieces on %d threads", cv.calls, threads);
    for (long i = 0; i < cv.count; i++)
        cr_assert_eq(cv.hits[i], 1, "index %ld of the loop ran %d times", i, cv.hits[i]);
    for (int c = 0; caller_only && c < cv.calls; c++)
        cr_assert(pthread_equal(cv.thread[c], pthread_self()), "piece %d ran on a worker that was held", c);
    free(cv.hits);
}

/* The pool's sizes that ParameterizedTest runs, unpinned. */
ParameterizedTestParameters(pool, exact_results)
{
    static int threads[] = {1, 2, 3, 4, 8};
    return cr_make_param_array(int, threads, sizeof threads / sizeof threads[0]);
}

ParameterizedTest(int *threads, pool, exact_results)
{
    char text[16];
    snprintf(text, sizeof text, "%d", *threads);
    use(text, 0);
    cr_assert_eq(pool_threads(), *threads);
    for (int r = 0; r < 3; r++)
        pool_round(*threads, 0);
}

/* Pinned to one CPU (taskset -c 0) the pool has one thread. */
Test(pinned, default_pool_is_one_thread)
{
    cr_assert_eq(unsetenv("CGRAD_THREADS"), 0);
    pin_one_cpu();
    cr_assert_eq(pool_threads(), 1, "pinned to one CPU, the pool has %d threads", pool_threads());
    pool_round(1, 0);
}

/* Text that is not a thread count is ignored: the mask decides. */
Test(pinned, garbage_threads_ignored)
{
    use("many", 0);
    pin_one_cpu();
    cr_assert_eq(pool_threads(), 1);
}

/* An explicit CGRAD_THREADS wins over the mask: three threads take turns on
 * one CPU, and every result is exact. */
Test(pinned, three_threads_on_one_cpu)
{
    use("3", 0);
    pin_one_cpu();
    cr_assert_eq(pool_threads(), 3);
    for (int r = 0; r < 10; r++)
        pool_round(3, 0);
}

/* The ids of this process's threads (at most max); returns their count. */
static int list_tasks(int *tids, int max)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    cr_assert_not_null(d, "cannot list /proc/self/task");
    while ((e = readdir(d)) && n < max)
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
            tids[n++] = atoi(e->d_name);
    closedir(d);
    return n;
}

/* The threads the pool started: those now running that were not in before[]. */
static int pool_workers(const int *before, int nbefore, int *workers, int max)
{
    int now[64], n = list_tasks(now, 64), w = 0;
    for (int i = 0; i < n; i++) {
        int old = 0;
        for (int j = 0; j < nbefore; j++)
            old |= now[i] == before[j];
        if (!old && w < max)
            workers[w++] = now[i];
    }
    return w;
}

/* A thread's scheduler state from /proc/self/task/TID/stat ('R', 'S', ...); '?' when unreadable. */
static char task_state(int tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* the name in parentheses may hold anything */
    return paren && paren[1] == ' ' ? paren[2] : '?';
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Idle workers sleep: after a round of jobs every worker is soon in state
 * 'S' (asleep), not 'R' (spinning). Polled for up to 10 s, so a slow or
 * loaded machine only makes it wait longer. */
Test(pool, idle_workers_sleep)
{
    int before[64], nbefore = list_tasks(before, 64), workers[8];
    use("3", 0);
    pool_round(3, 0);
    int nw = pool_workers(before, nbefore, workers, 8);
    cr_assert_eq(nw, 2, "the pool of 3 threads started %d workers", nw);
    char states[8] = {0};
    for (int tries = 0; tries < 1000; tries++) {
        int asleep = 0;
        for (int w = 0; w < nw; w++)
            asleep += (states[w] = task_state(workers[w])) == 'S';
        if (asleep == nw)
            return;
        sleep_ms(10);
    }
    cr_assert_fail("the pool's idle workers did not sleep within 10 s: states %c %c", states[0], states[1]);
}

static int held_count, release_held;

/* SIGUSR1 on a worker: holds it here (as a preempted thread is held) until
 * release_held. */
static void hold_worker(int sig)
{
    (void)sig;
    __atomic_add_fetch(&held_count, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&release_held, __ATOMIC_SEQ_CST)) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Workers that cannot run (held in a signal handler, as on a machine whose
 * cores are busy) take no piece: the caller runs every piece itself and
 * never waits for them; released, they join in again. Before work stealing
 * the caller waited for every worker to check in, and this test hung. The
 * time limit only catches such a hang: the test takes 7 s alone under the
 * sanitizers and over 60 s on a loaded machine, so it is generous. */
Test(pool, held_workers_leave_their_pieces_to_the_caller, .timeout = 300)
{
    int before[64], nbefore = list_tasks(before, 64), workers[8];
    use("3", 0);
    cr_assert_eq(pool_threads(), 3);
    int nw = pool_workers(before, nbefore, workers, 8);
    cr_assert_eq(nw, 2, "the pool of 3 threads started %d workers", nw);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = hold_worker;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    for (int w = 0; w < nw; w++)
        cr_assert_eq(syscall(SYS_tgkill, getpid(), workers[w], SIGUSR1), 0);
    for (int tries = 0; tries < 2000 && __atomic_load_n(&held_count, __ATOMIC_SEQ_CST) < nw; tries++)
        sleep_ms(5);
    cr_assert_eq(__atomic_load_n(&held_count, __ATOMIC_SEQ_CST), nw, "the workers did not enter the handler");
    for (int r = 0; r < 5; r++)
        pool_round(3, 1);
    __atomic_store_n(&release_held, 1, __ATOMIC_SEQ_CST);
    for (int r = 0; r < 5; r++)
        pool_round(3, 0);
}
