/* check.h: `cgrad check DIR`, which verifies that the C sources of a folder
 * keep the firmware rules of the portable flavour: no heap, no stdio, no
 * variable-length arrays, no recursion, no compiler extensions, no double
 * maths.
 *
 * The front end (check.c) lists the folder's files, scans their tokens,
 * collects findings and the call graph, finds the cycles and reports. An
 * engine reads the code for it: check_flags.c runs the C compiler with
 * warning and call-graph flags and reads its output files; check_clang.c
 * walks libclang's syntax tree (built only when libclang is found). */
#ifndef CGRAD_CHECK_H
#define CGRAD_CHECK_H

/* What a finding breaks; check_rule_name() gives the word printed. */
typedef enum check_rule {
    CHECK_HEAP,      /* malloc, free and the other allocators */
    CHECK_STDIO,     /* printf and the rest of <stdio.h>, FILE */
    CHECK_VLA,       /* a stack array (or alloca) whose size is known only at run time */
    CHECK_RECURSION, /* a call in a cycle of the folder's functions */
    CHECK_EXTENSION, /* not ISO C99: GNU keywords, attributes, asm, compile errors */
    CHECK_DOUBLE,    /* arithmetic in double, or a math function of double */
    CHECK_WARNING,   /* any other warning of -Wall -Wextra */
    CHECK_RULES
} check_rule;

/* One finding: file (a name inside the folder, or a path outside it), line,
 * rule, and what is wrong in words. */
typedef struct check_finding {
    char *file;
    int line;
    check_rule rule;
    int from_compiler; /* 1: a compiler diagnostic, which loses to the engine's own words on the same line */
    char *what;
} check_finding;

/* A function defined in the folder. key tells functions apart: the name for
 * external ones, "TU:name" for static ones (TU: the file compiled). */
typedef struct check_fn {
    char *key, *name, *file;
    int line;
} check_fn;

/* A direct call from function key `from` to function key `to`, at file:line. */
typedef struct check_call {
    char *from, *to, *file;
    int line;
} check_call;

/* One run of the checker: the folder, its files, and what the engine found. */
typedef struct check_run {
    const char *dir; /* the folder as given, without a trailing '/' */
    char **files;    /* names of its .c and .h files, sorted */
    int nfiles;
    char *included; /* per file: 1 when a file of the folder includes it (a header then checked there) */
    const char *cc; /* the compiler command of the flags engine */
    check_finding *finds;
    int nfinds, cap_finds;
    check_fn *fns;
    int nfns, cap_fns;
    check_call *calls;
    int ncalls, cap_calls;
} check_run;

/* The language and warning flags that both engines give the compiler. */
#define CHECK_CFLAGS "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wvla", "-Wdouble-promotion"

/* `cgrad check [--engine flags|clang] [--cc CC] DIR`: returns the exit status
 * (0: clean, 1: findings or an error, 2: a usage mistake). */
int check_main(int argc, char **argv);

/* Records a finding at file:line (file as check_local gives it, or a path). */
void check_add(check_run *r, const char *file, int line, check_rule rule, int from_compiler, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Records a function defined at file:line, once per key. */
void check_add_fn(check_run *r, const char *key, const char *name, const char *file, int line);
/* Records a call between two function keys, made at file:line. */
void check_add_call(check_run *r, const char *from, const char *to, const char *file, int line);

/* The name of the folder's file that path names ("DIR/x.c" -> "x.c"), or
 * NULL when path is not directly in the folder. */
const char *check_local(const check_run *r, const char *path);
/* True when name ends in ".h". */
int check_is_header(const char *name);
/* The file at path, read whole into a NUL-terminated malloc'd buffer (NULL when it cannot be read). */
char *check_slurp(const char *path);
/* The rule a call to (or a use of) the library function name breaks, with
 * advice such as "sqrtf is the float one" in *advice; CHECK_RULES when none. */
check_rule check_forbidden(const char *name, const char **advice);
/* The rule of a compiler warning from its option ("-Wvla" -> CHECK_VLA). */
check_rule check_option_rule(const char *option);
/* Scans the tokens of every file of the folder: records what no compiler
 * warns about (GNU keywords, builtins, alloca, FILE) and which headers the
 * folder's files include. Returns 0, or -1 when a file cannot be read. */
int check_scan(check_run *r);
/* Fills lines (at most max, in order) with the lines of the folder's file
 * where identifier name appears outside comments and strings; returns how
 * many. */
int check_ident_lines(const check_run *r, const char *file, const char *name, int *lines, int max);

/* The engines: each reads every .c file and every header that no file
 * includes, and fills r; returns 0, or -1 (with a message on stderr) when it
 * could not run. */
int check_flags(check_run *r);
int check_clang(check_run *r);

#endif
