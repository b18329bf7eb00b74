/* test_gradcheck.c: every differentiable op of the public API against
 * central finite differences of the emitted code itself.
 *
 * Each case builds a tape graph around one op: variables for its
 * differentiable inputs (values drawn from a generator seeded by the case's
 * name, in a domain away from kinks and ties), and batched placeholders
 * (n rows, n < max batch) so that gradients summed over the batch are
 * covered. The loss is sum(op(...) * R) (or its mean), R a random placeholder
 * of the op's shape; a few cases use sum(op(...)) or mean(op(...)) directly,
 * where the gradient arriving at the op is a constant. The graph is emitted, compiled with a real compiler run
 * (tests/support/harness.c) and every entry of every d_<var> is compared with
 * (loss(p + eps) - loss(p - eps)) / (2 eps) computed by NAME_loss.
 *
 * Tolerance. Everything runs in float. With eps = 1e-2 and values O(1), the
 * truncation error of the central difference is eps^2/6 |f'''| <= ~3e-4 for
 * our domains (log, sqrt and div at x >= 0.5 have the largest f'''), and the
 * rounding error of a float loss of a few dozen O(1) terms is ~1e-6 / eps =
 * 1e-4. So |analytic - numeric| <= TOL * max(1, |analytic|, |numeric|) with
 * TOL = 5e-3 leaves a margin of 10 and still catches any wrong rule (those
 * are off by O(1)). Cases that sum many products (matmul, reductions over
 * all axes, cross-entropy with a mean) use the same bound; none needs more.
 *
 * Environment: CGRAD_TEST_CC picks the compiler (default cc); CGRAD_KEEP_TMP
 * keeps the emitted folders.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fdcheck.h"
#include "harness.h"

#define TOL 5e-3
#define EPS 1e-2f
#define MAX_BATCH 8
#define MAXT 8

/* Value domains: where a tensor's entries are drawn from. */
typedef enum dom {
    D_ANY,       /* U(-1, 1) */
    D_WIDE,      /* U(-2, 2): logits */
    D_POS,       /* U(0.5, 2): log, sqrt, divisors */
    D_AWAY,      /* |x| in [0.2, 1], random sign: relu, abs, leaky relu */
    D_SMALL,     /* U(-0.05, 0.05): a batched offset that keeps the variable's domain */
    D_GRID,      /* multiples of 0.2 in [-1.2, 1.2]: maximum/minimum against D_GRID_HALF */
    D_GRID_HALF, /* multiples of 0.2 plus 0.1: never within 0.1 of a D_GRID value */
    D_DISTINCT,  /* a shuffled ramp with steps of 0.3: no ties for max */
    D_UNIT,      /* U(0, 1): labels of binary cross-entropy */
    D_BIT,       /* 0 or 1: conditions of where */
    D_PROBS,     /* rows (last axis) summing to 1: dense cross-entropy labels */
} dom;

/* One tensor fed to the graph: a variable (in the parameter block) or a placeholder. */
typedef struct gc_tensor {
    char name[64];
    cg_t t;
    float *data;
    long count; /* at batch n */
    bool grad;  /* a variable whose gradient is checked */
} gc_tensor;

/* A case under construction. */
typedef struct gc {
    cg_graph *g;
    uint64_t rng;
    int n; /* the run-time batch */
    gc_tensor var[MAXT], in[MAXT];
    int nvar, nin;
    bool batched; /* some placeholder has the batch dimension */
} gc;

typedef cg_t (*gc_build)(gc *c, int arg);

/* One test case: a builder and its argument (an op code or a pattern). */
typedef struct gc_case {
    const char *name;
    gc_build build;
    int arg;
    cg_flavour flavour;
    int loss; /* how the op's output becomes the scalar loss */
} gc_case;

enum {
    L_SUM_R,  /* sum(op * R), R a random placeholder */
    L_MEAN_R, /* mean(op * R) */
    L_SUM,    /* sum(op): the gradient arriving is a constant */
    L_MEAN,   /* mean(op) */
};

/* ---- random values ------------------------------------------------------ */

static float rnd_unif(gc *c, float lo, float hi)
{
    return fd_unif(&c->rng, lo, hi);
}

static int rnd_dim(gc *c, int lo, int hi)
{
    return lo + (int)(fd_next(&c->rng) % (uint64_t)(hi - lo + 1));
}

