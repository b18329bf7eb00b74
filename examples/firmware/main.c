/* main.c: a firmware that recognises handwritten digits with cgrad's emitted
 * code. It does what a device would: take raw sensor readings (an 8x8
 * grid of ink levels 0..16, the digits example's data), bring them to the
 * model's scale with the preprocessing the header states, predict, and act
 * on the class (here: print it).
 *
 * Nothing here depends on the board: board.h gives text out, an exit status
 * and an instruction counter (board/board_mps2.c for QEMU's Cortex-M4F,
 * board/board_host.c for a desktop). The model comes from
 *
 *   cgrad build examples/digits_mlp/model.c -o fw --target firmware \
 *       --mode predict --weights digits.safetensors --max-batch 1
 *
 * and is all in digits_mlp.h, digits_mlp.c and digits_mlp_weights.c: no heap,
 * no stdio; its RAM is the one static state below (DIGITS_MLP_RAM_BYTES). */
#include "board.h"
#include "print.h"

#include "digits_mlp.h"

#include <stdint.h>

static digits_mlp_state model; /* .bss: DIGITS_MLP_RAM_BYTES */

/* Four readings of the sensor, as the device would get them. */
/* clang-format off */
static const uint8_t readings[4][DIGITS_MLP_IN_FEATURES] = {
    {
         0,  0,  5, 13,  9,  1,  0,  0,
         0,  0, 13, 15, 10, 15,  5,  0,
         0,  3, 15,  2,  0, 11,  8,  0,
         0,  4, 12,  0,  0,  8,  8,  0,
         0,  5,  8,  0,  0,  9,  8,  0,
         0,  4, 11,  0,  1, 12,  7,  0,
         0,  2, 14,  5, 10, 12,  0,  0,
         0,  0,  6, 13, 10,  0,  0,  0,
    },
    {
         0,  0,  0, 12, 13,  5,  0,  0,
         0,  0,  0, 11, 16,  9,  0,  0,
         0,  0,  3, 15, 16,  6,  0,  0,
         0,  7, 15, 16, 16,  2,  0,  0,
         0,  0,  1, 16, 16,  3,  0,  0,
         0,  0,  1, 16, 16,  6,  0,  0,
         0,  0,  1, 16, 16,  6,  0,  0,
         0,  0,  0, 11, 16, 10,  0,  0,
    },
    {
         0,  0,  0,  4, 15, 12,  0,  0,
         0,  0,  3, 16, 15, 14,  0,  0,
         0,  0,  8, 13,  8, 16,  0,  0,
         0,  0,  1,  6, 15, 11,  0,  0,
         0,  1,  8, 13, 15,  1,  0,  0,
         0,  9, 16, 16,  5,  0,  0,  0,
         0,  3, 13, 16, 16, 11,  5,  0,
         0,  0,  0,  3, 11, 16,  9,  0,
    },
    {
         0,  0,  7, 15, 13,  1,  0,  0,
         0,  8, 13,  6, 15,  4,  0,  0,
         0,  2,  1, 13, 13,  0,  0,  0,
         0,  0,  2, 15, 11,  1,  0,  0,
         0,  0,  0,  1, 12, 12,  1,  0,
         0,  0,  0,  0,  1, 10,  8,  0,
         0,  0,  8,  4,  5, 14,  9,  0,
         0,  0,  7, 13, 13,  9,  0,  0,
    },
};
/* clang-format on */

/* The class of one reading, or -1 when the model refuses the call. */
static int classify(const uint8_t raw[DIGITS_MLP_IN_FEATURES])
{
    float x[DIGITS_MLP_IN_FEATURES], scores[DIGITS_MLP_OUT_FEATURES];
    for (int i = 0; i < DIGITS_MLP_IN_FEATURES; i++) /* the preprocessing the model was trained with */
        x[i] = (float)raw[i] * DIGITS_MLP_INPUT_SCALE + DIGITS_MLP_INPUT_OFFSET;
    if (digits_mlp_predict_checked(&model, 1, x, scores) != DIGITS_MLP_OK)
        return -1;
    int best = 0;
    for (int k = 1; k < DIGITS_MLP_OUT_FEATURES; k++)
        if (scores[k] > scores[best])
            best = k;
    return best;
}

int main(void)
{
    for (int i = 0; i < 4; i++) {
        board_count_start();
        int digit = classify(readings[i]);
        uint64_t instructions = board_count_read();
        board_puts("reading ");
        print_u64((uint64_t)i);
        if (digit < 0) {
            board_puts(": refused\n");
            board_exit(1);
        }
        board_puts(": digit ");
        print_u64((uint64_t)digit);
        board_puts(" (");
        print_u64(instructions);
        board_puts(" instructions)\n");
    }
    board_exit(0);
}
