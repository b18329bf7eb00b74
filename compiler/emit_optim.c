/* emit_optim.c: the optimizer's step in the emitted code: its update calls,
 * either one flat loop over the parameter block after the backward pass or,
 * fused into train_step, one call per parameter as soon as the backward
 * pass is done with it; gradient clipping (Keras' clipnorm, clipvalue,
 * global_clipnorm) before the update; and the learning-rate schedule,
 * NAME_learning_rate(step), which sets s->lr at every step. Clipping and
 * schedule are written only when the optimizer asks for them. */
#include "cgrad_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* The clipping function's template and its bound ("optim/clip_norm" and
 * o->clipnorm); NULL when o clips nothing. */
static const char *clip_template(const cg_optimizer *o, float *bound)
{
    *bound = o->clipnorm > 0.0f ? o->clipnorm : o->global_clipnorm > 0.0f ? o->global_clipnorm : o->clipvalue;
    if (o->clipnorm > 0.0f || o->global_clipnorm > 0.0f)
        return "optim/clip_norm";
    return o->clipvalue > 0.0f ? "optim/clip_value" : NULL;
}

/* The schedule's template keys, into kv (NULL-terminated) with their text
 * in buf; returns the template's name. */
static const char *schedule_keys(emit_ctx *ec, const cg_schedule *s, const char **kv, char (*buf)[48], text *lists)
{
    int n = 0;
    kv[n++] = "NAME", kv[n++] = ec->prefix;
    kv[n++] = "INITIAL", kv[n++] = emit_float(s->initial_lr, buf[0], sizeof buf[0]);
    snprintf(buf[1], sizeof buf[1], "%d", s->decay_steps);
    kv[n++] = "DECAY_STEPS", kv[n++] = buf[1];
    const char *name = "optim/schedule_piecewise";
    if (s->kind == CG_EXPONENTIAL_DECAY) {
        kv[n++] = "RATE", kv[n++] = emit_float(s->decay_rate, buf[2], sizeof buf[2]);
        kv[n++] = "EXPONENT",
        kv[n++] = s->staircase ? "(float)(step / decay_steps)" : "(float)step / (float)decay_steps";
        kv[n++] = "EXPONENT_NOTE", kv[n++] = s->staircase ? "step / decay_steps rounded down" : "step / decay_steps";
        name = "optim/schedule_exponential";
    } else if (s->kind == CG_COSINE_DECAY) {
        bool warmup = s->warmup_target != 0.0f;
        kv[n++] = "ALPHA", kv[n++] = emit_float(s->alpha, buf[2], sizeof buf[2]);
        kv[n++] = "TARGET", kv[n++] = warmup ? emit_float(s->warmup_target, buf[3], sizeof buf[3]) : "initial_lr";
        snprintf(buf[4], sizeof buf[4], "%d", s->warmup_steps);
        kv[n++] = "WARMUP_STEPS", kv[n++] = buf[4];
        kv[n++] = "WARMUP_NOTE", kv[n++] = warmup ? ", after a linear warm-up" : " (no warm-up)";
        name = "optim/schedule_cosine";
    } else {
        for (int i = 0; i < s->nboundaries; i++)
            text_printf(&lists[0], "%s%d", i ? ", " : "", s->boundaries[i]);
        for (int i = 0; i < s->nvalues; i++)
            text_printf(&lists[1], "%s%s", i ? ", " : "", emit_float(s->values[i], buf[2], sizeof buf[2]));
        snprintf(buf[5], sizeof buf[5], "%d", s->nboundaries);
        kv[n++] = "COUNT", kv[n++] = buf[5];
        kv[n++] = "BOUNDARIES", kv[n++] = lists[0].s ? lists[0].s : "";
        kv[n++] = "VALUES", kv[n++] = lists[1].s ? lists[1].s : "";
    }
    kv[n] = NULL;
    return name;
}

/* Writes the clipping function and the schedule the optimizer asks for
 * into c, after its update function; returns -1 when a template failed. */
int emit_optim_extras(emit_ctx *ec, text *c)
{
    const cg_optimizer *o = &ec->g->opt;
    float bound;
    char num[48];
    const char *tmpl = clip_template(o, &bound);
    int rc = 0;
    if (tmpl) {
        const char *kv[] = {"CLIP", emit_float(bound, num, sizeof num), NULL};
        rc |= text_template(c, tmpl, kv);
    }
    if (o->schedule.kind != CG_SCHEDULE_NONE) {
        const char *kv[32];
        char buf[6][48];
        text lists[2] = {{0}, {0}};
        tmpl = schedule_keys(ec, &o->schedule, kv, buf, lists);
        rc |= text_template(c, tmpl, kv);
        text_free(&lists[0]), text_free(&lists[1]);
    }
    return rc;
}

