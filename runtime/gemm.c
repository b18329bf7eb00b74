/* gemm.c: the GEMM shim of host-flavour code (see cgrad_gemm.h).
 *
 * A pool of T - 1 worker threads waits for jobs. A job is cut into T
 * pieces; the caller and the workers each take the next piece not yet
 * taken until none is left, so when a worker is late to wake the caller
 * runs its piece too (it still waits for the worker to check in before the
 * next job). Finer pieces were measured slower on the shapes of a training
 * step. Workers spin for a while after a job (the next GEMM of a training
 * step comes within microseconds), then sleep on a condition variable. */
#include "cgrad_gemm.h"
#include "gemm_internal.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 8
#define SPIN_LIMIT (1 << 22)          /* polls (a few ms) before a worker sleeps */
#define MIN_PARALLEL_MACS (1L << 22)  /* smaller products (under ~40 us) run on the caller alone */
#define MIN_PARALLEL_GEMV (1L << 16)  /* a GEMV splits from 256 KB of weights: it is memory-bound */

/* How a product is cut into pieces: by blocks of rows of C, of columns of C,
 * or of the depth k (each piece then sums into its own partial C, added up
 * at the end: for products whose k is far larger than C, such as the
 * gradient of a filter, summed over every position of a batch). */
enum { SPLIT_ROWS, SPLIT_COLS, SPLIT_DEPTH };

/* One product, described once and run in parts. */
typedef struct job {
    int ta, tb, m, n, k, lda, ldb, ldc;
    const float *a, *b;
    float *c;
    float beta;
    int split;                 /* how a product is cut: SPLIT_ROWS, SPLIT_COLS or SPLIT_DEPTH */
    int gemv;                  /* 1: cgrt_sgemv_rows */
    void (*body)(void *arg, long lo, long hi);   /* cgrt_parallel_for */
    void *arg;
    long count, grain;
    int pieces;                /* the job is cut into this many pieces */
    int next;                  /* the next piece not yet taken */
} job;

