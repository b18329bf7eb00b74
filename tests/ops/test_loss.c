/* test_loss.c: cross-entropies from probabilities computed from the logits
 * of the sigmoid or softmax that made them, as tf.keras does.
 *
 * A model whose last Dense has a sigmoid (softmax) and whose loss is binary
 * (categorical) cross-entropy from probabilities gives the same loss and the
 * same gradients as the model without the activation trained from logits,
 * whatever the size of the logits; its predictions stay probabilities; and
 * on a tabular set with raw features from 1e-3 to 1e3 it trains, where the
 * clipped form sat at a constant loss. Where no sigmoid or softmax made the
 * output, the clipped form stays.
 *
 * Sample weights (NAME_eval_step_weighted, NAME_train_step_weighted): the
 * loss is Keras' sum_i w_i l_i / n, its gradients agree with finite
 * differences, and a sample of weight 0 counts for nothing. Class weights
 * (.class_weight): refused where they cannot apply, naming the line; a model
 * that takes them gets them in NAME_main.c as the default of --class-weight.
 */
#include <criterion/criterion.h>

#include <cgrad.h>
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ROWS 320
#define FEATURES 30

/* A uniform float in [0, 1) from a 64-bit LCG. */
static float uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xFFFFFF) / 16777216.0f;
}

/* A tabular set like a clinical one: ROWS rows of FEATURES raw features,
 * feature j between 0.5 and 1.5 times 10^(-3 + 6 j / 29) (1e-3 to 1e3, all
 * positive, unscaled), and a label that two of the larger features decide
 * (38% positive). Returns the positives. */
static int tabular(float *x, float *y)
{
    uint64_t s = 2024;
    int pos = 0;
    for (int i = 0; i < ROWS; i++) {
        float u[FEATURES];
        for (int j = 0; j < FEATURES; j++) {
            u[j] = uniform(&s);
            x[i * FEATURES + j] = (0.5f + u[j]) * powf(10.0f, -3.0f + 6.0f * (float)j / (FEATURES - 1));
        }
        y[i] = u[29] + 0.5f * u[26] > 0.85f ? 1.0f : 0.0f;
        pos += y[i] > 0.5f;
    }
    return pos;
}

/* A Dense(16, relu) + Dense(units, act) classifier of FEATURES inputs,
 * compiled with `loss` from logits or from probabilities. */
static cg_model *classifier(const char *name, int units, cg_activation act, cg_loss loss, bool from_logits)
{
    cg_model *m = cg_sequential(name, CG_SHAPE(FEATURES));
    cg_model_add(m, cg_dense(16, .activation = CG_RELU));
    cg_model_add(m, cg_dense(units, .activation = act));
    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = loss, .from_logits = from_logits, .metric = CG_ACCURACY,
               .batch_size = 32);
    return m;
}

/* Builds a model into mod (portable flavour), or fails the test. */
static void build(hx_module *mod, cg_model *m)
{
    cr_assert_eq(hx_build_model(mod, m, CG_PORTABLE, NULL), 0, "%s", mod->err);
}

/* The largest |a - b| / max(1, |b|) over count floats, and where, in *at. */
static double worst_rel(const float *a, const float *b, long count, long *at)
{
    double worst = 0;
    *at = 0;
    for (long i = 0; i < count; i++) {
        double d = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d, *at = i;
    }
    return worst;
}

/* One pair: `probs` (activation + loss from probabilities) and `logits` (no
 * activation, loss from logits) on the same weights, scaled by `gain` to make
 * the logits large: equal losses, gradients and (through the activation)
 * predictions. */
