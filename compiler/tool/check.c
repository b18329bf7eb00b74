/* check.c: the front end of `cgrad check DIR`.
 *
 *   cgrad check [--engine flags|clang] [--cc CC] DIR
 *
 * lists the .c and .h files directly in DIR, scans their tokens, has an
 * engine read them (libclang's syntax tree when cgrad was built with it,
 * else the C compiler's warnings, call graph and undefined symbols), finds
 * the cycles of the call graph, and prints one line per finding
 * ("digits_mlp.c:120: heap: calls malloc") or, when there is none, one line
 * of summary. */
#include "check.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const rule_names[CHECK_RULES] = {"heap",      "stdio",  "vla",    "recursion",
                                                    "extension", "double", "warning"};

/* A copy of s that the run owns; exits on out of memory (this is the tool). */
static char *dup(const char *s)
{
    char *d = malloc(strlen(s) + 1);
    if (!d) {
        fputs("cgrad check: out of memory\n", stderr);
        exit(1);
    }
    return strcpy(d, s);
}

/* Makes room for one more element in the growing array *items. */
static void *grow(void *items, int n, int *cap, size_t size)
{
    if (n < *cap)
        return items;
    *cap = *cap ? 2 * *cap : 64;
    void *bigger = realloc(items, (size_t)*cap * size);
    if (!bigger) {
        fputs("cgrad check: out of memory\n", stderr);
        exit(1);
    }
    return bigger;
}

void check_add(check_run *r, const char *file, int line, check_rule rule, int from_compiler, const char *fmt, ...)
{
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    r->finds = grow(r->finds, r->nfinds, &r->cap_finds, sizeof *r->finds);
    r->finds[r->nfinds++] = (check_finding){dup(file), line, rule, from_compiler, dup(what)};
}

void check_add_fn(check_run *r, const char *key, const char *name, const char *file, int line)
{
    for (int i = 0; i < r->nfns; i++)
        if (!strcmp(r->fns[i].key, key))
            return;
    r->fns = grow(r->fns, r->nfns, &r->cap_fns, sizeof *r->fns);
    r->fns[r->nfns++] = (check_fn){dup(key), dup(name), dup(file), line};
}

void check_add_call(check_run *r, const char *from, const char *to, const char *file, int line)
{
    r->calls = grow(r->calls, r->ncalls, &r->cap_calls, sizeof *r->calls);
    r->calls[r->ncalls++] = (check_call){dup(from), dup(to), dup(file), line};
}

/* ---- the call graph's cycles ---------------------------------------------- */

/* The graph of the folder's functions: for each, its calls (indices into
 * r->calls whose callee is a folder function), and Tarjan's bookkeeping. */
typedef struct graph {
    const check_run *r;
    int *callee;           /* per call: index of the called function, -1 when outside the folder */
    int *first, *next;     /* per function: its first call; per call: the caller's next call */
    int *index, *low, *on; /* Tarjan: visit order, lowest reachable, on the stack */
    int *stack, top, count;
    int *comp; /* per function: its strongly connected component */
} graph;

/* The index of the folder's function key, or -1. */
static int fn_index(const check_run *r, const char *key)
{
    for (int i = 0; i < r->nfns; i++)
        if (!strcmp(r->fns[i].key, key))
            return i;
    return -1;
}

/* Tarjan's algorithm from function v: numbers the components in g->comp. */
static void strong_connect(graph *g, int v)
{
    g->index[v] = g->low[v] = g->count++;
    g->stack[g->top++] = v;
    g->on[v] = 1;
    for (int c = g->first[v]; c >= 0; c = g->next[c]) {
        int w = g->callee[c];
        if (w < 0)
            continue;
        if (g->index[w] < 0) {
            strong_connect(g, w);
            g->low[v] = g->low[w] < g->low[v] ? g->low[w] : g->low[v];
        } else if (g->on[w] && g->index[w] < g->low[v]) {
            g->low[v] = g->index[w];
        }
    }
    if (g->low[v] != g->index[v])
        return;
    int w;
    do {
        w = g->stack[--g->top];
        g->on[w] = 0;
        g->comp[w] = v;
    } while (w != v);
}