/* Fills data[count] (rows of `last` entries) from the domain. */
static void fill(gc *c, float *data, long count, int last, dom d)
{
    for (long i = 0; i < count; i++) {
        float u = rnd_unif(c, 0.0f, 1.0f);
        switch (d) {
        case D_ANY: data[i] = 2.0f * u - 1.0f; break;
        case D_WIDE: data[i] = 4.0f * u - 2.0f; break;
        case D_POS: data[i] = 0.5f + 1.5f * u; break;
        case D_AWAY: data[i] = (0.2f + 0.8f * u) * (fd_next(&c->rng) & 1 ? 1.0f : -1.0f); break;
        case D_SMALL: data[i] = 0.1f * u - 0.05f; break;
        case D_GRID: data[i] = 0.2f * (float)((int)(u * 13.0f) - 6); break;
        case D_GRID_HALF: data[i] = 0.2f * (float)((int)(u * 12.0f) - 6) + 0.1f; break;
        case D_DISTINCT: data[i] = 0.3f * (float)i - 0.15f * (float)count; break;
        case D_UNIT: data[i] = u; break;
        case D_BIT: data[i] = u < 0.5f ? 0.0f : 1.0f; break;
        case D_PROBS: data[i] = 0.1f + u; break;
        }
    }
    if (d == D_DISTINCT) /* shuffle the ramp */
        for (long i = count - 1; i > 0; i--) {
            long j = (long)(fd_next(&c->rng) % (uint64_t)(i + 1));
            float t = data[i];
            data[i] = data[j];
            data[j] = t;
        }
    if (d == D_PROBS)
        for (long r = 0; r < count / last; r++) {
            float s = 0.0f;
            for (int k = 0; k < last; k++)
                s += data[r * last + k];
            for (int k = 0; k < last; k++)
                data[r * last + k] /= s;
        }
}

/* Elements of shape sh with the batch dimension = n. */
static long count_of(cg_shape sh, int n)
{
    long k = 1;
    for (int i = 0; i < sh.rank; i++)
        k *= sh.dims[i] == CG_BATCH ? n : sh.dims[i];
    return k;
}

