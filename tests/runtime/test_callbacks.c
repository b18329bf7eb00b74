/* test_callbacks.c: fit's Keras callbacks against Keras' rules. The decision
 * functions of callbacks.c on scripted sequences (EarlyStopping with
 * min_delta, patience and the max mode, ReduceLROnPlateau with cooldown and
 * min_lr, checkpoint names with format fields); then fit end to end with a
 * scripted model, whose losses and metrics per epoch are the test's tables
 * and whose one weight counts the epochs trained, so a checkpoint and the
 * test figures say which epoch's weights they hold: --restore-best-weights
 * against --save-best-only, --min-delta, --mode, the learning rate that the
 * model receives and the history's lr column, {epoch}/{val_loss} names,
 * --epochs 0 --save and --shuffle false. Expected epochs follow Keras' code
 * (EarlyStopping of Keras 3, ReduceLROnPlateau of Keras 2 with float32
 * rates), worked out by hand in the comments. */
#include "helpers.h"
#include "rt_internal.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the scripted model ---------------------------------------------------------- */

#define MAX_EPOCHS 32

/* Per epoch (1-based): training loss and accuracy, validation loss and
 * accuracy, and the learning rate the model saw. */
static double script_loss[MAX_EPOCHS + 1], script_acc[MAX_EPOCHS + 1];
static double script_val_loss[MAX_EPOCHS + 1], script_val_acc[MAX_EPOCHS + 1];
static float seen_lr[MAX_EPOCHS + 1];
/* Training samples per epoch (the epoch count grows by n / this per step). */
static int epoch_samples = 8;

/* Weights: params[0] counts the epochs trained, params[1] is 0.25. */
static void script_init(void *state, uint64_t seed)
{
    tiny_state *s = state;
    (void)seed;
    memset(s, 0, sizeof *s);
    s->params[1] = 0.25f;
}

static float *script_params(void *state)
{
    return ((tiny_state *)state)->params;
}

static void script_set_lr(void *state, float lr)
{
    ((tiny_state *)state)->lr = lr;
}

/* The epoch count grows by the part of the epoch the step trains; the loss is the script's. */
static void script_train(void *state, int n, const float *x, const float *y, float *loss, float *metric)
{
    tiny_state *s = state;
    int e;
    (void)x, (void)y;
    s->params[0] += (float)n / (float)epoch_samples;
    e = (int)ceilf(s->params[0]);
    cr_assert_leq(e, MAX_EPOCHS);
    seen_lr[e] = s->lr;
    *loss = (float)script_loss[e];
    *metric = (float)script_acc[e];
}

/* The validation (and test) figures of the epoch the weights come from. */
static void script_eval(void *state, int n, const float *x, const float *y, float *loss, float *metric)
{
    int e = (int)((tiny_state *)state)->params[0];
    (void)n, (void)x, (void)y;
    *loss = (float)script_val_loss[e];
    *metric = (float)script_val_acc[e];
}

static void script_predict(void *state, int n, const float *x, float *out)
{
    (void)state, (void)x;
    memset(out, 0, (size_t)n * 3 * sizeof(float));
}

static const cgrt_param script_params_desc[] = {{"count/w", 1, {2, 0, 0, 0}, 0, 2, 1}};
static const char *const script_metric_names[] = {"accuracy"};
static const cgrt_output script_outputs[] = {{"dense", 3, 1, 3}};

static const cgrt_model script_model = {
    .name = "script",
    .max_batch = 8,
    .in_rank = 1,
    .in_dims = {4},
    .in_features = 4,
    .out_features = 3,
    .label_kind = CGRT_LABEL_SPARSE,
    .label_width = 1,
    .num_classes = 3,
    .loss_name = "sparse_categorical_crossentropy",
    .num_metrics = 1,
    .metric_names = script_metric_names,
    .num_outputs = 1,
    .outputs = script_outputs,
    .default_lr = 0.5f,
    .default_epochs = 3,
    .default_batch = 8,
    .state_bytes = sizeof(tiny_state),
    .param_floats = 2,
    .num_params = 1,
    .params = script_params_desc,
    .init = script_init,
    .param_block = script_params,
    .set_lr = script_set_lr,
    .train_step = script_train,
    .eval_step = script_eval,
    .predict = script_predict,
};

