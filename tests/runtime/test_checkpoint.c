/* test_checkpoint.c: safetensors checkpoints: round trip, the header layout,
 * errors naming the tensor and shapes, and atomic writes. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Fills n parameters with distinct values. */
static void fill(float *p, int n, float base)
{
    int i;
    for (i = 0; i < n; i++)
        p[i] = base + (float)i * 0.37f - 1.0f / (float)(i + 3);
}

Test(checkpoint, round_trip_and_header)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "w.safetensors");
    float a[15], b[15];
    cgrt_error err;
    size_t len;
    char *file;
    unsigned long long n = 0;
    int k;
    fill(a, 15, 0.5f);
    memset(b, 0, sizeof b);
    cr_assert_eq(cgrt_save_checkpoint(&tiny_model, a, p, &err), 0, "%s", err.msg);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, b, p, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    file = t_read(p, &len);
    for (k = 7; k >= 0; k--)
        n = n << 8 | (unsigned char)file[k];
    cr_assert_eq(n % 8, 0);
    cr_assert_eq(len, 8 + n + sizeof a);
    cr_assert_eq(file[8], '{');
    cr_assert(strstr(file + 8, "\"__metadata__\":{\"format\":\"pt\",\"model\":\"tiny\"}") != NULL);
    cr_assert(strstr(file + 8, "\"dense/kernel\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]}") != NULL);
    cr_assert(strstr(file + 8, "\"dense/bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]}") != NULL);
    cr_assert_eq(memcmp(file + 8 + n, a, sizeof a), 0); /* little-endian host */
    free(file);
    cr_assert_eq(t_count_entries(dir, ".tmp."), 0);
}

Test(checkpoint, other_shape_names_tensor_and_shapes)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "w.safetensors");
    float a[32] = {0};
    cgrt_error err;
    cr_assert_eq(cgrt_save_checkpoint(&tiny_model, a, p, &err), 0, "%s", err.msg);
    cr_assert_eq(cgrt_load_checkpoint(&tiny5_model, a, p, &err), -1);
    cr_assert(strstr(err.msg, "w.safetensors: tensor \"dense/kernel\" has shape [4,3] in file but model tiny5 "
                              "expects [5,3]") != NULL, "%s", err.msg);
}

Test(checkpoint, missing_tensor_is_named)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "w.safetensors");
    float a[32] = {0};
    cgrt_error err;
    cr_assert_eq(cgrt_save_checkpoint(&tiny_model, a, p, &err), 0, "%s", err.msg);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_extra_model, a, p, &err), -1);
    cr_assert(strstr(err.msg, "tensor \"dense_2/kernel\" is missing (the checkpoint seems to be from model tiny, not "
                              "tiny_extra)") != NULL, "%s", err.msg);
}

Test(checkpoint, truncated_and_garbage_files)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "w.safetensors"), *g = t_path(dir, "g.safetensors");
    float a[15], b[15];
    cgrt_error err;
    size_t len;
    char *file;
    fill(a, 15, 1.0f);
    memcpy(b, a, sizeof b);
    cr_assert_eq(cgrt_save_checkpoint(&tiny_model, a, p, &err), 0, "%s", err.msg);
    file = t_read(p, &len);
    t_write(p, file, len - 10);
    memset(b, 0, sizeof b);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, b, p, &err), -1);
    cr_assert(strstr(err.msg, "w.safetensors: truncated") != NULL, "%s", err.msg);
    cr_assert_eq(b[0], 0.0f, "a failed load must not touch the parameters");
    t_write(p, file, 100);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, b, p, &err), -1);
    cr_assert(strstr(err.msg, "w.safetensors: truncated") != NULL, "%s", err.msg);
    t_write(p, file, 5);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, b, p, &err), -1);
    cr_assert(strstr(err.msg, "w.safetensors: not a safetensors file") != NULL, "%s", err.msg);
    free(file);
    t_write(g, "epoch,loss,accuracy\n1,2,3\n", 26);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, b, g, &err), -1);
    cr_assert(strstr(err.msg, "g.safetensors: not a safetensors file") != NULL, "%s", err.msg);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, b, t_path(dir, "none"), &err), -1);
    cr_assert(strstr(err.msg, "none: cannot open") != NULL, "%s", err.msg);
}

Test(checkpoint, dtype_and_bad_json)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "h.safetensors");
    const char *h = "{\"dense/kernel\":{\"dtype\":\"F16\",\"shape\":[4,3],\"data_offsets\":[0,24]},"
                    "\"dense/bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}}";
    char buf[512];
    float b[15];
    cgrt_error err;
    size_t n = strlen(h), k;
    for (k = 0; k < 8; k++)
        buf[k] = (char)(k == 0 ? n : 0);
    memcpy(buf + 8, h, n);
    memset(buf + 8 + n, 0, 36);
    t_write(p, buf, 8 + n + 36);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, b, p, &err), -1);
    cr_assert(strstr(err.msg, "h.safetensors: tensor \"dense/kernel\" has dtype F16, expected F32") != NULL, "%s",
              err.msg);
    buf[8 + 15] = ']'; /* the colon after the first name: broken JSON */
    t_write(p, buf, 8 + n + 36);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, b, p, &err), -1);
    cr_assert(strstr(err.msg, "not a safetensors file (bad JSON header") != NULL, "%s", err.msg);
}

Test(checkpoint, failed_write_keeps_the_old_file_and_no_temp)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "w.safetensors");
    float a[15], b[15];
    struct rlimit lim;
    cgrt_error err;
    size_t len1, len2;
    char *before, *after;
    fill(a, 15, 0.25f);
    fill(b, 15, 9.0f);
    cr_assert_eq(cgrt_save_checkpoint(&tiny_model, a, p, &err), 0, "%s", err.msg);
    before = t_read(p, &len1);
    /* a missing folder: nothing is created */
    cr_assert_eq(cgrt_save_checkpoint(&tiny_model, b, t_path(dir, "no/such/w.safetensors"), &err), -1);
    cr_assert(strstr(err.msg, "no/such/w.safetensors: cannot create") != NULL, "%s", err.msg);
    /* a full disk, simulated with a file size limit: the write fails midway */
    signal(SIGXFSZ, SIG_IGN);
    lim.rlim_cur = lim.rlim_max = 64;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    cr_assert_eq(cgrt_save_checkpoint(&tiny_model, b, p, &err), -1);
    cr_assert(strstr(err.msg, "w.safetensors: cannot write checkpoint") != NULL, "%s", err.msg);
    after = t_read(p, &len2);
    cr_assert_eq(len1, len2);
    cr_assert_eq(memcmp(before, after, len1), 0, "the old checkpoint was modified");
    cr_assert_eq(t_count_entries(dir, ".tmp."), 0, "a temporary file was left behind");
    free(before);
    free(after);
}
