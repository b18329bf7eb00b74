/* gemm.c: the GEMM shim of host-flavour code (see cgrad_gemm.h).
 *
 * A pool of T - 1 worker threads waits for jobs. A job is cut into T
 * pieces; the caller and the workers each take the next piece not yet
 * taken until none is left, so a worker that is late to wake (its core is
 * busy with another program) leaves its piece to the caller, and the caller
 * only ever waits for pieces that a worker has already started. Finer
 * pieces were measured slower on the shapes of a training step.
 *
 * Waiting is bounded spinning, then sleeping: a worker polls for the next
 * job for SPIN_NS (the next GEMM of a training step comes within
 * microseconds), then sleeps on a futex (a condition variable elsewhere);
 * the caller polls for the pieces in flight as long, then sleeps too. On a
 * busy machine a spinning thread takes the core that another of the
 * program's threads (or another program) needs, so nothing spins longer.
 *
 * T is CGRAD_THREADS when it is a whole number, otherwise the CPUs the
 * process may run on (its affinity mask), fewer under a cgroup CPU quota
 * (gemm_pool_size). The workers start with the first job split. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT, syscall */
#include "cgrad_gemm.h"
#include "gemm_internal.h"

#include <cblas.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#define MAX_THREADS 8
#define SPIN_NS 50000L               /* how long a thread polls before it sleeps */
#define MIN_PARALLEL_MACS (1L << 22) /* smaller products (under ~40 us) run on the caller alone */
#define MIN_PARALLEL_GEMV (1L << 16) /* a GEMV splits from 256 KB of weights: it is memory-bound */

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
    int split;                                 /* how a product is cut: SPLIT_ROWS, SPLIT_COLS or SPLIT_DEPTH */
    int gemv;                                  /* 1: cgrt_sgemv_rows */
    void (*body)(void *arg, long lo, long hi); /* cgrt_parallel_for */
    void *arg;
    long count, grain;
} job;

/* The ticket of a job: its generation (bits 32 up), its number of pieces
 * (bits 24 to 31) and the next piece not yet taken (bits 0 to 23). Taking a
 * piece is one atomic increment, and a thread that takes one knows which
 * job it belongs to, however late it comes. */
#define TICKET(gen, pieces) ((unsigned long long)(gen) << 32 | (unsigned long long)(pieces) << 24)
#define TICKET_PIECES(t) ((int)((t) >> 24 & 0xff))
#define TICKET_NEXT(t) ((int)((t)&0xffffff))

static struct {
    int threads; /* 0: not sized yet */
    int started; /* the workers are running */
    pthread_t workers[MAX_THREADS];
    unsigned gen;              /* job generation, bumped per job; workers sleep on it */
    unsigned long long ticket; /* the current job's ticket */
    unsigned done;             /* pieces of the current job finished; the caller sleeps on it */
    int sleepers;              /* workers asleep (or about to be) on gen */
    int caller_asleep;         /* the caller is asleep (or about to be) on done */
    int busy;                  /* a job is running: products called from its pieces stay on their thread */
    job j;
    float *partial[MAX_THREADS]; /* per-piece partial sums of a GEMV or of a product split by depth */
    long partial_len;
    int blas_only; /* CGRAD_GEMM=openblas: every product through OpenBLAS */
} pool;

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/* One poll of a spin-wait. No PAUSE instruction: under a hypervisor with
 * pause-loop exiting, PAUSE in a tight loop traps to the host and turns a
 * microsecond wait into tens of microseconds. */
static void cpu_relax(void)
{
    __asm__ __volatile__("" ::: "memory");
}

/* Nanoseconds of a monotonic clock. */
static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Polls *word for up to SPIN_NS while it equals `value`; returns its last
 * value (still `value` when the time ran out). */
