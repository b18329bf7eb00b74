/* custom_loop, gradient-tape style with a custom loss: a small network
 * y_hat = tanh(x W1 + b1) W2 + b2 fitted with the Huber loss, which the
 * wild targets (one in ten, 4 too high) pull by about d / 9 instead of the
 * 0.4 by which they would shift a squared error's fit.
 * cgrad emits curve_loss(), curve_gradients() and curve_apply_gradients()
 * (Adam); the loop in train.c clips the gradients by their global norm
 * between the last two, as a TensorFlow user would between tape.gradient and
 * optimizer.apply_gradients. The fitted curve is an output, y_hat, so
 * curve_predict(s, n, x, y_hat) computes it without the targets. */
#include <cgrad.h>

int main(int argc, char **argv)
{
    cg_graph *g = cg_graph_new("curve");
    cg_set_max_batch(g, 256);
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 1));
    cg_t y = cg_placeholder(g, "y", CG_SHAPE(CG_BATCH, 1));
    cg_t w1 = cg_variable(g, "w1", CG_SHAPE(1, 32), cg_uniform(-1.5f, 1.5f));
    cg_t b1 = cg_variable(g, "b1", CG_SHAPE(32), cg_uniform(-1.5f, 1.5f));
    cg_t w2 = cg_variable(g, "w2", CG_SHAPE(32, 1), cg_glorot_uniform());
    cg_t b2 = cg_variable(g, "b2", CG_SHAPE(1), cg_zeros());
    cg_t y_hat = cg_add(cg_matmul(cg_tanh(cg_add(cg_matmul(x, w1), b1)), w2), b2);

    /* Huber loss with delta d = 0.1: 0.5 r^2 where |r| < d, d (|r| - 0.5 d) elsewhere */
    const float d = 0.1f;
    cg_t r = cg_sub(y_hat, y), a = cg_abs(r);
    cg_t quadratic = cg_mul(cg_scalar(g, 0.5f), cg_square(r));
    cg_t linear = cg_mul(cg_scalar(g, d), cg_sub(a, cg_scalar(g, 0.5f * d)));
    cg_t loss = cg_mean(cg_where(cg_less(a, cg_scalar(g, d)), quadratic, linear));

    cg_gradients(g, loss, w1, b1, w2, b2);
    cg_output(g, "y_hat", y_hat);
    cg_apply_gradients(g, cg_adam(0.01f));
    return cg_main_graph(g, argc, argv);
}
