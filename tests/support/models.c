/* models.c: the shared test models (see models.h). */
#include "models.h"

cg_model *tm_two_in_two_out(const char *name)
{
    cg_model *m = cg_functional(name);
    cg_t a = cg_input(m, "a", CG_SHAPE(5));
    cg_t b = cg_input(m, "b", CG_SHAPE(3));
    cg_t pa = cg_apply(m, cg_dense(4, .activation = CG_TANH, .name = "proj_a"), a);
    cg_t pb = cg_apply(m, cg_dense(4, .activation = CG_TANH, .name = "proj_b"), b);
    cg_layer_ref shared = cg_make_layer(m, cg_dense(4, .activation = CG_TANH, .name = "shared"));
    cg_t sa = cg_call(shared, pa);
    cg_t sb = cg_call(shared, pb);
    cg_t cat = cg_apply(m, cg_concatenate(), sa, sb);
    cg_t prod = cg_apply(m, cg_multiply_layer(), sa, sb);
    cg_t sum = cg_apply(m, cg_add_layer(), pa, prod);
    cg_t cls = cg_apply(m, cg_dense(3, .name = "cls"), cat);
    cg_t reg = cg_apply(m, cg_dense(2, .name = "reg"), sum);
    cg_set_outputs(m, cls, reg);
    cg_compile(m, .optimizer = cg_sgd(1.0f, 0.0f, false), .batch_size = 8,
               .outputs = {{"cls", CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true, .metric = CG_ACCURACY},
                           {"reg", CG_MSE, .loss_weight = 0.5f, .metric = CG_METRIC_MAE}});
    return m;
}

typedef struct resnet {
    cg_layer_ref stem, block, head;
} resnet;

static void resnet_init(cg_model *m, void *self)
{
    resnet *r = self;
    r->stem = cg_make_layer(m, cg_dense(6, .activation = CG_TANH, .name = "stem"));
    r->block = cg_make_layer(m, cg_dense(6, .activation = CG_TANH, .name = "block"));
    r->head = cg_make_layer(m, cg_dense(3, .name = "head"));
}

static cg_t resnet_call(cg_model *m, cg_t x, void *self)
{
    (void)m;
    resnet *r = self;
    cg_t h = cg_call(r->stem, x);
    h = cg_add(h, cg_call(r->block, h));
    h = cg_add(h, cg_call(r->block, h));
    return cg_call(r->head, h);
}

cg_model *tm_residual(const char *name)
{
    resnet r; /* only used while cg_custom_model runs init and call */
    cg_model *m = cg_custom_model(name, CG_SHAPE(4), resnet_init, resnet_call, &r);
    cg_compile(m, .optimizer = cg_sgd(1.0f, 0.0f, false), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,
               .from_logits = true, .metric = CG_ACCURACY, .batch_size = 8);
    return m;
}