static unsigned spin_while(const unsigned *word, unsigned value)
{
    unsigned v;
    long long start = 0;
    for (int polls = 0; (v = __atomic_load_n(word, __ATOMIC_ACQUIRE)) == value; polls++) {
        cpu_relax();
        if ((polls & 255) == 255) { /* reading the clock costs about as much as 100 polls */
            long long t = now_ns();
            if (!start)
                start = t;
            else if (t - start > SPIN_NS)
                break;
        }
    }
    return v;
}

#if defined(__linux__)
/* Sleeps while *word equals `value` (it may also wake for no reason). */
static void sleep_while(unsigned *word, unsigned value)
{
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

/* Wakes every thread asleep on word. */
static void wake_all(unsigned *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#else
static pthread_mutex_t sleep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sleep_cv = PTHREAD_COND_INITIALIZER;

static void sleep_while(unsigned *word, unsigned value)
{
    pthread_mutex_lock(&sleep_mu);
    if (__atomic_load_n(word, __ATOMIC_SEQ_CST) == value)
        pthread_cond_wait(&sleep_cv, &sleep_mu);
    pthread_mutex_unlock(&sleep_mu);
}

static void wake_all(unsigned *word)
{
    (void)word;
    pthread_mutex_lock(&sleep_mu); /* a sleeper is either before its check or in the wait */
    pthread_cond_broadcast(&sleep_cv);
    pthread_mutex_unlock(&sleep_mu);
}
#endif

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

/* 1 when the shim's own kernel runs on this thread. The library is built
 * for the baseline of the binaries that link it and only gemm_kernel.c for
 * AVX-512 (x86-64-v4), so the CPU is asked at run time: a binary built for
 * x86-64-v3 takes the kernel on an AVX-512 machine and OpenBLAS elsewhere. */
static int kernel_runs(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl") ||
        !__builtin_cpu_supports("avx512cd"))
        return 0;
#endif
    return gemm_kernel_ready();
}

/* One product on the calling thread: the shim's own kernel where it runs,
 * OpenBLAS otherwise. */
static void product(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                    float *c, int ldc)
{
    if (!pool.blas_only && kernel_runs()) {
        gemm_kernel(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b,
                ldb, beta, c, ldc);
}

/* The library is built for the baseline; its one loop that does the
 * arithmetic itself (batch-1 products and bias gradients) is compiled
 * again for x86-64-v3 and v4, and the loader picks the copy the CPU runs.
 * (Not static: clang 14 drops a static function's v3 copy.) */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__ELF__)
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VECTOR_CLONES
#endif

/* y += rows [lo, hi) of w (n floats each) weighted by x, or summed when x is
 * NULL, four rows at a time. */
VECTOR_CLONES void gemm_gemv_rows(long lo, long hi, long n, const float *restrict x, const float *restrict w,
                                  float *restrict y)
{
    long r = lo;
    for (; r + 4 <= hi; r += 4) {
        const float *restrict w0 = w + r * n, *restrict w1 = w0 + n, *restrict w2 = w1 + n, *restrict w3 = w2 + n;
        if (x)
            for (long c = 0; c < n; c++)
                y[c] += x[r] * w0[c] + x[r + 1] * w1[c] + x[r + 2] * w2[c] + x[r + 3] * w3[c];
        else
            for (long c = 0; c < n; c++)
                y[c] += (w0[c] + w1[c]) + (w2[c] + w3[c]);
    }
    for (; r < hi; r++)
        for (long c = 0; c < n; c++)
            y[c] += (x ? x[r] : 1.0f) * w[r * n + c];
}

/* Runs piece p of job j cut into `parts` pieces. */
static void run_part(const job *j, int p, int parts)
{
    int lo, hi;
    if (j->body) { /* a piece of a parallel loop, in multiples of the grain */
        long g = j->grain, blocks = (j->count + g - 1) / g, a = blocks * p / parts * g,
             b = blocks * (p + 1) / parts * g;
        if (b > j->count)
            b = j->count;
        if (b > a)
            j->body(j->arg, a, b);
        return;
    }
    if (j->gemv) { /* rows [lo, hi) of w: piece 0 adds into y, piece p into its own partial sum */
        part_range(j->k, parts, p, 4, &lo, &hi);
        long n = j->n;
        float *restrict y = p == 0 ? j->c : pool.partial[p];
        const float *restrict x = j->a; /* NULL: all ones (cgrt_sum_rows) */
        if (p > 0)
            for (long c = 0; c < n; c++)
                y[c] = 0.0f;
        gemm_gemv_rows(lo, hi, n, x, j->b, y);
        return;
    }
    if (j->split == SPLIT_ROWS) { /* rows lo..hi of C need rows lo..hi of op(A); whole tiles of 12 rows */
        part_range(j->m, parts, p, 12, &lo, &hi);
        if (hi > lo)
            product(j->ta, j->tb, hi - lo, j->n, j->k, j->a + (j->ta ? lo : (long)lo * j->lda), j->lda, j->b, j->ldb,
                    j->beta, j->c + (long)lo * j->ldc, j->ldc);
    } else if (j->split == SPLIT_COLS) { /* columns lo..hi of C need columns lo..hi of op(B); tiles of 32 */
        part_range(j->n, parts, p, 32, &lo, &hi);
        if (hi > lo)
            product(j->ta, j->tb, j->m, hi - lo, j->k, j->a, j->lda, j->b + (j->tb ? (long)lo * j->ldb : lo), j->ldb,
                    j->beta, j->c + lo, j->ldc);
    } else { /* depths lo..hi: piece 0 into C, piece p into its own partial C (ldc n) */
        part_range(j->k, parts, p, 16, &lo, &hi);
        float *c = p == 0 ? j->c : pool.partial[p];
        int ldc = p == 0 ? j->ldc : j->n;
        product(j->ta, j->tb, j->m, j->n, hi - lo, j->a + (j->ta ? (long)lo * j->lda : lo), j->lda,
                j->b + (j->tb ? lo : (long)lo * j->ldb), j->ldb, p == 0 ? j->beta : 0.0f, c, ldc);
    }
}

/* Takes the next piece of the current job until none is left, counting
 * each one done (the last one wakes the caller if it sleeps). Returns when
 * no piece is left to take; others may still be running theirs. */
static void run_pieces(void)
{
    for (;;) {
        unsigned long long t = __atomic_fetch_add(&pool.ticket, 1, __ATOMIC_ACQUIRE);
        int pieces = TICKET_PIECES(t), p = TICKET_NEXT(t);
        if (p >= pieces)
            return;
        run_part(&pool.j, p, pieces);
        if (__atomic_add_fetch(&pool.done, 1, __ATOMIC_SEQ_CST) == (unsigned)pieces &&
            __atomic_load_n(&pool.caller_asleep, __ATOMIC_SEQ_CST))
            wake_all(&pool.done);
    }
}

/* A worker: waits for a new generation (polling, then asleep), takes
 * pieces of the job until none is left. */
static void *worker(void *arg)
{
    (void)arg;
    unsigned seen = 0;
    for (;;) {
        unsigned g = spin_while(&pool.gen, seen);
        while (g == seen) { /* no job for SPIN_NS: sleep until the caller posts one */
            __atomic_add_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
            if (__atomic_load_n(&pool.gen, __ATOMIC_SEQ_CST) == seen)
                sleep_while(&pool.gen, seen);
            __atomic_sub_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
            g = __atomic_load_n(&pool.gen, __ATOMIC_ACQUIRE);
        }
        seen = g;
        run_pieces();
    }
    return NULL;
}

/* CGRAD_GEMM=openblas: every product through OpenBLAS. */
static int openblas_asked(void)
{
    const char *gemm = getenv("CGRAD_GEMM");
    return gemm && !strcmp(gemm, "openblas");
}

/* Sizes the pool once; OpenBLAS itself then runs single-threaded. The
 * workers start with the first job that needs them, so a program whose
 * products all stay on the caller keeps a single thread. */
static void pool_start(void)
{
    pool.threads = gemm_pool_size(getenv("CGRAD_THREADS"), gemm_affinity_cpus(), gemm_cgroup_quota());
    pool.blas_only = openblas_asked();
    openblas_set_num_threads(1);
}

/* Starts the workers (fewer if the system refuses some). */
static void start_workers(void)
{
    int t = pool.threads;
    pool.threads = 1;
    for (int p = 1; p < t; p++) {
        if (pthread_create(&pool.workers[p], NULL, worker, NULL))
            break;
        pthread_detach(pool.workers[p]);
        pool.threads = p + 1;
    }
    pool.started = 1;
}

/* Runs job j on the pool and returns when all pieces are done. The caller
 * takes pieces like any worker, so it waits only for pieces that workers
 * have started. */
static void pool_run(const job *j)
{
    pthread_once(&pool_once, pool_start);
    if (!pool.started)
        start_workers();
    if (pool.threads == 1) {
        run_part(j, 0, 1);
        return;
    }
    int pieces = pool.threads;
    unsigned gen = pool.gen + 1;
    pool.j = *j;
    pool.busy = 1;
    __atomic_store_n(&pool.done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&pool.ticket, TICKET(gen, pieces), __ATOMIC_RELEASE);
    __atomic_store_n(&pool.gen, gen, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&pool.sleepers, __ATOMIC_SEQ_CST))
        wake_all(&pool.gen);
    run_pieces();
    for (unsigned d; (d = __atomic_load_n(&pool.done, __ATOMIC_ACQUIRE)) < (unsigned)pieces;) {
        if (spin_while(&pool.done, d) != d)
            continue;
        /* a worker's piece takes long: its core may be busy, so let it have ours */
        __atomic_store_n(&pool.caller_asleep, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&pool.done, __ATOMIC_SEQ_CST) == d)
            sleep_while(&pool.done, d);
        __atomic_store_n(&pool.caller_asleep, 0, __ATOMIC_SEQ_CST);
    }
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
    return openblas_asked() || !kernel_runs();
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
    job j = {ta, tb, m, n, k, lda, ldb, ldc, a, b, c, beta, m > n ? SPLIT_ROWS : SPLIT_COLS, 0, NULL, NULL, 0, 0};
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

