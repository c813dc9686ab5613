// err: the project's error codes and the user-facing message that goes with the last error.
//
// Library code (common/, kernels/, datasets/) never exits and never prints: a failing function
// records a message naming the file, record or key at fault with err_set() and returns the
// negative code; its callers forward it (ERR_TRY) or add context (err_prefix). Only a stage's
// main() turns the code into an exit status (err_exit_status) and prints err_msg().
// The message is thread-local; it stays valid until the next err_set/err_prefix/err_clear on the
// same thread.
#ifndef DIFFOOD_ERR_H
#define DIFFOOD_ERR_H

#include <stdarg.h>

// X(name, value, exit status, description)
#define ERR_LIST(X)                                                                 \
    X(ERR_OK, 0, 0, "success")                                                      \
    X(ERR_USAGE, -1, 2, "usage error")                                              \
    X(ERR_CONFIG, -2, 2, "configuration error")                                     \
    X(ERR_INPUT, -3, 2, "bad input data")                                           \
    X(ERR_NOTFOUND, -4, 2, "not found")                                             \
    X(ERR_CORRUPT, -5, 2, "corrupt data")                                           \
    X(ERR_CONFLICT, -6, 2, "conflicting existing output")                           \
    X(ERR_IO, -7, 1, "input/output error")                                          \
    X(ERR_NOMEM, -8, 1, "out of memory")                                            \
    X(ERR_STORE, -9, 1, "tensor store error")                                       \
    X(ERR_DEVICE, -10, 1, "device error")                                           \
    X(ERR_INTERRUPTED, -11, 3, "interrupted")                                       \
    X(ERR_INTERNAL, -12, 1, "internal error")                                       \
    X(ERR_UNSUPPORTED, -13, 2, "unsupported")

enum err_code {
#define ERR_ENUM(name, value, status, desc) name = value,
    ERR_LIST(ERR_ENUM)
#undef ERR_ENUM
    ERR_CODE_COUNT = 14 // number of codes (checked by a static_assert in err.c)
};

// Records a message for `code` (printf-style) and returns `code`. A NULL fmt keeps the old text.
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int err_setv(int code, const char *fmt, va_list ap);
// Prepends context ("file.idx: ") to the current message; returns `code` unchanged.
int err_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// The last message on this thread ("" when none). Owned by err; valid until the next err_* call.
const char *err_msg(void);
// The code of the last err_set on this thread (ERR_OK after err_clear).
int err_last(void);
void err_clear(void);
// Short description of a code ("corrupt data"); never NULL.
const char *err_str(int code);
// Process exit status for a code: 0 ok, 2 usage/config/input, 1 failure, 3 interrupted.
int err_exit_status(int code);

// Return `code` with a message when `cond` holds (zstd's RETURN_ERROR_IF).
#define ERR_IF(cond, code, ...)                                                      \
    do {                                                                             \
        if (cond) return err_set((code), __VA_ARGS__);                               \
    } while (0)
// Evaluate `expr`; return its code when negative (zstd's FORWARD_IF_ERROR).
#define ERR_TRY(expr)                                                                \
    do {                                                                             \
        int err_try_rc_ = (expr);                                                    \
        if (err_try_rc_ < 0) return err_try_rc_;                                     \
    } while (0)
// Evaluate `expr` into `rc`; jump to `fail` when negative (for functions that clean up).
#define ERR_GOTO(rc, expr)                                                           \
    do {                                                                             \
        (rc) = (expr);                                                               \
        if ((rc) < 0) goto fail;                                                     \
    } while (0)
// Set a message into `rc` and jump to `fail` when `cond` holds.
#define ERR_GOTO_IF(rc, cond, code, ...)                                             \
    do {                                                                             \
        if (cond) {                                                                  \
            (rc) = err_set((code), __VA_ARGS__);                                     \
            goto fail;                                                               \
        }                                                                            \
    } while (0)

#endif