static void same_as_logits(const char *tag, int units, cg_activation act, cg_loss loss, float gain)
{
    char n1[64], n2[64];
    snprintf(n1, sizeof n1, "%s_probs", tag);
    snprintf(n2, sizeof n2, "%s_logits", tag);
    cg_model *mp = classifier(n1, units, act, loss, false), *ml = classifier(n2, units, CG_LINEAR, loss, true);
    hx_module p, l;
    build(&p, mp);
    build(&l, ml);
    cr_assert_eq(p.param_floats, l.param_floats);
    for (long i = 0; i < p.param_floats; i++)
        p.params[i] *= gain;
    memcpy(l.params, p.params, sizeof(float) * (size_t)p.param_floats);
    static float x[ROWS * FEATURES], y[ROWS];
    tabular(x, y);
    float yl[32 * 3] = {0};
    for (int i = 0; i < 32; i++) { /* labels to fit the loss */
        int c = (int)y[i] + (i % 3 == 0);
        if (loss == CG_BINARY_CROSSENTROPY)
            yl[i] = y[i];
        else if (loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY)
            yl[i] = (float)c;
        else
            yl[i * units + c] = 1.0f;
    }
    float lp, ll, mp_, ml_;
    p.eval_step(p.state, 32, x, yl, &lp, &mp_);
    l.eval_step(l.state, 32, x, yl, &ll, &ml_);
    cr_expect(isfinite(lp) && fabs((double)lp - ll) <= 1e-6 * fmax(1.0, fabs((double)ll)),
              "%s (gain %g): loss from probabilities %.9g, from logits %.9g", tag, (double)gain, (double)lp,
              (double)ll);
    cr_expect_eq(mp_, ml_, "%s: accuracy %g vs %g", tag, (double)mp_, (double)ml_);
    *p.lr = *l.lr = 0.0f; /* a step that leaves the gradients and keeps the weights */
    p.train_step(p.state, 32, x, yl, &lp, &mp_);
    l.train_step(l.state, 32, x, yl, &ll, &ml_);
    long at;
    double w = worst_rel(p.grads, l.grads, p.trainable_floats, &at);
    cr_expect(w <= 1e-6, "%s (gain %g): gradient [%ld] %.9g from probabilities, %.9g from logits", tag, (double)gain,
              at, (double)p.grads[at], (double)l.grads[at]);
    static float op[32 * 3], ol[32 * 3];
    p.predict(p.state, 32, x, op);
    l.predict(l.state, 32, x, ol);
    for (int i = 0; i < 32; i++) { /* predictions stay probabilities */
        double sum = 0, mx = -INFINITY;
        for (int k = 0; k < units; k++)
            mx = fmax(mx, ol[i * units + k]);
        for (int k = 0; k < units; k++)
            sum += exp(ol[i * units + k] - mx);
        for (int k = 0; k < units; k++) {
            double want = units == 1 ? 1.0 / (1.0 + exp(-(double)ol[i])) : exp(ol[i * units + k] - mx) / sum;
            cr_expect(fabs(op[i * units + k] - want) <= 1e-6, "%s: prediction [%d][%d] %.9g, want %.9g", tag, i, k,
                      (double)op[i * units + k], want);
        }
    }
    hx_close(&p);
    hx_close(&l);
    cg_model_free(mp);
    cg_model_free(ml);
}

Test(loss, bce_from_sigmoid_equals_from_logits, .timeout = 120)
{
    same_as_logits("bce", 1, CG_SIGMOID, CG_BINARY_CROSSENTROPY, 1.0f);
    same_as_logits("bce_big", 1, CG_SIGMOID, CG_BINARY_CROSSENTROPY, 8.0f); /* logits in the thousands */
}

Test(loss, ce_from_softmax_equals_from_logits, .timeout = 120)
{
    same_as_logits("sce", 3, CG_SOFTMAX, CG_SPARSE_CATEGORICAL_CROSSENTROPY, 1.0f);
    same_as_logits("sce_big", 3, CG_SOFTMAX, CG_SPARSE_CATEGORICAL_CROSSENTROPY, 8.0f);
    same_as_logits("cce_big", 3, CG_SOFTMAX, CG_CATEGORICAL_CROSSENTROPY, 8.0f);
}

/* Trains model mod on the tabular set for `epochs` (batches of 32 in order);
 * returns the last epoch's mean loss and the accuracy after training. */
static float train_tabular(hx_module *mod, const float *x, const float *y, int epochs, float *accuracy)
{
    float loss = 0, metric;
    for (int e = 0; e < epochs; e++) {
        double sum = 0;
        for (int b = 0; b < ROWS; b += 32) {
            mod->train_step(mod->state, 32, x + b * FEATURES, y + b, &loss, &metric);
            sum += loss;
        }
        loss = (float)(sum / (ROWS / 32));
    }
    double correct = 0;
    for (int b = 0; b < ROWS; b += 32) {
        mod->eval_step(mod->state, 32, x + b * FEATURES, y + b, &(float){0}, &metric);
        correct += metric * 32;
    }
    *accuracy = (float)(correct / ROWS);
    return loss;
}

/* The report's case: raw features from 1e-3 to 1e3, a sigmoid output and binary cross-entropy from
 * probabilities. The first logits are in the hundreds; clipped, the loss sat at -log(1.2e-7) times the
 * misclassified fraction with no gradient (9.9188 on the report's data). Now it trains as the model from
 * logits does: the same losses all the way, and an accuracy well above the majority class's. */