/* Writes into buf the shortest path of calls inside v's component from v
 * back to u, as "v -> ... -> u" (breadth first). */
static void cycle_path(const graph *g, int v, int u, char *buf, size_t size)
{
    int n = g->r->nfns, *from = malloc((size_t)n * sizeof *from), *queue = malloc((size_t)n * sizeof *queue);
    int head = 0, tail = 0;
    if (!from || !queue) {
        snprintf(buf, size, "%s", g->r->fns[u].name);
        free(from), free(queue);
        return;
    }
    for (int i = 0; i < n; i++)
        from[i] = -2;
    from[v] = -1, queue[tail++] = v;
    while (head < tail && from[u] == -2)
        for (int x = queue[head++], c = g->first[x]; c >= 0; c = g->next[c]) {
            int w = g->callee[c];
            if (w >= 0 && from[w] == -2 && g->comp[w] == g->comp[v])
                from[w] = x, queue[tail++] = w;
        }
    int len = 0; /* the path backwards from u, then printed forwards */
    for (int x = u; x >= 0 && len < n; x = from[x])
        queue[len++] = x;
    buf[0] = '\0';
    for (int i = len - 1; i >= 0; i--) {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s%s", g->r->fns[queue[i]].name, i ? " -> " : "");
    }
    free(from), free(queue);
}

/* Every call whose caller and callee are in one cycle of the graph is a
 * recursion finding at the call. */
static void find_cycles(check_run *r)
{
    int n = r->nfns, m = r->ncalls;
    int *ints = malloc((size_t)(2 * m + 6 * n + 1) * sizeof *ints);
    if (!ints) {
        fputs("cgrad check: out of memory\n", stderr);
        exit(1);
    }
    graph g = {.r = r, .callee = ints, .next = ints + m, .first = ints + 2 * m};
    g.index = g.first + n, g.low = g.index + n, g.on = g.low + n, g.stack = g.on + n, g.comp = g.stack + n;
    for (int i = 0; i < n; i++)
        g.first[i] = -1, g.index[i] = -1, g.on[i] = 0;
    for (int c = m - 1; c >= 0; c--) { /* each caller's calls, in the order they were found */
        int from = fn_index(r, r->calls[c].from);
        g.callee[c] = from >= 0 ? fn_index(r, r->calls[c].to) : -1;
        g.next[c] = from >= 0 ? g.first[from] : -1;
        if (from >= 0)
            g.first[from] = c;
    }
    for (int v = 0; v < n; v++)
        if (g.index[v] < 0)
            strong_connect(&g, v);
    for (int u = 0; u < n; u++)
        for (int c = g.first[u]; c >= 0; c = g.next[c]) {
            int v = g.callee[c];
            char path[1024];
            if (v == u)
                check_add(r, r->calls[c].file, r->calls[c].line, CHECK_RECURSION, 0, "%s calls itself", r->fns[u].name);
            else if (v >= 0 && g.comp[v] == g.comp[u]) {
                cycle_path(&g, v, u, path, sizeof path);
                check_add(r, r->calls[c].file, r->calls[c].line, CHECK_RECURSION, 0,
                          "%s calls %s, which leads back: %s -> %s", r->fns[u].name, r->fns[v].name, r->fns[u].name,
                          path);
            }
        }
    free(ints);
}

/* ---- report ----------------------------------------------------------------- */

/* qsort order of findings: file, line, rule, the engine's own words before a
 * compiler's, then the words. */
static int finding_order(const void *pa, const void *pb)
{
    const check_finding *a = pa, *b = pb;
    int d = strcmp(a->file, b->file);
    if (!d)
        d = (a->line > b->line) - (a->line < b->line);
    if (!d)
        d = (int)a->rule - (int)b->rule;
    if (!d)
        d = a->from_compiler - b->from_compiler;
    return d ? d : strcmp(a->what, b->what);
}

/* Prints one line per finding (one per file, line and rule), or the summary
 * when there is none; returns the exit status. */
