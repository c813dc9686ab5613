// log: leveled stderr messages and the one progress reporter (bar on a terminal, periodic lines
// otherwise); see log.h.
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define PROG_BAR_WIDTH 24
#define PROG_BAR_PERIOD 0.1 // seconds between bar redraws
#define PROG_DEFAULT_INTERVAL 5.0

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static log_level log_lvl = LOG_INFO;
static char log_prog[64];
static FILE *log_out; // NULL: stderr

static struct {
    bool active;
    bool bar;       // drawing the in-place bar (decided at begin)
    bool bar_shown; // a bar is on the current line
    char label[128];
    char extra[256];
    uint64_t total, done0, done;
    double t0, last;
    prog_mode mode;
    double interval; // < 0: not set, use the environment or the default
    double (*now)(void);
} prog = {.interval = -1.0};

static FILE *stream(void) { return log_out ? log_out : stderr; }

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void) { return prog.now ? prog.now() : mono_now(); }

// --- messages ------------------------------------------------------------------------------

void log_set_level(log_level level) {
    pthread_mutex_lock(&log_mu);
    log_lvl = level < LOG_LEVEL_COUNT ? level : LOG_DEBUG;
    pthread_mutex_unlock(&log_mu);
}

log_level log_get_level(void) { return log_lvl; }

void log_set_prog(const char *name) {
    pthread_mutex_lock(&log_mu);
    snprintf(log_prog, sizeof log_prog, "%s", name ? name : "");
    pthread_mutex_unlock(&log_mu);
}

void log_set_stream(FILE *f) {
    pthread_mutex_lock(&log_mu);
    log_out = f;
    pthread_mutex_unlock(&log_mu);
}

static void bar_clear(FILE *f) {
    if (prog.bar_shown) {
        fputs("\r\033[K", f);
        prog.bar_shown = false;
    }
}

static void bar_draw(FILE *f, double t);

static void log_vmsg(log_level level, const char *fmt, va_list ap) {
    static const char *const tags[LOG_LEVEL_COUNT] = {"error: ", "warning: ", "", ""};
    if (level > log_lvl) return;
    pthread_mutex_lock(&log_mu);
    FILE *f = stream();
    bar_clear(f);
    if (log_prog[0]) fprintf(f, "%s: ", log_prog);
    fputs(tags[level < LOG_LEVEL_COUNT ? level : LOG_DEBUG], f);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    if (prog.active && prog.bar) bar_draw(f, now());
    fflush(f);
    pthread_mutex_unlock(&log_mu);
}

