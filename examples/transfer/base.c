/* transfer_base: the pre-trained model of the transfer example. An MLP
 * learns the digits 0..4 of the 8x8 digits; its feature layers
 * (features_1, features_2) are what the fine-tuned model reuses. */
#include <cgrad.h>

#ifndef CGRAD_DATA_DIR   /* meson passes the absolute path; `cgrad build` run from the source root finds it here */
#define CGRAD_DATA_DIR "examples/data"
#endif

int main(int argc, char **argv)
{
    cg_model *model = cg_sequential("transfer_base", CG_SHAPE(64));
    cg_model_add(model, cg_dense(64, .activation = CG_RELU, .name = "features_1"));
    cg_model_add(model, cg_dense(32, .activation = CG_RELU, .name = "features_2"));
    cg_model_add(model, cg_dense(5, .name = "base_head"));
    cg_compile(model, .optimizer = cg_adam(1e-3f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 32, .epochs = 40,
               .data = {.path = CGRAD_DATA_DIR "/digits.csv.gz", .scale = 1.0f / 16.0f, .test_split = 0.2f,
                        .class_range = {0, 4}});
    return cg_main(model, argc, argv);
}
