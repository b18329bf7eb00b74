/* fw_main.c: a model's emitted code driven on the board, its results printed.
 *
 * The same file builds for the Cortex-M4F (with board_mps2.c) and for the
 * host (with board_host.c), so the two runs can be compared line by line.
 * fw_model.h, written per model by test_firmware.c, names the model's entry
 * points and macros (model_state, model_predict_checked, MODEL_IN_FEATURES,
 * ...) and holds raw inputs as C arrays: the program reads no files. It
 * defines FW_PREDICT (predict each input alone) or FW_TRAIN (train steps on
 * one batch), and FW_INIT when the state comes from model_init(&state, 42)
 * (a predict build with weights in flash needs no init). FW_INT8 adds a run
 * of the --quantize int8 model (NAME_int8.h) on the same inputs after the
 * float predictions.
 *
 * Raw inputs (pixel values 0-255, token ids, ...) become the model's inputs
 * as the header says: raw * MODEL_INPUT_SCALE + MODEL_INPUT_OFFSET.
 *
 * Output, one record a line (floats as the hex of their bits, see print.h):
 *   state_bytes S          sizeof(model_state) as the target compiler lays it out
 *   ram_bytes R            the header's NAME_RAM_BYTES
 *   predict I V0 V1 ...    the outputs for input I
 *   int8 I C Y0 Y1 ...     the int8 model's class C and int8 outputs for input I
 *                          (each Y as its byte, 0-255; FW_INT8 only)
 *   loss K L               the loss train step K reported
 *   instructions WHAT N    instructions one call took (0 where not counted)
 *   error WHAT CODE        an entry point refused its arguments (exit 2)
 *   done                   the end (exit 0) */
#include "board.h"
#include "print.h"

#include "fw_model.h"

static model_state state; /* all the model's RAM: .bss */

/* Prints "NAME V\n". */
static void put_value(const char *name, uint64_t v)
{
    board_puts(name);
    board_puts(" ");
    print_u64(v);
    board_puts("\n");
}

/* Prints "instructions WHAT N\n" for the call that has just returned. */
static void put_instructions(const char *what)
{
    uint64_t n = board_count_read();
    board_puts("instructions ");
    board_puts(what);
    board_puts(" ");
    print_u64(n);
    board_puts("\n");
}

/* Reports an entry point's error code and ends the program with status 2. */
static void fail(const char *what, int code)
{
    board_puts("error ");
    board_puts(what);
    board_puts(" ");
    print_u64((uint64_t)code);
    board_puts("\n");
    board_exit(2);
}

/* Fills x[0..count) with the model's inputs for raw[0..count). */
static void preprocess(const float *raw, float *x, long count)
{
    for (long k = 0; k < count; k++)
        x[k] = raw[k] * MODEL_INPUT_SCALE + MODEL_INPUT_OFFSET;
}

#ifdef FW_PREDICT
/* Predicts each of the FW_SAMPLES inputs alone (batch 1) and prints its outputs. */
static void run_predict(void)
{
    static float x[MODEL_IN_FEATURES], out[MODEL_OUT_FEATURES];
    for (int i = 0; i < FW_SAMPLES; i++) {
        preprocess(fw_inputs + (long)i * MODEL_IN_FEATURES, x, MODEL_IN_FEATURES);
        board_count_start();
        int rc = model_predict_checked(&state, 1, x, out);
        put_instructions("predict");
        if (rc != 0)
            fail("predict", rc);
        board_puts("predict ");
        print_u64((uint64_t)i);
        for (int j = 0; j < MODEL_OUT_FEATURES; j++) {
            board_puts(" ");
            print_f32_bits(out[j]);
        }
        board_puts("\n");
    }
}
#endif

#ifdef FW_INT8
/* Quantizes each of the FW_SAMPLES inputs and runs the int8 model on it,
 * printing its class and int8 outputs; counts both calls. */
static void run_int8(void)
{
    static float x[MODEL_IN_FEATURES], out[MODEL_OUT_FEATURES];
    static int8_t q[MODEL_IN_FEATURES], y[MODEL_OUT_FEATURES];
    for (int i = 0; i < FW_SAMPLES; i++) {
        preprocess(fw_inputs + (long)i * MODEL_IN_FEATURES, x, MODEL_IN_FEATURES);
        board_count_start();
        model_quantize_input(x, q);
        put_instructions("quantize_int8");
        board_count_start();
        int c = model_predict_int8(q, y, out);
        put_instructions("predict_int8");
        board_puts("int8 ");
        print_u64((uint64_t)i);
        board_puts(" ");
        print_u64((uint64_t)c);
        for (int j = 0; j < MODEL_OUT_FEATURES; j++) {
            board_puts(" ");
            print_u64((uint8_t)y[j]);
        }
        board_puts("\n");
    }
}
#endif

#ifdef FW_TRAIN
/* Takes FW_STEPS train steps on the batch of FW_SAMPLES inputs and labels,
 * printing the loss of each (the loss before that step's update). */
static void run_train(void)
{
    static float x[FW_SAMPLES * MODEL_IN_FEATURES];
    float metrics[MODEL_NUM_METRICS > 0 ? MODEL_NUM_METRICS : 1];
    preprocess(fw_inputs, x, FW_SAMPLES * MODEL_IN_FEATURES);
    for (int k = 0; k < FW_STEPS; k++) {
        float loss = 0.0f;
        board_count_start();
        int rc = model_train_step_checked(&state, FW_SAMPLES, x, fw_labels, &loss, metrics);
        put_instructions("train_step");
        if (rc != 0)
            fail("train_step", rc);
        board_puts("loss ");
        print_u64((uint64_t)k);
        board_puts(" ");
        print_f32_bits(loss);
        board_puts("\n");
    }
}
#endif

int main(void)
{
    put_value("state_bytes", sizeof state);
    put_value("ram_bytes", MODEL_RAM_BYTES);
#ifdef FW_INIT
    model_init(&state, 42);
#endif
#ifdef FW_PREDICT
    run_predict();
#endif
#ifdef FW_INT8
    run_int8();
#endif
#ifdef FW_TRAIN
    run_train();
#endif
    board_puts("done\n");
    return 0;
}
