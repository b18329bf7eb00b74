/* test_checked.c: the checked entry points (NAME_predict_checked,
 * NAME_train_step_checked, ...) refuse what the plain ones trust: NULL
 * pointers, n outside 1..MAX_BATCH (which would run past the arena), and
 * class labels outside [0, classes) or not integers (which the sparse
 * cross-entropy uses as an index). They compute nothing then, and with good
 * arguments they compute exactly what the plain entry points compute. */
#include <criterion/criterion.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cgrad.h>

#include "harness.h"
#include "models.h"

typedef int (*step_fn)(void *s, int n, const float *x, const float *y, float *loss, float *metrics);
typedef int (*predict_fn)(void *s, int n, const float *x, float *out);

/* Looks up `NAME_what_checked` in mod into the function pointer *fp (through
 * memcpy: ISO C has no cast from an object pointer to a function pointer). */
static void checked(hx_module *mod, const char *what, void *fp, size_t size)
{
    char sym[256];
    snprintf(sym, sizeof sym, "%s_%s_checked", mod->name, what);
    void *f = dlsym(mod->so, sym);
    cr_assert_not_null(f, "%s is not exported", sym);
    cr_assert_eq(size, sizeof f);
    memcpy(fp, &f, sizeof f);
}

/* Copies the state so that a refused call can be shown to change nothing. */
static void *snapshot(const hx_module *mod)
{
    void *c = malloc(mod->state_size);
    cr_assert_not_null(c);
    memcpy(c, mod->state, mod->state_size);
    return c;
}

/* A Sequential classifier over 4 features, 3 classes, max batch 8. */
static cg_model *classifier(void)
{
    cg_model *m = cg_sequential("clf", CG_SHAPE(4));
    cg_model_add(m, cg_dense(5, .activation = CG_TANH));
    cg_model_add(m, cg_dense(3));
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0, false), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 8);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    return m;
}

static void classifier_checks(cg_flavour flavour)
{
    cg_model *m = classifier();
    hx_module mod;
    cr_assert(hx_build_model(&mod, m, flavour, hx_default_cc()) == 0, "%s", mod.err);
    step_fn train, eval;
    predict_fn predict;
    checked(&mod, "train_step", &train, sizeof train);
    checked(&mod, "eval_step", &eval, sizeof eval);
    checked(&mod, "predict", &predict, sizeof predict);
    float x[9 * 4], y[9], out[9 * 3], loss = -1, metric = -1;
    for (int i = 0; i < 9 * 4; i++)
        x[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < 9; i++)
        y[i] = (float)(i % 3);
    void *before = snapshot(&mod);
    /* refused: nothing changes */
    cr_expect_eq(train(mod.state, 9, x, y, &loss, &metric), 2, "n = 9 > max batch 8");
    cr_expect_eq(train(mod.state, 0, x, y, &loss, &metric), 2, "n = 0");
    cr_expect_eq(predict(mod.state, -3, x, out), 2, "n = -3");
    cr_expect_eq(train(NULL, 4, x, y, &loss, &metric), 1, "NULL state");
    cr_expect_eq(eval(mod.state, 4, x, NULL, &loss, &metric), 1, "NULL labels");
    cr_expect_eq(predict(mod.state, 4, x, NULL), 1, "NULL out");
    const float bad[] = {3.0f, -1.0f, 1.5f, NAN, INFINITY, 1e9f};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        float yb[4] = {0, 1, 2, 0};
        yb[b % 4] = bad[b];
        cr_expect_eq(train(mod.state, 4, x, yb, &loss, &metric), 3, "label %g", (double)bad[b]);
        cr_expect_eq(eval(mod.state, 4, x, yb, &loss, &metric), 3, "label %g", (double)bad[b]);
    }
    cr_expect(memcmp(before, mod.state, mod.state_size) == 0, "a refused call changed the state");
    cr_expect(loss == -1 && metric == -1, "a refused call wrote its results");
    /* accepted: the same as the plain entry point */
    float l1, m1, l2, m2;
    cr_assert_eq(train(mod.state, 8, x, y, &l1, &m1), 0);
    memcpy(mod.state, before, mod.state_size);
    mod.train_step(mod.state, 8, x, y, &l2, &m2);
    cr_expect(l1 == l2 && m1 == m2, "checked %g %g, plain %g %g", (double)l1, (double)m1, (double)l2, (double)m2);
    cr_expect_eq(predict(mod.state, 8, x, out), 0);
    free(before);
    hx_close(&mod);
    cg_model_free(m);
}

