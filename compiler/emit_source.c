/* emit_source.c: NAME.c: the parameter table, initialisation, the
 * optimizer's loop, one kernel per node, the entry points and their checked
 * forms. */
#include "cgrad_int.h"

#include <math.h>
#include <string.h>

/* One initialisation call per parameter, each from its own seeded stream. */
static void emit_init_calls(emit_ctx *ec, text *t, const char *pu, bool *used_uniform, bool *used_normal,
                            bool *used_orthogonal)
{
    cg_graph *g = ec->g;
    char up[128], a[48], b[48], sb[64];
    for (int i = 0; i < g->nvars; i++) {
        const var *v = &g->vars[i];
        const node *n = &g->nodes[v->node];
        char dst[384];
        snprintf(dst, sizeof dst, "s->params + %s_%s, %zu", pu, emit_upper(n->name, up, sizeof up), v->count);
        bool constant = v->init.kind == CG_INIT_ZEROS || v->init.kind == CG_INIT_DEFAULT ||
                        v->init.kind == CG_INIT_ONES || v->init.kind == CG_INIT_CONSTANT;
        if (constant) /* draws nothing: no stream */
            text_printf(t, "    /* %s %s */\n", v->name, shape_str(&n->sh, sb, sizeof sb));
        else
            text_printf(t, "    rng = seed * 0x9E3779B97F4A7C15ull + %d; /* %s %s: its own stream */\n", i + 1, v->name,
                        shape_str(&n->sh, sb, sizeof sb));
        switch (v->init.kind) {
        case CG_INIT_ZEROS:
        case CG_INIT_DEFAULT: text_printf(t, "    init_constant(%s, 0.0f);\n", dst); break;
        case CG_INIT_ONES: text_printf(t, "    init_constant(%s, 1.0f);\n", dst); break;
        case CG_INIT_CONSTANT:
            text_printf(t, "    init_constant(%s, %s);\n", dst, emit_float(v->init.a, a, sizeof a));
            break;
        case CG_INIT_UNIFORM:
            text_printf(t, "    init_uniform(%s, %s, %s, &rng);\n", dst, emit_float(v->init.a, a, sizeof a),
                        emit_float(v->init.b, b, sizeof b));
            *used_uniform = true;
            break;
        case CG_INIT_NORMAL:
            text_printf(t, "    init_normal(%s, %s, %s, 0, &rng);\n", dst, emit_float(v->init.a, a, sizeof a),
                        emit_float(v->init.b, b, sizeof b));
            *used_normal = true;
            break;
        case CG_INIT_GLOROT_UNIFORM: {
            float limit = sqrtf(6.0f / (float)(v->fan_in + v->fan_out));
            text_printf(t, "    /* Glorot uniform: limit sqrt(6 / (fan_in %d + fan_out %d)) */\n", v->fan_in,
                        v->fan_out);
            text_printf(t, "    init_uniform(%s, -%s, %s, &rng);\n", dst, emit_float(limit, a, sizeof a), a);
            *used_uniform = true;
            break;
        }
        case CG_INIT_HE_NORMAL: {
            float std = sqrtf(2.0f / (float)v->fan_in) / 0.87962566f;
            text_printf(t, "    /* He normal: truncated N(0, 2 / fan_in %d), rescaled for the truncation */\n",
                        v->fan_in);
            text_printf(t, "    init_normal(%s, 0.0f, %s, 1, &rng);\n", dst, emit_float(std, a, sizeof a));
            *used_normal = true;
            break;
        }
        case CG_INIT_ORTHOGONAL: {
            long rows = n->sh.rank >= 2 ? (long)v->count / n->sh.d[n->sh.rank - 1] : 1;
            text_printf(t, "    init_orthogonal(s->params + %s_%s, %ld, %ld, &rng);\n", pu,
                        emit_upper(n->name, up, sizeof up), rows, (long)v->count / rows);
            *used_orthogonal = true;
            break;
        }
        }
        if (v->ones_count > 0)
            text_printf(t,
                        "    init_constant(s->params + %s_%s + %d, %d, 1.0f); /* unit_forget_bias: the forget gate's "
                        "bias starts at 1 */\n",
                        pu, emit_upper(n->name, up, sizeof up), v->ones_begin, v->ones_count);
    }
}

