/* model.c: Sequential, functional and custom models: inputs, layer
 * objects made and called in both modes (training and inference), and the
 * outputs. Compiling a model is compile.c's; its losses and metrics, loss.c's. */
#include "cgrad_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* A model with an empty graph. */
static cg_model *model_new(cg_src src, const char *name)
{
    cg_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->g = graph_new(src, "model", name);
    if (!m->g) {
        free(m);
        return NULL;
    }
    m->g->model = m;
    m->name = m->g->name;
    m->src = src;
    m->x = m->y = m->out = m->out_train = m->loss = -1;
    return m;
}

/* Public: a Sequential model over samples of shape `input`. */
cg_model *cg_sequential_at(cg_src src, const char *name, cg_shape input)
{
    cg_model *m = model_new(src, name);
    if (!m)
        return NULL;
    if (input.rank < 1 || input.rank >= CG_MAX_RANK) {
        graph_error(m->g, src, -1, "%s: the input shape needs 1 to %d dimensions (without the batch), got %d", m->name,
                    CG_MAX_RANK - 1, input.rank);
        return m;
    }
    cg_shape with_batch = {input.rank + 1, {CG_BATCH}};
    for (int i = 0; i < input.rank; i++)
        with_batch.dims[i + 1] = input.dims[i];
    m->x = cg_placeholder_at(src, m->g, "x", with_batch).id;
    if (m->x >= 0 && check_elems(m->g, src, -1, "the input", &m->g->nodes[m->x].sh, 1))
        m->x = -1;
    if (m->x >= 0) {
        m->input = m->g->nodes[m->x].sh;
        m->input.rank--;
        memmove(m->input.d, m->input.d + 1, sizeof(int) * (size_t)m->input.rank);
    }
    m->out = m->out_train = m->x;
    return m;
}

/* Public: a functional model; inputs come from cg_input. */
cg_model *cg_functional_at(cg_src src, const char *name)
{
    cg_model *m = model_new(src, name);
    if (m)
        m->functional = true;
    return m;
}

/* Public: an input of a functional model, shape per sample. */
cg_t cg_input_at(cg_src src, cg_model *m, const char *name, cg_shape s)
{
    if (!m || cg_failed(m->g))
        return (cg_t){m ? m->g : NULL, -1};
    cg_graph *g = m->g;
    if (!m->functional)
        return (cg_t){g, graph_error(g, src, -1,
                                     "%s: cg_input is for functional models; a Sequential model has "
                                     "its input from cg_sequential",
                                     m->name)};
    if (m->noutputs)
        return (cg_t){g, graph_error(g, src, -1, "%s: add inputs before cg_set_outputs", m->name)};
    if (name && (!strcmp(name, "x") || !strcmp(name, "y")))
        return (cg_t){g, graph_error(g, src, -1,
                                     "%s: an input may not be called %s: x and y are the packed "
                                     "arguments of the emitted entry points",
                                     m->name, name)};
    if (s.rank < 1 || s.rank >= CG_MAX_RANK)
        return (cg_t){g, graph_error(g, src, -1, "%s: input %s needs 1 to %d dimensions (without the batch), got %d",
                                     m->name, name ? name : "?", CG_MAX_RANK - 1, s.rank)};
    if (m->ninputs == (int)(sizeof m->inputs / sizeof m->inputs[0]))
        return (cg_t){g, graph_error(g, src, -1, "%s: too many inputs (at most 8)", m->name)};
    cg_shape with_batch = {s.rank + 1, {CG_BATCH}};
    for (int i = 0; i < s.rank; i++)
        with_batch.dims[i + 1] = s.dims[i];
    cg_t t = cg_placeholder_at(src, g, name, with_batch);
    if (t.id >= 0 && check_elems(g, src, -1, g->nodes[t.id].name, &g->nodes[t.id].sh, 1))
        t.id = -1;
    if (t.id >= 0)
        m->inputs[m->ninputs++] = t.id;
    return t;
}

/* Public: the graph a model is built on. */
cg_graph *cg_model_graph(cg_model *m)
{
    return m ? m->g : NULL;
}

/* Public: marks every weight of a layer trainable or frozen. Moving averages
 * (BatchNormalization) stay non-trainable either way. */
