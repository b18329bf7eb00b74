/* cli_args.c: the flags of the training binary's command line: the table of
 * subcommands and flags (from which both the parser and the help are made),
 * the defaults, and parsing with getopt_long. Short forms: -d data,
 * -e epochs, -b batch size, -s seed, -o save (fit) or output (predict),
 * -w weights, -v verbose, -q quiet, -h help. */
#include "rt_internal.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIT RT_CMD_FIT
#define EVAL RT_CMD_EVAL
#define PREDICT RT_CMD_PREDICT
#define BENCH RT_CMD_BENCH
#define GRADCHECK RT_CMD_GRADCHECK
#define ALL (FIT | EVAL | PREDICT | BENCH | GRADCHECK)
#define OPT(field) offsetof(rt_cli_opts, field)

/* clang-format off */
const rt_cli_cmd rt_cli_cmds[] = {
    {"fit",      FIT,     "train on --data (validation, checkpoints, history, early stopping), then report the test figures"},
    {"evaluate", EVAL,    "loss and metrics of a checkpoint on the test part of --data (all of it without one)"},
    {"predict",  PREDICT, "one CSV line of predictions per sample of --input (a forecaster: of the test part of --data)"},
    {"bench",    BENCH,   "time training steps and predictions on random data"},
    {"gradcheck", GRADCHECK, "every parameter's gradient against finite differences of the training loss on a batch of --data"},
};
const int rt_cli_num_cmds = (int)(sizeof rt_cli_cmds / sizeof rt_cli_cmds[0]);

