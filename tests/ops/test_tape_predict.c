/* test_tape_predict.c: NAME_predict of a tape graph (cg_output).
 *
 *   values    a softmax classifier built from raw ops with two named outputs
 *             (the probabilities and a per-sample score): NAME_predict takes
 *             the input it needs (x, not the labels), and writes each output
 *             into its array equal to the same expressions computed here from
 *             the parameters; both flavours. Its checked form refuses NULL
 *             arrays and a bad n.
 *   errors    bad, duplicate and taken names, a tensor of another graph and a
 *             model's graph are refused at the user's line.
 *   firmware  --target firmware --mode predict keeps the tape's predict alone
 *             and compiles strictly; without outputs the build is refused.
 */
#include <criterion/criterion.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define N 5
#define F 3
#define C 4

/* x (n, F), labels (n, C); logits = x w + b; loss = mean softmax cross-entropy; outputs prob = softmax(logits)
 * and score = sum over classes of logits * logits. */
static cg_graph *classifier(void)
{
    cg_graph *g = cg_graph_new("tp");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, F));
    cg_t y = cg_placeholder(g, "y", CG_SHAPE(CG_BATCH, C));
    cg_t w = cg_variable(g, "w", CG_SHAPE(F, C), cg_glorot_uniform());
    cg_t b = cg_variable(g, "b", CG_SHAPE(C), cg_uniform(-0.5f, 0.5f));
    cg_t logits = cg_add(cg_matmul(x, w), b);
    cg_gradients(g, cg_mean(cg_softmax_cross_entropy(logits, y, false)), w, b);
    cr_assert(cg_output(g, "prob", cg_softmax(logits)) == 0, "%s", cg_error(g));
    cr_assert(cg_output(g, "score", cg_sum_axes(cg_square(logits), CG_AXIS(1), false)) == 0, "%s", cg_error(g));
    return g;
}

/* The outputs of both flavours against the expressions computed here in double precision. */
Test(tape_predict, values)
{
    for (int f = 0; f < 2; f++) {
        const char *fl = f ? "host" : "portable";
        cg_graph *g = classifier();
        hx_module mod;
        cr_assert(hx_build_graph(&mod, g, 2, f ? CG_HOST : CG_PORTABLE, NULL) == 0, "%s", mod.err);
        char path[512];
        snprintf(path, sizeof path, "%s/tp.h", mod.dir);
        char *h = hx_read_file(path, NULL);
        cr_assert_not_null(h);
        cr_expect(strstr(h, "void tp_predict(tp_state *s, int n, const float *x, float *prob, float *score);"),
                  "%s: the header does not declare predict with x and the two outputs:\n%s", fl, h);
        cr_expect(strstr(h, "#define TP_PROB_FLOATS 4 /* output prob (n, 4): floats per sample */") &&
                      strstr(h, "#define TP_SCORE_FLOATS 1 /* output score (n): floats per sample */"),
                  "%s: the header lacks the outputs' sizes:\n%s", fl, h);
        free(h);
        void (*predict)(void *, int, const float *, float *, float *);
        int (*checked)(void *, int, const float *, float *, float *);
        void *addr = dlsym(mod.so, "tp_predict");
        cr_assert_not_null(addr);
        memcpy(&predict, &addr, sizeof predict);
        cr_assert_not_null(addr = dlsym(mod.so, "tp_predict_checked"));
        memcpy(&checked, &addr, sizeof checked);

        float x[N * F], prob[N * C], score[N];
        for (int i = 0; i < N * F; i++)
            x[i] = (float)((i * 7) % 11) / 5.0f - 1.0f;
        predict(mod.state, N, x, prob, score);
        const float *w = mod.params + hx_param(&mod, "w", NULL), *b = mod.params + hx_param(&mod, "b", NULL);
        for (int i = 0; i < N; i++) {
            double z[C], zmax = -INFINITY, sum = 0, sq = 0;
            for (int c = 0; c < C; c++) {
                z[c] = b[c];
                for (int k = 0; k < F; k++)
                    z[c] += (double)x[i * F + k] * w[k * C + c];
                zmax = fmax(zmax, z[c]);
                sq += z[c] * z[c];
            }
            for (int c = 0; c < C; c++)
                sum += exp(z[c] - zmax);
            for (int c = 0; c < C; c++) {
                double p = exp(z[c] - zmax) / sum;
                cr_expect(fabs(prob[i * C + c] - p) <= 1e-6, "%s: prob[%d][%d] = %.9g, softmax gives %.9g", fl, i, c,
                          (double)prob[i * C + c], p);
            }
            cr_expect(fabs(score[i] - sq) <= 1e-5 * (1 + sq), "%s: score[%d] = %.9g, sum of squares %.9g", fl, i,
                      (double)score[i], sq);
        }
        cr_expect_eq(checked(mod.state, N, x, NULL, score), 1, "%s: a NULL output array is not refused", fl);
        cr_expect_eq(checked(mod.state, 0, x, prob, score), 2, "%s: n = 0 is not refused", fl);
        cr_expect_eq(checked(mod.state, N, x, prob, score), 0, "%s: the checked form refuses good arguments", fl);
        hx_close(&mod);
        cg_graph_free(g);
    }
}