static int report(check_run *r)
{
    int shown = 0;
    if (r->nfinds)
        qsort(r->finds, (size_t)r->nfinds, sizeof *r->finds, finding_order);
    for (int i = 0; i < r->nfinds; i++) {
        const check_finding *f = &r->finds[i], *prev = i ? &r->finds[i - 1] : NULL;
        if (prev && !strcmp(prev->file, f->file) && prev->line == f->line && prev->rule == f->rule)
            continue;
        printf("%s:%d: %s: %s\n", f->file, f->line, rule_names[f->rule], f->what);
        shown++;
    }
    printf("cgrad check: %d file%s, %d function%s: ", r->nfiles, r->nfiles == 1 ? "" : "s", r->nfns,
           r->nfns == 1 ? "" : "s");
    if (shown) {
        printf("%d finding%s against the firmware rules\n", shown, shown == 1 ? "" : "s");
        return 1;
    }
    printf("no heap, no stdio, no VLA, no recursion, no extensions, no double maths\n");
    return 0;
}

/* ---- the command ------------------------------------------------------------- */

/* qsort order of file names. */
static int name_order(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the regular .c and .h files directly in r->dir; returns 0, or 1 with
 * a message. */
static int list_files(check_run *r)
{
    DIR *d = opendir(r->dir);
    struct dirent *e;
    int cap = 0;
    if (!d) {
        fprintf(stderr, "cgrad check: %s: not a folder that can be read\n", r->dir);
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char path[4400];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name);
        if (n < 3 || e->d_name[n - 2] != '.' || !strchr("ch", e->d_name[n - 1]) || stat(path, &st) ||
            !S_ISREG(st.st_mode))
            continue;
        r->files = grow(r->files, r->nfiles, &cap, sizeof *r->files);
        r->files[r->nfiles++] = dup(e->d_name);
    }
    closedir(d);
    if (!r->nfiles) {
        fprintf(stderr, "cgrad check: %s holds no .c or .h file\n", r->dir);
        return 1;
    }
    qsort(r->files, (size_t)r->nfiles, sizeof *r->files, name_order);
    r->included = calloc((size_t)r->nfiles, 1);
    return r->included ? 0 : 1;
}

/* Prints the usage line; returns 2. */
static int usage(void)
{
    fputs("usage: cgrad check [--engine flags|clang] [--cc CC] DIR\n", stderr);
    return 2;
}

/* Reads the command line into r and *engine; returns 0 or the exit status of a
 * mistake. */
static int parse_args(int argc, char **argv, check_run *r, const char **engine)
{
    static char dir[4200];
#ifdef CGRAD_HAVE_LIBCLANG
    *engine = "clang";
#else
    *engine = "flags";
#endif
    r->cc = "cc";
    r->dir = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--engine") && i + 1 < argc)
            *engine = argv[++i];
        else if (!strcmp(argv[i], "--cc") && i + 1 < argc)
            r->cc = argv[++i];
        else if (argv[i][0] == '-' || r->dir)
            return usage();
        else
            r->dir = argv[i];
    }
    if (!r->dir || strlen(r->dir) >= sizeof dir - 2)
        return usage();
    if (strcmp(*engine, "flags") && strcmp(*engine, "clang")) {
        fprintf(stderr, "cgrad check: unknown engine '%s' (flags or clang)\n", *engine);
        return 2;
    }
    snprintf(dir, sizeof dir, "%s%s", r->dir[0] == '-' ? "./" : "", r->dir);
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
        dir[n - 1] = '\0';
    r->dir = dir;
    return 0;
}

int check_main(int argc, char **argv)
{
    check_run r = {0};
    const char *engine;
    int rc = parse_args(argc, argv, &r, &engine);
    if (rc)
        return rc;
#ifndef CGRAD_HAVE_LIBCLANG
    if (!strcmp(engine, "clang")) {
        fputs("cgrad check: this cgrad was built without libclang, so the clang engine is missing "
              "(install libclang-dev and reconfigure with -Dlibclang=enabled); --engine flags uses the C compiler\n",
              stderr);
        return 2;
    }
#endif
    if (list_files(&r) || check_scan(&r))
        return 1;
#ifdef CGRAD_HAVE_LIBCLANG
    rc = !strcmp(engine, "clang") ? check_clang(&r) : check_flags(&r);
#else
    rc = check_flags(&r);
#endif
    if (rc)
        return 1;
    find_cycles(&r);
    return report(&r);
}
