/* test_names.c: every string a user gives the builder is untrusted. Names
 * that become C identifiers or file names (models, layers, custom layer
 * kinds, weights, inputs, placeholders, variables, custom losses and
 * metrics) are refused at the builder call, naming the user's line, unless
 * they are identifiers of at most CG_MAX_NAME characters. Strings that the
 * emitted code only quotes or mentions in comments (the source file, the
 * data path, the series column) are escaped: the emitted code compiles under
 * -Werror and holds exactly the user's bytes. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cgrad.h>

#include "harness.h"

/* The hostile strings: each must be refused as a name. */
static const char *const hostile[] = {
    "a\nb",
    "dense\n__attribute__((constructor)) static void x(void) { system(\"id\"); }\nstatic int y",
    "it's",
    "quo\"te",
    "back\\slash",
    "end*/comment",
    "#include <stdlib.h>",
    "caf\xc3\xa9",
    "../../x",
    "a/b",
    "two words",
    "",
    "9lives",
    "__reserved",
    "_Reserved",
};
#define NHOSTILE (int)(sizeof hostile / sizeof hostile[0])

/* A 10,000-character name (letters only: refused for its length alone). */
static char *long_name(void)
{
    char *s = malloc(10001);
    cr_assert_not_null(s);
    memset(s, 'a', 10000);
    s[10000] = 0;
    return s;
}

/* Asserts err names this file and line and says which name was refused. */
static void refused_at(const char *err, int line, const char *what)
{
    char where[64];
    snprintf(where, sizeof where, "test_names.c:%d:", line);
    cr_expect(strstr(err, where) != NULL, "error \"%s\" does not name the line %s", err, where);
    cr_expect(strstr(err, what) != NULL, "error \"%s\" does not say it is a %s", err, what);
    cr_expect(strchr(err, '\n') == NULL, "error \"%s\" spans lines", err);
    cr_expect(strlen(err) < 400, "error of %zu characters", strlen(err));
}