int cg_set_trainable_at(cg_src src, cg_model *m, const char *layer_name, bool trainable)
{
    if (!m || cg_failed(m->g))
        return -1;
    cg_graph *g = m->g;
    if (m->compiled)
        return graph_error(g, src, -1, "%s: set trainable before compile", m->name);
    int li = -1;
    for (int i = 0; i < g->nlayers && li < 0; i++)
        if (layer_name && !strcmp(g->layers[i].name, layer_name))
            li = i;
    if (li < 0)
        return graph_error(g, src, -1, "%s: no layer named %s", m->name, layer_name ? layer_name : "(null)");
    int found = 0;
    for (int v = 0; v < g->nvars; v++) {
        var *vr = &g->vars[v];
        if (g->nodes[vr->node].layer != li)
            continue;
        const char *role = strrchr(vr->name, '/');
        bool moving = role && !strncmp(role, "/moving_", 8);
        vr->trainable = trainable && !moving;
        found++;
    }
    if (!found)
        return graph_error(g, src, li, "the layer has no weights to freeze");
    return 0;
}
/* Public: the model's output (inference mode); a Sequential model's last layer. */
cg_t cg_model_output(cg_model *m)
{
    return (cg_t){m ? m->g : NULL, m ? m->out : -1};
}
/* Public: frees the model and its graph. */
void cg_model_free(cg_model *m)
{
    if (!m)
        return;
    cg_graph_free(m->g);
    free(m->ml);
    free(m->infer_of);
    free(m->summary);
    free(m);
}

/* Counts layers of one kind, for default names: dense_1, dense_2, ... */
static int count_kind(cg_graph *g, const char *kind)
{
    int k = 0;
    for (int i = 0; i < g->nlayers; i++)
        k += !strcmp(g->layers[i].kind, kind);
    return k;
}

/* Records an update of the training step: variable node var <- node value. */
int model_add_update(cg_model *m, cg_src src, int var, int value)
{
    if (value < 0)
        return -1;
    if (m->nupd == (int)(sizeof m->upd_var / sizeof m->upd_var[0]))
        return graph_error(m->g, src, m->g->cur_layer, "too many moving averages (at most 32)");
    m->upd_var[m->nupd] = var;
    m->upd_val[m->nupd++] = value;
    return 0;
}

/* The layer kinds, one row per cg_layer_kind, from layers/layers.def. */
typedef struct layer_kind_info {
    const char *kind;   /* the Keras class name: "Dense" */
    const char *prefix; /* the stem of default names: dense_1, dense_2, ... */
    bool many_inputs;   /* build checks the inputs itself (merges, recurrent layers' initial states) */
    int (*build)(const layer_call *lc);
} layer_kind_info;

enum { LAYER_ONE = 0, LAYER_MANY = 1 };

