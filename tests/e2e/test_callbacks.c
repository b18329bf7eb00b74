/* test_callbacks.c: cg_compile's .callbacks end to end. A model compiled
 * with Keras-style callbacks is built with `cgrad build` (gcc and clang):
 * NAME_main.c carries them into the runtime's descriptor, `fit --help` shows
 * them as the defaults, fit runs them (the history's lr column, the best
 * weights restored) and the command line overrides them. A monitor that
 * names no column of the model's history fails the build at the user's
 * line, naming the columns. */
#include "e2e.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IRIS_DATA SOURCE_DIR "/examples/data/iris.csv"

TestSuite(callbacks, .timeout = 240, .fini = e2e_cleanup);

/* The model program: iris, Dense(8, relu) -> Dense(3), with callbacks; CALLBACKS is their initializer. */
#define MODEL_SRC(CALLBACKS)                                                                       \
    "#include <cgrad.h>\n"                                                                         \
    "int main(int argc, char **argv)\n"                                                            \
    "{\n"                                                                                          \
    "    cg_model *m = cg_sequential(\"iris_cb\", CG_SHAPE(4));\n"                                 \
    "    cg_model_add(m, cg_dense(8, .activation = CG_RELU));\n"                                   \
    "    cg_model_add(m, cg_dense(3));\n"                                                          \
    "    cg_compile(m, .optimizer = cg_sgd(0.05f, 0.0f, false), /* HERE */\n"                      \
    "               .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,\n"                                 \
    "               .from_logits = true, .metric = CG_ACCURACY, .batch_size = 16, .epochs = 12,\n" \
    "               .data = {.path = \"iris.csv\", .test_split = 0.2f},\n"                         \
    "               .callbacks = " CALLBACKS ");\n"                                                \
    "    return cg_main(m, argc, argv);\n"                                                         \
    "}\n"

/* Builds src in tmp with compiler cc into tmp/out; returns the run (status 0 on success). */
static e2e_run build(const char *tmp, const char *src, const char *cc)
{
    e2e_write_str(e2e_path(tmp, "model.c"), src);
    e2e_copy(IRIS_DATA, e2e_path(tmp, "iris.csv"), (size_t)-1);
    return E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", "model.c", "-o", "out", "--cc", cc);
}

/* The entry of flag name in a help text, up to the next flag's line, its wrapped lines joined by spaces. */
static char *help_entry(const char *help, const char *name)
{
    char head[64];
    const char *p, *end;
    snprintf(head, sizeof head, "--%s ", name);
    p = strstr(help, "\nflags (");
    cr_assert_not_null(p, "%s", help);
    p = strstr(p, head);
    cr_assert_not_null(p, "no --%s in the help:\n%s", name, help);
    for (end = strchr(p, '\n'); end && end[1] == ' ' && strncmp(end + 1, "  -", 3) && strncmp(end + 1, "      --", 8);)
        end = strchr(end + 1, '\n'); /* a wrapped line of the same entry */
    char *e = strndup(p, end ? (size_t)(end - p) : strlen(p)), *w = e;
    for (const char *r = e; *r; r++) { /* a wrapped line joins the one before with a space */
        if (*r == '\n') {
            while (r[1] == ' ')
                r++;
            *w++ = ' ';
        } else
            *w++ = *r;
    }
    *w = 0;
    return e;
}

