/* test_rnn_infer.c: the inference forms of the recurrent layers (what predict and eval_step run: the state
 * alone, nothing kept for backward) and the single-precision orthogonal initialiser.
 *
 *   rnn_infer/matches_training_forward   predict of LSTM, GRU and SimpleRNN layers (every step and the last
 *                                        step; LSTM and SimpleRNN from given initial states too), both
 *                                        flavours, against the same model whose predict is pointed at the
 *                                        training forward (the saved sequence, then slices): bit-identical
 *                                        in the portable flavour (the same sums in the same order); host: the
 *                                        training forward's product is a GEMM (another summation order, fused
 *                                        multiply-adds), so within 1e-6 relative to h's scale, 1 (|a - b| <=
 *                                        1e-6 max(1, |b|); seen: 3e-7). A GRU given an initial state keeps the
 *                                        training form (checked too)
 *   rnn_infer/arena_scales_with_xw_only  the predict plan of an LSTM, a GRU and a SimpleRNN model at 12 and
 *                                        at 48 steps: the arena grows by the input projection XW = x W + b
 *                                        (n, T, k U) alone, not by the saved sequence (n, T, 2 U or 8 U)
 *   rnn_infer/orthogonal_float           the emitted init_orthogonal gives Q Q^T = I (rows <= cols) or
 *                                        Q^T Q = I to 1e-5 for the recurrent kernels of the examples'
 *                                        shapes and a tall Dense kernel, over several seeds
 *   rnn_infer/examples_single_precision  every example's portable NAME.c (emitted by its model program,
 *                                        each *_gen under the build's examples/) compiles with -std=c99 -Wall -Wextra -Wpedantic -Wdouble-promotion
 *                                        -Wvla -Werror: no double maths
 *
 * Every model here is compiled with -Wdouble-promotion -Wvla on top of the harness's strict flags.
 * CGRAD_KEEP_TMP keeps the emitted folders; INFER_VERBOSE=1 prints the largest host differences.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "../../compiler/cgrad_int.h"

#define STEPS 6
#define FEATS 3
#define UNITS 5
#define N 4

#define STRICT_EXTRA "-Wdouble-promotion -Wvla"

typedef struct infer_case {
    const char *name;
    cg_layer_kind kind;
    bool seq;   /* return_sequences */
    bool state; /* a functional model whose layer starts from inputs h0 (and c0) */
} infer_case;

/* The layer of case c. */
static cg_layer layer_of(const infer_case *c)
{
    switch (c->kind) {
    case CG_LAYER_LSTM: return cg_lstm(UNITS, .return_sequences = c->seq);
    case CG_LAYER_GRU: return cg_gru(UNITS, .return_sequences = c->seq);
    default: return cg_simple_rnn(UNITS, .return_sequences = c->seq);
    }
}

/* The model of case c: x (STEPS, FEATS) [, h0 (, c0)] -> the recurrent layer -> output, MSE. With
 * training_form, predict is pointed at the training-mode output: the training forward and its slices. */
static cg_model *case_model(const infer_case *c, bool training_form)
{
    char name[64];
    snprintf(name, sizeof name, "%s%s", c->name, training_form ? "_train" : "");
    cg_model *m;
    if (!c->state) {
        m = cg_sequential(name, CG_SHAPE(STEPS, FEATS));
        cg_model_add(m, layer_of(c));
    } else {
        m = cg_functional(name);
        cg_t x = cg_input(m, "seq", CG_SHAPE(STEPS, FEATS)), h0 = cg_input(m, "h0", CG_SHAPE(UNITS)), y;
        if (c->kind == CG_LAYER_LSTM)
            y = cg_apply(m, layer_of(c), x, h0, cg_input(m, "c0", CG_SHAPE(UNITS)));
        else
            y = cg_apply(m, layer_of(c), x, h0);
        cg_set_outputs(m, y);
    }
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    if (training_form && !c->state)
        m->out = m->out_train; /* cg_compile makes it the predict output */
    else if (training_form)
        m->outputs_infer[0] = m->outputs[0];
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .loss = CG_MSE, .batch_size = N);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    return m;
}