/* Sets the validation losses of epochs 1..n (and accuracies, when acc is
 * not NULL); the training figures are 10 + the same, so they never decide. */
static void script(const double *val_loss, const double *acc, int n)
{
    int e;
    for (e = 1; e <= MAX_EPOCHS; e++) {
        double v = val_loss[e <= n ? e - 1 : n - 1];
        script_val_loss[e] = v;
        script_loss[e] = 10.0 + v;
        script_val_acc[e] = acc ? acc[e <= n ? e - 1 : n - 1] : 0.5;
        script_acc[e] = script_val_acc[e];
    }
}

/* A data folder of 16 training samples (half of them for validation: one
 * step of 8 per epoch) and 8 test samples. */
static const char *script_data(void)
{
    const char *dir = t_tmpdir();
    t_write_blobs_npy(dir, 16, 8, 3);
    return dir;
}

/* Runs fit of the scripted model with the data of dir, validation 0.5,
 * batch 8 and the extra flags (NULL-terminated); asserts status 0 and
 * returns stdout. */
static char *fit(const char *dir, const char *const *extra)
{
    const char *args[40] = {"fit", "--data", dir, "--validation-split", "0.5", "--batch-size", "8", "--verbose", "2"};
    int n = 9, rc;
    char *out, *errs;
    while (*extra)
        args[n++] = *extra++;
    args[n] = NULL;
    rc = t_run_cli(&script_model, dir, &out, &errs, args);
    cr_assert_eq(rc, 0, "fit: status %d, stderr %s", rc, errs);
    cr_assert_str_eq(errs, "");
    free(errs);
    return out;
}

/* The epoch count held by a checkpoint of the scripted model. */
static float checkpoint_epoch(const char *path)
{
    float params[2] = {-1, -1};
    cgrt_error err;
    cr_assert_eq(cgrt_load_checkpoint(&script_model, params, path, &err), 0, "%s", err.msg);
    return params[0];
}

/* ---- the decision functions ------------------------------------------------------- */

/* Feeds values to early stopping; returns the epoch that stops (0: none) and the best epoch in *best. */
static int run_early_stop(const double *v, int n, int max_mode, double min_delta, int patience, int *best)
{
    rt_early_stop es;
    int e;
    rt_early_stop_init(&es, max_mode, min_delta, patience);
    for (e = 1; e <= n; e++)
        if (rt_early_stop_update(&es, e, v[e - 1]) & RT_ES_STOP)
            break;
    *best = es.best_epoch;
    return e <= n ? e : 0;
}

Test(callbacks, improvement_rule_and_auto_mode)
{
    /* Keras: min mode improves when current < best - min_delta, max mode when current > best + min_delta */
    cr_assert(rt_improves(0, 0.1, 0.89, 1.0));
    cr_assert(!rt_improves(0, 0.1, 0.9, 1.0), "exactly min_delta lower is no improvement");
    cr_assert(!rt_improves(0, 0.0, 1.0, 1.0), "equal is no improvement");
    cr_assert(rt_improves(1, 0.05, 0.76, 0.7));
    cr_assert(!rt_improves(1, 0.05, 0.74, 0.7));
    cr_assert(!rt_improves(0, 0.0, NAN, 1.0) && !rt_improves(1, 0.0, NAN, 1.0));
    cr_assert(rt_improves(0, 0.0, 5.0, INFINITY) && rt_improves(1, 0.0, -5.0, -INFINITY));
    cr_assert(rt_mode_is_max(CGRT_MODE_AUTO, "val_accuracy") && rt_mode_is_max(CGRT_MODE_AUTO, "accuracy"));
    cr_assert(rt_mode_is_max(CGRT_MODE_AUTO, "digit_sparse_categorical_accuracy"));
    cr_assert(rt_mode_is_max(CGRT_MODE_AUTO, "val_acc"));
    cr_assert(!rt_mode_is_max(CGRT_MODE_AUTO, "val_loss") && !rt_mode_is_max(CGRT_MODE_AUTO, "mae"));
    cr_assert(!rt_mode_is_max(CGRT_MODE_MIN, "accuracy") && rt_mode_is_max(CGRT_MODE_MAX, "loss"));
}

