/* custom_layer: the Keras guide's MyDense, a dense layer without bias,
 * out = relu(inputs @ kernel), written as a custom layer in C and stacked
 * in a Sequential model on the 8x8 digits. Its call() declares the kernel
 * with cg_add_weight and composes ops; cgrad derives its backward pass. */
#include <cgrad.h>

#ifndef CGRAD_DATA_DIR   /* meson passes the absolute path; `cgrad build` run from the source root finds it here */
#define CGRAD_DATA_DIR "examples/data"
#endif

/* The layer's configuration (Keras' __init__ arguments). */
typedef struct my_dense {
    int units;
} my_dense;

/* Keras' build + call: the weight, then relu(inputs @ kernel). */
static cg_t my_dense_call(cg_layer_ctx *layer, cg_t inputs, void *self)
{
    const my_dense *d = self;
    int in_features = cg_shape_of(inputs).dims[1];
    cg_t kernel = cg_add_weight(layer, "kernel", CG_SHAPE(in_features, d->units), cg_glorot_uniform(), true);
    return cg_relu(cg_matmul(inputs, kernel));
}

int main(int argc, char **argv)
{
    static my_dense hidden_1 = {64}, hidden_2 = {32};
    cg_model *model = cg_sequential("custom_layer", CG_SHAPE(64));
    cg_model_add(model, cg_custom_layer("MyDense", my_dense_call, &hidden_1));
    cg_model_add(model, cg_custom_layer("MyDense", my_dense_call, &hidden_2));
    cg_model_add(model, cg_dense(10));
    cg_compile(model, .optimizer = cg_adam(1e-3f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 32, .epochs = 60,
               .data = {.path = CGRAD_DATA_DIR "/digits.csv.gz", .scale = 1.0f / 16.0f, .test_split = 0.2f});
    return cg_main(model, argc, argv);
}