static gc_tensor *add_tensor(gc *c, gc_tensor *arr, int *len, const char *name, cg_shape sh, dom d)
{
    cr_assert(*len < MAXT, "too many tensors");
    gc_tensor *t = &arr[(*len)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->count = count_of(sh, c->n);
    t->data = calloc((size_t)t->count, sizeof(float));
    fill(c, t->data, t->count, sh.rank ? (sh.dims[sh.rank - 1] == CG_BATCH ? c->n : sh.dims[sh.rank - 1]) : 1, d);
    return t;
}

/* A variable whose gradient is checked. */
static cg_t var(gc *c, const char *name, cg_shape sh, dom d)
{
    gc_tensor *t = add_tensor(c, c->var, &c->nvar, name, sh, d);
    t->grad = true;
    return t->t = cg_variable(c->g, name, sh, cg_zeros());
}

/* A placeholder (batched when sh.dims[0] == CG_BATCH). */
static cg_t input(gc *c, const char *name, cg_shape sh, dom d)
{
    gc_tensor *t = add_tensor(c, c->in, &c->nin, name, sh, d);
    c->batched |= sh.rank > 0 && sh.dims[0] == CG_BATCH;
    return t->t = cg_placeholder(c->g, name, sh);
}

/* A batched tensor (n, k) that depends on a variable: X * u, X a placeholder. */
static cg_t batched(gc *c, const char *xname, const char *uname, int k, dom xd, dom ud)
{
    return cg_mul(input(c, xname, CG_SHAPE(CG_BATCH, k), xd), var(c, uname, CG_SHAPE(k), ud));
}

/* ---- the check ------------------------------------------------------------ */

/* Seeds the generator from the case name, so every case has its own shapes. */

static void run_case(const gc_case *k)
{
    gc c = {.g = cg_graph_new(k->name), .rng = fd_seed(k->name)};
    cr_assert(c.g, "out of memory");
    cg_set_max_batch(c.g, MAX_BATCH);
    c.n = rnd_dim(&c, 2, MAX_BATCH - 1);
    cg_t y = k->build(&c, k->arg);
    cr_assert(!cg_failed(c.g), "%s: builder failed: %s", k->name, cg_error(c.g));
    cg_shape ys = cg_shape_of(y);
    cg_t prod = y;
    if (k->loss == L_SUM_R || k->loss == L_MEAN_R)
        prod = ys.rank ? cg_mul(y, input(&c, "r", ys, D_ANY)) : cg_mul(y, cg_scalar(c.g, 1.5f));
    cg_t loss = k->loss == L_SUM_R || k->loss == L_SUM ? cg_sum(prod) : cg_mean(prod);
    cg_t vars[MAXT];
    int nv = 0;
    for (int i = 0; i < c.nvar; i++)
        if (c.var[i].grad)
            vars[nv++] = c.var[i].t;
    cg_gradients_at(CG_HERE, c.g, loss, vars, nv);
    cr_assert(!cg_failed(c.g), "%s: cg_gradients failed: %s", k->name, cg_error(c.g));

    hx_module mod;
    /* Graphs without a batched input emit an unused `n` (pinned by emit/unbatched_graph_warning_free);
     * tolerate it here so the gradient math is still checked. */
    hx_extra_cflags = c.batched ? "" : "-Wno-unused-parameter";
    int rc = hx_build_graph(&mod, c.g, c.nin, k->flavour, NULL);
    cr_assert(rc == 0, "%s (%s): %s", k->name, k->flavour == CG_HOST ? "host" : "portable", mod.err);
    const float *inputs[MAXT];
    for (int i = 0; i < c.nin; i++)
        inputs[i] = c.in[i].data;
    long off[MAXT];
    for (int i = 0; i < c.nvar; i++) {
        long count = 0;
        off[i] = hx_param(&mod, c.var[i].name, &count);
        cr_assert(off[i] >= 0 && count == c.var[i].count, "%s: parameter %s: offset %ld, count %ld, expected %ld",
                  k->name, c.var[i].name, off[i], count, c.var[i].count);
        memcpy(mod.params + off[i], c.var[i].data, sizeof(float) * (size_t)count);
    }
    float l0 = mod.loss(mod.state, c.n, inputs);
    float lg = mod.gradients(mod.state, c.n, inputs);
    cr_assert(isfinite(l0) && l0 == lg, "%s: loss() gives %.9g but gradients() %.9g", k->name, (double)l0, (double)lg);

    /* worst entry over every variable, as llm.c's test prints it */
    double worst = -1, wa = 0, wn = 0;
    const char *wname = "";
    long widx = 0;
    for (int i = 0; i < c.nvar; i++) {
        float *p = mod.params + off[i];
        for (long j = 0; j < c.var[i].count; j++) {
            double a = mod.grads[off[i] + j];
            float save = p[j];
            p[j] = save + EPS;
            double lp = mod.loss(mod.state, c.n, inputs);
            p[j] = save - EPS;
            double lm = mod.loss(mod.state, c.n, inputs);
            p[j] = save;
            double num = (lp - lm) / (2.0 * (double)EPS);
            double err = fabs(a - num) / fmax(1.0, fmax(fabs(a), fabs(num)));
            if (!(err <= worst)) { /* also catches nan */
                worst = isnan(err) ? INFINITY : err;
                wa = a, wn = num, wname = c.var[i].name, widx = j;
            }
        }
    }
    cr_expect(worst <= TOL, "%s (%s, n=%d): maxdiff %.3g at d_%s[%ld]: analytic %.6g vs numeric %.6g (tol %g)", k->name,
              k->flavour == CG_HOST ? "host" : "portable", c.n, worst, wname, widx, wa, wn, TOL);
    hx_close(&mod);
    for (int i = 0; i < c.nvar; i++)
        free(c.var[i].data);
    for (int i = 0; i < c.nin; i++)
        free(c.in[i].data);
    cg_graph_free(c.g);
}

/* The emitted code of a graph without a batched input must compile with the
 * strict flags too (today NAME_loss and NAME_gradients leave `n` unused). */
Test(emit, unbatched_graph_warning_free)
{
    cg_graph *g = cg_graph_new("unbatched");
    cg_t v = cg_variable(g, "v", CG_SHAPE(2, 3), cg_ones());
    cg_gradients(g, cg_sum(cg_square(v)), v);
    hx_module mod;
    hx_extra_cflags = "";
    int rc = hx_build_graph(&mod, g, 0, CG_PORTABLE, NULL);
    cr_expect(rc == 0, "a tape graph without placeholders does not compile warning-free: %s", mod.err);
    if (rc == 0) {
        cr_expect_float_eq(mod.gradients(mod.state, 1, NULL), 6.0f, 1e-6f);
        cr_expect_float_eq(mod.grads[0], 2.0f, 1e-6f);
    }
    hx_close(&mod);
    cg_graph_free(g);
}

/* A host graph whose only heavy work is a large sum over all axes but the
 * last (a bias gradient's shape) calls the GEMM shim's cgrt_sum_rows, with
 * no GEMM anywhere: the emitted code must still declare it, and the sums
 * (split across the pool, MEAN's division after) must be right. */
Test(emit, host_sum_of_rows)
{
    enum { N = 300, C = 256 };
    cg_graph *g = cg_graph_new("sum_rows");
    cg_set_max_batch(g, N);
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 2, C));
    cg_t w = cg_variable(g, "w", CG_SHAPE(C), cg_ones());
    cg_t s = cg_sum_axes(x, CG_AXIS(0) | CG_AXIS(1), false), mu = cg_mean_axes(x, CG_AXIS(0) | CG_AXIS(1), true);
    cg_gradients(g, cg_add(cg_sum(cg_mul(s, w)), cg_sum(cg_mul(mu, mu))), w);
    hx_module mod;
    int rc = hx_build_graph(&mod, g, 1, CG_HOST, NULL);
    cr_assert(rc == 0, "the host graph does not compile: %s", mod.err);
    char path[300];
    snprintf(path, sizeof path, "%s/sum_rows.c", mod.dir);
    char *src = hx_read_file(path, NULL);
    cr_assert(src && strstr(src, "cgrt_sum_rows("), "the large sums do not use cgrt_sum_rows");
    free(src);
    float *xs = malloc(sizeof(float) * N * 2 * C);
    double want_loss = 0.0, want_g[C];
    for (int c = 0; c < C; c++) {
        double col = 0.0;
        for (int r = 0; r < N * 2; r++) {
            xs[r * C + c] = (float)((r * 7 + c * 3) % 11) / 11.0f - 0.4f;
            col += xs[r * C + c];
        }
        want_g[c] = col; /* d loss / d w[c] = the column's sum */
        want_loss += col + (col / (N * 2)) * (col / (N * 2));
    }
    float loss = mod.gradients(mod.state, N, (const float *[]){xs});
    cr_expect(fabs(loss - want_loss) <= 1e-3 * fabs(want_loss) + 1e-3, "loss %g, want %g", (double)loss, want_loss);
    for (int c = 0; c < C; c++)
        cr_expect(fabs(mod.grads[c] - want_g[c]) <= 1e-4 * (N * 2), "d_w[%d] = %g, want %g", c, (double)mod.grads[c],
                  want_g[c]);
    free(xs);
    hx_close(&mod);
    cg_graph_free(g);
}