Test(callbacks, early_stopping_decisions)
{
    static const double bump[] = {1.0, 0.8, 0.6, 0.65, 0.7, 0.75, 0.5, 0.4};
    static const double slow[] = {1.0, 0.95, 0.91, 0.905, 0.9};
    static const double acc[] = {0.5, 0.7, 0.6, 0.65, 0.69, 0.8};
    int best;
    /* best at 3, then 3 epochs without improvement: wait 3 >= patience 3 at epoch 6 */
    cr_assert_eq(run_early_stop(bump, 8, 0, 0.0, 3, &best), 6);
    cr_assert_eq(best, 3);
    /* min_delta 0.1: 0.95 and 0.91 are within 0.1 of 1.0, so epoch 3 stops with best 1 */
    cr_assert_eq(run_early_stop(slow, 5, 0, 0.1, 2, &best), 3);
    cr_assert_eq(best, 1);
    cr_assert_eq(run_early_stop(slow, 5, 0, 0.0, 2, &best), 0, "every epoch improves without min_delta");
    cr_assert_eq(best, 5);
    /* max mode on accuracy: best 0.7 at 2, stop at 5; min mode: best 0.5 at 1, stop at 4 */
    cr_assert_eq(run_early_stop(acc, 6, 1, 0.0, 3, &best), 5);
    cr_assert_eq(best, 2);
    cr_assert_eq(run_early_stop(acc, 6, 0, 0.0, 3, &best), 4);
    cr_assert_eq(best, 1);
    /* patience 0 never stops (the command line's meaning), but still tracks the best */
    cr_assert_eq(run_early_stop(bump, 8, 0, 0.0, 0, &best), 0);
    cr_assert_eq(best, 8);
    /* a NaN first epoch is the best until one improves (Keras keeps its weights) */
    cr_assert_eq(run_early_stop((const double[]){NAN, NAN, NAN}, 3, 0, 0.0, 2, &best), 2);
    cr_assert_eq(best, 1);
}

/* The plateau values of the learning-rate tests: flat at 1.0, an
 * improvement to 0.5, then 0.49995, which is within min_delta 1e-4. */
static const double plateau_values[12] = {1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.49995, 0.5, 0.5, 0.5, 0.5};

/* The rate in effect during each epoch of plateau_values, from lr 0.2 with
 * factor 0.5, patience 2, min_delta 1e-4 and min_lr 0.03, for cooldown 2 and 0.
 * Cooldown 2: reduction at the end of 3 (wait 2); 4 is a cooldown epoch; 5
 * ends the cooldown and waits 1; 6 improves; 7, 8 wait (8 within min_delta)
 * and reduce; 9 cooldown; 10, 11 wait and reduce 0.05 to max(0.025, 0.03).
 * Cooldown 0: reductions at the end of 3, 5 and 8 (0.025 -> 0.03), then
 * none: 0.03 is not above min_lr. Cooldown 1 equals cooldown 0 in Keras (the
 * counter drops to 0 before the wait is counted). */
static const float lr_cooldown2[12] = {0.2f, 0.2f, 0.2f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.05f, 0.05f, 0.05f, 0.03f};
static const float lr_cooldown0[12] = {0.2f, 0.2f, 0.2f, 0.1f, 0.1f, 0.05f, 0.05f, 0.05f, 0.03f, 0.03f, 0.03f, 0.03f};

Test(callbacks, reduce_lr_on_plateau_decisions)
{
    const float *want[3] = {lr_cooldown0, lr_cooldown0, lr_cooldown2};
    int cooldown, e;
    for (cooldown = 0; cooldown <= 2; cooldown++) {
        rt_plateau p;
        float lr = 0.2f;
        rt_plateau_init(&p, 0, 0.5, 2, 1e-4, cooldown, 0.03);
        for (e = 1; e <= 12; e++) {
            cr_assert_eq(lr, want[cooldown][e - 1], "cooldown %d, epoch %d: lr %.9g, Keras %.9g", cooldown, e,
                         (double)lr, (double)want[cooldown][e - 1]);
            lr = rt_plateau_update(&p, plateau_values[e - 1], lr);
        }
    }
}

