// cli: option tables, argv parsing, generated help, config loading, error exit, JSON summary and
// the interrupt flag for stage and tool mains (see cli.h).
#include "common/cli.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/threads.h"

typedef struct {
    size_t n, cap;
    const char **v; // values (borrowed from argv); flags record nothing but `given`
    bool given;
} opt_vals;

struct cli_args {
    const cli_spec *spec;
    cli_opt *opts; // own options then the standard ones, ending with help
    size_t nopts;
    opt_vals *vals;
    const char **pos;
    size_t npos;
};

#ifdef __AVX512F__
// Built for AVX-512 (the Makefile's default on a machine that has it): on a CPU without it the
// first vector instruction would kill the program with SIGILL, so say why first. Runs before
// main, itself compiled for plain x86-64.
__attribute__((constructor, target("arch=x86-64"))) static void cli_isa_check(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return;
    static const char msg[] = "diffood: this program was built for AVX-512 (x86-64-v4, the Makefile's default on a "
                              "machine that has it) and this CPU lacks it: rebuild on this machine (make clean && "
                              "make) or build with make ARCH=x86-64-v3\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(2);
}
#endif

static const cli_opt std_config[] = {
    {"config", "FILE", 0, "experiment configuration (YAML) laid over config/defaults.yml"},
    {"set", "KEY=VALUE", 1, "override one config key, e.g. --set sample.timesteps=[0,120] (repeatable)"},
};
static const cli_opt std_threads[] = {{"threads", "N", 0, "CPU threads (0 = all cores, the default)"}};
static const cli_opt std_device[] = {{"device", "NAME", 0, "compute device: auto (default), cpu or cuda"}};
static const cli_opt std_log[] = {
    {"quiet", NULL, 0, "print errors only (no progress)"},
    {"verbose", NULL, 0, "print debug messages too"},
};
static const cli_opt opt_help = {"help", NULL, 0, "show this help and exit"};

static char cli_prog[64] = "diffood";
static double cli_t0;
static volatile sig_atomic_t cli_sig;

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// --- the option table ----------------------------------------------------------------------

// Calls fn for every option of `spec` (own, standard groups, help) in help order.
#define STD_COUNT(a) (sizeof(a) / sizeof((a)[0]))
static size_t table_build(const cli_spec *spec, cli_opt *out) {
    size_t n = 0;
#define ADD(arr, cnt)                                        \
    for (size_t k_ = 0; k_ < (cnt); k_++) {                  \
        if (out) out[n] = (arr)[k_];                         \
        n++;                                                 \
    }
    size_t own = 0;
    while (spec->opts && spec->opts[own].name) own++;
    ADD(spec->opts, own);
    if (spec->std & CLI_STD_CONFIG) ADD(std_config, STD_COUNT(std_config));
    if (spec->std & CLI_STD_THREADS) ADD(std_threads, STD_COUNT(std_threads));
    if (spec->std & CLI_STD_DEVICE) ADD(std_device, STD_COUNT(std_device));
    if (spec->std & CLI_STD_LOG) ADD(std_log, STD_COUNT(std_log));
    ADD(&opt_help, 1);
#undef ADD
    return n;
}

static ptrdiff_t opt_index(const cli_args *a, const char *name, size_t n) {
    for (size_t i = 0; i < a->nopts; i++)
        if (strlen(a->opts[i].name) == n && strncmp(a->opts[i].name, name, n) == 0) return (ptrdiff_t)i;
    return -1;
}

