/* test_preprocess.c: Keras' Normalization and Rescaling layers, constants
 * (cg_constant) and the reshape of a scalar.
 *
 *   builder     a scalar reshaped to (1) has shape (1) (it stayed rank 0
 *               before); a reshape whose element count does not match, of a
 *               tensor or of a scalar, fails at the call's line naming both
 *               shapes; Normalization without statistics on something else
 *               than a model input, with only .mean, with a negative
 *               variance; Rescaling by NaN; constants with a bad name, a
 *               non-finite value or a batch dimension: each error names
 *               the line and prints nothing
 *   constants   a tape graph reading a named cg_constant and a scalar
 *               reshaped to (1): the values appear as a static const array
 *               in the emitted code, and the loss and the gradient computed
 *               by it are the ones worked out here
 *   forward     Normalization (fixed statistics, and statistics in the
 *               parameter block as fit leaves them, one variance 0 so that
 *               Keras' epsilon 1e-7 applies) then Rescaling, predict against
 *               torch (numpy without torch; tests/ops/norm_ref.py), both
 *               flavours, within 1e-5 relative; skipped without numpy
 *   gradcheck   Normalization with fixed statistics and Rescaling between
 *               Dense layers: the gradients train_step leaves against
 *               central finite differences of its loss, both flavours; the
 *               computed statistics are non-trainable (no gradient) */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builder_errors.h"
#include "fdcheck.h"
#include "harness.h"

/* dir/file into path[512]. */
static const char *in_dir(char *path, const char *dir, const char *file)
{
    cr_assert(snprintf(path, 512, "%s/%s", dir, file) < 512, "path too long: %s", dir);
    return path;
}

/* ---- builder ------------------------------------------------------------------------------ */

TestSuite(preprocess_builder, .init = be_quiet);

Test(preprocess_builder, scalar_reshaped_to_one_element)
{
    cg_graph *g = cg_graph_new("scalar_shape");
    cg_t s = cg_scalar(g, 2.5f);
    cg_shape one = cg_shape_of(cg_reshape(s, CG_SHAPE(1)));
    cr_expect(one.rank == 1 && one.dims[0] == 1, "reshape(scalar, (1)) has rank %d", one.rank);
    cg_shape two = cg_shape_of(cg_reshape(s, CG_SHAPE(1, 1)));
    cr_expect(two.rank == 2 && two.dims[0] == 1 && two.dims[1] == 1, "reshape(scalar, (1, 1)) has rank %d", two.rank);
    cr_expect(!cg_failed(g), "%s", cg_error(g));
    be_nothing_printed();
    cg_graph_free(g);
}

Test(preprocess_builder, reshape_with_another_count_fails_at_its_line)
{
    cg_graph *g = cg_graph_new("bad_reshape");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 4));
    int line = __LINE__, bad = cg_reshape(x, CG_SHAPE(CG_BATCH, 3)).id;
    cr_expect(bad < 0 && cg_failed(g), "reshape (n, 4) into (n, 3) was accepted");
    be_expect_error(cg_error(g), __FILE__, line, BE_NEEDLES("(n, 4)", "(n, 3)"));
    cg_graph_free(g);
    g = cg_graph_new("bad_scalar_reshape");
    line = __LINE__, bad = cg_reshape(cg_scalar(g, 1.0f), CG_SHAPE(2, 3)).id;
    cr_expect(bad < 0 && cg_failed(g), "reshape of a scalar into (2, 3) was accepted");
    be_expect_error(cg_error(g), __FILE__, line, BE_NEEDLES("()", "(2, 3)"));
    be_nothing_printed();
    cg_graph_free(g);
}

/* Adds layer to a Sequential model of input (4) after a Dense(3); expects the error at line naming needle. */
static void layer_fails(cg_layer layer, bool after_dense, int line, const char *needle)
{
    cg_model *m = cg_sequential("pre_err", CG_SHAPE(4));
    if (after_dense)
        cg_model_add(m, cg_dense(3));
    int rc = cg_model_add(m, layer);
    cr_expect(rc != 0 && cg_failed(cg_model_graph(m)), "the layer was accepted (%s)", needle);
    be_expect_error(cg_error(cg_model_graph(m)), __FILE__, line, BE_NEEDLES(needle));
    cg_model_free(m);
}

