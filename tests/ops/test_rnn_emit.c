/* test_rnn_emit.c: what the recurrent layers emit, and that an LSTM learns.
 *
 *   rnn_emit/size_does_not_grow   an LSTM(32) model over 12 and over 48 steps: the emitted NAME.c of the
 *                                 48-step model is no longer than the 12-step one plus a few lines (the
 *                                 loops over t are loops, not unrolled), in both flavours; each has one
 *                                 forward loop over t for training, one for inference and one backward
 *   rnn_emit/byte_identical       two emissions of the 48-step model (from two builds) are byte-identical
 *   rnn_emit/strict_compilers     Embedding, LSTM, GRU, SimpleRNN and a Dense on the sequence compile with
 *                                 gcc and clang (when installed), -std=c99 -Wall -Wextra -Wpedantic -Werror
 *                                 at -O1 (the harness) and -O3, both flavours
 *   rnn_train/adding_problem      an LSTM(16) learns the adding problem (the sum of the two values marked
 *                                 among 10 steps): MSE below 0.01 on held-out sequences after 800 Adam steps,
 *                                 where the best guess without memory scores about 0.17
 *
 * CGRAD_KEEP_TMP keeps the emitted folders; RNN_VERBOSE=1 prints line counts and losses to stderr.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Input (steps, 1) -> LSTM(32) -> Dense(1), MSE: the benchmark model. */
static cg_model *lstm_model(int steps)
{
    cg_model *m = cg_sequential(steps == 12 ? "lstm12" : "lstm48", CG_SHAPE(steps, 1));
    cg_model_add(m, cg_lstm(32));
    cg_model_add(m, cg_dense(1));
    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .batch_size = 32);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    return m;
}

/* Lines of text (newlines). */
static long count_lines(const char *s, size_t len)
{
    long k = 0;
    for (size_t i = 0; i < len; i++)
        k += s[i] == '\n';
    return k;
}

/* Occurrences of needle in s. */
static int count_of(const char *s, const char *needle)
{
    int k = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        k++;
    return k;
}

/* Builds the model with cc and reads back its NAME.c. */
static char *emitted(cg_model *m, cg_flavour flavour, const char *cc, size_t *len)
{
    hx_module mod;
    int rc = hx_build_model(&mod, m, flavour, cc);
    cr_assert(rc == 0, "%s", mod.err);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.c", mod.dir, mod.name);
    char *text = hx_read_file(path, len);
    cr_assert(text, "cannot read %s", path);
    hx_close(&mod);
    return text;
}

Test(rnn_emit, size_does_not_grow, .timeout = 120)
{
    for (int fl = 0; fl < 2; fl++) {
        cg_flavour flavour = fl ? CG_HOST : CG_PORTABLE;
        size_t len12, len48;
        cg_model *m12 = lstm_model(12), *m48 = lstm_model(48);
        char *c12 = emitted(m12, flavour, NULL, &len12), *c48 = emitted(m48, flavour, NULL, &len48);
        long l12 = count_lines(c12, len12), l48 = count_lines(c48, len48);
        if (getenv("RNN_VERBOSE"))
            fprintf(stderr,
                    "%s: LSTM(32) emitted NAME.c: 12 steps %ld lines (%zu bytes), 48 steps %ld lines (%zu bytes)\n",
                    fl ? "host" : "portable", l12, len12, l48, len48);
        cr_expect(l48 <= l12 + 4, "%s: 48 steps emit %ld lines, 12 steps %ld: the code grows with the sequence",
                  fl ? "host" : "portable", l48, l12);
        cr_expect(len48 <= len12 + 400, "%s: 48 steps emit %zu bytes, 12 steps %zu", fl ? "host" : "portable", len48,
                  len12);
        /* one loop forward over t in the training form, one in the inference form, one backward */
        cr_expect_eq(count_of(c48, "for (int t = 0; t < 48; t++)"), 2, "forward loops over t: %d",
                     count_of(c48, "for (int t = 0; t < 48; t++)"));
        cr_expect_eq(count_of(c48, "for (int t = 48 - 1; t >= 0; t--)"), 1, "backward loops over t: %d",
                     count_of(c48, "for (int t = 48 - 1; t >= 0; t--)"));
        free(c12);
        free(c48);
        cg_model_free(m12);
        cg_model_free(m48);
    }
}

Test(rnn_emit, byte_identical, .timeout = 120)
{
    for (int fl = 0; fl < 2; fl++) {
        size_t len[2];
        char *c[2];
        for (int k = 0; k < 2; k++) {
            cg_model *m = lstm_model(48);
            c[k] = emitted(m, fl ? CG_HOST : CG_PORTABLE, NULL, &len[k]);
            cg_model_free(m);
        }
        cr_expect(len[0] == len[1] && !memcmp(c[0], c[1], len[0]), "%s: two emissions differ",
                  fl ? "host" : "portable");
        free(c[0]);
        free(c[1]);
    }
}

