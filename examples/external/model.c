/* iris: a small classifier of the iris flowers, built by an installed cgrad
 * from a project of its own (this folder: a Makefile and a CMake project).
 * `cgrad build model.c -o gen --emit-only` writes gen/iris.h, gen/iris.c
 * and gen/iris_main.c; the project compiles them against the installed
 * runtime, found with pkg-config (cgrad-rt). */
#include <cgrad.h>

int main(int argc, char **argv)
{
    cg_model *model = cg_sequential("iris", CG_SHAPE(4));
    cg_model_add(model, cg_dense(16, .activation = CG_RELU));
    cg_model_add(model, cg_dense(3));
    cg_compile(model, .optimizer = cg_adam(0.01f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 16, .epochs = 100,
               .data = {.path = "iris.csv", .test_split = 0.2f});
    return cg_main(model, argc, argv);
}