Test(loss, sigmoid_bce_trains_on_raw_tabular_features, .timeout = 120)
{
    static float x[ROWS * FEATURES], y[ROWS];
    int pos = tabular(x, y);
    float majority = (float)(pos > ROWS - pos ? pos : ROWS - pos) / ROWS;
    cg_model *mp = classifier("tab_probs", 1, CG_SIGMOID, CG_BINARY_CROSSENTROPY, false),
             *ml = classifier("tab_logits", 1, CG_LINEAR, CG_BINARY_CROSSENTROPY, true);
    hx_module p, l;
    build(&p, mp);
    build(&l, ml);
    memcpy(l.params, p.params, sizeof(float) * (size_t)p.param_floats);
    float first, metric;
    p.eval_step(p.state, 32, x, y, &first, &metric);
    float ap, al;
    float lp = train_tabular(&p, x, y, 60, &ap), ll = train_tabular(&l, x, y, 60, &al);
    cr_expect(lp < 0.5f * first, "the loss from probabilities went from %g to %g", (double)first, (double)lp);
    cr_expect(fabsf(lp - ll) <= 1e-4f * fmaxf(1.0f, ll),
              "after training: loss %.7g from probabilities, %.7g from logits", (double)lp, (double)ll);
    cr_expect(ap >= majority + 0.2f * (1.0f - majority), "accuracy %.3f from probabilities, majority class %.3f",
              (double)ap, (double)majority);
    cr_expect(fabsf(ap - al) <= 0.01f, "accuracy %.3f from probabilities, %.3f from logits", (double)ap, (double)al);
    hx_close(&p);
    hx_close(&l);
    cg_model_free(mp);
    cg_model_free(ml);
}

/* Without a sigmoid before it, binary cross-entropy from probabilities still clips as Keras does: an output
 * of 3 for a label 0 costs -log(1 - (1 - 1e-7)) in float, not infinity. */
Test(loss, clips_where_no_logits_exist, .timeout = 60)
{
    cg_model *m = cg_sequential("bce_clipped", CG_SHAPE(2));
    cg_model_add(m, cg_dense(1, .kernel_initializer = cg_zeros(), .bias_initializer = cg_constant_init(3.0f)));
    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_BINARY_CROSSENTROPY, .batch_size = 4);
    hx_module mod;
    build(&mod, m);
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[4] = {0, 0, 0, 0}, loss, metric;
    mod.eval_step(mod.state, 4, x, y, &loss, &metric);
    float want = -logf(1.0f - (1.0f - 1e-7f));
    cr_expect(fabsf(loss - want) <= 1e-5f * want, "clipped loss %.9g, want %.9g", (double)loss, (double)want);
    hx_close(&mod);
    cg_model_free(m);
}

/* ---- sample weights ------------------------------------------------------------------------------------- */

typedef void (*weighted_step)(void *s, int n, const float *x, const float *y, const float *sw, float *loss,
                              float *metrics);

/* NAME_<step>_weighted of a built model, or fails the test. */
static weighted_step weighted(const hx_module *mod, const char *step)
{
    char sym[160];
    snprintf(sym, sizeof sym, "%s_%s_weighted", mod->name, step);
    weighted_step f = (weighted_step)(uintptr_t)dlsym(mod->so, sym);
    cr_assert(f, "%s: no %s", mod->name, sym);
    return f;
}

/* A fixed batch of 8: x in (-1, 1), labels for `loss` over `units` outputs, weights with a 0 and a 2.5. */
static void weighted_batch(cg_loss loss, int units, float *x, float *y, float *w)
{
    static const float ws[8] = {1.0f, 0.0f, 2.5f, 0.5f, 1.0f, 3.0f, 0.25f, 1.5f};
    uint64_t s = 77;
    for (int i = 0; i < 8 * 4; i++)
        x[i] = 2.0f * uniform(&s) - 1.0f;
    for (int i = 0; i < 8; i++) {
        w[i] = ws[i];
        for (int k = 0; k < units; k++)
            y[i * units + k] = loss == CG_MSE ? 2.0f * uniform(&s) - 1.0f : (float)((i + k) % 2);
        if (loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY)
            y[i] = (float)(i % units);
    }
}

/* Sample i's loss in double from the model's output p (probabilities for binary cross-entropy, logits
 * for the sparse one), as Keras defines it. */
