// err: thread-local last-error message and the code tables (see err.h).
#include "common/err.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define ERR_MSG_MAX 2048

static _Thread_local char err_buf[ERR_MSG_MAX];
static _Thread_local int err_code_last;

#define ERR_COUNT_ONE(name, value, status, desc) +1
static_assert((0 ERR_LIST(ERR_COUNT_ONE)) == ERR_CODE_COUNT, "ERR_CODE_COUNT out of sync with ERR_LIST");
#undef ERR_COUNT_ONE

int err_setv(int code, const char *fmt, va_list ap) {
    err_code_last = code;
    if (fmt) vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    return code;
}

int err_set(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_setv(code, fmt, ap);
    va_end(ap);
    return code;
}

int err_prefix(int code, const char *fmt, ...) {
    char pre[ERR_MSG_MAX], old[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    size_t lp = strlen(pre);
    if (lp >= sizeof err_buf) lp = sizeof err_buf - 1;
    memcpy(err_buf, pre, lp);
    size_t lo = strlen(old);
    if (lp + lo >= sizeof err_buf) lo = sizeof err_buf - 1 - lp;
    memcpy(err_buf + lp, old, lo);
    err_buf[lp + lo] = 0;
    return code;
}

const char *err_msg(void) { return err_buf; }
int err_last(void) { return err_code_last; }

void err_clear(void) {
    err_buf[0] = 0;
    err_code_last = ERR_OK;
}

const char *err_str(int code) {
    switch (code) {
#define ERR_CASE(name, value, status, desc) case value: return desc;
        ERR_LIST(ERR_CASE)
#undef ERR_CASE
    }
    return "unknown error";
}

int err_exit_status(int code) {
    switch (code) {
#define ERR_CASE(name, value, status, desc) case value: return status;
        ERR_LIST(ERR_CASE)
#undef ERR_CASE
    }
    return 1;
}
