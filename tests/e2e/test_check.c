/* test_check.c: `cgrad check DIR`, the checker of firmware sources, with
 * both engines: the compiler-flags one always, the libclang one when cgrad
 * was built with it (CHECK_CLANG). Every example's portable sources pass;
 * each file of check_bad/ fails with exactly the lines and rule its first
 * comment states, the same under both engines; check_good/ passes; calls
 * that cycle through two files are found; mistakes get one clear line. */
#include "e2e.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CHECK_CLANG
#define CHECK_CLANG 0
#endif

TestSuite(e2e_check, .timeout = 240, .fini = e2e_cleanup);

static const char *const engines[] = {"flags", "clang"};
#define NUM_ENGINES (CHECK_CLANG ? 2 : 1)
#define CLEAN_TAIL "no heap, no stdio, no VLA, no recursion, no extensions, no double maths"

/* Runs `cgrad check --engine ENGINE dir`. */
static e2e_run check(const char *engine, const char *dir)
{
    return E2E_RUN(e2e_tmpdir(), NULL, CGRAD_TOOL, "check", "--engine", engine, dir);
}

/* The findings of a run's output as "file:line: rule" lines, in the order
 * printed (the summary line left out), in a static buffer. */
static const char *finding_keys(const char *out)
{
    static char keys[16384];
    keys[0] = '\0';
    for (int k = 0; k < e2e_count_lines(out); k++) {
        const char *line = e2e_line(out, k), *p = strstr(line, ": ");
        p = p ? strstr(p + 2, ": ") : NULL;
        if (strncmp(line, "cgrad check: ", 13) && p && strlen(keys) + (size_t)(p - line) + 2 < sizeof keys) {
            strncat(keys, line, (size_t)(p - line));
            strcat(keys, "\n");
        }
    }
    return keys;
}

/* Checks dir with every engine: exit status 1, exactly the expected
 * findings (each "file:line: rule\n", in file and line order) and a last
 * line that counts them. */
static void expect_findings(const char *dir, const char *expected)
{
    for (int e = 0; e < NUM_ENGINES; e++) {
        e2e_run r = check(engines[e], dir);
        cr_assert_eq(r.status, 1, "%s engine: exit %d on %s, expected 1\n%s%s", engines[e], r.status, dir, r.out,
                     r.err);
        cr_expect_str_eq(finding_keys(r.out), expected, "%s engine on %s: expected\n%sgot\n%s", engines[e], dir,
                         expected, r.out);
        cr_expect(strstr(e2e_last_line(r.out), "against the firmware rules") != NULL, "%s engine: last line: %s",
                  engines[e], e2e_last_line(r.out));
        e2e_run_free(&r);
    }
}

/* Copies check_bad/name alone into a fresh folder and expects its findings. */
static void expect_bad(const char *name, const char *expected)
{
    const char *dir = e2e_path(e2e_tmpdir(), "case");
    e2e_mkdir(dir);
    e2e_copy(e2e_path(SOURCE_DIR "/tests/e2e/check_bad", name), e2e_path(dir, name), (size_t)-1);
    expect_findings(dir, expected);
}

Test(e2e_check, heap)
{
    expect_bad("heap.c", "heap.c:7: heap\nheap.c:13: heap\n");
}

Test(e2e_check, stdio)
{
    expect_bad("stdio.c", "stdio.c:6: stdio\n");
}

Test(e2e_check, vla)
{
    expect_bad("vla.c", "vla.c:5: vla\n");
}

Test(e2e_check, recursion)
{
    expect_bad("recursion.c", "recursion.c:5: recursion\n");
}

Test(e2e_check, mutual_recursion)
{
    expect_bad("mutual.c", "mutual.c:9: recursion\nmutual.c:16: recursion\n");
}

Test(e2e_check, extensions)
{
    expect_bad("gnu.c", "gnu.c:3: extension\ngnu.c:13: extension\n");
}

Test(e2e_check, double_maths)
{
    expect_bad("double.c", "double.c:7: double\ndouble.c:15: double\n");
}

/* A cycle through two files (external functions declared in a header) is
 * found at both calls; the header is checked where it is included. */
Test(e2e_check, recursion_across_files)
{
    const char *dir = e2e_path(e2e_tmpdir(), "pingpong");
    e2e_mkdir(dir);
    e2e_write_str(e2e_path(dir, "pp.h"), "int ping(int n);\nint pong(int n);\n");
    e2e_write_str(e2e_path(dir, "ping.c"),
                  "#include \"pp.h\"\nint ping(int n)\n{\n    return n ? pong(n - 1) : 0;\n}\n");
    e2e_write_str(e2e_path(dir, "pong.c"), "#include \"pp.h\"\n\nint pong(int n)\n{\n    return n ? ping(n) : 1;\n}\n");
    expect_findings(dir, "ping.c:4: recursion\npong.c:5: recursion\n");
    e2e_run r = check("flags", dir);
    cr_expect_str_eq(e2e_last_line(r.out), "cgrad check: 3 files, 2 functions: 2 findings against the firmware rules");
    e2e_run_free(&r);
}

/* check_good/ (a .c file and the header it includes) passes with the
 * one-line summary, and the default engine is clang when built in. */
