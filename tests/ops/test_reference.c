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
 * Cross-entropies from probabilities (a sigmoid or softmax output) are
 * compared with torch's losses on that activation's logits
 * (binary_cross_entropy_with_logits, cross_entropy), as cgrad and tf.keras
 * compute them; two models take inputs of a few hundred, where the logits
 * are in the hundreds and clipping the probabilities would lose the gradient.
 *
 * Convolutional models (cnn_models[]) go the same way with a richer
 * spec.txt ("arch cnn": one line per layer, every parameter with its Keras
 * shape): Conv2D (same/valid, strides, dilation, non-square kernels),
 * DepthwiseConv2D, Max/AveragePooling2D (valid and same), GlobalAverage-
 * Pooling2D, Flatten (NHWC order), Dense and BatchNormalization in training
 * mode; for those, "parameters after the step" includes the updated moving
 * averages (torch_ref.py computes the moving variance from the biased batch
 * variance, as Keras, not torch's running_var). Their moving averages and
 * gammas/betas start away from their initial values. Conv1D models (valid,
 * same and causal padding, strides, dilation) run against torch.nn.Conv1d,
 * whose weight (filters, channels, kernel_size) is the Keras kernel
 * (kernel_size, channels, filters) permuted, in both flavours, and compare
 * NAME_predict's output too.
 *
 * Recurrent models (rnn_models[], "arch rnn") run in both flavours against the
 * kernels of torch's nn.LSTM, nn.GRU and nn.RNN with the Keras weights mapped to
 * torch's layout (gates reordered for GRU), and F.embedding; they also compare
 * NAME_predict's output with torch's forward output, at the same tolerance.
 * Two of them (functional models) start their first layer from initial
 * states given as inputs: nn.LSTM's (h0, c0) and nn.GRU's h0.
 *
 * Skipped when /usr/bin/python3 cannot import torch (torch_ref.py exits 77).
 * reference/dropout needs no torch: Dropout is the identity in eval_step and
 * predict, and train_step drops about `rate` of its inputs.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "../../compiler/cgrad_int.h"

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
    const char *torch_loss; /* torch_ref.py's name of the loss */
    float x_scale;          /* inputs drawn from U(-x_scale, x_scale); 0 means 1 */
} ref_model;

/* The name torch_ref.py knows an activation by: its row's in compiler/activations.def. */
static const char *act_name(cg_activation a)
{
    return emit_act_name(a);
}

static void write_floats(const char *dir, const char *file, const float *v, long count)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(v, sizeof(float), (size_t)count, f) == (size_t)count && fclose(f) == 0, "cannot write %s",
              path);
}

/* Names the parameter holding flat index i ("dense_1/kernel[17]"). */
static void where(const hx_module *mod, long i, char *buf, size_t size)
{
    for (int p = 0; p < mod->nparams; p++)
        if (i >= mod->param_offset(p) && i < mod->param_offset(p) + mod->param_count(p)) {
            snprintf(buf, size, "%s[%ld]", mod->param_name(p), i - mod->param_offset(p));
            return;
        }
    snprintf(buf, size, "[%ld]", i);
}

/* Compares got[count] with want[count]; reports the worst entry. */
static void compare(const hx_module *mod, const char *model, const char *what, const float *got, const float *want,
                    long count)
{
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
    cr_expect(worst <= 1.0, "%s: %s: maxdiff %.3g at %s%s: cgrad %.8g vs torch %.8g (allowed 1e-5 + 1e-4 |torch|)",
              model, what, fabs(wg - ww), strcmp(what, "gradients") ? "" : "d_", at, wg, ww);
}

/* What cgrad computed for one model, kept until torch has run. */
typedef struct ref_run {
    hx_module mod;
    cg_model *m;
    float loss;
    float *pred; /* recurrent models: NAME_predict before the step, compared with torch's pred.bin */
    long pred_count;
} ref_run;