/* NAME_init's body when the weights are const arrays: a copy of each into
 * the parameter block (training on the device starts from them). */
static void weight_copies(emit_ctx *ec, text *t)
{
    cg_graph *g = ec->g;
    char up[128], sb[64];
    text_puts(t, "    (void)seed; /* the weights come from the checkpoint, not from a seed */\n");
    for (int i = 0; i < g->nvars; i++) {
        const var *v = &g->vars[i];
        const node *n = &g->nodes[v->node];
        text_printf(t, "    for (long i = 0; i < %zu; i++) /* %s %s */\n        s->params[%s_%s + i] = %s_%s[i];\n",
                    v->count, v->name, shape_str(&n->sh, sb, sizeof sb), ec->uprefix,
                    emit_upper(n->name, up, sizeof up), ec->prefix, n->name);
    }
}

/* The parameter table (NAME_params_info) and NAME_init, with only the
 * initialisers the parameters use. */
static int emit_init(emit_ctx *ec, text *c)
{
    cg_graph *g = ec->g;
    const char *p = ec->prefix, *pu = ec->uprefix;
    text_printf(c, "\nconst %s_param_info %s_params_info[%s_NUM_PARAMS] = {\n", p, p, pu);
    for (int i = 0; i < g->nvars; i++) {
        const var *v = &g->vars[i];
        const shape *s = &g->nodes[v->node].sh;
        text_printf(c, "    {\"%s\", %d, {%d, %d, %d, %d}, %zu, %zu, %d},\n", v->name, s->rank,
                    s->rank > 0 ? s->d[0] : 1, s->rank > 1 ? s->d[1] : 1, s->rank > 2 ? s->d[2] : 1,
                    s->rank > 3 ? s->d[3] : 1, v->offset, v->count, v->trainable);
    }
    text_puts(c, "};\n\n");
    if (g->dep.predict_only && g->dep.weights)
        return 0; /* const weights and nothing to train: nothing to initialise */
    text calls = {0}, zero = {0}, init_calls = {0};
    bool used_uniform = false, used_normal = false, used_orthogonal = false;
    if (g->dep.weights)
        weight_copies(ec, &init_calls);
    else
        emit_init_calls(ec, &calls, pu, &used_uniform, &used_normal, &used_orthogonal);
    bool streams = used_uniform || used_normal || used_orthogonal;
    if (!g->dep.weights)
        text_puts(&init_calls, streams ? "    uint64_t rng;\n" : "    (void)seed;\n");
    text_puts(&init_calls, calls.s ? calls.s : "");
    bool po = g->dep.predict_only, has_dropout = deploy_has_dropout(g);
    if (!po && g->trainable_floats)
        text_printf(&zero, "    init_constant(s->grads, %s_TRAINABLE_FLOATS, 0.0f);\n", pu);
    if (!po && g->opt_floats)
        text_printf(&zero, "    init_constant(s->opt, %s_OPT_FLOATS, 0.0f);\n", pu);
    char lr[48], state[128];
    emit_float(g->has_opt ? optim_initial_lr(&g->opt) : 0.01f, lr, sizeof lr);
    snprintf(state, sizeof state, po ? "" : "    s->lr = %s;\n    s->step = 0;\n", lr);
    const char *kv[] = {"NAME",       p,
                        "UNAME",      pu,
                        "INIT_CALLS", init_calls.s ? init_calls.s : "",
                        "ZERO",       zero.s ? zero.s : "",
                        "STATE_INIT", state,
                        "RNG_INIT",   has_dropout && !po ? "    s->rng = seed ^ 0x2545F4914F6CDD1Dull;\n" : "",
                        NULL};
    int rc = 0;
    if (streams)
        rc |= text_template(c, "init/rng", kv);
    if (used_uniform)
        rc |= text_template(c, "init/uniform", kv);
    if (used_normal)
        rc |= text_template(c, "init/normal", kv);
    if (used_orthogonal)
        rc |= text_template(c, "init/orthogonal", kv);
    if ((init_calls.s && strstr(init_calls.s, "init_constant(")) || zero.s)
        rc |= text_template(c, "init/constant", kv);
    rc |= text_template(c, "init/body", kv);
    text_free(&calls), text_free(&zero), text_free(&init_calls);
    return rc;
}