void cgrt_sgemm_here(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc)
{
    job j = {ta, tb, m, n, k, lda, ldb, ldc, a, b, c, beta, SPLIT_ROWS, 0, NULL, NULL, 0, 0};
    pthread_once(&pool_once, pool_start);
    if (!pool.busy) { /* a loop too short to split ran whole on the caller: the product may use the pool */
        cgrt_sgemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    run_part(&j, 0, 1);
}

/* y += x W, or the sum of W's rows when x is NULL. */
static void gemv(int k, int n, const float *x, const float *w, float *y)
{
    job j = {0, 0, 1, n, k, 0, 0, 0, x, w, y, 1.0f, SPLIT_ROWS, 1, NULL, NULL, 0, 0};
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

/* ---- the pool's size ------------------------------------------------------------- */

/* Reads a whole number at *s (after blanks) into *v and moves *s past it;
 * 0 when there is none. */
static int read_number(const char **s, long long *v)
{
    char *end;
    long long x = strtoll(*s, &end, 10);
    if (end == *s || x == LLONG_MAX || x == LLONG_MIN)
        return 0;
    *v = x;
    *s = end;
    return 1;
}

/* 1 when s holds nothing but blanks. */
static int only_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return !*s;
}

/* quota / period CPUs when both are positive, 0 otherwise. */
static double quota_ratio(long long quota, long long period)
{
    return quota > 0 && period > 0 ? (double)quota / (double)period : 0.0;
}

double gemm_quota_cpus(const char *cpu_max, const char *cfs_quota, const char *cfs_period)
{
    double best = 0.0, q;
    long long quota, period;
    const char *s = cpu_max;
    if (s && read_number(&s, &quota) && read_number(&s, &period) && only_blanks(s) &&
        (q = quota_ratio(quota, period)) > 0)
        best = q;
    const char *sq = cfs_quota, *sp = cfs_period;
    if (sq && sp && read_number(&sq, &quota) && only_blanks(sq) && read_number(&sp, &period) && only_blanks(sp) &&
        (q = quota_ratio(quota, period)) > 0 && (best == 0.0 || q < best))
        best = q;
    return best;
}

int gemm_pool_size(const char *env, int cpus, double quota)
{
    long long t;
    const char *s = env;
    if (s && read_number(&s, &t) && only_blanks(s) && t >= 1) /* an explicit count wins */
        return t > MAX_THREADS ? MAX_THREADS : (int)t;
    t = cpus > 1 ? cpus : 1;
    if (quota > 0.0 && quota < (double)t) { /* 1.5 CPUs of quota: 2 threads */
        t = (long long)quota;
        if ((double)t < quota)
            t++;
    }
    return t > MAX_THREADS ? MAX_THREADS : (int)t;
}

int gemm_affinity_cpus(void)
{
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < INT_MAX ? (int)n : 1;
}

/* Reads a small file into buf (NUL-terminated); 0 when it cannot. */
static int read_small(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

/* The smallest CPU quota from directory dir (a cgroup under the hierarchy
 * mounted at mount) up to mount itself: cpu.max on cgroup v2, the two
 * cpu.cfs_* files on v1. 0 when none is set. */
static double quota_up(const char *mount, const char *dir0, int v2)
{
    char dir[512], path[600], a[128], b[128];
    double best = 0.0;
    size_t root = strlen(mount);
    if (snprintf(dir, sizeof dir, "%s%s", mount, dir0) >= (int)sizeof dir)
        snprintf(dir, sizeof dir, "%s", mount);
    for (;;) {
        double q = 0.0;
        if (v2) {
            snprintf(path, sizeof path, "%s/cpu.max", dir);
            if (read_small(path, a, sizeof a))
                q = gemm_quota_cpus(a, NULL, NULL);
        } else {
            snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
            if (read_small(path, a, sizeof a)) {
                snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
                if (read_small(path, b, sizeof b))
                    q = gemm_quota_cpus(NULL, a, b);
            }
        }
        if (q > 0.0 && (best == 0.0 || q < best))
            best = q;
        char *slash = strrchr(dir, '/');
        if (strlen(dir) <= root || !slash || slash < dir + root)
            break;
        *slash = '\0'; /* up one level */
    }
    return best;
}

double gemm_cgroup_quota(void)
{
    char text[4096], *line, *save = NULL;
    double best = 0.0, q;
    if (!read_small("/proc/self/cgroup", text, sizeof text))
        snprintf(text, sizeof text, "0::/\n");
    /* each line is ID:CONTROLLERS:PATH; v2's is 0::PATH, v1's cpu controller names "cpu" in its list */
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/')
            continue;
        *c2 = '\0';
        const char *controllers = c1 + 1, *path = c2 + 1;
        if (!strcmp(line, "0") && !*controllers) {
            q = quota_up("/sys/fs/cgroup", path, 1);
        } else {
            int cpu = 0;
            for (const char *p = controllers; *p;) {
                size_t n = strcspn(p, ",");
                cpu |= n == 3 && !strncmp(p, "cpu", 3);
                p += n + (p[n] == ',');
            }
            if (!cpu)
                continue;
            q = quota_up("/sys/fs/cgroup/cpu", path, 0);
            double q2 = quota_up("/sys/fs/cgroup/cpu,cpuacct", path, 0);
            if (q2 > 0.0 && (q == 0.0 || q2 < q))
                q = q2;
        }
        if (q > 0.0 && (best == 0.0 || q < best))
            best = q;
    }
    return best;
}
