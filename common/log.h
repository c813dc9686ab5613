// log: leveled messages and a progress reporter, on stderr only (stdout belongs to the stage's
// JSON summary).
//
// Messages read "PROG: text" (info, debug) or "PROG: warning: text" / "PROG: error: text";
// PROG is set once by the stage (cli_parse does it). The level comes from --quiet (errors only,
// no progress) / --verbose (debug too); the default is info.
//
// Progress: one reporter per process (prog_begin .. prog_end).
//   * On a terminal (isatty(2)): a bar redrawn in place, with done/total, rate and ETA; log
//     messages printed meanwhile clear the bar's line and redraw it below themselves.
//   * Otherwise: one line every `interval` seconds (default 5; prog_set_interval, or the
//     environment variable DIFFOOD_PROGRESS_INTERVAL), e.g.
//         "PROG: sample 1200/10000 (12.0%) 35.2/s ETA 4m10s loss 0.123"
//     and a final "PROG: sample done 10000/10000 in 4m44s (35.2/s)" at prog_end.
// Rate = (done - done at begin) / elapsed seconds; ETA = (total - done) / rate.
// All functions are thread-safe (one mutex); none fails.
#ifndef DIFFOOD_LOG_H
#define DIFFOOD_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_LEVEL_COUNT } log_level;

// Messages above `level` are dropped. Default LOG_INFO.
void log_set_level(log_level level);
log_level log_get_level(void);
// Program name prefixed to messages (copied; NULL or "" for none).
void log_set_prog(const char *prog);
// Redirects messages and progress to `f` (NULL: back to stderr); for tests. Not owned.
void log_set_stream(FILE *f);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// --- progress ------------------------------------------------------------------------------

typedef enum {
    PROG_AUTO,  // bar when the stream is a terminal, lines otherwise (default)
    PROG_BAR,   // always the redrawn bar
    PROG_LINES, // always periodic lines
    PROG_OFF,   // nothing (also implied by LOG_ERROR level)
    PROG_MODE_COUNT
} prog_mode;

void prog_set_mode(prog_mode mode);
// Seconds between lines in PROG_LINES mode (<= 0: a line at every update). Overrides the
// environment variable.
void prog_set_interval(double seconds);
// Replaces the monotonic clock (seconds) for tests; NULL restores it.
void prog_set_clock(double (*now)(void));

// Starts reporting `label` (copied) with `total` units of work (0: unknown, no ETA). The rate
// counts from done = 0.
void prog_begin(const char *label, uint64_t total);
// Same, for resumed work: `done` units were finished before; the rate counts from there.
void prog_begin_from(const char *label, uint64_t done, uint64_t total);
// Reports `done` units finished; `fmt` (may be NULL) adds text such as "loss %.3f". Draws when
// due (bar: at most ~10 times a second; lines: every interval).
void prog_update(uint64_t done, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Ends the report with a final line (done, elapsed, rate). No-op when none is active.
void prog_end(void);

// --- the arithmetic, exposed for tests ------------------------------------------------------

// Units per second of (done - done0) over `elapsed` seconds; 0 when elapsed <= 0 or no work.
double prog_rate(uint64_t done0, uint64_t done, double elapsed);
// Seconds left at that rate for (total - done) units; -1 when unknown (total 0, rate 0).
double prog_eta(uint64_t done0, uint64_t done, uint64_t total, double elapsed);
// Duration as "42s", "3m05s", "2h07m" or "3d04h" ("?" when negative) into buf (cap >= 16).
const char *prog_format_duration(double seconds, char *buf, size_t cap);

#endif
