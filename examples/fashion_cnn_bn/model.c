/* fashion_cnn_bn: a convolutional network with BatchNormalization and
 * Dropout, the two layers that behave differently in training (batch
 * statistics, random masks) and in inference (moving averages, no mask).
 * Conv2D(32, 3x3, same) -> BatchNormalization -> relu -> MaxPooling2D(2) ->
 * Conv2D(64, 3x3, same) -> BatchNormalization -> relu -> MaxPooling2D(2) ->
 * Flatten -> Dropout(0.3) -> Dense(10). */
#include <cgrad.h>

int main(int argc, char **argv)
{
    cg_model *model = cg_sequential("fashion_cnn_bn", CG_SHAPE(28, 28, 1));
    cg_model_add(model, cg_conv2d(32, 3, .padding = CG_SAME, .use_bias = false));
    cg_model_add(model, cg_batch_normalization());
    cg_model_add(model, cg_activation_layer(CG_RELU));
    cg_model_add(model, cg_max_pooling2d(2));
    cg_model_add(model, cg_conv2d(64, 3, .padding = CG_SAME, .use_bias = false));
    cg_model_add(model, cg_batch_normalization());
    cg_model_add(model, cg_activation_layer(CG_RELU));
    cg_model_add(model, cg_max_pooling2d(2));
    cg_model_add(model, cg_flatten());
    cg_model_add(model, cg_dropout(0.3f));
    cg_model_add(model, cg_dense(10));
    cg_compile(model, .optimizer = cg_adam(1e-3f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 64, .epochs = 3,
               .data = {.path = "/usr/share/datasets/fashion-mnist", .scale = 1.0f / 255.0f});
    return cg_main(model, argc, argv);
}
