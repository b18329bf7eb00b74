/* test_names.c: hostile strings through the whole tool chain. `cgrad build`
 * runs the compilers without a shell, so quotes, `;` and `$(...)` in the
 * model file's path or the output folder are only bytes; a layer or model
 * name that would inject code or escape -o DIR is refused by the builder; a
 * data path full of C-breaking bytes reaches the training binary intact. */
#include "e2e.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

TestSuite(names, .timeout = 240, .fini = e2e_cleanup);

/* A digits model (64 inputs, 10 classes) whose model name, layer-name
 * option and data path are the given C expressions. */
static char *digits_model(const char *model_name, const char *layer_opt, const char *path_expr)
{
    static char src[4096];
    snprintf(src, sizeof src,
             "#include <cgrad.h>\n"
             "int main(int argc, char **argv)\n"
             "{\n"
             "    cg_model *m = cg_sequential(%s, CG_SHAPE(64));\n"
             "    cg_model_add(m, cg_dense(16, .activation = CG_RELU%s));\n"
             "    cg_model_add(m, cg_dense(10));\n"
             "    cg_compile(m, .optimizer = cg_adam(1e-2f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,\n"
             "               .from_logits = true, .metric = CG_ACCURACY, .batch_size = 32, .epochs = 1,\n"
             "               .data = {.path = %s, .scale = 1.0f / 16.0f, .test_split = 0.2f});\n"
             "    return cg_main(m, argc, argv);\n"
             "}\n",
             model_name, layer_opt, path_expr);
    return src;
}

/* The model file and output folder have names a shell would run: the build
 * works and nothing runs. */
Test(names, shell_characters_in_paths)
{
    const char *tmp = e2e_tmpdir();
    const char *dir = e2e_path(tmp, "a'b; touch PWNED_DIR; $(touch PWNED_SUB) \"c\"");
    e2e_mkdir(dir);
    char data[1024];
    snprintf(data, sizeof data, "\"%s/examples/data/digits.csv.gz\"", SOURCE_DIR);
    const char *model = e2e_path(dir, "m'; touch PWNED_FILE; '.c");
    e2e_write_str(model, digits_model("\"quoted\"", "", data));
    const char *out = e2e_path(dir, "out' `touch PWNED_OUT`");
    e2e_run r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", model, "-o", out, "--cc", "gcc");
    cr_assert_eq(r.status, 0, "cgrad build failed: %s", r.err);
    const char *pwned[] = {"PWNED_DIR", "PWNED_SUB", "PWNED_FILE", "PWNED_OUT"};
    for (size_t i = 0; i < sizeof pwned / sizeof pwned[0]; i++) {
        cr_expect(!e2e_exists(e2e_path(tmp, pwned[i])), "a shell ran: %s exists", pwned[i]);
        cr_expect(!e2e_exists(e2e_path(dir, pwned[i])), "a shell ran: %s exists", pwned[i]);
    }
    cr_expect(e2e_exists(e2e_path(out, "quoted")), "no training binary in %s", out);
    e2e_run_free(&r);
}

/* Builds src as tmp/model.c and expects the builder to refuse it at the
 * model's line 4 or 5 with `what`, no binary and no marker file. */
static void refused(const char *src, const char *what)
{
    const char *tmp = e2e_tmpdir();
    e2e_write_str(e2e_path(tmp, "model.c"), src);
    e2e_run r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", "model.c", "-o", "out", "--cc", "gcc");
    cr_assert(!r.timed_out && r.signal == 0, "cgrad build crashed: %s", r.err);
    cr_expect_neq(r.status, 0, "the build succeeded: %s", r.out);
    cr_expect_not_null(strstr(r.err, what), "the message lacks \"%s\": %s", what, r.err);
    cr_expect(strstr(r.err, "model.c:4: ") || strstr(r.err, "model.c:5: "), "no line in: %s", r.err);
    cr_expect(!e2e_exists(e2e_path(tmp, "PWNED")), "the injected code ran");
    cr_expect(!e2e_exists(e2e_path(tmp, "x.h")) && !e2e_exists(e2e_path(tmp, "x.c")), "files written outside -o");
    e2e_run_free(&r);
    /* run the binary if one was made anyway: it must not run the payload */
    const char *bin = e2e_path(e2e_path(tmp, "out"), "digits");
    if (e2e_exists(bin)) {
        e2e_run b = E2E_RUN(tmp, tmp, bin, "--help");
        e2e_run_free(&b);
        cr_expect(!e2e_exists(e2e_path(tmp, "PWNED")), "the built binary ran the injected code");
    }
}

/* A layer name holding a constructor that runs a command. */
Test(names, layer_name_injection)
{
    refused(digits_model("\"digits\"",
                         ", .name = \"d\\n__attribute__((constructor)) static void pw(void) "
                         "{ extern int system(const char *); system(\\\"touch PWNED\\\"); }\\nstatic float q\"",
                         "\"data.csv\""),
            "layer name");
}

/* A model name is a file name: no climbing out of -o DIR. */
Test(names, model_name_path)
{
    refused(digits_model("\"../x\"", "", "\"data.csv\""), "model name");
}

/* A data path holding a quote, a backslash, a comment's end, a trigraph, a
 * newline and non-ASCII bytes: the binary compiles and trains on exactly
 * that file. */
Test(names, data_path_bytes_reach_the_binary)
{
    const char *tmp = e2e_tmpdir();
    char odd[1024]; /* the folders make "*" + "/" and "??" + "/" */
    snprintf(odd, sizeof odd, "%s", e2e_path(tmp, "q\"b\\s*"));
    e2e_mkdir(odd);
    snprintf(odd, sizeof odd, "%s", e2e_path(odd, " ?\?"));
    e2e_mkdir(odd);
    snprintf(odd, sizeof odd, "%s", e2e_path(odd, " #x\nl\xc3\xa9"));
    e2e_mkdir(odd);
    char from[1024];
    snprintf(from, sizeof from, "%s/examples/data/digits.csv.gz", SOURCE_DIR);
    e2e_copy(from, e2e_path(odd, "d.csv.gz"), (size_t)-1);
    /* the same path as a C literal in the model program */
    char lit[2048] = "\"";
    size_t n = 1;
    for (const char *p = e2e_path(odd, "d.csv.gz"); *p && n + 8 < sizeof lit; p++)
        n += (size_t)snprintf(lit + n, sizeof lit - n, "\\%03o", (unsigned char)*p);
    snprintf(lit + n, sizeof lit - n, "\"");
    e2e_write_str(e2e_path(tmp, "model.c"), digits_model("\"digits\"", "", lit));
    e2e_run r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", "model.c", "-o", "out", "--cc", "gcc");
    cr_assert_eq(r.status, 0, "cgrad build failed: %s", r.err);
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, e2e_path(e2e_path(tmp, "out"), "digits"), "fit", "--epochs", "1", "--verbose", "0");
    cr_assert_eq(r.status, 0, "fit on the odd path failed: %s", r.err);
    double loss, acc;
    cr_expect(e2e_parse_figures(e2e_last_line(r.out), "test: ", &loss, &acc), "last line: %s", e2e_last_line(r.out));
    cr_expect(acc > 0.5, "one epoch on the digits reached %.3f", acc);
    e2e_run_free(&r);
}
