/* check_flags.c: the engine of `cgrad check` that needs only the C compiler
 * (gcc) and nm.
 *
 * Each .c file of the folder (and each header that no file includes) is
 * compiled into a temporary folder with
 *
 *   cc -std=c99 -Wall -Wextra -Wpedantic -Wvla -Wdouble-promotion
 *      -fno-builtin -fkeep-inline-functions -fdiagnostics-plain-output
 *      -fstack-usage -fcallgraph-info=su -I DIR -c FILE -o TMP/fN.o
 *
 * started with posix_spawnp (no shell). Its diagnostics become findings by
 * their option (-Wvla: vla, -Wdouble-promotion: double, -Wpedantic: extension,
 * errors: extension, any other warning: warning). The call-graph file fN.ci
 * (VCG text: one node per function with its place and stack frame, one edge
 * per call with the call's place) gives the functions, the calls between
 * them and the calls of forbidden library functions; `nm -u` on the object
 * lists every library symbol it needs, so a forbidden function that is only
 * referred to is found too. -fno-builtin keeps every call a call (gcc would
 * otherwise expand fabs or turn printf into puts), and
 * -fkeep-inline-functions emits static inline functions that nothing calls.
 * The compiler runs without -Werror: an error stops it before the object and
 * the call graph are written, and every warning is a finding anyway. */
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_ARGS 64

/* A command line: words, never parsed by a shell. */
typedef struct cmd {
    const char *a[MAX_ARGS + 1];
    int n;
    char words[1024]; /* the compiler command, split at blanks ("ccache gcc") */
} cmd;

/* Appends the NULL-terminated words to the command line. */
static void cmd_add(cmd *c, const char *const *words)
{
    for (; *words; words++)
        if (c->n < MAX_ARGS)
            c->a[c->n++] = *words;
    c->a[c->n] = NULL;
}

/* Starts a command line with the compiler command cc, split at blanks. */
static void cmd_cc(cmd *c, const char *cc)
{
    snprintf(c->words, sizeof c->words, "%s", cc);
    for (char *w = strtok(c->words, " \t"); w; w = strtok(NULL, " \t"))
        cmd_add(c, (const char *const[]){w, NULL});
}

/* Runs the command (argv[0] looked up in PATH, no shell) in the C locale,
 * its stdout into out_path and its stderr into err_path; returns its exit
 * status, 127 when it could not be started. */
static int cmd_run(const cmd *c, const char *out_path, const char *err_path)
{
    static char *env[1024];
    int k = 0;
    env[k++] = "LC_ALL=C"; /* plain quotes in the messages, whatever the user's locale */
    for (char **e = environ; *e && k < 1023; e++)
        if (strncmp(*e, "LC_ALL=", 7))
            env[k++] = *e;
    env[k] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int status,
        err = c->n && c->n < MAX_ARGS ? posix_spawnp(&pid, c->a[0], &fa, NULL, (char *const *)c->a, env) : E2BIG;
    posix_spawn_file_actions_destroy(&fa);
    if (err) {
        fprintf(stderr, "cgrad check: cannot run %s: %s\n", c->n ? c->a[0] : "the compiler", strerror(err));
        return 127;
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 127;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}


/* True when s is a non-empty run of digits. */
static int all_digits(const char *s)
{
    return *s && strspn(s, "0123456789") == strlen(s);
}

/* Splits "PATH:LINE[:COL]" in place: returns PATH and sets *line; NULL
 * when there is no line number. */
static char *split_place(char *place, int *line)
{
    char *last = strrchr(place, ':');
    if (!last || !all_digits(last + 1))
        return NULL;
    *last = '\0';
    char *before = strrchr(place, ':');
    if (before && all_digits(before + 1)) { /* PATH:LINE:COL */
        *before = '\0';
        *line = atoi(before + 1);
    } else {
        *line = atoi(last + 1);
    }
    return place;
}

/* Records the finding of one line of gcc's diagnostics ("PATH:LINE:COL:
 * warning: TEXT [-Wopt]"). Returns 1 for an error with a place, -1 for an
 * error without one (the compiler itself failed), else 0. */
static int diag_line(check_run *r, char *line)
{
    static const char *const kinds[] = {": warning: ", ": error: ", ": fatal error: "};
    char *k = NULL;
    int kind = 0, at = 0;
    while (kind < 3 && !(k = strstr(line, kinds[kind])))
        kind++;
    if (!k)
        return 0;
    char *text = k + strlen(kinds[kind]);
    *k = '\0';
    char *path = split_place(line, &at);
    if (!path)
        return kind ? -1 : 0;
    size_t n = strlen(text);
    char *bracket = n && text[n - 1] == ']' ? strrchr(text, '[') : NULL;
    char option[128] = "";
    if (bracket) { /* the option, as -Wx also when gcc says -Werror=x */
        const char *o = bracket + 1;
        int len = (int)strlen(o) - 1;
        if (!strncmp(o, "-Werror=", 8))
            snprintf(option, sizeof option, "-W%.*s", len - 8, o + 8);
        else
            snprintf(option, sizeof option, "%.*s", len, o);
    }
    const char *file = check_local(r, path);
    if (kind)
        check_add(r, file ? file : path, at, CHECK_EXTENSION, 1, "does not compile as C99: %s", text);
    else
        check_add(r, file ? file : path, at, check_option_rule(option), 1, "%s", text);
    return kind ? 1 : 0;
}

/* Reads the compiler's diagnostics in err_path; returns the number of
 * errors with a place, or -1 (with a message) when the compiler failed
 * without one. */
static int read_diagnostics(check_run *r, const char *err_path, const char *src)
{
    char *text = check_slurp(err_path);
    int errors = 0, bad = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char copy[2048];
        snprintf(copy, sizeof copy, "%s", line);
        int d = diag_line(r, copy);
        if (d < 0 && !bad++)
            fprintf(stderr, "cgrad check: the compiler failed on %s: %s (the flags engine needs gcc: --cc gcc)\n", src,
                    line);
        errors += d > 0;
    }
    free(text);
    return bad ? -1 : errors;
}