/* The optimizer's update function, from its row's template: its
 * hyperparameters as keys, then the row's own keys. */
static int emit_optimizer(emit_ctx *ec, text *c)
{
    const cg_optimizer *o = &ec->g->opt;
    const optim_row *r = optim_row_of(o);
    const char *kv[2 * OPTION_COUNT + 33];
    char val[OPTION_COUNT][48];
    int n = 0;
    for (int k = 0; r && k < OPTION_COUNT; k++)
        if (optim_options[k].key && ((r->options | OPTIONS_EVERY) >> k & 1)) {
            kv[n++] = optim_options[k].key;
            kv[n++] = emit_float(optim_value(o, k), val[k], sizeof val[k]);
        }
    for (int k = 0; r && r->keys[k] && n < 2 * OPTION_COUNT + 32; k++)
        kv[n++] = r->keys[k];
    kv[n] = NULL;
    text_puts(c, "/* ---- optimizer ------------------------------------------------------------ */\n\n");
    return r ? text_template(c, r->tmpl[ec->flavour], kv) | emit_optim_extras(ec, c) : -1;
}

/* Writes NAME.c into c; returns -1 when a template failed. */
int emit_source(emit_ctx *ec, text *c)
{
    cg_graph *g = ec->g;
    const char *p = ec->prefix;
    /* host code may call the shim from any kernel (GEMMs, split loops, sums of rows) and the optimizer */
    const char *kv[] = {"NAME",
                        p,
                        "VERSION",
                        CG_VERSION,
                        "SOURCE",
                        ec->source,
                        "FLAVOUR",
                        ec->flavour == CG_HOST ? "host (GEMM shim over OpenBLAS, fused epilogues)"
                                               : "portable (plain loops: no heap, no stdio, no BLAS)",
                        "INCLUDES",
                        ec->flavour == CG_HOST ? "#include <cgrad_gemm.h>\n" : "",
                        NULL};
    int rc = text_template(c, "source_head", kv);
    emit_constants(ec, c);
    rc |= emit_init(ec, c);
    if (deploy_updates(g))
        rc |= emit_optimizer(ec, c);
    if (ec->flavour == CG_HOST && seq_needs_math(g))
        rc |= text_template(c, "kernels/rnn_math_host", kv);
    /* kernels: every node some entry computes, in graph order */
    text *out = ec->t;
    ec->t = c;
    text_puts(c, "/* ---- kernels: one per node, grouped by layer in forward order ------------- */\n\n");
    emit_groups(ec);
    if (g->model)
        text_puts(c, "/* ---- the forward pass of each mode --------------------------------------- */\n\n");
    emit_forwards(ec);
    text_puts(c, "/* ---- entry points --------------------------------------------------------- */\n\n");
    for (int k = 0; k < g->nentries; k++)
        emit_entry(ec, &g->entries[k]);
    for (int k = 0; k < g->nentries; k++)
        emit_checked(ec, &g->entries[k]);
    if (!g->model && deploy_updates(g)) { /* the tape's optimizer, for the caller's own loop */
        text_printf(c,
                    "/* Applies the optimizer to the parameters, from the gradients in s->grads:\n"
                    " * call it after %s_gradients (and after any change made to s->grads). */\n"
                    "void %s_apply_gradients(%s_state *s)\n{",
                    p, p, p);
        emit_update(ec);
        text_puts(c, "}\n\n");
    }
    ec->t = out;
    if (!c->oom && c->s) {
        c->len -= c->len > 1 && c->s[c->len - 2] == '\n'; /* one newline at the end */
        c->s[c->len] = 0;
    }
    return rc;
}
