/* gemm.c: the GEMM shim of host-flavour code (see cgrad_gemm.h).
 *
 * A pool of T - 1 worker threads waits for jobs; the caller runs part 0 of a
 * job itself and the workers parts 1..T-1. Workers spin for a while after a
 * job (the next GEMM of a training step comes within microseconds), then
 * sleep on a condition variable. */
#include "cgrad_gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 8
#define SPIN_LIMIT (1 << 22)          /* polls (a few ms) before a worker sleeps */
#define MIN_PARALLEL_MACS (1L << 20)  /* smaller products (under ~10 us) run on the caller alone */
#define MIN_PARALLEL_GEMV (1L << 16)  /* a GEMV splits from 256 KB of weights: it is memory-bound */

/* One product, described once and run in parts. */
typedef struct job {
    int ta, tb, m, n, k, lda, ldb, ldc;
    const float *a, *b;
    float *c;
    float beta;
    int split_rows;            /* 1: parts are blocks of rows of C, 0: of columns */
    int gemv;                  /* 1: cgrt_sgemv_rows */
    void (*body)(void *arg, long lo, long hi);   /* cgrt_parallel_for */
    void *arg;
    long count, grain;
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
    float *partial[MAX_THREADS];   /* per-thread partial sums of a split GEMV */
    long partial_len;
} pool = {0, {0}, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, {0}, {0}, 0};

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

/* Runs part p of job j. */
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
    if (j->gemv) {   /* rows [lo, hi) of w: part 0 adds into y, part p into its own partial sum */
        part_range(j->k, parts, p, 4, &lo, &hi);
        long n = j->n;
        float *restrict y = p == 0 ? j->c : pool.partial[p];
        const float *restrict x = j->a;
        if (p > 0)
            for (long c = 0; c < n; c++)
                y[c] = 0.0f;
        int r = lo;
        for (; r + 4 <= hi; r += 4) {
            const float *restrict w0 = j->b + r * n, *restrict w1 = w0 + n, *restrict w2 = w1 + n,
                              *restrict w3 = w2 + n;
            for (long c = 0; c < n; c++)
                y[c] += x[r] * w0[c] + x[r + 1] * w1[c] + x[r + 2] * w2[c] + x[r + 3] * w3[c];
        }
        for (; r < hi; r++)
            for (long c = 0; c < n; c++)
                y[c] += x[r] * j->b[r * n + c];
        return;
    }
    enum CBLAS_TRANSPOSE ta = j->ta ? CblasTrans : CblasNoTrans, tb = j->tb ? CblasTrans : CblasNoTrans;
    if (j->split_rows) {   /* rows lo..hi of C need rows lo..hi of op(A) */
        part_range(j->m, parts, p, 4, &lo, &hi);
        if (hi > lo)
            cblas_sgemm(CblasRowMajor, ta, tb, hi - lo, j->n, j->k, 1.0f, j->a + (j->ta ? lo : (long)lo * j->lda),
                        j->lda, j->b, j->ldb, j->beta, j->c + (long)lo * j->ldc, j->ldc);
    } else {               /* columns lo..hi of C need columns lo..hi of op(B) */
        part_range(j->n, parts, p, 16, &lo, &hi);
        if (hi > lo)
            cblas_sgemm(CblasRowMajor, ta, tb, j->m, hi - lo, j->k, 1.0f, j->a, j->lda,
                        j->b + (j->tb ? (long)lo * j->ldb : lo), j->ldb, j->beta, j->c + lo, j->ldc);
    }
}

/* A worker: waits for a new generation, runs its part, counts it done. */
static void *worker(void *arg)
{
    int p = (int)(long)arg;
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
        run_part(&pool.j, p, pool.threads);
        __atomic_add_fetch(&pool.done, 1, __ATOMIC_RELEASE);
    }
    return NULL;
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
    openblas_set_num_threads(1);
    pool.threads = 1;
    for (int p = 1; p < t; p++) {
        if (pthread_create(&pool.workers[p], NULL, worker, (void *)(long)p))
            break;
        pthread_detach(pool.workers[p]);
        pool.threads = p + 1;
    }
}

/* Runs job j on every thread of the pool and returns when all parts are done. */
static void pool_run(const job *j)
{
    pthread_once(&pool_once, pool_start);
    if (pool.threads == 1) {
        run_part(j, 0, 1);
        return;
    }
    pool.j = *j;
    pool.busy = 1;
    __atomic_store_n(&pool.done, 0, __ATOMIC_RELAXED);
    pthread_mutex_lock(&pool.mu);
    __atomic_add_fetch(&pool.gen, 1, __ATOMIC_RELEASE);
    if (pool.sleepers)
        pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    run_part(j, 0, pool.threads);
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

void cgrt_sgemm(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                float *c, int ldc)
{
    job j = {ta, tb, m, n, k, lda, ldb, ldc, a, b, c, beta, m > n, 0, NULL, NULL, 0, 0};
    if ((long)m * n * k < MIN_PARALLEL_MACS) {
        pthread_once(&pool_once, pool_start);
        run_part(&j, 0, 1);
        return;
    }
    pool_run(&j);
}

void cgrt_sgemm_here(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                     float beta, float *c, int ldc)
{
    job j = {ta, tb, m, n, k, lda, ldb, ldc, a, b, c, beta, 1, 0, NULL, NULL, 0, 0};
    pthread_once(&pool_once, pool_start);
    if (!pool.busy) {   /* a loop too short to split ran whole on the caller: the product may use the pool */
        cgrt_sgemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    run_part(&j, 0, 1);
}

void cgrt_sgemv_rows(int k, int n, const float *x, const float *w, float *y)
{
    job j = {0, 0, 1, n, k, 0, 0, 0, x, w, y, 1.0f, 0, 1, NULL, NULL, 0, 0};
    pthread_once(&pool_once, pool_start);
    if ((long)n * k < MIN_PARALLEL_GEMV || pool.threads == 1) {
        run_part(&j, 0, 1);
        return;
    }
    if (pool.partial_len < n) {   /* grown once, by the caller, before any worker reads it */
        for (int p = 1; p < pool.threads; p++) {
            float *buf = realloc(pool.partial[p], sizeof(float) * (size_t)n);
            if (!buf) {
                run_part(&j, 0, 1);
                return;
            }
            pool.partial[p] = buf;
        }
        pool.partial_len = n;
    }
    pool_run(&j);
    for (int p = 1; p < pool.threads; p++)
        for (int c = 0; c < n; c++)
            y[c] += pool.partial[p][c];
}