Test(preprocess_builder, layer_errors)
{
    static const float mean[4] = {0, 1, 2, 3}, var[4] = {1, 1, -1, 1}, ok[4] = {1, 1, 1, 1};
    layer_fails(cg_normalization(), true, __LINE__, "not a model input");
    layer_fails(cg_normalization(.mean = mean), false, __LINE__, "give both .mean and .variance");
    layer_fails(cg_normalization(.mean = mean, .variance = var), false, __LINE__, "feature 2");
    layer_fails(cg_rescaling(NAN), false, __LINE__, "must be finite");
    layer_fails(cg_rescaling(0.0f, 1.0f), false, __LINE__, "scale not 0");
    cg_model *m = cg_sequential("pre_ok", CG_SHAPE(4)); /* fixed statistics may follow any layer */
    cg_model_add(m, cg_dense(4));
    cr_expect(cg_model_add(m, cg_normalization(.mean = mean, .variance = ok)) == 0, "%s", cg_error(cg_model_graph(m)));
    cg_model_free(m);
    be_nothing_printed();
}

Test(preprocess_builder, constant_errors)
{
    static const float v[3] = {1, INFINITY, 2};
    cg_graph *g = cg_graph_new("const_err");
    int line = __LINE__ + 0 * cg_constant_named(g, "1st", CG_SHAPE(3), v).id;
    be_expect_error(cg_error(g), __FILE__, line, BE_NEEDLES("1st"));
    cg_graph_free(g);
    g = cg_graph_new("const_err");
    line = __LINE__, cg_constant(g, CG_SHAPE(3), v);
    be_expect_error(cg_error(g), __FILE__, line, BE_NEEDLES("value 1", "finite"));
    cg_graph_free(g);
    g = cg_graph_new("const_err");
    line = __LINE__, cg_constant(g, CG_SHAPE(CG_BATCH, 3), v);
    be_expect_error(cg_error(g), __FILE__, line, BE_NEEDLES("no batch dimension"));
    be_nothing_printed();
    cg_graph_free(g);
}

/* ---- constants -------------------------------------------------------------------------------- */

/* loss = sum((x + c) * (w + one)), c a named constant (3), one the scalar 1.5 reshaped to (1), w a
 * variable (3) of zeros: loss = 1.5 sum(x + c), d w[j] = sum over the batch of x[:, j] + c[j]. */
static void check_constants(cg_flavour fl)
{
    static const float c[3] = {0.5f, -2.0f, 4.25f};
    cg_graph *g = cg_graph_new(fl == CG_HOST ? "consts_host" : "consts");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    cg_t w = cg_variable(g, "w", CG_SHAPE(3), cg_zeros());
    cg_t k = cg_constant_named(g, "offsets", CG_SHAPE(3), c);
    cg_t one = cg_reshape(cg_scalar(g, 1.5f), CG_SHAPE(1));
    cg_gradients(g, cg_sum(cg_mul(cg_add(x, k), cg_add(w, one))), w);
    hx_module mod;
    cr_assert(hx_build_graph(&mod, g, 1, fl, NULL) == 0, "%s", mod.err);
    char path[512], file[160];
    snprintf(file, sizeof file, "%s.c", mod.name);
    char *src = hx_read_file(in_dir(path, mod.dir, file), NULL);
    cr_assert(src, "cannot read %s", path);
    cr_expect(strstr(src, "static const float offsets[3] = {\n    0.5f, -2.0f, 4.25f,\n};") != NULL,
              "the constant's array is not in the emitted code:\n%.3000s", src);
    free(src);
    const float xs[6] = {1, 2, 3, -4, 0.5f, 7};
    float loss = mod.gradients(mod.state, 2, (const float *[]){xs});
    double want = 0;
    for (int i = 0; i < 6; i++)
        want += 1.5 * (xs[i] + c[i % 3]);
    cr_expect(fabs(loss - want) < 1e-4, "loss %g, expected %g", (double)loss, want);
    long wo = hx_param(&mod, "w", NULL);
    for (int j = 0; j < 3; j++)
        cr_expect(fabsf(mod.grads[wo + j] - (xs[j] + xs[3 + j] + 2 * c[j])) < 1e-5f, "d w[%d] = %g", j,
                  (double)mod.grads[wo + j]);
    hx_close(&mod);
    cg_graph_free(g);
}

