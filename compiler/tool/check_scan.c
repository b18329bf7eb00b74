/* check_scan.c: what `cgrad check` knows about names, and its token scan.
 *
 * The tables say which library functions break which rule (allocators,
 * <stdio.h>, the double functions of <math.h>), which compiler warning
 * belongs to which rule, and which keywords are GNU C's. The scan walks the
 * identifiers of the folder's files outside comments, strings and character
 * constants: it finds what no compiler warns about (__attribute__,
 * __typeof__, __asm__, builtins, alloca, FILE) and the headers that the
 * folder's files include. Both engines run it, so they agree on those. */
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
static const char *const heap_names[] = {
    "malloc", "calloc", "realloc", "free", "aligned_alloc", "posix_memalign", "memalign", "valloc",
    "pvalloc", "reallocarray", "strdup", "strndup", "sbrk", "brk", NULL,
};
static const char *const stdio_names[] = {
    "printf", "fprintf", "sprintf", "snprintf", "vprintf", "vfprintf", "vsprintf", "vsnprintf", "dprintf",
    "scanf", "fscanf", "sscanf", "vscanf", "vfscanf", "vsscanf", "__isoc99_scanf", "__isoc99_fscanf",
    "__isoc99_sscanf", "puts", "fputs", "putchar", "putc", "fputc", "getchar", "getc", "fgetc", "gets",
    "fgets", "ungetc", "fopen", "freopen", "fdopen", "fclose", "fflush", "fread", "fwrite", "fseek",
    "ftell", "rewind", "fgetpos", "fsetpos", "feof", "ferror", "clearerr", "perror", "remove", "rename",
    "tmpfile", "tmpnam", "setbuf", "setvbuf", "stdin", "stdout", "stderr", NULL,
};
/* The double functions of <math.h>; NAMEf is the float one, NAMEl the long double one. */
static const char *const double_names[] = {
    "acos", "asin", "atan", "atan2", "cos", "sin", "tan", "acosh", "asinh", "atanh", "cosh", "sinh",
    "tanh", "exp", "exp2", "expm1", "frexp", "ldexp", "log", "log10", "log1p", "log2", "logb", "ilogb",
    "modf", "scalbn", "scalbln", "cbrt", "fabs", "hypot", "pow", "sqrt", "erf", "erfc", "lgamma",
    "tgamma", "ceil", "floor", "nearbyint", "rint", "lrint", "llrint", "round", "lround", "llround",
    "trunc", "fmod", "remainder", "remquo", "copysign", "nan", "nextafter", "nexttoward", "fdim",
    "fmax", "fmin", "fma", NULL,
};
/* Keywords of GNU C (and C99 identifiers that GNU C makes keywords). */
static const char *const gnu_keywords[] = {
    "asm", "typeof", "__asm", "__asm__", "__attribute", "__attribute__", "__typeof", "__typeof__",
    "__extension__", "__inline", "__inline__", "__restrict", "__restrict__", "__volatile", "__volatile__",
    "__const", "__const__", "__signed", "__signed__", "__label__", "__auto_type", "__int128", "__thread",
    "__alignof", "__alignof__", "__real", "__real__", "__imag", "__imag__", "__complex__", NULL,
};
/* Warnings that -Wpedantic turns on under names of their own (gcc's and clang's). */
static const char *const pedantic_options[] = {
    "-Wpedantic", "-pedantic", "-Woverlength-strings", "-Wlong-long", "-Wzero-length-array",
    "-Wvariadic-macros", "-Wempty-translation-unit", "-Wextra-semi", "-Wnewline-eof",
    "-Wembedded-directive", "-Wflexible-array-extensions", "-Wc11-extensions", "-Wc2x-extensions", NULL,
};
/* clang-format on */

/* True when name is one of the NULL-terminated list. */
static int in_list(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (!strcmp(*list, name))
            return 1;
    return 0;
}