// Edit distance of two short words (for "did you mean").
static size_t edit_distance(const char *x, size_t nx, const char *y) {
    size_t ny = strlen(y);
    if (nx > 40 || ny > 40) return 99;
    size_t d[41][41];
    for (size_t i = 0; i <= nx; i++) d[i][0] = i;
    for (size_t j = 0; j <= ny; j++) d[0][j] = j;
    for (size_t i = 1; i <= nx; i++)
        for (size_t j = 1; j <= ny; j++) {
            size_t sub = d[i - 1][j - 1] + (x[i - 1] != y[j - 1]);
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[nx][ny];
}

static int unknown_option(const cli_args *a, const char *name, size_t n) {
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; i < a->nopts; i++) {
        size_t dd = edit_distance(name, n, a->opts[i].name);
        if (dd < bd || (n >= 3 && strncmp(a->opts[i].name, name, n) == 0 && !best)) {
            bd = dd < bd ? dd : bd;
            best = a->opts[i].name;
        }
    }
    if (best)
        return err_set(ERR_USAGE, "unknown option '--%.*s' (did you mean '--%s'? see '%s --help')", (int)n, name,
                       best, cli_prog);
    return err_set(ERR_USAGE, "unknown option '--%.*s' (see '%s --help')", (int)n, name, cli_prog);
}

static int push_value(opt_vals *v, const char *value) {
    v->given = true;
    if (!value) return 0;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        const char **nv = realloc(v->v, cap * sizeof *nv);
        if (!nv) return err_set(ERR_NOMEM, "out of memory parsing options");
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = value;
    return 0;
}

// --- parsing -------------------------------------------------------------------------------

static bool wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return true;
    }
    return false;
}

// Checks the values of the standard options and applies --quiet/--verbose.
static int check_std(cli_args *a) {
    const char *d = cli_get(a, "device");
    if (d && strcmp(d, "auto") != 0 && strcmp(d, "cpu") != 0 && strcmp(d, "cuda") != 0)
        return err_set(ERR_USAGE, "option '--device': '%s' is not one of auto, cpu, cuda", d);
    long threads;
    ERR_TRY(cli_get_int(a, "threads", 0, &threads));
    ERR_IF(threads < 0 || threads > 4096, ERR_USAGE, "option '--threads': %ld is out of range (0..4096)", threads);
    for (size_t i = 0; i < cli_count(a, "set"); i++)
        ERR_IF(!strchr(cli_value(a, "set", i), '='), ERR_USAGE, "option '--set %s': expected KEY=VALUE",
               cli_value(a, "set", i));
    bool q = cli_has(a, "quiet"), v = cli_has(a, "verbose");
    ERR_IF(q && v, ERR_USAGE, "options '--quiet' and '--verbose' exclude each other");
    if (q) log_set_level(LOG_ERROR);
    if (v) log_set_level(LOG_DEBUG);
    return 0;
}

static int parse_args(cli_args *a, int argc, char **argv) {
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_pos && strcmp(arg, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (only_pos || arg[0] != '-' || arg[1] == 0) {
            ERR_IF(a->spec->max_pos >= 0 && a->npos >= (size_t)a->spec->max_pos, ERR_USAGE,
                   "unexpected argument '%s' (%s takes %d positional argument%s; see '%s --help')", arg, cli_prog,
                   a->spec->max_pos, a->spec->max_pos == 1 ? "" : "s", cli_prog);
            a->pos[a->npos++] = arg;
            continue;
        }
        if (arg[1] != '-') return err_set(ERR_USAGE, "unknown option '%s' (options are long: see '%s --help')", arg, cli_prog);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        ptrdiff_t k = opt_index(a, name, n);
        if (k < 0) return unknown_option(a, name, n);
        const cli_opt *o = &a->opts[k];
        opt_vals *v = &a->vals[k];
        ERR_IF(v->given && !o->repeatable, ERR_USAGE, "option '--%s' given twice", o->name);
        if (!o->metavar) {
            ERR_IF(eq, ERR_USAGE, "option '--%s' takes no value (got '%s')", o->name, arg);
            ERR_TRY(push_value(v, NULL));
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!eq) {
            ERR_IF(i + 1 >= argc, ERR_USAGE, "option '--%s' needs a value (%s)", o->name, o->metavar);
            value = argv[++i];
            ERR_IF(value[0] == '-' && value[1] == '-', ERR_USAGE,
                   "option '--%s' needs a value (%s), got the option '%s' (write --%s=%s for such a value)", o->name,
                   o->metavar, value, o->name, value);
        }
        ERR_TRY(push_value(v, value));
    }
    ERR_IF(a->npos < (size_t)(a->spec->min_pos > 0 ? a->spec->min_pos : 0), ERR_USAGE,
           "missing argument: %s needs at least %d positional argument%s (see '%s --help')", cli_prog,
           a->spec->min_pos, a->spec->min_pos == 1 ? "" : "s", cli_prog);
    return check_std(a);
}

