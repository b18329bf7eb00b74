/* cli.c: cgrt_main, the command line of every training binary: the command,
 * its flags (parsed by cli_args.c from the flag table there) and their
 * checks, then the fit, evaluate, predict and bench subcommands (those of a
 * time series in cli_series.c); help, version and usage errors are written
 * by cli_help.c. Data paths are read through the format table (rt_load,
 * formats.c).
 * This is the command-line layer: it prints results to stdout and errors to
 * stderr as one line "BIN: FILE: what is wrong". Exit status: 0 success,
 * 1 data or runtime error, 2 usage error (its line ends with the usage). */
#include "rt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Returns the last path component of argv[0] (the name used in messages). */
static const char *bin_name(int argc, char **argv, const cgrt_model *m)
{
    const char *s;
    if (argc < 1 || !argv[0] || !argv[0][0])
        return m->name;
    s = strrchr(argv[0], '/');
    return s ? s + 1 : argv[0];
}

/* Prints "BIN: msg" to stderr and returns status. */
int rt_cli_report(const char *bin, int status, const char *msg)
{
    fprintf(stderr, "%s: %s\n", bin, msg);
    return status;
}

/* Allocates a 64-byte aligned, zeroed model state and initialises it; NULL when out of memory. */
static void *state_new(const cgrt_model *m, uint64_t seed, double lr)
{
    size_t bytes = (m->state_bytes + 63) / 64 * 64;
    void *s = NULL;
    if (posix_memalign(&s, 64, bytes ? bytes : 64) != 0)
        return NULL;
    memset(s, 0, bytes ? bytes : 64);
    m->init(s, seed);
    if (m->set_lr)
        m->set_lr(s, (float)lr);
    if (m->set_seed)
        m->set_seed(s, seed);
    return s;
}

/* 1 when the model forecasts a time series. */
static int is_series(const cgrt_model *m)
{
    return m->data.series.window > 0;
}

/* ---- fit -------------------------------------------------------------------- */

/* Prints the test figures line: "PREFIXloss=x accuracy=y ...". */
void rt_cli_print_figures(const cgrt_model *m, const char *prefix, double loss, const double *metrics)
{
    int k;
    printf("%sloss=%.4f", prefix, loss);
    for (k = 0; k < m->num_metrics; k++)
        printf(" %s=%.4f", m->metric_names[k], metrics[k]);
    printf("\n");
    fflush(stdout);
}

/* Loads the validation set: --validation-data (all of it), or the tail of train for --validation-split. */
static int load_validation(const cgrt_model *m, const rt_cli_opts *o, cgrt_dataset *train, cgrt_dataset *val,
                           cgrt_error *err)
{
    memset(val, 0, sizeof *val);
    if (o->val_data) {
        cgrt_dataset extra;
        if (rt_load_data(m, o->val_data, 0, val, &extra, err) != 0)
            return -1;
        cgrt_dataset_free(&extra);
        return 0;
    }
    if (o->val_split > 0.0)
        return cgrt_split_tail(train, (float)o->val_split, val, err);
    return 0;
}

/* --init-from: starts from the tensors of another model's checkpoint that
 * have this model's names (transfer learning) and says what matched. */
static int init_from(const cgrt_model *m, void *state, const char *path, int verbose, cgrt_error *err)
{
    cgrt_load_report rep;
    if (cgrt_load_checkpoint_by_name(m, m->param_block(state), path, &rep, err) != 0)
        return -1;
    if (verbose > 0) {
        printf("init-from %s: loaded %d tensor%s (%s)", path, rep.loaded, rep.loaded == 1 ? "" : "s", rep.loaded_names);
        if (rep.kept)
            printf("; kept initial values: %s", rep.kept_names);
        if (rep.unused)
            printf("; not in this model: %s", rep.unused_names);
        printf("\n");
        fflush(stdout);
    }
    return 0;
}

/* The state fit starts from, after the seeded initialisation: --init-from's
 * tensors, or --weights' checkpoint (training goes on: its Normalization
 * statistics are kept), else Normalization statistics computed from the
 * training rows (Keras' adapt). 0, or -1 with err set. */
