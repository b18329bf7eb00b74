/* builder_errors.h: the checks the builder-error suites share: a message
 * names the test file's line of the failing call (captured with __LINE__ on
 * that line) and mentions what went wrong, and the library prints nothing.
 * Header-only, so suites that link only libcgrad and Criterion can use it. */
#ifndef CGRAD_TEST_BUILDER_ERRORS_H
#define CGRAD_TEST_BUILDER_ERRORS_H

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <stdio.h>
#include <string.h>

/* Asserts that err contains "<file's base name>:<line>:" and each of the n needles. */
static inline void be_expect_error(const char *err, const char *file, int line, const char *const *needles, int n)
{
    const char *base = strrchr(file, '/');
    char where[128];
    snprintf(where, sizeof where, "%s:%d:", base ? base + 1 : file, line);
    cr_expect(strstr(err, where) != NULL, "error \"%s\" does not name the line: expected %s", err, where);
    for (int i = 0; i < n; i++)
        cr_expect(strstr(err, needles[i]) != NULL, "error \"%s\" does not mention \"%s\"", err, needles[i]);
}
#define BE_NEEDLES(...) (const char *[]){__VA_ARGS__}, (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *))

/* Captures stdout and stderr (a suite's .init): the library must write nothing. */
static inline void be_quiet(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

/* Asserts that nothing was written to stdout or stderr since be_quiet. */
static inline void be_nothing_printed(void)
{
    fflush(stdout);
    fflush(stderr);
    cr_expect_stdout_eq_str("", "the library printed to stdout");
    cr_expect_stderr_eq_str("", "the library printed to stderr");
}

#endif
