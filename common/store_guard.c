// store_guard: what keeps a store safe from other processes and names it when it is damaged
// beyond what checksums can catch (see store.h, "One writer" and "Damaged LMDB pages").
//
// * The writer lock: a store opened for writing holds flock(LOCK_EX) on STORE/writer.lock, with
//   the holder's pid and program name written in it, until ts_close. A second writer (another
//   process, or a second writable handle in this one) is refused at once with ERR_CONFLICT naming
//   the store and the holder. Readers take no lock. The kernel drops the lock when the holder
//   dies, however it dies (SIGKILL too), so a stale file never blocks anyone.
// * The crash guard: record and meta checksums catch damage to the data, but damage to LMDB's
//   own page structure can make LMDB abort (its assertions: SIGABRT) or fault (SIGSEGV, SIGBUS)
//   inside a call. While a thread is inside a store function (TS_GUARD), such a signal ends the
//   process with exit status 2 and a message naming the store; outside store functions the
//   signal keeps its default action (a crash elsewhere is a bug, not damage).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/err.h"
#include "common/store_internal.h"

#define TS_LOCK_FILE "writer.lock"

// --- the writer lock ---------------------------------------------------------------------------
int ts__lock_take(const char *path, int *out) {
    char lp[4200], who[256] = "";
    *out = -1;
    ERR_IF(strlen(path) > 4000, ERR_USAGE, "store %.100s...: path too long", path);
    snprintf(lp, sizeof lp, "%s/%s", path, TS_LOCK_FILE);
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0664);
    ERR_IF(fd < 0, ERR_IO, "store %s: cannot open its writer lock %s: %s", path, lp, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            ssize_t n = pread(fd, who, sizeof who - 1, 0);
            who[n > 0 ? n : 0] = 0;
            char *nl = strchr(who, '\n');
            if (nl) *nl = 0;
        }
        close(fd);
        if (e != EWOULDBLOCK)
            return err_set(ERR_IO, "store %s: cannot lock %s: %s", path, lp, strerror(e));
        return err_set(ERR_CONFLICT,
                       "store %s: another process is writing it (%s); a store has one writer at a time: wait "
                       "for that one to end (or stop it), or write elsewhere",
                       path, who[0] ? who : "pid unknown");
    }
    char text[300];
    int n = snprintf(text, sizeof text, "pid %ld, %s\n", (long)getpid(), program_invocation_short_name);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return err_set(ERR_IO, "store %s: cannot write its writer lock %s: %s", path, lp, strerror(e));
    }
    *out = fd;
    return 0;
}

void ts__lock_release(int fd) {
    if (fd >= 0) close(fd); // drops the flock; the file stays (removing it would race a new holder)
}

// --- the crash guard ---------------------------------------------------------------------------
__thread const char *ts__guard_path;

static void guard_write(const char *s) {
    if (write(2, s, strlen(s)) < 0) {}
}

static void on_fault(int sig) {
    const char *p = ts__guard_path;
    if (!p) { // not inside a store function: the default action
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    guard_write(program_invocation_short_name);
    guard_write(": error: store ");
    guard_write(p);
    guard_write(sig == SIGABRT ? ": LMDB aborted (SIGABRT, a failed assertion)"
                : sig == SIGBUS ? ": LMDB crashed (SIGBUS)" : ": LMDB crashed (SIGSEGV)");
    guard_write(" while using it: the page structure of its data.mdb is damaged (LMDB's own pages, not a "
                "record: records and meta are checksummed); delete the store and rerun the stage that makes "
                "it, or restore it from a copy\n");
    _exit(2);
}

void ts__guard_install(void) {
    static int done;
    if (__atomic_exchange_n(&done, 1, __ATOMIC_SEQ_CST)) return;
    const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa;
        if (sigaction(sigs[i], NULL, &old) != 0) continue;
        if (old.sa_handler != SIG_DFL) continue; // someone else's (a sanitizer, a test harness)
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fault;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

const char *ts__guard_enter(const char *path) {
    const char *prev = ts__guard_path;
    ts__guard_path = path;
    return prev;
}

void ts__guard_leave(const char **prev) { ts__guard_path = *prev; }
