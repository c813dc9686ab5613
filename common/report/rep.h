// rep: the report of a detection run (ARCHITECTURE.md, stage `report`; METHOD.md 8, 9): loads a
// complete scores store (plus optional training-log checkpoint stores and samples stores),
// computes the OpenOOD metrics of every method on every OOD set (common/ood/metrics.h) and
// renders them as Markdown, JSON, a plain-text table and one self-contained HTML page (inline
// SVG charts, pictures inlined as base64 PNG).
//
// Library code: nothing here exits or writes to stdout; files go only where the caller says.
// Errors are err.h codes with messages naming the store, the table (method) and the set.
#ifndef DIFFOOD_REP_H
#define DIFFOOD_REP_H

#include <stddef.h>
#include <stdint.h>

#include "common/ood/metrics.h"

// --- a growing text buffer -------------------------------------------------------------------
typedef struct {
    char *s;    // NUL-terminated text (NULL until the first append)
    size_t len, cap;
    int oom;    // set when an append ran out of memory (later appends are ignored)
} rep_buf;

// Appends printf-style text. Never fails: out of memory sets b->oom (check with rep_buf_ok).
void rep_buf_printf(rep_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Appends text with &, <, >, " escaped for HTML/XML.
void rep_buf_escape(rep_buf *b, const char *text);
// Appends n bytes as base64.
void rep_buf_base64(rep_buf *b, const uint8_t *data, size_t n);
// 0, or ERR_NOMEM when an append failed.
int rep_buf_ok(const rep_buf *b);
void rep_buf_free(rep_buf *b);

// --- the data ----------------------------------------------------------------------------------
#define REP_METRIC_COUNT 4 // auroc, aupr_in, aupr_out, fpr95 (in that order everywhere)

typedef struct {
    char *name;  // dataset name
    char *role;  // "id" or "ood"
    size_t n;    // images scored (records found in the method tables)
} rep_set;

typedef struct {
    char *table, *name, *family, *space, *kind; // kind/space may be "" when not given
    int level;                                  // -1 when the method has none
    double **scores;                            // [set][i]: scores of set s (larger = more OOD)
    size_t *n;                                  // [set]: how many
    ood_metrics *m;                             // [set]: metrics of set s vs the ID set (s >= 1)
    double group[2][REP_METRIC_COUNT];          // averages over near (0) and far (1) OOD sets
    int has_group[2];
    double mean_auroc;                          // unweighted mean AUROC over all OOD sets
} rep_method;

typedef struct {
    char *path, *model;    // checkpoint store and its meta `model`
    size_t n;              // log rows
    double *step, *loss;   // table `log`
    size_t n_acc;          // val_acc rows (classifier)
    double *epoch, *acc;   // table `val_acc`
} rep_trainlog;

typedef struct {
    char *set;             // set name
    char *png_path;        // the grid picture written (DIR/pictures/samples-SET.png)
    int rows, repeats, nlevels;
    int width, height;     // of the grid picture, pixels
    int levels[16];
} rep_pictures;

typedef struct {
    char *scores_path;
    rep_set *sets;         // sets[0] is the ID set
    int nsets;
    rep_method *methods;   // display order of the scores meta `methods`
    int nmethods;
    int has_accuracy;
    double accuracy;       // ID test accuracy of the classifier (meta `accuracy`)
    int repeats;           // meta `repeats` (0 when absent)
    char *levels;          // meta `levels` (JSON text, "[]" when absent)
    char **groups[2];      // near / far OOD set names (config report.near_ood / far_ood)
    int ngroups[2];
    int decimals;          // digits after the point of the x100 numbers
    int best_level;        // the DiffOOD level with the best mean AUROC (-1: no DiffOOD)
    rep_trainlog *logs;
    int nlogs;
    rep_pictures *pics;
    int npics;
} rep_report;

// Loads the complete scores store at `path` into *r (zeroed first) and computes every metric;
// near/far are the config's group names (borrowed lists of n strings, copied; a name that is
// not an OOD set of the store is ERR_CONFIG). Errors: ERR_NOTFOUND (no store), ERR_INPUT
// ("PATH: incomplete store ...", a method table missing, an empty set, a NaN score: the message
// names the method table and the set), ERR_CORRUPT, ERR_NOMEM. Free with rep_free (also after
// a failure).
int rep_load_scores(rep_report *r, const char *path, const char *const *near, int nnear,
                    const char *const *far, int nfar, int decimals);

// Adds the training logs of the checkpoint store at `path` (meta `model`, tables `log` and,
// for the classifier, `val_acc`). ERR_NOTFOUND, ERR_INPUT (no `log` table), store errors.
int rep_load_trainlog(rep_report *r, const char *path);

// Adds a picture grid for the samples store at `path`: `set` names the set (NULL: the image
// store's meta `name`); the first `count` requested images, each row the original then every
// level's repeats (at most 4), written as a PNG into `dir`/pictures/. Follows meta `records`.
// ERR_NOTFOUND, ERR_INPUT (no `request`/`images` meta, a set the scores store does not have),
// ERR_IO, store errors.
int rep_load_samples(rep_report *r, const char *path, const char *set, int count, const char *dir);

void rep_free(rep_report *r);

// --- rendering -----------------------------------------------------------------------------
// The headline table as aligned plain text (one row per method, AUROC x100 per OOD set and
// the mean), appended to b.
void rep_render_text(const rep_report *r, rep_buf *b);
// Markdown: accuracy, counts, the headline table, then every metric per set and the groups.
void rep_render_md(const rep_report *r, rep_buf *b);
// JSON: {"scores":..,"sets":[..],"methods":[..],"accuracy":..,"repeats":..,"levels":[..],
// "best_level":..,"groups":{..},"decimals":..}; metrics as fractions in [0, 1] (not x100).
// ERR_NOMEM.
int rep_render_json(const rep_report *r, rep_buf *b);
// The self-contained HTML page (reads the pictures' PNG files to inline them). ERR_IO, ERR_NOMEM.
int rep_render_html(const rep_report *r, rep_buf *b);

// Index of the best method of `family` ("diffood" or "baseline") by mean AUROC among those
// with space `space` (NULL: any); -1 when none. `skip` (may be NULL) excludes methods with
// skip[i] != 0.
int rep_best_method(const rep_report *r, const char *family, const char *space, const int *skip);

#endif
