/* emit_group.c: NAME.c's kernels laid out per layer, in forward order. Under
 * one banner per layer ("dense_2 = Dense(128, relu)") come the layer's
 * forward kernels, its backward kernels, then the chain rule that its
 * nodes' gradient rules apply, in the rules' own words (op_family.words)
 * with a legend naming the buffers. A node outside
 * layers (a tape's op) is a group of its own, and so are the backward nodes
 * its rule made. Also the seed of the backward pass in the entry points. */
#include "cgrad_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* The forward node whose group holds node id: id itself, or for a backward
 * node the node whose rule made it. */
static int owner_of(const cg_graph *g, int id)
{
    const node *n = &g->nodes[id];
    return n->backward && n->grad_of >= 0 ? n->grad_of : id;
}

/* True when nodes a and b are of one group: the same layer, or (outside
 * layers) the same owner. */
static bool same_group(const cg_graph *g, int a, int b)
{
    int oa = owner_of(g, a), ob = owner_of(g, b);
    int la = g->nodes[oa].layer, lb = g->nodes[ob].layer;
    return la >= 0 ? la == lb : lb < 0 && oa == ob;
}

/* The layer's model spec ("Dense", its options), NULL for layers without one (the loss). */
static const cg_layer *layer_spec(const cg_graph *g, int li)
{
    for (int k = 0; g->model && k < g->model->nml; k++)
        if (g->model->ml[k].li == li)
            return &g->model->ml[k].spec;
    return NULL;
}

/* "Dense(128, relu)": layer li as a Keras user wrote it, its main options. */
static const char *layer_title(const cg_graph *g, int li, char *buf, size_t size)
{
    const cg_layer *l = layer_spec(g, li);
    const char *kind = g->layers[li].kind;
    if (!l) {
        snprintf(buf, size, "%s", kind);
        return buf;
    }
    const cg_conv_opts *c = &l->conv;
    switch (l->kind) {
    case CG_LAYER_DENSE:
        snprintf(buf, size, "%s(%d%s%s)", kind, l->dense.units, l->dense.activation ? ", " : "",
                 l->dense.activation ? emit_act_name(l->dense.activation) : "");
        break;
    case CG_LAYER_CONV2D:
    case CG_LAYER_CONV1D:
        snprintf(buf, size, "%s(%d, %d%s%s%s)", kind, c->filters, c->kernel_size, c->padding == CG_SAME ? ", same" : "",
                 c->activation ? ", " : "", c->activation ? emit_act_name(c->activation) : "");
        break;
    case CG_LAYER_MAX_POOL2D:
    case CG_LAYER_AVG_POOL2D: snprintf(buf, size, "%s(%d)", kind, l->pool.pool_size ? l->pool.pool_size : 2); break;
    case CG_LAYER_DROPOUT: snprintf(buf, size, "%s(%g)", kind, (double)l->misc.rate); break;
    case CG_LAYER_ACTIVATION: snprintf(buf, size, "%s(%s)", kind, emit_act_name(l->activation)); break;
    case CG_LAYER_SIMPLE_RNN:
    case CG_LAYER_LSTM:
    case CG_LAYER_GRU: snprintf(buf, size, "%s(%d)", kind, l->rnn.units); break;
    case CG_LAYER_EMBEDDING:
        snprintf(buf, size, "%s(%d, %d)", kind, l->embedding.input_dim, l->embedding.output_dim);
        break;
    case CG_LAYER_CUSTOM: snprintf(buf, size, "%s (a custom layer)", l->custom_kind ? l->custom_kind : kind); break;
    default: snprintf(buf, size, "%s()", kind);
    }
    return buf;
}