/* name, short, kind, field, lo, hi, commands, required in, value, help, default shown when unset */
const rt_cli_flag rt_cli_flags[] = {
    {"weights", 'w', 's', OPT(weights), 0, 0, FIT | EVAL | PREDICT | GRADCHECK, EVAL | PREDICT, "FILE",
     "checkpoint to load (safetensors, as fit --save writes it); fit goes on training from it, keeping its Normalization statistics",
     "the initial weights of --seed"},
    {"input", 0, 's', OPT(input), 0, 0, PREDICT, PREDICT, "FILE",
     "samples to predict, without labels (a forecaster: raw values of its series)", NULL},
    {"output", 'o', 's', OPT(output), 0, 0, PREDICT, 0, "FILE", "file to write the predictions to", "stdout"},
    {"data", 'd', 's', OPT(data), 0, 0, FIT | EVAL | PREDICT | GRADCHECK, 0, "PATH",
     "dataset: a folder or a file of a format below (predict: a forecaster's series only)", "none"},
    {"epochs", 'e', 'i', OPT(epochs), 0, 1e9, FIT, 0, "N", "passes over the training data (0: none; --save writes the initial weights)", NULL},
    {"batch-size", 'b', 'i', OPT(batch), 1, INT_MAX, FIT | BENCH | GRADCHECK, 0, "N",
     "samples per step, at most the batch the model was compiled for", NULL},
    {"iters", 0, 'i', OPT(iters), 1, 1e9, BENCH, 0, "N", "timed training steps (and at least as many predictions)", NULL},
    {"lr", 0, 'f', OPT(lr), 0, 1e9, FIT, 0, "X", "learning rate (greater than 0)", NULL},
    {"seed", 's', 'u', OPT(seed), 0, 0, FIT | GRADCHECK, 0, "N", "seed of the initial weights, the shuffles and dropout", "0"},
    {"validation-split", 0, 'f', OPT(val_split), 0, 1, FIT, 0, "F",
     "fraction (below 1) of the training data, from its end, kept for validation", "0 (none)"},
    {"validation-data", 0, 's', OPT(val_data), 0, 0, FIT, 0, "PATH",
     "validation dataset, read as --data (instead of --validation-split)", "none"},
    {"save", 'o', 's', OPT(save), 0, 0, FIT, 0, "FILE",
     "checkpoint written after every epoch (safetensors); fields such as {epoch:02d} or {val_loss:.4f} in FILE take the epoch's figures", "none"},
    {"save-best-only", 0, 'n', OPT(save_best_only), 1, 0, FIT, 0, "",
     "write --save only after an epoch whose monitored value beats every earlier one", NULL},
    {"init-from", 0, 's', OPT(init_from), 0, 0, FIT, 0, "FILE",
     "start from the tensors of a checkpoint that have this model's names", "none"},
    {"history", 0, 's', OPT(history), 0, 0, FIT, 0, "FILE.csv", "CSV file of every epoch's figures", "none"},
    {"plot", 0, 's', OPT(plot), 0, 0, FIT, 0, "FILE.svg",
     "training curves drawn when training ends (early too): a panel for the loss and one per metric, validation dashed", "none"},
    {"monitor", 0, 's', OPT(monitor), 0, 0, FIT, 0, "NAME",
     "the history column that early stopping, --save-best-only and the learning-rate schedule watch: loss, val_loss, a metric or val_ and a metric",
     "val_loss (loss without validation)"},
    {"mode", 0, 's', OPT(mode), 0, 0, FIT, 0, "auto|min|max",
     "whether the monitored value improves by falling (min) or rising (max); auto: max for accuracy, min otherwise", "auto"},
    {"patience", 0, 'i', OPT(patience), 0, 1e9, FIT, 0, "N",
     "stop after N epochs in which the monitored value did not improve", "0 (never stop early)"},
    {"min-delta", 0, 'f', OPT(min_delta), 0, 1e9, FIT, 0, "X",
     "early stopping: an epoch improves only when it beats the best value by more than X", "0"},
    {"restore-best-weights", 0, 'n', OPT(restore_best_weights), 1, 0, FIT, 0, "",
     "when training ends, put back the weights of the epoch with the best monitored value (before the last --save and the test figures)", NULL},
    {"reduce-lr-factor", 0, 'f', OPT(reduce_lr_factor), 0, 1, FIT, 0, "F",
     "multiply the learning rate by F (below 1) when the monitored value stops improving", "0 (constant rate)"},
    {"reduce-lr-patience", 0, 'i', OPT(reduce_lr_patience), 0, 1e9, FIT, 0, "N",
     "epochs without improvement before the learning rate is reduced", "0"},
    {"reduce-lr-min-delta", 0, 'f', OPT(reduce_lr_min_delta), 0, 1e9, FIT, 0, "X",
     "the learning-rate schedule counts an improvement only when it beats the best value by more than X", "0"},
    {"reduce-lr-cooldown", 0, 'i', OPT(reduce_lr_cooldown), 0, 1e9, FIT, 0, "N",
     "epochs after a reduction in which the schedule waits before counting again", "0"},
    {"min-lr", 0, 'f', OPT(min_lr), 0, 1e9, FIT, 0, "X", "the learning rate is never reduced below X", "0"},
    {"shuffle", 0, 's', OPT(shuffle), 0, 0, FIT, 0, "true|false",
     "shuffle the training samples before every epoch (false: their order in the data)", "true"},
    {"verbose", 'v', 'i', OPT(verbose), 0, 2, FIT, 0, "0|1|2",
     "0 silent, 1 progress bar (a line per epoch off a terminal), 2 a line per epoch", NULL},
    {"quiet", 'q', 'n', OPT(verbose), 0, 0, FIT, 0, "", "the same as --verbose 0", NULL},
    {"label-column", 0, 's', OPT(label_column), 0, 0, FIT | EVAL | PREDICT | GRADCHECK, 0, "NAME",
     "the CSV column that holds the labels (named in the file's header)", "the last columns"},
    {"class-weight", 0, 's', OPT(class_weight), 0, 0, FIT, 0, "balanced|C:W,...",
     "weigh each training sample's loss by its class: balanced (n / (classes * count) over the training rows, after the splits) or class:weight pairs such as 0:1,1:3.5 (a class not named weighs 1); none: no class weights",
     "none"},
    {"sample-weight", 0, 's', OPT(sample_weight), 0, 0, FIT | EVAL, 0, "FILE.npy",
     "one weight per row of the --data file, multiplying that sample's loss (times its class weight); they follow their rows into the validation split and the test part", "none"},
    {"sample-weight-column", 0, 's', OPT(sample_weight_column), 0, 0, FIT | EVAL | PREDICT | GRADCHECK, 0, "NAME",
     "the CSV column (named in the header, with --label-column) that holds the sample weights; it is never a feature", "none"},
    {"samples", 0, 'i', OPT(samples), 1, 1e6, GRADCHECK, 0, "N",
     "coordinates checked per parameter (drawn with a fixed seed; every one of a smaller tensor)", NULL},
    {"help", 'h', 'h', 0, 0, 0, ALL, 0, "", "print this help and exit", NULL},
    {"version", 0, 'V', 0, 0, 0, ALL, 0, "", "print cgrad's version and the model's hash and exit", NULL},
};
/* clang-format on */
const int rt_cli_num_flags = (int)(sizeof rt_cli_flags / sizeof rt_cli_flags[0]);

/* The subcommand named name, or NULL. */
const rt_cli_cmd *rt_cli_find_cmd(const char *name)
{
    int i;
    for (i = 0; i < rt_cli_num_cmds; i++)
        if (strcmp(name, rt_cli_cmds[i].name) == 0)
            return &rt_cli_cmds[i];
    return NULL;
}

/* Fills the callback flags of o with the model's defaults, and Keras' own
 * where it gives none (ReduceLROnPlateau: patience 10, min_delta 1e-4). */