static int fit_start(const cgrt_model *m, void *state, const rt_cli_opts *o, const cgrt_dataset *train, cgrt_error *err)
{
    if (o->init_from && init_from(m, state, o->init_from, (int)o->verbose, err) != 0)
        return -1;
    if (o->weights)
        return cgrt_load_checkpoint(m, m->param_block(state), o->weights, err);
    if (cgrt_adapt_stats(m, m->param_block(state), train, err) != 0)
        return -1;
    for (int i = 0; i < m->num_adapt && o->verbose > 0; i++)
        printf("%s: mean and variance of %d features from the %d training rows\n", m->adapt[i].layer,
               m->adapt[i].features, train->n);
    return 0;
}

/* --class-weight (unless absent or "none"): the class weights of the
 * training rows (after the test and validation splits, so that "balanced"
 * counts them alone) multiply their sample weights; says which they are.
 * 0, or -1 with err set. */
static int fit_class_weights(const cgrt_model *m, const rt_cli_opts *o, cgrt_dataset *train, cgrt_error *err)
{
    int k = rt_weight_classes(m);
    float *cw;
    if (!o->class_weight || strcmp(o->class_weight, "none") == 0)
        return 0;
    if (!(cw = rt_alloc_array(k > 0 ? (size_t)k : 1, sizeof(float))))
        return rt_fail(err, "out of memory for the class weights");
    if (rt_class_weights(m, o->class_weight, train, cw, err) != 0 || rt_apply_class_weights(m, train, cw, err) != 0) {
        free(cw);
        return -1;
    }
    if (o->verbose > 0) {
        printf("class weights (%s):",
               strcmp(o->class_weight, "balanced") == 0 ? "balanced over the training rows" : "--class-weight");
        for (int c = 0; c < k; c++)
            printf(" %d=%.4g", c, (double)cw[c]);
        printf("\n");
    }
    free(cw);
    return 0;
}

/* Resolves fit's callback flags into cb and checks the --save name's fields
 * against the figures fit will have; -1 with err holding a usage error. */
static int fit_callbacks(const cgrt_model *m, const rt_cli_opts *o, rt_callback_opts *cb, cgrt_error *err)
{
    int has_val = o->val_data || o->val_split > 0.0 || (is_series(m) && m->data.series.val_steps > 0);
    rt_epoch_stats s;
    char name[4096];
    if (rt_callbacks_resolve(m, o, has_val, cb, err) != 0)
        return -1;
    if (!o->save)
        return 0;
    memset(&s, 0, sizeof s);
    s.has_val = has_val;
    return rt_checkpoint_name(o->save, m, o->epochs > 0, o->epochs > 0 ? &s : NULL, name, sizeof name, err);
}