static double sample_loss(cg_loss loss, int units, const float *p, const float *y, int i)
{
    double l = 0, mx = -INFINITY, sum = 0;
    switch (loss) {
    case CG_MSE:
        for (int k = 0; k < units; k++)
            l += ((double)p[i * units + k] - y[i * units + k]) * ((double)p[i * units + k] - y[i * units + k]);
        return l / units;
    case CG_BINARY_CROSSENTROPY:
        for (int k = 0; k < units; k++) {
            double q = p[i * units + k], t = y[i * units + k];
            l -= t * log(q) + (1 - t) * log(1 - q);
        }
        return l / units;
    default:
        for (int k = 0; k < units; k++)
            mx = fmax(mx, p[i * units + k]);
        for (int k = 0; k < units; k++)
            sum += exp(p[i * units + k] - mx);
        return -(p[i * units + (int)y[i]] - mx - log(sum));
    }
}

/* The weighted loss of eval_step_weighted and train_step_weighted is Keras' sum_i w_i l_i / n (n = 8, not
 * the weights' sum 9.75), for MSE, binary cross-entropy on a sigmoid and sparse cross-entropy on logits;
 * sw NULL gives exactly the unweighted step's loss. */
Test(loss, weighted_mean_is_keras_sum_over_batch_size, .timeout = 120)
{
    const struct {
        const char *name;
        cg_loss loss;
        int units;
        cg_activation act;
        bool logits;
    } cases[] = {{"w_mse", CG_MSE, 2, CG_LINEAR, false},
                 {"w_bce", CG_BINARY_CROSSENTROPY, 2, CG_SIGMOID, false},
                 {"w_sce", CG_SPARSE_CATEGORICAL_CROSSENTROPY, 3, CG_LINEAR, true}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cg_model *m = cg_sequential(cases[c].name, CG_SHAPE(4));
        cg_model_add(m, cg_dense(5, .activation = CG_TANH));
        cg_model_add(m, cg_dense(cases[c].units, .activation = cases[c].act));
        cg_compile(m, .optimizer = cg_sgd(0.1f, 0, false), .loss = cases[c].loss, .from_logits = cases[c].logits,
                   .batch_size = 8);
        hx_module mod;
        build(&mod, m);
        float x[8 * 4], y[8 * 3], w[8], p[8 * 3], loss, metric, plain, unit;
        weighted_batch(cases[c].loss, cases[c].units, x, y, w);
        mod.predict(mod.state, 8, x, p);
        double want = 0;
        for (int i = 0; i < 8; i++)
            want += w[i] * sample_loss(cases[c].loss, cases[c].units, p, y, i);
        want /= 8;
        weighted(&mod, "eval_step")(mod.state, 8, x, y, w, &loss, &metric);
        cr_expect(fabs(loss - want) <= 1e-5 * fmax(1.0, fabs(want)), "%s: weighted loss %.9g, Keras' %.9g",
                  cases[c].name, (double)loss, want);
        mod.eval_step(mod.state, 8, x, y, &plain, &metric);
        weighted(&mod, "eval_step")(mod.state, 8, x, y, NULL, &unit, &metric);
        cr_expect_eq(plain, unit, "%s: eval_step %.9g, with sw NULL %.9g", cases[c].name, (double)plain, (double)unit);
        *mod.lr = 0.0f;
        weighted(&mod, "train_step")(mod.state, 8, x, y, w, &unit, &metric);
        cr_expect_eq(unit, loss, "%s: train_step_weighted %.9g, eval_step_weighted %.9g", cases[c].name, (double)unit,
                     (double)loss);
        hx_close(&mod);
        cg_model_free(m);
    }
}

/* The gradients of the weighted loss (train_step_weighted at learning rate 0 leaves them in the gradient
 * block) against central differences of eval_step_weighted's loss, at every parameter. A sample of weight 0
 * adds nothing: moving its label changes neither the loss nor the gradients. */
