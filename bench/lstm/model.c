/* lstm_bench: the recurrent benchmark model, LSTM(32) over windows of 12
 * steps of one value, its last hidden state into Dense(1), MSE, Adam 1e-3,
 * batch 32: the shape bench/torch_ref.py gives nn.LSTM. Its default data is
 * the monthly series of the timeseries_rnn example, so `fit` works too;
 * bench/run.sh times `bench` (training steps on one batch) and batch-1
 * predict. */
#include <cgrad.h>

#ifndef CGRAD_DATA_DIR
#define CGRAD_DATA_DIR "examples/data"
#endif

int main(int argc, char **argv)
{
    cg_model *model = cg_sequential("lstm_bench", CG_SHAPE(12, 1));
    cg_model_add(model, cg_lstm(32));
    cg_model_add(model, cg_dense(1));
    cg_compile(model, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .metric = CG_METRIC_MAE, .batch_size = 32,
               .epochs = 100,
               .data = {.path = CGRAD_DATA_DIR "/elec_equip.csv",
                        .series = {.column = "STS.M.I7.W.TOVT.NS0016.4.000", .window = 12,
                                   .val_steps = 24, .test_steps = 24, .season = 12}});
    return cg_main(model, argc, argv);
}