int cli_parse(cli_args **out, const cli_spec *spec, int argc, char **argv) {
    *out = NULL;
    if (spec->std & CLI_STD_THREADS) thr_wait_policy(argv); // may re-execute (threads.h)
    cli_t0 = wall_now();
    snprintf(cli_prog, sizeof cli_prog, "%s", spec->prog ? spec->prog : "diffood");
    log_set_prog(cli_prog);
    cli_args *a = calloc(1, sizeof *a);
    if (!a) return err_set(ERR_NOMEM, "out of memory parsing options");
    a->spec = spec;
    a->nopts = table_build(spec, NULL);
    a->opts = calloc(a->nopts, sizeof *a->opts);
    a->vals = calloc(a->nopts, sizeof *a->vals);
    a->pos = calloc((size_t)(argc > 0 ? argc : 1), sizeof *a->pos);
    if (!a->opts || !a->vals || !a->pos) {
        cli_args_free(a);
        return err_set(ERR_NOMEM, "out of memory parsing options");
    }
    table_build(spec, a->opts);
    *out = a;
    if (wants_help(argc, argv)) return CLI_HELP;
    return parse_args(a, argc, argv);
}

void cli_args_free(cli_args *a) {
    if (!a) return;
    for (size_t i = 0; a->vals && i < a->nopts; i++) free(a->vals[i].v);
    free(a->vals);
    free(a->opts);
    free(a->pos);
    free(a);
}

void cli_print_help(FILE *f, const cli_spec *spec) {
    size_t n = table_build(spec, NULL);
    cli_opt *opts = calloc(n, sizeof *opts);
    if (!opts) return;
    table_build(spec, opts);
    fprintf(f, "usage: %s %s\n", spec->prog, spec->usage ? spec->usage : "[options]");
    if (spec->summary) fprintf(f, "\n%s\n", spec->summary);
    fprintf(f, "\noptions:\n");
    int width = 0;
    for (size_t i = 0; i < n; i++) {
        int w = (int)strlen(opts[i].name) + 2 + (opts[i].metavar ? 1 + (int)strlen(opts[i].metavar) : 0);
        if (w > width) width = w;
    }
    if (width > 28) width = 28;
    for (size_t i = 0; i < n; i++) {
        char head[128];
        snprintf(head, sizeof head, "--%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
                 opts[i].metavar ? opts[i].metavar : "");
        if ((int)strlen(head) > width) fprintf(f, "  %s\n  %*s  %s", head, width, "", opts[i].help ? opts[i].help : "");
        else fprintf(f, "  %-*s  %s", width, head, opts[i].help ? opts[i].help : "");
        fprintf(f, "%s\n", opts[i].repeatable && !(opts[i].help && strstr(opts[i].help, "repeatable")) ? " (repeatable)" : "");
    }
    if (spec->std & CLI_STD_CONFIG)
        fprintf(f, "\nConfiguration: config/defaults.yml < --config FILE < --set KEY=VALUE, in that order;\n"
                   "defaults.yml lists every valid key (found in $DIFFOOD_CONFIG_DIR or ../config next to bin/).\n");
    fprintf(f, "\nExit status: 0 done, 1 failure, 2 usage/config/input error, 3 interrupted.\n");
    free(opts);
}

// --- accessors -----------------------------------------------------------------------------

static const opt_vals *vals_of(const cli_args *a, const char *name) {
    ptrdiff_t k = a ? opt_index(a, name, strlen(name)) : -1;
    return k < 0 ? NULL : &a->vals[k];
}

bool cli_has(const cli_args *a, const char *name) {
    const opt_vals *v = vals_of(a, name);
    return v && v->given;
}

const char *cli_get(const cli_args *a, const char *name) {
    const opt_vals *v = vals_of(a, name);
    return v && v->n ? v->v[v->n - 1] : NULL;
}