check_rule check_forbidden(const char *name, const char **advice)
{
    static char buf[64];
    size_t n = strlen(name);
    *advice = "";
    if (in_list(heap_names, name))
        return CHECK_HEAP;
    if (in_list(stdio_names, name))
        return CHECK_STDIO;
    if (n >= sizeof buf - 1)
        return CHECK_RULES;
    memcpy(buf, name, n + 1);
    if (!in_list(double_names, buf) && n > 1 && buf[n - 1] == 'l') /* sqrtl: long double */
        buf[n - 1] = '\0';
    if (!in_list(double_names, buf))
        return CHECK_RULES;
    strcat(buf, "f");
    *advice = buf;
    return CHECK_DOUBLE;
}

check_rule check_option_rule(const char *option)
{
    if (!option || !*option)
        return CHECK_WARNING;
    if (!strcmp(option, "-Wvla") || !strcmp(option, "-Wvla-extension"))
        return CHECK_VLA;
    if (!strcmp(option, "-Wdouble-promotion"))
        return CHECK_DOUBLE;
    if (in_list(pedantic_options, option) || !strncmp(option, "-Wgnu", 5) || strstr(option, "extension"))
        return CHECK_EXTENSION;
    return CHECK_WARNING;
}

const char *check_local(const check_run *r, const char *path)
{
    size_t n = strlen(r->dir);
    if (strncmp(path, r->dir, n) || path[n] != '/' || strchr(path + n + 1, '/'))
        return NULL;
    for (int i = 0; i < r->nfiles; i++)
        if (!strcmp(r->files[i], path + n + 1))
            return r->files[i];
    return NULL;
}

int check_is_header(const char *name)
{
    size_t n = strlen(name);
    return n > 2 && !strcmp(name + n - 2, ".h");
}

/* The folder's file name, read whole into a NUL-terminated buffer (NULL
 * when it cannot be read). */
static char *read_source(const check_run *r, const char *name)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    return check_slurp(path);
}

char *check_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *text = malloc(cap + 1);
    while (text && (got = fread(text + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *bigger = realloc(text, 2 * cap + 1);
            if (!bigger)
                free(text);
            text = bigger, cap *= 2;
        }
    }
    fclose(f);
    if (text)
        text[n] = '\0';
    return text;
}

/* What the scan reports: an identifier, or the name in #include "name". */
typedef void scan_fn(void *ctx, const char *word, size_t len, int line, int is_include);

/* Skips a comment, string or character constant at *p (counting newlines
 * into *line); returns 1 when there was one. */
static int skip_literal(const char **p, int *line)
{
    const char *s = *p;
    if (s[0] == '/' && s[1] == '*') {
        for (s += 2; *s && !(s[0] == '*' && s[1] == '/'); s++)
            *line += *s == '\n';
        *p = *s ? s + 2 : s;
        return 1;
    }
    if (s[0] == '/' && s[1] == '/') {
        for (s += 2; *s && *s != '\n'; s++)
            if (*s == '\\' && s[1] == '\n') /* continued on the next line */
                s++, ++*line;
        *p = s;
        return 1;
    }
    if (*s != '"' && *s != '\'')
        return 0;
    char quote = *s++;
    for (; *s && *s != quote && *s != '\n'; s++)
        if (*s == '\\' && s[1])
            *line += *++s == '\n';
    *p = *s == quote ? s + 1 : s;
    return 1;
}

/* At a '#' that starts a line: when it is #include "name", reports name. */
static void scan_include(const char *s, int line, scan_fn *fn, void *ctx)
{
    for (s++; *s == ' ' || *s == '\t'; s++)
        ;
    if (strncmp(s, "include", 7))
        return;
    for (s += 7; *s == ' ' || *s == '\t'; s++)
        ;
    const char *end = *s == '"' ? strchr(s + 1, '"') : NULL;
    if (end && !memchr(s, '\n', (size_t)(end - s)))
        fn(ctx, s + 1, (size_t)(end - s - 1), line, 1);
}