Test(loss, weighted_gradients_against_finite_differences, .timeout = 120)
{
    cg_model *m = cg_sequential("w_fd", CG_SHAPE(4));
    cg_model_add(m, cg_dense(5, .activation = CG_TANH));
    cg_model_add(m, cg_dense(3));
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0, false), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .batch_size = 8);
    hx_module mod;
    build(&mod, m);
    float x[8 * 4], y[8 * 3], w[8], loss, metric;
    weighted_batch(CG_SPARSE_CATEGORICAL_CROSSENTROPY, 3, x, y, w);
    *mod.lr = 0.0f;
    weighted(&mod, "train_step")(mod.state, 8, x, y, w, &loss, &metric);
    static float grads[256];
    cr_assert(mod.trainable_floats <= 256);
    memcpy(grads, mod.grads, sizeof(float) * (size_t)mod.trainable_floats);
    double worst = 0;
    long at = 0;
    for (long i = 0; i < mod.trainable_floats; i++) {
        float keep = mod.params[i], lp, lm, h = 1e-2f;
        mod.params[i] = keep + h;
        weighted(&mod, "eval_step")(mod.state, 8, x, y, w, &lp, &metric);
        mod.params[i] = keep - h;
        weighted(&mod, "eval_step")(mod.state, 8, x, y, w, &lm, &metric);
        mod.params[i] = keep;
        double d = ((double)lp - lm) / (2.0 * h), err = fabs(d - grads[i]) / fmax(fabs(d), 1e-2);
        if (err > worst)
            worst = err, at = i;
    }
    cr_expect(worst <= 2e-2, "weighted gradient [%ld] %.6g, finite differences disagree by %.3g of it", at,
              (double)grads[at], worst);
    float moved[8 * 3], again;
    memcpy(moved, y, sizeof moved);
    moved[1] = 2.0f; /* sample 1 has weight 0 */
    weighted(&mod, "train_step")(mod.state, 8, x, moved, w, &again, &metric);
    cr_expect_eq(again, loss, "a sample of weight 0 changed the loss: %.9g, was %.9g", (double)again, (double)loss);
    long same = 0;
    for (long i = 0; i < mod.trainable_floats; i++)
        same += mod.grads[i] == grads[i];
    cr_expect_eq(same, mod.trainable_floats, "a sample of weight 0 changed %ld gradients", mod.trainable_floats - same);
    hx_close(&mod);
    cg_model_free(m);
}

/* cg_compile of a sigmoid classifier of one output feature (units 1) or a
 * regression with the class weights c; returns its error ("" when none). */
static const char *compile_class_weight(cg_model **m, cg_loss loss, cg_class_weight_opts c)
{
    *m = cg_sequential("cw", CG_SHAPE(FEATURES));
    cg_model_add(*m, cg_dense(1, .activation = loss == CG_MSE ? CG_LINEAR : CG_SIGMOID));
    cg_compile(*m, .optimizer = cg_adam(1e-3f), .loss = loss, .class_weight = c);
    return cg_error(cg_model_graph(*m));
}

Test(loss, class_weight_options_are_checked_and_emitted_as_the_default_flag, .timeout = 60)
{
    static const struct {
        cg_loss loss;
        cg_class_weight_opts c;
        const char *phrase; /* NULL: accepted */
    } cases[] = {
        {CG_BINARY_CROSSENTROPY, {.weight = {1.0f, 3.5f}}, NULL},
        {CG_BINARY_CROSSENTROPY, {.balanced = true}, NULL},
        {CG_BINARY_CROSSENTROPY, {.weight = {1.0f, 2.0f, 3.0f}}, "weight[2] names a class the model does not have"},
        {CG_BINARY_CROSSENTROPY, {.weight = {-1.0f}}, "weight[0] is -1"},
        {CG_BINARY_CROSSENTROPY, {.balanced = true, .weight = {1.0f}}, "either .balanced or .weight"},
        {CG_MSE, {.balanced = true}, "needs a classifier"},
    };
    char dir[] = "/tmp/cgrad_cw_XXXXXX", path[128];
    cr_assert_not_null(mkdtemp(dir));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cg_model *m;
        const char *err = compile_class_weight(&m, cases[i].loss, cases[i].c);
        if (cases[i].phrase) {
            cr_expect(strstr(err, cases[i].phrase) && strstr(err, "test_loss.c:"), "case %zu: %s", i, err);
            cg_model_free(m);
            continue;
        }
        cr_assert_str_eq(err, "", "case %zu", i);
        cr_assert_eq(cg_emit_model(m, dir, CG_PORTABLE), 0, "%s", cg_error(cg_model_graph(m)));
        snprintf(path, sizeof path, "%s/cw_main.c", dir);
        FILE *f = fopen(path, "r");
        char text[8192] = "";
        cr_assert_not_null(f);
        text[fread(text, 1, sizeof text - 1, f)] = 0;
        fclose(f);
        const char *want = cases[i].c.balanced ? ".class_weight = \"balanced\"," : ".class_weight = \"0:1,1:3.5\",";
        cr_expect(strstr(text, want) && strstr(text, ".train_step_weighted = train_step_weighted"),
                  "cw_main.c lacks %s:\n%s", want, text);
        for (const char *const *n = (const char *const[]){"cw.h", "cw.c", "cw_main.c", NULL}; *n; n++) {
            snprintf(path, sizeof path, "%s/%s", dir, *n);
            unlink(path);
        }
        cg_model_free(m);
    }
    rmdir(dir);
}
