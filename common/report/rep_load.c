// rep_load: reading what the report shows (rep.h): the scores store (every method's per-image
// scores, then the OpenOOD metrics), training logs of checkpoint stores and picture grids of
// samples stores.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/report/rep.h"
#include "common/stage.h"
#include "common/store.h"

// --- helpers ---------------------------------------------------------------------------------

static char *rep_strdup(const char *s) {
    return strdup(s ? s : "");
}

static const char *rep_json_str(const cJSON *o, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(j) ? j->valuestring : "";
}

// meta[key] parsed as JSON into *out (NULL when absent and optional). ERR_INPUT when bad.
static int rep_meta_json(ts_store *s, const char *key, int optional, cJSON **out) {
    char *t = NULL;
    *out = NULL;
    int rc = ts_meta_get(s, key, &t);
    if (rc == ERR_NOTFOUND && optional) return 0;
    if (rc < 0) return err_set(ERR_INPUT, "%s: no meta '%s'", ts_path(s), key);
    *out = cJSON_Parse(t);
    free(t);
    ERR_IF(!*out, ERR_INPUT, "%s: meta '%s' is not JSON", ts_path(s), key);
    return 0;
}

// Appends v to the growing array (*a, *n, *cap).
static int rep_push(double **a, size_t *n, size_t *cap, double v) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        double *p = realloc(*a, c * sizeof *p);
        ERR_IF(!p, ERR_NOMEM, "out of memory");
        *a = p, *cap = c;
    }
    (*a)[(*n)++] = v;
    return 0;
}

static int rep_open_complete(ts_store **s, const char *path) {
    ERR_TRY(ts_open(s, path, TS_RDONLY));
    int c = stage_is_complete(*s);
    if (c == 1) return 0;
    ts_close(*s);
    *s = NULL;
    if (c < 0) return c;
    return err_set(ERR_INPUT, "%s: incomplete store (run the stage that makes it)", path);
}

// --- scores ----------------------------------------------------------------------------------

// Reads table m->table: key (set, index) -> f64 (or f32) scalar.
static int rep_read_method(ts_store *s, rep_method *m, int nsets) {
    ts_cursor *c = NULL;
    size_t *cap = calloc((size_t)nsets, sizeof *cap);
    m->scores = calloc((size_t)nsets, sizeof *m->scores);
    m->n = calloc((size_t)nsets, sizeof *m->n);
    m->m = calloc((size_t)nsets, sizeof *m->m);
    int rc = 0;
    ERR_GOTO_IF(rc, !cap || !m->scores || !m->n || !m->m, ERR_NOMEM, "out of memory");
    rc = ts_cursor_open(s, m->table, &c);
    ERR_GOTO_IF(rc, rc == ERR_NOTFOUND, ERR_INPUT, "%s: no table '%s' (method %s listed in meta methods)",
                ts_path(s), m->table, m->name);
    ERR_GOTO(rc, rc);
    ts_key k;
    while ((rc = ts_cursor_next(c, &k)) == 1) {
        uint32_t v[2];
        char kb[64];
        ERR_GOTO_IF(rc, ts_key_get_tuple(&k, v, 2) != 2, ERR_INPUT, "%s: table '%s': key %s is not (set, index)",
                    ts_path(s), m->table, ts_key_format(&k, kb, sizeof kb));
        ERR_GOTO_IF(rc, (int)v[0] >= nsets, ERR_INPUT, "%s: table '%s': key %s names set %u of %d", ts_path(s),
                    m->table, ts_key_format(&k, kb, sizeof kb), v[0], nsets);
        ts_tensor t;
        double buf[1];
        ERR_GOTO(rc, ts_cursor_get(c, &t, buf, sizeof buf));
        ERR_GOTO_IF(rc, ts_tensor_numel(&t) != 1 || (t.dtype != TS_F64 && t.dtype != TS_F32), ERR_INPUT,
                    "%s: table '%s': key %s is not a float scalar", ts_path(s), m->table,
                    ts_key_format(&k, kb, sizeof kb));
        float f32;
        memcpy(&f32, buf, sizeof f32);
        double x = t.dtype == TS_F64 ? buf[0] : (double)f32;
        ERR_GOTO(rc, rep_push(&m->scores[v[0]], &m->n[v[0]], &cap[v[0]], x));
    }
    ERR_GOTO(rc, rc);
fail:
    ts_cursor_close(c);
    free(cap);
    return rc;
}