Test(constants, emitted_and_computed_portable)
{
    check_constants(CG_PORTABLE);
}
Test(constants, emitted_and_computed_host)
{
    check_constants(CG_HOST);
}

/* ---- forward against torch / numpy ---------------------------------------------------------- */

#define FEATS 4
#define ROWS 6

static const float fixed_mean[FEATS] = {10.0f, -0.5f, 0.0f, 3.0f};
static const float fixed_var[FEATS] = {25.0f, 0.01f, 0.0f, 2.0f}; /* 0: Keras divides by epsilon 1e-7 */

/* Normalization (fixed statistics, or computed: set in the parameter block), Rescaling(2, 0.5), then a
 * Dense(FEATS) set to the identity (a model needs a parameter to compile). */
static void run_forward(bool fixed, cg_flavour fl, hx_module *mod, float *x, float *out)
{
    cg_model *m = cg_sequential(fixed ? "norm_fixed" : "norm_adapted", CG_SHAPE(FEATS));
    cg_model_add(m, fixed ? cg_normalization(.mean = fixed_mean, .variance = fixed_var) : cg_normalization());
    cg_model_add(m, cg_rescaling(2.0f, 0.5f));
    cg_model_add(m, cg_dense(FEATS));
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .loss = CG_MSE, .batch_size = ROWS);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    cr_assert(hx_build_model(mod, m, fl, NULL) == 0, "%s", mod->err);
    long mo = hx_param(mod, "normalization_1/mean", NULL), vo = hx_param(mod, "normalization_1/variance", NULL);
    cr_assert(fixed ? mo < 0 && vo < 0 : mo >= 0 && vo >= 0, "statistics at %ld and %ld", mo, vo);
    cr_expect_eq(mod->trainable_floats, FEATS * FEATS + FEATS, "the statistics are trainable (%ld floats)",
                 mod->trainable_floats);
    long ko = hx_param(mod, "dense_1/kernel", NULL), bo = hx_param(mod, "dense_1/bias", NULL);
    for (int i = 0; i < FEATS; i++) {
        for (int j = 0; j < FEATS; j++)
            mod->params[ko + i * FEATS + j] = i == j;
        mod->params[bo + i] = 0.0f;
    }
    if (!fixed) {
        memcpy(mod->params + mo, fixed_mean, sizeof fixed_mean);
        memcpy(mod->params + vo, fixed_var, sizeof fixed_var);
    }
    uint64_t s = fd_seed(fixed ? "fixed" : "adapted");
    fd_fill(&s, x, ROWS * FEATS, -5.0f, 15.0f);
    for (int r = 0; r < ROWS; r++)
        x[r * FEATS + 2] *= 1e-6f; /* around the zero-variance feature's mean */
    mod->predict(mod->state, ROWS, x, out);
    cg_model_free(m);
}