Test(callbacks, compiled_defaults_reach_the_binary_and_the_command_line_overrides_them)
{
#ifdef E2E_SANITIZED
    cr_skip_test("cgrad build does not link model programs in a sanitizer build");
#endif
    static const char *const want[][2] = {
        {"monitor", "[default: val_accuracy]"}, {"mode", "[default: max]"},
        {"patience", "[default: 3]"},           {"min-delta", "[default: 0.01]"},
        {"reduce-lr-factor", "[default: 0.5]"}, {"reduce-lr-patience", "[default: 2]"},
        {"min-lr", "[default: 0.001]"},         {"reduce-lr-min-delta", "[default: 0.0001]"}};
    static const char *const compilers[] = {"gcc", "clang"};
    for (size_t c = 0; c < 2; c++) {
        const char *tmp = e2e_tmpdir();
        e2e_run r = build(tmp,
                          MODEL_SRC("{.monitor = \"val_accuracy\", .mode = CG_MODE_MAX, .min_delta = 0.01f, "
                                    ".patience = 3, .restore_best_weights = true, .reduce_lr_factor = 0.5f, "
                                    ".reduce_lr_patience = 2, .min_lr = 1e-3f}"),
                          compilers[c]);
        cr_assert_eq(r.status, 0, "cgrad build --cc %s failed (%d): %.1000s%.1000s", compilers[c], r.status, r.out,
                     r.err);
        e2e_run_free(&r);
        char *main_c = e2e_read(e2e_path(e2e_path(tmp, "out"), "iris_cb_main.c"), NULL);
        cr_assert_not_null(main_c);
        cr_assert(strstr(main_c, "        .callbacks = { .monitor = \"val_accuracy\", .mode = CGRT_MODE_MAX, "
                                 ".min_delta = 0.01f, .reduce_lr_factor = 0.5f, .min_lr = 0.001f, .patience = 3, "
                                 ".restore_best_weights = 1, .reduce_lr_patience = 2 },\n") != NULL,
                  "%s", main_c);
        free(main_c);
        const char *bin = e2e_path(e2e_path(tmp, "out"), "iris_cb");
        r = E2E_RUN(tmp, tmp, bin, "fit", "--help");
        cr_assert_eq(r.status, 0, "%s", r.err);
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            char *e = help_entry(r.out, want[i][0]);
            cr_assert(strstr(e, want[i][1]) != NULL, "--%s: %s lacks %s", want[i][0], e, want[i][1]);
            free(e);
        }
        e2e_run_free(&r);
    }
    /* fit with the model's callbacks: the history has the lr column; the best epoch is put back */
    const char *tmp = e2e_tmpdir(), *bin = e2e_path(e2e_path(tmp, "out"), "iris_cb");
    e2e_run r = E2E_RUN(tmp, tmp, bin, "fit", "--validation-split", "0.2", "--history", "h.csv", "--verbose", "2");
    cr_assert_eq(r.status, 0, "%.1000s%.1000s", r.out, r.err);
    cr_assert(strstr(r.out, "Restoring model weights from the end of the best epoch: ") != NULL, "%s", r.out);
    char *h = e2e_read(e2e_path(tmp, "h.csv"), NULL);
    cr_assert_not_null(h);
    cr_assert_str_eq(e2e_line(h, 0), "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,samples_per_sec");
    free(h);
    e2e_run_free(&r);
    /* the command line turns the schedule off and monitors the training loss */
    r = E2E_RUN(tmp, tmp, bin, "fit", "--validation-split", "0.2", "--history", "h.csv", "--verbose", "0",
                "--reduce-lr-factor", "0", "--monitor", "loss", "--mode", "auto");
    cr_assert_eq(r.status, 0, "%.1000s%.1000s", r.out, r.err);
    h = e2e_read(e2e_path(tmp, "h.csv"), NULL);
    cr_assert_str_eq(e2e_line(h, 0), "epoch,loss,accuracy,val_loss,val_accuracy,seconds,samples_per_sec");
    free(h);
    e2e_run_free(&r);
}

/* The line number (1-based) of the first line of src containing "HERE". */
static int marked_line(const char *src)
{
    int line = 1;
    for (const char *p = src; p < strstr(src, "HERE"); p++)
        line += *p == '\n';
    return line;
}

