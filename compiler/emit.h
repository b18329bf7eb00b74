/* emit.h: the emitter's declarations (included by cgrad_int.h): lower.c,
 * what ops write kernels with; emit*.c, the files; deploy.c, firmware
 * deployment; and the other views of a compiled graph: dot.c, summary.c. */
#ifndef CGRAD_EMIT_H
#define CGRAD_EMIT_H

/* ---- lower.c: what kernels are written with (used by ops/ and the emitter) ---- */

struct emit_ctx {
    cg_graph *g;
    text *t;
    cg_flavour flavour;
    const char *prefix;  /* model name, the prefix of every public symbol */
    int part;            /* lowering a whole kernel (0), the per-sample piece of a host kernel whose
                              samples run on the pool (1), or what follows that loop (2) */
    const char *uprefix; /* the prefix in capitals, of the header's macros */
    const char *source;  /* the user's file, escaped, for banners */
    bool uses_blas;      /* host code calls the GEMM shim */
    int *update_after;   /* while writing a fused train_step: per variable, the schedule step after whose
                              kernel the optimizer updates it (optim_update_points); NULL otherwise */
};

/* The C expression of input k of node id inside its kernel: "A[i]" or a literal. */
const char *emit_input(emit_ctx *e, int id, int k, const char *index, char *buf, size_t size);
/* Loop nest helpers: dimension text ("n" or "256"). */
const char *emit_dim(const shape *s, int axis, char *buf, size_t size);
/* A float literal that reads back exactly: "0.001f". */
const char *emit_float(float v, char *buf, size_t size);
/* Index expression of an input of shape in, broadcast to out, over loop
 * variables i0, i1, ...: "i0 * 256 + i1" ("0" for a scalar). */
const char *emit_bcast_index(const shape *in, const shape *out, char *buf, size_t size);
/* s as a C string literal (escaped by text_escaped), or 0 for NULL. */
void emit_c_string(text *t, const char *s);
/* Upper-case copy of s into buf. */
const char *emit_upper(const char *s, char *buf, size_t size);
/* The user's file name without folders, escaped for a comment. */
const char *emit_source_file(cg_graph *g, const char *path);
/* The textbook name of input k of node n inside its kernel ("X", "W"). */
void kernel_arg_name(const node *n, int k, char *buf, size_t size);
/* The names inside node id's kernel, of its inputs (0 .. 2) and output (3): the op's (ops.def) and Y, or for a
 * backward kernel the names of the gradient rule that made it ("dZ, W -> dX"; emit_kernel.c). */
void kernel_names(cg_graph *g, int id, char names[4][16]);
/* Appends s (a formula, a rule's words) about node id to t in its kernel's names, "act" and "ract" written as
 * the activations the node applies (emit_kernel.c). */
void kernel_words(cg_graph *g, int id, const char *s, text *t);
/* "<buffer>_fwd" or "<buffer>_bwd". */
const char *kernel_name(cg_graph *g, int id, char *buf, size_t size);
/* True when node id's kernel needs the batch size n; when a kernel function computes node id at all. */
bool kernel_needs_n(cg_graph *g, int id);
bool node_has_kernel(cg_graph *g, int id);
const char *emit_act_name(cg_activation a);
/* The inputs a kernel takes as arrays (not constants): their positions, and how many. */
int kernel_inputs(cg_graph *g, int id, int which[3]);

/* ---- emit*.c: the files -------------------------------------------------------------- */

/* emit_kernel.c: one line saying what node id computes; the kernel function of node id. */
void emit_describe(emit_ctx *e, int id, char *buf, size_t size);
void emit_kernel(emit_ctx *e, int id);
typedef enum kernel_params_mode {
    KP_SIGNATURE,   /* "int n, const float *restrict X, float *restrict Y" */
    KP_CALL,        /* "n, dense_1_out, dense_2_out": the buffers of an entry point */
    KP_POOL_INPUTS, /* "X, W": the inputs handed to the pool */
} kernel_params_mode;
/* Appends node id's kernel parameter list in the given form (e: the calling entry, KP_CALL). */
void kernel_params(emit_ctx *ec, int id, kernel_params_mode mode, const entry *e);
/* emit_group.c: the kernels of NAME.c under one banner per layer, in forward order, each layer's forward
 * kernels, then its backward kernels and its chain rule in words; the seed of entry e's backward pass. */
void emit_groups(emit_ctx *ec);
void emit_seed(emit_ctx *ec, const entry *e);
/* emit_forward.c: the forward pass of each mode (a static function per mode); an entry point's pointers to
 * the buffers it touches itself, and its computation (its forward pass, then its own kernels). */
