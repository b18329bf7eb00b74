/* cgrad: the command-line tool.
 *
 *   cgrad build MODEL.c [-o DIR] [--flavour host|portable] [--cc CC]
 *
 * compiles the model-definition program MODEL.c against libcgrad, runs it to
 * emit NAME.h/NAME.c (and NAME_main.c), and compiles those with the runtime
 * into the training binary DIR/NAME. Paths of the headers and libraries are
 * those of the build tree this tool was built in. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CGRAD_INCLUDE_DIR
#error "build cgrad with meson: it defines CGRAD_INCLUDE_DIR and the library paths"
#endif

#define WARN_FLAGS "-std=c99 -Wall -Wextra -Wpedantic -Werror"

/* Runs a shell command, echoing it when verbose; returns its exit status. */
static int sh(const char *cmd, int verbose) {
    if (verbose)
        fprintf(stderr, "+ %s\n", cmd);
    int rc = system(cmd);
    if (rc == -1)
        return 127;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* True when path names a regular file. */
static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
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
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "cgrad: cannot make %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char cmd[32768], gen[2048], name_file[2048], name[256] = "";
    snprintf(gen, sizeof gen, "%s/.cgrad_gen", dir);
    snprintf(name_file, sizeof name_file, "%s/.cgrad_name", dir);
    /* 1. the model-definition program */
    snprintf(cmd, sizeof cmd, "%s -std=c99 -O1 -g -I'%s' '%s' '%s' -lm -o '%s'", cc, CGRAD_INCLUDE_DIR, model, CGRAD_LIB,
             gen);
    if (sh(cmd, verbose)) {
        fprintf(stderr, "cgrad: %s: the model program does not compile\n", model);
        return 1;
    }
    /* 2. run it: emits the C */
    remove(name_file);
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' --flavour %s --name-file '%s'", gen, dir, flavour, name_file);
    if (sh(cmd, verbose)) {
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
    /* 3. the training binary, when the model has a main driver */
    char main_c[2048];
    snprintf(main_c, sizeof main_c, "%s/%s_main.c", dir, name);
    int host = !strcmp(flavour, "host");
    if (!is_file(main_c)) {
        snprintf(cmd, sizeof cmd, "%s " WARN_FLAGS " -O2 -I'%s' -c '%s/%s.c' -o '%s/%s.o'", cc, CGRAD_RT_INCLUDE_DIR, dir,
                 name, dir, name);
        if (sh(cmd, verbose))
            return 1;
        printf("%s/%s.h, %s/%s.c and %s/%s.o (no training binary: the model has no compile step)\n", dir, name, dir,
               name, dir, name);
        return 0;
    }
    /* host: the GEMM shim and OpenBLAS; portable: nothing but libm */
    snprintf(cmd, sizeof cmd,
             "%s " WARN_FLAGS " -O3 %s -I'%s' -I'%s' '%s/%s.c' '%s' '%s' %s -lz -lm -o '%s/%s'", cc,
             host ? "-march=native -fno-math-errno" : "", CGRAD_RT_INCLUDE_DIR, BLAS_INCLUDE_DIR, dir, name, main_c,
             CGRAD_RT_LIB, host ? "'" CGRAD_GEMM_LIB "' -L'" BLAS_LIB_DIR "' -lopenblas -lpthread" : "", dir, name);
    if (sh(cmd, verbose)) {
        fprintf(stderr, "cgrad: the emitted code of %s does not compile\n", name);
        return 1;
    }
    printf("%s/%s\n", dir, name);
    return 0;
}
