/* cgrad_int.h: the compiler's internal header, one section per file.
 *
 * The pipeline (compiler/passes.c): autodiff (the backward graph that
 * cg_compile or cg_gradients asked for) -> verify -> fuse -> verify ->
 * layout -> plan (dead code is what the plan of an entry point leaves out);
 * then emit.c writes the C.
 * Shapes are inferred when a node is made, so builder errors point at the
 * user's line at once; the verify pass checks them again between passes. */
#ifndef CGRAD_INT_H
#define CGRAD_INT_H

#include "cgrad.h"

#include <stdarg.h>
#include <stdio.h>

/* ---- util.c: arena, growable text, small helpers ------------------------ */

/* An arena: every node, shape and string of a graph comes from it and is
 * freed at once with the graph. */
typedef struct arena_chunk arena_chunk;
typedef struct arena {
    arena_chunk *head;
} arena;

void *arena_alloc(arena *a, size_t size); /* zeroed; NULL when out of memory */
char *arena_strdup(arena *a, const char *s);
char *arena_printf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(arena *a);

/* A growable string, the emitter's output buffer. */
typedef struct text {
    char *s;
    size_t len, cap;
    bool oom;
} text;

void text_printf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void text_puts(text *t, const char *s);
void text_free(text *t);
/* Appends s escaped for use inside a C string literal or a C comment. */
void text_escaped(text *t, const char *s);
/* s escaped as by text_escaped, at most max_len bytes of it, in the arena. */
const char *arena_escaped(arena *a, const char *s, size_t max_len);
/* Appends template `name` with {{KEY}} replaced by the matching value of the
 * NULL-terminated key/value list. Returns -1 for an unknown template or key. */
int text_template(text *t, const char *name, const char *const *kv);
/* The embedded template text called name (generated templates.c). */
const char *template_find(const char *name);

/* Sizes (util.c: int_mul, int_add; graph.c: shape_elems, check_elems) and the
 * builders' guards (check.c; optim.c: check_optimizer). Every size a shape rule computes goes
 * through int_mul/int_add, so no int overflows. The emitted kernels index
 * tensors with C int loop variables (`for (int i = 0; i < n * 784; i++)`,
 * im2col's `((b * OH + i) * OW + j) * KKC`), so a tensor holds at most
 * ELEMS_MAX = INT_MAX = 2^31 - 1 elements at the maximum batch: builders
 * check it per sample, the verify pass at the maximum batch. (shape and node
 * are the graph.c section's.) */
#define ELEMS_MAX 2147483647L
struct shape;
struct node;
bool int_mul(int a, int b, int *out); /* *out = a * b; false, *out untouched, when that overflows int */
bool int_add(int a, int b, int *out); /* *out = a + b; likewise */
/* Elements of s with the batch dimension as `batch`; -1 past ELEMS_MAX or for a size below 1. */
long shape_elems(const struct shape *s, int batch);
/* 0, or an error naming src that `what`, of shape s, is past ELEMS_MAX at `batch` samples. */
int check_elems(cg_graph *g, cg_src src, int layer, const char *what, const struct shape *s, int batch);
/* graph_add for the shape rules, after check_elems of the node per sample. */
int node_add(cg_graph *g, const struct node *nd);
/* 0, or an error naming src: init is of a known kind and its parameters are
 * finite (a normal's standard deviation >= 0, a uniform's low end <= its high end). */
int check_init(cg_graph *g, cg_src src, int layer, const char *what, cg_init init);
/* graph_layer_variable after check_init and check_elems: a weight of the current layer. */
int weight_add(cg_graph *g, cg_src src, const char *role, const struct shape *sh, cg_init init);
/* 0, or an error "WHO: ..." naming src: a known optimizer kind, every
 * hyperparameter finite and in its range (NaN fails every range check). */
int check_optimizer(cg_graph *g, cg_src src, const char *who, const cg_optimizer *o);