/* A variable may be called anything a C identifier can be: "s" and "n" are
 * also the names of the emitted entry points' parameters. */
/* Names the emitted code uses itself (the state s, the batch n, ...) are
 * refused at the builder call with a message naming them, instead of
 * emitting code that does not compile. */
Test(emit, reserved_variable_names_are_refused)
{
    static const char *names[] = {"s", "n", "out", "for"};
    for (int i = 0; i < 4; i++) {
        cg_graph *g = cg_graph_new("collide");
        cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 2));
        int line = __LINE__ + 1;
        cg_t v = cg_variable(g, names[i], CG_SHAPE(2), cg_ones());
        cr_expect(v.id < 0 && cg_failed(g), "a variable named \"%s\" was accepted", names[i]);
        char want[64];
        snprintf(want, sizeof want, "test_gradcheck.c:%d:", line);
        cr_expect(strstr(cg_error(g), want) && strstr(cg_error(g), names[i]), "message \"%s\" lacks %s or the name",
                  cg_error(g), want);
        cg_graph_free(g);
    }
}

/* ---- elementwise, binary ------------------------------------------------------ */

/* Broadcast patterns of a binary op. */
enum { P_SAME, P_ROW, P_COL, P_SCALAR_VAR, P_CONST_RIGHT, P_CONST_LEFT, P_BATCH_ROW, P_BATCH_COL, P_RANK3 };

/* The binary case arg = op * 16 + pattern: a op b with the pattern's shapes. */
static cg_t build_binary(gc *c, int arg)
{
    cg_op_code op = (cg_op_code)(arg / 16);
    int pat = arg % 16, m = rnd_dim(c, 2, 4), k = rnd_dim(c, 2, 5);
    bool minmax = op == CG_OP_MAXIMUM || op == CG_OP_MINIMUM;
    dom da = minmax ? D_GRID : D_ANY, db = minmax ? D_GRID_HALF : op == CG_OP_DIV ? D_POS : D_ANY;
    cg_t a, b;
    switch (pat) {
    case P_SAME: a = var(c, "a", CG_SHAPE(m, k), da), b = var(c, "b", CG_SHAPE(m, k), db); break;
    case P_ROW: a = var(c, "a", CG_SHAPE(m, k), da), b = var(c, "b", CG_SHAPE(k), db); break;
    case P_COL: a = var(c, "a", CG_SHAPE(m, 1), da), b = var(c, "b", CG_SHAPE(m, k), db); break;
    case P_SCALAR_VAR: a = var(c, "a", CG_SHAPE(m, k), da), b = var(c, "b", CG_SHAPE(1), db); break;
    case P_CONST_RIGHT: a = var(c, "a", CG_SHAPE(m, k), da), b = cg_scalar(c->g, minmax ? 0.1f : 1.7f); break;
    case P_CONST_LEFT: a = cg_scalar(c->g, minmax ? 0.0f : 0.6f), b = var(c, "b", CG_SHAPE(m, k), db); break;
    case P_RANK3: a = var(c, "a", CG_SHAPE(2, m, k), da), b = var(c, "b", CG_SHAPE(m, 1), db); break;
    case P_BATCH_ROW: /* (n, k) op (k); the (n, k) side is X + u or X * u */
        if (minmax)
            a = cg_add(input(c, "x", CG_SHAPE(CG_BATCH, k), D_GRID), var(c, "u", CG_SHAPE(k), D_GRID));
        else
            a = batched(c, "x", "u", k, D_ANY, D_ANY);
        b = var(c, "b", CG_SHAPE(k), db);
        break;
    default: /* P_BATCH_COL: (n, 1) op (n, k) */
        if (minmax) {
            a = cg_add(input(c, "x1", CG_SHAPE(CG_BATCH, 1), D_GRID), var(c, "sc", CG_SHAPE(1), D_GRID));
            b = cg_add(input(c, "x2", CG_SHAPE(CG_BATCH, k), D_GRID), var(c, "u", CG_SHAPE(k), D_GRID_HALF));
        } else {
            a = batched(c, "x1", "sc", 1, D_ANY, D_ANY);
            b = batched(c, "x2", "u", k, op == CG_OP_DIV ? D_POS : D_ANY, op == CG_OP_DIV ? D_POS : D_ANY);
        }
    }
    return cg_binary_at(CG_HERE, op, a, b);
}