/* Copies the quoted value after `key: "` in line into out; 0 when absent. */
static int ci_field(const char *line, const char *key, char *out, size_t size)
{
    char pat[32];
    snprintf(pat, sizeof pat, "%s: \"", key);
    const char *s = strstr(line, pat), *e;
    if (!s || !(e = strchr(s += strlen(pat), '"')) || (size_t)(e - s) >= size)
        return 0;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    return 1;
}

/* A node of the call graph: a function defined in the folder is recorded;
 * one whose frame has a run-time size is a VLA finding when the file has
 * none yet (alloca, or a VLA the warnings missed). */
static void ci_node(check_run *r, const char *line)
{
    char title[512], label[1024];
    int at = 0;
    if (strstr(line, "shape : ellipse") || !ci_field(line, "title", title, sizeof title) ||
        !ci_field(line, "label", label, sizeof label))
        return; /* declared, not defined here */
    char *place = strstr(label, "\\n"), *frame = place ? strstr(place + 2, "\\n") : NULL;
    if (!place || !frame)
        return;
    *place = '\0', *frame = '\0';
    const char *path = split_place(place + 2, &at), *file = path ? check_local(r, path) : NULL;
    if (!file)
        return;
    check_add_fn(r, title, label, file, at);
    if (!strstr(frame + 2, "(dynamic") || strstr(frame + 2, "bounded"))
        return;
    for (int i = 0; i < r->nfinds; i++)
        if (r->finds[i].rule == CHECK_VLA && !strcmp(r->finds[i].file, file))
            return;
    check_add(r, file, at, CHECK_VLA, 0, "%s has a stack frame of run-time size", label);
}

/* An edge of the call graph: a call made in the folder is recorded, and a
 * call of a forbidden library function is a finding. */
static void ci_edge(check_run *r, const char *line)
{
    char from[512], to[512], place[1024];
    int at = 0;
    const char *advice, *path, *file;
    if (!ci_field(line, "sourcename", from, sizeof from) || !ci_field(line, "targetname", to, sizeof to) ||
        !ci_field(line, "label", place, sizeof place) || !(path = split_place(place, &at)) ||
        !(file = check_local(r, path)))
        return;
    check_add_call(r, from, to, file, at);
    check_rule rule = strchr(to, ':') ? CHECK_RULES : check_forbidden(to, &advice);
    if (rule == CHECK_RULES)
        return;
    check_add(r, file, at, rule, 0, "calls %s%s%s%s", to, *advice ? " (" : "", advice,
              *advice ? " is the float one)" : "");
}

/* Reads the call graph written for one file. */
static void read_callgraph(check_run *r, const char *ci_path)
{
    char *text = check_slurp(ci_path);
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "node:", 5))
            ci_node(r, line);
        else if (!strncmp(line, "edge:", 5))
            ci_edge(r, line);
    }
    free(text);
}