/* fit: loads the data, trains, and evaluates the test split when there is one. */
static int cmd_fit(const cgrt_model *m, const rt_cli_opts *o, const char *bin)
{
    rt_loaded d;
    cgrt_error err;
    rt_fit_opts fo;
    void *state;
    int rc;
    if (!o->data)
        return rt_cli_usage_error(bin, "fit", "no --data given and the model has no default dataset");
    if (o->val_data && o->val_split > 0.0)
        return rt_cli_usage_error(bin, "fit", "give either --validation-split or --validation-data, not both");
    if (o->weights && o->init_from)
        return rt_cli_usage_error(bin, "fit", "give either --weights (go on training) or --init-from, not both");
    if (is_series(m) && (o->val_data || o->val_split > 0.0))
        return rt_cli_usage_error(bin, "fit",
                                  "a time series validates on its val_steps targets (set in cg_compile); "
                                  "--validation-split and --validation-data do not apply");
    if (o->plot && o->epochs == 0)
        return rt_cli_usage_error(bin, "fit", "--plot draws the epochs fit trains: give --epochs 1 or more");
    memset(&fo, 0, sizeof fo);
    if (fit_callbacks(m, o, &fo.cb, &err) != 0)
        return rt_cli_usage_error(bin, "fit", err.msg);
    if (rt_load(m, o->data, RT_ROLE_DATA, &d, &err) != 0)
        return rt_cli_report(bin, 1, err.msg);
    if (is_series(m) && o->verbose > 0)
        rt_cli_print_series_parts(m, &d.series);
    if (d.note[0] && o->verbose > 0)
        printf("labels: %s\n", d.note);
    if (!is_series(m) && load_validation(m, o, &d.train, &d.val, &err) != 0) {
        rt_loaded_free(&d);
        return rt_cli_report(bin, 1, err.msg);
    }
    state = state_new(m, o->seed, o->lr);
    if (state && (fit_class_weights(m, o, &d.train, &err) != 0 || fit_start(m, state, o, &d.train, &err) != 0)) {
        free(state);
        rt_loaded_free(&d);
        return rt_cli_report(bin, 1, err.msg);
    }
    fo.epochs = (int)o->epochs;
    fo.batch = (int)o->batch;
    fo.seed = o->seed;
    fo.verbose = (int)o->verbose;
    fo.lr = (float)o->lr;
    fo.save_path = o->save;
    fo.history_path = o->history;
    fo.plot_path = o->plot;
    fo.bin = bin;
    fo.series_stats = is_series(m) ? &d.series.stats : NULL;
    rc = state ? rt_fit(m, state, &fo, &d.train, &d.val, &err) : rt_fail(&err, "out of memory for the model state");
    if (rc != RT_FIT_OK) {
        rt_cli_report(bin, 1, err.msg);
    } else if (d.test.n > 0) {
        const cgrt_series *s = &d.series;
        double loss, metrics[CGRT_MAX_METRICS];
        rt_evaluate(m, state, &d.test, &loss, metrics);
        rt_cli_print_figures(m, "test: ", loss, metrics);
        if (is_series(m) &&
            rt_cli_print_forecast_errors(m, state, s, &s->stats, s->train + s->val, s->test, "test: ", &err) != 0) {
            rt_cli_report(bin, 1, err.msg);
            rc = RT_FIT_ERROR;
        }
    }
    free(state);
    rt_loaded_free(&d);
    return rc == RT_FIT_OK ? 0 : 1;
}

/* ---- evaluate ---------------------------------------------------------------- */

/* Allocates a state and loads the checkpoint into it; NULL with err set on failure. */
void *rt_cli_state_from_checkpoint(const cgrt_model *m, const char *weights, cgrt_error *err)
{
    void *state = state_new(m, 42, m->default_lr);
    if (!state) {
        rt_fail(err, "out of memory for the model state");
        return NULL;
    }
    if (cgrt_load_checkpoint(m, m->param_block(state), weights, err) != 0) {
        free(state);
        return NULL;
    }
    return state;
}

/* evaluate: loss and metric of a checkpoint on the test split (or all the data without one). */
static int cmd_evaluate(const cgrt_model *m, const rt_cli_opts *o, const char *bin)
{
    cgrt_dataset train, test;
    cgrt_error err;
    double loss, metrics[CGRT_MAX_METRICS];
    void *state;
    if (!o->weights)
        return rt_cli_usage_error(bin, "evaluate", "evaluate needs --weights FILE");
    if (!o->data)
        return rt_cli_usage_error(bin, "evaluate", "no --data given and the model has no default dataset");
    state = rt_cli_state_from_checkpoint(m, o->weights, &err);
    if (!state)
        return rt_cli_report(bin, 1, err.msg);
    if (is_series(m)) {
        int rc = rt_cli_evaluate_series(m, o, state, &err);
        free(state);
        return rc != 0 ? rt_cli_report(bin, 1, err.msg) : 0;
    }
    if (cgrt_load_data(m, o->data, &train, &test, &err) != 0) {
        free(state);
        return rt_cli_report(bin, 1, err.msg);
    }
    rt_evaluate(m, state, test.n > 0 ? &test : &train, &loss, metrics);
    rt_cli_print_figures(m, "", loss, metrics);
    free(state);
    cgrt_dataset_free(&train);
    cgrt_dataset_free(&test);
    return 0;
}