void emit_forwards(emit_ctx *ec);
void emit_entry_pointers(emit_ctx *ec, const entry *e);
void emit_entry_calls(emit_ctx *ec, const entry *e);
/* emit_entry.c: an entry point, its checked form, the optimizer call, the header's declarations; the copies
 * between a packed array (x, y, out: per sample, tensor after tensor) and the tensors' buffers. */
void emit_packing(emit_ctx *ec, const entry *e, const int *ids, int count, const char *packed, bool unpack);
void emit_entry(emit_ctx *ec, const entry *e);
void emit_checked(emit_ctx *ec, const entry *e);
/* emit_optim.c: the optimizer's step in one flat loop after the backward pass; whether a training step fuses
 * it into the backward pass instead, after which step each parameter is updated then, and the updates after
 * step k; the clipping function and schedule (-1: a template failed), the header's NAME_learning_rate;
 * optim.c: the first step's learning rate, a schedule's name. */
void emit_update(emit_ctx *ec);
bool optim_fused(const cg_graph *g, const entry *e);
int *optim_update_points(cg_graph *g, const entry *e);
void emit_fused_updates(emit_ctx *ec, const entry *e, int k);
int emit_optim_extras(emit_ctx *ec, text *c);
void emit_optim_prototypes(emit_ctx *ec, text *t);
void emit_schedule_fields(emit_ctx *ec, text *t);
float optim_initial_lr(const cg_optimizer *o);
const char *optim_schedule_name(cg_schedule_kind k);
void emit_prototypes(emit_ctx *ec, text *t);
/* emit_header.c, emit_source.c, emit_main.c: NAME.h, NAME.c, NAME_main.c (-1: a template failed). */
int emit_header(emit_ctx *ec, text *h);
int emit_source(emit_ctx *ec, text *c);
int emit_main(emit_ctx *ec, text *mt);
/* ops/constant.c: the static const array of each constant an entry point reads (nothing when none is). */
void emit_constants(emit_ctx *ec, text *c);
/* emit.c: writes the files of the compiled graph g into dir. */
int emit_files(cg_graph *g, const char *dir);
/* emit.c: writes text t to DIR/FILE through a temporary file; 0, or -1 with the graph's error. */
int emit_write_file(cg_graph *g, const char *dir, const char *file, text *t);

/* ---- deploy.c: firmware deployment ------------------------------------------------ */

/* Reads the parameter block from checkpoint path (after the layout pass):
 * every parameter of the model, by name and shape, finite. */
int deploy_read_weights(cg_graph *g, const char *path);
/* The bytes of the state, part by part, of a predict-only or a training build. */
typedef struct ram_parts {
    size_t params, grads, opt, arena, scalars, total; /* scalars: lr, step (and rng), with padding */
} ram_parts;
ram_parts deploy_ram(const cg_graph *g, bool predict_only);
/* True when the build updates parameters (an optimizer, something trainable, training entry points). */
bool deploy_updates(const cg_graph *g);
/* True when the graph draws dropout masks (a training state then holds their generator). */
bool deploy_has_dropout(const cg_graph *g);
/* After compiling for --mode predict: records what a training build would
 * take, then keeps the predict entry point alone (its kernels, its arena). */
int deploy_keep_predict(cg_graph *g);
/* Fails, naming each part and the buffers live at the arena's peak, when
 * the build's state exceeds --max-ram. */
int deploy_check_ram(cg_graph *g);
/* The header's datasheet: RAM, flash, stack and preprocessing #defines,
 * and the memory plan of each entry point as a comment table. */
void deploy_datasheet(emit_ctx *ec, text *t);
/* NAME_weights.c: every parameter as a const array; and the header's declarations of them. */
int emit_weights(emit_ctx *ec, text *w);
void deploy_weight_decls(emit_ctx *ec, text *t);

/* ---- dot.c: the graph as a picture ---------------------------------------------------- */

/* Appends compiled graph g in Graphviz's DOT language (forward and backward
 * nodes in two colours, a cluster per layer, shapes on edges, saved
 * activations bold, dashed edges from gradient nodes to the forward nodes
 * their rules differentiate). */
void dot_graph(cg_graph *g, text *t);
/* Writes DIR/NAME.dot and, when Graphviz's dot is installed, DIR/NAME.svg
 * (dot runs without a shell); 0, or -1 with the graph's error set. */
int dot_write(cg_graph *g, const char *dir);

/* ---- summary.c -------------------------------------------------------------------------- */

long node_flops(cg_graph *g, int id); /* floating-point operations, batch 1 */
/* The summary text of a compiled graph. */
const char *graph_summary(cg_graph *g);

#endif
