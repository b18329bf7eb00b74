/* fdcheck.h: what the gradient checks share: a seeded generator (the same
 * values on every machine), and the comparison of analytic gradients with
 * central finite differences, for tape graphs and compiled models alike.
 *
 * A check reports the worst entry, |analytic - numeric| / max(1, |analytic|,
 * |numeric|), against the caller's tolerance; GC_VERBOSE=1 prints it for
 * every check. */
#ifndef CGRAD_TEST_FDCHECK_H
#define CGRAD_TEST_FDCHECK_H

#include <criterion/parameterized.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The parameters 0..n-1 of a parameterized test over a table of n cases.
 * Criterion copies parameters into a fresh process (where addresses
 * differ), so the tests take an index into the table, never a pointer. */
struct criterion_test_params fd_case_indices(size_t n);

uint64_t fd_next(uint64_t *s);                  /* splitmix64 */
float fd_unif(uint64_t *s, float lo, float hi); /* 24 random bits in [lo, hi) */
void fd_fill(uint64_t *s, float *data, long count, float lo, float hi);
uint64_t fd_seed(const char *name); /* FNV-1a of a case's name */

/* One parameter whose gradient is checked: its floats in the module's
 * state (perturbed in place, then restored) and its analytic gradient. */
typedef struct fd_target {
    const char *name;
    float *p;
    const float *grad;
    long count;
} fd_target;

typedef double (*fd_loss_fn)(void *ctx);

/* Compares every entry of every target's gradient with (f(p + eps) - f(p -
 * eps)) / 2 eps. each_must_matter: a target whose numeric gradient is zero
 * everywhere fails (the check would prove nothing). */
void fd_check(const char *what, const fd_target *t, int nt, fd_loss_fn f, void *ctx, double eps, double tol,
              bool each_must_matter);

/* A compiled model's check: the gradient train_step leaves in mod->grads
 * (run from a copy of the state, which is then restored) against finite
 * differences of train_step's own loss, for every trainable parameter.
 * Every step starts from the same state, dropout's generator included. */
void fd_check_model(const char *what, hx_module *mod, int n, const float *x, const float *y, double eps, double tol,
                    bool each_must_matter);

#endif
