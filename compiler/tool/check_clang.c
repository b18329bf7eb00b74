/* check_clang.c: the engine of `cgrad check` that reads the code through
 * libclang.
 *
 * Each .c file of the folder (and each header that no file includes) is
 * parsed with -std=c99 -Wall -Wextra -Wpedantic -pedantic-errors -Wvla
 * -Wdouble-promotion and the folder on the include path. clang's own
 * diagnostics become findings as the flags engine's do (an extension is an
 * error under -pedantic-errors, so every extension clang knows of counts).
 * Then the walk of the syntax tree, in the folder's files only, finds:
 * calls of (and references to) forbidden library functions; variables,
 * fields and types of variable-length array type; operators with a double
 * operand and implicit float-to-double conversions; GNU statement
 * expressions, asm statements and attributes; and the functions defined in
 * the folder with the direct calls between them, for the cycles. */
#include "check.h"

#include <clang-c/Index.h>
#include <stdio.h>
#include <string.h>

/* The walk of one translation unit. */
typedef struct walk {
    check_run *r;
    const char *tu;   /* the file parsed: a name in the folder */
    char fn_key[300]; /* the function whose body is walked; "" outside bodies */
} walk;

/* The folder's file holding loc (where a macro is used, for code coming from
 * one), with its line in *line; NULL when loc is outside the folder. */
static const char *place(const walk *w, CXSourceLocation loc, int *line)
{
    CXFile f;
    unsigned l = 0;
    clang_getExpansionLocation(loc, &f, &l, NULL, NULL);
    *line = (int)l;
    if (!f)
        return NULL;
    CXString name = clang_getFileName(f);
    const char *file = check_local(w->r, clang_getCString(name));
    clang_disposeString(name);
    return file;
}

/* The function's key in the call graph (check.h: the name, or "TU:name"
 * for a static function) into key, and its name into name. */
static void fn_key(const walk *w, CXCursor fn, char *key, size_t size, char *name, size_t name_size)
{
    CXString s = clang_getCursorSpelling(fn);
    snprintf(name, name_size, "%s", clang_getCString(s));
    clang_disposeString(s);
    if (clang_getCursorLinkage(fn) == CXLinkage_Internal)
        snprintf(key, size, "%s:%s", w->tu, name);
    else
        snprintf(key, size, "%s", name);
}

/* True when t is double or long double. */
static int is_double(CXType t)
{
    enum CXTypeKind k = clang_getCanonicalType(t).kind;
    return k == CXType_Double || k == CXType_LongDouble;
}

/* The first two children of a cursor. */
typedef struct kids {
    CXCursor c[2];
    int n;
} kids;

/* clang_visitChildren callback of kids_of. */
static enum CXChildVisitResult add_kid(CXCursor c, CXCursor parent, CXClientData data)
{
    kids *k = data;
    (void)parent;
    if (k->n < 2)
        k->c[k->n] = c;
    k->n++;
    return CXChildVisit_Continue;
}

/* The first two children of c, and how many it has. */
static kids kids_of(CXCursor c)
{
    kids k = {.n = 0};
    clang_visitChildren(c, add_kid, &k);
    return k;
}

/* A call or a reference to a function (or to stdin, stdout, stderr) of
 * external linkage: a finding when the library's one is forbidden, and for
 * a call inside a body an edge of the call graph. */
static void check_ref(walk *w, CXCursor c, const char *file, int line)
{
    CXCursor ref = clang_getCursorReferenced(c);
    enum CXCursorKind rk = clang_getCursorKind(ref);
    int call = clang_getCursorKind(c) == CXCursor_CallExpr;
    char key[300], name[256];
    const char *advice;
    if ((rk != CXCursor_FunctionDecl && rk != CXCursor_VarDecl) || clang_Cursor_isNull(ref))
        return;
    fn_key(w, ref, key, sizeof key, name, sizeof name);
    check_rule rule = clang_getCursorLinkage(ref) == CXLinkage_External ? check_forbidden(name, &advice) : CHECK_RULES;
    if (rule != CHECK_RULES && (rk == CXCursor_FunctionDecl || rule == CHECK_STDIO))
        check_add(w->r, file, line, rule, 0, "%s %s%s%s%s", call ? "calls" : "uses", name, *advice ? " (" : "", advice,
                  *advice ? " is the float one)" : "");
    if (call && rk == CXCursor_FunctionDecl && w->fn_key[0])
        check_add_call(w->r, w->fn_key, key, file, line);
}

/* The findings of one cursor of the folder's code, apart from function
 * definitions. */
