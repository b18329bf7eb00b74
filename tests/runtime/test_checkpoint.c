/* test_checkpoint.c: safetensors checkpoints: round trip, the header layout,
 * errors naming the tensor and shapes, and atomic writes. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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
                              "expects [5,3]") != NULL,
              "%s", err.msg);
}

Test(checkpoint, missing_tensor_is_named)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "w.safetensors");
    float a[32] = {0};
    cgrt_error err;
    cr_assert_eq(cgrt_save_checkpoint(&tiny_model, a, p, &err), 0, "%s", err.msg);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_extra_model, a, p, &err), -1);
    cr_assert(strstr(err.msg, "tensor \"dense_2/kernel\" is missing (the checkpoint seems to be from model tiny, not "
                              "tiny_extra)") != NULL,
              "%s", err.msg);
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

/* The exact bytes a save of tiny_model with parameters a must produce: the
 * length, the header padded with spaces to a multiple of 8, the floats. */
static char *tiny_file(const float *a, size_t *len)
{
    const char *h = "{\"__metadata__\":{\"format\":\"pt\",\"model\":\"tiny\"},"
                    "\"dense/kernel\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]},"
                    "\"dense/bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]}}";
    size_t n = strlen(h), pad = (8 - n % 8) % 8, k;
    char *f = malloc(8 + n + pad + 60);
    cr_assert_not_null(f);
    for (k = 0; k < 8; k++)
        f[k] = (char)((n + pad) >> (8 * k));
    memcpy(f + 8, h, n);
    memset(f + 8 + n, ' ', pad);
    memcpy(f + 8 + n + pad, a, 60); /* little-endian host */
    *len = 8 + n + pad + 60;
    return f;
}

/* Asserts that the file at path holds exactly the len bytes of want. */
static void assert_file_is(const char *path, const char *want, size_t len)
{
    size_t got_len;
    char *got = t_read(path, &got_len);
    cr_assert_eq(got_len, len, "%s holds %zu bytes, expected %zu", path, got_len, len);
    cr_assert_eq(memcmp(got, want, len), 0, "%s differs from the expected bytes", path);
    free(got);
}

/* Returns 1 when path is a symbolic link. */
static int is_symlink(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

/* Forks a child that exits at once and reaps it: a process id that is no longer alive. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0)
        _exit(0);
    cr_assert_eq(waitpid(pid, NULL, 0), pid);
    return pid;
}

Test(checkpoint, temp_file_never_follows_a_planted_symlink)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "w.safetensors"), *victim = t_path(dir, "victim");
    const char *nowhere = t_path(dir, "nowhere");
    char names[4][600];
    float a[15], b[15];
    cgrt_error err;
    size_t len;
    char *want;
    int i;
    fill(a, 15, 2.5f);
    t_write(victim, "precious", 8);
    /* every name a save could be expected to use, each a link to the victim
     * (or, for the last, a dangling link that would create a file) */
    snprintf(names[0], sizeof names[0], "%s.tmp.%ld", p, (long)getpid());
    snprintf(names[1], sizeof names[1], "%s.tmp", p);
    snprintf(names[2], sizeof names[2], "%s.tmp.%ld.XXXXXX", p, (long)getpid());
    snprintf(names[3], sizeof names[3], "%s.tmp.%ld.tmp", p, (long)getpid());
    for (i = 0; i < 4; i++)
        cr_assert_eq(symlink(i < 3 ? victim : nowhere, names[i]), 0, "symlink %s: %s", names[i], strerror(errno));
    cr_assert_eq(cgrt_save_checkpoint(&tiny_model, a, p, &err), 0, "%s", err.msg);
    assert_file_is(victim, "precious", 8);
    cr_assert_eq(access(nowhere, F_OK), -1, "a save created a file through a dangling symlink");
    cr_assert_not(is_symlink(p), "the checkpoint is a symlink: a save renamed a planted link into place");
    for (i = 0; i < 4; i++)
        cr_assert(is_symlink(names[i]), "%s is no longer the planted symlink", names[i]);
    want = tiny_file(a, &len);
    assert_file_is(p, want, len);
    free(want);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, b, p, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
}

Test(checkpoint, file_mode_follows_the_umask)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "w.safetensors"), *q = t_path(dir, "v.safetensors");
    float a[15];
    struct stat st;
    cgrt_error err;
    fill(a, 15, 0.0f);
    umask(027);
    cr_assert_eq(cgrt_save_checkpoint(&tiny_model, a, p, &err), 0, "%s", err.msg);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0640, "mode %o under umask 027", (unsigned)(st.st_mode & 0777));
    umask(002);
    cr_assert_eq(cgrt_save_checkpoint(&tiny_model, a, q, &err), 0, "%s", err.msg);
    cr_assert_eq(stat(q, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0664, "mode %o under umask 002", (unsigned)(st.st_mode & 0777));
}

/* SIGXFSZ handler of the killed save: the process dies by SIGKILL mid-write. */
static void kill_self(int sig)
{
    (void)sig;
    kill(getpid(), SIGKILL);
}

