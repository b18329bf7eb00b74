/* digits_mlp: 8x8 handwritten digits (1797 samples, CSV), trains in seconds.
 * The last 20% of the file is held out as the test set. */
#include <cgrad.h>

#ifndef CGRAD_DATA_DIR   /* meson passes the absolute path; `cgrad build` run from the source root finds it here */
#define CGRAD_DATA_DIR "examples/data"
#endif

int main(int argc, char **argv)
{
    cg_model *model = cg_sequential("digits_mlp", CG_SHAPE(64));
    cg_model_add(model, cg_dense(64, .activation = CG_RELU));
    cg_model_add(model, cg_dense(10));
    cg_compile(model,
               .optimizer = cg_adam(1e-3f),
               .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY,
               .batch_size = 32, .epochs = 60,
               .data = {.path = CGRAD_DATA_DIR "/digits.csv.gz", .scale = 1.0f / 16.0f, .test_split = 0.2f});
    return cg_main(model, argc, argv);
}
