/* gradcheck_model.c: the model program of test_gradcheck_cli.c. A custom
 * layer TanhDense, y = tanh(x . kernel + bias), then Dense(3), on the iris
 * features. Compiled with -DBREAK_GRADIENT, the layer's forward pass adds a
 * copy of x . kernel that autodiff cannot see: its value is 2 x . kernel,
 * but the gradient it derives is that of x . kernel alone, half of the true
 * one for every coordinate of the kernel (the bias's stays right). The
 * training binary's gradcheck command must pass the first build and fail
 * the second, naming tanh_dense_1/kernel.
 *
 * The copy goes through the labels of a softmax cross-entropy, which cgrad
 * treats as constants (they get no gradient, as the labels of TensorFlow's
 * softmax_cross_entropy_with_logits did): over two classes with equal
 * logits, the cross-entropy of the labels (u, 0) is u log 2. */
#include <cgrad.h>

/* The layer's configuration. */
typedef struct tanh_dense {
    int units;
} tanh_dense;

#ifdef BREAK_GRADIENT
/* u, of shape (n, k), with no gradient flowing back into it. */
static cg_t detached(cg_t u, int k)
{
    cg_t col = cg_reshape(u, CG_SHAPE(CG_BATCH, k, 1));
    cg_t zero = cg_less(col, col);          /* zeros of the same shape; a comparison has no gradient */
    cg_t logits = cg_concat(zero, zero, 2); /* two classes, equally likely */
    cg_t labels = cg_concat(col, zero, 2);  /* u and 0 */
    cg_t xent = cg_softmax_cross_entropy(logits, labels, false); /* (n, k): u log 2 */
    return cg_mul(xent, cg_scalar(u.g, 1.4426950408889634f));    /* / log 2 */
}
#endif

/* Keras' build + call: the weights, then tanh(inputs . kernel + bias). */
static cg_t tanh_dense_call(cg_layer_ctx *layer, cg_t inputs, void *self)
{
    const tanh_dense *d = self;
    int in_features = cg_shape_of(inputs).dims[1];
    cg_t kernel = cg_add_weight(layer, "kernel", CG_SHAPE(in_features, d->units), cg_glorot_uniform(), true);
    cg_t bias = cg_add_weight(layer, "bias", CG_SHAPE(d->units), cg_zeros(), true);
    cg_t z = cg_matmul(inputs, kernel);
#ifdef BREAK_GRADIENT
    z = cg_add(z, detached(z, d->units)); /* forward: 2 x . kernel; gradient: that of x . kernel */
#endif
    return cg_tanh(cg_add(z, bias));
}

int main(int argc, char **argv)
{
    static tanh_dense hidden = {8};
    cg_model *model = cg_sequential("tanh_check", CG_SHAPE(4));
    cg_model_add(model, cg_custom_layer("TanhDense", tanh_dense_call, &hidden));
    cg_model_add(model, cg_dense(3));
    cg_compile(model, .optimizer = cg_adam(1e-2f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 16);
    return cg_main(model, argc, argv);
}
