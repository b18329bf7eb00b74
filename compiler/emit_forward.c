/* emit_forward.c: the bodies that run kernels. Each function of NAME.c that
 * calls kernels declares the pointer of every buffer it touches, named after
 * its node, with its shape, then calls the kernels of its part of an entry
 * point's schedule. A model's entry points of one mode share one forward
 * pass, a static NAME_forward_infer (predict, eval_step) or
 * NAME_forward_train (train_step, gradients): the planner gives its buffers
 * the same offsets in each of them (plan.c), so each entry point calls it,
 * then runs what is its own (the loss, backward, the optimizer). */
#include "cgrad_int.h"

#include <stdlib.h>
#include <string.h>

/* Marks in used[] what the kernels of steps [lo, hi) of entry e touch: their
 * outputs and inputs (a view's storage too). */
static void mark_steps(cg_graph *g, const entry *e, int lo, int hi, bool *used)
{
    for (int k = lo; k < hi; k++) {
        int id = e->sched[k];
        if (!node_has_kernel(g, id))
            continue;
        used[id] = true;
        for (int i = 0; i < g->nodes[id].nin; i++)
            used[g->nodes[id].in[i]] = g->nodes[g->nodes[id].in[i]].op != OP_CONST;
    }
}

/* Marks the storage of every view that is used: its declaration names it. */
static void mark_views(cg_graph *g, bool *used)
{
    for (int id = 0; id < g->nnodes; id++)
        if (used[id] && g->nodes[id].op == OP_RESHAPE)
            used[plan_storage_root(g, id)] = true;
}

/* Declares the pointers of the buffers of entry e that used[] marks, named
 * after their nodes, with their shapes: parameters, gradients, activations
 * (with the im2col scratch of a kernel of steps [lo, hi)), then views. */
static void emit_pointers(emit_ctx *ec, const entry *e, const bool *used, int lo, int hi, const char *arena_note)
{
    cg_graph *g = ec->g;
    char sb[64], up[128];
    const char *pu = ec->uprefix;
    bool any = false;
    for (int k = 0; k < e->nsched; k++) {
        const node *n = &g->nodes[e->sched[k]];
        if (n->op != OP_VARIABLE || !used[e->sched[k]])
            continue;
        text_puts(ec->t, any ? "" : "    /* parameters */\n");
        any = true;
        if (g->dep.weights && g->dep.predict_only) /* in flash */
            text_printf(ec->t, "    const float *%s = %s_%s; /* %s */\n", n->name, ec->prefix, n->name,
                        shape_str(&n->sh, sb, sizeof sb));
        else
            text_printf(ec->t, "    float *%s = s->params + %s_%s; /* %s */\n", n->name, pu,
                        emit_upper(n->name, up, sizeof up), shape_str(&n->sh, sb, sizeof sb));
    }
    any = false;
    for (int i = 0; e->want_grads && i < g->nvars; i++) {
        if (g->vars[i].grad < 0 || !used[g->vars[i].grad])
            continue;
        const node *v = &g->nodes[g->vars[i].node];
        text_puts(ec->t, any ? "" : "    /* gradients, in the gradient block at their parameter's offset */\n");
        any = true;
        text_printf(ec->t, "    float *%s = s->grads + %s_%s; /* %s */\n", g->nodes[g->vars[i].grad].name, pu,
                    emit_upper(v->name, up, sizeof up), shape_str(&v->sh, sb, sizeof sb));
    }
    any = false;
    for (int k = 0; k < e->nsched; k++) {
        int id = e->sched[k];
        const node *n = &g->nodes[id];
        bool buffer = used[id] && e->offset[id] >= 0 && n->op != OP_RESHAPE,
             cols = k >= lo && k < hi && e->scratch[id] >= 0;
        if ((buffer || cols) && !any)
            text_printf(ec->t, "    /* activations: one arena, %s (%zu floats at batch %d) */\n", arena_note,
                        e->arena_floats, g->max_batch);
        any = any || buffer || cols;
        if (buffer)
            text_printf(ec->t, "    float *%s = s->arena + %ld; /* %s */\n", n->name, e->offset[id],
                        shape_str(&n->sh, sb, sizeof sb));
        if (cols)
            text_printf(ec->t, "    float *%s_cols = s->arena + %ld; /* im2col scratch of %s, %ld floats */\n", n->name,
                        e->scratch[id], n->name, conv_scratch(g, id));
    }
    for (int k = 0; k < e->nsched; k++) { /* views: another shape over the same floats */
        const node *n = &g->nodes[e->sched[k]];
        if (n->op == OP_RESHAPE && used[e->sched[k]])
            text_printf(ec->t, "    const float *%s = %s; /* %s, a view of %s: no copy */\n", n->name,
                        g->nodes[n->in[0]].name, shape_str(&n->sh, sb, sizeof sb), g->nodes[n->in[0]].name);
    }
}

