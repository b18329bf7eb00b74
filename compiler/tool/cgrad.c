/* cgrad: the command-line tool.
 *
 *   cgrad build MODEL.c [-o DIR] [--flavour host|portable] [--cc CC]
 *
 * compiles the model-definition program MODEL.c against libcgrad, runs it to
 * emit NAME.h/NAME.c (and NAME_main.c), and compiles those with the runtime
 * into the training binary DIR/NAME (not with --emit-only). The headers and
 * libraries are found from the tool's own location (layout.c): the build
 * tree it was built in, or the tree it is installed in, wherever that was
 * moved. --summary, --plan, --graph and --dump-after PASS go to the model
 * program, which prints the summary, the memory plans or a pass's dump, and
 * draws DIR/NAME.dot (and .svg).
 *
 *   cgrad --print-cflags | --print-libs
 *
 * print what a build system needs to compile and link host-flavour sources
 * (the runtime, the GEMM shim and OpenBLAS).
 *
 *   cgrad check [--engine flags|clang] [--cc CC] DIR
 *
 * checks that the C files in DIR keep the firmware rules (check.c).
 *
 *   cgrad plot HISTORY.csv -o FILE.svg [--title NAME]
 *
 * draws the training curves of a history that a training binary wrote
 * (fit --history) with the runtime's writer, the one fit --plot uses. */
#include "cgrad_rt.h"
#include "check.h"
#include "layout.h"

#include <ctype.h>
#include <errno.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BLAS_INCLUDE_DIR
#error "build cgrad with meson: it defines OpenBLAS's folders"
#endif

extern char **environ;

#define MAX_ARGS 64
#define MAX_DEPLOY 32 /* words of the options the model program takes */

/* A command line under construction: words, never parsed by a shell. */
typedef struct argv_list {
    const char *a[MAX_ARGS + 1];
    int n;
    char cc_words[1024]; /* the compiler command, split at spaces ("ccache gcc") */
} argv_list;

static void arg(argv_list *l, const char *word)
{
    if (l->n < MAX_ARGS)
        l->a[l->n++] = word;
    l->a[l->n] = NULL;
}

/* Starts a command line with the compiler cc, split at blanks. */
static void arg_cc(argv_list *l, const char *cc)
{
    snprintf(l->cc_words, sizeof l->cc_words, "%s", cc);
    for (char *w = strtok(l->cc_words, " \t"); w; w = strtok(NULL, " \t"))
        arg(l, w);
}

/* Runs the command (argv[0] looked up in PATH, no shell), echoing it when
 * verbose; returns its exit status (127: it could not be started). */