Test(callbacks, bad_callback_options_fail_the_build_at_the_users_line)
{
#ifdef E2E_SANITIZED
    cr_skip_test("cgrad build does not link model programs in a sanitizer build");
#endif
    static const char *const cases[][2] = {
        {MODEL_SRC("{.monitor = \"val_acc\\\"uracy\"}"),
         "iris_cb: .callbacks.monitor \"val_acc\\\"uracy\" is not a column of the history: give one of loss, "
         "accuracy, or val_ and one of them"},
        {MODEL_SRC("{.reduce_lr_factor = 1.5f}"), "iris_cb: .callbacks.reduce_lr_factor must lie in [0, 1)"},
        {MODEL_SRC("{.patience = -1}"), "iris_cb: .callbacks: patience (-1)"},
        {MODEL_SRC("{.mode = (cg_monitor_mode)7}"), "iris_cb: .callbacks.mode is 7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *tmp = e2e_tmpdir();
        char want[512];
        e2e_run r = build(tmp, cases[i][0], "gcc");
        snprintf(want, sizeof want, "model.c:%d: %s", marked_line(cases[i][0]), cases[i][1]);
        cr_assert_neq(r.status, 0, "case %zu built", i);
        cr_assert(strncmp(e2e_line(r.err, 0), want, strlen(want)) == 0, "case %zu: expected \"%s\":\n%s", i, want,
                  r.err);
        e2e_run_free(&r);
    }
}

/* The model program of the schedule test: iris, SGD with ExponentialDecay(0.1, 8, 0.5), every 8 steps the
 * rate halves (smoothly); batch 16, so 120 training rows make 8 steps an epoch. */
#define SCHEDULE_SRC                                                                              \
    "#include <cgrad.h>\n"                                                                        \
    "int main(int argc, char **argv)\n"                                                           \
    "{\n"                                                                                         \
    "    cg_model *m = cg_sequential(\"iris_sched\", CG_SHAPE(4));\n"                             \
    "    cg_model_add(m, cg_dense(8, .activation = CG_RELU));\n"                                  \
    "    cg_model_add(m, cg_dense(3));\n"                                                         \
    "    cg_optimizer opt = cg_sgd(0.05f, 0.0f, false);\n"                                        \
    "    opt.schedule = cg_exponential_decay(0.1f, 8, 0.5f, false);\n"                            \
    "    cg_compile(m, .optimizer = opt, .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,\n"           \
    "               .from_logits = true, .metric = CG_ACCURACY, .batch_size = 16, .epochs = 4,\n" \
    "               .data = {.path = \"iris.csv\", .test_split = 0.2f});\n"                       \
    "    return cg_main(m, argc, argv);\n"                                                        \
    "}\n"

/* A learning-rate schedule reaches the binary: the history's lr column is the rate of each epoch's last
 * step by Keras' formula, and ReduceLROnPlateau or --lr on top of it are refused as usage errors. */
Test(callbacks, schedule_sets_the_history_lr_and_refuses_reduce_lr_on_plateau)
{
#ifdef E2E_SANITIZED
    cr_skip_test("cgrad build does not link model programs in a sanitizer build");
#endif
    const char *tmp = e2e_tmpdir(), *bin = e2e_path(e2e_path(tmp, "out"), "iris_sched");
    e2e_run r = build(tmp, SCHEDULE_SRC, "gcc");
    cr_assert_eq(r.status, 0, "cgrad build failed (%d): %.1000s%.1000s", r.status, r.out, r.err);
    e2e_run_free(&r);
    char *main_c = e2e_read(e2e_path(e2e_path(tmp, "out"), "iris_sched_main.c"), NULL);
    cr_assert(main_c && strstr(main_c, "        .learning_rate = iris_sched_learning_rate,\n"
                                       "        .lr_schedule = \"ExponentialDecay\",\n"),
              "%s", main_c);
    free(main_c);
    r = E2E_RUN(tmp, tmp, bin, "fit", "--history", "h.csv", "--verbose", "0");
    cr_assert_eq(r.status, 0, "%.1000s%.1000s", r.out, r.err);
    e2e_run_free(&r);
    char *h = e2e_read(e2e_path(tmp, "h.csv"), NULL);
    cr_assert_not_null(h);
    cr_assert_str_eq(e2e_line(h, 0), "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,samples_per_sec");
    for (int epoch = 1; epoch <= 4; epoch++) {
        const char *row = e2e_line(h, epoch), *p = row;
        for (int comma = 0; comma < 5 && p; comma++) /* the sixth cell: lr */
            p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
        cr_assert_not_null(p, "epoch %d: %s", epoch, row);
        double lr = strtod(p, NULL), want = 0.1 * pow(0.5, (8.0 * epoch - 1.0) / 8.0); /* step 8 epoch - 1 */
        cr_expect(fabs(lr - want) <= 1e-5 * want, "epoch %d: lr %.9g in the history, the schedule gives %.9g (%s)",
                  epoch, lr, want, row);
    }
    free(h);
    r = E2E_RUN(tmp, tmp, bin, "fit", "--reduce-lr-factor", "0.5", "--verbose", "0");
    E2E_ASSERT_FAILS(r, 2, "--reduce-lr-factor", "follows its schedule (ExponentialDecay)");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, bin, "fit", "--lr", "0.3", "--verbose", "0");
    E2E_ASSERT_FAILS(r, 2, "--lr", "follows its schedule (ExponentialDecay)");
    e2e_run_free(&r);
}
