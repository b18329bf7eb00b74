/* emit_header.c: NAME.h, what a caller of the emitted code sees: the
 * summary, the sizes (batch, features, every block of memory in floats and
 * bytes), the parameter offsets, the state struct and the entry points. */
#include "cgrad_int.h"

#include <string.h>

/* Appends "#define UNAME_VAR offset" lines for every parameter. */
static void emit_offsets(emit_ctx *ec, text *t, const char *pu)
{
    cg_graph *g = ec->g;
    char up[128], sb[64];
    for (int i = 0; i < g->nvars; i++) {
        const var *v = &g->vars[i];
        const node *n = &g->nodes[v->node];
        text_printf(t, "#define %s_%s %zu /* %s %s%s */\n", pu, emit_upper(n->name, up, sizeof up), v->offset, v->name,
                    shape_str(&n->sh, sb, sizeof sb), v->trainable ? "" : ", not trainable");
    }
}

/* The header comment: the summary with " * " before each line. */
static void comment_lines(text *t, const char *s)
{
    while (s && *s) {
        size_t len = strcspn(s, "\n");
        text_printf(t, " * %.*s\n", (int)len, s);
        s += len + (s[len] == '\n');
    }
}

/* The optimizer's state, in words, for the header. */
static const char *opt_words(const cg_graph *g)
{
    const optim_row *r = g->has_opt ? optim_row_of(&g->opt) : NULL;
    return r ? r->words : "none: the caller updates the parameters";
}

/* What a sample is: the model's input, output and label, or each
 * placeholder and output of a tape graph. */
static void emit_io_defines(emit_ctx *ec, text *io)
{
    cg_graph *g = ec->g;
    cg_model *m = g->model;
    const char *pu = ec->uprefix;
    if (m) {
        int out_features = 0, label_features = 0;
        for (int k = 0; k < m->noutputs; k++) {
            out_features += (int)shape_size(&g->nodes[m->outputs_infer[k]].sh, 1);
            label_features += (int)shape_size(&g->nodes[m->labels[k]].sh, 1);
        }
        text_printf(
            io,
            "#define %s_IN_FEATURES %d          /* floats per input sample */\n"
            "#define %s_OUT_FEATURES %d        /* floats per output sample */\n"
            "#define %s_LABEL_FEATURES %d    /* floats per label */\n"
            "#define %s_NUM_METRICS %d       /* values beside the loss that train_step and eval_step report */\n",
            pu, (int)shape_size(&m->input, 1), pu, out_features, pu, label_features, pu, m->nmetrics);
    }
    for (int i = 0; !m && i < g->ninputs; i++) {
        const node *ph = &g->nodes[g->inputs[i]];
        char up[128], sb[64];
        bool batched = shape_batched(&ph->sh);
        text_printf(io, "#define %s_%s_FLOATS %ld /* %s %s: floats %s */\n", pu, emit_upper(ph->name, up, sizeof up),
                    shape_size(&ph->sh, 1), ph->name, shape_str(&ph->sh, sb, sizeof sb),
                    batched ? "per sample" : "in all");
    }
    for (int k = 0; !m && k < g->nentries; k++) /* a tape's outputs (cg_output) */
        for (int i = 0; g->entries[k].kind == ENTRY_PREDICT && i < g->entries[k].nout; i++) {
            const node *o = &g->nodes[g->entries[k].out[i]];
            char up[128], sb[64];
            text_printf(io, "#define %s_%s_FLOATS %ld /* output %s %s: floats %s */\n", pu,
                        emit_upper(g->entries[k].out_names[i], up, sizeof up), shape_size(&o->sh, 1),
                        g->entries[k].out_names[i], shape_str(&o->sh, sb, sizeof sb),
                        shape_batched(&o->sh) ? "per sample" : "in all");
        }
}

/* The members of the state struct: those the build uses (a predict-only
 * build has no gradients, optimizer state or step; const weights are not
 * in it; a model with nothing to train has no gradient block). */
