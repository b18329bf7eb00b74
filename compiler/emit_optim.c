/* emit_optim.c: what the optimizer's step does besides its update rule:
 * gradient clipping (Keras' clipnorm, clipvalue, global_clipnorm) of
 * s->grads before the update, and the learning-rate schedule,
 * NAME_learning_rate(step), which sets s->lr at every step. Both are
 * written only when the optimizer asks for them. */
#include "cgrad_int.h"

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

/* The lines of the step between its counter and the update: the
 * schedule's learning rate, then the clipping of s->grads (per parameter
 * for clipnorm, the whole block for global_clipnorm and clipvalue). */
void emit_step_extras(emit_ctx *ec)
{
    cg_graph *g = ec->g;
    const cg_optimizer *o = &g->opt;
    char up[128], num[48];
    float bound;
    if (o->schedule.kind != CG_SCHEDULE_NONE)
        text_printf(ec->t, "    s->lr = %s_learning_rate(s->step - 1); /* %s, at the step counted from 0 */\n",
                    ec->prefix, optim_schedule_name(o->schedule.kind));
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
