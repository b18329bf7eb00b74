/* test_reference.c: losses, gradients and one Adam step of small compiled
 * models against PyTorch (tests/ops/torch_ref.py), llm.c style.
 *
 * For each model: emit and compile it (tests/support/harness.c), take the
 * weights cgrad's init gives for seed 1 and a random batch, run one
 * NAME_train_step (Adam, lr 0.01, eps 1e-7): that gives the loss (before the
 * update), the gradients (left in the gradient block) and the parameters
 * after the step. torch_ref.py rebuilds the model in torch from the same
 * parameter block (names and offsets from NAME_params_info) and computes the
 * same three. Tolerance: |c - torch| <= 1e-5 + 1e-4 |torch| per entry (float32
 * both sides; only summation order differs). Failures print the largest
 * difference and where: "maxdiff 3e-3 at d_dense_1/kernel[17]".
 *
 * Skipped when /usr/bin/python3 cannot import torch (torch_ref.py exits 77).
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#ifndef OPS_SOURCE_DIR
#define OPS_SOURCE_DIR "."
#endif

#define N 6
#define LR 0.01f

typedef struct layer_spec {
    int units;
    cg_activation act;
} layer_spec;

typedef struct ref_model {
    const char *name;
    int in, nlayers;
    layer_spec layers[3];
    cg_loss loss;
    bool from_logits;
    const char *torch_loss;   /* torch_ref.py's name of the loss */
} ref_model;

static const char *act_name(cg_activation a) {
    static const char *names[] = {"linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu"};
    return names[a];
}

static void write_floats(const char *dir, const char *file, const float *v, long count) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(v, sizeof(float), (size_t)count, f) == (size_t)count && fclose(f) == 0, "cannot write %s", path);
}

/* Names the parameter holding flat index i ("dense_1/kernel[17]"). */
static void where(const hx_module *mod, long i, char *buf, size_t size) {
    for (int p = 0; p < mod->nparams; p++)
        if (i >= mod->param_offset(p) && i < mod->param_offset(p) + mod->param_count(p)) {
            snprintf(buf, size, "%s[%ld]", mod->param_name(p), i - mod->param_offset(p));
            return;
        }
    snprintf(buf, size, "[%ld]", i);
}

/* Compares got[count] with want[count]; reports the worst entry. */
static void compare(const hx_module *mod, const char *model, const char *what, const float *got, const float *want,
                    long count) {
    double worst = -1, wg = 0, ww = 0;
    long wi = 0;
    for (long i = 0; i < count; i++) {
        double d = fabs((double)got[i] - want[i]), allowed = 1e-5 + 1e-4 * fabs((double)want[i]);
        double r = d / allowed;
        if (!(r <= worst))
            worst = isnan(r) ? INFINITY : r, wg = got[i], ww = want[i], wi = i;
    }
    char at[160];
    where(mod, wi, at, sizeof at);
    cr_expect(worst <= 1.0, "%s: %s: maxdiff %.3g at %s%s: cgrad %.8g vs torch %.8g (allowed 1e-5 + 1e-4 |torch|)", model,
              what, fabs(wg - ww), strcmp(what, "gradients") ? "" : "d_", at, wg, ww);
}

/* What cgrad computed for one model, kept until torch has run. */
typedef struct ref_run {
    hx_module mod;
    cg_model *m;
    float loss;
} ref_run;

