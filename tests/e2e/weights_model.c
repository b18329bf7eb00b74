/* weights_model.c: the model program of test_weights.c: logistic
 * regression of two features (Dense(1, sigmoid), binary cross-entropy),
 * whose loss takes sample and class weights. */
#include <cgrad.h>

int main(int argc, char **argv)
{
    cg_model *m = cg_sequential("weighted_logreg", CG_SHAPE(2));
    cg_model_add(m, cg_dense(1, .activation = CG_SIGMOID));
    cg_compile(m, .optimizer = cg_adam(0.05f), .loss = CG_BINARY_CROSSENTROPY, .metric = CG_ACCURACY, .batch_size = 32,
               .max_batch = 64);
    return cg_main(m, argc, argv);
}
