/* cgrad: the command-line tool.
 *
 *   cgrad build MODEL.c [-o DIR] [--flavour host|portable] [--cc CC]
 *
 * compiles the model-definition program MODEL.c against libcgrad, runs it to
 * emit NAME.h/NAME.c (and NAME_main.c), and compiles those with the runtime
 * into the training binary DIR/NAME. Paths of the headers and libraries are
 * those of the build tree this tool was built in. */
#include <ctype.h>
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CGRAD_INCLUDE_DIR
#error "build cgrad with meson: it defines CGRAD_INCLUDE_DIR and the library paths"
#endif

extern char **environ;

#define MAX_ARGS 64

/* A command line under construction: words, never parsed by a shell. */
typedef struct argv_list {
    const char *a[MAX_ARGS + 1];
    int n;
    char cc_words[1024];   /* the compiler command, split at spaces ("ccache gcc") */
} argv_list;

static void arg(argv_list *l, const char *word) {
    if (l->n < MAX_ARGS)
        l->a[l->n++] = word;
    l->a[l->n] = NULL;
}

/* Starts a command line with the compiler cc, split at blanks. */
static void arg_cc(argv_list *l, const char *cc) {
    snprintf(l->cc_words, sizeof l->cc_words, "%s", cc);
    for (char *w = strtok(l->cc_words, " \t"); w; w = strtok(NULL, " \t"))
        arg(l, w);
}

/* Runs the command (argv[0] looked up in PATH, no shell), echoing it when
 * verbose; returns its exit status (127: it could not be started). */
static int run(argv_list *l, int verbose) {
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
static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* path, with "./" before it when it starts with '-' (so that no compiler
 * takes a file for an option), in buf. */
static const char *not_option(const char *path, char *buf, size_t size) {
    snprintf(buf, size, "%s%s", path[0] == '-' ? "./" : "", path);
    return buf;
}

/* "a" + "b" into buf; -1 (with a message) when it does not fit. */
static int join(char *buf, size_t size, const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b);
    if (n >= size) {
        fprintf(stderr, "cgrad: the path %.40s... is too long\n", a);
        return -1;
    }
    size_t la = strlen(a);
    memmove(buf, a, la);   /* a may be buf itself */
    memmove(buf + la, b, strlen(b) + 1);
    return 0;
}

/* True when name (read back from the model program) is a plain identifier,
 * so that it can name files inside DIR and nothing else. */
static int name_ok(const char *name) {
    if (!*name || isdigit((unsigned char)*name) || strlen(name) > 64)
        return 0;
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_')
            return 0;
    return 1;
}

static int usage(void) {
    fprintf(stderr, "usage: cgrad build MODEL.c [-o DIR] [--flavour host|portable] [--cc CC] [-v]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 3 || strcmp(argv[1], "build"))
        return usage();
    const char *model = argv[2], *dir = ".", *flavour = "host", *cc = getenv("CC");
    int verbose = 0;
    if (!cc || !*cc)
        cc = "cc";
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--flavour") && i + 1 < argc)
            flavour = argv[++i];
        else if (!strcmp(argv[i], "--cc") && i + 1 < argc)
            cc = argv[++i];
        else if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else
            return usage();
    }
    if (strcmp(flavour, "host") && strcmp(flavour, "portable")) {
        fprintf(stderr, "cgrad: unknown flavour '%s' (host or portable)\n", flavour);
        return 2;
    }
    if (!is_file(model)) {
        fprintf(stderr, "cgrad: %s: no such file\n", model);
        return 1;
    }
    char model_buf[4200], dir_buf[4200];
    model = not_option(model, model_buf, sizeof model_buf);
    dir = not_option(dir, dir_buf, sizeof dir_buf);
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "cgrad: cannot make %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char gen[4200], name_file[4200], name[256] = "";
    if (join(gen, sizeof gen, dir, "/.cgrad_gen") || join(name_file, sizeof name_file, dir, "/.cgrad_name"))
        return 1;
    /* 1. the model-definition program */
    argv_list c = {0};
    arg_cc(&c, cc);
    const char *gen_flags[] = {"-std=c99", "-O1", "-g", "-I", CGRAD_INCLUDE_DIR, model, CGRAD_LIB, "-lm", "-o", gen};
    for (size_t i = 0; i < sizeof gen_flags / sizeof gen_flags[0]; i++)
        arg(&c, gen_flags[i]);
    if (run(&c, verbose)) {
        fprintf(stderr, "cgrad: %s: the model program does not compile\n", model);
        return 1;
    }
    /* 2. run it: emits the C */
    remove(name_file);
    argv_list r = {0};
    const char *gen_args[] = {gen, "-o", dir, "--flavour", flavour, "--name-file", name_file};
    for (size_t i = 0; i < sizeof gen_args / sizeof gen_args[0]; i++)
        arg(&r, gen_args[i]);
    if (run(&r, verbose)) {
        fprintf(stderr, "cgrad: %s: the model program failed (its message is above)\n", model);
        return 1;
    }
    FILE *f = fopen(name_file, "r");
    if (!f || !fgets(name, sizeof name, f)) {
        fprintf(stderr, "cgrad: %s: the model program emitted nothing (does it call cg_main?)\n", model);
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    name[strcspn(name, "\n")] = 0;
    if (!name_ok(name)) {
        fprintf(stderr, "cgrad: %s: the model program reported a model name that is not an identifier\n", model);
        return 1;
    }
    /* 3. the training binary, when the model has a main driver */
    int host = !strcmp(flavour, "host");
    char main_c[4400], src_c[4400], out[4400], stem[4400];
    if (join(stem, sizeof stem, dir, "/") || join(stem, sizeof stem, stem, name) ||
        join(main_c, sizeof main_c, stem, "_main.c") || join(src_c, sizeof src_c, stem, ".c") ||
        join(out, sizeof out, stem, ""))
        return 1;
    argv_list b = {0};
    arg_cc(&b, cc);
    const char *warn[] = {"-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror"};
    for (size_t i = 0; i < sizeof warn / sizeof warn[0]; i++)
        arg(&b, warn[i]);
    if (!is_file(main_c)) {
        join(out, sizeof out, stem, ".o");
        const char *obj[] = {"-O2", "-I", CGRAD_RT_INCLUDE_DIR, "-c", src_c, "-o", out};
        for (size_t i = 0; i < sizeof obj / sizeof obj[0]; i++)
            arg(&b, obj[i]);
        if (run(&b, verbose))
            return 1;
        printf("%s/%s.h, %s and %s (no training binary: the model has no compile step)\n", dir, name, src_c, out);
        return 0;
    }
    /* host: the GEMM shim and OpenBLAS; portable: nothing but libm */
    const char *bin[] = {"-O3", "-I", CGRAD_RT_INCLUDE_DIR, "-I", BLAS_INCLUDE_DIR, src_c, main_c, CGRAD_RT_LIB};
    for (size_t i = 0; i < sizeof bin / sizeof bin[0]; i++)
        arg(&b, bin[i]);
    if (host) {
        const char *blas[] = {"-march=native", "-fno-math-errno", CGRAD_GEMM_LIB, "-L", BLAS_LIB_DIR, "-lopenblas",
                              "-lpthread"};
        for (size_t i = 0; i < sizeof blas / sizeof blas[0]; i++)
            arg(&b, blas[i]);
    }
    const char *tail[] = {"-lz", "-lm", "-o", out};
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
        arg(&b, tail[i]);
    if (run(&b, verbose)) {
        fprintf(stderr, "cgrad: the emitted code of %s does not compile\n", name);
        return 1;
    }
    printf("%s\n", out);
    return 0;
}