/* The name pattern gives for epoch 3 with val_loss v, loss 0.5, accuracy 0.75. */
static const char *name_of(const char *pattern, double v)
{
    static char buf[256];
    rt_epoch_stats s;
    cgrt_error err;
    memset(&s, 0, sizeof s);
    s.has_val = 1;
    s.val_loss = v;
    s.loss = 0.5;
    s.metric[0] = 0.75;
    s.lr = 0.001f;
    cr_assert_eq(rt_checkpoint_name(pattern, &script_model, 3, &s, buf, sizeof buf, &err), 0, "%s: %s", pattern,
                 err.msg);
    return buf;
}

Test(callbacks, checkpoint_names_take_python_format_fields)
{
    /* what Python's str.format gives for these fields (Keras: filepath.format(epoch=epoch + 1, **logs)) */
    cr_assert_str_eq(name_of("w.safetensors", 0.1), "w.safetensors");
    cr_assert_str_eq(name_of("w-{epoch:02d}-{val_loss:.4f}.st", 0.123456), "w-03-0.1235.st");
    cr_assert_str_eq(name_of("{epoch}_{val_loss}", 0.25), "3_0.25");
    cr_assert_str_eq(name_of("{val_loss}", 1200.0), "1200.0");
    cr_assert_str_eq(name_of("{val_loss}", 1e-5), "1e-05");
    cr_assert_str_eq(name_of("{val_loss}", 0.1 + 0.2), "0.30000000000000004");
    cr_assert_str_eq(name_of("{val_loss:08}", -0.5), "-00000.5");
    cr_assert_str_eq(name_of("{val_loss:.2e}", 12345.0), "1.23e+04");
    cr_assert_str_eq(name_of("{val_loss:g}", 0.5), "0.5");
    cr_assert_str_eq(name_of("{epoch:3d}|{epoch:.1f}", 0), "  3|3.0");
    cr_assert_str_eq(name_of("{loss:.1f}-{accuracy:.2f}-{val_accuracy:.3f}", 0), "0.5-0.75-0.000");
    cr_assert_str_eq(name_of("{{epoch}}-{epoch}", 0), "{epoch}-3");
    cr_assert_str_eq(name_of("{lr:.0e}", 0), "1e-03");
}

Test(callbacks, bad_checkpoint_names_are_refused)
{
    static const char *const bad[][2] = {
        {"w{foo}.st", "{foo} is not a field of a checkpoint name (epoch, loss, accuracy, val_loss, val_accuracy, lr)"},
        {"w{val_loss:d}.st", "'{val_loss:d}' is not a format this runtime knows"},
        {"w{epoch:.2}.st", "'{epoch:.2}' is not a format"},
        {"w{epoch:x}.st", "'{epoch:x}' is not a format"},
        {"w{loss:.f}.st", "'{loss:.f}' is not a format"},
        {"w{epoch.st", "a '{' without its '}'"},
        {"w}.st", "a '}' without its '{'"},
    };
    rt_epoch_stats s;
    cgrt_error err;
    char buf[256];
    size_t i;
    memset(&s, 0, sizeof s);
    s.has_val = 1;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(rt_checkpoint_name(bad[i][0], &script_model, 1, &s, buf, sizeof buf, &err), -1, "%s", bad[i][0]);
        cr_assert(strstr(err.msg, bad[i][1]) != NULL, "%s: \"%s\" lacks \"%s\"", bad[i][0], err.msg, bad[i][1]);
    }
    s.has_val = 0;
    cr_assert_eq(rt_checkpoint_name("{val_loss}", &script_model, 1, &s, buf, sizeof buf, &err), -1);
    cr_assert(strstr(err.msg, "{val_loss} has no value without validation data") != NULL, "%s", err.msg);
    cr_assert_eq(rt_checkpoint_name("{loss}", &script_model, 0, NULL, buf, sizeof buf, &err), -1);
    cr_assert(strstr(err.msg, "before the first epoch") != NULL, "%s", err.msg);
    cr_assert_eq(rt_checkpoint_name("w{epoch}", &script_model, 0, NULL, buf, sizeof buf, &err), 0, "%s", err.msg);
    cr_assert_str_eq(buf, "w0");
}

/* ---- fit end to end ------------------------------------------------------------------- */

/* The number of data rows of a history file. */
static int history_rows(const char *path)
{
    char *h = t_read(path, NULL);
    int n = t_count_lines(h) - 1;
    free(h);
    return n;
}