Test(checked, classifier_portable)
{
    classifier_checks(CG_PORTABLE);
}
Test(checked, classifier_host)
{
    classifier_checks(CG_HOST);
}

/* Two outputs: y = cls's class, then reg's 2 values. Only the class column
 * is checked as a label. */
Test(checked, functional_label_column)
{
    cg_model *m = tm_two_in_two_out("two");
    hx_module mod;
    cr_assert(hx_build_model(&mod, m, CG_PORTABLE, hx_default_cc()) == 0, "%s", mod.err);
    step_fn train;
    checked(&mod, "train_step", &train, sizeof train);
    float x[2 * 8] = {0}, y[2 * 3] = {2, -7.5f, 9.0f, 0, 1e6f, -1e6f}, loss, metrics[4];
    cr_expect_eq(train(mod.state, 2, x, y, &loss, metrics), 0, "regression targets are not labels");
    y[3] = 3;
    cr_expect_eq(train(mod.state, 2, x, y, &loss, metrics), 3, "class 3 of 3");
    y[3] = 1;
    y[0] = -0.5f;
    cr_expect_eq(train(mod.state, 2, x, y, &loss, metrics), 3, "class -0.5");
    hx_close(&mod);
    cg_model_free(m);
}

/* A tape graph: the checked form takes the placeholders and hands the loss back. */
Test(checked, tape_sparse_labels)
{
    cg_graph *g = cg_graph_new("tape");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    cg_t t = cg_placeholder(g, "t", CG_SHAPE(CG_BATCH));
    cg_t w = cg_variable(g, "w", CG_SHAPE(3, 4), cg_glorot_uniform());
    cg_gradients(g, cg_mean(cg_softmax_cross_entropy(cg_matmul(x, w), t, true)), w);
    cr_assert(!cg_failed(g), "%s", cg_error(g));
    hx_module mod;
    cr_assert(hx_build_graph(&mod, g, 2, CG_PORTABLE, hx_default_cc()) == 0, "%s", mod.err);
    int (*grad)(void *, int, const float *, const float *, float *);
    checked(&mod, "gradients", &grad, sizeof grad);
    float xs[6] = {1, 2, 3, 4, 5, 6}, ts[2] = {3, 0}, loss = 0;
    cr_expect_eq(grad(mod.state, 2, xs, ts, &loss), 0);
    float plain = mod.gradients(mod.state, 2, (const float *[]){xs, ts});
    cr_expect(loss == plain, "checked %g, plain %g", (double)loss, (double)plain);
    ts[0] = 4;
    cr_expect_eq(grad(mod.state, 2, xs, ts, &loss), 3, "class 4 of 4");
    cr_expect_eq(grad(mod.state, 2, xs, NULL, &loss), 1, "NULL t");
    hx_close(&mod);
    cg_graph_free(g);
}

/* An Embedding's token ids are row indices too: the checked forms refuse an
 * id outside [0, vocabulary) or not whole (ERR_ID, 4) in every entry point,
 * and accept the same batch with good ids. */
Test(checked, embedding_token_ids)
{
    cg_model *m = cg_sequential("tokens", CG_SHAPE(3));
    cg_model_add(m, cg_embedding(5, 4));
    cg_model_add(m, cg_flatten());
    cg_model_add(m, cg_dense(2));
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0, false), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .batch_size = 4);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    hx_module mod;
    cr_assert(hx_build_model(&mod, m, CG_PORTABLE, hx_default_cc()) == 0, "%s", mod.err);
    step_fn train;
    predict_fn predict;
    checked(&mod, "train_step", &train, sizeof train);
    checked(&mod, "predict", &predict, sizeof predict);
    float x[2 * 3] = {0, 1, 4, 3, 2, 0}, y[2] = {1, 0}, out[2 * 2], loss, metric;
    void *before = snapshot(&mod);
    const float bad[] = {5.0f, -1.0f, 2.5f, NAN, 1e9f};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        float xb[2 * 3];
        memcpy(xb, x, sizeof xb);
        xb[b % 6] = bad[b];
        cr_expect_eq(predict(mod.state, 2, xb, out), 4, "predict, id %g", (double)bad[b]);
        cr_expect_eq(train(mod.state, 2, xb, y, &loss, &metric), 4, "train_step, id %g", (double)bad[b]);
    }
    cr_expect(memcmp(before, mod.state, mod.state_size) == 0, "a refused call changed the state");
    cr_expect_eq(predict(mod.state, 2, x, out), 0);
    cr_expect_eq(train(mod.state, 2, x, y, &loss, &metric), 0);
    free(before);
    hx_close(&mod);
    cg_model_free(m);
}
