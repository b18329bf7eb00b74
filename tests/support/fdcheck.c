/* fdcheck.c: the seeded generator and the finite-difference comparison of
 * the gradient checks (see fdcheck.h). */
#include "fdcheck.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t fd_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float fd_unif(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)(fd_next(s) >> 40) / 16777216.0f;
}

void fd_fill(uint64_t *s, float *data, long count, float lo, float hi)
{
    for (long i = 0; i < count; i++)
        data[i] = fd_unif(s, lo, hi);
}

uint64_t fd_seed(const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 1099511628211ull;
    return h;
}

void fd_check(const char *what, const fd_target *t, int nt, fd_loss_fn f, void *ctx, double eps, double tol,
              bool each_must_matter)
{
    double worst = -1, wa = 0, wn = 0;
    const char *wname = "";
    long widx = 0, total = 0;
    for (int i = 0; i < nt; i++) {
        double biggest = 0;
        for (long j = 0; j < t[i].count; j++, total++) {
            double a = t[i].grad[j];
            float save = t[i].p[j];
            t[i].p[j] = save + (float)eps;
            double lp = f(ctx);
            t[i].p[j] = save - (float)eps;
            double lm = f(ctx);
            t[i].p[j] = save;
            double num = (lp - lm) / (2.0 * eps);
            double err = fabs(a - num) / fmax(1.0, fmax(fabs(a), fabs(num)));
            biggest = fmax(biggest, fabs(num));
            if (!(err <= worst)) {
                worst = isnan(err) ? INFINITY : err;
                wa = a, wn = num, wname = t[i].name, widx = j;
            }
        }
        if (each_must_matter)
            cr_expect(biggest > 1e-4, "%s: d_%s is zero everywhere (numerically): the check would prove nothing", what,
                      t[i].name);
    }
    cr_assert(total > 0, "%s: nothing to check", what);
    if (getenv("GC_VERBOSE"))
        fprintf(stderr, "%s: %ld entries, maxdiff %.3g at d_%s[%ld]: analytic %.6g vs numeric %.6g\n", what, total,
                worst, wname, widx, wa, wn);
    cr_expect(worst <= tol, "%s: maxdiff %.3g at d_%s[%ld]: analytic %.6g vs numeric %.6g (tol %g)", what, worst, wname,
              widx, wa, wn, tol);
}

/* What the model's loss function needs. */
typedef struct model_ctx {
    hx_module *mod;
    int n;
    const float *x, *y;
    void *saved; /* a copy of the state, restored after every step */
} model_ctx;

/* train_step's loss at the parameters in mod->state, which is restored afterwards. */
static double model_loss(void *p)
{
    model_ctx *c = p;
    float loss, metrics[32];
    memcpy(c->saved, c->mod->state, c->mod->state_size);
    c->mod->train_step(c->mod->state, c->n, c->x, c->y, &loss, metrics);
    memcpy(c->mod->state, c->saved, c->mod->state_size);
    return loss;
}

void fd_check_model(const char *what, hx_module *mod, int n, const float *x, const float *y, double eps, double tol,
                    bool each_must_matter)
{
    model_ctx ctx = {mod, n, x, y, malloc(mod->state_size)};
    float *grads = malloc(sizeof(float) * (size_t)(mod->trainable_floats ? mod->trainable_floats : 1));
    cr_assert(ctx.saved && grads);
    void *before = malloc(mod->state_size);
    cr_assert(before);
    memcpy(before, mod->state, mod->state_size);
    float loss, metrics[32];
    mod->train_step(mod->state, n, x, y, &loss, metrics);
    cr_assert(isfinite(loss), "%s: loss %g", what, (double)loss);
    memcpy(grads, mod->grads, sizeof(float) * (size_t)mod->trainable_floats);
    memcpy(mod->state, before, mod->state_size);
    cr_expect(model_loss(&ctx) == loss, "%s: train_step is not repeatable from a restored state", what);
    fd_target t[64];
    int nt = 0;
    for (int i = 0; i < mod->nparams && nt < 64; i++) {
        long off = mod->param_offset(i);
        if (off < mod->trainable_floats) /* trainable parameters come first in the block */
            t[nt++] = (fd_target){mod->param_name(i), mod->params + off, grads + off, mod->param_count(i)};
    }
    fd_check(what, t, nt, model_loss, &ctx, eps, tol, each_must_matter);
    free(before), free(grads), free(ctx.saved);
}

struct criterion_test_params fd_case_indices(size_t n)
{
    static int index[128];
    for (size_t i = 0; i < COUNT(index); i++)
        index[i] = (int)i;
    cr_assert(n <= COUNT(index), "%zu cases: at most %zu", n, COUNT(index));
    return cr_make_param_array(int, index, n);
}