/* Every recurrent kernel in one model: ids -> Embedding -> LSTM -> GRU (every step) -> Dense on the sequence
 * -> SimpleRNN -> Dense. */
static cg_model *all_kernels(void)
{
    cg_model *m = cg_sequential("rnn_all", CG_SHAPE(7));
    cg_model_add(m, cg_embedding(20, 4));
    cg_model_add(m, cg_lstm(6, .return_sequences = true));
    cg_model_add(m, cg_gru(5, .return_sequences = true));
    cg_model_add(m, cg_dense(3, .activation = CG_TANH));
    cg_model_add(m, cg_simple_rnn(4, .use_bias = false));
    cg_model_add(m, cg_dense(2));
    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 8);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    return m;
}

Test(rnn_emit, strict_compilers, .timeout = 240)
{
    const char *ccs[] = {"gcc", "clang"};
    for (int c = 0; c < 2; c++) {
        char probe[64];
        snprintf(probe, sizeof probe, "command -v %s >/dev/null 2>&1", ccs[c]);
        if (system(probe) != 0) {
            cr_log_warn("%s is not installed: skipped", ccs[c]);
            continue;
        }
        for (int opt = 0; opt < 2; opt++)
            for (int fl = 0; fl < 2; fl++) {
                hx_extra_cflags = opt ? "-O3" : "";
                cg_model *m = all_kernels();
                hx_module mod;
                int rc = hx_build_model(&mod, m, fl ? CG_HOST : CG_PORTABLE, ccs[c]);
                cr_expect(rc == 0, "%s %s %s: %s", ccs[c], opt ? "-O3" : "-O1", fl ? "host" : "portable", mod.err);
                if (rc == 0)
                    hx_close(&mod);
                cg_model_free(m);
            }
    }
    hx_extra_cflags = "";
}

/* ---- training -------------------------------------------------------------------------------- */

static uint64_t rng_state = 2024;

static float unif(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xFFFFFF) / 16777216.0f;
}

/* n sequences of the adding problem: (value, marker) per step, exactly two markers; y = the marked sum. */
static void adding_batch(int n, int steps, float *x, float *y)
{
    for (int b = 0; b < n; b++) {
        int i = (int)(unif() * (float)steps) % steps, j;
        do
            j = (int)(unif() * (float)steps) % steps;
        while (j == i);
        y[b] = 0.0f;
        for (int t = 0; t < steps; t++) {
            float v = unif();
            x[(b * steps + t) * 2] = v;
            x[(b * steps + t) * 2 + 1] = (t == i || t == j) ? 1.0f : 0.0f;
            if (t == i || t == j)
                y[b] += v;
        }
    }
}

Test(rnn_train, adding_problem, .timeout = 180)
{
    enum { STEPS = 10, BATCH = 32, TEST = 256, ITERS = 800 };
    cg_model *m = cg_sequential("adding", CG_SHAPE(STEPS, 2));
    cg_model_add(m, cg_lstm(16));
    cg_model_add(m, cg_dense(1));
    cg_compile(m, .optimizer = cg_adam(1e-2f), .loss = CG_MSE, .batch_size = BATCH, .max_batch = TEST);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    hx_module mod;
    int rc = hx_build_model(&mod, m, CG_HOST, NULL);
    cr_assert(rc == 0, "%s", mod.err);
    static float x[TEST * STEPS * 2], y[TEST], tx[TEST * STEPS * 2], ty[TEST];
    adding_batch(TEST, STEPS, tx, ty);
    float loss, metric, before, after;
    mod.eval_step(mod.state, TEST, tx, ty, &before, &metric);
    for (int it = 0; it < ITERS; it++) {
        adding_batch(BATCH, STEPS, x, y);
        mod.train_step(mod.state, BATCH, x, y, &loss, &metric);
        cr_assert(isfinite(loss), "step %d: loss %g", it, (double)loss);
    }
    mod.eval_step(mod.state, TEST, tx, ty, &after, &metric);
    if (getenv("RNN_VERBOSE"))
        fprintf(stderr, "adding problem: held-out MSE %.4f before, %.4f after %d steps\n", (double)before,
                (double)after, ITERS);
    cr_expect(after < 0.01f,
              "the LSTM did not learn the adding problem: held-out MSE %.4f (before training %.4f; "
              "without memory about 0.17)",
              (double)after, (double)before);
    hx_close(&mod);
    cg_model_free(m);
}