Test(callbacks, restore_best_weights_saves_and_evaluates_the_best_epoch)
{
    /* val_loss 1.0 0.8 0.6 0.65 0.7 0.75 ...: best at 3, patience 3 stops after epoch 6 */
    static const double v[] = {1.0, 0.8, 0.6, 0.65, 0.7, 0.75, 0.5, 0.4};
    const char *dir = script_data(), *a = t_path(dir, "a.st"), *b = t_path(dir, "b.st"), *c = t_path(dir, "c.st");
    const char *h = t_path(dir, "h.csv");
    char *out, *ca, *cb;
    size_t na, nb;
    script(v, NULL, 8);
    out = fit(dir, (const char *const[]){"--epochs", "10", "--patience", "3", "--restore-best-weights", "--save", a,
                                         "--history", h, NULL});
    cr_assert(strstr(out, "early stopping: val_loss did not improve for 3 epochs\n"
                          "Restoring model weights from the end of the best epoch: 3.\n") != NULL,
              "%s", out);
    cr_assert_str_eq(t_last_line(out), "test: loss=0.6000 accuracy=0.5000", "the test figures are not epoch 3's");
    cr_assert_eq(history_rows(h), 6);
    cr_assert_eq(checkpoint_epoch(a), 3.0f, "the last checkpoint holds epoch %g", (double)checkpoint_epoch(a));
    free(out);
    /* the checkpoint that --save-best-only kept is the same file */
    out = fit(dir, (const char *const[]){"--epochs", "10", "--patience", "3", "--save-best-only", "--save", b, NULL});
    cr_assert_str_eq(t_last_line(out), "test: loss=0.7500 accuracy=0.5000", "without restoring: epoch 6's weights");
    ca = t_read(a, &na);
    cb = t_read(b, &nb);
    cr_assert(na == nb && memcmp(ca, cb, na) == 0, "the restored checkpoint differs from the best one kept");
    free(ca), free(cb), free(out);
    /* without early stopping, the best is restored after the last epoch (Keras 3) */
    out = fit(dir, (const char *const[]){"--epochs", "5", "--restore-best-weights", "--save", c, NULL});
    cr_assert(strstr(out, "Restoring model weights from the end of the best epoch: 3.\n") != NULL, "%s", out);
    cr_assert_eq(checkpoint_epoch(c), 3.0f);
    cr_assert_str_eq(t_last_line(out), "test: loss=0.6000 accuracy=0.5000");
    free(out);
}

Test(callbacks, min_delta_and_mode_decide_the_stop)
{
    static const double slow[] = {1.0, 0.95, 0.91, 0.905, 0.9};
    static const double acc[] = {0.5, 0.7, 0.6, 0.65, 0.69, 0.8};
    const char *dir = script_data(), *h = t_path(dir, "h.csv"), *w = t_path(dir, "w.st");
    char *out;
    script(slow, NULL, 5);
    out = fit(dir,
              (const char *const[]){"--epochs", "5", "--patience", "2", "--min-delta", "0.1", "--history", h, NULL});
    cr_assert_eq(history_rows(h), 3, "min_delta 0.1 stops after epoch 3:\n%s", out);
    free(out);
    out = fit(dir, (const char *const[]){"--epochs", "5", "--patience", "2", "--history", h, NULL});
    cr_assert_eq(history_rows(h), 5, "without min_delta every epoch improves:\n%s", out);
    free(out);
    /* val_accuracy: auto is max (best 0.7 at 2, stop at 5); min reverses it (best 0.5 at 1, stop at 4) */
    script((const double[]){1.0, 1.0, 1.0, 1.0, 1.0, 1.0}, acc, 6);
    out = fit(dir, (const char *const[]){"--epochs", "9", "--patience", "3", "--monitor", "val_accuracy",
                                         "--restore-best-weights", "--save", w, "--history", h, NULL});
    cr_assert_eq(history_rows(h), 5, "%s", out);
    cr_assert_eq(checkpoint_epoch(w), 2.0f);
    cr_assert(strstr(out, "early stopping: val_accuracy did not improve for 3 epochs") != NULL, "%s", out);
    free(out);
    out = fit(dir, (const char *const[]){"--epochs", "9", "--patience", "3", "--monitor", "val_accuracy", "--mode",
                                         "min", "--restore-best-weights", "--save", w, "--history", h, NULL});
    cr_assert_eq(history_rows(h), 4, "%s", out);
    cr_assert_eq(checkpoint_epoch(w), 1.0f);
    free(out);
}

