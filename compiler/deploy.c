/* deploy.c: deployment to firmware. The trained weights read from a
 * checkpoint (NAME_weights.c holds them as const arrays, which a toolchain
 * places in flash), the bytes of RAM a predict-only or a training build
 * takes (the header's datasheet), the --max-ram budget, and the memory plan
 * of each entry point as a table a firmware developer can read. */
#include "cgrad_int.h"

#include <cgrad_rt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Reads the parameter block from checkpoint path with the runtime's reader
 * (the model's names and shapes checked); a series model's standardisation
 * too. Needs the layout pass (the parameters' offsets). */
int deploy_read_weights(cg_graph *g, const char *path)
{
    cgrt_param *params = arena_alloc(&g->a, sizeof(cgrt_param) * (size_t)(g->nvars ? g->nvars : 1));
    float *block = arena_alloc(&g->a, sizeof(float) * (g->param_floats ? g->param_floats : 1));
    if (!params || !block)
        return graph_error(g, (cg_src){0}, -1, "out of memory");
    for (int i = 0; i < g->nvars; i++) {
        const var *v = &g->vars[i];
        const shape *sh = &g->nodes[v->node].sh;
        params[i] = (cgrt_param){v->name, sh->rank, {0}, v->offset, v->count, v->trainable};
        for (int k = 0; k < sh->rank; k++)
            params[i].dims[k] = sh->d[k];
    }
    cgrt_model m = {.name = g->name, .param_floats = g->param_floats, .num_params = g->nvars, .params = params};
    cgrt_error err = {{0}};
    const char *shown = arena_escaped(&g->a, path, 200);
    cg_src src = g->model ? g->model->src : (cg_src){0};
    if (cgrt_load_checkpoint(&m, block, path, &err))
        return graph_error(g, src, -1, "--weights: %s", err.msg);
    for (int i = 0; i < g->nvars; i++)
        for (size_t k = 0; k < g->vars[i].count; k++)
            if (!isfinite(block[g->vars[i].offset + k]))
                return graph_error(g, src, -1,
                                   "--weights: %s: tensor \"%s\" holds %g at index %zu: the weights of a trained "
                                   "model are finite numbers",
                                   shown, g->vars[i].name, (double)block[g->vars[i].offset + k], k);
    if (g->model && g->model->opts.data.series.window > 0) {
        cgrt_series_stats st;
        if (cgrt_load_series_stats(path, &st, &err))
            return graph_error(g, src, -1, "--weights: %s", err.msg);
        g->dep.has_stats = true;
        g->dep.series_mean = st.mean;
        g->dep.series_std = st.std;
    }
    g->dep.weights = block;
    g->dep.weights_path = shown;
    return 0;
}

/* True when the build updates parameters: an optimizer, something to
 * train, and training entry points. */
bool deploy_updates(const cg_graph *g)
{
    return g->has_opt && !g->dep.predict_only && g->trainable_floats > 0;
}

/* The entry point a predict-only build keeps, or NULL. */
static const entry *predict_entry(const cg_graph *g)
{
    for (int k = 0; k < g->nentries; k++)
        if (g->entries[k].kind == ENTRY_PREDICT)
            return &g->entries[k];
    return NULL;
}

/* True when the graph draws dropout masks (the state then holds a generator). */
bool deploy_has_dropout(const cg_graph *g)
{
    for (int id = 0; id < g->nnodes; id++)
        if (g->nodes[id].op == OP_DROPOUT_MASK)
            return true;
    return false;
}

/* The bytes of the state struct of a predict-only build (parameters unless
 * they are const, the predict arena) or of a training build (parameters,
 * gradients, optimizer state, the largest arena, lr and step, and the
 * dropout generator: a uint64_t, 8-byte aligned as on Arm EABI and x86-64). */
ram_parts deploy_ram(const cg_graph *g, bool predict_only)
{
    ram_parts r = {0};
    const entry *pe = predict_entry(g);
    size_t arena = 1;
    for (int k = 0; k < g->nentries; k++)
        if ((!predict_only || &g->entries[k] == pe) && g->entries[k].arena_floats > arena)
            arena = g->entries[k].arena_floats;
    r.arena = 4 * arena;
    if (predict_only) {
        r.params = g->dep.weights ? 0 : 4 * g->param_floats;
    } else {
        r.params = 4 * g->param_floats;
        r.grads = 4 * g->trainable_floats;
        r.opt = 4 * g->opt_floats;
        r.scalars = 8; /* float lr, int step */
    }
    size_t floats = r.params + r.grads + r.opt + r.arena;
    r.total = floats + r.scalars;
    if (!predict_only && deploy_has_dropout(g)) {
        size_t at = (r.total + 7) / 8 * 8; /* uint64_t rng */
        r.total = at + 8;
        r.scalars = r.total - floats;
    }
    return r;
}

/* Keeps the predict entry point alone, first noting the training state's size. */
int deploy_keep_predict(cg_graph *g)
{
    if (!predict_entry(g))
        return graph_error(g, (cg_src){0}, -1,
                           "%s: --mode predict needs a predict entry point: a model (compiled with cg_compile), or a "
                           "tape graph with outputs (cg_output)",
                           g->name);
    g->dep.train_ram = deploy_ram(g, false).total;
    int kept = 0;
    for (int k = 0; k < g->nentries; k++) {
        entry *e = &g->entries[k];
        if (e->kind == ENTRY_PREDICT) {
            g->entries[kept++] = *e;
            continue;
        }
        free(e->sched), free(e->offset), free(e->scratch), free(e->first), free(e->last);
    }
    g->nentries = kept;
    return 0;
}

/* The step of entry e where the arena's live buffers add up to the most;
 * their sum into *bytes. */
static int peak_step(const cg_graph *g, const entry *e, size_t *bytes)
{
    int best = 0;
    *bytes = 0;
    for (int k = 0; k < e->nsched; k++) {
        size_t sum = 0;
        for (int j = 0; j < e->nsched; j++) {
            int id = e->sched[j];
            if (e->offset[id] >= 0 && e->first[id] <= k && k <= e->last[id] && g->nodes[id].op != OP_RESHAPE)
                sum += 4 * (size_t)shape_size(&g->nodes[id].sh, g->max_batch);
            if (e->scratch[id] >= 0 && j == k)
                sum += 4 * (size_t)conv_scratch((cg_graph *)g, id);
        }
        if (sum > *bytes) {
            *bytes = sum;
            best = k;
        }
    }
    return best;
}

/* The entry point whose arena is the largest in this build. */
static const entry *largest_entry(const cg_graph *g)
{
    const entry *big = NULL;
    for (int k = 0; k < g->nentries; k++)
        if (!big || g->entries[k].arena_floats > big->arena_floats)
            big = &g->entries[k];
    return big;
}

/* Appends "a (n B), b (m B)" for the buffers of e live at step k, largest first, at most 6. */
static void live_list(const cg_graph *g, const entry *e, int k, text *t)
{
    bool *shown = calloc((size_t)e->nsched + 1, sizeof(bool));
    for (int round = 0; shown && round < 6; round++) {
        int pick = -1;
        long size = 0;
        for (int j = 0; j < e->nsched; j++) {
            int id = e->sched[j];
            long s = shape_size(&g->nodes[id].sh, g->max_batch);
            bool live = e->offset[id] >= 0 && e->first[id] <= k && k <= e->last[id] && g->nodes[id].op != OP_RESHAPE;
            if (live && !shown[j] && s > size) {
                pick = j;
                size = s;
            }
        }
        if (pick < 0)
            break;
        shown[pick] = true;
        text_printf(t, "%s%s (%ld B)", round ? ", " : "", g->nodes[e->sched[pick]].name, 4 * size);
    }
    free(shown);
}

/* Fails when the state of this build takes more than --max-ram bytes: the
 * message gives each part and, for the arena, the peak point of the
 * schedule with the buffers live there. */
int deploy_check_ram(cg_graph *g)
{
    ram_parts r = deploy_ram(g, g->dep.predict_only);
    if (!g->dep.max_ram || (long long)r.total <= g->dep.max_ram)
        return 0;
    const entry *e = largest_entry(g);
    size_t live = 0;
    int k = e ? peak_step(g, e, &live) : 0;
    text why = {0};
    if (e && e->nsched) {
        text_printf(&why, "; the arena's peak is in %s at step %d of %d (%s, %s), %zu B live: ", e->fname, k + 1,
                    e->nsched, g->nodes[e->sched[k]].name, op_table[g->nodes[e->sched[k]].op].name, live);
        live_list(g, e, k, &why);
    }
    graph_error(g, g->model ? g->model->src : (cg_src){0}, -1,
                "%s: the %s state needs %zu bytes of RAM, more than --max-ram %lld: parameters %zu B%s, gradients %zu "
                "B, optimizer %zu B, activation arena %zu B, lr/step %zu B%s",
                g->name, g->dep.predict_only ? "predict" : "training", r.total, g->dep.max_ram, r.params,
                g->dep.weights ? " (the rest in flash)" : "", r.grads, r.opt, r.arena, r.scalars, why.s ? why.s : "");
    text_free(&why);
    return -1;
}

/* The bytes of local arrays in node id's kernel (max pooling keeps a
 * maximum per channel, its backward a maximum and its position, a direct
 * convolution its kernel and sums; a recurrence's inference form one
 * sample's state and gates; no other kernel has any). */
static long kernel_array_bytes(const cg_graph *g, int id)
{
    return op_table[g->nodes[id].op].cat == CAT_CONV ? conv_stack_bytes(g, id) : rnn_infer_stack_bytes(g, id);
}

/* The frames an entry point's stack holds at most: its own, its forward
 * pass's when it calls one, and one kernel's (kernels call only the maths
 * library). */
static int stack_frames(const entry *e)
{
    return e->fwd_name ? 3 : 2;
}

/* The stack an entry point needs, estimated from the emitted code: its
 * frames (stack_frames) of at most 160 bytes of saved registers and
 * scalars each, plus the largest local arrays of a kernel it calls. */
static long stack_estimate(const cg_graph *g, const entry *e)
{
    long arrays = 0;
    for (int k = 0; k < e->nsched; k++)
        if (kernel_array_bytes(g, e->sched[k]) > arrays)
            arrays = kernel_array_bytes(g, e->sched[k]);
    return stack_frames(e) * 160 + arrays;
}

/* Appends one "#define UNAME_WHAT value /+ comment +/" line. */
static void define(text *t, const char *pu, const char *what, size_t value, const char *comment)
{
    char name[320];
    snprintf(name, sizeof name, "%s_%s", pu, what);
    text_printf(t, "#define %-34s %9zu /* %s */\n", name, value, comment);
}

/* The header's datasheet: flash and RAM bytes (this build's, and those of a
 * predict-only and of a training build), the parts of this build's RAM, the
 * stack of each entry point, the preprocessing raw inputs need, and the
 * memory plan. */
void deploy_datasheet(emit_ctx *ec, text *t)
{
    cg_graph *g = ec->g;
    const char *pu = ec->uprefix;
    bool po = g->dep.predict_only;
    ram_parts r = deploy_ram(g, po), rp = deploy_ram(g, true), rt = deploy_ram(g, false);
    char up[160], note[160];
    text_printf(t,
                "/* The datasheet of this build (%s, weights %s): bytes, all known at compile time.\n"
                " * RAM is the state struct, which the caller places (static storage in firmware: .bss). */\n",
                po ? "predict only" : "training and predict", g->dep.weights ? "const, in flash" : "in RAM");
    define(t, pu, "FLASH_BYTES", g->dep.weights ? 4 * g->param_floats : 0,
           "const weights (NAME_weights.c); the code's .text comes on top");
    define(t, pu, "RAM_BYTES", r.total, "sizeof the state struct below");
    define(t, pu, "RAM_PARAM_BYTES", r.params, "of it: parameters");
    define(t, pu, "RAM_GRAD_BYTES", r.grads, "gradients");
    define(t, pu, "RAM_OPT_BYTES", r.opt, "optimizer state");
    define(t, pu, "RAM_ARENA_BYTES", r.arena, "activation arena");
    define(t, pu, "RAM_SCALAR_BYTES", r.scalars, "lr, step (and the dropout generator), with padding");
    snprintf(note, sizeof note, "a --mode predict build%s", g->dep.weights ? " (weights in flash)" : "");
    if (g->model) /* a graph of gradients has no predict */
        define(t, pu, "PREDICT_RAM_BYTES", rp.total, note);
    define(t, pu, "TRAIN_RAM_BYTES", po ? g->dep.train_ram : rt.total, "a --mode train build (weights in RAM)");
    for (int k = 0; k < g->nentries; k++) {
        snprintf(up, sizeof up, "STACK_%s_BYTES", emit_upper(g->entries[k].fname, note, sizeof note));
        char frames[80];
        snprintf(frames, sizeof frames, "estimated stack: %d frames of <= 160 B + kernel arrays",
                 stack_frames(&g->entries[k]));
        define(t, pu, up, (size_t)stack_estimate(g, &g->entries[k]), frames);
    }
    if (g->model) {
        char scale[48];
        float s = g->model->opts.data.scale;
        emit_float(s != 0.0f ? s : 1.0f, scale, sizeof scale);
        text_printf(t,
                    "/* The preprocessing the model was trained with: feed x = raw * %s_INPUT_SCALE + "
                    "%s_INPUT_OFFSET. */\n#define %s_INPUT_SCALE %s\n#define %s_INPUT_OFFSET 0.0f\n",
                    pu, pu, pu, scale, pu);
    }
    if (g->dep.has_stats) {
        char mean[48], std[48];
        text_printf(t,
                    "/* The series' standardisation (from the checkpoint): the model reads windows of\n"
                    " * (v - %s_SERIES_MEAN) / %s_SERIES_STD and predicts in the same units. */\n"
                    "#define %s_SERIES_MEAN %s\n#define %s_SERIES_STD %s\n",
                    pu, pu, pu, emit_float((float)g->dep.series_mean, mean, sizeof mean), pu,
                    emit_float((float)g->dep.series_std, std, sizeof std));
    }
    text_puts(t, "/* The memory plan: every buffer of the activation arena, where it lives in the arena\n"
                 " * and from which kernel call (step) to which it is live; a buffer is reused once dead.\n");
    for (int k = 0; k < g->nentries; k++)
        plan_describe(g, &g->entries[k], " * ", false, t);
    text_puts(t, " */\n");
}

/* The header's declarations of the const weights. */
void deploy_weight_decls(emit_ctx *ec, text *t)
{
    cg_graph *g = ec->g;
    char sb[64];
    text_printf(t, "/* The trained weights (%s_weights.c), const: in flash. */\n", ec->prefix);
    for (int i = 0; i < g->nvars; i++) {
        const var *v = &g->vars[i];
        text_printf(t, "extern const float %s_%s[%zu]; /* %s %s */\n", ec->prefix, g->nodes[v->node].name, v->count,
                    v->name, shape_str(&g->nodes[v->node].sh, sb, sizeof sb));
    }
}

/* NAME_weights.c: every parameter as a const float array, eight values a
 * line, each the shortest literal that reads back to the same float. */
int emit_weights(emit_ctx *ec, text *w)
{
    cg_graph *g = ec->g;
    char sb[64], f[48];
    text_printf(w,
                "/* %s_weights.c: generated by cgrad %s from %s. Do not edit.\n"
                " * The parameters of %s read from %s, as const arrays: a toolchain places\n"
                " * them in flash (.rodata), %zu bytes in all (%s_FLASH_BYTES). */\n#include \"%s.h\"\n",
                ec->prefix, CG_VERSION, ec->source, ec->prefix, g->dep.weights_path, 4 * g->param_floats, ec->uprefix,
                ec->prefix);
    for (int i = 0; i < g->nvars; i++) {
        const var *v = &g->vars[i];
        text_printf(w, "\n/* %s %s: %zu floats */\nconst float %s_%s[%zu] = {", v->name,
                    shape_str(&g->nodes[v->node].sh, sb, sizeof sb), v->count, ec->prefix, g->nodes[v->node].name,
                    v->count);
        for (size_t k = 0; k < v->count; k++)
            text_printf(w, "%s%s,", k % 8 ? " " : "\n    ", emit_float(g->dep.weights[v->offset + k], f, sizeof f));
        text_puts(w, "\n};\n");
    }
    return w->oom ? -1 : 0;
}
