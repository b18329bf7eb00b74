/* main.c: the command-line front end of a model-definition program. This is
 * the one place in libcgrad that writes to the terminal, because the
 * program asked it to by calling cg_main. */
#include "cgrad_int.h"
#include "quant.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [-o DIR] [--flavour host|portable] [--summary] [--plan] [--graph] [--dump-after PASS]\n"
            "       [--name-file FILE]\n"
            "       [--max-batch N] [--max-ram BYTES] [--target host|firmware] [--mode predict|train]\n"
            "       [--weights CHECKPOINT] [--quantize int8 --calibrate DATA [--calibration-samples N]]\n",
            prog);
    return 2;
}

/* The model program's options. */
typedef struct gen_opts {
    const char *dir, *dump_after, *name_file, *weights, *flavour_name, *calibrate;
    cg_flavour flavour;
    bool summary, firmware, predict;
    bool plan, graph;             /* print the memory plans; write DIR/NAME.dot (and .svg) */
    bool int8;                    /* --quantize int8 */
    long long calib_samples;      /* --calibration-samples; 0: the default */
    long long max_batch, max_ram; /* 0: not given */
} gen_opts;

/* A positive whole number for flag; prints what is wrong and returns -1 otherwise. */
static long long positive(const char *prog, const char *flag, const char *text, long long max)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < 1 || v > max) {
        fprintf(stderr, "%s: %s: \"%s\" is not a whole number from 1 to %lld\n", prog, flag, text, max);
        return -1;
    }
    return v;
}

/* The value of a flag taking one of two words: 0 for the first, 1 for the second, -1 (printed) otherwise. */
static int choice(const char *prog, const char *flag, const char *text, const char *a, const char *b)
{
    if (!strcmp(text, a) || !strcmp(text, b))
        return strcmp(text, a) != 0;
    fprintf(stderr, "%s: unknown %s '%s' (%s or %s)\n", prog, flag, text, a, b);
    return -1;
}

/* Takes flag a's value v into o; 0, or the exit status after printing what is wrong. */
static int take(const char *prog, const char *a, const char *v, gen_opts *o)
{
    int c = 0;
    if (!strcmp(a, "-o") || !strcmp(a, "--out"))
        o->dir = v;
    else if (!strcmp(a, "--dump-after"))
        o->dump_after = v;
    else if (!strcmp(a, "--name-file"))
        o->name_file = v;
    else if (!strcmp(a, "--weights"))
        o->weights = v;
    else if (!strcmp(a, "--flavour") && (c = choice(prog, "flavour", v, "host", "portable")) >= 0) {
        o->flavour = c ? CG_PORTABLE : CG_HOST;
        o->flavour_name = v;
    } else if (!strcmp(a, "--target") && (c = choice(prog, "target", v, "host", "firmware")) >= 0)
        o->firmware = c;
    else if (!strcmp(a, "--mode") && (c = choice(prog, "mode", v, "train", "predict")) >= 0)
        o->predict = c;
    else if (!strcmp(a, "--quantize") && (c = choice(prog, "quantize", v, "int8", "int8")) >= 0)
        o->int8 = true;
    else if (!strcmp(a, "--calibrate"))
        o->calibrate = v;
    else if (c < 0) /* --flavour, --target, --mode or --quantize with another word */
        return 2;
    else if (!strcmp(a, "--max-batch"))
        c = (o->max_batch = positive(prog, a, v, 1 << 24)) < 0 ? -1 : 0;
    else if (!strcmp(a, "--calibration-samples"))
        c = (o->calib_samples = positive(prog, a, v, 1 << 24)) < 0 ? -1 : 0;
    else if (!strcmp(a, "--max-ram"))
        c = (o->max_ram = positive(prog, a, v, 1LL << 40)) < 0 ? -1 : 0;
    else
        return usage(prog);
    return c < 0 ? 2 : 0;
}