static void check_cursor(walk *w, CXCursor c, const char *file, int line)
{
    enum CXCursorKind kind = clang_getCursorKind(c);
    CXType type = kind == CXCursor_TypedefDecl ? clang_getTypedefDeclUnderlyingType(c) : clang_getCursorType(c);
    kids k;
    if (kind == CXCursor_CallExpr || kind == CXCursor_DeclRefExpr) {
        check_ref(w, c, file, line);
    } else if ((kind == CXCursor_VarDecl || kind == CXCursor_ParmDecl || kind == CXCursor_FieldDecl ||
                kind == CXCursor_TypedefDecl) &&
               type.kind == CXType_VariableArray) {
        CXString s = clang_getCursorSpelling(c);
        check_add(w->r, file, line, CHECK_VLA, 0, "%s is a variable-length array", clang_getCString(s));
        clang_disposeString(s);
    } else if (kind == CXCursor_BinaryOperator || kind == CXCursor_CompoundAssignOperator) {
        k = kids_of(c);
        if (is_double(type) || (k.n > 0 && is_double(clang_getCursorType(k.c[0]))) ||
            (k.n > 1 && is_double(clang_getCursorType(k.c[1]))))
            check_add(w->r, file, line, CHECK_DOUBLE, 0, "computes in double");
    } else if (kind == CXCursor_UnexposedExpr && is_double(type)) { /* an implicit conversion, among others */
        k = kids_of(c);
        if (k.n == 1 && clang_getCanonicalType(clang_getCursorType(k.c[0])).kind == CXType_Float)
            check_add(w->r, file, line, CHECK_DOUBLE, 0, "converts a float to double");
    } else if (kind == CXCursor_StmtExpr) {
        check_add(w->r, file, line, CHECK_EXTENSION, 0, "a GNU statement expression");
    } else if (kind == CXCursor_GCCAsmStmt || kind == CXCursor_MSAsmStmt) {
        check_add(w->r, file, line, CHECK_EXTENSION, 0, "inline assembly");
    } else if (clang_isAttribute(kind)) {
        CXString s = clang_getCursorKindSpelling(kind); /* "attribute(const)", or a class name */
        const char *spelled = clang_getCString(s);
        check_add(w->r, file, line, CHECK_EXTENSION, 0, "uses %s, an extension",
                  strncmp(spelled, "attribute(", 10) ? "an attribute" : spelled);
        clang_disposeString(s);
    }
}

/* clang_visitChildren callback: checks the cursors of the folder's files; a
 * function definition is recorded and its body walked with its key. */
static enum CXChildVisitResult visit(CXCursor c, CXCursor parent, CXClientData data)
{
    walk *w = data;
    int line;
    const char *file = place(w, clang_getCursorLocation(c), &line);
    (void)parent;
    if (!file)
        return CXChildVisit_Continue; /* a system header's */
    if (clang_getCursorKind(c) == CXCursor_FunctionDecl && clang_isCursorDefinition(c)) {
        walk body = *w;
        char name[256];
        fn_key(w, c, body.fn_key, sizeof body.fn_key, name, sizeof name);
        check_add_fn(w->r, body.fn_key, name, file, line);
        clang_visitChildren(c, visit, &body);
        return CXChildVisit_Continue;
    }
    check_cursor(w, c, file, line);
    return CXChildVisit_Recurse;
}

/* clang's diagnostics of the translation unit as findings: errors (every
 * extension, under -pedantic-errors) break the extension rule, warnings the
 * rule of their option. */
static void read_diagnostics(walk *w, CXTranslationUnit tu)
{
    for (unsigned i = 0, n = clang_getNumDiagnostics(tu); i < n; i++) {
        CXDiagnostic d = clang_getDiagnostic(tu, i);
        enum CXDiagnosticSeverity sev = clang_getDiagnosticSeverity(d);
        if (sev >= CXDiagnostic_Warning) {
            int line;
            const char *file = place(w, clang_getDiagnosticLocation(d), &line);
            CXString text = clang_getDiagnosticSpelling(d), option = clang_getDiagnosticOption(d, NULL);
            const char *opt = clang_getCString(option);
            check_rule rule = sev >= CXDiagnostic_Error ? CHECK_EXTENSION : check_option_rule(opt);
            check_add(w->r, file ? file : w->tu, file ? line : 0, rule, 1, "%s%s%s%s%s",
                      sev >= CXDiagnostic_Error ? "does not compile as C99: " : "", clang_getCString(text),
                      *opt ? " [" : "", opt, *opt ? "]" : "");
            clang_disposeString(text);
            clang_disposeString(option);
        }
        clang_disposeDiagnostic(d);
    }
}

int check_clang(check_run *r)
{
    CXIndex index = clang_createIndex(0, 0);
    int rc = 0;
    for (int i = 0; i < r->nfiles && !rc; i++) {
        if (check_is_header(r->files[i]) && r->included[i])
            continue; /* checked where it is included */
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", r->dir, r->files[i]);
        const char *const args[] = {CHECK_CFLAGS, "-pedantic-errors", "-I", r->dir, "-x", "c"};
        CXTranslationUnit tu;
        enum CXErrorCode e = clang_parseTranslationUnit2(index, path, args, (int)(sizeof args / sizeof args[0]), NULL,
                                                         0, CXTranslationUnit_KeepGoing, &tu);
        if (e != CXError_Success) {
            fprintf(stderr, "cgrad check: libclang cannot parse %s (error %d)\n", path, (int)e);
            rc = -1;
            break;
        }
        walk w = {r, r->files[i], ""};
        read_diagnostics(&w, tu);
        clang_visitChildren(clang_getTranslationUnitCursor(tu), visit, &w);
        clang_disposeTranslationUnit(tu);
    }
    clang_disposeIndex(index);
    return rc;
}