/* where(C, a, b): arg 0 without batch, 1 batched (C (n, k), a = X u, b (1)). */
static cg_t build_where(gc *c, int arg)
{
    int m = rnd_dim(c, 2, 4), k = rnd_dim(c, 2, 5);
    if (!arg)
        return cg_where(input(c, "cond", CG_SHAPE(m, k), D_BIT), var(c, "a", CG_SHAPE(m, k), D_ANY),
                        var(c, "b", CG_SHAPE(k), D_ANY));
    cg_t cond = input(c, "cond", CG_SHAPE(CG_BATCH, k), D_BIT);
    return cg_where(cond, batched(c, "x", "u", k, D_ANY, D_ANY), var(c, "b", CG_SHAPE(1), D_ANY));
}

/* where with a computed condition: where(a > 0, a^2, -b a), nothing flows into the comparison. */
static cg_t build_where_cmp(gc *c, int arg)
{
    (void)arg;
    int m = rnd_dim(c, 2, 4), k = rnd_dim(c, 2, 5);
    cg_t a = var(c, "a", CG_SHAPE(m, k), D_AWAY), b = var(c, "b", CG_SHAPE(k), D_ANY);
    return cg_where(cg_greater(a, cg_scalar(c->g, 0.0f)), cg_square(a), cg_neg(cg_mul(b, a)));
}

/* ---- elementwise, unary ---------------------------------------------------------- */

static dom unary_domain(cg_op_code op)
{
    switch (op) {
    case CG_OP_LOG:
    case CG_OP_SQRT: return D_POS;
    case CG_OP_ABS:
    case CG_OP_RELU: return D_AWAY;
    default: return D_ANY;
    }
}

/* arg = op * 2 + batched: op(v) for v (m, k), or op(X + u) for X (n, k) small and u (k). */
static cg_t build_unary(gc *c, int arg)
{
    cg_op_code op = (cg_op_code)(arg / 2);
    int m = rnd_dim(c, 2, 4), k = rnd_dim(c, 2, 5);
    cg_t x = arg % 2 ? cg_add(input(c, "x", CG_SHAPE(CG_BATCH, k), D_SMALL), var(c, "u", CG_SHAPE(k), unary_domain(op)))
                     : var(c, "v", CG_SHAPE(m, k), unary_domain(op));
    return cg_unary_at(CG_HERE, op, x);
}

/* leaky_relu with alpha = 0.1 (arg 0) or 0.3 batched (arg 1). */
static cg_t build_leaky(gc *c, int arg)
{
    int m = rnd_dim(c, 2, 4), k = rnd_dim(c, 2, 5);
    if (!arg)
        return cg_leaky_relu(var(c, "v", CG_SHAPE(m, k), D_AWAY), 0.1f);
    return cg_leaky_relu(cg_add(input(c, "x", CG_SHAPE(CG_BATCH, k), D_SMALL), var(c, "u", CG_SHAPE(k), D_AWAY)), 0.3f);
}

/* ---- reductions ---------------------------------------------------------------------- */

/* arg = op * 64 + keepdims * 32 + batched * 16 + axes: a rank-3 variable (a, b, d), or X + u with X (n, a, b)
 * batched, reduced over the axes' bit set (0: all). */
static cg_t build_reduce(gc *c, int arg)
{
    cg_op_code op = (cg_op_code)(arg / 64);
    bool keep = arg & 32, batch = arg & 16;
    unsigned axes = (unsigned)arg & 7u;
    int a = rnd_dim(c, 2, 4), b = rnd_dim(c, 2, 3), d = rnd_dim(c, 2, 3);
    dom dv = op == CG_OP_MAX ? D_DISTINCT : D_ANY;
    cg_t x;
    if (!batch)
        x = var(c, "v", CG_SHAPE(a, b, d), dv);
    else /* X + u with u (a, b) small and X (n, a, b) a ramp: no ties for max */
        x = cg_add(input(c, "x", CG_SHAPE(CG_BATCH, a, b), dv), var(c, "u", CG_SHAPE(a, b), D_SMALL));
    return cg_reduce_at(CG_HERE, op, x, axes, keep);
}

/* ---- matmul ------------------------------------------------------------------------------ */

/* arg: 0..3 variables with transposes ta = arg & 1, tb = arg & 2; 4: X u (n, k) . W (k, p);
 * 5: X u (n, k) . W^T with W (p, k); 6: (X u)^T (n, m) . (X2 v) (n, p), a sum over the batch;
 * 7: relu(X W + b) and 8: tanh((X W) + b) as the fuse pass sees them. */