/* Parses argv into o; 0, or the exit status after printing what is wrong. */
static int parse(int argc, char **argv, gen_opts *o)
{
    *o = (gen_opts){.dir = ".", .flavour = CG_HOST};
    for (int i = 1; i < argc; i++) {
        int status = 0;
        if (!strcmp(argv[i], "--summary"))
            o->summary = true;
        else if (!strcmp(argv[i], "--plan"))
            o->plan = true;
        else if (!strcmp(argv[i], "--graph"))
            o->graph = true;
        else if (!strncmp(argv[i], "--dump-after=", 13))
            o->dump_after = argv[i] + 13;
        else if (i + 1 == argc)
            return usage(argv[0]);
        else if ((status = take(argv[0], argv[i], argv[i + 1], o)) != 0)
            return status;
        else
            i++;
    }
    if (o->firmware && o->flavour_name && o->flavour == CG_HOST) {
        fprintf(stderr, "%s: --target firmware emits the portable flavour, not --flavour host\n", argv[0]);
        return 2;
    }
    if (!o->firmware && (o->predict || o->weights)) {
        fprintf(stderr, "%s: --mode and --weights shape firmware builds: add --target firmware\n", argv[0]);
        return 2;
    }
    if (o->int8 != (o->calibrate != NULL) || (o->calib_samples && !o->int8) ||
        (o->int8 && (!o->predict || !o->weights))) {
        fprintf(stderr,
                "%s: --quantize int8 goes with --calibrate DATA (and optionally --calibration-samples N), "
                "--mode predict and --weights CHECKPOINT\n",
                argv[0]);
        return 2;
    }
    if (o->firmware)
        o->flavour = CG_PORTABLE;
    return 0;
}

/* Compiles for the options: the pipeline, then what deployment asks
 * (predict alone, the checkpoint's weights, the RAM budget). */
static int compile(cg_graph *g, const gen_opts *o, text *dump)
{
    if (o->max_batch)
        g->max_batch = (int)o->max_batch;
    g->dep.firmware = o->firmware;
    g->dep.max_ram = o->max_ram;
    if (compile_graph(g, o->flavour, o->dump_after, dump))
        return -1;
    g->dep.predict_only = o->predict;
    if (o->predict && deploy_keep_predict(g))
        return -1;
    if (o->weights && deploy_read_weights(g, o->weights))
        return -1;
    if (o->int8 && quant_build(g, o->calibrate, o->calib_samples ? (int)o->calib_samples : 1000))
        return -1;
    return deploy_check_ram(g);
}

/* Prints the memory plans (--plan) and writes the picture of the graph
 * (--graph); 0, or 1 after printing the error. */
static int show_plan_graph(cg_graph *g, const gen_opts *o)
{
    if (o->plan) {
        text t = {0};
        plan_report(g, &t);
        if (t.s)
            fputs(t.s, stdout);
        text_free(&t);
    }
    if (o->graph && dot_write(g, o->dir)) {
        fprintf(stderr, "%s\n", g->err);
        return 1;
    }
    return 0;
}

/* Parses the options, compiles, emits; prints the summary or the error. */
static int run(cg_graph *g, int argc, char **argv)
{
    gen_opts o;
    int status = parse(argc, argv, &o);
    if (status)
        return status;
    char passes[128];
    if (o.dump_after && !pass_exists(o.dump_after, passes, sizeof passes)) {
        fprintf(stderr, "%s: --dump-after: no pass is called \"%s\" (the passes: %s)\n", argv[0], o.dump_after, passes);
        return 2;
    }
    if (g->failed) {
        fprintf(stderr, "%s\n", g->err);
        return 1;
    }
    text dump = {0};
    if (compile(g, &o, &dump)) {
        fprintf(stderr, "%s\n", g->err);
        text_free(&dump);
        return 1;
    }
    if (dump.s)
        fputs(dump.s, stdout);
    text_free(&dump);
    if (mkdir(o.dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "%s: cannot make %s: %s\n", argv[0], o.dir, strerror(errno));
        return 1;
    }
    if (emit_files(g, o.dir) || (g->dep.quant && quant_emit(g, o.dir))) {
        fprintf(stderr, "%s\n", g->err);
        return 1;
    }
    if (o.summary)
        fputs(graph_summary(g), stdout);
    if (g->dep.quant) {
        if (g->dep.quant->report.s)
            fputs(g->dep.quant->report.s, stdout);
        text_free(&g->dep.quant->report);
    }
    if (show_plan_graph(g, &o))
        return 1;
    if (o.name_file) { /* tells the cgrad tool what was emitted */
        FILE *f = fopen(o.name_file, "w");
        if (!f || fprintf(f, "%s\n", g->name) < 0 || fclose(f)) {
            fprintf(stderr, "%s: cannot write %s\n", argv[0], o.name_file);
            return 1;
        }
    }
    return 0;
}

int cg_main(cg_model *m, int argc, char **argv)
{
    if (!m) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 1;
    }
    int rc = run(m->g, argc, argv);
    cg_model_free(m);
    return rc;
}

int cg_main_graph(cg_graph *g, int argc, char **argv)
{
    if (!g) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 1;
    }
    int rc = run(g, argc, argv);
    cg_graph_free(g);
    return rc;
}