/* Calls the kernels of steps [lo, hi) of entry e, each with a comment
 * saying what it computes; the backward ones after the seed of the chain
 * rule; in a fused training step, the optimizer's updates after them. */
static void emit_steps(emit_ctx *ec, const entry *e, int lo, int hi)
{
    cg_graph *g = ec->g;
    bool in_bwd = false;
    for (int k = lo; k < hi; k++) {
        int id = e->sched[k];
        const node *n = &g->nodes[id];
        if (!node_has_kernel(g, id))
            continue;
        if (n->backward && !in_bwd) {
            text_puts(ec->t, "\n    /* backward: the chain rule, from the loss back to the parameters */\n");
            emit_seed(ec, e);
            in_bwd = true;
        }
        char kn[256], what[512];
        emit_describe(ec, id, what, sizeof what);
        text_printf(ec->t, "    %s(", kernel_name(g, id, kn, sizeof kn));
        kernel_params(ec, id, KP_CALL, e);
        text_printf(ec->t, "); /* %s */\n", what);
        if (ec->update_after)
            emit_fused_updates(ec, e, k);
    }
}

/* True when a kernel of steps [lo, hi) of entry e needs the batch size n. */
static bool steps_need_n(cg_graph *g, const entry *e, int lo, int hi)
{
    for (int k = lo; k < hi; k++)
        if (node_has_kernel(g, e->sched[k]) && kernel_needs_n(g, e->sched[k]))
            return true;
    return false;
}

/* The first entry point that calls forward pass `name`: its plan places the
 * forward pass's buffers, as every other caller's does. */
static const entry *forward_plan(const cg_graph *g, const char *name)
{
    for (int k = 0; k < g->nentries; k++)
        if (g->entries[k].fwd_name == name)
            return &g->entries[k];
    return NULL;
}

/* Writes each forward pass of the entry points once: a static function
 * running the model from x (unpacked into the inputs' buffers, for a
 * functional model) to its outputs, which stay in the arena for the caller. */
void emit_forwards(emit_ctx *ec)
{
    cg_graph *g = ec->g;
    for (int k = 0; k < g->nentries; k++) {
        const entry *e = &g->entries[k];
        if (!e->fwd_name || forward_plan(g, e->fwd_name) != e)
            continue;
        bool *used = calloc((size_t)g->nnodes + 1, sizeof(bool));
        if (!used) {
            ec->t->oom = true;
            return;
        }
        bool infer = !strcmp(e->fwd_name, "forward_infer"), unpack = g->model && g->model->functional;
        text_printf(
            ec->t,
            "/* The forward pass in %s mode, as %s run it: every layer from the input x to the\n"
            " * model's outputs, which stay in the arena for the caller, as do the buffers %s reads next.%s */\n"
            "static void %s_%s(%s_state *s, int n, const float *x)\n{\n",
            infer ? "inference" : "training", infer ? "predict and eval_step" : "train_step and gradients",
            infer ? "the loss" : "backward",
            infer ? "" : "\n * Training mode: Dropout draws its masks, BatchNormalization uses the batch's statistics.",
            ec->prefix, e->fwd_name, ec->prefix);
        if (!unpack && !steps_need_n(g, e, 0, e->fwd_steps))
            text_puts(ec->t, "    (void)n; /* no tensor here has a batch dimension */\n");
        mark_steps(g, e, 0, e->fwd_steps, used);
        for (int i = 0; unpack && i < g->model->ninputs; i++)
            used[g->model->inputs[i]] = true;
        mark_views(g, used);
        emit_pointers(ec, e, used, 0, e->fwd_steps, "offsets planned for every entry point that calls this");
        if (unpack)
            emit_packing(ec, e, g->model->inputs, g->model->ninputs, "x", true);
        text_puts(ec->t, "\n");
        emit_steps(ec, e, 0, e->fwd_steps);
        text_puts(ec->t, "}\n\n");
        free(used);
    }
}

