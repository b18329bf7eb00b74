/* linear_regression, gradient-tape style: define y_hat = x . w + b and the
 * mean squared error, ask for d loss / d w and d loss / d b, and let cgrad
 * emit linreg_loss() and linreg_gradients(). The training loop is train.c. */
#include <cgrad.h>

int main(int argc, char **argv)
{
    cg_graph *g = cg_graph_new("linreg");
    cg_set_max_batch(g, 256);
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));        /* features */
    cg_t y = cg_placeholder(g, "y", CG_SHAPE(CG_BATCH, 1));        /* targets */
    cg_t w = cg_variable(g, "w", CG_SHAPE(3, 1), cg_zeros());
    cg_t b = cg_variable(g, "b", CG_SHAPE(1), cg_zeros());
    cg_t y_hat = cg_add(cg_matmul(x, w), b);
    cg_t loss = cg_mean(cg_square(cg_sub(y_hat, y)));
    cg_gradients(g, loss, w, b);
    return cg_main_graph(g, argc, argv);
}