/* Builds model r, runs one training step, writes the files torch_ref.py reads into run->mod.dir. */
static void prepare(const ref_model *r, ref_run *run)
{
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
        x[i] = ((float)((s >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f) * (r->x_scale > 0 ? r->x_scale : 1.0f);
    }
    int ylen = r->loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY ? N : N * out;
    for (int i = 0; i < ylen; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        float u = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f;
        switch (r->loss) {
        case CG_SPARSE_CATEGORICAL_CROSSENTROPY: y[i] = (float)((s >> 20) % (uint64_t)out); break;
        case CG_CATEGORICAL_CROSSENTROPY: y[i] = 0.0f; break; /* one-hot rows below */
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
    cr_expect(eval_loss == loss, "%s: eval_step loss %.9g but train_step %.9g", r->name, (double)eval_loss,
              (double)loss);
    run->loss = loss;
}

/* Compares run with torch's DIR/out.bin. */
static void verify(const char *name, ref_run *run)
{
    char path[512];
    float loss = run->loss;
    cr_assert(snprintf(path, sizeof path, "%s/out.bin", run->mod.dir) < (int)sizeof path);
    size_t bytes;
    float *ref = (float *)hx_read_file(path, &bytes);
    long want_floats = 1 + 2 * run->mod.param_floats;
    cr_assert(ref && bytes == sizeof(float) * (size_t)want_floats, "%s: out.bin has %zu bytes, expected %ld", name,
              bytes, want_floats * 4);

    cr_expect(fabsf(loss - ref[0]) <= 1e-4f * fabsf(ref[0]), "%s: loss: cgrad %.8g vs torch %.8g", name, (double)loss,
              (double)ref[0]);
    compare(&run->mod, name, "gradients", run->mod.grads, ref + 1, run->mod.trainable_floats);
    compare(&run->mod, name, "parameters after one Adam step", run->mod.params, ref + 1 + run->mod.param_floats,
            run->mod.param_floats);
    free(ref);
    if (run->pred) { /* the forward output itself */
        cr_assert(snprintf(path, sizeof path, "%s/pred.bin", run->mod.dir) < (int)sizeof path);
        float *want = (float *)hx_read_file(path, &bytes);
        cr_assert(want && bytes == sizeof(float) * (size_t)run->pred_count, "%s: pred.bin has %zu bytes, expected %ld",
                  name, bytes, run->pred_count * 4);
        double worst = -1;
        long wi = 0;
        for (long i = 0; i < run->pred_count; i++) {
            double r = fabs((double)run->pred[i] - want[i]) / (1e-5 + 1e-4 * fabs((double)want[i]));
            if (!(r <= worst))
                worst = isnan(r) ? INFINITY : r, wi = i;
        }
        cr_expect(worst <= 1.0, "%s: predict: maxdiff %.3g at output[%ld]: cgrad %.8g vs torch %.8g", name,
                  fabs((double)run->pred[wi] - want[wi]), wi, (double)run->pred[wi], (double)want[wi]);
        free(want);
        free(run->pred);
    }
    hx_close(&run->mod);
    cg_model_free(run->m);
}

/* ---- convolutional models ---------------------------------------------------------- */

/* One layer of a convolutional reference model: both the cgrad layer and its spec.txt line come from it. */
typedef enum lkind {
    L_CONV,
    L_DEPTHWISE,
    L_MAXPOOL,
    L_AVGPOOL,
    L_GAP,
    L_FLATTEN,
    L_DENSE,
    L_BN,
    L_RELU,
    L_CONV1D
} lkind;

typedef struct lspec {
    lkind kind;
    int units;       /* filters, units */
    int k, kw;       /* kernel or pool size; kernel width (0: k) */
    int stride, dil; /* 0: 1 (pools: 0 = k) */
    bool same, bias;
    bool causal; /* Conv1D: causal padding */
    cg_activation act;
    float momentum; /* BatchNormalization */
} lspec;

typedef struct cnn_ref {
    const char *name;
    int in[3]; /* H, W, C; or T, C, 0 for a sequence */
    int nlayers;
    lspec layers[10];
    int classes;
    bool host; /* the host flavour, else portable */
} cnn_ref;

/* Applies layer l to m and writes its spec line; names come from cgrad's defaults, counted per kind here. */
static void add_cnn_layer(cg_model *m, const lspec *l, int *count, FILE *f)
{
    static const char *prefix[] = {"conv2d",
                                   "depthwise_conv2d",
                                   "max_pooling2d",
                                   "average_pooling2d",
                                   "global_average_pooling2d",
                                   "flatten",
                                   "dense",
                                   "batch_normalization",
                                   "activation",
                                   "conv1d"};
    char name[64];
    snprintf(name, sizeof name, "%s_%d", prefix[l->kind], ++count[l->kind]);
    int kw = l->kw ? l->kw : l->k, stride = l->stride ? l->stride : 1, dil = l->dil ? l->dil : 1;
    const char *pad = l->same ? "same" : "valid";
    switch (l->kind) {
    case L_CONV:
        cg_model_add(m, cg_conv2d(l->units, l->k, .kernel_w = kw, .strides = stride, .dilation = dil,
                                  .padding = l->same ? CG_SAME : CG_VALID, .use_bias = l->bias, .activation = l->act));
        fprintf(f, "layer conv2d %s %d %d %d %d %d %s %d %s\n", name, l->units, l->k, kw, stride, dil, pad, l->bias,
                act_name(l->act));
        break;
    case L_DEPTHWISE:
        cg_model_add(m, cg_depthwise_conv2d(l->k, .kernel_w = kw, .strides = stride, .dilation = dil,
                                            .padding = l->same ? CG_SAME : CG_VALID, .use_bias = l->bias,
                                            .activation = l->act));
        fprintf(f, "layer depthwise %s %d %d %d %d %s %d %s\n", name, l->k, kw, stride, dil, pad, l->bias,
                act_name(l->act));
        break;
    case L_MAXPOOL:
    case L_AVGPOOL:
        stride = l->stride ? l->stride : l->k;
        if (l->kind == L_MAXPOOL)
            cg_model_add(m, cg_max_pooling2d(l->k, .strides = stride, .padding = l->same ? CG_SAME : CG_VALID));
        else
            cg_model_add(m, cg_average_pooling2d(l->k, .strides = stride, .padding = l->same ? CG_SAME : CG_VALID));
        fprintf(f, "layer %s %d %d %s\n", l->kind == L_MAXPOOL ? "maxpool" : "avgpool", l->k, stride, pad);
        break;
    case L_GAP:
        cg_model_add(m, cg_global_average_pooling2d());
        fprintf(f, "layer gap\n");
        break;
    case L_FLATTEN:
        cg_model_add(m, cg_flatten());
        fprintf(f, "layer flatten\n");
        break;
    case L_DENSE:
        cg_model_add(m, cg_dense(l->units, .use_bias = l->bias, .activation = l->act));
        fprintf(f, "layer dense %s %d %d %s\n", name, l->units, l->bias, act_name(l->act));
        break;
    case L_BN:
        cg_model_add(m, cg_batch_normalization(.momentum = l->momentum));
        fprintf(f, "layer batchnorm %s %.9g %.9g\n", name, (double)l->momentum, 1e-3);
        break;
    case L_RELU:
        cg_model_add(m, cg_activation_layer(CG_RELU));
        fprintf(f, "layer activation relu\n");
        break;
    case L_CONV1D:
        cg_model_add(m, cg_conv1d(l->units, l->k, .strides = stride, .dilation = dil, .use_bias = l->bias,
                                  .padding = l->causal ? CG_CAUSAL
                                             : l->same ? CG_SAME
                                                       : CG_VALID,
                                  .activation = l->act));
        fprintf(f, "layer conv1d %s %d %d %d %d %s %d %s\n", name, l->units, l->k, stride, dil,
                l->causal ? "causal" : pad, l->bias, act_name(l->act));
        break;
    }
}

/* Builds CNN model r (sparse cross-entropy from logits, Adam), runs one training step, writes spec.txt,
 * params.bin, x.bin, y.bin into run->mod.dir. The moving averages start away from 0 and 1. */
static void prepare_cnn(const cnn_ref *r, ref_run *run)
{
    char path[512];
    char *spec_text = NULL; /* spec.txt is written before the module's folder exists: into memory first */
    size_t spec_len = 0;
    FILE *f = open_memstream(&spec_text, &spec_len);
    cr_assert(f);
    bool seq = r->in[2] == 0; /* (T, C) */
    cg_model *m = cg_sequential_at(CG_HERE, r->name,
                                   seq ? CG_SHAPE(r->in[0], r->in[1]) : CG_SHAPE(r->in[0], r->in[1], r->in[2]));
    int count[16] = {0};
    fprintf(f, "arch cnn\nn %d\nin %d %d", N, r->in[0], r->in[1]);
    if (!seq)
        fprintf(f, " %d", r->in[2]);
    fprintf(f, "\nout %d\nlr %.9g\nloss sparse_ce_logits\n", r->classes, (double)LR);
    for (int i = 0; i < r->nlayers; i++)
        add_cnn_layer(m, &r->layers[i], count, f);
    cg_compile(m, .optimizer = cg_adam(LR), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 8);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s: %s", r->name, cg_error(cg_model_graph(m)));
    run->m = m;
    int rc = hx_build_model(&run->mod, m, r->host ? CG_HOST : CG_PORTABLE, NULL);
    cr_assert(rc == 0, "%s: %s", r->name, run->mod.err);
    hx_module *mod = &run->mod;
    /* spec.txt: every parameter with its Keras shape; BatchNormalization vectors set away from their defaults */
    uint64_t s = 777;
    for (int i = 0; i < mod->nparams; i++) {
        const char *pn = mod->param_name(i);
        long off = mod->param_offset(i), cnt = mod->param_count(i);
        int dims[4] = {(int)cnt}, rank = 1;
        /* a kernel's Keras shape from the graph (biases and normalization vectors are rank 1) */
        if (strstr(pn, "/kernel") || strstr(pn, "/depthwise_kernel")) {
            cg_graph *g = cg_model_graph(m);
            for (int v = 0; v < g->nvars; v++)
                if (!strcmp(g->vars[v].name, pn)) {
                    const shape *sh = &g->nodes[g->vars[v].node].sh;
                    rank = sh->rank;
                    for (int d = 0; d < rank; d++)
                        dims[d] = sh->d[d];
                }
        }
        fprintf(f, "param %s %ld %ld", pn, off, cnt);
        for (int d = 0; d < rank; d++)
            fprintf(f, " %d", dims[d]);
        fprintf(f, "\n");
        /* moving averages away from their initial 0 and 1; gammas and betas away from 1 and 0 */
        float lo = 0, hi = 0;
        if (strstr(pn, "moving_mean") || strstr(pn, "/beta"))
            lo = -0.3f, hi = 0.3f;
        else if (strstr(pn, "moving_variance") || strstr(pn, "/gamma"))
            lo = 0.7f, hi = 1.3f;
        for (long j = 0; hi > lo && j < cnt; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            mod->params[off + j] = lo + (hi - lo) * (float)((s >> 40) & 0xFFFFFF) / 16777216.0f;
        }
    }
    cr_assert(fclose(f) == 0);
    cr_assert(snprintf(path, sizeof path, "%s/spec.txt", mod->dir) < (int)sizeof path);
    FILE *o = fopen(path, "w");
    cr_assert(o && fwrite(spec_text, 1, spec_len, o) == spec_len && fclose(o) == 0, "cannot write %s", path);
    free(spec_text);

    long xn = (long)N * r->in[0] * r->in[1] * (seq ? 1 : r->in[2]);
    float *x = malloc(sizeof(float) * (size_t)xn), y[N];
    for (long i = 0; i < xn; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
    }
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        y[i] = (float)((s >> 20) % (uint64_t)r->classes);
    }
    write_floats(mod->dir, "params.bin", mod->params, mod->param_floats);
    write_floats(mod->dir, "x.bin", x, xn);
    write_floats(mod->dir, "y.bin", y, N);
    bool modes_alike = true; /* no BatchNormalization: torch's output (training mode) is predict's */
    for (int i = 0; i < r->nlayers; i++)
        modes_alike = modes_alike && r->layers[i].kind != L_BN;
    if (modes_alike) { /* the output before the step */
        run->pred_count = (long)N * r->classes;
        run->pred = malloc(sizeof(float) * (size_t)run->pred_count);
        cr_assert(run->pred);
        mod->predict(mod->state, N, x, run->pred);
    }
    float loss, metric;
    *mod->lr = LR;
    mod->train_step(mod->state, N, x, y, &loss, &metric);
    run->loss = loss;
    free(x);
}

/* clang-format off */
#define CONV(f_, k_, ...) {.kind = L_CONV, .units = (f_), .k = (k_), __VA_ARGS__}
#define CONV1D(f_, k_, ...) {.kind = L_CONV1D, .units = (f_), .k = (k_), __VA_ARGS__}
#define CONV1D_STACK \
    {CONV1D(4, 3, .same = true, .bias = true, .act = CG_RELU), CONV1D(5, 3, .causal = true, .dil = 2, .bias = true, \
     .act = CG_TANH), CONV1D(3, 2, .stride = 2), {.kind = L_FLATTEN}, {.kind = L_DENSE, .units = 3, .bias = true}}
static const cnn_ref cnn_models[] = {
    /* Conv2D same + relu, MaxPool, Conv2D valid, AvgPool, Flatten (NHWC order), Dense */
    {"ref_cnn", {10, 10, 2}, 6,
     {CONV(4, 3, .same = true, .bias = true, .act = CG_RELU), {.kind = L_MAXPOOL, .k = 2},
      CONV(3, 2, .bias = true, .act = CG_RELU), {.kind = L_AVGPOOL, .k = 2}, {.kind = L_FLATTEN},
      {.kind = L_DENSE, .units = 3, .bias = true}},
     3, false},
    /* strides, dilation, a non-square kernel, depthwise, "same" pooling (uneven padding), global average pooling */
    {"ref_cnn_windows", {9, 8, 3}, 6,
     {CONV(4, 3, .kw = 2, .stride = 2, .same = true, .bias = true, .act = CG_TANH),
      {.kind = L_DEPTHWISE, .k = 2, .same = true, .bias = true, .act = CG_RELU},
      {.kind = L_MAXPOOL, .k = 2, .stride = 1, .same = true}, {.kind = L_AVGPOOL, .k = 3, .stride = 2, .same = true},
      CONV(5, 2, .dil = 2, .same = true, .act = CG_LINEAR), {.kind = L_GAP}},
     5, false},
    /* BatchNormalization in training mode, on an image and on a vector. (Dense(8) before the second one has an
     * activation: without one, the second normalization makes the gradient reaching the first one's beta
     * sum to zero over the batch wherever the relu passes everything, and Adam's first step of a gradient
     * that is zero up to rounding, lr g / (|g| + eps), is noise.) */
    {"ref_cnn_bn", {6, 6, 2}, 8,
     {CONV(4, 3, .bias = false), {.kind = L_BN, .momentum = 0.9f}, {.kind = L_RELU}, {.kind = L_MAXPOOL, .k = 2},
      {.kind = L_FLATTEN}, {.kind = L_DENSE, .units = 8, .act = CG_TANH}, {.kind = L_BN, .momentum = 0.99f},
      {.kind = L_DENSE, .units = 3, .bias = true}},
     3, false},
    /* Conv1D on (12 steps, 3 channels): same + relu, causal with dilation 2 + tanh, valid with stride 2 and no
     * bias; Flatten, Dense; in both flavours */
    {"ref_conv1d", {12, 3, 0}, 5, CONV1D_STACK, 3, false},
    {"ref_conv1d_host", {12, 3, 0}, 5, CONV1D_STACK, 3, true},
};
/* clang-format on */
#define NCNN (int)(sizeof cnn_models / sizeof cnn_models[0])

/* ---- recurrent models ------------------------------------------------------------------- */

/* One layer of a recurrent reference model. */
typedef enum rkind { R_LSTM, R_GRU, R_SIMPLE_RNN, R_EMBEDDING, R_DENSE } rkind;

typedef struct rspec {
    rkind kind;
    int units;         /* units; Embedding: the vocabulary */
    bool seq, bias;    /* return_sequences, use_bias */
    int dim;           /* Embedding: output_dim */
    cg_activation act; /* Dense */
} rspec;

typedef struct rnn_ref {
    const char *name;
    cg_flavour flavour;
    int steps, feats; /* feats 0: token ids */
    int nlayers;
    rspec layers[4];
    bool sparse; /* sparse cross-entropy from logits, else MSE */
    bool state;  /* a functional model whose first layer starts from inputs h0 (and c0), Keras' initial_state */
} rnn_ref;

/* Builds recurrent model r (Adam), writes spec.txt, params.bin, x.bin, y.bin, runs predict and one training
 * step. The biases are set to random values (GRU's two rows differ); the rest is cgrad's initialisation
 * (Glorot kernels, orthogonal recurrent kernels). */
static void prepare_rnn(const rnn_ref *r, ref_run *run)
{
    static const char *kinds[] = {"lstm", "gru", "simple_rnn", "embedding", "dense"};
    char *spec_text = NULL, path[512];
    size_t spec_len = 0;
    FILE *f = open_memstream(&spec_text, &spec_len);
    cr_assert(f);
    cg_model *m;
    cg_t t = {0}, st[2] = {{0}, {0}}; /* functional: the running tensor, the initial states */
    int nstates = r->state ? (r->layers[0].kind == R_LSTM ? 2 : 1) : 0, state_floats = nstates * r->layers[0].units;
    if (r->state) {
        m = cg_functional_at(CG_HERE, r->name);
        t = cg_input_at(CG_HERE, m, "seq", CG_SHAPE(r->steps, r->feats));
        for (int i = 0; i < nstates; i++)
            st[i] = cg_input_at(CG_HERE, m, i ? "c0" : "h0", CG_SHAPE(r->layers[0].units));
    } else {
        m = r->feats ? cg_sequential_at(CG_HERE, r->name, CG_SHAPE(r->steps, r->feats))
                     : cg_sequential_at(CG_HERE, r->name, CG_SHAPE(r->steps));
    }
    fprintf(f, "arch rnn\nn %d\nin %d %d\nlr %.9g\nloss %s\nstate %d\n", N, r->steps, r->feats, (double)LR,
            r->sparse ? "sparse_ce_logits" : "mse", nstates);
    int count[5] = {0};
    for (int i = 0; i < r->nlayers; i++) {
        const rspec *l = &r->layers[i];
        char name[64];
        snprintf(name, sizeof name, "%s_%d", kinds[l->kind], ++count[l->kind]);
        cg_layer layer;
        switch (l->kind) {
        case R_LSTM: layer = cg_lstm(l->units, .return_sequences = l->seq, .use_bias = l->bias); break;
        case R_GRU: layer = cg_gru(l->units, .return_sequences = l->seq, .use_bias = l->bias); break;
        case R_SIMPLE_RNN: layer = cg_simple_rnn(l->units, .return_sequences = l->seq, .use_bias = l->bias); break;
        case R_EMBEDDING: layer = cg_embedding(l->units, l->dim); break;
        default: layer = cg_dense(l->units, .use_bias = l->bias, .activation = l->act); break;
        }
        if (!r->state)
            cg_model_add(m, layer);
        else if (i == 0 && nstates == 2)
            t = cg_call_at(CG_HERE, cg_make_layer(m, layer), (const cg_t[]){t, st[0], st[1]}, 3);
        else if (i == 0)
            t = cg_call_at(CG_HERE, cg_make_layer(m, layer), (const cg_t[]){t, st[0]}, 2);
        else
            t = cg_call_at(CG_HERE, cg_make_layer(m, layer), &t, 1);
        if (l->kind == R_EMBEDDING)
            fprintf(f, "layer embedding %s %d %d\n", name, l->units, l->dim);
        else if (l->kind == R_DENSE)
            fprintf(f, "layer dense %s %d %d %s\n", name, l->units, l->bias, act_name(l->act));
        else
            fprintf(f, "layer %s %s %d %d %d\n", kinds[l->kind], name, l->units, l->seq, l->bias);
    }
    if (r->state)
        cg_set_outputs(m, t);
    cg_compile(m, .optimizer = cg_adam(LR), .loss = r->sparse ? CG_SPARSE_CATEGORICAL_CROSSENTROPY : CG_MSE,
               .from_logits = r->sparse, .batch_size = 8);
    cg_graph *g = cg_model_graph(m);
    cr_assert(!cg_failed(g), "%s: %s", r->name, cg_error(g));
    run->m = m;
    int rc = hx_build_model(&run->mod, m, r->flavour, NULL);
    cr_assert(rc == 0, "%s: %s", r->name, run->mod.err);
    hx_module *mod = &run->mod;
    uint64_t s = 4242;
    for (int v = 0; v < g->nvars; v++) {
        const shape *sh = &g->nodes[g->vars[v].node].sh;
        long off = hx_param(mod, g->vars[v].name, NULL);
        fprintf(f, "param %s %ld %zu", g->vars[v].name, off, g->vars[v].count);
        for (int d = 0; d < sh->rank; d++)
            fprintf(f, " %d", sh->d[d]);
        fprintf(f, "\n");
        for (long j = 0; strstr(g->vars[v].name, "/bias") && j < (long)g->vars[v].count; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            mod->params[off + j] = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f - 0.5f;
        }
    }
    cr_assert(fclose(f) == 0);
    cr_assert(snprintf(path, sizeof path, "%s/spec.txt", mod->dir) < (int)sizeof path);
    FILE *o = fopen(path, "w");
    cr_assert(o && fwrite(spec_text, 1, spec_len, o) == spec_len && fclose(o) == 0, "cannot write %s", path);
    free(spec_text);

    long xn = (long)N * (r->steps * (r->feats ? r->feats : 1) + state_floats); /* per sample: [seq | h0 (| c0)] */
    cg_shape os = cg_shape_of(r->state ? t : cg_model_output(m));
    long out = 1;
    for (int d = 1; d < os.rank; d++)
        out *= os.dims[d];
    long yn = r->sparse ? N : N * out;
    float *x = malloc(sizeof(float) * (size_t)xn), *y = malloc(sizeof(float) * (size_t)yn);
    for (long i = 0; i < xn; i++) { /* features in (-1, 1); token ids from -1 to V (both ends out of range) */
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = r->feats ? (float)((s >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f
                        : (float)((s >> 20) % (uint64_t)(r->layers[0].units + 2)) - 1.0f;
    }
    for (long i = 0; i < yn; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        y[i] = r->sparse ? (float)((s >> 20) % (uint64_t)out)
                         : (float)((s >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
    }
    write_floats(mod->dir, "params.bin", mod->params, mod->param_floats);
    write_floats(mod->dir, "x.bin", x, xn);
    write_floats(mod->dir, "y.bin", y, yn);
    run->pred_count = N * out;
    run->pred = malloc(sizeof(float) * (size_t)run->pred_count);
    mod->predict(mod->state, N, x, run->pred);
    float loss, metric;
    *mod->lr = LR;
    mod->train_step(mod->state, N, x, y, &loss, &metric);
    run->loss = loss;
    free(x);
    free(y);
}

/* clang-format off */
#define RNN_REF(name, ...) {name, CG_PORTABLE, __VA_ARGS__}, {name "_host", CG_HOST, __VA_ARGS__}
static const rnn_ref rnn_models[] = {
    /* stacked LSTMs: every step, then the last */
    RNN_REF("ref_lstm", 6, 3, 3, {{R_LSTM, 5, true, true, 0, 0}, {R_LSTM, 4, false, true, 0, 0},
                                  {R_DENSE, 2, false, true, 0, CG_LINEAR}}, false, false),
    /* GRU (two bias rows), then GRU without bias, into a classifier */
    RNN_REF("ref_gru", 5, 3, 3, {{R_GRU, 5, true, true, 0, 0}, {R_GRU, 4, false, false, 0, 0},
                                 {R_DENSE, 3, false, true, 0, CG_LINEAR}}, true, false),
    /* SimpleRNN, every step into a Dense on the sequence */
    RNN_REF("ref_simple_rnn", 5, 2, 2, {{R_SIMPLE_RNN, 4, true, true, 0, 0}, {R_DENSE, 2, false, true, 0, CG_TANH}},
            false, false),
    /* token ids (some out of range) into Embedding, LSTM without bias */
    RNN_REF("ref_embedding", 7, 0, 3, {{R_EMBEDDING, 9, false, false, 4, 0}, {R_LSTM, 5, false, false, 0, 0},
                                       {R_DENSE, 3, false, true, 0, CG_LINEAR}}, true, false),
    /* initial states given as inputs: an LSTM from [h0, c0], a GRU from h0 (both bias rows) */
    RNN_REF("ref_lstm_state", 5, 3, 2, {{R_LSTM, 4, true, true, 0, 0}, {R_DENSE, 2, false, true, 0, CG_LINEAR}},
            false, true),
    RNN_REF("ref_gru_state", 5, 3, 2, {{R_GRU, 4, false, true, 0, 0}, {R_DENSE, 3, false, true, 0, CG_LINEAR}},
            true, true),
};
/* clang-format on */
#define NRNN (int)(sizeof rnn_models / sizeof rnn_models[0])

/* Recurrent models against torch's nn.LSTM, nn.GRU, nn.RNN and F.embedding, both flavours: predict, the loss,
 * every gradient, and the parameters after one Adam step. */
Test(reference, recurrent)
{
    static ref_run runs[NRNN];
    const char *dirs[NRNN];
    for (int i = 0; i < NRNN; i++) {
        prepare_rnn(&rnn_models[i], &runs[i]);
        dirs[i] = runs[i].mod.dir;
    }
    char log[4096];
    int status = hx_run_python(OPS_SOURCE_DIR "/torch_ref.py", dirs, NRNN, log, sizeof log);
    if (status == 77)
        cr_skip_test("torch not installed");
    cr_assert(status == 0, "torch_ref.py failed:\n%s", log);
    for (int i = 0; i < NRNN; i++)
        verify(rnn_models[i].name, &runs[i]);
}

static const ref_model models[] = {
    {"ref_mlp", 5, 2, {{8, CG_RELU}, {3, CG_LINEAR}}, CG_SPARSE_CATEGORICAL_CROSSENTROPY, true, "sparse_ce_logits", 0},
    {"ref_bce_logits", 4, 2, {{6, CG_TANH}, {1, CG_LINEAR}}, CG_BINARY_CROSSENTROPY, true, "bce_logits", 0},
    {"ref_bce_probs", 4, 2, {{6, CG_RELU}, {2, CG_SIGMOID}}, CG_BINARY_CROSSENTROPY, false, "bce_probs", 0},
    {"ref_mse_tanh", 3, 2, {{4, CG_TANH}, {2, CG_LINEAR}}, CG_MSE, false, "mse", 0},
    {"ref_cce_probs", 4, 2, {{5, CG_RELU}, {3, CG_SOFTMAX}}, CG_CATEGORICAL_CROSSENTROPY, false, "cce_probs", 0},
    /* inputs of a few hundred: logits of hundreds, where clipping the probabilities would lose the gradient */
    {"ref_bce_probs_big", 4, 2, {{6, CG_RELU}, {2, CG_SIGMOID}}, CG_BINARY_CROSSENTROPY, false, "bce_probs", 300.0f},
    {"ref_sce_probs_big",
     4,
     2,
     {{5, CG_RELU}, {3, CG_SOFTMAX}},
     CG_SPARSE_CATEGORICAL_CROSSENTROPY,
     false,
     "sparse_ce_probs",
     300.0f},
};

#define NMODELS (int)(sizeof models / sizeof models[0])

/* One test for all models: importing torch takes seconds, so torch_ref.py runs once over every folder. */
Test(reference, torch)
{
    static ref_run runs[NMODELS + NCNN];
    const char *dirs[NMODELS + NCNN];
    for (int i = 0; i < NMODELS + NCNN; i++) {
        if (i < NMODELS)
            prepare(&models[i], &runs[i]);
        else
            prepare_cnn(&cnn_models[i - NMODELS], &runs[i]);
        dirs[i] = runs[i].mod.dir;
    }
    char log[4096];
    int status = hx_run_python(OPS_SOURCE_DIR "/torch_ref.py", dirs, NMODELS + NCNN, log, sizeof log);
    if (status == 77)
        cr_skip_test("torch not installed");
    cr_assert(status == 0, "torch_ref.py failed:\n%s", log);
    for (int i = 0; i < NMODELS + NCNN; i++)
        verify(i < NMODELS ? models[i].name : cnn_models[i - NMODELS].name, &runs[i]);
}

/* ---- Dropout (no torch needed) ------------------------------------------------------------ */

/* Dropout is the identity in inference: eval_step and predict of a model with Dropout equal those of the
 * same model without it (same parameters), bit for bit. In train_step it zeroes about `rate` of its inputs
 * and scales the rest by 1 / (1 - rate): with Dense(256, kernel 0, bias 1) before it and MAE against
 * zero labels, the loss is (kept fraction) / (1 - rate); over 8 x 256 draws the kept fraction is within
 * 0.04 (4 standard deviations) of 1 - rate. Each step draws a new mask (the bias gradient, the mask's
 * column sums, changes). */
Test(reference, dropout)
{
    cg_model *m[2];
    hx_module mod[2];
    for (int k = 0; k < 2; k++) {
        m[k] = cg_sequential(k ? "ref_no_dropout" : "ref_dropout", CG_SHAPE(6));
        cg_model_add(m[k], cg_dense(16, .activation = CG_RELU));
        if (!k)
            cg_model_add(m[k], cg_dropout(0.5f));
        cg_model_add(m[k], cg_dense(3));
        cg_compile(m[k], .optimizer = cg_sgd(0.1f, 0, false), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,
                   .from_logits = true, .metric = CG_ACCURACY, .batch_size = 8);
        cr_assert(hx_build_model(&mod[k], m[k], CG_PORTABLE, NULL) == 0, "%s", mod[k].err);
    }
    cr_assert_eq(mod[0].param_floats, mod[1].param_floats);
    memcpy(mod[1].params, mod[0].params, sizeof(float) * (size_t)mod[0].param_floats);
    float x[8 * 6], y[8], out[2][8 * 3], loss[2], metric[2];
    uint64_t s = 99;
    for (int i = 0; i < 8 * 6; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
    }
    for (int i = 0; i < 8; i++)
        y[i] = (float)(i % 3);
    for (int k = 0; k < 2; k++) {
        mod[k].eval_step(mod[k].state, 8, x, y, &loss[k], &metric[k]);
        mod[k].predict(mod[k].state, 8, x, out[k]);
    }
    cr_expect(loss[0] == loss[1] && metric[0] == metric[1],
              "eval_step with Dropout: loss %.9g accuracy %g; without: %.9g %g", (double)loss[0], (double)metric[0],
              (double)loss[1], (double)metric[1]);
    cr_expect(!memcmp(out[0], out[1], sizeof out[0]), "predict with Dropout differs from predict without it");
    /* in training the loss differs (a mask was drawn) */
    float tl[2];
    for (int k = 0; k < 2; k++)
        mod[k].train_step(mod[k].state, 8, x, y, &tl[k], &metric[k]);
    cr_expect(tl[1] == loss[1], "train_step without Dropout: loss %.9g, eval_step %.9g", (double)tl[1],
              (double)loss[1]);
    cr_expect(tl[0] != loss[0], "train_step with Dropout(0.5) gave the inference loss %.9g", (double)tl[0]);
    for (int k = 0; k < 2; k++) {
        hx_close(&mod[k]);
        cg_model_free(m[k]);
    }

    /* the dropped fraction */
    const float rate = 0.25f;
    cg_model *d = cg_sequential("ref_dropout_rate", CG_SHAPE(4));
    cg_model_add(d, cg_dense(256, .kernel_initializer = cg_zeros(), .bias_initializer = cg_ones()));
    cg_model_add(d, cg_dropout(rate));
    cg_compile(d, .optimizer = cg_sgd(1e-6f, 0, false), .loss = CG_MAE, .batch_size = 8);
    hx_module dm;
    cr_assert(hx_build_model(&dm, d, CG_PORTABLE, NULL) == 0, "%s", dm.err);
    float dx[8 * 4] = {0}, dy[8 * 256] = {0}, pred[8 * 256], l, mt, prev_grad[256];
    long boff = hx_param(&dm, "dense_1/bias", NULL);
    cr_assert(boff >= 0);
    dm.predict(dm.state, 8, dx, pred);
    for (int i = 0; i < 8 * 256; i++)
        cr_assert_eq(pred[i], 1.0f, "predict applied dropout: output[%d] = %g", i, (double)pred[i]);
    dm.eval_step(dm.state, 8, dx, dy, &l, &mt);
    cr_expect_eq(l, 1.0f, "eval_step MAE %.9g, expected 1 (no dropout in inference)", (double)l);
    for (int step = 0; step < 3; step++) {
        dm.train_step(dm.state, 8, dx, dy, &l, &mt);
        double kept = (double)l * (1.0 - rate);
        cr_expect(fabs(kept - (1.0 - rate)) <= 0.04, "step %d: kept fraction %.4f, expected about %.2f", step, kept,
                  1.0 - rate);
        double units = kept * 8 * 256;
        cr_expect(fabs(units - round(units)) < 0.02,
                  "step %d: kept %.3f of 2048 inputs: a mask value is neither 0 "
                  "nor 1 / (1 - rate)",
                  step, units);
        /* d bias[j] = (kept entries of column j) / (1 - rate) / 2048: the mask's column counts */
        cr_expect(step == 0 || memcmp(prev_grad, dm.grads + boff, sizeof prev_grad),
                  "step %d drew the same mask as the step before", step);
        memcpy(prev_grad, dm.grads + boff, sizeof prev_grad);
    }
    hx_close(&dm);
    cg_model_free(d);
}
