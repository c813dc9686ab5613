// infile: opening user-named input files with clear errors and bounded reads (infile.h).
#include "common/infile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"

const char *infile_kind(unsigned mode) {
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFIFO: return "a FIFO (pipe)";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symbolic link";
    default: return "not a file";
    }
}

// The error of a failed stat/open of `path` (errno e).
static int infile_errno(const char *path, int e) {
    if (e == ENOENT) return err_set(ERR_NOTFOUND, "%s: cannot open: %s", path, strerror(e));
    if (e == ENOTDIR)
        return err_set(ERR_NOTFOUND, "%s: cannot open: a component of the path is not a directory", path);
    if (e == ELOOP || e == ENAMETOOLONG) return err_set(ERR_INPUT, "%s: cannot open: %s", path, strerror(e));
    return err_set(ERR_IO, "%s: cannot open: %s", path, strerror(e));
}

// Checks the kind of an opened or stat-ed file: directories always refused, other non-regular
// files unless streams are allowed.
static int infile_check_kind(const char *path, const struct stat *st, int allow_stream) {
    ERR_IF(S_ISDIR(st->st_mode), ERR_INPUT, "%s: is a directory (expected a file)", path);
    ERR_IF(!allow_stream && !S_ISREG(st->st_mode), ERR_INPUT,
           "%s: not a regular file (%s): give a file, which can be read twice (hashed, then parsed)", path,
           infile_kind((unsigned)st->st_mode));
    return 0;
}

// stat, then a blocking open, then the kind checked again on the open file (it may have been
// replaced in between).
static int infile_open_kind(const char *path, int allow_stream, int *fd_out, struct stat *st) {
    *fd_out = -1;
    ERR_IF(!path || !*path, ERR_USAGE, "empty file name");
    if (stat(path, st) != 0) return infile_errno(path, errno);
    ERR_TRY(infile_check_kind(path, st, allow_stream));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return infile_errno(path, errno);
    int rc = 0;
    if (fstat(fd, st) != 0) rc = err_set(ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (rc == 0) rc = infile_check_kind(path, st, allow_stream);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int infile_open(const char *path, int *fd, uint64_t *size) {
    struct stat st;
    ERR_TRY(infile_open_kind(path, 0, fd, &st));
    if (size) *size = (uint64_t)st.st_size;
    return 0;
}

static int infile_fdopen(const char *path, int allow_stream, FILE **f, uint64_t *size) {
    int fd;
    struct stat st;
    *f = NULL;
    ERR_TRY(infile_open_kind(path, allow_stream, &fd, &st));
    if (size) *size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    *f = fdopen(fd, "rb");
    if (!*f) {
        int e = errno;
        close(fd);
        return err_set(ERR_NOMEM, "%s: cannot open a stream: %s", path, strerror(e));
    }
    return 0;
}

int infile_fopen(const char *path, FILE **f, uint64_t *size) { return infile_fdopen(path, 0, f, size); }

int infile_fopen_stream(const char *path, FILE **f, uint64_t *size) { return infile_fdopen(path, 1, f, size); }

int infile_read_all(const char *path, size_t max_bytes, const char *what, char **buf_out, size_t *len_out) {
    int rc = 0, fd = -1;
    struct stat st;
    char *buf = NULL;
    *buf_out = NULL;
    *len_out = 0;
    ERR_TRY(infile_open_kind(path, 1, &fd, &st));
    // A regular file's size is known: refuse it at once; streams are read up to the cap.
    ERR_GOTO_IF(rc, S_ISREG(st.st_mode) && (uint64_t)st.st_size > max_bytes, ERR_INPUT,
                "%s: %lld bytes, too large for %s (at most %zu)", path, (long long)st.st_size, what, max_bytes);
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096, len = 0;
    buf = malloc(cap);
    ERR_GOTO_IF(rc, !buf, ERR_NOMEM, "%s: out of memory", path);
    for (;;) {
        if (len + 1 >= cap) { // keep one byte for the NUL, and room to see a byte past the cap
            size_t ncap = cap * 2 > max_bytes + 2 ? max_bytes + 2 : cap * 2;
            if (ncap <= cap) ncap = cap + 1;
            char *nb = realloc(buf, ncap);
            ERR_GOTO_IF(rc, !nb, ERR_NOMEM, "%s: out of memory", path);
            buf = nb;
            cap = ncap;
        }
        ssize_t got = read(fd, buf + len, cap - 1 - len);
        if (got < 0 && errno == EINTR) continue;
        ERR_GOTO_IF(rc, got < 0, ERR_IO, "%s: read error: %s", path, strerror(errno));
        if (got == 0) break;
        len += (size_t)got;
        ERR_GOTO_IF(rc, len > max_bytes, ERR_INPUT, "%s (%s): more than %zu bytes, too large for %s", path,
                    infile_kind((unsigned)st.st_mode), max_bytes, what);
    }
    buf[len] = '\0';
    *buf_out = buf;
    *len_out = len;
    buf = NULL;
fail:
    free(buf);
    close(fd);
    return rc;
}