/* The optimizers (compiler/optimizers.def, which documents the columns). */
enum {
#define CG_OPTIMIZER_OPTION(id, field, key, label, lo, hi, range) OPTION_BIT_##id,
#include "optimizers.def"
    OPTION_COUNT
};
#define CG_OPTION(id) (1u << OPTION_BIT_##id)                              /* a row's options column */
#define OPTIONS_EVERY (CG_OPTION(LR) | CG_OPTION(MOMENTUM) | OPTIONS_CLIP) /* checked for every optimizer */

typedef struct optim_option { /* a hyperparameter: a float field of cg_optimizer */
    size_t offset;            /* of the field */
    const char *key;          /* the template's {{KEY}} for its value; NULL: none */
    const char *label;        /* "beta_1" */
    float lo, hi;             /* the check: !(value >= lo && value < hi) */
    const char *range;        /* "must lie in [0, 1)" */
} optim_option;

extern const optim_option optim_options[OPTION_COUNT];

typedef struct optim_row { /* one way of emitting an optimizer */
    const char *id;        /* "adam" */
    cg_optimizer_kind kind;
    int slots;               /* floats of state per trainable float */
    const char *tmpl[2];     /* its update function's template, by flavour: [CG_HOST], [CG_PORTABLE] */
    unsigned options;        /* CG_OPTION bits: checked (besides OPTIONS_EVERY) and given to the template */
    const char *const *keys; /* further template keys and values, NULL-terminated */
    const char *update;      /* the update function: "adam_update" */
    bool step;               /* the call passes s->step after s->lr */
    const char *words;       /* the state in words: "Adam: m and v" */
} optim_row;

/* The row that emits optimizer o; NULL for an unknown kind. */
const optim_row *optim_row_of(const cg_optimizer *o);
/* The value of hyperparameter `option` (an OPTION_BIT_*) of o. */
float optim_value(const cg_optimizer *o, int option);
/* Floats of optimizer state per trainable float of g: 0 without an optimizer. */
size_t optim_slots(const cg_graph *g);
/* The one graph of the operands ts[0 .. n) of the public op `what`; NULL after an error in each graph among
 * them when an operand belongs to another graph or to none, or its id is no node of its graph. NULL, and no
 * error anywhere, when no operand has a graph (a documented no-op). */
cg_graph *operands_graph(cg_src src, const char *what, const cg_t *ts, int n);
/* 0, or an error naming the node's line: every node's elements at `batch`
 * samples and every variable's initializer (variables made by cg_variable). */
int check_nodes(cg_graph *g, int batch);

/* ---- graph.c: the graph IR ------------------------------------------------ */

typedef enum op_kind {
#define OP(name, arity, cat, family, args, formula) OP_##name,
#include "ops/ops.def"
#undef OP
    OP_COUNT
} op_kind;

typedef enum op_category {
    CAT_LEAF,     /* placeholder, variable, constant */
    CAT_ELEMWISE, /* one output element from the same element of each input */
    CAT_REDUCE,   /* sum, mean, max over axes */
    CAT_MOVE,     /* reshape, transpose, broadcast */
    CAT_CONTRACT, /* matmul */
    CAT_CONV,     /* convolution and pooling windows */
    CAT_FUSED,    /* ops with a written gradient rule */
    CAT_SEQ,      /* sequence ops: embedding lookup, recurrences over time with their backward loops */
} op_category;

typedef struct emit_ctx emit_ctx;

/* An op family (one file under compiler/ops/): what the pipeline asks of its
 * ops, each entry taking the node id. NULL entries: nothing to do (leaves
 * have no gradient and no kernel). */
typedef struct op_family {
    const char *name;                                    /* "elementwise" */
    int (*grad)(cg_graph *g, int id, int dy, int dx[3]); /* dx[i]: the vector-Jacobian product of input i, -1 none */
    void (*lower)(emit_ctx *e, int id);                  /* writes the kernel's body */
    long (*flops)(cg_graph *g, int id);                  /* floating-point operations for one sample */
    bool (*describe)(emit_ctx *e, int id, const char *const in[3], char *buf, size_t size);
    /* a banner line in buffer names; false: the formula's */
    bool (*words)(cg_graph *g, int id, unsigned inputs, char *buf, size_t size);
    /* the gradient rule in its own words, in the names of the kernels it makes ("dA = dY . B^T; dB = A^T .
     * dY"), for the inputs whose bit is set, into buf; false: none. Written beside the rule, so that the text
     * cannot drift from it; the emitter prints it under each layer's backward kernels (emit_group.c) */
} op_family;

