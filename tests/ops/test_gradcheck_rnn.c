/* test_gradcheck_rnn.c: SimpleRNN, LSTM, GRU and Embedding against central
 * finite differences of the emitted code, in both flavours (portable loops;
 * host: GEMM per step through the shim).
 *
 * Each case is a small Sequential model (public layers) compiled with a real
 * compiler run (tests/support/harness.c); the loss is what NAME_train_step
 * reports (computed before the update), the gradients are what it leaves in
 * the gradient block, and the whole state is restored after every call. Every
 * trainable parameter is checked: kernels, recurrent kernels, biases (GRU's
 * two rows), embedding tables, the Dense layers around them, and a custom
 * "Scale" layer in front (y = x * u, u of one sample's shape), whose gradient
 * d_u = sum_b x_b dX_b is the recurrent layer's input gradient. Stacked
 * recurrent layers check it again from the layer above. Sequences have 4 or 5
 * steps and the batch is 5. The *_initial cases are functional models whose
 * recurrent layers start from given states (Keras' initial_state), made from
 * a second input by Dense layers: their weights get the states' gradients.
 *
 * Tolerance: eps = 1e-2, |analytic - numeric| <= 1e-3 max(1, |analytic|,
 * |numeric|) (the worst case seen is under 1e-4; the other suites allow 5e-3). Activations are smooth (tanh, sigmoid,
 * linear); relu's kink is avoided.
 *
 * Environment: CGRAD_TEST_CC picks the compiler; CGRAD_KEEP_TMP keeps the
 * emitted folders; GC_VERBOSE=1 prints every case's worst entry to stderr.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fdcheck.h"
#include "harness.h"

#define TOL 1e-3
#define EPS 1e-2f
#define BATCH 5

/* ---- the models --------------------------------------------------------------- */

/* Scale: y = x * u, u one sample's shape, initialised to ones (randomised by the test). */
static cg_t scale_call(cg_layer_ctx *l, cg_t x, void *self)
{
    (void)self;
    cg_shape s = cg_shape_of(x), w = {s.rank - 1, {0}};
    for (int i = 1; i < s.rank; i++)
        w.dims[i - 1] = s.dims[i];
    return cg_mul(x, cg_add_weight(l, "u", w, cg_ones(), true));
}
#define SCALE() cg_custom_layer("Scale", scale_call, NULL)

typedef cg_model *(*model_build)(void);

typedef struct model_case {
    const char *name;
    model_build build;
    cg_flavour flavour;
    int steps, features; /* one sample: (steps, features), or (steps) token ids when features is 0 */
    int vocab;           /* token ids: draw from [-1, vocab + 1] (some out of range) */
    int out[2];          /* the label of one sample: out[0] (, out[1]) */
    int extra;           /* floats of one sample's second input (functional models), after the sequence */
} model_case;

/* Two stacked LSTMs (every step, then the last) over a scaled input. */
static cg_model *model_lstm(void)
{
    cg_model *m = cg_sequential("gc_lstm", CG_SHAPE(4, 3));
    cg_model_add(m, SCALE());
    cg_model_add(m, cg_lstm(3, .return_sequences = true));
    cg_model_add(m, cg_lstm(2));
    cg_model_add(m, cg_dense(2));
    return m;
}

/* LSTM without bias, other activations (sigmoid cell, tanh gates), every step into a Dense on the sequence. */
static cg_model *model_lstm_nobias(void)
{
    cg_model *m = cg_sequential("gc_lstm_nobias", CG_SHAPE(5, 2));
    cg_model_add(m, SCALE());
    cg_model_add(m, cg_lstm(3, .use_bias = false, .return_sequences = true, .activation = CG_SIGMOID,
                            .recurrent_activation = CG_TANH));
    cg_model_add(m, cg_dense(2, .activation = CG_TANH));
    return m;
}

/* LSTM's final cell state in the loss (Keras' return_state): the gradient enters at c_T too. */
static cg_t state_loss(cg_t y_true, cg_t y_pred, void *self)
{
    cg_t c = *(cg_t *)self;
    cg_t mse = cg_mean(cg_square(cg_sub(y_pred, y_true)));
    return cg_add(mse, cg_mean(cg_mul(c, cg_tanh(c))));
}