static int rep_in_list(char **names, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return 1;
    return 0;
}

static int rep_metrics(rep_report *r, rep_method *m, const char *path) {
    ERR_IF(m->n[0] == 0, ERR_INPUT, "%s: method table '%s': the ID set '%s' has no scores", path, m->table,
           r->sets[0].name);
    m->mean_auroc = 0;
    for (int s = 1; s < r->nsets; s++) {
        ERR_IF(m->n[s] == 0, ERR_INPUT, "%s: method table '%s': set '%s' has no scores", path, m->table,
               r->sets[s].name);
        int rc = ood_metrics_compute(m->scores[0], m->n[0], m->scores[s], m->n[s], &m->m[s]);
        if (rc < 0) {
            // name the set whose score is bad (the metrics only know "ID" / "OOD")
            const char *which = strstr(err_msg(), "ID ") == err_msg() ? r->sets[0].name : r->sets[s].name;
            return err_prefix(rc, "%s: method table '%s', set '%s': ", path, m->table, which);
        }
        m->mean_auroc += m->m[s].auroc / (r->nsets - 1);
    }
    for (int g = 0; g < 2; g++) {
        int cnt = 0;
        for (int s = 1; s < r->nsets; s++) {
            if (!rep_in_list(r->groups[g], r->ngroups[g], r->sets[s].name)) continue;
            const ood_metrics *x = &m->m[s];
            double v[REP_METRIC_COUNT] = {x->auroc, x->aupr_in, x->aupr_out, x->fpr95};
            for (int k = 0; k < REP_METRIC_COUNT; k++) m->group[g][k] += v[k];
            cnt++;
        }
        if (cnt) {
            m->has_group[g] = 1;
            for (int k = 0; k < REP_METRIC_COUNT; k++) m->group[g][k] /= cnt;
        }
    }
    return 0;
}

int rep_best_method(const rep_report *r, const char *family, const char *space, const int *skip) {
    int best = -1;
    for (int i = 0; i < r->nmethods; i++) {
        const rep_method *m = &r->methods[i];
        if ((skip && skip[i]) || strcmp(m->family, family) != 0 || (space && strcmp(m->space, space) != 0)) continue;
        if (best < 0 || m->mean_auroc > r->methods[best].mean_auroc) best = i;
    }
    return best;
}