/* Appends "; " (when buf holds text) and the formatted term to buf[size] (lower.c). */
void words_term(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define OP(name, arity, cat, family, args, formula) extern const op_family op_family_##family;
#include "ops/ops.def"
#undef OP

typedef struct op_info {
    const char *name; /* "MATMUL" */
    int arity;
    op_category cat;
    const op_family *family;
    const char *args;    /* kernel argument names, "A,B" */
    const char *formula; /* one-line formula for banners */
} op_info;

extern const op_info op_table[OP_COUNT];

typedef struct shape {
    int rank;
    int d[CG_MAX_RANK]; /* d[0] == CG_BATCH: the run-time batch n */
} shape;

/* Window attributes of convolutions and pooling (NHWC). */
typedef struct spatial {
    int win[2]; /* kernel or pooling window: height, width */
    int stride[2];
    int dil[2]; /* dilation */
    int pad[4]; /* zero padding: top, left, bottom, right */
} spatial;

typedef struct node {
    op_kind op;
    int nin;
    int in[3];
    shape sh;
    /* attributes */
    unsigned axes; /* reductions: bit set of reduced axes */
    bool keepdims;
    bool ta, tb;        /* matmul transposes */
    bool sparse;        /* xent, argmax_eq: labels are class indices */
    bool per_n;         /* CONST: the value is alpha / n */
    cg_activation act;  /* ACT, ACT_BWD(_X), epilogues, MAX_POOL_BWD; recurrent ops: the activation (tanh) */
    cg_activation ract; /* recurrent ops: the gates' recurrent activation (sigmoid) */
    float alpha;        /* CONST value, an activation's parameter (leaky relu, elu), dropout rate */
    spatial sp;         /* convolution and pooling windows */
    int uid;            /* keeps otherwise identical random nodes apart (dropout masks) */
    const float *data;  /* CONSTANT: its values (shape_size(sh, 1) floats, copied at the builder call) */
    int axis, begin;    /* SLICE, UNSLICE, CONCAT: the axis; SLICE, UNSLICE: where the slice starts */
    /* identity */
    const char *name; /* C identifier of its buffer: "dense_1_out", "d_dense_1_kernel" */
    int layer;        /* index into graph.layers, -1 outside layers */
    cg_src src;       /* the builder call that made it */
    int var;          /* VARIABLE: index into graph.vars; PLACEHOLDER: into graph.inputs */
    bool backward;    /* made by autodiff */
    int grad_of;      /* backward nodes: the forward node whose gradient rule made it (its layer's group) */
    int grad_role;    /* backward nodes: what it is in that rule (enum grad_role) */
} node;

/* What a backward node is in the gradient rule that made it (node.grad_role). */
enum grad_role {
    GRAD_STEP, /* a step of the rule on the way to an input's gradient */
    GRAD_DZ,   /* a fused layer's activation gradient, dZ (Dense, Conv2D with an activation) */
    GRAD_SUM,  /* the sum of grad_of's gradients that arrive by several paths */
    GRAD_DX,   /* GRAD_DX + k: the rule's gradient of input k */
};

/* What autodiff did with a forward node (graph.ad_rules, by node id). */
typedef struct ad_rule {
    int dy;          /* the gradient of its output that its rule was given; -1: not differentiated */
    int from;        /* the node whose rule gave it its first gradient; -1: none (the loss) */
    unsigned inputs; /* bit k: the gradient of input k was wanted */
} ad_rule;

/* A parameter tensor. */
typedef struct var {
    int node;
    const char *name; /* "dense_1/kernel" */
    cg_init init;
    int fan_in, fan_out;
    bool trainable;
    size_t offset, count;       /* in floats, within the parameter block */
    int ones_begin, ones_count; /* after init, ones in [begin, begin + count): LSTM's unit_forget_bias */
    int grad;                   /* node holding its gradient, -1 when none was asked for */
} var;

/* A layer, for names, errors and the summary. */
typedef struct layer {
    const char *name; /* "dense_1" */
    const char *kind; /* "Dense" */
    cg_src src;
    int out; /* its output node */
} layer;

/* What an emitted entry point computes. */
typedef enum entry_kind {
    ENTRY_PREDICT,   /* x -> model output */
    ENTRY_EVAL,      /* x, labels -> loss, metric */
    ENTRY_TRAIN,     /* x, labels -> loss, metric; gradients; optimizer update */
    ENTRY_LOSS,      /* tape: inputs -> loss */
    ENTRY_GRADIENTS, /* tape: inputs -> loss and gradients */
} entry_kind;

typedef struct entry {
    entry_kind kind;
    const char *fname;               /* "predict", "train_step" */
    int out[2 * CG_MAX_OUTPUTS + 1]; /* nodes returned: the outputs; or the loss, then the metrics */
    int nout;
    bool want_grads;              /* computes the gradient nodes of the variables */
    int upd_var[32], upd_val[32]; /* after the step: variable node <- value node (moving averages) */
    int nupd;
    int *sched, nsched;                    /* nodes computed, in order (plan pass), and their count */
    const char *out_names[CG_MAX_OUTPUTS]; /* a tape's predict: the caller's name of each output (cg_output) */
    const char *fwd_name;                  /* the forward pass it calls ("forward_infer"), one per mode; NULL: none */
    int fwd_steps;                         /* the first fwd_steps steps of sched are that forward pass's */
    long *offset;                          /* arena offset in floats per node id, -1: not in the arena */
    long *scratch;                         /* arena offset of node id's kernel scratch (im2col), -1: none */
    int *first, *last;                     /* per node id: the schedule steps that write its buffer and read it last */
    size_t arena_floats;
} entry;

/* Where the emitted code goes (--target, --mode, --weights, --max-ram, --quantize; --max-batch sets max_batch). */
typedef struct deploy {
    bool firmware;        /* portable flavour, no NAME_main.c */
    bool predict_only;    /* the predict entry point alone, its arena only */
    const float *weights; /* the parameter block read from a checkpoint: const arrays; NULL: in RAM */
    const char *weights_path;
    bool has_stats; /* a series model's standardisation, from the checkpoint */
    double series_mean, series_std;
    long long max_ram;   /* bytes the state may take; 0: no limit */
    size_t train_ram;    /* predict_only: the state a training build would take */
    struct quant *quant; /* --quantize int8: the integer model (quant.h); NULL: float only */
} deploy;

struct cg_graph {
    arena a;
    const char *name;
    node *nodes;
    int nnodes, cap;
    int *htab; /* hash-consing table: node ids, -1 empty */
    int hcap;
    var *vars;
    int nvars, vcap;
    int inputs[24]; /* placeholder nodes, in the order the caller passes them (a model's inputs, labels) */
    int ninputs;
    layer *layers;
    int nlayers, lcap;
    int cur_layer;        /* layer that new nodes belong to, -1 none */
    bool in_backward;     /* autodiff is making nodes */
    bool infer_pass;      /* layers are being applied in inference mode */
    int layer_first_node; /* first node made by the current layer application */
    int max_batch;
    entry entries[5];
    int nentries;
    bool compiled;
    size_t param_floats, trainable_floats, opt_floats; /* the layout pass's */
    cg_model *model;                                   /* the model built on this graph, if any */
    cg_flavour flavour;                                /* of the code being planned and emitted */
    bool ad_pending; /* the autodiff pass has gradients to build: of ad_loss for ad_vars[0 .. ad_nvars) */
    int ad_loss, ad_nvars;
    const int *ad_vars;
    ad_rule *ad_rules; /* per forward node id < ad_nrules: what its gradient rule was given and wanted */
    int ad_nrules;
    bool has_opt; /* an optimizer was given (compile, or cg_apply_gradients) */
    cg_optimizer opt;
    deploy dep;
    bool failed;
    char err[512];
};

/* Records the first error, "file:line: layer: message"; returns -1. */
int graph_error(cg_graph *g, cg_src src, int layer, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Makes (or finds, when an identical node exists) a node; returns its id or -1. */
int graph_add(cg_graph *g, node nd);
node *graph_node(cg_graph *g, int id);
int graph_begin_layer(cg_graph *g, const char *kind, const char *name, cg_src src);
const char *graph_unique_name(cg_graph *g, const char *base);
cg_graph *graph_new(cg_src src, const char *what, const char *name);
/* Every name a user gives is checked here before it is stored: a C
 * identifier of at most CG_MAX_NAME characters (NAME_SLASH: parts joined by
 * '/'; NAME_BARE: used alone, so not a C keyword or a name of the emitted
 * code). Records "WHAT name "..." ..." at src and returns -1 otherwise. */
enum { NAME_SLASH = 1, NAME_BARE = 2 };
int graph_check_name(cg_graph *g, cg_src src, const char *what, const char *name, unsigned flags);
/* Makes the weight `role` of the current layer, named "layer/role". */
int graph_layer_variable(cg_graph *g, cg_src src, const char *role, shape sh, cg_init init);
/* Stable text dump of the graph (golden fixtures, --dump-after). */
void graph_dump(cg_graph *g, text *t);

/* ---- shape.c: shapes ------------------------------------------------------- */

long shape_size(const shape *s, int batch); /* elements, with the batch dimension = batch */
bool shape_equal(const shape *a, const shape *b);
bool shape_batched(const shape *s);
/* "(n, 784)" into buf. */
const char *shape_str(const shape *s, char *buf, size_t size);
/* Numpy broadcasting of a and b into out; false when they do not broadcast. */
bool shape_broadcast(const shape *a, const shape *b, shape *out);
shape shape_scalar(void);

/* ---- ops/: builders (shape rules), gradient rules, lowering ------------------ */

/* The public op codes (cg_op_code, the list CG_PUBLIC_OPS in cgrad.h): the
 * graph op of code op when the entry point `kind` takes it, else -1. */
typedef enum public_kind { PUBLIC_BINARY, PUBLIC_UNARY, PUBLIC_REDUCE } public_kind;
int op_from_public(cg_op_code op, public_kind kind);

/* Internal builders used by layers and gradient rules: no source capture. */
int op_unary(cg_graph *g, cg_src src, op_kind op, int x);
int op_binary(cg_graph *g, cg_src src, op_kind op, int a, int b);
int op_const(cg_graph *g, float value, bool per_n);
int op_constant(cg_graph *g, cg_src src, const char *name, shape sh, const float *values); /* ops/constant.c */
int op_reduce(cg_graph *g, cg_src src, op_kind op, int x, unsigned axes, bool keepdims);
int op_broadcast(cg_graph *g, cg_src src, int x, shape to);
int op_reshape(cg_graph *g, cg_src src, int x, shape to);
int op_transpose(cg_graph *g, cg_src src, int x);
int op_slice(cg_graph *g, cg_src src, int x, int axis, int begin, int size);
int op_concat(cg_graph *g, cg_src src, int a, int b, int axis);
int op_matmul(cg_graph *g, cg_src src, int a, int b, bool ta, bool tb);
int op_act_bwd(cg_graph *g, cg_activation act, float alpha, int y, int dy);
int op_where(cg_graph *g, cg_src src, int c, int a, int b);
int op_softmax_xent(cg_graph *g, cg_src src, int z, int t, bool sparse);
int op_one_hot(cg_graph *g, cg_src src, int t, int classes);
int op_argmax_eq(cg_graph *g, cg_src src, int p, int t, bool sparse);
int op_activation(cg_graph *g, cg_src src, cg_activation act, float alpha, int x);
int op_dropout_mask(cg_graph *g, cg_src src, shape sh, float rate);

/* Sums g back to the shape `to` where it was broadcast. */
int grad_unbroadcast(cg_graph *g, int grad, const shape *to);

/* Gradient rules, lowerings, costs and banner lines are reached through
 * op_table[op].family (op_family above). The lowerings that the emitter also
 * calls by name, for the pieces of a kernel run on the pool: */
void lower_elementwise(emit_ctx *e, int id);
bool elementwise_flat(cg_graph *g, int id);
void lower_conv(emit_ctx *e, int id);
bool seq_needs_math(cg_graph *g);
/* The epilogue expression of activation act on v; returns its name, NULL when out is too small (ops/activation.c). */
const char *emit_activation(cg_activation act, float alpha, char *out, size_t size);
/* The C expression of dy * act'(.), written with `at`, the activation's output y or its input x as its row of
 * activations.def says; NULL when out is too small (ops/activation.c). */
const char *emit_act_grad(cg_activation act, float alpha, const char *at, const char *dy, char *out, size_t size);
/* The rows of the axes before `axis` as C text: "n * 12", "n", "4". */
const char *outer_rows(const shape *s, int axis, char *buf, size_t size);
/* Floats of scratch memory node id's window kernel needs at the maximum batch (im2col); bytes of its local arrays. */
long conv_scratch(cg_graph *g, int id);
long conv_stack_bytes(const cg_graph *g, int id);
/* True when host code splits node id's samples across the pool; tail: work after the split loop (a filter gradient). */
bool conv_batch_parallel(cg_graph *g, int id, bool *tail);

/* Window arithmetic: output size and padding of one spatial axis. */
int conv_out_size(int in, int win, int stride, int dil, bool same, int *pad_lo, int *pad_hi);
int op_conv2d(cg_graph *g, cg_src src, int x, int k, const spatial *sp, bool depthwise);
int op_pool(cg_graph *g, cg_src src, op_kind op, int x, const spatial *sp);
int op_pad(cg_graph *g, cg_src src, int x, const int pad[4]);
/* A recurrence over the time axis (OP_SIMPLE_RNN, OP_LSTM, OP_GRU) of the
 * precomputed input projection xw (n, T, k U), recurrent kernel r (U, k U),
 * GRU's recurrent bias rb (k U, or a constant 0: packed as a last row of r),
 * and the initial state s0 ((n, U) h0, LSTM: (n, 2 U) [h0 | c0]; -1: zeros);
 * output: the saved sequence. */
int op_recurrent(cg_graph *g, cg_src src, op_kind op, int xw, int r, int rb, int s0, cg_activation act,
                 cg_activation ract);
/* The inference form of recurrence op (OP_SIMPLE_RNN, OP_LSTM, OP_GRU): the
 * same xw, r and s0 (-1: zeros; GRU: must be -1), GRU's recurrent bias read
 * in place from row 1 of its bias b (2, 3 U) (-1: none); output h of every
 * step (n, T, U) when sequences, else of the last (n, U). Nothing is saved. */
int op_recurrent_infer(cg_graph *g, cg_src src, op_kind op, int xw, int r, int b, int s0, cg_activation act,
                       cg_activation ract, bool sequences);
/* Bytes of the locals of an inference form's kernel (one sample's state and gates); 0 for other nodes. */
long rnn_infer_stack_bytes(const cg_graph *g, int id);
/* Units of a recurrent op, of its backward op or of its inference form. */
int rnn_units(const cg_graph *g, int id);
/* Floats per sample and step of a recurrent op's saved sequence, and where h, h_prev and c sit in it. */
int rnn_width(op_kind op, int units);
int rnn_h_offset(op_kind op, int units);
int rnn_hprev_offset(op_kind op, int units);
int rnn_c_offset(int units);
/* Embedding lookup: ids (n, T) into table (V, D) -> (n, T, D). */
int op_embedding(cg_graph *g, cg_src src, int ids, int table);

/* ---- ops/activation.c: the rows of activations.def ------------------------------ */

typedef enum act_from { ACT_FROM_Y, ACT_FROM_X, ACT_FROM_ROW } act_from; /* its column "from": Y, X, ROW */
typedef struct act_info { /* a row of activations.def, which says what each column holds */
    const char *name, *forward, *derivative, *cell_host;
    act_from from;
    float alpha; /* its parameter's default, 0 when it has none */
} act_info;
enum {
#define CG_ACT(name, ...) ACT_INDEX_##name,
#include "activations.def"
#undef CG_ACT
    ACT_COUNT /* rows, the values of cg_activation */
};
extern const act_info act_table[ACT_COUNT];
#define ACT_TEXT_MAX 2048 /* room for an activation's C text with its operands put in */

/* The activation node n applies (ACT, RELU, SIGMOID, TANH, LEAKY_RELU); CG_LINEAR for other nodes. */
cg_activation act_of_node(const node *n);
/* The gradient of activation node id given dy: ACT_BWD from its output, or ACT_BWD_X from its input. */
int op_act_grad(cg_graph *g, int id, int dy);
/* C text, NULL when it does not fit: act applied to the expression x; in recurrent cells, as factors of a
 * product with the row's default alpha, act(v) (host: vectorised) and act'(.) from the output y; and the
 * names of the rows written with y ("linear, relu, ... or elu"). */
const char *emit_act_forward(cg_activation act, float alpha, const char *x, char *out, size_t size);
const char *act_cell_text(cg_activation a, const char *v, bool host, char *buf, size_t size);
const char *act_cell_grad(cg_activation a, const char *y, char *buf, size_t size);
const char *act_from_output_list(char *buf, size_t size);
/* dY act'(.) in words, written with `at` (Y or X, as the row says): "Y > 0 ? dY : 0"; NULL when it does not fit. */
const char *act_grad_words(cg_activation act, float alpha, const char *at, char *buf, size_t size);

/* ---- autodiff.c ----------------------------------------------------------------- */

/* Asks the autodiff pass (pass_autodiff, the pipeline's first) to build the
 * backward graph of the scalar `loss` for the variables vars[] (node ids),
 * which fills var.grad; checks the loss at once. */
int ad_request(cg_graph *g, int loss, const int *vars, int nvars);
int pass_autodiff(cg_graph *g);
/* The fuse pass made node `fused` (DENSE, CONV2D_BIAS_ACT) of the product mm, the bias addition add and
 * (when fused != add) an activation: the backward nodes of their rules become the fused node's. */
void ad_fused(cg_graph *g, int fused, int add, int mm);
/* The fuse pass folded max pooling's gradient pool_bwd into the activation gradient id: id is now the
 * pooling's backward (its rule's gradient of the input), with the activation's derivative in it. */
void ad_fused_pool(cg_graph *g, int id, int pool_bwd);

/* ---- passes.c: the pipeline ---------------------------------------------------- */

int pass_verify(cg_graph *g);
int pass_fuse(cg_graph *g); /* matmul + bias + activation -> DENSE */
int pass_plan(cg_graph *g); /* liveness and first-fit arena offsets */
/* Runs the pipeline for flavour (again when the graph was planned for the
 * other one); after the pass named dump_after, dumps the graph into dump. */
int compile_graph(cg_graph *g, cg_flavour flavour, const char *dump_after, text *dump);
/* True when the pipeline has a pass called name; the passes' names into list. */
bool pass_exists(const char *name, char *list, size_t size);

/* ---- plan.c ----------------------------------------------------------------------- */

/* Plans entry e: schedule, liveness, offsets. */
int plan_entry(cg_graph *g, entry *e);
/* Plans every entry point (the plan pass): a model's call the forward pass of their mode (entry.fwd_name),
 * whose buffers have the same offsets in every entry point that calls it. */
int plan_entries(cg_graph *g);
/* The node whose storage id uses (follows reshapes). */
int plan_storage_root(cg_graph *g, int id);
/* True when placeholder id is unpacked from the packed x or y into its own buffer. */
bool plan_unpacked(cg_graph *g, int id);
/* Appends entry e's memory plan, each line after lead (" * " in a comment): each arena buffer's bytes, live
 * range (schedule steps) and offset; with timeline, a row per buffer over the steps. */
void plan_describe(const cg_graph *g, const entry *e, const char *lead, bool timeline, text *t);
/* Appends every entry point's plan with its timeline (the model program's --plan). */
void plan_report(const cg_graph *g, text *t);

/* ---- the emitter: lower.c (what kernels are written with), emit*.c, deploy.c ---- */

#include "emit.h"

/* ---- layers/: one build function per row of layers/layers.def -------------------- */

/* What a layer's build function is given: the layer, its inputs, the mode. */
typedef struct layer_call {
    cg_graph *g;
    cg_model *m;       /* the model being built (BatchNormalization records its updates there) */
    const cg_layer *l; /* the layer: its kind, the user's line (src) and its options */
    int x;             /* its input, xs[0] */
    const int *xs;     /* every input (a merge's; x, then a recurrent layer's initial states) */
    int nx;
    bool training; /* building the training-mode graph: Dropout active, BatchNormalization on batch statistics */
} layer_call;

#define LAYER(kind, keras, prefix, opts, inputs, build) int build(const layer_call *lc);
#include "layers/layers.def"
#undef LAYER

/* Names node id "<layer>_<role>" ("_infer" added in the inference pass) when
 * the current layer application made it. */
void layer_name_role(cg_graph *g, int id, const char *role);
int layer_bias_activation(cg_graph *g, cg_src src, int y, const char *role, int units, bool use_bias, cg_init bias_init,
                          cg_activation act, float alpha);
int layer_activation(cg_graph *g, cg_activation act, cg_src src, int x);

/* ---- model.c: Sequential and functional models; compile.c: cg_compile -------------- */

/* A layer object: made once, called once or several times (shared weights). */
typedef struct model_layer {
    cg_layer spec;
    int li; /* its entry in graph.layers */
    int calls;
} model_layer;

#define MODEL_MAX_METRICS (2 * CG_MAX_OUTPUTS)

struct cg_model {
    cg_graph *g;
    const char *name;
    cg_src src;
    bool functional;        /* inputs and labels packed per sample; unpacked by the entry points */
    shape input;            /* per sample (Sequential) */
    int x, y;               /* Sequential: input and label placeholders */
    int out;                /* Sequential: model output, inference mode */
    int out_train;          /* Sequential: model output, training mode (differs after Dropout, BatchNormalization) */
    int inputs[8], ninputs; /* input placeholders, in the order of the packed x */
    int outputs[CG_MAX_OUTPUTS];       /* outputs, training mode */
    int outputs_infer[CG_MAX_OUTPUTS]; /* the same in inference mode */
    int labels[CG_MAX_OUTPUTS];        /* label placeholder of each output */
    int sample_weight; /* the per-sample weights (n), unpacked from sw; -1: none (a custom loss is the batch's) */
    const char *output_names[CG_MAX_OUTPUTS];
    int noutputs;
    model_layer *ml; /* layer objects */
    int nml, mlcap;
    int *infer_of, infer_cap;           /* node id -> the same value in inference mode, -1: not known yet */
    int upd_var[32], upd_val[32], nupd; /* moving-average updates of the training step */
    int adapt[8][3], nadapt;        /* Normalization layers whose statistics fit computes: mean, variance, input node */
    int loss;                       /* total loss, training mode */
    int metrics[MODEL_MAX_METRICS]; /* reported beside the loss, training mode */
    const char *metric_names[MODEL_MAX_METRICS];
    int nmetrics;
    cg_output_opts spec[CG_MAX_OUTPUTS];   /* loss and metric of each output, resolved */
    cg_metric user_metric[CG_MAX_OUTPUTS]; /* the metric as the user named it ("accuracy") */
    cg_compile_opts opts;
    bool compiled;
    char *summary;
};

/* Records "after each training step, variable var <- node value". */
int model_add_update(cg_model *m, cg_src src, int var, int value);

/* ---- loss.c: losses and metrics ------------------------------------------------------ */

const char *loss_name(cg_loss l);
const char *metric_name(cg_metric m);
/* The metric "accuracy" resolved as Keras does, from the loss. */
cg_metric loss_resolve_metric(cg_metric m, cg_loss l);
/* Builds every output's loss and metric in one mode: out[0] the total loss,
 * then what is reported beside it, names[] what each is called; returns how
 * many are reported beside the loss, or -1. */
int loss_build_objectives(cg_model *m, cg_src src, bool infer, int *out, const char **names);

#endif
