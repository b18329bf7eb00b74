/* peak.c: the single-precision FMA peak of this machine, measured.
 *
 * Runs a loop of independent fused multiply-adds on vector registers (AVX-512:
 * 16 floats a vector; AVX2: 8) for a fixed time on 1 thread, then on 2 at
 * once (one per core when the process may use two), and prints the GFLOP/s
 * reached, one `key=value` line each:
 *
 *   peak_avx512_1t_gflops=218.4
 *   peak_avx512_2t_gflops=436.0
 *   peak_avx2_1t_gflops=109.5
 *   ...
 *
 * An FMA counts as 2 floating-point operations per lane. A loop carries
 * ACC independent accumulators, more than an FMA's latency times the FMA
 * units per core, so nothing but the units' throughput limits it. An
 * instruction set the CPU lacks is reported as `unsupported`.
 * bench/run.sh prints these figures before the models and states each
 * model's GFLOP/s as a fraction of them. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACC 12        /* independent accumulators per loop */
#define BATCH 100000L /* loop turns between two looks at the clock */
#define SECONDS 0.25  /* how long each thread runs */

/* One turn of the loop: ACC (12) FMAs, written out so that every accumulator
 * stays in a register at any optimisation level. */
#define STEP12(a, fma)                                                                                      \
    do {                                                                                                    \
        a[0] = fma(a[0], x, y), a[1] = fma(a[1], x, y), a[2] = fma(a[2], x, y), a[3] = fma(a[3], x, y);     \
        a[4] = fma(a[4], x, y), a[5] = fma(a[5], x, y), a[6] = fma(a[6], x, y), a[7] = fma(a[7], x, y);     \
        a[8] = fma(a[8], x, y), a[9] = fma(a[9], x, y), a[10] = fma(a[10], x, y), a[11] = fma(a[11], x, y); \
    } while (0)

/* Seconds of a monotonic clock. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs BATCH turns of ACC AVX-512 FMAs `batches` times; returns a sum of the
 * accumulators so that the compiler keeps the work. */
__attribute__((target("avx512f"))) static float fma_avx512(long batches, float seed)
{
    __m512 acc[ACC], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < ACC; i++)
        acc[i] = _mm512_set1_ps(seed + (float)i);
    for (long b = 0; b < batches; b++)
        for (long t = 0; t < BATCH; t++)
            STEP12(acc, _mm512_fmadd_ps);
    float s = 0.0f;
    for (int i = 0; i < ACC; i++)
        s += _mm512_reduce_add_ps(acc[i]);
    return s;
}

/* As fma_avx512 with 8-float AVX2 vectors. */
__attribute__((target("avx2,fma"))) static float fma_avx2(long batches, float seed)
{
    __m256 acc[ACC], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < ACC; i++)
        acc[i] = _mm256_set1_ps(seed + (float)i);
    for (long b = 0; b < batches; b++)
        for (long t = 0; t < BATCH; t++)
            STEP12(acc, _mm256_fmadd_ps);
    float v[8], s = 0.0f;
    for (int i = 0; i < ACC; i++) {
        _mm256_storeu_ps(v, acc[i]);
        for (int l = 0; l < 8; l++)
            s += v[l];
    }
    return s;
}

/* One thread's share: which loop, how many batches, and what it returned. */
typedef struct {
    int avx512;
    long batches;
    float sink;
} run;

/* A thread's body: runs its loop. */
static void *run_loop(void *arg)
{
    run *r = arg;
    r->sink = r->avx512 ? fma_avx512(r->batches, 1.0f) : fma_avx2(r->batches, 1.0f);
    return NULL;
}

/* Runs the loop on `threads` threads at once, each for `batches` batches;
 * returns the wall time in seconds, or -1 when a thread cannot start. */
static double timed(int avx512, int threads, long batches)
{
    pthread_t tid[2];
    run r[2] = {{avx512, batches, 0.0f}, {avx512, batches, 0.0f}};
    double t0 = now_s();
    for (int i = 1; i < threads; i++)
        if (pthread_create(&tid[i], NULL, run_loop, &r[i]))
            return -1.0;
    run_loop(&r[0]);
    for (int i = 1; i < threads; i++)
        pthread_join(tid[i], NULL);
    double t = now_s() - t0;
    if (r[0].sink == 12345.0f) /* never true: keeps the sums alive */
        printf("#\n");
    return t;
}

/* GFLOP/s of the loop on `threads` threads: one short run sizes the real
 * one to about SECONDS; the best of three real runs. */
static double gflops(int avx512, int threads)
{
    double t = timed(avx512, 1, 1);
    if (t <= 0.0)
        return -1.0;
    long batches = (long)(SECONDS / t) + 1;
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        t = timed(avx512, threads, batches);
        if (t <= 0.0)
            return -1.0;
        double lanes = avx512 ? 16.0 : 8.0, flops = 2.0 * lanes * ACC * BATCH * (double)batches * threads;
        if (flops / t > best)
            best = flops / t;
    }
    return best * 1e-9;
}

/* The CPUs this process may run on. */
static int cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: peak\nprints the FMA peak in GFLOP/s: AVX-512 and AVX2, 1 and 2 threads\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "peak: unknown argument '%s' (usage: peak)\n", argv[1]);
        return 2;
    }
    __builtin_cpu_init();
    int max_threads = cpus() >= 2 ? 2 : 1;
    for (int set = 0; set < 2; set++) {
        int avx512 = set == 0;
        const char *name = avx512 ? "avx512" : "avx2";
        int ok = avx512 ? __builtin_cpu_supports("avx512f")
                        : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        for (int threads = 1; threads <= 2; threads++) {
            if (!ok)
                printf("peak_%s_%dt_gflops=unsupported\n", name, threads);
            else if (threads > max_threads)
                printf("peak_%s_%dt_gflops=n/a (the process may run on 1 CPU)\n", name, threads);
            else
                printf("peak_%s_%dt_gflops=%.1f\n", name, threads, gflops(avx512, threads));
        }
    }
    return 0;
}
