/* tabular: a binary classifier of a tabular CSV with a header. From the 30
 * measurements of a breast-mass biopsy image (examples/data/breast_cancer.csv,
 * 569 rows, the Wisconsin diagnostic data), it predicts whether the mass is
 * malignant (212 rows, the minority) or benign (357). The features span
 * 0.001 to 4254, so a Normalization layer comes first: fit computes each
 * feature's mean and variance from the training rows. Malignant rows weigh
 * more in the loss (class weights balanced over the training rows), and
 * early stopping keeps the weights of the epoch with the best validation
 * loss. 20% of the rows, drawn with a fixed seed, are the test set.
 *
 * Built with -DTABULAR_BASELINE it is the logistic-regression baseline on
 * the same split: Normalization, then a single Dense(1, sigmoid). */
#include <cgrad.h>

#ifndef CGRAD_DATA_DIR /* meson passes the absolute path; `cgrad build` run from the source root finds it here */
#define CGRAD_DATA_DIR "examples/data"
#endif

int main(int argc, char **argv)
{
#ifdef TABULAR_BASELINE
    cg_model *model = cg_sequential("tabular_logreg", CG_SHAPE(30));
    cg_model_add(model, cg_normalization());
#else
    cg_model *model = cg_sequential("tabular", CG_SHAPE(30));
    cg_model_add(model, cg_normalization());
    cg_model_add(model, cg_dense(16, .activation = CG_RELU));
    cg_model_add(model, cg_dense(8, .activation = CG_RELU));
#endif
    cg_model_add(model, cg_dense(1, .activation = CG_SIGMOID));
    cg_compile(model,
               .optimizer = cg_adam(1e-3f),
               .loss = CG_BINARY_CROSSENTROPY, .metric = CG_ACCURACY,
               .batch_size = 32, .epochs = 200,
               .data = {.path = CGRAD_DATA_DIR "/breast_cancer.csv", .label = "malignant", .test_split = 0.2f},
               .callbacks = {.monitor = "val_loss", .patience = 10, .restore_best_weights = true},
               .class_weight = {.balanced = true});
    return cg_main(model, argc, argv);
}