/* The group banner: "==== dense_2 = Dense(128, relu) (model.c:9) ====". */
static void group_banner(emit_ctx *ec, int owner)
{
    cg_graph *g = ec->g;
    const node *n = &g->nodes[owner];
    char line[512], title[160];
    if (n->layer >= 0)
        snprintf(line, sizeof line, "/* ==== %s = %s (%s:%d) ", g->layers[n->layer].name,
                 layer_title(g, n->layer, title, sizeof title), emit_source_file(g, g->layers[n->layer].src.file),
                 g->layers[n->layer].src.line);
    else
        snprintf(line, sizeof line, "/* ==== %s: %s (%s:%d) ", n->name, op_table[n->op].name,
                 emit_source_file(g, n->src.file), n->src.line);
    size_t len = strlen(line);
    text_printf(ec->t, "%s%.*s */\n\n", line, len < 76 ? (int)(76 - len) : 4,
                "============================================================================");
}

/* The legend of a rule's words: which buffer each of their symbols is, in
 * the order the words first use them. */
typedef struct legend {
    const char *words;
    int n;
    struct {
        long pos;       /* of the symbol's first use in the words */
        char text[200]; /* "dZ = d_dense_1_z" */
    } item[24];
} legend;

/* Adds "sym = what" when sym is a whole word of the legend's words. */
static void legend_add(legend *l, const char *sym, const char *what)
{
    size_t len = strlen(sym);
    for (const char *p = strstr(l->words, sym); p && l->n < 24; p = strstr(p + 1, sym)) {
        bool start = p == l->words || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        bool end = !(isalnum((unsigned char)p[len]) || p[len] == '_');
        if (!start || !end)
            continue;
        for (int i = 0; i < l->n; i++)
            if (!strncmp(l->item[i].text, sym, len) && l->item[i].text[len] == ' ')
                return; /* named already */
        l->item[l->n].pos = p - l->words;
        snprintf(l->item[l->n++].text, sizeof l->item[0].text, "%s = %s", sym, what);
        return;
    }
}

/* A node's value as the legend names it: its buffer, or a constant's literal. */
static const char *legend_value(cg_graph *g, int id, char *buf, size_t size)
{
    const node *n = &g->nodes[id];
    if (n->op != OP_CONST)
        return n->name;
    emit_float(n->alpha, buf, size);
    if (n->per_n)
        strncat(buf, " / n", size - strlen(buf) - 1);
    return buf;
}

/* Appends the items of l in the order of their symbols' first use, as
 * comment lines after lead, wrapped before 110 columns. */
static void legend_put(text *t, legend *l, const char *lead)
{
    size_t col = 0;
    for (int done = 0; done < l->n; done++) {
        int pick = -1;
        for (int i = 0; i < l->n; i++)
            if (l->item[i].pos >= 0 && (pick < 0 || l->item[i].pos < l->item[pick].pos))
                pick = i;
        size_t len = strlen(l->item[pick].text);
        if (done == 0 || col + len + 2 > 110) {
            text_printf(t, "%s%s%s", done ? ",\n" : "", lead, done ? "     " : "with ");
            col = strlen(lead) + 5;
        } else {
            text_puts(t, ", ");
            col += 2;
        }
        text_puts(t, l->item[pick].text);
        col += len;
        l->item[pick].pos = -1;
    }
    text_puts(t, l->n ? "\n" : "");
}