static int rep_parse_methods(rep_report *r, ts_store *s, const char *path) {
    cJSON *sets = NULL, *methods = NULL, *levels = NULL;
    int rc = 0;
    ERR_GOTO(rc, rep_meta_json(s, "sets", 0, &sets));
    ERR_GOTO(rc, rep_meta_json(s, "methods", 0, &methods));
    ERR_GOTO_IF(rc, !cJSON_IsArray(sets) || cJSON_GetArraySize(sets) < 2, ERR_INPUT,
                "%s: meta sets must list the ID set and at least one OOD set", path);
    ERR_GOTO_IF(rc, !cJSON_IsArray(methods) || cJSON_GetArraySize(methods) < 1, ERR_INPUT,
                "%s: meta methods lists no method", path);
    r->nsets = cJSON_GetArraySize(sets);
    r->sets = calloc((size_t)r->nsets, sizeof *r->sets);
    r->nmethods = cJSON_GetArraySize(methods);
    r->methods = calloc((size_t)r->nmethods, sizeof *r->methods);
    ERR_GOTO_IF(rc, !r->sets || !r->methods, ERR_NOMEM, "out of memory");
    for (int i = 0; i < r->nsets; i++) {
        const cJSON *o = cJSON_GetArrayItem(sets, i);
        r->sets[i].name = rep_strdup(rep_json_str(o, "name"));
        r->sets[i].role = rep_strdup(rep_json_str(o, "role"));
        ERR_GOTO_IF(rc, !r->sets[i].name || !r->sets[i].role, ERR_NOMEM, "out of memory");
        ERR_GOTO_IF(rc, !*r->sets[i].name, ERR_INPUT, "%s: meta sets: entry %d has no name", path, i);
    }
    ERR_GOTO_IF(rc, strcmp(r->sets[0].role, "id") != 0, ERR_INPUT, "%s: meta sets: set 0 ('%s') is not the ID set",
                path, r->sets[0].name);
    for (int i = 0; i < r->nmethods; i++) {
        const cJSON *o = cJSON_GetArrayItem(methods, i);
        rep_method *m = &r->methods[i];
        m->table = rep_strdup(rep_json_str(o, "table"));
        m->name = rep_strdup(rep_json_str(o, "name"));
        m->family = rep_strdup(rep_json_str(o, "family"));
        m->space = rep_strdup(rep_json_str(o, "space"));
        m->kind = rep_strdup(rep_json_str(o, "kind"));
        ERR_GOTO_IF(rc, !m->table || !m->name || !m->family || !m->space || !m->kind, ERR_NOMEM, "out of memory");
        ERR_GOTO_IF(rc, !*m->table, ERR_INPUT, "%s: meta methods: entry %d has no table", path, i);
        if (!*m->name) {
            free(m->name);
            m->name = rep_strdup(m->table);
        }
        const cJSON *lv = cJSON_GetObjectItemCaseSensitive(o, "level");
        m->level = cJSON_IsNumber(lv) ? lv->valueint : -1;
    }
    ERR_GOTO(rc, rep_meta_json(s, "levels", 1, &levels));
    r->levels = levels ? cJSON_PrintUnformatted(levels) : strdup("[]");
    ERR_GOTO_IF(rc, !r->levels, ERR_NOMEM, "out of memory");
fail:
    cJSON_Delete(sets);
    cJSON_Delete(methods);
    cJSON_Delete(levels);
    return rc;
}

int rep_load_scores(rep_report *r, const char *path, const char *const *near, int nnear, const char *const *far,
                    int nfar, int decimals) {
    memset(r, 0, sizeof *r);
    ts_store *s = NULL;
    char *t = NULL;
    int rc = 0;
    r->decimals = decimals;
    r->best_level = -1;
    r->scores_path = strdup(path);
    ERR_GOTO_IF(rc, !r->scores_path, ERR_NOMEM, "out of memory");
    ERR_GOTO(rc, rep_open_complete(&s, path));
    ERR_GOTO(rc, rep_parse_methods(r, s, path));
    if (ts_meta_get(s, "accuracy", &t) == 0) {
        r->accuracy = strtod(t, NULL);
        r->has_accuracy = 1;
        free(t);
        t = NULL;
    }
    if (ts_meta_get(s, "repeats", &t) == 0) r->repeats = atoi(t);
    const char *const *lists[2] = {near, far};
    int counts[2] = {nnear, nfar};
    for (int g = 0; g < 2; g++) {
        r->groups[g] = calloc((size_t)counts[g] + 1, sizeof(char *));
        ERR_GOTO_IF(rc, !r->groups[g], ERR_NOMEM, "out of memory");
        for (int i = 0; i < counts[g]; i++) {
            int found = 0;
            for (int k = 1; k < r->nsets; k++) found |= strcmp(r->sets[k].name, lists[g][i]) == 0;
            ERR_GOTO_IF(rc, !found, ERR_CONFIG, "report.%s names '%s', which is not an OOD set of %s",
                        g ? "far_ood" : "near_ood", lists[g][i], path);
            r->groups[g][r->ngroups[g]++] = strdup(lists[g][i]);
        }
    }
    for (int i = 0; i < r->nmethods; i++) {
        ERR_GOTO(rc, rep_read_method(s, &r->methods[i], r->nsets));
        ERR_GOTO(rc, rep_metrics(r, &r->methods[i], path));
    }
    for (int k = 0; k < r->nsets; k++)
        for (int i = 0; i < r->nmethods; i++)
            if (r->methods[i].n[k] > r->sets[k].n) r->sets[k].n = r->methods[i].n[k];
    int b = rep_best_method(r, "diffood", "logit", NULL);
    if (b < 0) b = rep_best_method(r, "diffood", NULL, NULL);
    if (b >= 0) r->best_level = r->methods[b].level;
fail:
    free(t);
    ts_close(s);
    return rc;
}

