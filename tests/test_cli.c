// Tests of the stage-main helpers (common/cli.h): option parsing and its errors, generated help,
// config loading (defaults < --config < --set, config directory lookup), cli_fail's message and
// exit status, the JSON summary line, and the SIGINT/SIGTERM flag.
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/err.h"
#include "tests/test_util.h"


static const cli_opt opts[] = {
    {"out", "STORE", 0, "output store"},
    {"force", NULL, 0, "replace an existing store"},
    {"in", "FILE", 1, "input file"},
    {0},
};
static const cli_spec spec = {"tool", "[options] --out STORE [FILE...]", "Does things.", opts, CLI_STD_ALL, 0, 2};

// Parses a NULL-terminated word list (argv[0] added).
static int parse(cli_args **a, const cli_spec *sp, const char *const *words) {
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"tool";
    for (; *words; words++) argv[argc++] = (char *)*words;
    argv[argc] = NULL;
    return cli_parse(a, sp, argc, argv);
}

#define ck_assert_msg_has(needle) \
    ck_assert_msg(strstr(err_msg(), (needle)) != NULL, "message '%s' lacks '%s'", err_msg(), (needle))

// --- parsing -------------------------------------------------------------------------------

START_TEST(test_parse_ok) {
    cli_args *a = NULL;
    const char *w[] = {"--out=s1", "--force", "--in", "a.txt", "--set", "model.ch=1", "--in=b.txt", "--set",
                       "x=[1, 2]", "--threads", "3", "--device", "cpu", "pos1", "--", "--weird", NULL};
    ck_assert_msg(parse(&a, &spec, w) == 0, "%s", err_msg());
    ck_assert_str_eq(cli_get(a, "out"), "s1");
    ck_assert(cli_has(a, "force"));
    ck_assert_ptr_null(cli_get(a, "force"));
    ck_assert(!cli_has(a, "quiet"));
    ck_assert_uint_eq(cli_count(a, "in"), 2);
    ck_assert_str_eq(cli_value(a, "in", 0), "a.txt");
    ck_assert_str_eq(cli_value(a, "in", 1), "b.txt");
    ck_assert_ptr_null(cli_value(a, "in", 2));
    ck_assert_uint_eq(cli_count(a, "set"), 2);
    ck_assert_str_eq(cli_value(a, "set", 1), "x=[1, 2]");
    ck_assert_int_eq(cli_threads(a), 3);
    ck_assert_str_eq(cli_device(a), "cpu");
    ck_assert_uint_eq(cli_npos(a), 2);
    ck_assert_str_eq(cli_pos(a, 0), "pos1");
    ck_assert_str_eq(cli_pos(a, 1), "--weird"); // after "--" everything is positional
    long v;
    double d;
    ck_assert_int_eq(cli_get_int(a, "threads", 0, &v), 0);
    ck_assert_int_eq(v, 3);
    ck_assert_int_eq(cli_get_int(a, "out", 0, &v), ERR_USAGE);
    ck_assert_msg_has("option '--out': 's1' is not an integer");
    ck_assert_int_eq(cli_get_double(a, "nosuch", 2.5, &d), 0);
    ck_assert_double_eq(d, 2.5);
    cli_args_free(a);
    const char *none[] = {NULL};
    ck_assert_int_eq(parse(&a, &spec, none), 0);
    ck_assert_int_eq(cli_threads(a), 0);
    ck_assert_str_eq(cli_device(a), "auto");
    ck_assert_uint_eq(cli_count(a, "set"), 0);
    cli_args_free(a);
}
END_TEST