/* The legend of forward node c's rule: which buffer each symbol of its words is. */
static void rule_legend(emit_ctx *ec, int c, legend *l, const bool *sched)
{
    cg_graph *g = ec->g;
    const node *cn = &g->nodes[c];
    const ad_rule *r = &g->ad_rules[c];
    char an[16], sym[20], lit[160];
    legend_add(l, "Y", cn->name);
    legend_add(l, "dY", c == g->ad_loss ? "1, the seed (d loss / d loss)" : legend_value(g, r->dy, lit, sizeof lit));
    for (int k = 0; k < cn->nin; k++) {
        kernel_arg_name(cn, k, an, sizeof an);
        legend_add(l, an, legend_value(g, cn->in[k], lit, sizeof lit));
    }
    for (int id = 0; id < g->nnodes; id++) { /* what the rule made: dZ, dX, dW, ... */
        const node *b = &g->nodes[id];
        if (!sched[id] || !b->backward)
            continue;
        if (b->op == OP_MAX_POOL_BWD && b->act != CG_LINEAR && b->in[0] == c) { /* c's dZ, in a pooling's gradient */
            int li = g->nodes[owner_of(g, id)].layer;
            snprintf(lit, sizeof lit, "%s (in %s's backward)", b->name, li >= 0 ? g->layers[li].name : "");
            legend_add(l, "dZ", lit);
        }
        if (b->grad_of != c)
            continue;
        const char *value = legend_value(g, id, lit, sizeof lit); /* a constant's literal */
        if (b->grad_role == GRAD_DZ)
            legend_add(l, "dZ", value);
        else if (b->grad_role == GRAD_STEP && op_table[b->op].cat == CAT_SEQ) /* a recurrence's loop back */
            legend_add(l, "dG", value);
        else if (b->grad_role == GRAD_STEP && b->op == OP_SLICE && b->in[0] == c && op_table[cn->op].cat == CAT_SEQ)
            legend_add(l, "H_prev", value);
        else if (b->grad_role >= GRAD_DX && b->grad_role - GRAD_DX < cn->nin) {
            kernel_arg_name(cn, b->grad_role - GRAD_DX, an, sizeof an);
            snprintf(sym, sizeof sym, "d%s", an);
            legend_add(l, sym, value);
        }
    }
}

/* Appends the words of rule c to buf: with a max pooling whose gradient has
 * an activation's derivative fused in, that too. */
static bool rule_words(cg_graph *g, int c, const bool *sched, char *buf, size_t size)
{
    const op_family *f = op_table[g->nodes[c].op].family;
    char raw[1024];
    if (!f->words || !f->words(g, c, g->ad_rules[c].inputs, raw, sizeof raw))
        return false;
    text named = {0}; /* act and ract: the node's activations by name */
    kernel_words(g, c, raw, &named);
    snprintf(buf, size, "%s", named.s ? named.s : "");
    text_free(&named);
    for (int id = 0; id < g->nnodes; id++) {
        const node *b = &g->nodes[id];
        if (sched[id] && b->backward && b->grad_of == c && b->op == OP_MAX_POOL_BWD && b->act != CG_LINEAR) {
            int li = g->nodes[b->in[0]].layer;
            words_term(buf, size, "times %s'(X) (%s's activation, fused in): dX is %s's dZ", emit_act_name(b->act),
                       li >= 0 ? g->layers[li].name : "", li >= 0 ? g->layers[li].name : "");
        }
    }
    return true;
}

/* The "; " that ends the term of the words at s (outside brackets), NULL for the last term. */
static char *term_end(char *s)
{
    int depth = 0;
    for (; *s; s++) {
        depth += *s == '[' || *s == '(' ? 1 : *s == ']' || *s == ')' ? -1 : 0;
        if (depth == 0 && s[0] == ';' && s[1] == ' ')
            return s;
    }
    return NULL;
}

/* The chain-rule block of the group of node `owner`: per forward node whose
 * rule backward runs, from the last to the first, its rule's words and the
 * buffers they name. Nothing when no rule runs. */
static void chain_block(emit_ctx *ec, int owner, const bool *sched)
{
    cg_graph *g = ec->g;
    char words[1024];
    bool any = false;
    for (int c = g->ad_nrules - 1; c >= 0; c--) {
        const node *cn = &g->nodes[c];
        if (!sched[c] || cn->backward || g->ad_rules[c].dy < 0 || !same_group(g, c, owner) ||
            !rule_words(g, c, sched, words, sizeof words))
            continue;
        if (!any)
            text_printf(ec->t, "/* %s, backward: the chain rule, in the words of each node's gradient rule\n",
                        cn->layer >= 0 ? g->layers[cn->layer].name : cn->name);
        any = true;
        const node *dy = &g->nodes[g->ad_rules[c].dy]; /* read by several nodes: their gradients add up */
        if (dy->backward && dy->grad_role == GRAD_SUM && dy->grad_of == c)
            text_printf(ec->t, " *   %s = %s + %s: the gradients from the nodes that read %s add up\n", dy->name,
                        g->nodes[dy->in[0]].name, g->nodes[dy->in[1]].name, cn->name);
        text_printf(ec->t, " *   %s (%s):", cn->name, op_table[cn->op].name);
        if (strlen(words) + strlen(cn->name) < 90)
            text_printf(ec->t, " %s\n", words);
        else /* a term a line */
            for (char *term = words, *end; term; term = end ? end + 2 : NULL) {
                end = term_end(term);
                text_printf(ec->t, "\n *       %.*s%s", end ? (int)(end - term) : (int)strlen(term), term,
                            end ? ";" : "\n");
            }
        legend l = {.words = words};
        rule_legend(ec, c, &l, sched);
        legend_put(ec->t, &l, " *     ");
    }
    if (any)
        text_puts(ec->t, " */\n\n");
}

