/* transfer: fine-tuning. The same feature layers as transfer_base (same
 * names, same shapes) under a new head, trained on the digits 5..9 with the
 * features frozen: start it from the base model's checkpoint,
 *
 *   transfer fit --init-from base.safetensors
 *
 * which loads features_1 and features_2 by name and leaves new_head at its
 * initial values. Frozen layers get no gradient and no optimizer state.
 * `--train-all` (given to this program, before cg_main's own options)
 * builds the same model with every layer trainable, for comparison. */
#include <cgrad.h>

#include <string.h>

#ifndef CGRAD_DATA_DIR   /* meson passes the absolute path; `cgrad build` run from the source root finds it here */
#define CGRAD_DATA_DIR "examples/data"
#endif

int main(int argc, char **argv)
{
    bool train_all = argc > 1 && !strcmp(argv[1], "--train-all");
    if (train_all) {   /* not one of cg_main's options */
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    cg_model *model = cg_sequential("transfer", CG_SHAPE(64));
    cg_model_add(model, cg_dense(64, .activation = CG_RELU, .name = "features_1"));
    cg_model_add(model, cg_dense(32, .activation = CG_RELU, .name = "features_2"));
    cg_model_add(model, cg_dense(5, .name = "new_head"));
    if (!train_all) {
        cg_set_trainable(model, "features_1", false);
        cg_set_trainable(model, "features_2", false);
    }
    cg_compile(model, .optimizer = cg_adam(1e-2f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 32, .epochs = 20,
               .data = {.path = CGRAD_DATA_DIR "/digits.csv.gz", .scale = 1.0f / 16.0f, .test_split = 0.2f,
                        .class_range = {5, 9}});
    return cg_main(model, argc, argv);
}