/* Calls fn for every identifier of text outside comments and literals, and
 * for every #include "name". */
static void scan_text(const char *text, scan_fn *fn, void *ctx)
{
    int line = 1, line_start = 1;
    for (const char *s = text; *s;) {
        if (skip_literal(&s, &line)) {
            line_start = 0;
            continue;
        }
        char c = *s;
        if (c == '#' && line_start)
            scan_include(s, line, fn, ctx);
        if (c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
            const char *w = s;
            while (*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9'))
                s++;
            fn(ctx, w, (size_t)(s - w), line, 0);
        } else if (c >= '0' && c <= '9') { /* a number, suffixes and exponents included */
            for (s++; *s == '.' || *s == '_' || (*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= 'a' && *s <= 'z') || ((*s == '+' || *s == '-') && strchr("eEpP", s[-1]));
                 s++)
                ;
        } else {
            s++;
        }
        if (c == '\n')
            line++, line_start = 1;
        else if (c != ' ' && c != '\t' && c != '\r' && c != '\f' && c != '\v')
            line_start = 0;
    }
}

/* The scan of one file for the rules: the run and the file's name. */
typedef struct rule_scan {
    check_run *r;
    const char *file;
} rule_scan;

/* scan_fn of the rules: GNU keywords, builtins, alloca and FILE are
 * findings; an included header of the folder is marked. */
static void rule_word(void *ctx, const char *word, size_t len, int line, int is_include)
{
    rule_scan *s = ctx;
    char w[128];
    if (len >= sizeof w)
        return;
    memcpy(w, word, len);
    w[len] = '\0';
    if (is_include) {
        for (int i = 0; i < s->r->nfiles; i++)
            if (!strcmp(s->r->files[i], w))
                s->r->included[i] = 1;
    } else if (!strcmp(w, "alloca") || !strncmp(w, "__builtin_alloca", 16)) {
        check_add(s->r, s->file, line, CHECK_VLA, 0, "uses %s, a stack allocation of run-time size", w);
    } else if (in_list(gnu_keywords, w)) {
        check_add(s->r, s->file, line, CHECK_EXTENSION, 0, "uses %s, a keyword of GNU C", w);
    } else if (!strncmp(w, "__builtin_", 10)) {
        check_add(s->r, s->file, line, CHECK_EXTENSION, 0, "uses %s, a compiler builtin", w);
    } else if (!strcmp(w, "FILE")) {
        check_add(s->r, s->file, line, CHECK_STDIO, 0, "uses FILE");
    }
}

/* Scans every file of the folder: records the token findings and which
 * headers are included. Returns 0, or -1 when a file cannot be read. */
int check_scan(check_run *r)
{
    for (int i = 0; i < r->nfiles; i++) {
        char *text = read_source(r, r->files[i]);
        if (!text) {
            fprintf(stderr, "cgrad check: cannot read %s/%s\n", r->dir, r->files[i]);
            return -1;
        }
        rule_scan s = {r, r->files[i]};
        scan_text(text, rule_word, &s);
        free(text);
    }
    return 0;
}

/* The search of check_ident_lines: the name, and the lines found. */
typedef struct ident_search {
    const char *name;
    int *lines, n, max;
} ident_search;

/* scan_fn of the search: keeps the lines of the identifier. */
static void ident_word(void *ctx, const char *word, size_t len, int line, int is_include)
{
    ident_search *s = ctx;
    if (!is_include && s->n < s->max && strlen(s->name) == len && !memcmp(word, s->name, len) &&
        (!s->n || s->lines[s->n - 1] != line))
        s->lines[s->n++] = line;
}

int check_ident_lines(const check_run *r, const char *file, const char *name, int *lines, int max)
{
    ident_search s = {name, lines, 0, max};
    char *text = read_source(r, file);
    if (text)
        scan_text(text, ident_word, &s);
    free(text);
    return s.n;
}