/* ---- predict ------------------------------------------------------------------ */

/* Writes one CSV line per prediction (plus the argmax class for classifiers). */
static void write_predictions(const cgrt_model *m, FILE *f, const float *out, int n)
{
    int i, j;
    for (i = 0; i < n; i++) {
        const float *row = out + (size_t)i * (size_t)m->out_features;
        int best = 0;
        for (j = 0; j < m->out_features; j++) {
            fprintf(f, "%s%.6g", j ? "," : "", (double)row[j]);
            if (row[j] > row[best])
                best = j;
        }
        if (m->label_kind == CGRT_LABEL_SPARSE)
            fprintf(f, ",%d", best);
        fputc('\n', f);
    }
}

/* Runs m->predict over d in batches of max_batch and writes the results to f. */
static int predict_all(const cgrt_model *m, void *state, const cgrt_dataset *d, FILE *f, cgrt_error *err)
{
    float *out = rt_alloc_array((size_t)m->max_batch * (size_t)m->out_features, sizeof(float));
    int i;
    if (!out)
        return rt_fail(err, "out of memory for predictions");
    for (i = 0; i < d->n; i += m->max_batch) {
        int b = d->n - i < m->max_batch ? d->n - i : m->max_batch;
        m->predict(state, b, d->x + (size_t)i * (size_t)d->features, out);
        write_predictions(m, f, out, b);
    }
    free(out);
    return 0;
}

/* predict: writes the predictions of a checkpoint for every sample of --input. */
static int cmd_predict(const cgrt_model *m, const rt_cli_opts *o, const char *bin)
{
    rt_loaded d;
    cgrt_error err;
    FILE *f = stdout;
    void *state;
    int rc = 0;
    if (is_series(m))
        return rt_cli_predict_series(m, o, bin);
    if (o->data != m->data.path) /* given on the command line */
        return rt_cli_usage_error(bin, "predict", "flag --data does not apply to predict (give --input FILE)");
    if (!o->weights || !o->input)
        return rt_cli_usage_error(bin, "predict", "predict needs --weights FILE and --input FILE");
    state = rt_cli_state_from_checkpoint(m, o->weights, &err);
    if (!state)
        return rt_cli_report(bin, 1, err.msg);
    if (rt_load(m, o->input, RT_ROLE_INPUT, &d, &err) != 0) {
        free(state);
        return rt_cli_report(bin, 1, err.msg);
    }
    if (o->output && !(f = fopen(o->output, "w"))) {
        rt_fail(&err, "%s: cannot write: %s", o->output, strerror(errno));
        rc = 1;
    } else if (predict_all(m, state, &d.train, f, &err) != 0) {
        rc = 1;
    }
    if (f && (fflush(f) != 0 || ferror(f)) && rc == 0) {
        rt_fail(&err, "%s: cannot write: %s", o->output ? o->output : "stdout", strerror(errno));
        rc = 1;
    }
    if (f && f != stdout && fclose(f) != 0 && rc == 0) {
        rt_fail(&err, "%s: cannot write: %s", o->output, strerror(errno));
        rc = 1;
    }
    free(state);
    rt_loaded_free(&d);
    return rc ? rt_cli_report(bin, 1, err.msg) : 0;
}

/* ---- bench -------------------------------------------------------------------- */

/* Fills one batch of random inputs in [0, 1) and random valid labels. */
static void random_batch(const cgrt_model *m, int b, float *x, float *y)
{
    cgrt_rng r = {12345};
    size_t i;
    for (i = 0; i < (size_t)b * (size_t)m->in_features; i++)
        x[i] = (float)(cgrt_rng_next(&r) >> 40) / (float)(1 << 24);
    for (i = 0; i < (size_t)b * (size_t)m->label_width; i++) {
        if (m->label_kind == CGRT_LABEL_SPARSE)
            y[i] = (float)(cgrt_rng_next(&r) % (uint64_t)(m->num_classes > 0 ? m->num_classes : 1));
        else
            y[i] = (float)(cgrt_rng_next(&r) >> 40) / (float)(1 << 24);
    }
}

