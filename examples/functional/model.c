/* functional: a Keras-style functional model with two inputs and two
 * outputs on Fisher's iris data. From the sepal measurements (length,
 * width) and the petal length it predicts the petal width (regression) and
 * the species (three classes) at once:
 *
 *   sepal (2) ------ Dense(16, relu) "sepal_tower" --+
 *                                                    +-- Concatenate -- Dense(32, relu) "joint" --+-- Dense(1) "petal_width"
 *   petal_length (1) -- Dense(8, relu) "petal_tower" +                                            +-- Dense(3) "species"
 *
 * The data file's columns are sepal length, sepal width, petal length,
 * petal width, species: the two inputs take the first three columns in the
 * order of the cg_input calls, the labels the last two in the order of the
 * outputs. The total loss is MSE(petal_width) + cross-entropy(species). */
#include <cgrad.h>

#ifndef CGRAD_DATA_DIR   /* meson passes the absolute path; `cgrad build` run from the source root finds it here */
#define CGRAD_DATA_DIR "examples/data"
#endif

int main(int argc, char **argv)
{
    cg_model *model = cg_functional("functional");
    cg_t sepal = cg_input(model, "sepal", CG_SHAPE(2));
    cg_t petal_length = cg_input(model, "petal_length", CG_SHAPE(1));
    cg_t s = cg_apply(model, cg_dense(16, .activation = CG_RELU, .name = "sepal_tower"), sepal);
    cg_t p = cg_apply(model, cg_dense(8, .activation = CG_RELU, .name = "petal_tower"), petal_length);
    cg_t joint = cg_apply(model, cg_dense(32, .activation = CG_RELU, .name = "joint"), cg_apply(model, cg_concatenate(), s, p));
    cg_t width = cg_apply(model, cg_dense(1, .name = "petal_width"), joint);
    cg_t species = cg_apply(model, cg_dense(3, .name = "species"), joint);
    cg_set_outputs(model, width, species);
    cg_compile(model, .optimizer = cg_adam(1e-2f), .batch_size = 16, .epochs = 150,
               .outputs = {{"petal_width", CG_MSE, .metric = CG_METRIC_MAE},
                           {"species", CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true, .metric = CG_ACCURACY}},
               .data = {.path = CGRAD_DATA_DIR "/iris.csv", .test_split = 0.2f});
    return cg_main(model, argc, argv);
}