size_t cli_count(const cli_args *a, const char *name) {
    const opt_vals *v = vals_of(a, name);
    return v ? v->n : 0;
}

const char *cli_value(const cli_args *a, const char *name, size_t i) {
    const opt_vals *v = vals_of(a, name);
    return v && i < v->n ? v->v[i] : NULL;
}

size_t cli_npos(const cli_args *a) { return a->npos; }
const char *cli_pos(const cli_args *a, size_t i) { return i < a->npos ? a->pos[i] : NULL; }

int cli_get_int(const cli_args *a, const char *name, long def, long *out) {
    const char *s = cli_get(a, name);
    if (!s) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    ERR_IF(end == s || *end || errno == ERANGE, ERR_USAGE, "option '--%s': '%s' is not an integer", name, s);
    *out = v;
    return 0;
}

int cli_get_double(const cli_args *a, const char *name, double def, double *out) {
    const char *s = cli_get(a, name);
    if (!s) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    ERR_IF(end == s || *end || errno == ERANGE, ERR_USAGE, "option '--%s': '%s' is not a number", name, s);
    *out = v;
    return 0;
}

int cli_threads(const cli_args *a) {
    long t = 0;
    if (cli_get_int(a, "threads", 0, &t) < 0 || t < 0 || t > INT_MAX) return 0;
    return (int)t;
}

const char *cli_device(const cli_args *a) {
    const char *d = cli_get(a, "device");
    return d ? d : "auto";
}

// --- configuration -------------------------------------------------------------------------

static bool has_defaults(const char *dir) {
    char p[2 * PATH_MAX];
    snprintf(p, sizeof p, "%s/defaults.yml", dir);
    return access(p, R_OK) == 0;
}