/* Writes what norm_ref.py reads into dir. */
static void write_ref_inputs(const char *dir, const float *x)
{
    char path[512];
    float st[2 * FEATS + 2];
    memcpy(st, fixed_mean, sizeof fixed_mean);
    memcpy(st + FEATS, fixed_var, sizeof fixed_var);
    st[2 * FEATS] = 2.0f, st[2 * FEATS + 1] = 0.5f;
    FILE *f = fopen(in_dir(path, dir, "x.bin"), "wb");
    cr_assert(f && fwrite(x, sizeof(float), ROWS * FEATS, f) == ROWS * FEATS && fclose(f) == 0);
    f = fopen(in_dir(path, dir, "stats.bin"), "wb");
    cr_assert(f && fwrite(st, sizeof st, 1, f) == 1 && fclose(f) == 0);
    f = fopen(in_dir(path, dir, "shape.txt"), "w");
    cr_assert(f && fprintf(f, "%d %d\n", ROWS, FEATS) > 0 && fclose(f) == 0);
}

Test(preprocess, forward_matches_reference)
{
    hx_module mod[4];
    float x[4][ROWS * FEATS], out[4][ROWS * FEATS], ref[ROWS * FEATS];
    const char *dirs[4];
    for (int k = 0; k < 4; k++) {
        run_forward(k & 1, k & 2 ? CG_HOST : CG_PORTABLE, &mod[k], x[k], out[k]);
        write_ref_inputs(mod[k].dir, x[k]);
        dirs[k] = mod[k].dir;
    }
    char log[4096];
    int status = hx_run_python(OPS_SOURCE_DIR "/norm_ref.py", dirs, 4, log, sizeof log);
    if (status == 77)
        cr_skip_test("neither torch nor numpy is installed");
    cr_assert(status == 0, "norm_ref.py failed:\n%s", log);
    for (int k = 0; k < 4; k++) {
        char path[512];
        FILE *f = fopen(in_dir(path, mod[k].dir, "ref.bin"), "rb");
        cr_assert(f && fread(ref, sizeof ref, 1, f) == 1, "cannot read %s", path);
        fclose(f);
        for (int i = 0; i < ROWS * FEATS; i++)
            cr_expect(fabs((double)out[k][i] - ref[i]) <= 1e-5 * fmax(1.0, fabs((double)ref[i])),
                      "%s statistics, %s: [%d] %.9g, reference %.9g", k & 1 ? "fixed" : "computed",
                      k & 2 ? "host" : "portable", i, (double)out[k][i], (double)ref[i]);
        hx_close(&mod[k]);
    }
}

/* ---- gradients: finite differences ----------------------------------------------------------- */

static void check_gradients(cg_flavour fl)
{
    static const float mean[5] = {0.1f, -0.2f, 0.0f, 0.3f, 0.05f}, var[5] = {0.5f, 2.0f, 1.0f, 0.25f, 4.0f};
    const char *what = fl == CG_HOST ? "normalization mid-graph (host)" : "normalization mid-graph (portable)";
    cg_model *m = cg_sequential(fl == CG_HOST ? "gc_norm_host" : "gc_norm", CG_SHAPE(4));
    cg_model_add(m, cg_dense(5, .activation = CG_TANH));
    cg_model_add(m, cg_normalization(.mean = mean, .variance = var));
    cg_model_add(m, cg_dense(3, .activation = CG_TANH));
    cg_model_add(m, cg_rescaling(1.7f, -0.3f));
    cg_model_add(m, cg_dense(2));
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .loss = CG_MSE, .batch_size = 6);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s: %s", what, cg_error(cg_model_graph(m)));
    hx_module mod;
    cr_assert(hx_build_model(&mod, m, fl, NULL) == 0, "%s: %s", what, mod.err);
    uint64_t s = fd_seed(what);
    int n = 5;
    float x[5 * 4], y[5 * 2];
    fd_fill(&s, mod.params, mod.param_floats, -1.0f, 1.0f);
    fd_fill(&s, x, n * 4, -1.0f, 1.0f);
    fd_fill(&s, y, n * 2, -1.0f, 1.0f);
    fd_check_model(what, &mod, n, x, y, 1e-2, 5e-3, true);
    hx_close(&mod);
    cg_model_free(m);
}

Test(preprocess, gradients_portable)
{
    check_gradients(CG_PORTABLE);
}
Test(preprocess, gradients_host)
{
    check_gradients(CG_HOST);
}