/* The lr column (the last before seconds) of every row of a history file into lr; returns the rows. */
static int history_lr(const char *path, double *lr, int max)
{
    char *h = t_read(path, NULL), *line = strchr(h, '\n') + 1;
    int n = 0;
    const char *head = "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,samples_per_sec\n";
    cr_assert(strncmp(h, head, strlen(head)) == 0, "%s", h);
    for (; *line && n < max; line = strchr(line, '\n') + 1) {
        char *p = line;
        int k;
        for (k = 0; k < 5; k++)
            p = strchr(p, ',') + 1;
        lr[n++] = atof(p);
    }
    free(h);
    return n;
}

Test(callbacks, reduce_lr_on_plateau_changes_the_rate_at_keras_epochs)
{
    const char *dir = script_data(), *h = t_path(dir, "h.csv");
    double lr[16];
    char *out;
    int e;
    script(plateau_values, NULL, 12);
    out = fit(dir, (const char *const[]){"--epochs", "12", "--lr", "0.2", "--reduce-lr-factor", "0.5",
                                         "--reduce-lr-patience", "2", "--reduce-lr-cooldown", "2", "--min-lr", "0.03",
                                         "--history", h, NULL});
    cr_assert_eq(history_lr(h, lr, 16), 12);
    for (e = 1; e <= 12; e++) {
        cr_assert_float_eq(lr[e - 1], (double)lr_cooldown2[e - 1], 1e-7, "epoch %d: history lr %g, Keras %g", e,
                           lr[e - 1], (double)lr_cooldown2[e - 1]);
        cr_assert_eq(seen_lr[e], lr_cooldown2[e - 1], "epoch %d: the model trained with %g", e, (double)seen_lr[e]);
    }
    /* the messages, and the progress line shows the rate in the epochs where it changed */
    cr_assert(strstr(out, "Epoch 3: ReduceLROnPlateau reducing learning rate to 0.1.\n") != NULL, "%s", out);
    cr_assert(strstr(out, "Epoch 11: ReduceLROnPlateau reducing learning rate to 0.03.\n") != NULL, "%s", out);
    cr_assert(strstr(out, "val_accuracy: 0.5000 - lr: 0.1000 - ") != NULL, "%s", out);
    cr_assert(strstr(out, "Epoch 12/12 - ") != NULL && strstr(strstr(out, "Epoch 12/12 - "), "lr: 0.0300") != NULL,
              "%s", out);
    cr_assert(strstr(strstr(out, "Epoch 2/12 - "), "lr:") > strstr(out, "Epoch 4/12 - "), "lr shown unchanged: %s",
              out);
    free(out);
    /* the training loss (10 above the validation loss) with cooldown 0 */
    out = fit(dir, (const char *const[]){"--epochs", "12", "--lr", "0.2", "--reduce-lr-factor", "0.5",
                                         "--reduce-lr-patience", "2", "--min-lr", "0.03", "--monitor", "loss",
                                         "--history", h, NULL});
    cr_assert_eq(history_lr(h, lr, 16), 12);
    for (e = 1; e <= 12; e++)
        cr_assert_float_eq(lr[e - 1], (double)lr_cooldown0[e - 1], 1e-7, "cooldown 0, epoch %d", e);
    free(out);
}