Test(checkpoint, stale_temp_of_a_killed_save_is_removed_at_the_next_save)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "w.safetensors"), *victim = t_path(dir, "victim");
    char left[256] = "", keep[6][600];
    float a[15], b[15];
    struct dirent *e;
    struct stat st;
    cgrt_error err;
    pid_t child, live, dead;
    size_t len;
    char *want;
    DIR *d;
    int status, i, pipefd[2];
    fill(a, 15, -3.0f);
    t_write(victim, "precious", 8);
    /* a save killed by SIGKILL once its temporary file holds 64 bytes */
    child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        struct rlimit lim = {64, 64}, nocore = {0, 0};
        setrlimit(RLIMIT_CORE, &nocore);
        signal(SIGXFSZ, kill_self);
        setrlimit(RLIMIT_FSIZE, &lim);
        cgrt_save_checkpoint(&tiny_model, a, p, &err);
        _exit(3);
    }
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the save was not killed (status %d)", status);
    cr_assert_eq(t_count_entries(dir, "w.safetensors.tmp."), 1, "the killed save left no temporary file");
    d = opendir(dir);
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, "w.safetensors.tmp."))
            snprintf(left, sizeof left, "%s", e->d_name);
    closedir(d);
    cr_assert_eq(access(p, F_OK), -1, "the killed save renamed its file into place");
    /* what the next save must leave alone: the temporary file of a save still
     * running (a live process), another checkpoint's, a symlink and a folder of
     * the pattern, and a name that only starts like one */
    cr_assert_eq(pipe(pipefd), 0);
    live = fork();
    cr_assert(live >= 0);
    if (live == 0) {
        char c;
        close(pipefd[1]);
        while (read(pipefd[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(pipefd[0]);
    dead = dead_pid();
    snprintf(keep[0], sizeof keep[0], "%s.tmp.%ld.Ab3dE9", p, (long)live);
    snprintf(keep[1], sizeof keep[1], "%s/v.safetensors.tmp.%ld.Ab3dE9", dir, (long)dead);
    snprintf(keep[2], sizeof keep[2], "%s.tmp.%ld.Zz9yX8", p, (long)dead);
    snprintf(keep[3], sizeof keep[3], "%s.tmp.%ld.Qq1wE2", p, (long)dead);
    snprintf(keep[4], sizeof keep[4], "%s.tmp.%ld.notes.txt", p, (long)dead);
    snprintf(keep[5], sizeof keep[5], "%s.tmp.%ldx", p, (long)dead);
    t_write(keep[0], "running", 7);
    t_write(keep[1], "other", 5);
    cr_assert_eq(symlink(victim, keep[2]), 0);
    cr_assert_eq(mkdir(keep[3], 0755), 0);
    t_write(keep[4], "notes", 5);
    t_write(keep[5], "notes", 5);

    cr_assert_eq(cgrt_save_checkpoint(&tiny_model, a, p, &err), 0, "%s", err.msg);
    cr_assert_eq(fstatat(AT_FDCWD, t_path(dir, left), &st, AT_SYMLINK_NOFOLLOW), -1,
                 "the killed save's %s is still there", left);
    for (i = 0; i < 6; i++)
        cr_assert_eq(lstat(keep[i], &st), 0, "%s was removed", keep[i]);
    cr_assert(is_symlink(keep[2]));
    assert_file_is(victim, "precious", 8);
    assert_file_is(keep[0], "running", 7);
    want = tiny_file(a, &len);
    assert_file_is(p, want, len);
    free(want);
    memset(b, 0, sizeof b);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, b, p, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    close(pipefd[1]); /* the live process ends */
    cr_assert_eq(waitpid(live, NULL, 0), live);
}

/* A FIFO given as the weights blocked fopen until a writer came (forever, from
 * a command line); checkpoints now open like data files: regular files only,
 * refused at once. The timeout fails the test if an open blocks again. */
Test(checkpoint, fifo_device_or_folder_refused_at_once, .timeout = 20)
{
    const char *dir = t_tmpdir(), *fifo = t_path(dir, "w.safetensors"), *zero = t_path(dir, "zero.safetensors");
    float a[15] = {0};
    cgrt_series_stats st;
    cgrt_load_report rep;
    cgrt_error err;
    cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", strerror(errno));
    cr_assert_eq(symlink("/dev/zero", zero), 0);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, a, fifo, &err), -1);
    cr_assert(strstr(err.msg, "w.safetensors: not a regular file (a device, FIFO or socket); give a checkpoint file") !=
                  NULL,
              "%s", err.msg);
    cr_assert_eq(cgrt_load_checkpoint_by_name(&tiny_model, a, fifo, &rep, &err), -1);
    cr_assert(strstr(err.msg, "w.safetensors: not a regular file") != NULL, "%s", err.msg);
    cr_assert_eq(cgrt_load_series_stats(fifo, &st, &err), -1);
    cr_assert(strstr(err.msg, "w.safetensors: not a regular file") != NULL, "%s", err.msg);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, a, zero, &err), -1);
    cr_assert(strstr(err.msg, "zero.safetensors: not a regular file") != NULL, "%s", err.msg);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_model, a, dir, &err), -1);
    cr_assert(strstr(err.msg, "is a directory, expected a file") != NULL, "%s", err.msg);
}