/* The step's counter and its learning rate from the schedule: the lines
 * before the first update of a step. */
static void emit_step_start(emit_ctx *ec)
{
    const cg_optimizer *o = &ec->g->opt;
    text_puts(ec->t, "    s->step += 1;\n");
    if (o->schedule.kind != CG_SCHEDULE_NONE)
        text_printf(ec->t, "    s->lr = %s_learning_rate(s->step - 1); /* %s, at the step counted from 0 */\n",
                    ec->prefix, optim_schedule_name(o->schedule.kind));
}

/* The lines of the flat step between its counter and the update: the
 * clipping of s->grads (per parameter for clipnorm, the whole block for
 * global_clipnorm and clipvalue). */
static void emit_flat_clip(emit_ctx *ec)
{
    cg_graph *g = ec->g;
    const cg_optimizer *o = &g->opt;
    char up[128], num[48];
    float bound;
    if (!clip_template(o, &bound))
        return;
    snprintf(num, sizeof num, "%g", (double)bound); /* for the comments */
    if (o->clipnorm > 0.0f) {
        text_printf(ec->t, "    /* clipnorm: each parameter's gradient to an L2 norm of at most %s */\n", num);
        for (int i = 0; i < g->nvars; i++)
            if (g->vars[i].trainable)
                text_printf(ec->t, "    clip_norm(s->grads + %s_%s, %zu); /* %s */\n", ec->uprefix,
                            emit_upper(g->nodes[g->vars[i].node].name, up, sizeof up), g->vars[i].count,
                            g->vars[i].name);
    } else if (o->global_clipnorm > 0.0f)
        text_printf(ec->t,
                    "    /* global_clipnorm: every gradient scaled alike, to a joint L2 norm of at most %s */\n"
                    "    clip_norm(s->grads, %s_TRAINABLE_FLOATS);\n",
                    num, ec->uprefix);
    else
        text_printf(ec->t, "    clip_value(s->grads, %s_TRAINABLE_FLOATS); /* clipvalue: into [-%s, %s] */\n",
                    ec->uprefix, num, num);
}

/* Appends the call of the optimizer's update (row r) on the floats at
 * offset `at` of the blocks (at: "" for all of them, or " + NET_DENSE_1_KERNEL"),
 * with gradient grad and count floats. */
static void emit_update_call(emit_ctx *ec, const optim_row *r, const char *at, const char *grad, const char *count)
{
    text_printf(ec->t, "    %s(s->params%s, %s", r->update, at, grad);
    for (int k = 0; k < r->slots; k++) /* slot k of the state block */
        if (k == 0)
            text_printf(ec->t, ", s->opt%s", at);
        else if (k == 1)
            text_printf(ec->t, ", s->opt + %s_TRAINABLE_FLOATS%s", ec->uprefix, at);
        else
            text_printf(ec->t, ", s->opt + %d * %s_TRAINABLE_FLOATS%s", k, ec->uprefix, at);
    text_printf(ec->t, ", %s, s->lr%s);", count, r->step ? ", s->step" : "");
}

/* The optimizer's step in one flat loop over the parameter block, after
 * the backward pass (a tape's apply_gradients; a model clipping by
 * global_clipnorm, which needs every gradient first). */
void emit_update(emit_ctx *ec)
{
    char all[160];
    const optim_row *r = optim_row_of(&ec->g->opt);
    if (!r)
        return;
    text_puts(ec->t, "\n    /* optimizer: one flat loop over the parameter block */\n");
    emit_step_start(ec);
    emit_flat_clip(ec);
    snprintf(all, sizeof all, "%s_TRAINABLE_FLOATS", ec->uprefix);
    emit_update_call(ec, r, "", "s->grads", all);
    text_puts(ec->t, "\n");
}

/* True when the training step e updates each parameter as soon as the
 * backward pass is done with it: a model's train_step whose optimizer does
 * not need the whole gradient first (global_clipnorm does). */
bool optim_fused(const cg_graph *g, const entry *e)
{
    return e->kind == ENTRY_TRAIN && g->model && deploy_updates(g) && optim_row_of(&g->opt) &&
           !(g->opt.global_clipnorm > 0.0f);
}

/* True when the kernel of node id reads or writes the storage of node a or b. */
static bool kernel_touches(cg_graph *g, int id, int a, int b)
{
    int root = plan_storage_root(g, id);
    bool hit = root == a || root == b;
    for (int i = 0; i < g->nodes[id].nin; i++) {
        root = plan_storage_root(g, g->nodes[id].in[i]);
        hit = hit || root == a || root == b;
    }
    return hit;
}