static void callback_defaults(const cgrt_callbacks *cb, rt_cli_opts *o)
{
    static const char *const modes[] = {"auto", "min", "max"};
    o->monitor = cb->monitor;
    o->mode = cb->mode > CGRT_MODE_AUTO && cb->mode <= CGRT_MODE_MAX ? modes[cb->mode] : NULL;
    o->min_delta = cb->min_delta;
    o->patience = cb->patience;
    o->restore_best_weights = cb->restore_best_weights != 0;
    o->save_best_only = cb->save_best_only != 0;
    o->reduce_lr_factor = cb->reduce_lr_factor;
    o->reduce_lr_patience = cb->reduce_lr_patience > 0 ? cb->reduce_lr_patience : 10;
    o->reduce_lr_min_delta = cb->reduce_lr_min_delta > 0.0f ? cb->reduce_lr_min_delta : 1e-4;
    o->reduce_lr_cooldown = cb->reduce_lr_cooldown;
    o->min_lr = cb->min_lr;
}

/* Fills o with the defaults of command c for model m. */
void rt_cli_defaults(const cgrt_model *m, const rt_cli_cmd *c, rt_cli_opts *o)
{
    int bench = m->max_batch < 64 ? m->max_batch : 64;
    memset(o, 0, sizeof *o);
    o->data = m->data.path;
    o->label_column = m->data.label_column;
    o->class_weight = m->class_weight;
    o->sample_weight_column = m->data.sample_weight_column;
    o->epochs = m->default_epochs > 0 ? m->default_epochs : 1;
    o->batch = m->default_batch > 0 && m->default_batch <= m->max_batch ? m->default_batch
                                                                        : (m->max_batch < 32 ? m->max_batch : 32);
    if (c->bit == RT_CMD_BENCH)
        o->batch = bench;
    if (c->bit == RT_CMD_GRADCHECK) /* a small batch: each checked coordinate costs two steps */
        o->batch = m->max_batch < 8 ? m->max_batch : 8;
    o->samples = 64;
    o->lr = m->default_lr > 0.0f ? m->default_lr : 0.01;
    o->seed = 42;
    o->verbose = 1;
    o->iters = 200;
    callback_defaults(&m->callbacks, o);
}

/* Parses text as the flag's kind into o; returns 0, or -1 with err set. */
static int parse_value(const rt_cli_flag *fd, const char *text, rt_cli_opts *o, cgrt_error *err)
{
    char *base = (char *)o + fd->offset, *end;
    double v;
    errno = 0;
    if (fd->kind == RT_FLAG_STRING) {
        if (!text[0])
            return rt_fail(err, "--%s needs a non-empty value", fd->name);
        memcpy(base, &text, sizeof text);
        return 0;
    }
    if (fd->kind == RT_FLAG_UINT64) {
        unsigned long long u = strtoull(text, &end, 10);
        uint64_t u64;
        if (end == text || *end || errno || text[0] == '-' || text[0] == '+' || text[0] == ' ')
            return rt_fail(err, "--%s: '%s' is not a non-negative integer", fd->name, text);
        u64 = (uint64_t)u;
        memcpy(base, &u64, sizeof u64);
        return 0;
    }
    if (fd->kind == RT_FLAG_INT) {
        long l = strtol(text, &end, 10);
        if (end == text || *end || errno || text[0] == ' ')
            return rt_fail(err, "--%s: '%s' is not an integer", fd->name, text);
        if ((double)l < fd->lo || (double)l > fd->hi)
            return rt_fail(err, "--%s: %ld is outside %.0f..%.0f", fd->name, l, fd->lo, fd->hi);
        memcpy(base, &l, sizeof l);
        return 0;
    }
    v = strtod(text, &end);
    if (end == text || *end || errno || !isfinite(v) || text[0] == ' ')
        return rt_fail(err, "--%s: '%s' is not a number", fd->name, text);
    if (v < fd->lo || v > fd->hi || (fd->offset == OPT(lr) && v <= 0.0) ||
        ((fd->offset == OPT(val_split) || fd->offset == OPT(reduce_lr_factor)) && v >= 1.0))
        return rt_fail(err, "--%s: %g is out of range", fd->name, v);
    memcpy(base, &v, sizeof v);
    return 0;
}

/* Fills the getopt_long tables for command c: every long flag (those of
 * other commands too, so that they can be named as not applying), val
 * 256 + row; the short flags of c alone. Returns the count of long options. */