/* The start of entry point e's body: (void)n when nothing uses it, and the
 * pointers of the buffers it touches itself (not those only its forward
 * pass does). */
void emit_entry_pointers(emit_ctx *ec, const entry *e)
{
    cg_graph *g = ec->g;
    cg_model *m = g->model;
    bool unpack = m && m->functional;
    if (!e->fwd_name && !unpack && e->kind != ENTRY_PREDICT && !steps_need_n(g, e, 0, e->nsched))
        text_puts(ec->t, "    (void)n; /* no tensor here has a batch dimension */\n");
    bool *used = calloc((size_t)g->nnodes + 1, sizeof(bool));
    if (!used) {
        ec->t->oom = true;
        return;
    }
    mark_steps(g, e, e->fwd_steps, e->nsched, used);
    for (int i = 0; i < e->nout; i++)
        used[e->out[i]] = true;
    for (int i = 0; i < e->nupd; i++)
        used[e->upd_var[i]] = used[e->upd_val[i]] = true;
    for (int i = 0; unpack && i < m->noutputs && e->kind != ENTRY_PREDICT; i++)
        used[m->labels[i]] = e->offset[m->labels[i]] >= 0;
    if (m && m->sample_weight >= 0)
        used[m->sample_weight] = e->offset[m->sample_weight] >= 0;
    for (int i = 0; unpack && !e->fwd_name && i < m->ninputs; i++)
        used[m->inputs[i]] = true;
    mark_views(g, used);
    emit_pointers(ec, e, used, e->fwd_steps, e->nsched,
                  e->fwd_name ? "offsets planned by liveness, the forward pass's buffers where it puts them"
                              : "offsets planned by liveness");
    free(used);
}

/* The computation of entry point e: its forward pass (a call, or the
 * kernels; a functional model's x unpacked first), a functional model's
 * labels unpacked after it, then its own kernels. */
void emit_entry_calls(emit_ctx *ec, const entry *e)
{
    cg_graph *g = ec->g;
    cg_model *m = g->model;
    bool unpack = m && m->functional;
    if (unpack && !e->fwd_name)
        emit_packing(ec, e, m->inputs, m->ninputs, "x", true);
    if (e->fwd_name)
        text_printf(ec->t, "\n    %s_%s(s, n, x); /* the model, layer by layer */\n", ec->prefix, e->fwd_name);
    else
        text_puts(ec->t, "\n    /* forward */\n");
    if (unpack && e->kind != ENTRY_PREDICT)
        emit_packing(ec, e, m->labels, m->noutputs, "y", true);
    if (m && m->sample_weight >= 0 && e->offset[m->sample_weight] >= 0) /* a gradients entry weighs every sample 1 */
        text_printf(ec->t,
                    e->kind == ENTRY_GRADIENTS
                        ? "    for (int i = 0; i < n; i++) /* every sample's weight: 1 */\n        %s[i] = 1.0f;\n"
                        : "    for (int i = 0; i < n; i++) /* the samples' weights (Keras' sample_weight) */\n"
                          "        %s[i] = sw ? sw[i] : 1.0f;\n",
                    g->nodes[m->sample_weight].name);
    if (e->fwd_name && e->fwd_steps < e->nsched && !g->nodes[e->sched[e->fwd_steps]].backward)
        text_puts(ec->t, e->nout > 1 ? "\n    /* the loss, and the metrics reported beside it */\n"
                                     : "\n    /* the loss */\n");
    emit_steps(ec, e, e->fwd_steps, e->nsched);
}