static int run(argv_list *l, int verbose)
{
    if (l->n >= MAX_ARGS || l->n == 0)
        return 127;
    if (verbose) {
        fputc('+', stderr);
        for (int i = 0; i < l->n; i++)
            fprintf(stderr, " %s", l->a[i]);
        fputc('\n', stderr);
    }
    pid_t pid;
    int err = posix_spawnp(&pid, l->a[0], NULL, NULL, (char *const *)l->a, environ);
    if (err) {
        fprintf(stderr, "cgrad: cannot run %s: %s\n", l->a[0], strerror(err));
        return 127;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 127;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* True when path names a regular file. */
static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* path, with "./" before it when it starts with '-' (so that no compiler
 * takes a file for an option), in buf. */
static const char *not_option(const char *path, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s", path[0] == '-' ? "./" : "", path);
    return buf;
}

/* "a" + "b" into buf; -1 (with a message) when it does not fit. */
static int join(char *buf, size_t size, const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b);
    if (n >= size) {
        fprintf(stderr, "cgrad: the path %.40s... is too long\n", a);
        return -1;
    }
    size_t la = strlen(a);
    memmove(buf, a, la); /* a may be buf itself */
    memmove(buf + la, b, strlen(b) + 1);
    return 0;
}

/* True when name (read back from the model program) is a plain identifier,
 * so that it can name files inside DIR and nothing else. */
static int name_ok(const char *name)
{
    if (!*name || isdigit((unsigned char)*name) || strlen(name) > 64)
        return 0;
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_')
            return 0;
    return 1;
}

/* The usage lines; with asked (--help), on stdout with every option and
 * status 0, else on stderr with status 2. */
static int usage(int asked)
{
    FILE *f = asked ? stdout : stderr;
    fputs("usage: cgrad build MODEL.c [-o DIR] [--flavour host|portable] [--march LEVEL] [--emit-only] [--cc CC] [-v]\n"
          "                   [--target host|firmware] [--mode predict|train] [--weights CHECKPOINT]\n"
          "                   [--max-batch N] [--max-ram BYTES]\n"
          "                   [--summary] [--plan] [--graph] [--dump-after PASS]\n"
          "       cgrad check [--engine flags|clang] [--cc CC] DIR\n"
          "       cgrad plot HISTORY.csv -o FILE.svg [--title NAME]\n"
          "       cgrad --print-cflags | --print-libs | --version | --help\n",
          f);
    if (!asked)
        return 2;
    /* clang-format off */
    fputs("\n"
        "cgrad build compiles MODEL.c (a program that builds a model with <cgrad.h> and calls cg_main) against\n"
        "libcgrad, runs it to emit DIR/NAME.h, DIR/NAME.c and DIR/NAME_main.c, and compiles the training binary\n"
        "DIR/NAME with the runtime.\n"
        "  -o DIR                   folder for the emitted files and the binary (default: .)\n"
        "  --flavour host|portable  host: products through the GEMM shim and OpenBLAS (default); portable: plain\n"
        "                           loops, no heap, no stdio, no BLAS\n"
        "  --march LEVEL            the CPUs the binary runs on: native, x86-64-v2, x86-64-v3, x86-64-v4 or generic\n"
        "                           (default, host flavour: this machine's level, x86-64-v4 with AVX-512; the GEMM\n"
        "                           kernel is chosen at run time either way)\n"
        "  --emit-only              write the sources and compile nothing (compile them with --print-cflags/-libs)\n"
        "  --cc CC                  the C compiler, split at blanks (default: $CC, else cc)\n"
        "  -v                       print each command before running it\n"
        "  --target host|firmware   firmware: the portable sources only, checked to compile as warning-free C99\n"
        "  --mode predict|train     firmware: keep only predict, or everything training needs (default: train)\n"
        "  --weights CHECKPOINT     firmware: the trained weights as const arrays in DIR/NAME_weights.c\n"
        "  --max-batch N            the largest batch the buffers are planned for (default: the model's)\n"
        "  --max-ram BYTES          fail when the model's state needs more RAM than this\n"
        "  --summary                print the Keras-style summary with FLOPs and bytes per layer\n"
        "  --plan                   print each entry point's memory plan, with a timeline of the arena\n"
        "  --graph                  draw the graph into DIR/NAME.dot (and DIR/NAME.svg with Graphviz)\n"
        "  --dump-after PASS        print the graph after a compiler pass (a wrong name lists the passes)\n"
        "cgrad check DIR checks that the C files of DIR keep the firmware rules (no heap, stdio, VLA,\n"
        "recursion, extensions or double maths).\n"
        "cgrad plot draws the curves of a history CSV (a training binary's fit --history) as an SVG.\n"
        "--print-cflags and --print-libs print the flags that compile and link host-flavour sources with the\n"
        "runtime. The generated binaries' own command line: BINARY --help, and man cgrad-model.\n",
        f);
    /* clang-format on */
    return 0;
}

/* Appends the n words to the command line. */
static void args(argv_list *l, const char *const *words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        arg(l, words[i]);
}
#define ARGS(l, ...) \
    args(l, (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))

/* What `cgrad build` was asked to do. */
typedef struct build_opts {
    const char *model, *dir, *flavour, *cc;
    const char *march; /* --march: native, x86-64-v2/v3/v4 or generic; NULL: this machine's level */
    const tool_layout *L;
    int verbose;
    bool emit_only;                 /* --emit-only: the sources, compiled by the user's own build */
    bool firmware;                  /* --target firmware: sources only, checked by the host compiler */
    const char *deploy[MAX_DEPLOY]; /* --target, --mode, --weights, --max-batch, --max-ram, --dump-after (with their
                               values), --summary, --plan, --graph: for the model program */
    int ndeploy;
    char model_buf[4200], dir_buf[4200], weights_buf[4200];
} build_opts;

/* True when flag is one the model program takes with a value and checks itself. */
static bool deploy_flag(const char *flag)
{
    static const char *const flags[] = {"--target",    "--mode",      "--weights",
                                        "--max-batch", "--max-ram",   "--dump-after",
                                        "--quantize",  "--calibrate", "--calibration-samples"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strcmp(flag, flags[i]))
            return true;
    return false;
}

/* Reads the command line into o; returns 0, -1 when it printed the help
 * (nothing more to do), or the exit status of a mistake. */
static int parse_args(int argc, char **argv, build_opts *o)
{
    if (argc >= 3 && !strcmp(argv[1], "build") && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")))
        return usage(1) - 1; /* -1: done, exit 0 */
    if (argc < 3 || strcmp(argv[1], "build"))
        return usage(0);
    if (argv[2][0] == '-' && !is_file(argv[2])) {
        fprintf(stderr, "cgrad build: unknown option %s (the model file comes first)\n", argv[2]);
        return usage(0);
    }
    o->model = argv[2], o->dir = ".", o->flavour = "host", o->cc = getenv("CC");
    if (!o->cc || !*o->cc)
        o->cc = "cc";
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            o->dir = argv[++i];
        else if (!strcmp(argv[i], "--flavour") && i + 1 < argc)
            o->flavour = argv[++i];
        else if (!strcmp(argv[i], "--cc") && i + 1 < argc)
            o->cc = argv[++i];
        else if (!strcmp(argv[i], "-v"))
            o->verbose = 1;
        else if (!strcmp(argv[i], "--emit-only"))
            o->emit_only = true;
        else if (!strcmp(argv[i], "--march") && i + 1 < argc)
            o->march = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return usage(1) - 1; /* -1: done, exit 0 */
        else if (o->ndeploy > MAX_DEPLOY - 2) {
            fprintf(stderr, "cgrad build: too many options (%s and after)\n", argv[i]);
            return 2;
        } else if (!strcmp(argv[i], "--summary") || !strcmp(argv[i], "--plan") || !strcmp(argv[i], "--graph"))
            o->deploy[o->ndeploy++] = argv[i];
        else if (deploy_flag(argv[i]) && i + 1 < argc) {
            o->firmware = o->firmware || (!strcmp(argv[i], "--target") && !strcmp(argv[i + 1], "firmware"));
            o->deploy[o->ndeploy++] = argv[i];
            o->deploy[o->ndeploy++] = !strcmp(argv[i], "--weights")
                                          ? not_option(argv[i + 1], o->weights_buf, sizeof o->weights_buf)
                                          : argv[i + 1];
            i++;
        } else
            return usage(0);
    }
    if (o->firmware)
        o->flavour = "portable";
    if (strcmp(o->flavour, "host") && strcmp(o->flavour, "portable")) {
        fprintf(stderr, "cgrad: unknown flavour '%s' (host or portable)\n", o->flavour);
        return 2;
    }
    if (o->march && strcmp(o->march, "native") && strcmp(o->march, "generic") && strcmp(o->march, "x86-64-v2") &&
        strcmp(o->march, "x86-64-v3") && strcmp(o->march, "x86-64-v4")) {
        fprintf(stderr, "cgrad: unknown --march '%s' (native, x86-64-v2, x86-64-v3, x86-64-v4 or generic)\n", o->march);
        return 2;
    }
    if (!is_file(o->model)) {
        fprintf(stderr, "cgrad: %s: no such file\n", o->model);
        return 1;
    }
    o->model = not_option(o->model, o->model_buf, sizeof o->model_buf);
    o->dir = not_option(o->dir, o->dir_buf, sizeof o->dir_buf);
    return 0;
}

/* Steps 1 and 2: compiles the model-definition program and runs it, which
 * writes the C into the folder; reads back the model's name into name. */
static int emit_sources(const build_opts *o, char *name, size_t size)
{
    char gen[4200], name_file[4200];
    if (join(gen, sizeof gen, o->dir, "/.cgrad_gen") || join(name_file, sizeof name_file, o->dir, "/.cgrad_name"))
        return 1;
    argv_list c = {0};
    arg_cc(&c, o->cc);
    ARGS(&c, "-std=c99", "-O1", "-g", "-I", o->L->include);
    if (*o->L->include_extra)
        ARGS(&c, "-I", o->L->include_extra);
    ARGS(&c, o->model, o->L->libcgrad, o->L->libcgrad_rt);
    if (*o->L->rpath) /* as separate words: a comma in the folder would split -Wl,... */
        ARGS(&c, "-Xlinker", "-rpath", "-Xlinker", o->L->rpath);
    ARGS(&c, "-lz", "-lm", "-o", gen);
    if (run(&c, o->verbose)) {
        fprintf(stderr, "cgrad: %s: the model program does not compile\n", o->model);
        return 1;
    }
    remove(name_file);
    argv_list r = {0};
    ARGS(&r, gen, "-o", o->dir, "--flavour", o->flavour, "--name-file", name_file);
    args(&r, o->deploy, (size_t)o->ndeploy);
    if (run(&r, o->verbose)) {
        fprintf(stderr, "cgrad: %s: the model program failed (its message is above)\n", o->model);
        return 1;
    }
    FILE *f = fopen(name_file, "r");
    bool got = f && fgets(name, (int)size, f);
    if (f)
        fclose(f);
    if (!got) {
        fprintf(stderr, "cgrad: %s: the model program emitted nothing (does it call cg_main?)\n", o->model);
        return 1;
    }
    name[strcspn(name, "\n")] = 0;
    if (!name_ok(name)) {
        fprintf(stderr, "cgrad: %s: the model program reported a model name that is not an identifier\n", o->model);
        return 1;
    }
    return 0;
}

/* Step 3 for firmware: checks that the emitted sources compile warning-free
 * as C99 (the firmware's own toolchain builds them). */
static int check_firmware(const build_opts *o, const char *stem)
{
    char src_c[4400], weights_c[4400], int8_c[4400];
    if (join(src_c, sizeof src_c, stem, ".c") || join(weights_c, sizeof weights_c, stem, "_weights.c") ||
        join(int8_c, sizeof int8_c, stem, "_int8.c"))
        return 1;
    argv_list b = {0};
    arg_cc(&b, o->cc);
    ARGS(&b, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wvla", "-Wdouble-promotion", "-Werror", "-fsyntax-only",
         src_c);
    if (is_file(weights_c))
        arg(&b, weights_c);
    if (is_file(int8_c))
        arg(&b, int8_c);
    if (run(&b, o->verbose)) {
        fprintf(stderr, "cgrad: the emitted firmware code does not compile cleanly\n");
        return 1;
    }
    printf("%s.h, %s%s%s%s%s (firmware sources)\n", stem, src_c, is_file(weights_c) ? ", " : "",
           is_file(weights_c) ? weights_c : "", is_file(int8_c) ? ", " : "", is_file(int8_c) ? int8_c : "");
    return 0;
}

/* The x86-64 level of the CPU this runs on (x86-64-v4 with AVX-512,
 * x86-64-v3 with AVX2 and FMA, ...): a host binary built for it runs here
 * and on any CPU of that level. NULL elsewhere (no -march flag). */
static const char *machine_level(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd"))
        return "x86-64-v4";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
        __builtin_cpu_supports("bmi2"))
        return "x86-64-v3";
    if (__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt"))
        return "x86-64-v2";
    return "generic";
#else
    return NULL;
#endif
}

/* Appends the code-generation flags of --march (or of the machine's level
 * when it is not given) to the compile of the emitted code; portable code
 * gets them only when --march is given. */
static void march_args(argv_list *b, const build_opts *o)
{
    static char flag[64];
    const char *m = o->march ? o->march : !strcmp(o->flavour, "host") ? machine_level() : NULL;
    if (!m)
        return;
    if (!strcmp(m, "generic")) {
        ARGS(b, "-march=x86-64", "-mtune=generic");
        return;
    }
    snprintf(flag, sizeof flag, "-march=%s", m);
    arg(b, flag);
    if (strcmp(m, "native"))
        arg(b, "-mtune=native"); /* tuning for this machine changes no instruction the level allows */
}

/* Step 3: compiles the emitted code: the training binary DIR/NAME when the
 * model has a main driver (host: with the GEMM shim and OpenBLAS), else the
 * object DIR/NAME.o. */
static int build_output(const build_opts *o, const char *name)
{
    char main_c[4400], src_c[4400], out[4400], stem[4400];
    if (join(stem, sizeof stem, o->dir, "/") || join(stem, sizeof stem, stem, name) ||
        join(main_c, sizeof main_c, stem, "_main.c") || join(src_c, sizeof src_c, stem, ".c") ||
        join(out, sizeof out, stem, is_file(main_c) ? "" : ".o"))
        return 1;
    if (o->emit_only) {
        printf("%s.h, %s%s%s (sources only)\n", stem, src_c, is_file(main_c) ? " and " : "",
               is_file(main_c) ? main_c : "");
        return 0;
    }
    if (o->firmware)
        return check_firmware(o, stem);
    argv_list b = {0};
    arg_cc(&b, o->cc);
    ARGS(&b, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror");
    if (!is_file(main_c)) {
        ARGS(&b, "-O2", "-I", o->L->rt_include, "-c", src_c, "-o", out);
        if (run(&b, o->verbose))
            return 1;
        printf("%s.h, %s and %s (no training binary: the model has no compile step)\n", stem, src_c, out);
        return 0;
    }
    ARGS(&b, "-O3", "-I", o->L->rt_include, "-I", BLAS_INCLUDE_DIR, src_c, main_c, o->L->libcgrad_rt);
    march_args(&b, o);
    if (!strcmp(o->flavour, "host"))
        ARGS(&b, "-fno-math-errno", o->L->libcgrad_gemm, "-L", BLAS_LIB_DIR, "-lopenblas", "-lpthread");
    if (*o->L->rpath)
        ARGS(&b, "-Xlinker", "-rpath", "-Xlinker", o->L->rpath);
    ARGS(&b, "-lz", "-lm", "-o", out);
    if (run(&b, o->verbose)) {
        fprintf(stderr, "cgrad: the emitted code of %s does not compile\n", name);
        return 1;
    }
    printf("%s\n", out);
    return 0;
}

/* cgrad plot HISTORY.csv -o FILE.svg [--title NAME]: the training curves of
 * a history CSV (titled NAME, by default the CSV's file name); returns the
 * exit status (2 for a usage mistake, 1 when the CSV or the SVG fails). */
static int plot_main(int argc, char **argv)
{
    const char *csv = NULL, *svg = NULL, *title = NULL;
    cgrt_error err;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            svg = argv[++i];
        else if (!strcmp(argv[i], "--title") && i + 1 < argc)
            title = argv[++i];
        else if (argv[i][0] != '-' && !csv)
            csv = argv[i];
        else
            csv = svg = NULL, i = argc;
    }
    if (!csv || !svg) {
        fprintf(stderr, "usage: cgrad plot HISTORY.csv -o FILE.svg [--title NAME]\n");
        return 2;
    }
    if (cgrt_plot_history(csv, svg, title, &err) != 0) {
        fprintf(stderr, "cgrad: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* --print-cflags, or with libs --print-libs: what compiles and links
 * host-flavour sources with the runtime, on one line. */
static int print_flags(const tool_layout *L, int libs)
{
    if (libs)
        printf("%s %s%s%s -L%s -lopenblas -lpthread -lz -lm\n", L->libcgrad_rt, L->libcgrad_gemm,
               *L->rpath ? " -Wl,-rpath," : "", L->rpath, BLAS_LIB_DIR);
    else
        printf("-I%s -I%s\n", L->rt_include, BLAS_INCLUDE_DIR);
    return 0;
}

/* Finds the layout into L; returns 0, or 1 after saying what is wrong. */
static int find_layout(tool_layout *L)
{
    char err[LAYOUT_PATH + 256];
    if (layout_find(L, err, sizeof err)) {
        fprintf(stderr, "cgrad: %s\n", err);
        return 1;
    }
    return 0;
}

/* The options that stand alone (--help, --version, --print-cflags,
 * --print-libs); returns the exit status, or -1 when argv is something else. */
static int lone_option(int argc, char **argv)
{
    if (argc != 2)
        return -1;
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
        return usage(1);
    if (!strcmp(argv[1], "--version")) {
        printf("cgrad %s\n", CGRT_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "--print-cflags") || !strcmp(argv[1], "--print-libs")) {
        tool_layout L;
        return find_layout(&L) ? 1 : print_flags(&L, !strcmp(argv[1], "--print-libs"));
    }
    return -1;
}

int main(int argc, char **argv)
{
    build_opts o = {0};
    tool_layout L;
    char name[256] = "";
    if (argc >= 2 && !strcmp(argv[1], "check"))
        return check_main(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "plot"))
        return plot_main(argc, argv);
    int rc = lone_option(argc, argv);
    if (rc >= 0)
        return rc;
    rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc; /* -1: the help was asked for and printed */
    if (find_layout(&L))
        return 1;
    o.L = &L;
    if (mkdir(o.dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "cgrad: cannot make %s: %s\n", o.dir, strerror(errno));
        return 1;
    }
    if (emit_sources(&o, name, sizeof name))
        return 1;
    return build_output(&o, name);
}
