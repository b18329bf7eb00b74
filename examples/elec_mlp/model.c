/* elec_mlp: a monthly forecaster made of Dense layers. From the last 12 months
 * of the Eurostat index of electrical-equipment manufacturing
 * (examples/data/elec_equip.csv, 257 months), it predicts the next month. The
 * last 24 months are the test set and the 24 before them the validation set;
 * evaluate reports the errors in index points beside those of the
 * seasonal-naive forecast (the same month a year earlier). */
#include <cgrad.h>

#ifndef CGRAD_DATA_DIR   /* meson passes the absolute path; `cgrad build` run from the source root finds it here */
#define CGRAD_DATA_DIR "examples/data"
#endif

int main(int argc, char **argv)
{
    cg_model *model = cg_sequential("elec_mlp", CG_SHAPE(12));
    cg_model_add(model, cg_dense(32, .activation = CG_RELU));
    cg_model_add(model, cg_dense(1));
    cg_compile(model,
               .optimizer = cg_adam(1e-3f),
               .loss = CG_MSE, .metric = CG_METRIC_MAE,
               .batch_size = 16, .epochs = 200,
               .data = {.path = CGRAD_DATA_DIR "/elec_equip.csv",
                        .series = {.column = "STS.M.I7.W.TOVT.NS0016.4.000", .window = 12,
                                   .val_steps = 24, .test_steps = 24, .season = 12}});
    return cg_main(model, argc, argv);
}