/* True when the predict entry of compiled graph g runs an inference form. */
static bool predict_runs_infer(cg_graph *g)
{
    for (int k = 0; k < g->nentries; k++)
        for (int j = 0; g->entries[k].kind == ENTRY_PREDICT && j < g->entries[k].nsched; j++) {
            op_kind op = g->nodes[g->entries[k].sched[j]].op;
            if (op == OP_LSTM_INFER || op == OP_GRU_INFER || op == OP_SIMPLE_RNN_INFER)
                return true;
        }
    return false;
}

static uint64_t rng = 77;

/* Uniform in (-1, 1). */
static float unif(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}

/* Runs case c in one flavour: the same parameters (biases random, GRU's two rows apart) and inputs into both
 * forms; compares their predictions. */
static void check_case(const infer_case *c, cg_flavour fl)
{
    const char *fname = fl == CG_HOST ? "host" : "portable";
    cg_model *mi = case_model(c, false), *mt = case_model(c, true);
    hx_module a, b;
    hx_extra_cflags = STRICT_EXTRA;
    cr_assert(hx_build_model(&a, mi, fl, NULL) == 0, "%s %s: %s", c->name, fname, a.err);
    cr_assert(hx_build_model(&b, mt, fl, NULL) == 0, "%s %s: %s", c->name, fname, b.err);
    hx_extra_cflags = "";
    /* a GRU given an initial state keeps the training form (its inference form has no operand left for h0) */
    bool expect_infer = !(c->state && c->kind == CG_LAYER_GRU);
    cr_assert_eq(predict_runs_infer(cg_model_graph(mi)), expect_infer, "%s %s: predict runs %s", c->name, fname,
                 expect_infer ? "the training form" : "an inference form");
    cr_assert(!predict_runs_infer(cg_model_graph(mt)), "%s %s: the reference runs an inference form", c->name, fname);
    cr_assert_eq(a.param_floats, b.param_floats);
    long count;
    long off = hx_param(&a,
                        c->kind == CG_LAYER_LSTM  ? "lstm_1/bias"
                        : c->kind == CG_LAYER_GRU ? "gru_1/bias"
                                                  : "simple_rnn_1/bias",
                        &count);
    cr_assert(off >= 0);
    for (long j = 0; j < count; j++)
        a.params[off + j] = 0.5f * unif();
    memcpy(b.params, a.params, sizeof(float) * (size_t)a.param_floats);
    int per = STEPS * FEATS + (c->state ? (c->kind == CG_LAYER_LSTM ? 2 : 1) * UNITS : 0);
    int outs = c->seq ? STEPS * UNITS : UNITS;
    float x[N * (STEPS * FEATS + 2 * UNITS)], ya[N * STEPS * UNITS], yb[N * STEPS * UNITS];
    for (int i = 0; i < N * per; i++)
        x[i] = unif();
    a.predict(a.state, N, x, ya);
    b.predict(b.state, N, x, yb);
    double worst = 0.0; /* largest |a - b| / max(1, |b|): h lies in (-1, 1), so 1 is its scale */
    int at = 0;
    for (int i = 0; i < N * outs; i++) {
        double d = fabs((double)ya[i] - (double)yb[i]) / fmax(fabs((double)yb[i]), 1.0);
        if (d > worst)
            worst = d, at = i;
    }
    if (getenv("INFER_VERBOSE"))
        fprintf(stderr, "%s %s: largest difference %.3g at %d\n", c->name, fname, worst, at);
    if (fl == CG_PORTABLE)
        cr_expect(!memcmp(ya, yb, sizeof(float) * (size_t)(N * outs)),
                  "%s portable: inference %.9g, training forward %.9g at %d: not bit-identical", c->name,
                  (double)ya[at], (double)yb[at], at);
    else
        cr_expect(worst <= 1e-6, "%s host: inference %.9g, training forward %.9g at %d: %.3g apart, more than 1e-6",
                  c->name, (double)ya[at], (double)yb[at], at, worst);
    hx_close(&a);
    hx_close(&b);
    cg_model_free(mi);
    cg_model_free(mt);
}