/* cg_output(g, name, t) must fail at its line with a message holding what. */
static void expect_refused(cg_graph *g, const char *name, cg_t t, const char *what)
{
    int line = __LINE__ + 1;
    cr_expect(cg_output(g, name, t) != 0, "accepted: %s", what);
    char at[64];
    snprintf(at, sizeof at, "test_tape_predict.c:%d: ", line);
    cr_expect(strstr(cg_error(g), at) && strstr(cg_error(g), what), "error '%s' lacks '%s%s'", cg_error(g), at, what);
}

Test(tape_predict, errors)
{
    const struct {
        const char *name, *what;
    } bad[] = {
        {"1prob", "output name \"1prob\""},  {"p-q", "output name \"p-q\""},      {"s", "output name \"s\""},
        {"x", "output name \"x\" is taken"}, {"W", "output name \"W\" is taken"}, {"dup", "\"dup\" is given twice"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cg_graph *g = cg_graph_new("tp_bad");
        cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 2));
        cg_t w = cg_variable(g, "w", CG_SHAPE(2, 1), cg_zeros());
        cg_t out = cg_matmul(x, w);
        if (!strcmp(bad[k].name, "dup"))
            cr_assert(cg_output(g, "dup", out) == 0, "%s", cg_error(g));
        expect_refused(g, bad[k].name, out, bad[k].what);
        cg_graph_free(g);
    }
    cg_graph *g = cg_graph_new("tp_one"), *other = cg_graph_new("tp_other");
    cg_t t = cg_placeholder(other, "x", CG_SHAPE(CG_BATCH, 2));
    expect_refused(g, "out", t, "is not a tensor of this graph");
    cg_graph_free(g), cg_graph_free(other);

    cg_model *m = cg_sequential("tp_model", CG_SHAPE(3));
    cg_model_add(m, cg_dense(2));
    expect_refused(cg_model_graph(m), "out", cg_model_output(m), "tp_model is a model");
    cg_model_free(m);
}

/* Runs cg_main_graph on g (which it frees) with args after the program's name; returns its status. */
static int main_graph(cg_graph *g, const char *const *args, int nargs)
{
    char *argv[16] = {"tp_gen"};
    for (int i = 0; i < nargs; i++)
        argv[i + 1] = (char *)args[i];
    return cg_main_graph(g, nargs + 1, argv);
}

/* A firmware build of a tape graph keeps its predict alone (no loss, gradients or training state) and
 * compiles strictly; a tape graph without outputs has nothing to keep and is refused. */
Test(tape_predict, firmware_predict_only)
{
    char dir[256], path[512], cmd[1024];
    cr_assert(hx_tmpdir(dir, sizeof dir) == 0);
    const char *args[] = {"-o", dir, "--target", "firmware", "--mode", "predict"};
    cr_assert_eq(main_graph(classifier(), args, 6), 0, "the firmware build of a tape graph with outputs failed");
    snprintf(path, sizeof path, "%s/tp.h", dir);
    char *h = hx_read_file(path, NULL);
    cr_assert_not_null(h);
    cr_expect(strstr(h, "void tp_predict(tp_state *s, int n, const float *x, float *prob, float *score);") &&
                  !strstr(h, "tp_gradients") && !strstr(h, "tp_loss") && !strstr(h, "grads["),
              "the firmware header keeps more than predict:\n%s", h);
    free(h);
    snprintf(cmd, sizeof cmd, "%s -std=c99 -Wall -Wextra -Wpedantic -Werror -c '%s/tp.c' -o '%s/tp.o'", hx_default_cc(),
             dir, dir);
    cr_expect_eq(system(cmd), 0, "%s failed", cmd);
    hx_rmdir(dir);

    cg_graph *g = cg_graph_new("tp_none");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 2));
    cg_t w = cg_variable(g, "w", CG_SHAPE(2, 1), cg_zeros());
    cg_gradients(g, cg_mean(cg_matmul(x, w)), w);
    cr_assert(hx_tmpdir(dir, sizeof dir) == 0);
    args[1] = dir;
    cr_expect_neq(main_graph(g, args, 6), 0, "a tape graph without outputs was built for predict");
    hx_rmdir(dir);
}