Test(e2e_check, clean_file_passes)
{
    const char *dir = SOURCE_DIR "/tests/e2e/check_good";
    for (int e = 0; e < NUM_ENGINES; e++) {
        e2e_run r = check(engines[e], dir);
        cr_assert_eq(r.status, 0, "%s engine: exit %d\n%s%s", engines[e], r.status, r.out, r.err);
        cr_expect_str_eq(r.out, "cgrad check: 2 files, 2 functions: " CLEAN_TAIL "\n", "%s engine", engines[e]);
        e2e_run_free(&r);
    }
    /* the engines word a VLA differently: the default one is clang's when built in */
    const char *dir_vla = e2e_path(e2e_tmpdir(), "vla");
    e2e_mkdir(dir_vla);
    e2e_copy(SOURCE_DIR "/tests/e2e/check_bad/vla.c", e2e_path(dir_vla, "vla.c"), (size_t)-1);
    e2e_run d = E2E_RUN(e2e_tmpdir(), NULL, CGRAD_TOOL, "check", dir_vla);
    e2e_run c = check(CHECK_CLANG ? "clang" : "flags", dir_vla);
    cr_expect_str_eq(d.out, c.out, "the default engine is not %s", CHECK_CLANG ? "clang" : "flags");
    e2e_run_free(&d);
    e2e_run_free(&c);
}

/* Mistakes get one line on stderr: a missing folder, a folder without C
 * files, an unknown engine, the flags engine on a compiler that is not gcc,
 * and the clang engine when cgrad was built without libclang. */
Test(e2e_check, mistakes)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = E2E_RUN(tmp, NULL, CGRAD_TOOL, "check", e2e_path(tmp, "missing"));
    E2E_ASSERT_FAILS(r, 1, "missing", "not a folder");
    e2e_run_free(&r);
    e2e_mkdir(e2e_path(tmp, "empty"));
    r = E2E_RUN(tmp, NULL, CGRAD_TOOL, "check", e2e_path(tmp, "empty"));
    E2E_ASSERT_FAILS(r, 1, "holds no .c or .h file");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, NULL, CGRAD_TOOL, "check", "--engine", "lint", SOURCE_DIR "/tests/e2e/check_good");
    E2E_ASSERT_FAILS(r, 2, "unknown engine 'lint'");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, NULL, CGRAD_TOOL, "check", "--engine", "flags", "--cc", "clang",
                SOURCE_DIR "/tests/e2e/check_good");
    E2E_ASSERT_FAILS(r, 1, "the flags engine needs gcc");
    e2e_run_free(&r);
    if (!CHECK_CLANG) {
        r = E2E_RUN(tmp, NULL, CGRAD_TOOL, "check", "--engine", "clang", SOURCE_DIR "/tests/e2e/check_good");
        E2E_ASSERT_FAILS(r, 2, "built without libclang", "--engine flags");
        e2e_run_free(&r);
    }
}

/* Removes the NAME_main.c files of folder dir. */
static void remove_drivers(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    cr_assert_not_null(d, "cannot list %s", dir);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 7 && !strcmp(e->d_name + n - 7, "_main.c"))
            cr_assert_eq(remove(e2e_path(dir, e->d_name)), 0, "cannot remove %s", e->d_name);
    }
    closedir(d);
}

/* The examples' model programs; the parameters are indices into it (a
 * test process cannot follow a pointer that the parameters carry). */
static const char *const gens[] = {CHECK_GENS};

ParameterizedTestParameters(e2e_check, example)
{
    static int index[sizeof gens / sizeof gens[0]];
    for (size_t i = 0; i < sizeof gens / sizeof gens[0]; i++)
        index[i] = (int)i;
    return cr_make_param_array(int, index, sizeof gens / sizeof gens[0]);
}

/* An example's portable sources, emitted by its model program, pass under
 * every engine with the same summary (2 files: NAME.h and NAME.c; the
 * training driver NAME_main.c, which calls the runtime, is not firmware). */
ParameterizedTest(int *i, e2e_check, example)
{
    const char *const *gen = &gens[*i];
    const char *tmp = e2e_tmpdir(), *base = strrchr(*gen, '/') ? strrchr(*gen, '/') + 1 : *gen;
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(strlen(base) - 4), base); /* without "_gen" */
    const char *dir = e2e_path(tmp, name);
    e2e_run g = E2E_RUN(tmp, tmp, *gen, "-o", dir, "--flavour", "portable");
    cr_assert_eq(g.status, 0, "%s: exit %d: %s", *gen, g.status, g.err);
    e2e_run_free(&g);
    remove_drivers(dir);
    char first[512] = "";
    for (int e = 0; e < NUM_ENGINES; e++) {
        e2e_run r = check(engines[e], dir);
        cr_assert_eq(r.status, 0, "%s: %s engine: exit %d\n%s%s", name, engines[e], r.status, r.out, r.err);
        cr_expect_eq(e2e_count_lines(r.out), 1, "%s: %s engine: more than the summary:\n%s", name, engines[e], r.out);
        const char *last = e2e_last_line(r.out);
        cr_expect(!strncmp(last, "cgrad check: 2 files, ", 22) && strstr(last, ": " CLEAN_TAIL), "%s: %s engine: %s",
                  name, engines[e], last);
        if (e == 0)
            snprintf(first, sizeof first, "%s", last);
        else
            cr_expect_str_eq(last, first, "%s: the engines disagree", name);
        e2e_run_free(&r);
    }
}
