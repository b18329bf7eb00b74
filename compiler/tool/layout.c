/* layout.c: where the cgrad tool finds the headers and libraries it builds
 * with, found from the tool's own location so that an installed tree can be
 * moved anywhere (no path of the source or build tree is compiled in).
 *
 * Installed, the tool is PREFIX/BINDIR/cgrad and finds PREFIX/INCLUDEDIR/cgrad
 * and PREFIX/LIBDIR (BINDIR, INCLUDEDIR and LIBDIR are meson's options,
 * compiled in relative to the prefix). In a build tree, meson writes
 * cgrad-uninstalled.conf next to the tool, naming the trees it belongs to;
 * that file is never installed, so an installed tool cannot read it. */
#include "layout.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CGRAD_BINDIR
#error "build cgrad with meson: it defines CGRAD_BINDIR, CGRAD_LIBDIR and CGRAD_INCLUDEDIR"
#endif

/* True when path names a regular file. */
static int layout_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* dir + "/" + rest into out; -1 when it does not fit. */
static int layout_join(char *out, const char *dir, const char *rest)
{
    int n = snprintf(out, LAYOUT_PATH, "%s/%s", dir, rest);
    return n < 0 || n >= LAYOUT_PATH ? -1 : 0;
}

/* The folder of the running tool (from /proc/self/exe) into dir. */
static int layout_self_dir(char *dir, char *err, size_t errsize)
{
    ssize_t n = readlink("/proc/self/exe", dir, LAYOUT_PATH - 1);
    if (n <= 0 || n >= LAYOUT_PATH - 1) {
        snprintf(err, errsize, "cannot tell where the cgrad tool is (/proc/self/exe: %s)",
                 n < 0 ? strerror(errno) : "path too long");
        return -1;
    }
    dir[n] = 0;
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    return 0;
}

/* Reads the build tree's cgrad-uninstalled.conf (lines KEY=PATH) into L. */
static int layout_read_conf(const char *conf, tool_layout *L, char *err, size_t errsize)
{
    FILE *f = fopen(conf, "r");
    if (!f) {
        snprintf(err, errsize, "%s: %s", conf, strerror(errno));
        return -1;
    }
    char line[LAYOUT_PATH + 32];
    struct {
        const char *key;
        char *into;
    } keys[] = {{"include=", L->include},   {"include_extra=", L->include_extra}, {"rt_include=", L->rt_include},
                {"libcgrad=", L->libcgrad}, {"libcgrad_rt=", L->libcgrad_rt},     {"libcgrad_gemm=", L->libcgrad_gemm}};
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            size_t klen = strlen(keys[k].key), vlen = strlen(line) - klen;
            if (!strncmp(line, keys[k].key, klen) && vlen < LAYOUT_PATH)
                memcpy(keys[k].into, line + klen, vlen + 1);
        }
    }
    fclose(f);
    if (!*L->include || !*L->rt_include || !*L->libcgrad || !*L->libcgrad_rt || !*L->libcgrad_gemm) {
        snprintf(err, errsize, "%s: a path is missing (reconfigure the build with meson)", conf);
        return -1;
    }
    return 0;
}

/* PREFIX from the tool's folder: the folder with BINDIR's components taken
 * off its end. */
static int layout_prefix(const char *self_dir, char *prefix)
{
    snprintf(prefix, LAYOUT_PATH, "%s", self_dir);
    const char *bindir = CGRAD_BINDIR;
    if (bindir[0] == '/') /* an absolute bindir: the prefix is not below it */
        return -1;
    for (const char *c = bindir; *c;) {
        char *slash = strrchr(prefix, '/');
        if (!slash || slash == prefix)
            return -1;
        *slash = 0;
        c = strchr(c, '/');
        c = c ? c + 1 : "";
    }
    return 0;
}

/* The path of a library in an installed tree: DIR/libNAME.a, else
 * DIR/libNAME.so (meson's default_library decides which exist). */
static int layout_lib(char *out, const char *libdir, const char *name)
{
    char file[LAYOUT_PATH];
    snprintf(file, sizeof file, "lib%s.a", name);
    if (!layout_join(out, libdir, file) && layout_is_file(out))
        return 0;
    snprintf(file, sizeof file, "lib%s.so", name);
    return !layout_join(out, libdir, file) && layout_is_file(out) ? 0 : -1;
}

/* Fills L from an installed tree around the tool. */
static int layout_installed(const char *self_dir, tool_layout *L, char *err, size_t errsize)
{
    char prefix[LAYOUT_PATH], libdir[LAYOUT_PATH], incdir[LAYOUT_PATH], header[LAYOUT_PATH];
    const char *inc_rel = CGRAD_INCLUDEDIR, *lib_rel = CGRAD_LIBDIR;
    if (layout_prefix(self_dir, prefix) ||
        layout_join(incdir, inc_rel[0] == '/' ? "" : prefix, inc_rel[0] == '/' ? inc_rel + 1 : inc_rel) ||
        layout_join(libdir, lib_rel[0] == '/' ? "" : prefix, lib_rel[0] == '/' ? lib_rel + 1 : lib_rel) ||
        layout_join(L->include, incdir, "cgrad") || layout_join(header, L->include, "cgrad.h") ||
        !layout_is_file(header)) {
        snprintf(err, errsize,
                 "cannot find cgrad's headers: %s is neither an installed bin folder (no " CGRAD_INCLUDEDIR
                 "/cgrad/cgrad.h beside it) nor a build tree (no cgrad-uninstalled.conf)",
                 self_dir);
        return -1;
    }
    snprintf(L->rt_include, LAYOUT_PATH, "%s", L->include);
    if (layout_lib(L->libcgrad, libdir, "cgrad") || layout_lib(L->libcgrad_rt, libdir, "cgrad_rt") ||
        layout_lib(L->libcgrad_gemm, libdir, "cgrad_gemm")) {
        snprintf(err, errsize, "cannot find cgrad's libraries in %s", libdir);
        return -1;
    }
    return 0;
}

/* When the runtime library is a shared one, the linker flag that lets the
 * binaries find it where it is: its folder, for -rpath. */
static void layout_rpath(tool_layout *L)
{
    size_t n = strlen(L->libcgrad_rt);
    if (n < 3 || strcmp(L->libcgrad_rt + n - 3, ".so"))
        return;
    snprintf(L->rpath, sizeof L->rpath, "%.*s", (int)(strrchr(L->libcgrad_rt, '/') - L->libcgrad_rt), L->libcgrad_rt);
}

int layout_find(tool_layout *L, char *err, size_t errsize)
{
    char self_dir[LAYOUT_PATH], conf[LAYOUT_PATH];
    memset(L, 0, sizeof *L);
    if (layout_self_dir(self_dir, err, errsize))
        return -1;
    int rc = !layout_join(conf, self_dir, "cgrad-uninstalled.conf") && layout_is_file(conf)
                 ? layout_read_conf(conf, L, err, errsize)
                 : layout_installed(self_dir, L, err, errsize);
    if (rc == 0)
        layout_rpath(L);
    return rc;
}
