// cli: what every stage and tool main needs: a declarative option table parsed from argv with
// clear errors and a generated --help, the standard options (--config, --set, --threads,
// --device, --quiet, --verbose), loading the layered config, the error exit, the one-line JSON
// summary and the SIGINT/SIGTERM flag.
//
// A main looks like:
//     static const cli_opt opts[] = {
//         {"out", "STORE", 0, "output store (created)"},
//         {"force", NULL, 0, "replace an existing store with other parameters"},
//         {0}};
//     static const cli_spec spec = {"sample", "[options] --in STORE --out STORE",
//                                   "Noises and denoises images.", opts, CLI_STD_ALL, 0, 0};
//     int main(int argc, char **argv) {
//         cli_args *a = NULL; cfg *c = NULL;
//         int rc = cli_parse(&a, &spec, argc, argv);
//         if (rc == CLI_HELP) { cli_print_help(stdout, &spec); cli_args_free(a); return 0; }
//         if (rc < 0) return cli_fail(rc);
//         ERR_GOTO(rc, cli_load_config(a, &c));
//         ... cli_summary(stdout, "done", extra); ...
//     fail:
//         cfg_free(c); cli_args_free(a);
//         return rc < 0 ? cli_fail(rc) : 0;
//     }
//
// Options are long only ("--name VALUE" or "--name=VALUE"; "-h" is --help); "--" ends them;
// other words are positional arguments. Parse errors are ERR_USAGE with messages such as
// "unknown option '--fo' (see 'sample --help')" or "option '--out' needs a value (STORE)".
//
// Config files (cli_load_config): defaults.yml is looked up in, first match wins,
//   1. $DIFFOOD_CONFIG_DIR,
//   2. ../config, ../../config, ../../../config relative to the executable's own directory
//      (so bin/PROG and build/h-x/bin/PROG both find the checkout's config/).
// `--config FILE` is read as given; when that file does not exist and FILE contains no '/', it
// is tried in the config directory, also with ".yml" appended (`--config fmnist`).
//
// Output: nothing here writes to stdout by itself; help and summary go to the FILE* given.
#ifndef DIFFOOD_CLI_H
#define DIFFOOD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "common/cfg.h"

// One option of the table; a table ends with an entry whose name is NULL.
typedef struct {
    const char *name;    // long name without "--" ("out")
    const char *metavar; // name of its value in help ("STORE"), or NULL for a flag
    int repeatable;      // 1: may be given several times (values kept in order)
    const char *help;    // one line
} cli_opt;

// Standard option groups a program takes (bits of cli_spec.std).
enum {
    CLI_STD_CONFIG = 1 << 0,  // --config FILE, --set KEY=VALUE (repeatable)
    CLI_STD_THREADS = 1 << 1, // --threads N (integer >= 0; 0 = all cores)
    CLI_STD_DEVICE = 1 << 2,  // --device auto|cpu|cuda
    CLI_STD_LOG = 1 << 3,     // --quiet, --verbose
    CLI_STD_ALL = 0xf,
};

typedef struct {
    const char *prog;    // program name for messages and help ("sample")
    const char *usage;   // after "usage: PROG " ("[options] --out STORE")
    const char *summary; // a paragraph for --help (may be NULL)
    const cli_opt *opts; // the program's own options (may be NULL)
    unsigned std;        // CLI_STD_* bits
    int min_pos, max_pos; // allowed number of positional arguments (max < 0: unlimited)
} cli_spec;

// Parse result. Opaque; release with cli_args_free.
typedef struct cli_args cli_args;

// Returned by cli_parse when --help/-h was given (nothing else is checked then).
#define CLI_HELP 1

// Parses argv[1..argc) against `spec` (own options plus the standard groups; --help always).
// Also sets log_set_prog(spec->prog), the log level from --quiet/--verbose, and records the
// start time for cli_summary. Returns 0, CLI_HELP, or ERR_USAGE (unknown option, missing value,
// a flag given a value, a non-repeatable option given twice, bad --threads/--device value,
// wrong number of positional arguments). *out is set (caller frees) unless ERR_NOMEM.
int cli_parse(cli_args **out, const cli_spec *spec, int argc, char **argv);
void cli_args_free(cli_args *args);
// Writes the generated help (usage, summary, every option with its help) to `f`.
void cli_print_help(FILE *f, const cli_spec *spec);

// Whether option `name` was given (flags and valued options alike).
bool cli_has(const cli_args *args, const char *name);
// The last value of `name`, or NULL when absent or a flag. Borrowed (valid until cli_args_free).
const char *cli_get(const cli_args *args, const char *name);
// Number of values of a repeatable option, and value i of them (borrowed; NULL when out of range).
size_t cli_count(const cli_args *args, const char *name);
const char *cli_value(const cli_args *args, const char *name, size_t i);
// Positional arguments.
size_t cli_npos(const cli_args *args);
const char *cli_pos(const cli_args *args, size_t i);
// An option's value as an integer / a double: `def` when absent; ERR_USAGE naming the option
// when not a number.
int cli_get_int(const cli_args *args, const char *name, long def, long *out);
int cli_get_double(const cli_args *args, const char *name, double def, double *out);
// --threads value (0 when absent) and --device value ("auto" when absent).
int cli_threads(const cli_args *args);
const char *cli_device(const cli_args *args);

// Directory holding defaults.yml (search order above) into buf. ERR_NOTFOUND listing the places
// tried; ERR_USAGE when buf is too small.
int cli_config_dir(char *buf, size_t cap);
// Resolves a --config argument to an existing file path (rules above) into buf. ERR_NOTFOUND.
int cli_resolve_config(const char *arg, char *buf, size_t cap);
// The effective config: defaults.yml < --config FILE < each --set in order (cfg_load_stack).
// *out owned by the caller (cfg_free). ERR_NOTFOUND (no defaults.yml / config file),
// ERR_CONFIG, ERR_IO.
int cli_load_config(const cli_args *args, cfg **out);

// Prints "PROG: error: MESSAGE" (err_msg(), or err_str(code) when empty) to stderr and returns
// err_exit_status(code): the value for main to return. ERR_USAGE messages get " (see 'PROG
// --help')" appended unless they already mention it. code >= 0 prints nothing and returns 0.
int cli_fail(int code);

// Writes one line of JSON to `f` (the stage passes stdout) and flushes:
//     {"prog":PROG,"status":STATUS,"seconds":ELAPSED,...fields of extra...}
// ELAPSED counts from cli_parse. `extra` (an object, may be NULL) is not taken over. ERR_NOMEM,
// ERR_IO.
int cli_summary(FILE *f, const char *status, const cJSON *extra);

// Installs SIGINT and SIGTERM handlers that set a flag for cli_interrupted() (a second signal
// restores the default action and re-raises, so a second Ctrl-C kills at once). 0 or ERR_INTERNAL.
int cli_install_interrupt(void);
// Whether SIGINT/SIGTERM arrived since cli_install_interrupt (or cli_clear_interrupt).
bool cli_interrupted(void);
// 0, or ERR_INTERRUPTED with message "interrupted by SIGNAL" when cli_interrupted(): for
// long loops, ERR_TRY(cli_check_interrupt()) after committing the current batch.
int cli_check_interrupt(void);
void cli_clear_interrupt(void);

#endif