void log_msg(log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

#define LOG_FN(fn, lvl)                                                                          \
    void fn(const char *fmt, ...) {                                                              \
        va_list ap;                                                                              \
        va_start(ap, fmt);                                                                       \
        log_vmsg(lvl, fmt, ap);                                                                  \
        va_end(ap);                                                                              \
    }
LOG_FN(log_error, LOG_ERROR)
LOG_FN(log_warn, LOG_WARN)
LOG_FN(log_info, LOG_INFO)
LOG_FN(log_debug, LOG_DEBUG)
#undef LOG_FN

// --- arithmetic ----------------------------------------------------------------------------

double prog_rate(uint64_t done0, uint64_t done, double elapsed) {
    if (elapsed <= 0 || done <= done0) return 0;
    return (double)(done - done0) / elapsed;
}

double prog_eta(uint64_t done0, uint64_t done, uint64_t total, double elapsed) {
    if (total == 0) return -1;
    if (done >= total) return 0;
    double r = prog_rate(done0, done, elapsed);
    if (r <= 0) return -1;
    return (double)(total - done) / r;
}

const char *prog_format_duration(double s, char *buf, size_t cap) {
    if (!(s >= 0) || s > 1e12) {
        snprintf(buf, cap, "?");
        return buf;
    }
    unsigned long long t = (unsigned long long)(s + 0.5);
    if (t < 60) snprintf(buf, cap, "%llus", t);
    else if (t < 3600) snprintf(buf, cap, "%llum%02llus", t / 60, t % 60);
    else if (t < 86400) snprintf(buf, cap, "%lluh%02llum", t / 3600, t / 60 % 60);
    else snprintf(buf, cap, "%llud%02lluh", t / 86400, t / 3600 % 24);
    return buf;
}

static const char *fmt_rate(double r, char *buf, size_t cap) {
    snprintf(buf, cap, r >= 100 ? "%.0f/s" : r >= 10 ? "%.1f/s" : "%.2f/s", r);
    return buf;
}

// --- progress ------------------------------------------------------------------------------

// "1200/10000 (12.0%) 35.2/s ETA 4m10s" (or "1200 done 35.2/s" without a total).
static void status_text(double t, char *buf, size_t cap) {
    char rate[32], eta[32];
    double el = t - prog.t0;
    fmt_rate(prog_rate(prog.done0, prog.done, el), rate, sizeof rate);
    if (prog.total) {
        prog_format_duration(prog_eta(prog.done0, prog.done, prog.total, el), eta, sizeof eta);
        snprintf(buf, cap, "%llu/%llu (%.1f%%) %s ETA %s", (unsigned long long)prog.done,
                 (unsigned long long)prog.total, 100.0 * (double)prog.done / (double)prog.total, rate, eta);
    } else {
        snprintf(buf, cap, "%llu done %s", (unsigned long long)prog.done, rate);
    }
}

static int term_cols(FILE *f) {
    struct winsize ws;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
    return 80;
}

static void bar_draw(FILE *f, double t) {
    char st[160], bar[PROG_BAR_WIDTH + 1], line[640];
    status_text(t, st, sizeof st);
    int fill = prog.total ? (int)((double)PROG_BAR_WIDTH * (double)prog.done / (double)prog.total) : 0;
    if (fill > PROG_BAR_WIDTH) fill = PROG_BAR_WIDTH;
    for (int i = 0; i < PROG_BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[PROG_BAR_WIDTH] = 0;
    snprintf(line, sizeof line, "%s%s%s [%s] %s%s%s", log_prog, log_prog[0] ? ": " : "", prog.label, bar, st,
             prog.extra[0] ? " " : "", prog.extra);
    int cols = term_cols(f);
    if ((int)strlen(line) >= cols) line[cols - 1] = 0; // a wrapped line could not be redrawn in place
    fprintf(f, "\r%s\033[K", line);
    prog.bar_shown = true;
    prog.last = t;
}

static void line_draw(FILE *f, double t) {
    char st[160];
    status_text(t, st, sizeof st);
    fprintf(f, "%s%s%s %s%s%s\n", log_prog, log_prog[0] ? ": " : "", prog.label, st, prog.extra[0] ? " " : "",
            prog.extra);
    prog.last = t;
}

void prog_set_mode(prog_mode mode) {
    pthread_mutex_lock(&log_mu);
    prog.mode = mode < PROG_MODE_COUNT ? mode : PROG_AUTO;
    pthread_mutex_unlock(&log_mu);
}

void prog_set_interval(double seconds) {
    pthread_mutex_lock(&log_mu);
    prog.interval = seconds < 0 ? 0 : seconds;
    pthread_mutex_unlock(&log_mu);
}

void prog_set_clock(double (*fn)(void)) {
    pthread_mutex_lock(&log_mu);
    prog.now = fn;
    pthread_mutex_unlock(&log_mu);
}

static double interval(void) {
    if (prog.interval >= 0) return prog.interval;
    const char *e = getenv("DIFFOOD_PROGRESS_INTERVAL");
    if (e && *e) {
        char *end;
        double v = strtod(e, &end);
        if (*end == 0 && v >= 0) return v;
    }
    return PROG_DEFAULT_INTERVAL;
}

void prog_begin_from(const char *label, uint64_t done, uint64_t total) {
    pthread_mutex_lock(&log_mu);
    FILE *f = stream();
    bar_clear(f);
    prog.active = prog.mode != PROG_OFF && log_lvl > LOG_ERROR;
    prog.bar = prog.mode == PROG_BAR || (prog.mode == PROG_AUTO && isatty(fileno(f)));
    snprintf(prog.label, sizeof prog.label, "%s", label ? label : "");
    prog.extra[0] = 0;
    prog.total = total;
    prog.done0 = prog.done = done;
    prog.t0 = prog.last = now();
    if (prog.active && prog.bar) {
        bar_draw(f, prog.t0);
        fflush(f);
    }
    pthread_mutex_unlock(&log_mu);
}

void prog_begin(const char *label, uint64_t total) { prog_begin_from(label, 0, total); }

void prog_update(uint64_t done, const char *fmt, ...) {
    pthread_mutex_lock(&log_mu);
    if (!prog.active) goto out;
    prog.done = done;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prog.extra, sizeof prog.extra, fmt, ap);
        va_end(ap);
    }
    double t = now();
    FILE *f = stream();
    if (prog.bar) {
        if (t - prog.last >= PROG_BAR_PERIOD || (prog.total && done >= prog.total)) bar_draw(f, t);
    } else if (t - prog.last >= interval()) {
        line_draw(f, t);
    }
    fflush(f);
out:
    pthread_mutex_unlock(&log_mu);
}

void prog_end(void) {
    pthread_mutex_lock(&log_mu);
    if (!prog.active) goto out;
    FILE *f = stream();
    double t = now(), el = t - prog.t0;
    char rate[32], dur[32], total[32] = "";
    bar_clear(f); // the final line replaces the bar
    if (prog.total) snprintf(total, sizeof total, "/%llu", (unsigned long long)prog.total);
    fprintf(f, "%s%s%s done %llu%s in %s (%s)%s%s\n", log_prog, log_prog[0] ? ": " : "", prog.label,
            (unsigned long long)prog.done, total, prog_format_duration(el, dur, sizeof dur),
            fmt_rate(prog_rate(prog.done0, prog.done, el), rate, sizeof rate), prog.extra[0] ? " " : "", prog.extra);
    fflush(f);
    prog.active = false;
out:
    pthread_mutex_unlock(&log_mu);
}