static cg_t build_matmul(gc *c, int arg)
{
    int m = rnd_dim(c, 2, 5), k = rnd_dim(c, 2, 6), p = rnd_dim(c, 2, 5);
    bool ta = arg & 1, tb = arg & 2;
    switch (arg) {
    case 4: return cg_matmul(batched(c, "x", "u", k, D_ANY, D_ANY), var(c, "w", CG_SHAPE(k, p), D_ANY));
    case 5: return cg_matmul_t(batched(c, "x", "u", k, D_ANY, D_ANY), var(c, "w", CG_SHAPE(p, k), D_ANY), false, true);
    case 6:
        return cg_matmul_t(batched(c, "x", "u", m, D_ANY, D_ANY), batched(c, "x2", "v", p, D_ANY, D_ANY), true, false);
    case 7:
    case 8: {
        cg_t z = cg_add(cg_matmul(input(c, "x", CG_SHAPE(CG_BATCH, k), D_ANY), var(c, "w", CG_SHAPE(k, p), D_ANY)),
                        var(c, "b", CG_SHAPE(p), D_ANY));
        return arg == 7 ? cg_relu(z) : cg_tanh(z);
    }
    default:
        return cg_matmul_t(var(c, "a", ta ? CG_SHAPE(k, m) : CG_SHAPE(m, k), D_ANY),
                           var(c, "b", tb ? CG_SHAPE(p, k) : CG_SHAPE(k, p), D_ANY), ta, tb);
    }
}

/* ---- movement ---------------------------------------------------------------------------- */

/* arg 0: reshape (a, b, d) -> (a b, d); 1: reshape (n, 6) -> (n, 2, 3); 2: transpose (m, k);
 * 3: transposes inside a product, W^T V^T; 4: a slice of the middle axis of (a, b + 2, d);
 * 5: a batched slice of the last axis; 6: concatenation of a variable and a batched tensor along
 * the last axis; 7: concatenation along the middle axis; 8: a slice under a plain sum (constant
 * gradient); 9: a tensor concatenated with itself. */
static cg_t build_movement(gc *c, int arg)
{
    int a = rnd_dim(c, 2, 4), b = rnd_dim(c, 2, 3), d = rnd_dim(c, 2, 3);
    switch (arg) {
    case 0: return cg_reshape(cg_square(var(c, "v", CG_SHAPE(a, b, d), D_ANY)), CG_SHAPE(a * b, d));
    case 1: return cg_reshape(cg_tanh(batched(c, "x", "u", 6, D_ANY, D_ANY)), CG_SHAPE(CG_BATCH, 2, 3));
    case 2: return cg_transpose(cg_square(var(c, "v", CG_SHAPE(a, b), D_ANY)));
    case 3:
        return cg_matmul(cg_transpose(var(c, "w", CG_SHAPE(b, d), D_ANY)),
                         cg_transpose(var(c, "v", CG_SHAPE(a, b), D_ANY)));
    case 4: return cg_slice(cg_square(var(c, "v", CG_SHAPE(a, b + 2, d), D_ANY)), 1, 1, b);
    case 5: return cg_slice(cg_tanh(batched(c, "x", "u", 7, D_ANY, D_ANY)), -1, 2, 4);
    case 6: {
        cg_t x = cg_tanh(batched(c, "x", "u", 3, D_ANY, D_ANY));
        cg_t w = var(c, "w", CG_SHAPE(3, b), D_ANY);
        return cg_concat(cg_square(cg_matmul(x, w)), x, -1);
    }
    case 7:
        return cg_concat(cg_square(var(c, "v", CG_SHAPE(a, b, d), D_ANY)), var(c, "w", CG_SHAPE(a, 1, d), D_ANY), 1);
    case 8: return cg_slice(cg_exp(var(c, "v", CG_SHAPE(a, d + 3), D_ANY)), 1, 3, d);
    default: {
        cg_t v = var(c, "v", CG_SHAPE(a, b), D_ANY);
        return cg_concat(v, cg_square(v), 0);
    }
    }
}

/* ---- softmax family -------------------------------------------------------------------------- */

/* arg: 0 softmax (m, k); 1 softmax of batched logits; 2, 3 the same for log_softmax;
 * 4 sparse cross-entropy, 5 dense cross-entropy (logits X W + b, labels a placeholder);
 * 6 sparse cross-entropy of a (m, k) variable; 7, 8 sigmoid cross-entropy (m, k) and batched;
 * 9 softmax over a rank-3 tensor's last axis. */