Test(rnn_infer, matches_training_forward, .timeout = 240)
{
    static const infer_case cases[] = {
        {"inf_lstm_seq", CG_LAYER_LSTM, true, false},      {"inf_lstm_last", CG_LAYER_LSTM, false, false},
        {"inf_gru_seq", CG_LAYER_GRU, true, false},        {"inf_gru_last", CG_LAYER_GRU, false, false},
        {"inf_rnn_seq", CG_LAYER_SIMPLE_RNN, true, false}, {"inf_rnn_last", CG_LAYER_SIMPLE_RNN, false, false},
        {"inf_lstm_state", CG_LAYER_LSTM, true, true},     {"inf_rnn_state", CG_LAYER_SIMPLE_RNN, false, true},
        {"inf_gru_state", CG_LAYER_GRU, false, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int fl = 0; fl < 2; fl++)
            check_case(&cases[i], fl ? CG_HOST : CG_PORTABLE);
}

/* The predict arena, in floats, of x (steps, 1) -> layer(32) -> Dense(1) at batch 8. */
static size_t predict_arena(cg_layer_kind kind, int steps)
{
    infer_case c = {"arena", kind, false, false};
    cg_model *m = cg_sequential("arena", CG_SHAPE(steps, 1));
    cg_layer l = layer_of(&c);
    l.rnn.units = 32;
    cg_model_add(m, l);
    cg_model_add(m, cg_dense(1));
    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .batch_size = 8);
    cg_graph *g = cg_model_graph(m);
    cr_assert(!cg_failed(g) && compile_graph(g, CG_PORTABLE, NULL, NULL) == 0, "%s", cg_error(g));
    size_t floats = 0;
    for (int k = 0; k < g->nentries; k++)
        if (g->entries[k].kind == ENTRY_PREDICT)
            floats = g->entries[k].arena_floats;
    cg_model_free(m);
    return floats;
}

Test(rnn_infer, arena_scales_with_xw_only)
{
    static const struct {
        cg_layer_kind kind;
        const char *name;
        int gates, saved; /* k in XW (n, T, k U); floats per step and unit of the training form's sequence */
    } kinds[] = {{CG_LAYER_LSTM, "LSTM", 4, 8}, {CG_LAYER_GRU, "GRU", 3, 8}, {CG_LAYER_SIMPLE_RNN, "SimpleRNN", 1, 2}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t a12 = predict_arena(kinds[i].kind, 12), a48 = predict_arena(kinds[i].kind, 48);
        size_t xw = 8 * (48 - 12) * kinds[i].gates * 32; /* XW's growth, floats */
        cr_expect_eq(a48 - a12, xw,
                     "%s(32), batch 8: the predict arena grows by %zu floats from 12 to 48 steps; XW grows by %zu "
                     "(the training form's sequence would add %d more)",
                     kinds[i].name, a48 - a12, xw, 8 * 36 * kinds[i].saved * 32);
    }
}

/* Largest |Q Q^T - I| (rows <= cols) or |Q^T Q - I| of the (rows, cols) matrix w. */
static double orthogonality_error(const float *w, int rows, int cols)
{
    int vecs = rows <= cols ? rows : cols, len = rows <= cols ? cols : rows;
    double worst = 0.0;
    for (int i = 0; i < vecs; i++)
        for (int j = 0; j < vecs; j++) {
            double dot = 0.0;
            for (int l = 0; l < len; l++)
                dot += rows <= cols ? (double)w[i * cols + l] * (double)w[j * cols + l]
                                    : (double)w[l * cols + i] * (double)w[l * cols + j];
            worst = fmax(worst, fabs(dot - (i == j ? 1.0 : 0.0)));
        }
    return worst;
}

