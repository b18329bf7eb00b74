/* main.c: the command-line front end of a model-definition program. This is
 * the one place in libcgrad that writes to the terminal, because the
 * program asked it to by calling cg_main. */
#include "cgrad_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int usage(const char *prog)
{
    fprintf(stderr, "usage: %s [-o DIR] [--flavour host|portable] [--summary] [--dump-after PASS] [--name-file FILE]\n",
            prog);
    return 2;
}

/* Parses the options, compiles, emits; prints the summary or the error. */
static int run(cg_graph *g, int argc, char **argv)
{
    const char *dir = ".", *dump_after = NULL, *name_file = NULL;
    cg_flavour flavour = CG_HOST;
    bool summary = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-o") || !strcmp(a, "--out")) && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(a, "--flavour") && i + 1 < argc) {
            const char *f = argv[++i];
            if (!strcmp(f, "host"))
                flavour = CG_HOST;
            else if (!strcmp(f, "portable"))
                flavour = CG_PORTABLE;
            else {
                fprintf(stderr, "%s: unknown flavour '%s' (host or portable)\n", argv[0], f);
                return 2;
            }
        } else if (!strcmp(a, "--summary"))
            summary = true;
        else if (!strcmp(a, "--dump-after") && i + 1 < argc)
            dump_after = argv[++i];
        else if (!strncmp(a, "--dump-after=", 13))
            dump_after = a + 13;
        else if (!strcmp(a, "--name-file") && i + 1 < argc)
            name_file = argv[++i];
        else
            return usage(argv[0]);
    }
    char passes[128];
    if (dump_after && !pass_exists(dump_after, passes, sizeof passes)) {
        fprintf(stderr, "%s: --dump-after: no pass is called \"%s\" (the passes: %s)\n", argv[0], dump_after, passes);
        return 2;
    }
    if (g->failed) {
        fprintf(stderr, "%s\n", g->err);
        return 1;
    }
    text dump = {0};
    if (compile_graph(g, flavour, dump_after, &dump)) {
        fprintf(stderr, "%s\n", g->err);
        text_free(&dump);
        return 1;
    }
    if (dump.s)
        fputs(dump.s, stdout);
    text_free(&dump);
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "%s: cannot make %s: %s\n", argv[0], dir, strerror(errno));
        return 1;
    }
    if (emit_files(g, dir)) {
        fprintf(stderr, "%s\n", g->err);
        return 1;
    }
    if (summary)
        fputs(graph_summary(g), stdout);
    if (name_file) { /* tells the cgrad tool what was emitted */
        FILE *f = fopen(name_file, "w");
        if (!f || fprintf(f, "%s\n", g->name) < 0 || fclose(f)) {
            fprintf(stderr, "%s: cannot write %s\n", argv[0], name_file);
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