static cg_t build_softmax(gc *c, int arg)
{
    int m = rnd_dim(c, 2, 4), k = rnd_dim(c, 2, 5), d = rnd_dim(c, 2, 4);
    cg_t z;
    if (arg == 0 || arg == 2 || arg == 6 || arg == 7)
        z = var(c, "z", CG_SHAPE(m, k), D_WIDE);
    else if (arg == 9)
        z = var(c, "z", CG_SHAPE(2, m, k), D_WIDE);
    else
        z = cg_add(cg_matmul(input(c, "x", CG_SHAPE(CG_BATCH, d), D_ANY), var(c, "w", CG_SHAPE(d, k), D_WIDE)),
                   var(c, "b", CG_SHAPE(k), D_ANY));
    switch (arg) {
    case 0:
    case 1:
    case 9: return cg_softmax(z);
    case 2:
    case 3: return cg_log_softmax(z);
    case 4:
    case 6: {
        gc_tensor *t = add_tensor(c, c->in, &c->nin, "labels", arg == 4 ? CG_SHAPE(CG_BATCH) : CG_SHAPE(m), D_ANY);
        for (long i = 0; i < t->count; i++)
            t->data[i] = (float)(fd_next(&c->rng) % (uint64_t)k);
        t->t = cg_placeholder(c->g, "labels", arg == 4 ? CG_SHAPE(CG_BATCH) : CG_SHAPE(m));
        return cg_softmax_cross_entropy(z, t->t, true);
    }
    case 5: return cg_softmax_cross_entropy(z, input(c, "labels", CG_SHAPE(CG_BATCH, k), D_PROBS), false);
    case 7: return cg_sigmoid_cross_entropy(z, input(c, "labels", CG_SHAPE(m, k), D_UNIT));
    default: return cg_sigmoid_cross_entropy(z, input(c, "labels", CG_SHAPE(CG_BATCH, k), D_UNIT));
    }
}

/* ---- the case table ---------------------------------------------------------------------------- */

/* clang-format off */
#define BIN(name, op, pat) {name, build_binary, (op) * 16 + (pat), CG_PORTABLE, L_SUM_R}
#define BIN_ALL(op, s)                                                                                       \
    BIN(s "_same", op, P_SAME), BIN(s "_mk_k", op, P_ROW), BIN(s "_m1_mk", op, P_COL),                      \
    BIN(s "_mk_1", op, P_SCALAR_VAR), BIN(s "_mk_const", op, P_CONST_RIGHT), BIN(s "_const_mk", op, P_CONST_LEFT), \
    BIN(s "_nk_k", op, P_BATCH_ROW), BIN(s "_n1_nk", op, P_BATCH_COL), BIN(s "_2mk_m1", op, P_RANK3)

static gc_case binary_cases[] = {
    BIN_ALL(CG_OP_ADD, "add"), BIN_ALL(CG_OP_SUB, "sub"), BIN_ALL(CG_OP_MUL, "mul"), BIN_ALL(CG_OP_DIV, "div"),
    BIN_ALL(CG_OP_MAXIMUM, "maximum"), BIN_ALL(CG_OP_MINIMUM, "minimum"),
    {"where", build_where, 0, CG_PORTABLE, L_SUM_R},
    {"where_batched", build_where, 1, CG_PORTABLE, L_SUM_R},
    {"where_greater", build_where_cmp, 0, CG_PORTABLE, L_SUM_R},
    /* the loss is the op's sum or mean itself: a constant gradient meets a broadcast */
    {"add_nk_k_sum", build_binary, CG_OP_ADD * 16 + P_BATCH_ROW, CG_PORTABLE, L_SUM},
    {"add_nk_k_mean", build_binary, CG_OP_ADD * 16 + P_BATCH_ROW, CG_PORTABLE, L_MEAN},
    {"add_mk_k_sum", build_binary, CG_OP_ADD * 16 + P_ROW, CG_PORTABLE, L_SUM},
    {"mul_n1_nk_sum", build_binary, CG_OP_MUL * 16 + P_BATCH_COL, CG_PORTABLE, L_SUM},
    {"sub_mk_1_mean", build_binary, CG_OP_SUB * 16 + P_SCALAR_VAR, CG_PORTABLE, L_MEAN},
};
/* clang-format on */

/* clang-format off */
#define UN(name, op) {name, build_unary, (op) * 2, CG_PORTABLE, L_SUM_R}, {name "_batched", build_unary, (op) * 2 + 1, CG_PORTABLE, L_SUM_R}
static gc_case unary_cases[] = {
    UN("neg", CG_OP_NEG), UN("exp", CG_OP_EXP), UN("log", CG_OP_LOG), UN("sqrt", CG_OP_SQRT),
    UN("square", CG_OP_SQUARE), UN("abs", CG_OP_ABS), UN("tanh", CG_OP_TANH), UN("sigmoid", CG_OP_SIGMOID),
    UN("relu", CG_OP_RELU),
    {"leaky_relu", build_leaky, 0, CG_PORTABLE, L_SUM_R},
    {"leaky_relu_batched", build_leaky, 1, CG_PORTABLE, L_SUM_R},
};
/* clang-format on */