Test(callbacks, checkpoint_names_with_epoch_and_val_loss)
{
    static const double v[] = {1.0, 0.8, 0.9, 0.5};
    const char *dir = script_data();
    char pattern[512];
    char *out;
    script(v, NULL, 4);
    snprintf(pattern, sizeof pattern, "%s/all-{epoch:02d}-{val_loss:.4f}.st", dir);
    out = fit(dir, (const char *const[]){"--epochs", "4", "--save", pattern, NULL});
    cr_assert_eq(checkpoint_epoch(t_path(dir, "all-01-1.0000.st")), 1.0f);
    cr_assert_eq(checkpoint_epoch(t_path(dir, "all-03-0.9000.st")), 3.0f);
    cr_assert_eq(checkpoint_epoch(t_path(dir, "all-04-0.5000.st")), 4.0f);
    cr_assert_eq(t_count_entries(dir, "all-"), 4);
    free(out);
    snprintf(pattern, sizeof pattern, "%s/best-{epoch}-{val_loss}.st", dir);
    out = fit(dir, (const char *const[]){"--epochs", "4", "--save", pattern, "--save-best-only", NULL});
    cr_assert_eq(t_count_entries(dir, "best-"), 3, "epoch 3 did not improve: no file");
    cr_assert_eq(checkpoint_epoch(t_path(dir, "best-1-1.0.st")), 1.0f);
    cr_assert_eq(checkpoint_epoch(t_path(dir, "best-2-0.800000011920929.st")), 2.0f); /* 0.8 as a float, read back */
    cr_assert_eq(checkpoint_epoch(t_path(dir, "best-4-0.5.st")), 4.0f);
    free(out);
}

Test(callbacks, epochs_0_saves_the_seeded_initial_weights)
{
    const char *dir = t_tmpdir(), *w = t_path(dir, "w.st"), *w0 = t_path(dir, "w0-{epoch}.st");
    const char *args[] = {"fit", "--data", dir, "--epochs", "0", "--seed", "7", "--save", w, NULL};
    tiny_state want, got;
    cgrt_error err;
    char *out, *errs;
    t_write_blobs_npy(dir, 32, 8, 5);
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, args), 0, "%s", errs);
    cr_assert_eq(t_count_lines(out), 1, "only the test figures: %s", out);
    free(out), free(errs);
    tiny_model.init(&want, 7);
    memset(&got, 0, sizeof got);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, got.params, w, &err), 0, "%s", err.msg);
    cr_assert(memcmp(got.params, want.params, 15 * sizeof(float)) == 0, "the checkpoint is not init(7)'s weights");
    cr_assert_neq(want.params[0], 0.0f);
    /* {epoch} is 0; a figure has no value before training */
    args[8] = w0;
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, args), 0, "%s", errs);
    cr_assert_eq(t_count_entries(dir, "w0-0.st"), 1);
    free(out), free(errs);
    args[8] = "x{loss}.st";
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, args), 2);
    cr_assert(strstr(errs, "--save x{loss}.st: {loss} has no value before the first epoch") != NULL, "%s", errs);
    free(out), free(errs);
}

/* The first feature of every sample train_step saw, in order. */
static float order_seen[256];
static int order_count;

/* tiny's training step that also records the order of the samples. */
static void order_train(void *state, int n, const float *x, const float *y, float *loss, float *metric)
{
    int b;
    for (b = 0; b < n && order_count < 256; b++)
        order_seen[order_count++] = x[b * 4];
    tiny_model.train_step(state, n, x, y, loss, metric);
}

Test(callbacks, shuffle_false_keeps_the_data_order)
{
    const char *dir = t_tmpdir();
    float x[24 * 4];
    long long y[24];
    cgrt_model m = tiny_model;
    char *out, *errs;
    int i, epoch, moved = 0;
    for (i = 0; i < 24; i++) {
        x[i * 4] = (float)i, x[i * 4 + 1] = x[i * 4 + 2] = x[i * 4 + 3] = 0.5f;
        y[i] = i % 3;
    }
    t_write_npy(t_path(dir, "x_train.npy"), "<f4", 0, "(24, 4)", x, sizeof x);
    t_write_npy(t_path(dir, "y_train.npy"), "<i8", 0, "(24,)", y, sizeof y);
    m.train_step = order_train;
    cr_assert_eq(t_run_cli(&m, dir, &out, &errs,
                           (const char *const[]){"fit", "--data", dir, "--epochs", "3", "--batch-size", "5",
                                                 "--shuffle", "false", "-q", NULL}),
                 0, "%s", errs);
    free(out), free(errs);
    cr_assert_eq(order_count, 72);
    for (epoch = 0; epoch < 3; epoch++)
        for (i = 0; i < 24; i++)
            cr_assert_eq(order_seen[epoch * 24 + i], (float)i, "epoch %d, sample %d: %g", epoch + 1, i,
                         (double)order_seen[epoch * 24 + i]);
    order_count = 0;
    cr_assert_eq(
        t_run_cli(&m, dir, &out, &errs,
                  (const char *const[]){"fit", "--data", dir, "--epochs", "1", "--shuffle", "true", "-q", NULL}),
        0, "%s", errs);
    free(out), free(errs);
    for (i = 0; i < 24; i++)
        moved += order_seen[i] != (float)i;
    cr_assert_gt(moved, 12, "the default shuffles: only %d samples moved", moved);
}

