/* test_gradcheck_cli.c: the training binaries' gradcheck command. Every
 * example's training binary passes it at its initial weights (a short run:
 * a batch of 8, 16 coordinates per tensor); a model whose custom layer hides
 * a term from autodiff (tests/e2e/gradcheck_model.c built with
 * -DBREAK_GRADIENT) fails it, exit status 1, naming that layer's kernel and
 * nothing else, while the same program built without the break passes; a
 * checkpoint is checked at its own weights; the same run prints the same
 * report (Dropout's masks do not move between evaluations); bad flags and
 * files fail with one line. */
#include "e2e.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IRIS_DATA SOURCE_DIR "/examples/data/iris.csv"
#define BROKEN_MODEL SOURCE_DIR "/tests/e2e/gradcheck_model.c"

TestSuite(gradcheck, .timeout = 300, .fini = e2e_cleanup);

/* The value after "worst_rel=" in the verdict line; asserts it is a finite number. */
static double worst_rel(const char *verdict)
{
    const char *p = strstr(verdict, "worst_rel=");
    char *end;
    cr_assert_not_null(p, "no worst_rel in \"%s\"", verdict);
    double v = strtod(p + strlen("worst_rel="), &end);
    cr_assert(end != p + strlen("worst_rel=") && isfinite(v) && v >= 0, "worst_rel of \"%s\"", verdict);
    return v;
}

/* Runs bin gradcheck with the extra flags, asserts it passed with the report's
 * shape (the header, a line per parameter, the verdict last) and returns the run. */
static e2e_run assert_passes(const char *tmp, const char *bin, const char *const *flags)
{
    const char *argv[16] = {bin, "gradcheck"};
    int k = 2;
    for (; flags && *flags && k < 15; flags++)
        argv[k++] = *flags;
    argv[k] = NULL;
    e2e_run r = e2e_exec(tmp, tmp, 240, argv);
    cr_assert_eq(r.status, 0, "%s gradcheck: status %d\n%s%s", bin, r.status, r.out, r.err);
    const char *last = e2e_last_line(r.out);
    cr_assert(strncmp(last, "gradcheck: PASS worst_rel=", 26) == 0, "%s: %s", bin, r.out);
    worst_rel(last);
    const char *table = strstr(r.out, "\nparameter ");
    cr_assert_not_null(table, "%s: no table:\n%s", bin, r.out);
    cr_assert(strncmp(r.out, "gradcheck: ", 11) == 0 && e2e_count_lines(table) >= 3, "%s:\n%s", bin, r.out);
    return r;
}

/* assert_passes with a short run, in the form e2e_each_example_binary calls. */
static void passes_each(const char *bin, const char *name, void *tmp)
{
    (void)name;
    const char *const flags[] = {"--samples", "16", NULL};
    e2e_run r = assert_passes(tmp, bin, flags);
    e2e_run_free(&r);
}

Test(gradcheck, every_example_training_binary_passes)
{
    int binaries = e2e_each_example_binary(EXAMPLES_BUILD_DIR, passes_each, (void *)e2e_tmpdir());
    cr_assert_geq(binaries, 12, "only %d training binaries under %s", binaries, EXAMPLES_BUILD_DIR);
}

Test(gradcheck, a_custom_layer_hiding_a_term_from_autodiff_fails_naming_its_kernel)
{
#ifdef E2E_SANITIZED
    cr_skip_test("cgrad build does not link model programs in a sanitizer build");
#endif
    const char *tmp = e2e_tmpdir();
    const char *bins[2] = {e2e_path(e2e_path(tmp, "ok"), "tanh_check"),
                           e2e_path(e2e_path(tmp, "broken"), "tanh_check")};
    e2e_run r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", BROKEN_MODEL, "-o", "ok", "--cc", "gcc");
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", BROKEN_MODEL, "-o", "broken", "--cc", "gcc -DBREAK_GRADIENT");
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    e2e_run_free(&r);

    const char *const flags[] = {"--data", IRIS_DATA, NULL};
    r = assert_passes(tmp, bins[0], flags);
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, bins[1], "gradcheck", "--data", IRIS_DATA);
    cr_assert_eq(r.status, 1, "status %d\n%s%s", r.status, r.out, r.err);
    const char *last = e2e_last_line(r.out);
    cr_assert(strncmp(last, "gradcheck: FAIL worst_rel=", 26) == 0, "%s", r.out);
    cr_assert_gt(worst_rel(last), 0.3, "half of the kernel's gradient is missing: %s", last);
    cr_assert(strstr(last, " in tanh_dense_1/kernel (") != NULL, "%s", last);
    cr_assert(!strstr(last, ", "), "only the custom layer's kernel is wrong: %s", last); /* one name */
    cr_assert_str_empty(r.err);
    e2e_run_free(&r);
}

Test(gradcheck, a_checkpoint_is_checked_at_its_own_weights)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--epochs", "1", "--verbose", "0", "--save", "w.safetensors");
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    e2e_run_free(&r);
    const char *const none[] = {NULL}, *const trained[] = {"--weights", "w.safetensors", NULL};
    e2e_run initial = assert_passes(tmp, DIGITS_MLP, none), after = assert_passes(tmp, DIGITS_MLP, trained);
    cr_assert(strstr(e2e_line(initial.out, 0), ", the initial weights, ") != NULL, "%s", initial.out);
    cr_assert(strstr(e2e_line(after.out, 0), ", w.safetensors, ") != NULL, "%s", after.out);
    const char *li = strstr(initial.out, "loss "), *la = strstr(after.out, "loss ");
    cr_assert(li && la && atof(la + 5) < atof(li + 5), "the trained weights' loss is not lower:\n%s\n%s", initial.out,
              after.out);
    e2e_run_free(&initial);
    e2e_run_free(&after);
}

Test(gradcheck, the_same_run_prints_the_same_report_with_dropout)
{
    const char *tmp = e2e_tmpdir();
    const char *const flags[] = {"--samples", "4", "--seed", "3", NULL};
    e2e_run a = assert_passes(tmp, FASHION_CNN_BN, flags), b = assert_passes(tmp, FASHION_CNN_BN, flags);
    cr_assert_str_eq(a.out, b.out);
    e2e_run_free(&a);
    e2e_run_free(&b);
}

Test(gradcheck, bad_flags_and_files_fail_with_one_line)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "gradcheck", "--samples", "0");
    E2E_ASSERT_FAILS(r, 2, "--samples", "usage: ");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "gradcheck", "--iters", "3");
    E2E_ASSERT_FAILS(r, 2, "--iters", "gradcheck");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "gradcheck", "--batch-size", "100000");
    E2E_ASSERT_FAILS(r, 2, "--batch-size 100000");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "gradcheck", "--weights", "missing.safetensors");
    E2E_ASSERT_FAILS(r, 1, "missing.safetensors");
    cr_assert_str_empty(r.out);
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "gradcheck", "--data", "no_such.csv");
    E2E_ASSERT_FAILS(r, 1, "no_such.csv");
    e2e_run_free(&r);
}