static cg_model *model_lstm_state(void)
{
    static cg_t c;
    cg_model *m = cg_sequential("gc_lstm_state", CG_SHAPE(4, 2));
    cg_model_add(m, SCALE());
    cg_model_add(m, cg_lstm(3, .name = "enc"));
    cg_model_add(m, cg_dense(2));
    c = cg_rnn_state(m, "enc", CG_STATE_C);
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .custom_loss = state_loss, .custom_loss_self = &c,
               .batch_size = BATCH);
    return m;
}

static cg_model *model_gru(void)
{
    cg_model *m = cg_sequential("gc_gru", CG_SHAPE(4, 3));
    cg_model_add(m, SCALE());
    cg_model_add(m, cg_gru(3, .return_sequences = true));
    cg_model_add(m, cg_gru(2));
    cg_model_add(m, cg_dense(2));
    return m;
}

/* GRU without bias (no recurrent bias either), linear candidate, every step into a Dense on the sequence. */
static cg_model *model_gru_nobias(void)
{
    cg_model *m = cg_sequential("gc_gru_nobias", CG_SHAPE(5, 2));
    cg_model_add(m, SCALE());
    cg_model_add(m, cg_gru(3, .use_bias = false, .return_sequences = true, .activation = CG_LINEAR));
    cg_model_add(m, cg_dense(2));
    return m;
}

static cg_model *model_simple_rnn(void)
{
    cg_model *m = cg_sequential("gc_simple_rnn", CG_SHAPE(4, 3));
    cg_model_add(m, SCALE());
    cg_model_add(m, cg_simple_rnn(3, .return_sequences = true));
    cg_model_add(m, cg_simple_rnn(2, .use_bias = false, .activation = CG_SIGMOID));
    cg_model_add(m, cg_dense(2));
    return m;
}

/* Token ids (some outside the vocabulary) into an Embedding, then an LSTM and a GRU. */
static cg_model *model_embedding(void)
{
    cg_model *m = cg_sequential("gc_embedding", CG_SHAPE(5));
    cg_model_add(m, cg_embedding(6, 3));
    cg_model_add(m, cg_lstm(3, .return_sequences = true));
    cg_model_add(m, cg_gru(2));
    cg_model_add(m, cg_dense(2));
    return m;
}

/* Initial states (Keras' initial_state): functional models whose states come from a second input z through
 * Dense layers, so that the states' gradients reach those layers' weights. */
static cg_model *model_lstm_initial(void)
{
    cg_model *m = cg_functional("gc_lstm_initial");
    cg_t x = cg_input(m, "seq", CG_SHAPE(4, 3)), z = cg_input(m, "z", CG_SHAPE(2));
    cg_t h0 = cg_apply(m, cg_dense(3, .activation = CG_TANH), z);
    cg_t c0 = cg_apply(m, cg_dense(3), z);
    cg_t y = cg_apply(m, cg_lstm(3, .return_sequences = true), cg_apply(m, SCALE(), x), h0, c0);
    cg_t h1 = cg_apply(m, cg_dense(2), z);
    y = cg_apply(m, cg_lstm(2, .use_bias = false), y, h1, cg_apply(m, cg_dense(2), z));
    cg_set_outputs(m, cg_apply(m, cg_dense(2), y));
    return m;
}

/* Two GRUs: with both biases (rb packed into R), and without bias. */
static cg_model *model_gru_initial(void)
{
    cg_model *m = cg_functional("gc_gru_initial");
    cg_t x = cg_input(m, "seq", CG_SHAPE(4, 3)), z = cg_input(m, "z", CG_SHAPE(2));
    cg_t h0 = cg_apply(m, cg_dense(3, .activation = CG_TANH), z);
    cg_t y = cg_apply(m, cg_gru(3, .return_sequences = true), cg_apply(m, SCALE(), x), h0);
    y = cg_apply(m, cg_gru(2, .use_bias = false), y, cg_apply(m, cg_dense(2), z));
    cg_set_outputs(m, cg_apply(m, cg_dense(2), y));
    return m;
}