/* Records a use of the forbidden symbol sym (nm -u) at every line of the
 * file that names it, or of the first other file of the folder that does (a
 * macro of a header); at line 1 of the file when none does. */
static void symbol_uses(check_run *r, const char *file, const char *sym, check_rule rule, const char *advice)
{
    const char *name = strncmp(sym, "__isoc99_", 9) ? sym : sym + 9; /* glibc's C99 scanf */
    int lines[64], n = check_ident_lines(r, file, name, lines, 64);
    const char *where = file;
    for (int i = 0; i < r->nfiles && !n; i++)
        if (strcmp(r->files[i], file))
            where = r->files[i], n = check_ident_lines(r, where, name, lines, 64);
    if (!n)
        where = file, lines[n++] = 1;
    for (int k = 0; k < n; k++)
        check_add(r, where, lines[k], rule, 0, "uses %s%s%s%s", name, *advice ? " (" : "", advice,
                  *advice ? " is the float one)" : "");
}

/* Lists the object's undefined symbols with nm -u: each forbidden one is
 * recorded wherever the file names it (the calls, already found in the call
 * graph, keep their words). Returns 0, or -1 when nm cannot run. */
static int read_symbols(check_run *r, const char *obj, const char *nm_path, const char *err_path, const char *file)
{
    cmd c = {0};
    cmd_add(&c, (const char *const[]){"nm", "-u", obj, NULL});
    if (cmd_run(&c, nm_path, err_path))
        return -1;
    char *text = check_slurp(nm_path);
    const char *advice;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char *sym = strrchr(line, ' ');
        sym = sym ? sym + 1 : line;
        check_rule rule = check_forbidden(sym, &advice);
        if (rule != CHECK_RULES)
            symbol_uses(r, file, sym, rule, advice);
    }
    free(text);
    return 0;
}

/* Compiles the folder's file number i into tmp and reads what the compiler
 * wrote; returns 0, or -1 when the compiler or nm could not do its work. */
static int check_file(check_run *r, const char *tmp, int i)
{
    char src[4400], obj[4200], ci[4200], err[4200], out[4200];
    const char *name = r->files[i];
    snprintf(src, sizeof src, "%s/%s", r->dir, name);
    snprintf(obj, sizeof obj, "%.4000s/f%d.o", tmp, i);
    snprintf(ci, sizeof ci, "%.4000s/f%d.ci", tmp, i);
    snprintf(err, sizeof err, "%.4000s/f%d.err", tmp, i);
    snprintf(out, sizeof out, "%.4000s/f%d.out", tmp, i);
    cmd c = {0};
    cmd_cc(&c, r->cc);
    cmd_add(&c,
            (const char *const[]){CHECK_CFLAGS, "-fno-builtin", "-fkeep-inline-functions", "-fdiagnostics-plain-output",
                                  "-fstack-usage", "-fcallgraph-info=su", "-I", r->dir, "-c", NULL});
    if (check_is_header(name))
        cmd_add(&c, (const char *const[]){"-x", "c", NULL});
    cmd_add(&c, (const char *const[]){src, "-o", obj, NULL});
    int status = cmd_run(&c, out, err);
    if (status == 127)
        return -1;
    int errors = read_diagnostics(r, err, src);
    if (errors < 0)
        return -1;
    if (status) {
        if (!errors) {
            fprintf(stderr, "cgrad check: %s failed on %s without saying where (its messages are in %s)\n", c.a[0], src,
                    err);
            return -1;
        }
        return 0; /* the errors are findings; there is no object to read */
    }
    read_callgraph(r, ci);
    snprintf(out, sizeof out, "%.4000s/f%d.nm", tmp, i);
    return read_symbols(r, obj, out, err, name);
}

/* Removes the temporary folder and the files in it. */
static void remove_tmp(const char *tmp)
{
    DIR *d = opendir(tmp);
    struct dirent *e;
    char path[4400];
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%.4000s/%s", tmp, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(tmp);
}

int check_flags(check_run *r)
{
    const char *base = getenv("TMPDIR");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/cgrad_check_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "cgrad check: cannot make a temporary folder %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < r->nfiles && !rc; i++)
        if (!check_is_header(r->files[i]) || !r->included[i])
            rc = check_file(r, tmp, i);
    remove_tmp(tmp);
    return rc;
}