/* Writes the kernels of NAME.c group by group, in forward order: every node
 * some entry point computes. */
void emit_groups(emit_ctx *ec)
{
    cg_graph *g = ec->g;
    int nn = g->nnodes;
    bool *sched = calloc((size_t)nn + 1, sizeof(bool)), *done = calloc((size_t)nn + 1, sizeof(bool));
    if (!sched || !done) {
        free(sched), free(done);
        ec->t->oom = true;
        return;
    }
    for (int k = 0; k < g->nentries; k++)
        for (int j = 0; j < g->entries[k].nsched; j++)
            sched[g->entries[k].sched[j]] = true;
    for (int o = 0; o < nn; o++) { /* groups in the order of their first forward node */
        int owner = owner_of(g, o) == o && sched[o] ? o : -1;
        for (int id = 0; owner < 0 && id < nn; id++) /* a group whose only nodes are backward */
            owner = sched[id] && g->nodes[id].backward && owner_of(g, id) == o ? o : -1;
        if (owner < 0 || done[owner])
            continue;
        bool kernels = false;
        for (int id = 0; id < nn && !kernels; id++)
            kernels = sched[id] && node_has_kernel(g, id) && same_group(g, id, owner);
        for (int id = 0; id < nn; id++) /* the group, seen once */
            done[id] = done[id] || same_group(g, id, owner);
        if (!kernels)
            continue;
        group_banner(ec, owner);
        for (int pass = 0; pass < 2; pass++) /* forward kernels, then backward ones */
            for (int id = 0; id < nn; id++)
                if (sched[id] && node_has_kernel(g, id) && g->nodes[id].backward == (pass == 1) &&
                    same_group(g, id, owner))
                    emit_kernel(ec, id);
        chain_block(ec, owner, sched);
    }
    free(sched), free(done);
}

/* The start of the chain rule in entry e, before its first backward kernel:
 * the seed d loss / d loss = 1, then each gradient that is a constant (the
 * mean's 1 / n), which the kernels reading it have as a literal. */
void emit_seed(emit_ctx *ec, const entry *e)
{
    cg_graph *g = ec->g;
    char lit[64], words[1024];
    for (int k = e->nsched - 1; k >= 0; k--) {
        int c = e->sched[k];
        if (c >= g->ad_nrules || g->nodes[c].backward || g->ad_rules[c].dy < 0 ||
            g->nodes[g->ad_rules[c].dy].op != OP_CONST)
            continue;
        legend_value(g, g->ad_rules[c].dy, lit, sizeof lit);
        if (c == g->ad_loss) {
            text_printf(ec->t, "    /* the seed: d_%s = %s (d loss / d loss) */\n", g->nodes[c].name, lit);
            continue;
        }
        int from = g->ad_rules[c].from;
        const op_family *f = from >= 0 ? op_table[g->nodes[from].op].family : NULL;
        if (!f || !f->words || !f->words(g, from, g->ad_rules[from].inputs, words, sizeof words))
            snprintf(words, sizeof words, "%s", op_table[g->nodes[from < 0 ? c : from].op].formula);
        text_printf(ec->t,
                    "    /* d_%s = %s, by the rule of %s (%s): %s;\n"
                    "     * a constant, so the kernels that read it have it as a literal */\n",
                    g->nodes[c].name, lit, from >= 0 ? g->nodes[from].name : "?",
                    op_table[g->nodes[from >= 0 ? from : c].op].name, words);
    }
}
