/* optim_ref.c: an optimizer's steps against PyTorch's (optim_ref.h). */
#include "optim_ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Writes count floats to dir/file. */
static void or_write_floats(const char *dir, const char *file, const float *v, long count)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(v, sizeof(float), (size_t)count, f) == (size_t)count && fclose(f) == 0, "cannot write %s",
              path);
}

/* Writes dir/spec.txt: the batches' sizes, the loss, the optimizer's lines,
 * the layers, and where each parameter sits in the parameter block. */
static void or_write_spec(hx_module *mod, int steps, const char *optimizer_lines)
{
    char path[512];
    cr_assert(snprintf(path, sizeof path, "%s/spec.txt", mod->dir) < (int)sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "steps %d\nn %d\nin %d\nloss mse\n%s", steps, OR_N, OR_IN, optimizer_lines);
    fprintf(f, "layer dense dense_1 8 tanh\nlayer dense dense_2 %d linear\n", OR_OUT);
    const int dims[2][2] = {{OR_IN, 8}, {8, OR_OUT}};
    for (int l = 0; l < 2; l++) {
        char pname[64];
        long count, off;
        snprintf(pname, sizeof pname, "dense_%d/kernel", l + 1);
        cr_assert((off = hx_param(mod, pname, &count)) >= 0, "no %s", pname);
        fprintf(f, "param %s %ld %ld %d %d\n", pname, off, count, dims[l][0], dims[l][1]);
        snprintf(pname, sizeof pname, "dense_%d/bias", l + 1);
        cr_assert((off = hx_param(mod, pname, &count)) >= 0, "no %s", pname);
        fprintf(f, "param %s %ld %ld %d\n", pname, off, count, dims[l][1]);
    }
    cr_assert(fclose(f) == 0);
}

void or_prepare(or_run *run, const char *name, cg_optimizer opt, cg_flavour flavour, const char *optimizer_lines,
                int steps, uint64_t seed, float scale)
{
    cr_assert(steps >= 1 && steps <= OR_MAX_STEPS);
    cg_model *m = cg_sequential(name, CG_SHAPE(OR_IN));
    cg_model_add(m, cg_dense(8, .activation = CG_TANH));
    cg_model_add(m, cg_dense(OR_OUT));
    cg_compile(m, .optimizer = opt, .loss = CG_MSE, .batch_size = OR_N);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    run->m = m;
    run->steps = steps;
    hx_module *mod = &run->mod;
    cr_assert(hx_build_model(mod, m, flavour, NULL) == 0, "%s", mod->err);
    or_write_spec(mod, steps, optimizer_lines);
    or_write_floats(mod->dir, "params.bin", mod->params, mod->param_floats);
    static float x[OR_MAX_STEPS * OR_N * OR_IN], y[OR_MAX_STEPS * OR_N * OR_OUT];
    long nx = (long)steps * OR_N * OR_IN, ny = (long)steps * OR_N * OR_OUT;
    uint64_t s = seed;
    for (long i = 0; i < nx + ny; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        float u = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f * scale - scale;
        if (i < nx)
            x[i] = u;
        else
            y[i - nx] = u;
    }
    or_write_floats(mod->dir, "x.bin", x, nx);
    or_write_floats(mod->dir, "y.bin", y, ny);
    for (int k = 0; k < steps; k++) {
        float metric;
        mod->train_step(mod->state, OR_N, x + k * OR_N * OR_IN, y + k * OR_N * OR_OUT, &run->loss[k], &metric);
    }
}

int or_run_torch(const char *script, or_run *runs, int count, char *log, size_t size)
{
    const char *dirs[16];
    cr_assert(count <= 16);
    for (int k = 0; k < count; k++)
        dirs[k] = runs[k].mod.dir;
    int status = hx_run_python(script, dirs, count, log, size);
    if (status == 77)
        for (int k = 0; k < count; k++) {
            hx_close(&runs[k].mod);
            cg_model_free(runs[k].m);
        }
    return status;
}

void or_verify(or_run *run, const char *without)
{
    hx_module *mod = &run->mod;
    char path[512];
    size_t bytes;
    cr_assert(snprintf(path, sizeof path, "%s/out.bin", mod->dir) < (int)sizeof path);
    float *ref = (float *)hx_read_file(path, &bytes);
    long want = run->steps + 2 * mod->param_floats;
    cr_assert(ref && bytes == sizeof(float) * (size_t)want, "%s: out.bin has %zu bytes, expected %ld", mod->name, bytes,
              want * 4);
    for (int k = 0; k < run->steps; k++)
        cr_expect(fabsf(run->loss[k] - ref[k]) <= 1e-6f + 1e-4f * fabsf(ref[k]), "%s: step %d: loss %.8g, torch %.8g",
                  mod->name, k + 1, (double)run->loss[k], (double)ref[k]);
    double worst = -1, gap = 0;
    long wi = 0;
    const float *after = ref + run->steps, *plain = after + mod->param_floats;
    for (long i = 0; i < mod->param_floats; i++) {
        double tol = 1e-5 + 1e-4 * fabs((double)after[i]), r = fabs((double)mod->params[i] - after[i]) / tol;
        if (!(r <= worst))
            worst = isnan(r) ? INFINITY : r, wi = i;
        gap = fmax(gap, fabs((double)plain[i] - after[i]) / tol);
    }
    cr_expect(worst <= 1.0,
              "%s: after %d steps parameter %ld is %.8g in cgrad, %.8g in torch (allowed 1e-5 + 1e-4 |torch|)",
              mod->name, run->steps, wi, (double)mod->params[wi], (double)after[wi]);
    cr_expect(gap > 10.0, "%s: %s ends within %.3g tolerances: the difference is not visible", mod->name, without, gap);
    free(ref);
    hx_close(mod);
    cg_model_free(run->m);
}