Test(rnn_infer, orthogonal_float, .timeout = 120)
{
    cg_model *m = cg_sequential("orth", CG_SHAPE(12, 16));
    cg_model_add(m, cg_lstm(32, .return_sequences = true));                /* (32, 128), sequence_sum, lstm_bench */
    cg_model_add(m, cg_gru(32, .return_sequences = true));                 /* (32, 96), timeseries_rnn */
    cg_model_add(m, cg_simple_rnn(32));                                    /* (32, 32), square */
    cg_model_add(m, cg_dense(128, .kernel_initializer = cg_orthogonal())); /* (32, 128) */
    cg_model_add(m, cg_dense(16, .kernel_initializer = cg_orthogonal()));  /* (128, 16), tall */
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .loss = CG_MSE, .batch_size = 2);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    hx_module mod;
    hx_extra_cflags = STRICT_EXTRA;
    int rc = hx_build_model(&mod, m, CG_PORTABLE, NULL);
    hx_extra_cflags = "";
    cr_assert(rc == 0, "%s", mod.err);
    static const struct {
        const char *name;
        int rows, cols;
    } kernels[] = {{"lstm_1/recurrent_kernel", 32, 128},
                   {"gru_1/recurrent_kernel", 32, 96},
                   {"simple_rnn_1/recurrent_kernel", 32, 32},
                   {"dense_1/kernel", 32, 128},
                   {"dense_2/kernel", 128, 16}};
    for (uint64_t seed = 1; seed <= 4; seed++) {
        mod.init(mod.state, seed);
        for (size_t k = 0; k < sizeof kernels / sizeof kernels[0]; k++) {
            long count, off = hx_param(&mod, kernels[k].name, &count);
            cr_assert(off >= 0 && count == (long)kernels[k].rows * kernels[k].cols, "%s", kernels[k].name);
            double err = orthogonality_error(mod.params + off, kernels[k].rows, kernels[k].cols);
            cr_expect(err <= 1e-5, "seed %d: %s (%d, %d) is %.3g off orthogonal", (int)seed, kernels[k].name,
                      kernels[k].rows, kernels[k].cols, err);
        }
    }
    hx_close(&mod);
    cg_model_free(m);
}

/* Emits the portable sources of model program gen into a fresh folder and compiles its NAME.c (the model; its
 * _main.c is the host training binary's driver) with -Wdouble-promotion -Wvla -Werror. */
static void check_example(const char *gen, const char *name)
{
    char dir[256], cmd[2048], log[512];
    cr_assert(hx_tmpdir(dir, sizeof dir) == 0);
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' --flavour portable > '%s/gen.log' 2>&1", gen, dir, dir);
    cr_assert(system(cmd) == 0, "%s could not emit its sources", gen);
    snprintf(cmd, sizeof cmd,
             "%s -std=c99 -Wall -Wextra -Wpedantic -Wdouble-promotion -Wvla -Werror -c '%s/%s.c' -I'%s' -o /dev/null "
             "> '%s/cc.log' 2>&1",
             hx_default_cc(), dir, name, dir, dir);
    int rc = system(cmd);
    snprintf(log, sizeof log, "%s/cc.log", dir);
    char *text = rc ? hx_read_file(log, NULL) : NULL;
    cr_expect(rc == 0, "%s.c (portable) does not compile with -Wdouble-promotion -Wvla -Werror:\n%.1500s", name,
              text ? text : "(no log)");
    free(text);
    hx_rmdir(dir);
}

Test(rnn_infer, examples_single_precision, .timeout = 240)
{
    DIR *top = opendir(EXAMPLES_BUILD_DIR);
    cr_assert(top, "cannot open %s", EXAMPLES_BUILD_DIR);
    int checked = 0;
    for (struct dirent *e; (e = readdir(top));) { /* every model program: examples/<folder>/<name>_gen */
        char sub[512], gen[1024];
        snprintf(sub, sizeof sub, "%s/%s", EXAMPLES_BUILD_DIR, e->d_name);
        DIR *d = e->d_name[0] != '.' ? opendir(sub) : NULL;
        for (struct dirent *f; d && (f = readdir(d));) {
            size_t len = strlen(f->d_name);
            if (len <= 4 || strcmp(f->d_name + len - 4, "_gen"))
                continue;
            snprintf(gen, sizeof gen, "%s/%s", sub, f->d_name);
            if (access(gen, X_OK) != 0)
                continue;
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(len - 4), f->d_name);
            check_example(gen, name);
            checked++;
        }
        if (d)
            closedir(d);
    }
    closedir(top);
    cr_expect(checked >= 10, "only %d model programs found under %s", checked, EXAMPLES_BUILD_DIR);
}