static void quiet(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

TestSuite(names, .init = quiet, .timeout = 120);

Test(names, model_names)
{
    char *big = long_name();
    for (int i = 0; i <= NHOSTILE; i++) {
        const char *h = i < NHOSTILE ? hostile[i] : big;
        int line = __LINE__ + 1;
        cg_model *m = cg_sequential(h, CG_SHAPE(3));
        cr_assert_not_null(m);
        cr_expect(cg_failed(cg_model_graph(m)), "model name #%d was accepted", i);
        refused_at(cg_error(cg_model_graph(m)), line, "model name");
        cg_model_free(m);
        cg_graph *g = cg_graph_new(h);
        cr_expect(cg_failed(g), "graph name #%d was accepted", i);
        cr_expect(strstr(cg_error(g), "graph name") != NULL, "%s", cg_error(g));
        cg_graph_free(g);
    }
    free(big);
}

Test(names, layer_names)
{
    char *big = long_name();
    for (int i = 0; i <= NHOSTILE; i++) {
        cg_model *m = cg_sequential("net", CG_SHAPE(3));
        int line = __LINE__ + 1;
        cg_model_add(m, cg_dense(2, .name = i < NHOSTILE ? hostile[i] : big));
        cr_expect(cg_failed(cg_model_graph(m)), "layer name #%d was accepted", i);
        refused_at(cg_error(cg_model_graph(m)), line, "layer name");
        cg_model_free(m);
    }
    free(big);
}

/* A custom layer whose weight is named by self. */
static cg_t named_weight_call(cg_layer_ctx *l, cg_t x, void *self)
{
    cg_t w = cg_add_weight(l, (const char *)self, CG_SHAPE(3, 2), cg_glorot_uniform(), true);
    return cg_matmul(x, w);
}

Test(names, weight_names_and_custom_kinds)
{
    char *big = long_name();
    for (int i = 0; i <= NHOSTILE; i++) {
        const char *h = i < NHOSTILE ? hostile[i] : big;
        cg_model *m = cg_sequential("net", CG_SHAPE(3));
        cg_model_add(m, cg_custom_layer("MyDense", named_weight_call, (void *)h));
        cr_expect(cg_failed(cg_model_graph(m)), "weight name #%d was accepted", i);
        cr_expect(strstr(cg_error(cg_model_graph(m)), "weight name") != NULL, "%s", cg_error(cg_model_graph(m)));
        cg_model_free(m);

        m = cg_sequential("net", CG_SHAPE(3));
        int line = __LINE__ + 1;
        cg_model_add(m, cg_custom_layer(h, named_weight_call, "kernel"));
        cr_expect(cg_failed(cg_model_graph(m)), "custom layer kind #%d was accepted", i);
        refused_at(cg_error(cg_model_graph(m)), line, "custom layer kind name");
        cg_model_free(m);
    }
    free(big);
}

Test(names, inputs_placeholders_variables)
{
    char *big = long_name();
    for (int i = 0; i <= NHOSTILE; i++) {
        const char *h = i < NHOSTILE ? hostile[i] : big;
        bool slash_ok = !strcmp(h, "a/b"); /* inputs and variables may be called "layer/role" */
        cg_model *m = cg_functional("net");
        int line = __LINE__ + 1;
        cg_t x = cg_input(m, h, CG_SHAPE(3));
        cr_expect((x.id >= 0) == slash_ok, "input name #%d: id %d", i, x.id);
        if (!slash_ok)
            refused_at(cg_error(cg_model_graph(m)), line, "placeholder name");
        cg_model_free(m);

        cg_graph *g = cg_graph_new("tape");
        line = __LINE__ + 1;
        cg_t v = cg_variable(g, h, CG_SHAPE(2), cg_zeros());
        cr_expect((v.id >= 0) == slash_ok, "variable name #%d: id %d", i, v.id);
        if (!slash_ok)
            refused_at(cg_error(g), line, "variable name");
        cg_graph_free(g);
    }
    free(big);
}

static cg_t abs_error(cg_t y, cg_t p, void *self)
{
    (void)self;
    return cg_mean(cg_abs(cg_sub(y, p)));
}

Test(names, custom_loss_and_metric_names)
{
    for (int i = 0; i < NHOSTILE; i++) {
        cg_model *m = cg_sequential("net", CG_SHAPE(3));
        cg_model_add(m, cg_dense(1));
        int line = __LINE__ + 1;
        cg_compile(m, .custom_loss = abs_error, .custom_loss_name = hostile[i]);
        cr_expect(cg_failed(cg_model_graph(m)), "loss name #%d was accepted", i);
        refused_at(cg_error(cg_model_graph(m)), line, "custom loss name");
        cg_model_free(m);

        m = cg_sequential("net", CG_SHAPE(3));
        cg_model_add(m, cg_dense(1));
        line = __LINE__ + 1;
        cg_compile(m, .loss = CG_MSE, .custom_metric = abs_error, .custom_metric_name = hostile[i]);
        cr_expect(cg_failed(cg_model_graph(m)), "metric name #%d was accepted", i);
        refused_at(cg_error(cg_model_graph(m)), line, "custom metric name");
        cg_model_free(m);
    }
}

/* The longest allowed names work, and two of them that differ only in their
 * last character stay two layers (naming them once looped for ever when
 * buffer names were cut at 255 characters). */
Test(names, longest_names)
{
    char a[CG_MAX_NAME + 1], b[CG_MAX_NAME + 1];
    memset(a, 'l', CG_MAX_NAME);
    a[CG_MAX_NAME] = 0;
    memcpy(b, a, sizeof b);
    b[CG_MAX_NAME - 1] = 'm';
    cg_model *m = cg_sequential(a, CG_SHAPE(3));
    cg_model_add(m, cg_dense(4, .name = a, .activation = CG_RELU));
    cg_model_add(m, cg_dense(1, .name = b));
    cg_compile(m, .loss = CG_MSE, .optimizer = cg_adam(0.01f));
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    hx_module mod;
    cr_assert(hx_build_model(&mod, m, CG_PORTABLE, hx_default_cc()) == 0, "%s", mod.err);
    cr_expect(mod.nparams == 4, "%d parameters", mod.nparams);
    hx_close(&mod);
    cg_model_free(m);
}

/* The user's file name is in every kernel's banner; a file name that holds a
 * comment's end, a newline, a directive and a trigraph must stay inside the
 * comment: the code compiles under -Werror and computes the same loss as
 * the same graph made from a plain file name. */
static float tape_loss(const char *file, int *status)
{
    cg_src src = {file, 7};
    cg_graph *g = cg_graph_new("tape");
    cg_t x = cg_placeholder_at(src, g, "x", CG_SHAPE(CG_BATCH, 2));
    cg_t w = cg_variable_at(src, g, "w", CG_SHAPE(2, 1), cg_ones());
    cg_gradients(g, cg_mean(cg_square(cg_matmul(x, w))), w);
    cr_assert(!cg_failed(g), "%s", cg_error(g));
    hx_module mod;
    *status = hx_build_graph(&mod, g, 1, CG_PORTABLE, hx_default_cc());
    cr_assert(*status == 0, "file name %s: %s", file, mod.err);
    const float xs[4] = {1, 2, 3, 4};
    float loss = mod.gradients(mod.state, 2, (const float *[]){xs});
    char *c = NULL;
    char path[600];
    snprintf(path, sizeof path, "%s/tape.c", mod.dir);
    c = hx_read_file(path, NULL);
    cr_assert_not_null(c);
    cr_expect(strstr(c, "#include <stdlib.h>\n") == NULL, "the file name's directive reached a line of its own");
    free(c);
    hx_close(&mod);
    cg_graph_free(g);
    return loss;
}

Test(names, source_file_names_are_escaped)
{
    int st;
    float plain = tape_loss("model.c", &st);
    const char *evil[] = {
        "dir/m\n#include <stdlib.h>\nint evil = 1; *", "x?\?/\nint y;", "caf\xc3\xa9 \"q\" \\ \t.c", "x*/*.c", "*",
    };
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++)
        cr_expect_float_eq(tape_loss(evil[i], &st), plain, 1e-6f, "file name #%zu", i);
    cr_expect_float_eq(plain, (9.0f + 49.0f) / 2.0f, 1e-5f);
}