/* bench: times train steps (samples/s) and predict calls (microseconds per sample). */
static int cmd_bench(const cgrt_model *m, const rt_cli_opts *o, const char *bin)
{
    int b = o->batch ? (int)o->batch : (m->max_batch < 64 ? m->max_batch : 64), i, calls;
    float *x = rt_alloc_array((size_t)b * (size_t)m->in_features, sizeof(float));
    float *y = rt_alloc_array((size_t)b * (size_t)(m->label_width ? m->label_width : 1), sizeof(float));
    float *out = rt_alloc_array((size_t)b * (size_t)m->out_features, sizeof(float));
    void *state = state_new(m, 42, m->default_lr);
    float loss, metrics[CGRT_MAX_METRICS];
    double t;
    if (!x || !y || !out || !state) {
        free(x);
        free(y);
        free(out);
        free(state);
        return rt_cli_report(bin, 1, "out of memory for the benchmark");
    }
    random_batch(m, b, x, y);
    for (i = 0; i < 10; i++)
        m->train_step(state, b, x, y, &loss, metrics);
    t = rt_now();
    for (i = 0; i < o->iters; i++)
        m->train_step(state, b, x, y, &loss, metrics);
    t = rt_now() - t;
    printf("train_samples_per_sec=%.1f\n", t > 0 ? (double)o->iters * b / t : 0.0);
    calls = (int)o->iters > (2000 + b - 1) / b ? (int)o->iters : (2000 + b - 1) / b;
    for (i = 0; i < 10; i++)
        m->predict(state, b, x, out);
    t = rt_now();
    for (i = 0; i < calls; i++)
        m->predict(state, b, x, out);
    t = rt_now() - t;
    printf("predict_us_per_sample=%.4f\n", t * 1e6 / ((double)calls * b));
    fflush(stdout);
    free(x);
    free(y);
    free(out);
    free(state);
    return 0;
}

/* ---- entry point ---------------------------------------------------------------- */

/* BIN help [COMMAND] (or --help, -h): the help on stdout; returns the exit status. */
static int help(int argc, char **argv, const char *bin, const cgrt_model *m)
{
    const rt_cli_cmd *c;
    char msg[256];
    if (argc < 3) {
        rt_cli_help(stdout, bin, m);
        return 0;
    }
    if (!(c = rt_cli_find_cmd(argv[2]))) {
        snprintf(msg, sizeof msg, "%s: unknown command '%.100s'", argv[1], argv[2]);
        return rt_cli_usage_error(bin, NULL, msg);
    }
    rt_cli_help_cmd(stdout, bin, m, c);
    return 0;
}

/* Reads the class:weight pairs of --class-weight for m; 0, or -1 with the
 * usage error in msg. */
static int check_class_pairs(const cgrt_model *m, const char *spec, char *msg, size_t size)
{
    int k = rt_weight_classes(m);
    float *cw = rt_alloc_array((size_t)k, sizeof(float));
    cgrt_dataset none;
    cgrt_error err;
    int rc;
    memset(&none, 0, sizeof none);
    rc = cw ? rt_class_weights(m, spec, &none, cw, &err) : rt_fail(&err, "out of memory for the class weights");
    free(cw);
    if (rc != 0)
        snprintf(msg, size, "%s", err.msg);
    return rc;
}

/* Checks the weight flags of command c against model m; 0, or -1 with the
 * usage error in msg. */