/* Where the fused step e updates each parameter: per variable, the step of
 * e's schedule after whose kernel its update runs (the last kernel of the
 * backward pass that reads the parameter or reads or writes its gradient;
 * the last backward kernel when none does), -1 for a frozen one. NULL when
 * out of memory. The caller frees it. */
int *optim_update_points(cg_graph *g, const entry *e)
{
    int *after = malloc(((size_t)g->nvars + 1) * sizeof *after), last = -1;
    if (!after)
        return NULL;
    for (int k = e->fwd_steps; k < e->nsched; k++)
        last = node_has_kernel(g, e->sched[k]) ? k : last;
    for (int i = 0; i < g->nvars; i++) {
        const var *v = &g->vars[i];
        int grad = v->grad >= 0 ? plan_storage_root(g, v->grad) : -1;
        after[i] = -1;
        for (int k = e->fwd_steps; v->trainable && k < e->nsched; k++)
            if (node_has_kernel(g, e->sched[k]) && kernel_touches(g, e->sched[k], v->node, grad))
                after[i] = k;
        if (v->trainable && after[i] < 0)
            after[i] = last;
    }
    return after;
}

/* True when a backward kernel of entry e writes node id (its pointer is then declared). */
static bool step_writes(cg_graph *g, const entry *e, int id)
{
    for (int k = e->fwd_steps; id >= 0 && k < e->nsched; k++)
        if (e->sched[k] == id && node_has_kernel(g, id))
            return true;
    return false;
}

/* Appends the updates that fused step e runs after the kernel of its step
 * k (ec->update_after): before the first of them, the step's counter and
 * learning rate; each parameter's gradient clipped first when the optimizer
 * clips by norm or value. */
void emit_fused_updates(emit_ctx *ec, const entry *e, int k)
{
    cg_graph *g = ec->g;
    const optim_row *r = optim_row_of(&g->opt);
    int first = INT_MAX;
    char up[128], at[160], grad[192], count[32], num[48];
    float bound;
    const char *clip = clip_template(&g->opt, &bound);
    snprintf(num, sizeof num, "%g", (double)bound);
    for (int i = 0; i < g->nvars; i++)
        first = ec->update_after[i] >= 0 && ec->update_after[i] < first ? ec->update_after[i] : first;
    for (int i = 0; i < g->nvars; i++) {
        const var *v = &g->vars[i];
        if (ec->update_after[i] != k)
            continue;
        if (k == first)
            text_printf(ec->t,
                        "    /* optimizer: this step's counter%s, then each parameter's update as soon as the\n"
                        "     * backward pass is done with it and its gradient, while both are in cache */\n",
                        g->opt.schedule.kind != CG_SCHEDULE_NONE ? " and learning rate" : "");
        if (k == first)
            emit_step_start(ec);
        first = -1; /* the counter once */
        snprintf(at, sizeof at, " + %s_%s", ec->uprefix, emit_upper(g->nodes[v->node].name, up, sizeof up));
        if (step_writes(g, e, v->grad))
            snprintf(grad, sizeof grad, "%s", g->nodes[v->grad].name);
        else
            snprintf(grad, sizeof grad, "s->grads%s", at);
        snprintf(count, sizeof count, "%zu", v->count);
        if (clip && g->opt.clipvalue > 0.0f)
            text_printf(ec->t, "    clip_value(%s, %s); /* clipvalue: into [-%s, %s] */\n", grad, count, num, num);
        else if (clip)
            text_printf(ec->t, "    clip_norm(%s, %s); /* clipnorm: to an L2 norm of at most %s */\n", grad, count,
                        num);
        emit_update_call(ec, r, at, grad, count);
        text_printf(ec->t, " /* %s */\n", v->name);
    }
}

/* The runtime descriptor's fields of the schedule (NAME_main.c): its
 * function and its name; nothing without a schedule. */
void emit_schedule_fields(emit_ctx *ec, text *t)
{
    cg_schedule_kind k = ec->g->opt.schedule.kind;
    if (k != CG_SCHEDULE_NONE)
        text_printf(t, "        .learning_rate = %s_learning_rate,\n        .lr_schedule = \"%s\",\n", ec->prefix,
                    optim_schedule_name(k));
}

/* The header's declaration of NAME_learning_rate, when the optimizer has a schedule. */
void emit_optim_prototypes(emit_ctx *ec, text *t)
{
    if (ec->g->opt.schedule.kind == CG_SCHEDULE_NONE)
        return;
    text_printf(t,
                "/* The learning rate of optimizer step `step`, counted from 0 (%s); the step sets s->lr to it. */\n"
                "float %s_learning_rate(int step);\n",
                optim_schedule_name(ec->g->opt.schedule.kind), ec->prefix);
}
