// report: the last stage (ARCHITECTURE.md; METHOD.md 8, 9): the OpenOOD metrics of every method
// of a complete scores store on every OOD set, written as DIR/report.md, DIR/report.json and one
// self-contained DIR/report.html (inline SVG charts, pictures inlined), plus the picture grids
// in DIR/pictures/. The headline AUROC table goes to stdout, then the one-line JSON summary.
//
//   report --scores STORE [--train-log CKPT ...] [--samples [NAME=]STORE ...] --out DIR
//          [--config FILE] [--set report.KEY=VALUE]
//
// Report is cheap: it recomputes everything on every run (no store key, no "up to date").
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/log.h"
#include "common/stage.h"
#include "common/report/rep.h"

#define REPORT_MAX_GROUP 64

static const cli_opt report_opts[] = {
    {"scores", "STORE", 0, "scores store (from the score stage; must be complete)"},
    {"train-log", "CKPT", 1, "checkpoint store of train (denoiser or classifier): its loss curves (repeatable)"},
    {"samples", "[NAME=]STORE", 1, "samples store of the set NAME (default: the image store's meta name): picture "
                                   "grid of originals and denoised repeats (repeatable)"},
    {"out", "DIR", 0, "output folder (created): report.md, report.json, report.html, pictures/"},
    {0}};

static const cli_spec report_spec = {
    "report", "--scores STORE [--train-log CKPT ...] [--samples [NAME=]STORE ...] --out DIR [options]",
    "Computes AUROC, AUPR-In, AUPR-Out and FPR@95TPR (OpenOOD conventions, OOD positive) of every method of "
    "the scores store on every OOD set, averages over the report.near_ood / report.far_ood groups, and writes "
    "the report (config report.formats: md, json, html). Exit 2 for a missing or incomplete store or unusable "
    "scores (an empty set, NaN).",
    report_opts, CLI_STD_CONFIG | CLI_STD_LOG, 0, 0};

// A string list of the config (report.near_ood) into names[0..*n) (borrowed).
static int report_names(const cfg *c, const char *path, const char **names, int *n) {
    const cfg *node = cfg_find(c, path);
    *n = 0;
    if (!node) return 0;
    size_t len = cfg_node_len(node);
    ERR_IF(len > REPORT_MAX_GROUP, ERR_CONFIG, "config key '%s' lists more than %d sets", path, REPORT_MAX_GROUP);
    for (size_t i = 0; i < len; i++) ERR_TRY(cfg_get_str(cfg_node_at(node, i), "", &names[(*n)++]));
    return 0;
}

static int report_has_format(const cfg *c, const char *fmt) {
    const cfg *node = cfg_find(c, "report.formats");
    if (!node) return 1;
    for (size_t i = 0; i < cfg_node_len(node); i++) {
        const char *s = NULL;
        if (cfg_get_str(cfg_node_at(node, i), "", &s) == 0 && strcmp(s, fmt) == 0) return 1;
    }
    return 0;
}

// Writes b to DIR/NAME through a temporary file renamed into place: a failed write (a full disk)
// leaves the previous file, never a truncated one.
static int report_write(const char *dir, const char *name, const rep_buf *b) {
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    ERR_IF(!f, ERR_IO, "%s: cannot create (%s)", tmp, strerror(errno));
    errno = 0;
    size_t n = b->len ? fwrite(b->s, 1, b->len, f) : 0;
    int e = n != b->len ? errno : 0;
    if (fclose(f) != 0 && !e) e = errno ? errno : EIO;
    if (n != b->len && !e) e = EIO;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        unlink(tmp);
        if (e == ENOSPC || e == EDQUOT)
            return err_set(ERR_IO, "%s: the disk is full (%s); free some space and rerun", path, strerror(e));
        return err_set(ERR_IO, "%s: write error (%s)", path, strerror(e));
    }
    return 0;
}

static int report_mkdir(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    ERR_IF(mkdir(p, 0755) != 0 && errno != EEXIST, ERR_IO, "%s: cannot create the folder (%s)", dir, strerror(errno));
    return 0;
}