/* Builds model r, runs one training step, writes the files torch_ref.py reads into run->mod.dir. */
static void prepare(const ref_model *r, ref_run *run) {
    cg_model *m = cg_sequential_at(CG_HERE, r->name, CG_SHAPE(r->in));
    for (int i = 0; i < r->nlayers; i++)
        cg_model_add(m, cg_dense(r->layers[i].units, .activation = r->layers[i].act));
    cg_compile(m, .optimizer = cg_adam(LR), .loss = r->loss, .from_logits = r->from_logits, .batch_size = 8);
    run->m = m;
    int rc = hx_build_model(&run->mod, m, CG_PORTABLE, NULL);
    cr_assert(rc == 0, "%s: %s", r->name, run->mod.err);
    cr_assert(run->mod.train_step && run->mod.eval_step, "%s: no train_step", r->name);

    /* data: x ~ U(-1, 1); labels to fit the loss */
    int out = r->layers[r->nlayers - 1].units;
    uint64_t s = 12345;
    float x[N * 16], y[N * 16];
    for (int i = 0; i < N * r->in; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
    }
    int ylen = r->loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY ? N : N * out;
    for (int i = 0; i < ylen; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        float u = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f;
        switch (r->loss) {
        case CG_SPARSE_CATEGORICAL_CROSSENTROPY: y[i] = (float)((s >> 20) % (uint64_t)out); break;
        case CG_CATEGORICAL_CROSSENTROPY: y[i] = 0.0f; break;   /* one-hot rows below */
        case CG_BINARY_CROSSENTROPY: y[i] = u < 0.5f ? 0.0f : 1.0f; break;
        default: y[i] = 2.0f * u - 1.0f;
        }
    }
    if (r->loss == CG_CATEGORICAL_CROSSENTROPY)
        for (int i = 0; i < N; i++)
            y[i * out + (2 * i + 1) % out] = 1.0f;

    /* the model description for torch_ref.py */
    char path[512];
    cr_assert(snprintf(path, sizeof path, "%s/spec.txt", run->mod.dir) < (int)sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "n %d\nin %d\nout %d\nlr %.9g\nloss %s\n", N, r->in, out, (double)LR, r->torch_loss);
    int prev = r->in;
    char name[64];
    for (int i = 0; i < r->nlayers; i++) {
        fprintf(f, "dense %d %s\n", r->layers[i].units, act_name(r->layers[i].act));
        long count;
        snprintf(name, sizeof name, "dense_%d/kernel", i + 1);
        long off = hx_param(&run->mod, name, &count);
        cr_assert(off >= 0 && count == (long)prev * r->layers[i].units, "%s: no parameter %s", r->name, name);
        fprintf(f, "param %s %ld %ld %d %d\n", name, off, count, prev, r->layers[i].units);
        snprintf(name, sizeof name, "dense_%d/bias", i + 1);
        off = hx_param(&run->mod, name, &count);
        cr_assert(off >= 0 && count == r->layers[i].units, "%s: no parameter %s", r->name, name);
        fprintf(f, "param %s %ld %ld %d\n", name, off, count, r->layers[i].units);
        prev = r->layers[i].units;
    }
    cr_assert(fclose(f) == 0);
    write_floats(run->mod.dir, "params.bin", run->mod.params, run->mod.param_floats);
    write_floats(run->mod.dir, "x.bin", x, N * r->in);
    write_floats(run->mod.dir, "y.bin", y, ylen);

    /* cgrad: the loss alone, then one training step */
    float eval_loss, metric, loss;
    *run->mod.lr = LR;
    run->mod.eval_step(run->mod.state, N, x, y, &eval_loss, &metric);
    run->mod.train_step(run->mod.state, N, x, y, &loss, &metric);
    cr_expect(eval_loss == loss, "%s: eval_step loss %.9g but train_step %.9g", r->name, (double)eval_loss, (double)loss);
    run->loss = loss;
}

/* Compares run with torch's DIR/out.bin. */
static void verify(const ref_model *r, ref_run *run) {
    char path[512];
    float loss = run->loss;
    cr_assert(snprintf(path, sizeof path, "%s/out.bin", run->mod.dir) < (int)sizeof path);
    size_t bytes;
    float *ref = (float *)hx_read_file(path, &bytes);
    long want_floats = 1 + 2 * run->mod.param_floats;
    cr_assert(ref && bytes == sizeof(float) * (size_t)want_floats, "%s: out.bin has %zu bytes, expected %ld", r->name,
              bytes, want_floats * 4);

    cr_expect(fabsf(loss - ref[0]) <= 1e-4f * fabsf(ref[0]), "%s: loss: cgrad %.8g vs torch %.8g", r->name, (double)loss,
              (double)ref[0]);
    compare(&run->mod, r->name, "gradients", run->mod.grads, ref + 1, run->mod.trainable_floats);
    compare(&run->mod, r->name, "parameters after one Adam step", run->mod.params, ref + 1 + run->mod.param_floats, run->mod.param_floats);
    free(ref);
    hx_close(&run->mod);
    cg_model_free(run->m);
}

static const ref_model models[] = {
    {"ref_mlp", 5, 2, {{8, CG_RELU}, {3, CG_LINEAR}}, CG_SPARSE_CATEGORICAL_CROSSENTROPY, true, "sparse_ce_logits"},
    {"ref_bce_logits", 4, 2, {{6, CG_TANH}, {1, CG_LINEAR}}, CG_BINARY_CROSSENTROPY, true, "bce_logits"},
    {"ref_bce_probs", 4, 2, {{6, CG_RELU}, {2, CG_SIGMOID}}, CG_BINARY_CROSSENTROPY, false, "bce_probs"},
    {"ref_mse_tanh", 3, 2, {{4, CG_TANH}, {2, CG_LINEAR}}, CG_MSE, false, "mse"},
    {"ref_cce_probs", 4, 2, {{5, CG_RELU}, {3, CG_SOFTMAX}}, CG_CATEGORICAL_CROSSENTROPY, false, "cce_probs"},
};

#define NMODELS (int)(sizeof models / sizeof models[0])

/* One test for all models: importing torch takes seconds, so torch_ref.py runs once over every folder. */
Test(reference, torch) {
    static ref_run runs[NMODELS];
    char cmd[4096];
    int len = snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/torch_ref.py'", OPS_SOURCE_DIR);
    for (int i = 0; i < NMODELS; i++) {
        prepare(&models[i], &runs[i]);
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, " '%s'", runs[i].mod.dir);
    }
    snprintf(cmd + len, sizeof cmd - (size_t)len, " 2>&1");
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char log[4096] = "";
    size_t got = fread(log, 1, sizeof log - 1, p);
    log[got] = '\0';
    int status = pclose(p);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        cr_skip_test("torch not installed");
    cr_assert(status == 0, "torch_ref.py failed:\n%s", log);
    for (int i = 0; i < NMODELS; i++)
        verify(&models[i], &runs[i]);
}