static int check_weight_flags(const cgrt_model *m, const rt_cli_opts *o, const rt_cli_cmd *c, char *msg, size_t size)
{
    int cw = c->bit == RT_CMD_FIT && o->class_weight && strcmp(o->class_weight, "none") != 0;
    int any = cw || o->sample_weight || (o->sample_weight_column && (c->bit & (RT_CMD_FIT | RT_CMD_EVAL)));
    const char *problem = NULL;
    if (!any)
        return 0;
    if (m->data.series.window > 0)
        problem = "sample and class weights do not apply to a time series";
    else if (!m->train_step_weighted)
        problem = "this model's custom loss gives the batch's value alone, so it takes no sample or class weights";
    else if (o->sample_weight && o->sample_weight_column)
        problem = "give either --sample-weight or --sample-weight-column, not both";
    else if (o->sample_weight_column && !o->label_column)
        problem = "--sample-weight-column needs --label-column: the CSV's header names both columns";
    else if (o->sample_weight && m->data.class_range[1] > 0)
        problem = "--sample-weight: the model keeps only some classes of its data, so the rows of the file and "
                  "of the training data differ (give the weights as a CSV column)";
    else if (cw && rt_weight_classes(m) < 1)
        problem = "--class-weight needs a classifier with one output (class indices, one-hot labels or one binary "
                  "label)";
    if (problem) {
        snprintf(msg, size, "%s", problem);
        return -1;
    }
    return cw && strcmp(o->class_weight, "balanced") != 0 ? check_class_pairs(m, o->class_weight, msg, size) : 0;
}

/* Runs the command line of a training binary; returns the exit status. */
int cgrt_main(int argc, char **argv, const cgrt_model *m)
{
    const char *bin = bin_name(argc, argv, m);
    const rt_cli_cmd *c;
    cgrt_model labelled;
    cgrt_error err;
    rt_cli_opts o;
    char msg[sizeof(cgrt_error)];
    int rc;
    if (m->num_metrics < 0 || m->num_metrics > CGRT_MAX_METRICS) {
        fprintf(stderr, "%s: model %s reports %d metrics; this runtime handles at most %d\n", bin, m->name,
                m->num_metrics, CGRT_MAX_METRICS);
        return 1;
    }
    if (argc < 2) {
        rt_cli_usage(stderr, bin, m);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
        return help(argc, argv, bin, m);
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        rt_cli_version(stdout, m);
        return 0;
    }
    if (!(c = rt_cli_find_cmd(argv[1]))) {
        snprintf(msg, sizeof msg,
                 "unknown command '%.100s' (fit, evaluate, predict, bench, gradcheck, help or version)", argv[1]);
        return rt_cli_usage_error(bin, NULL, msg);
    }
    rt_cli_defaults(m, c, &o);
    rc = rt_cli_parse(argc, argv, 2, c, &o, &err);
    if (rc < 0)
        return rt_cli_usage_error(bin, c->name, err.msg);
    if (rc == RT_CLI_HELP)
        rt_cli_help_cmd(stdout, bin, m, c);
    if (rc == RT_CLI_VERSION)
        rt_cli_version(stdout, m);
    if (rc != RT_CLI_RUN)
        return 0;
    if (o.label_column && o.label_column != m->data.label_column && m->data.series.window > 0)
        return rt_cli_usage_error(bin, c->name,
                                  "--label-column does not apply to a time series (its column is "
                                  ".series.column, set in cg_compile)");
    if (check_weight_flags(m, &o, c, msg, sizeof msg) != 0)
        return rt_cli_usage_error(bin, c->name, msg);
    if (o.label_column || o.sample_weight_column || o.sample_weight) { /* the loaders read them from the data spec */
        labelled = *m;
        labelled.data.label_column = o.label_column;
        labelled.data.sample_weight_column = o.sample_weight_column;
        labelled.data.sample_weight_file = o.sample_weight;
        m = &labelled;
    }
    if ((c->bit & (RT_CMD_FIT | RT_CMD_BENCH | RT_CMD_GRADCHECK)) && o.batch > m->max_batch) {
        snprintf(msg, sizeof msg, "--batch-size %ld is larger than %d, the largest batch model %.64s was compiled for",
                 o.batch, m->max_batch, m->name);
        return rt_cli_usage_error(bin, c->name, msg);
    }
    switch (c->bit) {
    case RT_CMD_FIT: return cmd_fit(m, &o, bin);
    case RT_CMD_EVAL: return cmd_evaluate(m, &o, bin);
    case RT_CMD_PREDICT: return cmd_predict(m, &o, bin);
    case RT_CMD_GRADCHECK: return rt_cli_gradcheck(m, &o, bin);
    default: return cmd_bench(m, &o, bin);
    }
}