int main(int argc, char **argv) {
    cli_args *a = NULL;
    cfg *c = NULL;
    rep_report r;
    memset(&r, 0, sizeof r);
    rep_buf text = {0}, md = {0}, json = {0}, html = {0};
    char *spec = NULL;
    int rc = cli_parse(&a, &report_spec, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, &report_spec);
        cli_args_free(a);
        return 0;
    }
    if (rc < 0) goto fail;
    const char *scores = cli_get(a, "scores"), *out = cli_get(a, "out");
    ERR_GOTO_IF(rc, !scores, ERR_USAGE, "--scores STORE is required");
    ERR_GOTO_IF(rc, !out, ERR_USAGE, "--out DIR is required");
    ERR_GOTO(rc, cli_load_config(a, &c));
    const char *near[REPORT_MAX_GROUP], *far[REPORT_MAX_GROUP];
    int nnear = 0, nfar = 0, decimals = 2, pictures = 8;
    ERR_GOTO(rc, report_names(c, "report.near_ood", near, &nnear));
    ERR_GOTO(rc, report_names(c, "report.far_ood", far, &nfar));
    ERR_GOTO(rc, cfg_get_int(c, "report.decimals", &decimals));
    ERR_GOTO(rc, cfg_get_int(c, "report.pictures", &pictures));
    ERR_GOTO_IF(rc, decimals < 0 || decimals > 8, ERR_CONFIG, "report.decimals must be 0..8, not %d", decimals);
    ERR_GOTO_IF(rc, pictures < 0 || pictures > 64, ERR_CONFIG, "report.pictures must be 0..64, not %d", pictures);

    ERR_GOTO(rc, rep_load_scores(&r, scores, near, nnear, far, nfar, decimals));
    log_info("%s: %d methods, %d OOD sets", scores, r.nmethods, r.nsets - 1);
    for (size_t i = 0; i < cli_count(a, "train-log"); i++) ERR_GOTO(rc, rep_load_trainlog(&r, cli_value(a, "train-log", i)));
    // what it reads is never where it writes (common/stage.h), whatever the flags
    ERR_GOTO(rc, stage_note_input(scores));
    for (size_t i = 0; i < cli_count(a, "train-log"); i++) ERR_GOTO(rc, stage_note_input(cli_value(a, "train-log", i)));
    for (size_t i = 0; i < cli_count(a, "samples"); i++) {
        const char *v = cli_value(a, "samples", i), *eq = strchr(v, '=');
        ERR_GOTO(rc, stage_note_input(eq ? eq + 1 : v));
    }
    ERR_GOTO(rc, stage_check_output(out, 0)); // beside its inputs is fine (e.g. in the run folder)
    ERR_GOTO(rc, report_mkdir(out));
    for (size_t i = 0; pictures > 0 && i < cli_count(a, "samples"); i++) {
        free(spec);
        spec = strdup(cli_value(a, "samples", i));
        ERR_GOTO_IF(rc, !spec, ERR_NOMEM, "out of memory");
        char *eq = strchr(spec, '='), *set = NULL, *path = spec;
        if (eq) *eq = 0, set = spec, path = eq + 1;
        ERR_GOTO(rc, rep_load_samples(&r, path, set, pictures, out));
    }

    if (report_has_format(c, "md")) {
        rep_render_md(&r, &md);
        ERR_GOTO(rc, rep_buf_ok(&md));
        ERR_GOTO(rc, report_write(out, "report.md", &md));
    }
    if (report_has_format(c, "json")) {
        ERR_GOTO(rc, rep_render_json(&r, &json));
        ERR_GOTO(rc, report_write(out, "report.json", &json));
    }
    if (report_has_format(c, "html")) {
        ERR_GOTO(rc, rep_render_html(&r, &html));
        ERR_GOTO(rc, report_write(out, "report.html", &html));
    }
    rep_render_text(&r, &text);
    ERR_GOTO(rc, rep_buf_ok(&text));
    fputs(text.s, stdout);

    cJSON *x = cJSON_CreateObject();
    ERR_GOTO_IF(rc, !x, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(x, "out", out);
    cJSON_AddNumberToObject(x, "methods", r.nmethods);
    cJSON_AddNumberToObject(x, "ood_sets", r.nsets - 1);
    if (r.best_level >= 0) cJSON_AddNumberToObject(x, "best_level", r.best_level);
    int bd = rep_best_method(&r, "diffood", NULL, NULL), bb = rep_best_method(&r, "baseline", NULL, NULL);
    if (bd >= 0) {
        cJSON_AddStringToObject(x, "best_diffood", r.methods[bd].table);
        cJSON_AddNumberToObject(x, "best_diffood_auroc", r.methods[bd].mean_auroc);
    }
    if (bb >= 0) {
        cJSON_AddStringToObject(x, "best_baseline", r.methods[bb].table);
        cJSON_AddNumberToObject(x, "best_baseline_auroc", r.methods[bb].mean_auroc);
    }
    if (r.has_accuracy) cJSON_AddNumberToObject(x, "accuracy", r.accuracy);
    rc = cli_summary(stdout, "ok", x);
    cJSON_Delete(x);
fail:
    free(spec);
    rep_buf_free(&text), rep_buf_free(&md), rep_buf_free(&json), rep_buf_free(&html);
    rep_free(&r);
    cfg_free(c);
    cli_args_free(a);
    return rc < 0 ? cli_fail(rc) : 0;
}