/* One fit command line that the callbacks' checks refuse, and the message. */
typedef struct bad_fit {
    const char *args[6];
    const char *msg;
} bad_fit;

Test(callbacks, bad_callback_flags_are_usage_errors)
{
    static const bad_fit cases[] = {
        {{"--mode", "up", NULL}, "--mode: 'up' is not auto, min or max"},
        {{"--shuffle", "no", NULL}, "--shuffle: 'no' is not true or false"},
        {{"--monitor", "val_acc", NULL},
         "--monitor: 'val_acc' is not a column of the history (loss, accuracy, val_loss, val_accuracy)"},
        {{"--monitor", "val_accuracy", "--validation-split", "0", NULL},
         "--monitor val_accuracy needs validation data (--validation-split or --validation-data)"},
        {{"--reduce-lr-factor", "1", NULL}, "--reduce-lr-factor: 1 is out of range"},
        {{"--min-lr", "-1", NULL}, "--min-lr: -1 is out of range"},
        {{"--save", "w{val_loss}", "--validation-split", "0", NULL}, "{val_loss} has no value without validation"},
        {{"--save", "w{bogus}", NULL}, "{bogus} is not a field of a checkpoint name"},
        {{"--epochs", "-1", NULL}, "--epochs: -1 is outside 0.."},
    };
    const char *dir = script_data();
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[16] = {"fit", "--data", dir, "--validation-split", "0.5"};
        char *out, *errs;
        int n = 5, rc;
        const char *const *a;
        for (a = cases[i].args; *a; a++)
            args[n++] = *a;
        rc = t_run_cli(&script_model, dir, &out, &errs, args);
        cr_assert_eq(rc, 2, "case %zu: status %d, stderr %s", i, rc, errs);
        cr_assert(strstr(errs, cases[i].msg) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, errs, cases[i].msg);
        cr_assert_eq(t_count_lines(errs), 1, "%s", errs);
        free(out), free(errs);
    }
}

Test(callbacks, model_defaults_and_the_command_line_over_them)
{
    static const double v[] = {1.0, 0.8, 0.6, 0.65, 0.7, 0.75, 0.5, 0.4};
    const char *dir = script_data(), *h = t_path(dir, "h.csv");
    cgrt_model m = script_model;
    char *out, *errs;
    const char *args[] = {"fit", "--data",   dir,  "--validation-split", "0.5", "--batch-size",
                          "8",   "--epochs", "10", "--history",          h,     "-q",
                          NULL,  NULL,       NULL};
    script(v, NULL, 8);
    m.callbacks.patience = 3;
    m.callbacks.restore_best_weights = 1;
    m.callbacks.monitor = "val_loss";
    cr_assert_eq(t_run_cli(&m, dir, &out, &errs, args), 0, "%s", errs);
    cr_assert_str_eq(out, "test: loss=0.6000 accuracy=0.5000\n");
    cr_assert_eq(history_rows(h), 6);
    free(out), free(errs);
    args[12] = "--patience", args[13] = "0"; /* the command line turns early stopping off */
    cr_assert_eq(t_run_cli(&m, dir, &out, &errs, args), 0, "%s", errs);
    cr_assert_eq(history_rows(h), 10);
    cr_assert_str_eq(out, "test: loss=0.4000 accuracy=0.5000\n", "the best epoch, 8, is still restored");
    free(out), free(errs);
    /* without validation the model's val_loss falls back to loss (10 + the script): stop at 6, best 3 */
    args[3] = "--shuffle", args[4] = "false", args[12] = NULL;
    epoch_samples = 16;
    cr_assert_eq(t_run_cli(&m, dir, &out, &errs, args), 0, "%s", errs);
    cr_assert_str_eq(out, "test: loss=0.6000 accuracy=0.5000\n");
    cr_assert_eq(history_rows(h), 6);
    free(out), free(errs);
}