/* clang-format off */
#define RED1(s, op, axes, keep) {s, build_reduce, (op) * 64 + (keep) * 32 + (axes), CG_PORTABLE, L_SUM_R}
#define RED(s, op)                                                                                                 \
    RED1(s "_0", op, 1, 0), RED1(s "_1", op, 2, 0), RED1(s "_2", op, 4, 0), RED1(s "_12", op, 6, 0),                \
    RED1(s "_all", op, 0, 0), RED1(s "_0_keep", op, 1, 1), RED1(s "_2_keep", op, 4, 1), RED1(s "_02_keep", op, 5, 1), \
    RED1(s "_batch_0", op, 16 + 1, 0), RED1(s "_batch_12", op, 16 + 6, 0), RED1(s "_batch_01_keep", op, 16 + 3, 1),   \
    RED1(s "_batch_all", op, 16, 0)
static gc_case reduce_cases[] = {RED("sum", CG_OP_SUM), RED("mean", CG_OP_MEAN), RED("max", CG_OP_MAX)};
/* clang-format on */

/* clang-format off */
#define MM(s, arg) {s, build_matmul, arg, CG_PORTABLE, L_SUM_R}, {s "_host", build_matmul, arg, CG_HOST, L_SUM_R}
static gc_case matmul_cases[] = {
    MM("matmul_nn", 0), MM("matmul_tn", 1), MM("matmul_nt", 2), MM("matmul_tt", 3), MM("matmul_batch", 4),
    MM("matmul_batch_nt", 5), MM("matmul_batch_tn", 6), MM("dense_relu", 7), MM("dense_tanh", 8),
    {"matmul_batch_mean", build_matmul, 4, CG_PORTABLE, L_MEAN_R},
    {"dense_relu_plain_mean", build_matmul, 7, CG_PORTABLE, L_MEAN},
};
/* clang-format on */

static gc_case movement_cases[] = {
    {"reshape", build_movement, 0, CG_PORTABLE, L_SUM_R},
    {"reshape_batched", build_movement, 1, CG_PORTABLE, L_SUM_R},
    {"transpose", build_movement, 2, CG_PORTABLE, L_SUM_R},
    {"transpose_matmul", build_movement, 3, CG_PORTABLE, L_SUM_R},
    {"slice_middle", build_movement, 4, CG_PORTABLE, L_SUM_R},
    {"slice_batched", build_movement, 5, CG_PORTABLE, L_SUM_R},
    {"slice_batched_host", build_movement, 5, CG_HOST, L_MEAN_R},
    {"concat_last", build_movement, 6, CG_PORTABLE, L_SUM_R},
    {"concat_last_host", build_movement, 6, CG_HOST, L_SUM_R},
    {"concat_middle", build_movement, 7, CG_PORTABLE, L_SUM_R},
    {"slice_plain_sum", build_movement, 8, CG_PORTABLE, L_SUM},
    {"concat_self", build_movement, 9, CG_PORTABLE, L_SUM_R},
};

static gc_case softmax_cases[] = {
    {"softmax", build_softmax, 0, CG_PORTABLE, L_SUM_R},
    {"softmax_batched", build_softmax, 1, CG_PORTABLE, L_SUM_R},
    {"softmax_rank3", build_softmax, 9, CG_PORTABLE, L_SUM_R},
    {"log_softmax", build_softmax, 2, CG_PORTABLE, L_SUM_R},
    {"log_softmax_batched", build_softmax, 3, CG_PORTABLE, L_SUM_R},
    {"xent_sparse", build_softmax, 4, CG_PORTABLE, L_SUM_R},
    {"xent_sparse_mean", build_softmax, 4, CG_PORTABLE, L_MEAN_R},
    {"xent_sparse_plain_mean", build_softmax, 4, CG_PORTABLE, L_MEAN},
    {"xent_sparse_host", build_softmax, 4, CG_HOST, L_SUM_R},
    {"xent_dense", build_softmax, 5, CG_PORTABLE, L_SUM_R},
    {"xent_dense_mean", build_softmax, 5, CG_PORTABLE, L_MEAN_R},
    {"xent_sparse_unbatched", build_softmax, 6, CG_PORTABLE, L_SUM_R},
    {"sigmoid_xent", build_softmax, 7, CG_PORTABLE, L_SUM_R},
    {"sigmoid_xent_batched", build_softmax, 8, CG_PORTABLE, L_SUM_R},
    {"sigmoid_xent_batched_mean", build_softmax, 8, CG_PORTABLE, L_MEAN_R},
};

#define GRADCHECK(family)                              \
    ParameterizedTestParameters(gradcheck, family)     \
    {                                                  \
        return fd_case_indices(COUNT(family##_cases)); \
    }                                                  \
    ParameterizedTest(int *i, gradcheck, family)       \
    {                                                  \
        run_case(&family##_cases[*i]);                 \
    }

GRADCHECK(binary)
GRADCHECK(unary)
GRADCHECK(reduce)
GRADCHECK(matmul)
GRADCHECK(movement)
GRADCHECK(softmax)
