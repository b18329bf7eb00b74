/* custom_model: the equivalent of subclassing keras.Model. init() makes the
 * layers (Keras' __init__), call() wires them (Keras' call): a residual MLP
 * whose one hidden block is called twice, so both calls share its weights,
 *
 *   h = stem(x);  h = h + block(h);  h = dropout(h);  h = h + block(h);  y = head(h)
 *
 * trained on the 8x8 digits. */
#include <cgrad.h>

#ifndef CGRAD_DATA_DIR   /* meson passes the absolute path; `cgrad build` run from the source root finds it here */
#define CGRAD_DATA_DIR "examples/data"
#endif

typedef struct residual_mlp {
    cg_layer_ref stem, block, dropout, head;
} residual_mlp;

static void residual_mlp_init(cg_model *m, void *self)
{
    residual_mlp *r = self;
    r->stem = cg_make_layer(m, cg_dense(64, .activation = CG_RELU, .name = "stem"));
    r->block = cg_make_layer(m, cg_dense(64, .activation = CG_RELU, .name = "block"));
    r->dropout = cg_make_layer(m, cg_dropout(0.2f));
    r->head = cg_make_layer(m, cg_dense(10, .name = "head"));
}

static cg_t residual_mlp_call(cg_model *m, cg_t x, void *self)
{
    (void)m;
    residual_mlp *r = self;
    cg_t h = cg_call(r->stem, x);
    h = cg_add(h, cg_call(r->block, h));      /* residual connection */
    h = cg_call(r->dropout, h);
    h = cg_add(h, cg_call(r->block, h));      /* the same block again: shared weights */
    return cg_call(r->head, h);
}

int main(int argc, char **argv)
{
    static residual_mlp net;
    cg_model *model = cg_custom_model("custom_model", CG_SHAPE(64), residual_mlp_init, residual_mlp_call, &net);
    cg_compile(model, .optimizer = cg_adam(1e-3f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 32, .epochs = 40,
               .data = {.path = CGRAD_DATA_DIR "/digits.csv.gz", .scale = 1.0f / 16.0f, .test_split = 0.2f});
    return cg_main(model, argc, argv);
}
