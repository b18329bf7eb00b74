/* layout.h: where the cgrad tool finds its headers and libraries (layout.c). */
#ifndef CGRAD_LAYOUT_H
#define CGRAD_LAYOUT_H

#include <stddef.h>

#define LAYOUT_PATH 4096

/* The folders and files `cgrad build` compiles and links with. */
typedef struct tool_layout {
    char include[LAYOUT_PATH];       /* cgrad.h and the .def tables it includes */
    char include_extra[LAYOUT_PATH]; /* a build tree's compiler/, which holds those tables; empty when installed */
    char rt_include[LAYOUT_PATH];    /* cgrad_rt.h and cgrad_gemm.h */
    char libcgrad[LAYOUT_PATH];      /* the builder library (.a or .so) */
    char libcgrad_rt[LAYOUT_PATH];
    char libcgrad_gemm[LAYOUT_PATH];
    char rpath[LAYOUT_PATH]; /* the shared libraries' folder, for the linker's -rpath; empty when they are static */
} tool_layout;

/* Finds the layout from the tool's own location: the build tree it was built
 * in (cgrad-uninstalled.conf beside it) or the installed tree around it.
 * Returns 0, or -1 with what is wrong in err. */
int layout_find(tool_layout *L, char *err, size_t errsize);

#endif