/* SimpleRNN through cg_make_layer / cg_call, every step into a Dense on the sequence. */
static cg_model *model_simple_rnn_initial(void)
{
    cg_model *m = cg_functional("gc_simple_rnn_initial");
    cg_t x = cg_input(m, "seq", CG_SHAPE(5, 2)), z = cg_input(m, "z", CG_SHAPE(2));
    cg_t h0 = cg_apply(m, cg_dense(3, .activation = CG_TANH), z);
    cg_layer_ref rnn = cg_make_layer(m, cg_simple_rnn(3, .return_sequences = true));
    cg_t y = cg_call(rnn, cg_apply(m, SCALE(), x), h0);
    cg_set_outputs(m, cg_apply(m, cg_dense(2), y));
    return m;
}

static void run_model_case(const model_case *k)
{
    const char *fl = k->flavour == CG_HOST ? "host" : "portable";
    char what[128];
    snprintf(what, sizeof what, "%s (%s)", k->name, fl);
    cg_model *m = k->build();
    if (strcmp(k->name, "lstm_state") && strcmp(k->name, "lstm_state_host")) /* that one compiles itself */
        cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .loss = CG_MSE, .batch_size = BATCH);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s: %s", what, cg_error(cg_model_graph(m)));
    hx_module mod;
    int rc = hx_build_model(&mod, m, k->flavour, NULL);
    cr_assert(rc == 0, "%s: %s", what, mod.err);

    uint64_t rng = fd_seed(k->name);
    int n = BATCH;
    for (int i = 0; i < mod.nparams; i++)
        fd_fill(&rng, mod.params + mod.param_offset(i), mod.param_count(i), -1.0f, 1.0f);
    long xin = (long)k->steps * (k->features ? k->features : 1) + k->extra,
         yout = (long)k->out[0] * (k->out[1] ? k->out[1] : 1);
    float *x = malloc(sizeof(float) * (size_t)(n * xin)), *y = malloc(sizeof(float) * (size_t)(n * yout));
    if (k->features)
        fd_fill(&rng, x, n * xin, -1.0f, 1.0f);
    else /* ids from -1 to vocab + 1: both ends out of range */
        for (long i = 0; i < n * xin; i++)
            x[i] = (float)(fd_next(&rng) % (uint64_t)(k->vocab + 3)) - 1.0f;
    fd_fill(&rng, y, n * yout, -1.0f, 1.0f);

    fd_check_model(what, &mod, n, x, y, EPS, TOL, true);
    free(x);
    free(y);
    hx_close(&mod);
    cg_model_free(m);
}

#define MC(s, fn, steps, feat, vocab, o0, o1)                   \
    {s, fn, CG_PORTABLE, steps, feat, vocab, {o0, o1}, 0},      \
    {                                                           \
        s "_host", fn, CG_HOST, steps, feat, vocab, {o0, o1}, 0 \
    }
#define MCX(s, fn, steps, feat, o0, o1, extra)                  \
    {s, fn, CG_PORTABLE, steps, feat, 0, {o0, o1}, extra},      \
    {                                                           \
        s "_host", fn, CG_HOST, steps, feat, 0, {o0, o1}, extra \
    }
static const model_case model_cases[] = {
    MC("lstm", model_lstm, 4, 3, 0, 2, 0),
    MC("lstm_nobias", model_lstm_nobias, 5, 2, 0, 5, 2),
    MC("lstm_state", model_lstm_state, 4, 2, 0, 2, 0),
    MC("gru", model_gru, 4, 3, 0, 2, 0),
    MC("gru_nobias", model_gru_nobias, 5, 2, 0, 5, 2),
    MC("simple_rnn", model_simple_rnn, 4, 3, 0, 2, 0),
    MC("embedding", model_embedding, 5, 0, 6, 2, 0),
    MCX("lstm_initial", model_lstm_initial, 4, 3, 2, 0, 2),
    MCX("gru_initial", model_gru_initial, 4, 3, 2, 0, 2),
    MCX("simple_rnn_initial", model_simple_rnn_initial, 5, 2, 5, 2, 2),
};

ParameterizedTestParameters(gradcheck_rnn, layers)
{
    return fd_case_indices(COUNT(model_cases));
}
ParameterizedTest(int *i, gradcheck_rnn, layers, .timeout = 120)
{
    run_model_case(&model_cases[*i]);
}