// --- training logs ---------------------------------------------------------------------------

// Rows of `table` (key u64 -> f32 vector of >= 2): column 0 into *x, column `col` into *y.
static int rep_read_rows(ts_store *s, const char *table, int col, double **x, double **y, size_t *n) {
    ts_cursor *c = NULL;
    size_t capx = 0, capy = 0, ny = 0;
    *n = 0;
    ERR_TRY(ts_cursor_open(s, table, &c));
    int rc;
    float buf[64];
    while ((rc = ts_cursor_next(c, NULL)) == 1) {
        ts_tensor t;
        ERR_GOTO(rc, ts_cursor_get(c, &t, buf, sizeof buf));
        ERR_GOTO_IF(rc, t.dtype != TS_F32 || ts_tensor_numel(&t) <= col, ERR_INPUT,
                    "%s: table '%s': rows must be f32 vectors of more than %d values", ts_path(s), table, col);
        ERR_GOTO(rc, rep_push(x, n, &capx, buf[0]));
        ERR_GOTO(rc, rep_push(y, &ny, &capy, buf[col]));
    }
fail:
    ts_cursor_close(c);
    return rc;
}

int rep_load_trainlog(rep_report *r, const char *path) {
    ts_store *s = NULL;
    int rc = 0;
    ERR_TRY(ts_open(&s, path, TS_RDONLY));
    rep_trainlog *p = realloc(r->logs, (size_t)(r->nlogs + 1) * sizeof *p);
    ERR_GOTO_IF(rc, !p, ERR_NOMEM, "out of memory");
    r->logs = p;
    rep_trainlog *l = &r->logs[r->nlogs++];
    memset(l, 0, sizeof *l);
    l->path = strdup(path);
    rc = ts_meta_get(s, "model", &l->model);
    ERR_GOTO_IF(rc, rc == ERR_NOTFOUND, ERR_INPUT, "%s: no meta 'model' (not a training checkpoint store)", path);
    ERR_GOTO(rc, rc);
    ERR_GOTO_IF(rc, !l->path, ERR_NOMEM, "out of memory");
    rc = ts_table_exists(s, "log"); // a run shorter than log_every steps has no rows
    ERR_GOTO(rc, rc);
    if (rc == 1) ERR_GOTO(rc, rep_read_rows(s, "log", 1, &l->step, &l->loss, &l->n));
    if (ts_table_exists(s, "val_acc") == 1) ERR_GOTO(rc, rep_read_rows(s, "val_acc", 1, &l->epoch, &l->acc, &l->n_acc));
fail:
    ts_close(s);
    return rc;
}

// --- freeing ---------------------------------------------------------------------------------

void rep_free(rep_report *r) {
    if (!r) return;
    for (int i = 0; i < r->nsets; i++) free(r->sets[i].name), free(r->sets[i].role);
    for (int i = 0; i < r->nmethods; i++) {
        rep_method *m = &r->methods[i];
        for (int k = 0; m->scores && k < r->nsets; k++) free(m->scores[k]);
        free(m->scores), free(m->n), free(m->m);
        free(m->table), free(m->name), free(m->family), free(m->space), free(m->kind);
    }
    for (int g = 0; g < 2; g++) {
        for (int i = 0; i < r->ngroups[g]; i++) free(r->groups[g][i]);
        free(r->groups[g]);
    }
    for (int i = 0; i < r->nlogs; i++) {
        rep_trainlog *l = &r->logs[i];
        free(l->path), free(l->model), free(l->step), free(l->loss), free(l->epoch), free(l->acc);
    }
    for (int i = 0; i < r->npics; i++) free(r->pics[i].set), free(r->pics[i].png_path);
    free(r->pics);
    free(r->logs);
    free(r->sets);
    free(r->methods);
    free(r->levels);
    free(r->scores_path);
    memset(r, 0, sizeof *r);
}
