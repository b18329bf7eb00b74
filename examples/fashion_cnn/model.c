/* fashion_cnn: a small convolutional network on Fashion-MNIST, Keras style.
 * Conv2D(32, 3x3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3x3, relu) ->
 * MaxPooling2D(2) -> Flatten -> Dense(10); Adam 1e-3, batch 64. The ReLU
 * convolutions start from He-normal kernels (Keras defaults to Glorot). */
#include <cgrad.h>

int main(int argc, char **argv)
{
    cg_model *model = cg_sequential("fashion_cnn", CG_SHAPE(28, 28, 1));
    cg_model_add(model, cg_conv2d(32, 3, .activation = CG_RELU, .kernel_initializer = cg_he_normal()));
    cg_model_add(model, cg_max_pooling2d(2));
    cg_model_add(model, cg_conv2d(64, 3, .activation = CG_RELU, .kernel_initializer = cg_he_normal()));
    cg_model_add(model, cg_max_pooling2d(2));
    cg_model_add(model, cg_flatten());
    cg_model_add(model, cg_dense(10));
    cg_compile(model, .optimizer = cg_adam(1e-3f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 64, .epochs = 5,
               .data = {.path = "/usr/share/datasets/fashion-mnist", .scale = 1.0f / 255.0f});
    return cg_main(model, argc, argv);
}