static struct {
    int threads;               /* 0: not started */
    pthread_t workers[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned gen;              /* job generation, bumped per job */
    int done;                  /* parts finished by workers */
    int sleepers;
    int busy;                  /* a job is running: products called from its pieces stay on their thread */
    job j;
    float *partial[MAX_THREADS];   /* per-piece partial sums of a GEMV or of a product split by depth */
    long partial_len;
    int blas_only;             /* CGRAD_GEMM=openblas: every product through OpenBLAS */
} pool = {0, {0}, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, {0}, {0}, 0, 0};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/* One poll of a spin-wait. No PAUSE instruction: under a hypervisor with
 * pause-loop exiting, PAUSE in a tight loop traps to the host and turns a
 * microsecond wait into tens of microseconds. */
static void cpu_relax(void)
{
    __asm__ __volatile__("" ::: "memory");
}

/* [lo, hi) of part p of `count` in `parts`, in multiples of `align`. */
static void part_range(int count, int parts, int p, int align, int *lo, int *hi)
{
    int blocks = (count + align - 1) / align;
    *lo = (int)((long)blocks * p / parts) * align;
    *hi = (int)((long)blocks * (p + 1) / parts) * align;
    if (*hi > count)
        *hi = count;
    if (*lo > count)
        *lo = count;
}

/* One product on the calling thread: the shim's own kernel where it runs,
 * OpenBLAS otherwise. */
static void product(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                    float *c, int ldc)
{
    if (!pool.blas_only && gemm_kernel_ready()) {
        gemm_kernel(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda,
                b, ldb, beta, c, ldc);
}

/* Runs piece p of job j cut into `parts` pieces. */
static void run_part(const job *j, int p, int parts)
{
    int lo, hi;
    if (j->body) {   /* a piece of a parallel loop, in multiples of the grain */
        long g = j->grain, blocks = (j->count + g - 1) / g, a = blocks * p / parts * g, b = blocks * (p + 1) / parts * g;
        if (b > j->count)
            b = j->count;
        if (b > a)
            j->body(j->arg, a, b);
        return;
    }
    if (j->gemv) {   /* rows [lo, hi) of w: piece 0 adds into y, piece p into its own partial sum */
        part_range(j->k, parts, p, 4, &lo, &hi);
        long n = j->n;
        float *restrict y = p == 0 ? j->c : pool.partial[p];
        const float *restrict x = j->a;   /* NULL: all ones (cgrt_sum_rows) */
        if (p > 0)
            for (long c = 0; c < n; c++)
                y[c] = 0.0f;
        long r = lo;
        for (; r + 4 <= hi; r += 4) {
            const float *restrict w0 = j->b + r * n, *restrict w1 = w0 + n, *restrict w2 = w1 + n,
                              *restrict w3 = w2 + n;
            if (x)
                for (long c = 0; c < n; c++)
                    y[c] += x[r] * w0[c] + x[r + 1] * w1[c] + x[r + 2] * w2[c] + x[r + 3] * w3[c];
            else
                for (long c = 0; c < n; c++)
                    y[c] += (w0[c] + w1[c]) + (w2[c] + w3[c]);
        }
        for (; r < hi; r++)
            for (long c = 0; c < n; c++)
                y[c] += (x ? x[r] : 1.0f) * j->b[r * n + c];
        return;
    }
    if (j->split == SPLIT_ROWS) {   /* rows lo..hi of C need rows lo..hi of op(A); whole tiles of 12 rows */
        part_range(j->m, parts, p, 12, &lo, &hi);
        if (hi > lo)
            product(j->ta, j->tb, hi - lo, j->n, j->k, j->a + (j->ta ? lo : (long)lo * j->lda), j->lda, j->b, j->ldb,
                    j->beta, j->c + (long)lo * j->ldc, j->ldc);
    } else if (j->split == SPLIT_COLS) {   /* columns lo..hi of C need columns lo..hi of op(B); tiles of 32 */
        part_range(j->n, parts, p, 32, &lo, &hi);
        if (hi > lo)
            product(j->ta, j->tb, j->m, hi - lo, j->k, j->a, j->lda, j->b + (j->tb ? (long)lo * j->ldb : lo), j->ldb,
                    j->beta, j->c + lo, j->ldc);
    } else {   /* depths lo..hi: piece 0 into C, piece p into its own partial C (ldc n) */
        part_range(j->k, parts, p, 16, &lo, &hi);
        float *c = p == 0 ? j->c : pool.partial[p];
        int ldc = p == 0 ? j->ldc : j->n;
        product(j->ta, j->tb, j->m, j->n, hi - lo, j->a + (j->ta ? (long)lo * j->lda : lo), j->lda,
                j->b + (j->tb ? lo : (long)lo * j->ldb), j->ldb, p == 0 ? j->beta : 0.0f, c, ldc);
    }
}

/* Takes the next piece of job j until none is left. */
static void run_pieces(job *j)
{
    int p;
    while ((p = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED)) < j->pieces)
        run_part(j, p, j->pieces);
}

/* A worker: waits for a new generation, runs pieces of its job, counts itself done. */
static void *worker(void *arg)
{
    (void)arg;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = __atomic_load_n(&pool.gen, __ATOMIC_ACQUIRE)) == seen) {
            if (++spins < SPIN_LIMIT) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&pool.mu);
            pool.sleepers++;
            while (__atomic_load_n(&pool.gen, __ATOMIC_ACQUIRE) == seen)
                pthread_cond_wait(&pool.cv, &pool.mu);
            pool.sleepers--;
            pthread_mutex_unlock(&pool.mu);
        }
        seen = g;
        run_pieces(&pool.j);
        __atomic_add_fetch(&pool.done, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* CGRAD_GEMM=openblas: every product through OpenBLAS. */
static int openblas_asked(void)
{
    const char *gemm = getenv("CGRAD_GEMM");
    return gemm && !strcmp(gemm, "openblas");
}

/* Starts the workers once; OpenBLAS itself then runs single-threaded. */
static void pool_start(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("CGRAD_THREADS");
    int t = env ? atoi(env) : (int)(cpus > 0 ? cpus : 1);
    if (t < 1)
        t = 1;
    if (t > MAX_THREADS)
        t = MAX_THREADS;
    pool.blas_only = openblas_asked();
    openblas_set_num_threads(1);
    pool.threads = 1;
    for (int p = 1; p < t; p++) {
        if (pthread_create(&pool.workers[p], NULL, worker, NULL))
            break;
        pthread_detach(pool.workers[p]);
        pool.threads = p + 1;
    }
}

/* Runs job j on every thread of the pool and returns when all pieces are
 * done. */
static void pool_run(const job *j)
{
    pthread_once(&pool_once, pool_start);
    if (pool.threads == 1) {
        run_part(j, 0, 1);
        return;
    }
    pool.j = *j;
    pool.j.pieces = pool.threads;
    pool.j.next = 0;
    pool.busy = 1;
    __atomic_store_n(&pool.done, 0, __ATOMIC_RELAXED);
    pthread_mutex_lock(&pool.mu);
    __atomic_add_fetch(&pool.gen, 1, __ATOMIC_RELEASE);
    if (pool.sleepers)
        pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    run_pieces(&pool.j);
    while (__atomic_load_n(&pool.done, __ATOMIC_ACQUIRE) < pool.threads - 1)
        cpu_relax();
    pool.busy = 0;
}

void cgrt_parallel_for(long count, long grain, void (*body)(void *arg, long lo, long hi), void *arg)
{
    job j = {0};
    j.body = body;
    j.arg = arg;
    j.count = count;
    j.grain = grain > 0 ? grain : 1;
    if (count < 2 * j.grain) {
        body(arg, 0, count);
        return;
    }
    pool_run(&j);
}

int cgrt_gemm_uses_openblas(void)
{
    return openblas_asked() || !gemm_kernel_ready();
}

/* Makes every piece's partial sum at least len floats long; 0 when out of
 * memory. Grown by the caller, before any worker reads them. */
static int grow_partials(long len)
{
    if (pool.partial_len >= len)
        return 1;
    for (int p = 1; p < pool.threads; p++) {
        float *buf = realloc(pool.partial[p], sizeof(float) * (size_t)len);
        if (!buf)
            return 0;
        pool.partial[p] = buf;
    }
    pool.partial_len = len;
    return 1;
}

void cgrt_sgemm(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                float *c, int ldc)
{
    job j = {ta, tb, m, n, k, lda, ldb, ldc, a, b, c, beta, m > n ? SPLIT_ROWS : SPLIT_COLS, 0, NULL, NULL, 0, 0, 0, 0};
    pthread_once(&pool_once, pool_start);
    if ((long)m * n * k < MIN_PARALLEL_MACS || pool.threads == 1) {
        run_part(&j, 0, 1);
        return;
    }
    if (k >= 8 * (m > n ? m : n) && grow_partials((long)m * n))
        j.split = SPLIT_DEPTH;
    pool_run(&j);
    if (j.split == SPLIT_DEPTH)
        for (int p = 1; p < pool.threads; p++)
            for (int i = 0; i < m; i++)
                for (int q = 0; q < n; q++)
                    c[(long)i * ldc + q] += pool.partial[p][(long)i * n + q];
}

void cgrt_sgemm_here(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                     float beta, float *c, int ldc)
{
    job j = {ta, tb, m, n, k, lda, ldb, ldc, a, b, c, beta, SPLIT_ROWS, 0, NULL, NULL, 0, 0, 0, 0};
    pthread_once(&pool_once, pool_start);
    if (!pool.busy) {   /* a loop too short to split ran whole on the caller: the product may use the pool */
        cgrt_sgemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    run_part(&j, 0, 1);
}

/* y += x W, or the sum of W's rows when x is NULL. */
static void gemv(int k, int n, const float *x, const float *w, float *y)
{
    job j = {0, 0, 1, n, k, 0, 0, 0, x, w, y, 1.0f, SPLIT_ROWS, 1, NULL, NULL, 0, 0, 0, 0};
    pthread_once(&pool_once, pool_start);
    if ((long)n * k < MIN_PARALLEL_GEMV || pool.threads == 1) {
        run_part(&j, 0, 1);
        return;
    }
    if (!grow_partials(n)) {
        run_part(&j, 0, 1);
        return;
    }
    pool_run(&j);
    for (int p = 1; p < pool.threads; p++)
        for (int c = 0; c < n; c++)
            y[c] += pool.partial[p][c];
}

void cgrt_sgemv_rows(int k, int n, const float *x, const float *w, float *y)
{
    gemv(k, n, x, w, y);
}

void cgrt_sum_rows(int rows, int cols, const float *x, float *y)
{
    for (int c = 0; c < cols; c++)
        y[c] = 0.0f;
    gemv(rows, cols, NULL, x, y);
}
