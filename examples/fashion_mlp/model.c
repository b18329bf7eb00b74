/* fashion_mlp: a dense network on Fashion-MNIST, Keras style.
 * Build: cgrad build examples/fashion_mlp/model.c; train: fashion_mlp fit --epochs 5 */
#include <cgrad.h>

int main(int argc, char **argv)
{
    cg_model *model = cg_sequential("fashion_mlp", CG_SHAPE(784));
    cg_model_add(model, cg_dense(256, .activation = CG_RELU));
    cg_model_add(model, cg_dense(128, .activation = CG_RELU));
    cg_model_add(model, cg_dense(10));
    cg_compile(model,
               .optimizer = cg_adam(1e-3f),
               .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY,
               .batch_size = 64, .epochs = 5,
               .data = {.path = "/usr/share/datasets/fashion-mnist", .scale = 1.0f / 255.0f});
    return cg_main(model, argc, argv);
}