static void state_fields(emit_ctx *ec, text *t)
{
    cg_graph *g = ec->g;
    const char *pu = ec->uprefix;
    bool po = g->dep.predict_only, dropout = deploy_has_dropout(g);
    if (!(po && g->dep.weights))
        text_printf(t, "    float params[%s_PARAM_FLOATS];\n", pu);
    if (!po && g->trainable_floats)
        text_printf(t, "    float grads[%s_TRAINABLE_FLOATS];\n", pu);
    if (!po && g->opt_floats)
        text_printf(t, "    float opt[%s_OPT_FLOATS];\n", pu);
    text_printf(t, "    float arena[%s_ARENA_FLOATS];\n", pu);
    if (!po)
        text_puts(t, "    float lr;      /* learning rate */\n    int step;      /* optimizer steps taken */\n");
    if (!po && dropout)
        text_puts(t, "    uint64_t rng;  /* generator of the dropout masks */\n");
}

/* The declaration of NAME_init (none when the weights are const and
 * predict is all there is), after that of the const weights. */
static void init_declaration(emit_ctx *ec, text *t)
{
    cg_graph *g = ec->g;
    if (g->dep.weights)
        deploy_weight_decls(ec, t);
    if (g->dep.weights && g->dep.predict_only)
        return;
    if (g->dep.weights)
        text_puts(t, "/* Copies the weights above into s->params, zeroes gradients and optimizer state;\n"
                     " * seed is not used. */\n");
    else if (g->dep.predict_only)
        text_puts(t, "/* Initialises the weights from seed (as the model asked: Glorot, He, ...). */\n");
    else
        text_puts(t, "/* Initialises the weights from seed (as the model asked: Glorot, He, ...),\n"
                     " * zeroes gradients and optimizer state. */\n");
    text_printf(t, "void %s_init(%s_state *s, uint64_t seed);\n", ec->prefix, ec->prefix);
}

/* Writes NAME.h into h; returns -1 when a template failed. */
int emit_header(emit_ctx *ec, text *h)
{
    cg_graph *g = ec->g;
    const char *p = ec->prefix, *pu = ec->uprefix;
    text summary = {0}, offsets = {0}, protos = {0}, io = {0};
    comment_lines(&summary, graph_summary(g));
    emit_offsets(ec, &offsets, pu);
    emit_prototypes(ec, &protos);
    emit_io_defines(ec, &io);
    size_t arena_floats = 1;
    for (int k = 0; k < g->nentries; k++)
        if (g->entries[k].arena_floats > arena_floats)
            arena_floats = g->entries[k].arena_floats;
    text fields = {0}, sheet = {0}, init = {0};
    state_fields(ec, &fields);
    deploy_datasheet(ec, &sheet);
    init_declaration(ec, &init);
    char guard[256], num[6][48];
    snprintf(guard, sizeof guard, "%s_H", pu);
    snprintf(num[0], 48, "%d", g->max_batch);
    snprintf(num[1], 48, "%zu", g->param_floats);
    snprintf(num[2], 48, "%zu", g->trainable_floats);
    snprintf(num[3], 48, "%zu", g->opt_floats);
    snprintf(num[4], 48, "%zu", arena_floats);
    snprintf(num[5], 48, "%d", g->nvars);
    const char *kv[] = {"NAME",
                        p,
                        "UNAME",
                        pu,
                        "VERSION",
                        CG_VERSION,
                        "SOURCE",
                        ec->source,
                        "SUMMARY",
                        summary.s ? summary.s : "",
                        "GUARD",
                        guard,
                        "MAX_BATCH",
                        num[0],
                        "IO_DEFINES",
                        io.s ? io.s : "",
                        "PARAM_FLOATS",
                        num[1],
                        "TRAINABLE_FLOATS",
                        num[2],
                        "OPT_FLOATS",
                        num[3],
                        "ARENA_FLOATS",
                        num[4],
                        "NUM_PARAMS",
                        num[5],
                        "OPTIMIZER",
                        opt_words(g),
                        "OFFSETS",
                        offsets.s ? offsets.s : "",
                        "STATE_FIELDS",
                        fields.s ? fields.s : "",
                        "PROTOTYPES",
                        protos.s ? protos.s : "",
                        "DATASHEET",
                        sheet.s ? sheet.s : "",
                        "INIT_DECL",
                        init.s ? init.s : "",
                        NULL};
    int rc = text_template(h, "header", kv);
    text_free(&summary), text_free(&offsets), text_free(&protos), text_free(&io);
    text_free(&fields), text_free(&sheet), text_free(&init);
    return rc;
}