static int getopt_tables(const rt_cli_cmd *c, struct option *longs, char *shorts)
{
    int i, n = 0;
    *shorts++ = '+'; /* stop at the first word that is not a flag: it is an error */
    *shorts++ = ':'; /* a missing value returns ':' */
    for (i = 0; i < rt_cli_num_flags; i++) {
        const rt_cli_flag *fd = &rt_cli_flags[i];
        int has_value = fd->kind == RT_FLAG_STRING || fd->kind == RT_FLAG_INT || fd->kind == RT_FLAG_NUMBER ||
                        fd->kind == RT_FLAG_UINT64;
        longs[n].name = fd->name;
        longs[n].has_arg = has_value ? required_argument : no_argument;
        longs[n].flag = NULL;
        longs[n++].val = 256 + i;
        if (fd->short_name && (fd->cmds & c->bit)) {
            *shorts++ = fd->short_name;
            if (has_value)
                *shorts++ = ':';
        }
    }
    *shorts = 0;
    memset(&longs[n], 0, sizeof longs[n]);
    return n;
}

/* The row of the flag getopt_long returned as code (256 + row, or a short
 * name of command c), or NULL. */
static const rt_cli_flag *flag_of(int code, const rt_cli_cmd *c)
{
    int i;
    if (code >= 256 && code - 256 < rt_cli_num_flags)
        return &rt_cli_flags[code - 256];
    for (i = 0; i < rt_cli_num_flags; i++)
        if (rt_cli_flags[i].short_name == code && (rt_cli_flags[i].cmds & c->bit))
            return &rt_cli_flags[i];
    return NULL;
}

/* The error of getopt_long's ':' (a missing value) or '?' (an unknown flag,
 * or a value given to a long flag without one); optopt says which flag (0:
 * an unknown long flag, the word before argv[optind]). Returns -1. */
static int getopt_error(int code, char **argv, const rt_cli_cmd *c, cgrt_error *err)
{
    const rt_cli_flag *fd = flag_of(optopt, c);
    const char *word = argv[optind - 1];
    int i;
    if (code == ':' && optopt >= 256)
        return rt_fail(err, "--%s needs a value", fd->name);
    if (code == ':')
        return rt_fail(err, "-%c needs a value", optopt);
    if (optopt >= 256)
        return rt_fail(err, "--%s takes no value", fd->name);
    if (optopt > 0) {
        for (i = 0; i < rt_cli_num_flags; i++)
            if (rt_cli_flags[i].short_name == optopt)
                return rt_fail(err, "flag -%c does not apply to %s", optopt, c->name);
        return rt_fail(err, "unknown flag -%c", optopt);
    }
    return rt_fail(err, "unknown flag %.*s", (int)strcspn(word, "="), word);
}

/* Parses argv[first..argc) for command c; returns RT_CLI_RUN, RT_CLI_HELP,
 * RT_CLI_VERSION, or -1 with err set. */
int rt_cli_parse(int argc, char **argv, int first, const rt_cli_cmd *c, rt_cli_opts *o, cgrt_error *err)
{
    struct option longs[sizeof rt_cli_flags / sizeof rt_cli_flags[0] + 1];
    char shorts[3 * sizeof rt_cli_flags / sizeof rt_cli_flags[0] + 3];
    int code;
    getopt_tables(c, longs, shorts);
    opterr = 0; /* the messages are ours */
    optind = 0; /* start afresh (glibc and musl): cgrt_main may run more than once in a process */
    argc -= first - 1, argv += first - 1;
    for (;;) {
        const rt_cli_flag *fd;
        int index = -1;
        code = getopt_long(argc, argv, shorts, longs, &index);
        if (code == -1)
            break;
        if (code == '?' || code == ':')
            return getopt_error(code, argv, c, err);
        fd = flag_of(code, c);
        if (index >= 0) { /* a long flag: getopt_long takes abbreviations, this command line does not */
            const char *word = optarg && optarg == argv[optind - 1] ? argv[optind - 2] : argv[optind - 1];
            size_t n = strcspn(word + 2, "=");
            if (strlen(fd->name) != n)
                return rt_fail(err, "unknown flag %.*s", (int)n + 2, word);
        }
        if (!(fd->cmds & c->bit))
            return rt_fail(err, "flag --%s does not apply to %s", fd->name, c->name);
        if (fd->kind == RT_FLAG_HELP)
            return RT_CLI_HELP;
        if (fd->kind == RT_FLAG_VERSION)
            return RT_CLI_VERSION;
        if (fd->kind == RT_FLAG_SET) {
            long v = (long)fd->lo;
            memcpy((char *)o + fd->offset, &v, sizeof v);
        } else if (parse_value(fd, optarg, o, err) != 0) {
            return -1;
        }
    }
    if (optind < argc)
        return rt_fail(err, "unexpected argument '%s': flags start with - or --", argv[optind]);
    return RT_CLI_RUN;
}