int cli_config_dir(char *buf, size_t cap) {
    const char *env = getenv("DIFFOOD_CONFIG_DIR");
    if (env && *env) {
        ERR_IF(!has_defaults(env), ERR_NOTFOUND, "DIFFOOD_CONFIG_DIR=%s: no readable defaults.yml there", env);
        ERR_IF(strlen(env) >= cap, ERR_USAGE, "DIFFOOD_CONFIG_DIR is too long");
        snprintf(buf, cap, "%s", env);
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ERR_IF(n <= 0, ERR_NOTFOUND, "cannot find config/defaults.yml: /proc/self/exe unreadable (%s); set DIFFOOD_CONFIG_DIR",
           strerror(errno));
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    char tried[3 * (PATH_MAX + 32)] = "";
    static const char *const ups[] = {"/../config", "/../../config", "/../../../config"};
    for (int i = 0; i < 3; i++) {
        char dir[PATH_MAX + 32];
        snprintf(dir, sizeof dir, "%s%s", exe, ups[i]);
        if (has_defaults(dir)) {
            char *real = realpath(dir, NULL);
            const char *use = real ? real : dir;
            if (strlen(use) >= cap) {
                int rc = err_set(ERR_USAGE, "config directory path '%s' is too long", use);
                free(real);
                return rc;
            }
            snprintf(buf, cap, "%s", use);
            free(real);
            return 0;
        }
        size_t tl = strlen(tried);
        snprintf(tried + tl, sizeof tried - tl, "%s%s", i ? ", " : "", dir);
    }
    return err_set(ERR_NOTFOUND, "cannot find config/defaults.yml (tried %s); set DIFFOOD_CONFIG_DIR", tried);
}

int cli_resolve_config(const char *arg, char *buf, size_t cap) {
    ERR_IF(!arg || !*arg, ERR_USAGE, "option '--config': empty file name");
    if (access(arg, R_OK) == 0) {
        ERR_IF(strlen(arg) >= cap, ERR_USAGE, "config path '%s' is too long", arg);
        snprintf(buf, cap, "%s", arg);
        return 0;
    }
    int e = errno;
    if (!strchr(arg, '/')) {
        char dir[PATH_MAX];
        if (cli_config_dir(dir, sizeof dir) == 0) {
            static const char *const sfx[] = {"", ".yml"};
            for (int i = 0; i < 2; i++) {
                char p[PATH_MAX + 300];
                snprintf(p, sizeof p, "%s/%s%s", dir, arg, sfx[i]);
                if (access(p, R_OK) == 0) {
                    ERR_IF(strlen(p) >= cap, ERR_USAGE, "config path '%s' is too long", p);
                    snprintf(buf, cap, "%s", p);
                    return 0;
                }
            }
            return err_set(ERR_NOTFOUND, "config file '%s': %s (also not in %s as %s or %s.yml)", arg, strerror(e),
                           dir, arg, arg);
        }
    }
    return err_set(ERR_NOTFOUND, "config file '%s': %s", arg, strerror(e));
}

int cli_load_config(const cli_args *a, cfg **out) {
    char dir[PATH_MAX], defaults[PATH_MAX + 32], user[PATH_MAX + 300];
    *out = NULL;
    ERR_TRY(cli_config_dir(dir, sizeof dir));
    snprintf(defaults, sizeof defaults, "%s/defaults.yml", dir);
    const char *conf = cli_get(a, "config");
    if (conf) ERR_TRY(cli_resolve_config(conf, user, sizeof user));
    const opt_vals *sets = vals_of(a, "set");
    return cfg_load_stack(out, defaults, conf ? user : NULL, sets ? sets->v : NULL, sets ? sets->n : 0);
}

// --- the end of a run ----------------------------------------------------------------------

int cli_fail(int code) {
    if (code >= 0) return 0;
    const char *msg = err_msg();
    if (!msg[0]) msg = err_str(code);
    if (code == ERR_USAGE && !strstr(msg, "--help")) log_error("%s (see '%s --help')", msg, cli_prog);
    else log_error("%s", msg);
    return err_exit_status(code);
}

int cli_summary(FILE *f, const char *status, const cJSON *extra) {
    int rc = 0;
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    ERR_GOTO_IF(rc, !o, ERR_NOMEM, "out of memory writing the summary");
    double secs = cli_t0 > 0 ? wall_now() - cli_t0 : 0;
    ERR_GOTO_IF(rc, !cJSON_AddStringToObject(o, "prog", cli_prog) ||
                        !cJSON_AddStringToObject(o, "status", status ? status : "done") ||
                        !cJSON_AddNumberToObject(o, "seconds", (double)(long long)(secs * 1000 + 0.5) / 1000),
                ERR_NOMEM, "out of memory writing the summary");
    for (const cJSON *it = extra ? extra->child : NULL; it; it = it->next) {
        if (!it->string || !strcmp(it->string, "prog") || !strcmp(it->string, "status") ||
            !strcmp(it->string, "seconds"))
            continue;
        cJSON *dup = cJSON_Duplicate(it, 1);
        ERR_GOTO_IF(rc, !dup, ERR_NOMEM, "out of memory writing the summary");
        cJSON_AddItemToObject(o, it->string, dup);
    }
    text = cJSON_PrintUnformatted(o);
    ERR_GOTO_IF(rc, !text, ERR_NOMEM, "out of memory writing the summary");
    fprintf(f, "%s\n", text);
    ERR_GOTO_IF(rc, fflush(f) != 0 || ferror(f), ERR_IO, "cannot write the summary: %s", strerror(errno));
fail:
    cJSON_free(text);
    cJSON_Delete(o);
    return rc;
}

// --- signals -------------------------------------------------------------------------------

static void on_signal(int sig) {
    if (cli_sig) { // second signal: stop now
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    cli_sig = sig;
}

int cli_install_interrupt(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ERR_IF(sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0, ERR_INTERNAL,
           "cannot install signal handlers: %s", strerror(errno));
    return 0;
}

bool cli_interrupted(void) { return cli_sig != 0; }

int cli_check_interrupt(void) {
    int s = cli_sig;
    if (!s) return 0;
    return err_set(ERR_INTERRUPTED, "interrupted by %s", s == SIGINT ? "SIGINT" : s == SIGTERM ? "SIGTERM" : "a signal");
}

void cli_clear_interrupt(void) { cli_sig = 0; }
