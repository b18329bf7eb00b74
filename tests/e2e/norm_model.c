/* norm_model.c: the model program of test_normalization.c. Normalization
 * (statistics computed by fit from the training rows) then Dense(1), a
 * regression of three features of very different scales. */
#include <cgrad.h>

int main(int argc, char **argv)
{
    cg_model *m = cg_sequential("norm_reg", CG_SHAPE(3));
    cg_model_add(m, cg_normalization());
    cg_model_add(m, cg_dense(1));
    cg_compile(m, .optimizer = cg_sgd(0.05f, 0.0f, false), .loss = CG_MSE, .metric = CG_METRIC_MAE, .batch_size = 8);
    return cg_main(m, argc, argv);
}