/* clang-format off */
static const layer_kind_info layer_kinds[] = {
#define LAYER(kind, keras, prefix, opts, inputs, build) \
    [CG_LAYER_##kind] = {keras, prefix, LAYER_##inputs, build},
#include "layers/layers.def"
#undef LAYER
};
/* clang-format on */

/* A compile-time check that every member of cg_layer_kind has its row. */
typedef char layer_kinds_cover_the_enum[sizeof layer_kinds / sizeof layer_kinds[0] == CG_LAYER_KIND_COUNT ? 1 : -1];

/* The user's name for layer l (the .name of its options), or NULL. */
static const char *user_name(const cg_layer *l)
{
    switch (l->kind) {
/* clang-format off */
#define LAYER(kind, keras, prefix, opts, inputs, build) \
    case CG_LAYER_##kind: return l->opts.name;
#include "layers/layers.def"
#undef LAYER
        /* clang-format on */
    default: return NULL;
    }
}

/* Builds layer l on its inputs in one mode; returns its output. */
static int apply_layer(cg_model *m, const cg_layer *l, const int *xs, int nx, bool training)
{
    cg_graph *g = m->g;
    if (nx != 1 && !layer_kinds[l->kind].many_inputs)
        return graph_error(g, l->src, g->cur_layer, "the layer takes one input, got %d", nx);
    layer_call lc = {g, m, l, xs[0], xs, nx, training};
    return layer_kinds[l->kind].build(&lc);
}

/* Grows m->infer_of to cover every node of the graph (new entries -1, not
 * known yet); 0, or -1 when out of memory. */
static int infer_grow(cg_model *m)
{
    cg_graph *g = m->g;
    if (m->infer_cap >= g->nnodes)
        return 0;
    int cap = g->cap > g->nnodes ? g->cap : g->nnodes;
    int *p = realloc(m->infer_of, sizeof(int) * (size_t)cap);
    if (!p)
        return graph_error(g, m->src, -1, "out of memory");
    for (int i = m->infer_cap; i < cap; i++)
        p[i] = -1;
    m->infer_of = p;
    m->infer_cap = cap;
    return 0;
}

/* The node that holds in inference mode what node id holds in training
 * mode. Layers record it for their outputs; for raw ops between them it is
 * made here, a copy of the node over its inputs' inference values (or the
 * node itself when those are the same). -1 after an error. */
static int model_infer(cg_model *m, int id)
{
    cg_graph *g = m->g;
    if (id < 0 || g->failed || infer_grow(m))
        return -1;
    if (m->infer_of[id] >= 0)
        return m->infer_of[id];
    node nd = g->nodes[id];
    int r = id;
    if (op_table[nd.op].cat != CAT_LEAF) {
        bool same = true;
        for (int i = 0; i < nd.nin; i++) {
            int t = model_infer(m, nd.in[i]);
            if (t < 0)
                return -1;
            same = same && t == nd.in[i];
            nd.in[i] = t;
        }
        if (!same) {
            int saved = g->cur_layer;
            g->cur_layer = nd.layer;
            nd.name = graph_unique_name(g, arena_printf(&g->a, "%s_infer", g->nodes[id].name));
            r = graph_add(g, nd);
            g->cur_layer = saved;
            if (r < 0 || infer_grow(m))
                return -1;
            m->infer_of[r] = r;
        }
    }
    m->infer_of[id] = r;
    return r;
}

/* Public: a layer object of model m. */
cg_layer_ref cg_make_layer_at(cg_model *m, cg_layer l)
{
    cg_layer_ref ref = {m, -1};
    if (!m || cg_failed(m->g))
        return ref;
    cg_graph *g = m->g;
    if ((unsigned)l.kind >= sizeof layer_kinds / sizeof layer_kinds[0])
        return graph_error(g, l.src, -1, "unknown layer kind %d", (int)l.kind), ref;
    if (m->compiled)
        return graph_error(g, l.src, -1, "%s: cannot add layers after compile", m->name), ref;
    const char *kind = layer_kinds[l.kind].kind;
    if ((user_name(&l) && graph_check_name(g, l.src, "layer", user_name(&l), 0)) ||
        (l.kind == CG_LAYER_CUSTOM && l.custom_kind &&
         graph_check_name(g, l.src, "custom layer kind", l.custom_kind, 0)))
        return ref;
    char name[2 * CG_MAX_NAME + 32], prefix[CG_MAX_NAME + 16];
    snprintf(prefix, sizeof prefix, "%s", layer_kinds[l.kind].prefix);
    if (l.kind == CG_LAYER_CUSTOM && l.custom_kind) { /* "MyDense" -> kind MyDense, names my_dense_1 */
        kind = arena_strdup(&g->a, l.custom_kind);
        size_t k = 0;
        for (const char *c = l.custom_kind; *c && k + 2 < sizeof prefix; c++) {
            if (isupper((unsigned char)*c) && c != l.custom_kind && k)
                prefix[k++] = '_';
            prefix[k++] = isalnum((unsigned char)*c) ? (char)tolower((unsigned char)*c) : '_';
        }
        prefix[k] = 0;
    }
    if (user_name(&l))
        snprintf(name, sizeof name, "%s", user_name(&l));
    else
        snprintf(name, sizeof name, "%s_%d", prefix, count_kind(g, kind) + 1);
    for (int i = 0; i < g->nlayers; i++)
        if (!strcmp(g->layers[i].name, name))
            return graph_error(g, l.src, -1, "%s: a layer named %s already exists (line %d)", name, name,
                               g->layers[i].src.line),
                   ref;
    if (m->nml == m->mlcap) {
        int cap = m->mlcap ? m->mlcap * 2 : 16;
        model_layer *p = realloc(m->ml, sizeof *p * (size_t)cap);
        if (!p)
            return graph_error(g, l.src, -1, "out of memory"), ref;
        m->ml = p;
        m->mlcap = cap;
    }
    int li = graph_begin_layer(g, kind, name, l.src);
    g->cur_layer = -1;
    if (li < 0)
        return ref;
    m->ml[m->nml] = (model_layer){l, li, 0};
    ref.id = m->nml++;
    return ref;
}

/* Calls layer object ref on inputs (training-mode nodes) in both modes;
 * returns the training-mode output. */
static int model_call(cg_model *m, cg_src src, int ref, const int *xs, int nx)
{
    cg_graph *g = m->g;
    int infer_in[8];
    if (nx < 1 || nx > 8)
        return graph_error(g, src, m->ml[ref].li, "a layer call takes 1 to 8 inputs, got %d", nx);
    for (int i = 0; i < nx; i++) {
        if (xs[i] < 0 || xs[i] >= g->nnodes)
            return graph_error(g, src, -1, "%s: a layer was called on a tensor that is not of this model", m->name);
        if ((infer_in[i] = model_infer(m, xs[i])) < 0)
            return -1;
    }
    model_layer *ml = &m->ml[ref];
    cg_layer spec = ml->spec;
    spec.src = src; /* errors and banners point at this call */
    g->cur_layer = ml->li;
    g->infer_pass = false;
    g->layer_first_node = g->nnodes;
    int y_train = apply_layer(m, &spec, xs, nx, true);
    g->infer_pass = true;
    g->layer_first_node = g->nnodes;
    int y = y_train < 0 ? -1 : apply_layer(m, &spec, infer_in, nx, false);
    g->infer_pass = false;
    g->cur_layer = -1;
    if (y < 0 || infer_grow(m))
        return -1;
    m->infer_of[y_train] = y;
    m->infer_of[y] = y;
    ml = &m->ml[ref];
    ml->calls++;
    g->layers[ml->li].out = y;
    return y_train;
}

/* Public: calls a layer object on tensors of its model. */
cg_t cg_call_at(cg_src src, cg_layer_ref ref, const cg_t *inputs, int ninputs)
{
    cg_model *m = ref.m;
    cg_graph *at = inputs && ninputs > 0 ? inputs[0].g : NULL; /* the graph of the tensors called on */
    if (!m) {                                                  /* no model to blame: the tensors' one fails */
        if (at)
            graph_error(at, src, -1, "cg_call: the layer reference is empty (layers come from cg_make_layer)");
        return (cg_t){at, -1};
    }
    if (cg_failed(m->g))
        return (cg_t){m->g, -1};
    cg_graph *g = m->g;
    if (ref.id < 0 || ref.id >= m->nml)
        return (cg_t){g, graph_error(g, src, -1,
                                     "cg_call: %d is not a layer of model %s (layers come from "
                                     "cg_make_layer)",
                                     ref.id, m->name)};
    if (!inputs)
        return (cg_t){g, graph_error(g, src, m->ml[ref.id].li, "cg_call: the inputs are NULL")};
    if (m->compiled)
        return (cg_t){g, graph_error(g, src, -1, "%s: cannot call layers after compile", m->name)};
    if (!m->functional)
        return (cg_t){g, graph_error(g, src, -1, "%s: a Sequential model takes its layers from cg_model_add", m->name)};
    if (g->cur_layer >= 0)
        return (cg_t){g, graph_error(g, src, g->cur_layer,
                                     "a layer cannot be called inside another layer's call(); "
                                     "compose ops there, or wire the layers in a custom model's call()")};
    int xs[8];
    for (int i = 0; i < ninputs && i < 8; i++) {
        if (inputs[i].g != g || inputs[i].id < 0) {
            if (inputs[i].g && inputs[i].g != g) /* the tensor's model, the one being built, fails too */
                graph_error(inputs[i].g, src, -1, "cg_call: layer %s of model %s called on a tensor of this model",
                            g->layers[m->ml[ref.id].li].name, m->name);
            return (cg_t){
                g, graph_error(g, src, m->ml[ref.id].li, "input %d is not a tensor of model %s", i + 1, m->name)};
        }
        xs[i] = inputs[i].id;
    }
    return (cg_t){g, model_call(m, src, ref.id, xs, ninputs)};
}

/* True when node id depends on placeholder ph. */
static bool depends_on(cg_graph *g, int id, int ph, char *seen)
{
    if (id == ph)
        return true;
    if (seen[id])
        return false;
    seen[id] = 1;
    for (int i = 0; i < g->nodes[id].nin; i++)
        if (depends_on(g, g->nodes[id].in[i], ph, seen))
            return true;
    return false;
}

/* Public: the outputs of a functional model; each is named after its layer. */
int cg_set_outputs_at(cg_src src, cg_model *m, const cg_t *outs, int nout)
{
    if (!m || cg_failed(m->g))
        return -1;
    cg_graph *g = m->g;
    if (!m->functional)
        return graph_error(g, src, -1, "%s: a Sequential model's output is its last layer", m->name);
    if (m->noutputs)
        return graph_error(g, src, -1, "%s: the outputs are already set", m->name);
    if (nout < 1 || nout > CG_MAX_OUTPUTS)
        return graph_error(g, src, -1, "%s: a model has 1 to %d outputs, got %d", m->name, CG_MAX_OUTPUTS, nout);
    if (!m->ninputs)
        return graph_error(g, src, -1, "%s: the model has no inputs (cg_input)", m->name);
    if (!outs)
        return graph_error(g, src, -1, "%s: cg_set_outputs: the outputs are NULL", m->name);
    char *seen = malloc((size_t)g->nnodes);
    if (!seen)
        return graph_error(g, src, -1, "out of memory");
    for (int k = 0; k < nout && !g->failed; k++) {
        int id = outs[k].id;
        if (outs[k].g != g || id < 0 || id >= g->nnodes) {
            graph_error(g, src, -1, "%s: output %d is not a tensor of this model", m->name, k + 1);
            break;
        }
        const node *n = &g->nodes[id];
        const char *name = n->layer >= 0 && g->layers[n->layer].out >= 0 ? g->layers[n->layer].name : n->name;
        for (int j = 0; j < k; j++) /* two calls of one shared layer: the second goes by its node's name */
            if (outs[j].id != id && !strcmp(m->output_names[j], name))
                name = n->name;
        bool any = false;
        for (int i = 0; i < m->ninputs && !any; i++) {
            memset(seen, 0, (size_t)g->nnodes);
            any = depends_on(g, id, m->inputs[i], seen);
        }
        if (!any)
            graph_error(g, src, n->layer, "output %s does not depend on any input of model %s", name, m->name);
        for (int j = 0; j < k && !g->failed; j++)
            if (!strcmp(m->output_names[j], name))
                graph_error(g, src, n->layer, "%s is given as output %d and as output %d", name, j + 1, k + 1);
        m->outputs[k] = id;
        m->output_names[k] = name;
    }
    for (int i = 0; i < m->ninputs && !g->failed; i++) { /* every input must feed some output */
        bool used = false;
        for (int k = 0; k < nout && !used; k++) {
            memset(seen, 0, (size_t)g->nnodes);
            used = depends_on(g, outs[k].id, m->inputs[i], seen);
        }
        if (!used)
            graph_error(g, g->nodes[m->inputs[i]].src, -1, "%s: input %s is not used by any output", m->name,
                        g->nodes[m->inputs[i]].name);
    }
    free(seen);
    for (int k = 0; k < nout && !g->failed; k++) /* may add nodes: after the walks over seen[] */
        m->outputs_infer[k] = model_infer(m, m->outputs[k]);
    if (g->failed)
        return -1;
    m->noutputs = nout;
    return 0;
}

/* Public: a custom model: init() makes its layers, call() wires them. */
cg_model *cg_custom_model_at(cg_src src, const char *name, cg_shape input, cg_model_init_fn init, cg_model_call_fn call,
                             void *self)
{
    cg_model *m = cg_functional_at(src, name);
    if (!m || cg_failed(m->g))
        return m;
    if (!call) {
        graph_error(m->g, src, -1, "%s: a custom model needs a call function", m->name);
        return m;
    }
    cg_t x = cg_input_at(src, m, "inputs", input);
    if (init && x.id >= 0)
        init(m, self);
    if (cg_failed(m->g))
        return m;
    cg_t y = call(m, x, self);
    if (!cg_failed(m->g))
        cg_set_outputs_at(src, m, &y, 1);
    return m;
}

/* Public: appends a layer to a Sequential model and builds it at once, in
 * training mode and in inference mode; where the two agree, hash-consing
 * makes them one graph. */
int cg_model_add(cg_model *m, cg_layer l)
{
    if (!m || cg_failed(m->g))
        return -1;
    if (m->functional)
        return graph_error(m->g, l.src, -1, "%s: a functional model calls its layers with cg_apply or cg_call",
                           m->name);
    cg_layer_ref ref = cg_make_layer_at(m, l);
    if (ref.id < 0)
        return -1;
    int y_train = model_call(m, l.src, ref.id, &m->out_train, 1);
    if (y_train < 0)
        return -1;
    m->out_train = y_train;
    m->out = m->infer_of[y_train];
    return 0;
}
