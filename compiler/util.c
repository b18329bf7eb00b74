/* util.c: the arena every graph allocates from, growable text for the
 * emitter, template expansion, and checked int arithmetic for sizes. */
#include "cgrad_int.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---------------------------------------------------------------- */

struct arena_chunk {
    arena_chunk *next;
    size_t used, cap;
    size_t pad_; /* keeps data 16-byte aligned on LP64 */
    unsigned char data[];
};

/* Returns size zeroed bytes, 16-byte aligned, or NULL when out of memory. */
void *arena_alloc(arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    arena_chunk *c = a->head;
    if (!c || c->used + size > c->cap) {
        size_t cap = size > 65536 ? size : 65536;
        c = calloc(1, sizeof(arena_chunk) + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

/* Copies s into the arena. */
char *arena_strdup(arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(a, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* printf into a new arena string. */
char *arena_printf(arena *a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return arena_strdup(a, buf);
}

/* Frees every chunk at once. */
void arena_free(arena *a)
{
    for (arena_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
}

/* ---- text ----------------------------------------------------------------- */

/* Makes room for n more bytes; sets oom on failure. */
static bool text_reserve(text *t, size_t n)
{
    if (t->oom)
        return false;
    if (t->len + n + 1 <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + n + 1)
        cap *= 2;
    char *s = realloc(t->s, cap);
    if (!s) {
        t->oom = true;
        return false;
    }
    t->s = s;
    t->cap = cap;
    return true;
}

/* Appends formatted text. */
void text_printf(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !text_reserve(t, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* Appends s as it is. */
void text_puts(text *t, const char *s)
{
    size_t n = strlen(s);
    if (!text_reserve(t, n))
        return;
    memcpy(t->s + t->len, s, n + 1);
    t->len += n;
}

/* Appends the first n bytes of s so that they are safe both between the
 * quotes of a C string literal and inside a C comment: '"', '\\' and every
 * '?' (no trigraph can form) are escaped; newlines, tabs, other control bytes
 * and non-ASCII bytes become escapes; a '/' next to a '*' becomes \057, so
 * neither a comment's end nor a nested opener can appear. */
static void escape_n(text *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool by_star = (i > 0 && s[i - 1] == '*') || s[i + 1] == '*';
        if (c == '"' || c == '\\' || c == '?')
            text_printf(t, "\\%c", c);
        else if (c == '\n')
            text_puts(t, "\\n");
        else if (c == '\t')
            text_puts(t, "\\t");
        else if (c < 0x20 || c >= 0x7f || (c == '/' && by_star))
            text_printf(t, "\\%03o", c);
        else
            text_printf(t, "%c", c);
    }
}

/* Appends s escaped (escape_n): the one function through which user strings
 * (paths, file names, column names) reach emitted text. */
void text_escaped(text *t, const char *s)
{
    if (s)
        escape_n(t, s, strlen(s));
}

/* s escaped as by text_escaped, cut after max_len bytes (then "..."), as an
 * arena string; for user strings in emitted comments and in messages. */
const char *arena_escaped(arena *a, const char *s, size_t max_len)
{
    text t = {0};
    size_t len = s ? strlen(s) : 0;
    escape_n(&t, s ? s : "", len < max_len ? len : max_len);
    if (len > max_len)
        text_puts(&t, "...");
    const char *r = t.oom ? NULL : arena_strdup(a, t.s ? t.s : "");
    text_free(&t);
    return r ? r : "?";
}

void text_free(text *t)
{
    free(t->s);
    *t = (text){0};
}

/* Appends template `name`, replacing each {{KEY}} by its value in kv
 * (key, value, key, value, ..., NULL). */
int text_template(text *t, const char *name, const char *const *kv)
{
    const char *p = template_find(name);
    if (!p)
        return -1;
    while (*p) {
        const char *open = strstr(p, "{{");
        if (!open) {
            text_puts(t, p);
            break;
        }
        const char *close = strstr(open, "}}");
        if (!close)
            return -1;
        text_printf(t, "%.*s", (int)(open - p), p);
        size_t klen = (size_t)(close - open - 2);
        const char *val = NULL;
        for (int i = 0; kv[i]; i += 2)
            if (strlen(kv[i]) == klen && !memcmp(kv[i], open + 2, klen))
                val = kv[i + 1];
        if (!val)
            return -1;
        text_puts(t, val);
        p = close + 2;
    }
    return t->oom ? -1 : 0;
}

/* ---- checked sizes ------------------------------------------------------------ */

/* Checked int arithmetic for sizes. GCC's and Clang's overflow builtins
 * compute the exact result and say whether it fits, without the undefined
 * behaviour of a signed overflow; every size a shape rule derives from the
 * user's numbers (a dilated window, padding, a concatenation, gates times
 * units) goes through these. */
bool int_mul(int a, int b, int *out)
{
    int r;
    if (__builtin_mul_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

bool int_add(int a, int b, int *out)
{
    int r;
    if (__builtin_add_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}