START_TEST(test_parse_errors) {
    static const struct {
        const char *w[6];
        const char *needle;
    } bad[] = {
        {{"--forc"}, "unknown option '--forc' (did you mean '--force'? see 'tool --help')"},
        {{"--zzzzzzzz"}, "unknown option '--zzzzzzzz' (see 'tool --help')"},
        {{"--out"}, "option '--out' needs a value (STORE)"},
        {{"--out", "--force"}, "got the option '--force'"},
        {{"--force=1"}, "option '--force' takes no value"},
        {{"--out", "a", "--out=b"}, "option '--out' given twice"},
        {{"-x"}, "unknown option '-x'"},
        {{"a", "b", "c"}, "unexpected argument 'c'"},
        {{"--threads", "many"}, "option '--threads': 'many' is not an integer"},
        {{"--threads", "-2"}, "out of range"},
        {{"--device", "gpu"}, "'gpu' is not one of auto, cpu, cuda"},
        {{"--set", "model.ch"}, "option '--set model.ch': expected KEY=VALUE"},
        {{"--quiet", "--verbose"}, "exclude each other"},
        {{"--config"}, "needs a value (FILE)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_args *a = NULL;
        ck_assert_int_eq(parse(&a, &spec, bad[i].w), ERR_USAGE);
        ck_assert_msg(strstr(err_msg(), bad[i].needle), "case %zu: '%s' lacks '%s'", i, err_msg(), bad[i].needle);
        cli_args_free(a);
    }
    // a program without the standard groups does not know --set
    static const cli_spec bare = {"bare", NULL, NULL, opts, 0, 1, 1};
    cli_args *a = NULL;
    const char *w1[] = {"--set", "a=1", "x", NULL};
    ck_assert_int_eq(parse(&a, &bare, w1), ERR_USAGE);
    ck_assert_msg_has("unknown option '--set'");
    cli_args_free(a);
    const char *w2[] = {NULL};
    ck_assert_int_eq(parse(&a, &bare, w2), ERR_USAGE);
    ck_assert_msg_has("needs at least 1 positional argument");
    cli_args_free(a);
}
END_TEST

START_TEST(test_help) {
    cli_args *a = NULL;
    const char *w[] = {"--bogus", "--help", NULL};
    ck_assert_int_eq(parse(&a, &spec, w), CLI_HELP); // help wins over other problems
    cli_args_free(a);
    const char *h[] = {"-h", NULL};
    ck_assert_int_eq(parse(&a, &spec, h), CLI_HELP);
    cli_args_free(a);
    const char *after[] = {"--", "--help", NULL};
    ck_assert_int_eq(parse(&a, &spec, after), 0); // a positional word
    cli_args_free(a);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cli_print_help(f, &spec);
    fclose(f);
    static const char *const want[] = {"usage: tool [options] --out STORE [FILE...]\n", "Does things.",
                                       "--out STORE", "output store", "--force ", "--in FILE",
                                       "input file (repeatable)", "--config FILE", "--set KEY=VALUE",
                                       "--threads N", "--device NAME", "--quiet", "--verbose", "--help",
                                       "Exit status: 0 done, 1 failure, 2 usage/config/input error, 3 interrupted"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(text, want[i]), "help lacks '%s':\n%s", want[i], text);
    free(text);
}
END_TEST

// --- config --------------------------------------------------------------------------------

START_TEST(test_load_config) {
    tu_put("defaults.yml", "model:\n  ch: 128\n  lr: 0.1\n  name: unet\n");
    tu_put("exp.yml", "model:\n  ch: 32\n  lr: 0.5\n");
    setenv("DIFFOOD_CONFIG_DIR", tu_dir, 1);
    cli_args *a = NULL;
    cfg *c = NULL;
    int ch;
    double lr;
    const char *w[] = {"--config", "exp", "--set", "model.ch=8", NULL}; // found in the config dir
    ck_assert_int_eq(parse(&a, &spec, w), 0);
    ck_assert_msg(cli_load_config(a, &c) == 0, "%s", err_msg());
    ck_assert_int_eq(cfg_get_int(c, "model.ch", &ch), 0);
    ck_assert_int_eq(ch, 8);
    ck_assert_int_eq(cfg_get_float(c, "model.lr", &lr), 0);
    ck_assert_double_eq(lr, 0.5);
    cfg_free(c);
    cli_args_free(a);
    // a path as given; no --config: the defaults
    char path[600];
    snprintf(path, sizeof path, "%s/exp.yml", tu_dir);
    const char *w2[] = {"--config", path, NULL};
    ck_assert_int_eq(parse(&a, &spec, w2), 0);
    ck_assert_int_eq(cli_load_config(a, &c), 0);
    ck_assert_int_eq(cfg_get_int(c, "model.ch", &ch), 0);
    ck_assert_int_eq(ch, 32);
    cfg_free(c);
    cli_args_free(a);
    const char *w3[] = {NULL};
    ck_assert_int_eq(parse(&a, &spec, w3), 0);
    ck_assert_int_eq(cli_load_config(a, &c), 0);
    ck_assert_int_eq(cfg_get_int(c, "model.ch", &ch), 0);
    ck_assert_int_eq(ch, 128);
    cfg_free(c);
    cli_args_free(a);
    // errors
    const char *w4[] = {"--config", "nope", NULL};
    ck_assert_int_eq(parse(&a, &spec, w4), 0);
    ck_assert_int_eq(cli_load_config(a, &c), ERR_NOTFOUND);
    ck_assert_msg_has("config file 'nope'");
    ck_assert_ptr_null(c);
    cli_args_free(a);
    const char *w5[] = {"--set", "model.width=3", NULL};
    ck_assert_int_eq(parse(&a, &spec, w5), 0);
    ck_assert_int_eq(cli_load_config(a, &c), ERR_CONFIG);
    ck_assert_msg_has("--set model.width=3: unknown key 'model.width'; valid keys of 'model': ch, lr, name");
    cli_args_free(a);
    const char *w6[] = {"--set", "model.ch=big", NULL};
    ck_assert_int_eq(parse(&a, &spec, w6), 0);
    ck_assert_int_eq(cli_load_config(a, &c), ERR_CONFIG);
    ck_assert_msg_has("key 'model.ch' must be an int");
    cli_args_free(a);
    char empty[600];
    snprintf(empty, sizeof empty, "%s/empty", tu_dir);
    ck_assert_int_eq(mkdir(empty, 0755), 0);
    setenv("DIFFOOD_CONFIG_DIR", empty, 1);
    char dir[4096];
    ck_assert_int_eq(cli_config_dir(dir, sizeof dir), ERR_NOTFOUND);
    ck_assert_msg_has("no readable defaults.yml");
    unsetenv("DIFFOOD_CONFIG_DIR");
}
END_TEST

START_TEST(test_config_dir_from_exe) {
    unsetenv("DIFFOOD_CONFIG_DIR");
    char dir[4096], p[4200];
    ck_assert_msg(cli_config_dir(dir, sizeof dir) == 0, "%s", err_msg());
    snprintf(p, sizeof p, "%s/defaults.yml", dir);
    ck_assert_int_eq(access(p, R_OK), 0);
    ck_assert(strstr(dir, "/config"));
    char small[4];
    ck_assert_int_eq(cli_config_dir(small, sizeof small), ERR_USAGE);
}
END_TEST

// --- failing, summary, signals -------------------------------------------------------------

// Runs cli_fail(code) after err_set(code, msg) in a child whose stderr is a file; returns the
// child's exit status and its stderr in out.
struct fail_arg {
    int code;
    const char *msg;
};

static int fail_in_child(void *arg) {
    const struct fail_arg *f = arg;
    cli_args *a = NULL;
    const char *none[] = {NULL};
    if (parse(&a, &spec, none) != 0) return 98;
    cli_args_free(a);
    if (f->msg) err_set(f->code, "%s", f->msg);
    else err_clear();
    return cli_fail(f->code);
}

static int fail_child(int code, const char *msg, char *out, size_t cap) {
    struct fail_arg f = {code, msg};
    int st = tu_fork_stderr(tu_path("stderr.txt"), fail_in_child, &f);
    ck_assert_ptr_nonnull(tu_read_text(tu_path("stderr.txt"), out, cap));
    return st;
}

START_TEST(test_fail) {
    char out[1024];
    ck_assert_int_eq(fail_child(ERR_USAGE, "unknown option '--x'", out, sizeof out), 2);
    ck_assert_str_eq(out, "tool: error: unknown option '--x' (see 'tool --help')\n");
    ck_assert_int_eq(fail_child(ERR_USAGE, "bad thing (see 'tool --help')", out, sizeof out), 2);
    ck_assert_str_eq(out, "tool: error: bad thing (see 'tool --help')\n");
    ck_assert_int_eq(fail_child(ERR_CONFIG, "x.yml:3: unknown key 'a'", out, sizeof out), 2);
    ck_assert_str_eq(out, "tool: error: x.yml:3: unknown key 'a'\n");
    ck_assert_int_eq(fail_child(ERR_IO, "disk full", out, sizeof out), 1);
    ck_assert_int_eq(fail_child(ERR_INTERRUPTED, "interrupted by SIGINT", out, sizeof out), 3);
    ck_assert_int_eq(fail_child(ERR_NOMEM, NULL, out, sizeof out), 1);
    ck_assert_str_eq(out, "tool: error: out of memory\n"); // no message: the code's description
    ck_assert_int_eq(fail_child(0, NULL, out, sizeof out), 0);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_summary) {
    cli_args *a = NULL;
    const char *none[] = {NULL};
    ck_assert_int_eq(parse(&a, &spec, none), 0);
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddNumberToObject(extra, "images", 10);
    cJSON_AddStringToObject(extra, "out", "x.store");
    cJSON_AddStringToObject(extra, "prog", "ignored");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_int_eq(cli_summary(f, "done", extra), 0);
    ck_assert_int_eq(cli_summary(f, "up to date", NULL), 0);
    fclose(f);
    cJSON_Delete(extra);
    char *nl = strchr(text, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = 0; // first line
    ck_assert(nl[1] != 0 && strchr(nl + 1, '\n') == nl + 1 + strlen(nl + 1) - 1); // one line each
    cJSON *o = cJSON_Parse(text);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "prog")->valuestring, "tool");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "status")->valuestring, "done");
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(o, "seconds")));
    ck_assert(cJSON_GetObjectItem(o, "seconds")->valuedouble >= 0);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "images")->valueint, 10);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "out")->valuestring, "x.store");
    ck_assert_int_eq(cJSON_GetArraySize(o), 5); // the extra "prog" is not duplicated
    cJSON_Delete(o);
    o = cJSON_Parse(nl + 1);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "status")->valuestring, "up to date");
    cJSON_Delete(o);
    free(text);
    cli_args_free(a);
}
END_TEST

START_TEST(test_interrupt) {
    ck_assert_int_eq(cli_install_interrupt(), 0);
    ck_assert(!cli_interrupted());
    ck_assert_int_eq(cli_check_interrupt(), 0);
    raise(SIGINT);
    ck_assert(cli_interrupted());
    ck_assert_int_eq(cli_check_interrupt(), ERR_INTERRUPTED);
    ck_assert_str_eq(err_msg(), "interrupted by SIGINT");
    ck_assert_int_eq(err_exit_status(cli_check_interrupt()), 3);
    cli_clear_interrupt();
    ck_assert(!cli_interrupted());
    // a second signal kills at once
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (cli_install_interrupt() != 0) _exit(1);
        raise(SIGTERM);
        if (!cli_interrupted()) _exit(2);
        raise(SIGTERM);
        _exit(0); // not reached
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "status %d", st);
}
END_TEST

Suite *suite_cli(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_add_test(tc, test_parse_ok);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_load_config);
    tcase_add_test(tc, test_config_dir_from_exe);
    tcase_add_test(tc, test_fail);
    tcase_add_test(tc, test_summary);
    tcase_add_test(tc, test_interrupt);
    suite_add_tcase(s, tc);
    return s;
}
