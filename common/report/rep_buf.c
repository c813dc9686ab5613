// rep_buf: the growing text buffer of the report renderers (rep.h): printf appends, HTML
// escaping and base64 for inlined pictures.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/report/rep.h"

static int rep_buf_reserve(rep_buf *b, size_t extra) {
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = 1;
        return -1;
    }
    b->s = s;
    b->cap = cap;
    return 0;
}

void rep_buf_printf(rep_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || rep_buf_reserve(b, (size_t)n) < 0) return;
    if ((size_t)n < sizeof tmp) {
        memcpy(b->s + b->len, tmp, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void rep_buf_escape(rep_buf *b, const char *text) {
    for (const char *p = text ? text : ""; *p; p++) {
        switch (*p) {
        case '&': rep_buf_printf(b, "&amp;"); break;
        case '<': rep_buf_printf(b, "&lt;"); break;
        case '>': rep_buf_printf(b, "&gt;"); break;
        case '"': rep_buf_printf(b, "&quot;"); break;
        default:
            if (rep_buf_reserve(b, 1) < 0) return;
            b->s[b->len++] = *p;
            b->s[b->len] = 0;
        }
    }
}

void rep_buf_base64(rep_buf *b, const uint8_t *data, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (rep_buf_reserve(b, (n + 2) / 3 * 4) < 0) return;
    char *o = b->s + b->len;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63], *o++ = tab[(v >> 6) & 63], *o++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < n ? (uint32_t)data[i + 1] << 8 : 0);
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    b->len = (size_t)(o - b->s);
}

int rep_buf_ok(const rep_buf *b) {
    return b->oom ? err_set(ERR_NOMEM, "out of memory (report text of %zu bytes)", b->len) : 0;
}

void rep_buf_free(rep_buf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}
