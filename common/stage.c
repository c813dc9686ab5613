// stage: store keys, up-to-date/resume/conflict decisions and completion marks (stage.h).
#include "common/stage.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"

static const char *const stage_state_names[STAGE_STATE_COUNT] = {"fresh", "resume", "up to date"};

const char *stage_state_name(stage_state s) { return s >= 0 && s < STAGE_STATE_COUNT ? stage_state_names[s] : "?"; }

int stage_key(const stage_id *id, char key[HASH_HEX_LEN + 1]) {
    ERR_IF(!id || !id->stage || !id->params || !id->inputs, ERR_USAGE, "stage_key: incomplete stage id");
    hash_state *h = NULL;
    ERR_TRY(hash_init(&h));
    char ver[32];
    snprintf(ver, sizeof ver, "%d", id->version);
    hash_update_text(h, "diffood-stage");
    hash_update_text(h, id->stage);
    hash_update_text(h, ver);
    hash_update_text(h, id->params);
    hash_update_text(h, id->inputs);
    hash_final_hex(h, key);
    hash_free(h);
    return 0;
}

int stage_full_key(const stage_id *id, char key[HASH_HEX_LEN + 1]) {
    ERR_TRY(stage_key(id, key));
    if (!id->request) return 0;
    hash_state *h = NULL;
    ERR_TRY(hash_init(&h));
    hash_update_text(h, "diffood-request");
    hash_update_text(h, key);
    hash_update_text(h, id->request);
    hash_final_hex(h, key);
    hash_free(h);
    return 0;
}

// --- canonical JSON ------------------------------------------------------------------------

static int stage_cmp_items(const void *a, const void *b) {
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

// A deep copy of item with every object's members sorted by key.
static cJSON *stage_sorted_copy(const cJSON *item) {
    if (cJSON_IsObject(item)) {
        int n = cJSON_GetArraySize(item), i = 0;
        cJSON *obj = cJSON_CreateObject();
        const cJSON **kids = malloc(sizeof *kids * (size_t)(n ? n : 1));
        if (!obj || !kids) goto oom;
        const cJSON *c;
        cJSON_ArrayForEach(c, item) kids[i++] = c;
        qsort(kids, (size_t)n, sizeof *kids, stage_cmp_items);
        for (i = 0; i < n; i++) {
            cJSON *v = stage_sorted_copy(kids[i]);
            if (!v || !cJSON_AddItemToObject(obj, kids[i]->string, v)) {
                cJSON_Delete(v);
                goto oom;
            }
        }
        free(kids);
        return obj;
    oom:
        free(kids);
        cJSON_Delete(obj);
        return NULL;
    }
    if (cJSON_IsArray(item)) {
        cJSON *arr = cJSON_CreateArray();
        const cJSON *c;
        if (!arr) return NULL;
        cJSON_ArrayForEach(c, item) {
            cJSON *v = stage_sorted_copy(c);
            if (!v || !cJSON_AddItemToArray(arr, v)) {
                cJSON_Delete(v);
                cJSON_Delete(arr);
                return NULL;
            }
        }
        return arr;
    }
    return cJSON_Duplicate(item, 0);
}

int stage_canonical_json(const cJSON *item, char **text) {
    *text = NULL;
    cJSON *sorted = stage_sorted_copy(item);
    ERR_IF(!sorted, ERR_NOMEM, "stage: out of memory building canonical JSON");
    *text = cJSON_PrintUnformatted(sorted);
    cJSON_Delete(sorted);
    ERR_IF(!*text, ERR_NOMEM, "stage: out of memory printing canonical JSON");
    return 0;
}

// --- explaining a conflict -----------------------------------------------------------------

// Appends " KEY (was X, now Y)" for every differing member of two objects to buf at *len,
// descending into members that are objects on both sides (KEY dotted from `prefix`).
static void stage_diff_members(char *buf, size_t cap, size_t *len, const char *prefix, const cJSON *a, const cJSON *b) {
    const cJSON *c;
    cJSON_ArrayForEach(c, b) {
        if (*len >= cap - 1) return;
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(a, c->string);
        if (o && cJSON_IsObject(o) && cJSON_IsObject(c)) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s%s.", prefix, c->string);
            stage_diff_members(buf, cap, len, sub, o, c);
            continue;
        }
        char *vn = cJSON_PrintUnformatted(c), *vo = o ? cJSON_PrintUnformatted(o) : NULL;
        if (!o)
            *len += (size_t)snprintf(buf + *len, cap - *len, " %s%s (new: %.60s)", prefix, c->string, vn ? vn : "?");
        else if (!cJSON_Compare(o, c, 1))
            *len += (size_t)snprintf(buf + *len, cap - *len, " %s%s (was %.60s, now %.60s)", prefix, c->string,
                                     vo ? vo : "?", vn ? vn : "?");
        free(vn);
        free(vo);
    }
    cJSON_ArrayForEach(c, a) {
        if (*len >= cap - 1) return;
        if (!cJSON_GetObjectItemCaseSensitive(b, c->string))
            *len += (size_t)snprintf(buf + *len, cap - *len, " %s%s (removed)", prefix, c->string);
    }
}

// Appends "; what: ..." describing how two JSON texts differ (the differing keys when both are
// objects; else, or when the values only differ beyond a double's precision, the texts around
// their first difference) to buf.
static void stage_describe_diff(char *buf, size_t cap, const char *what, const char *old, const char *now) {
    size_t len = strlen(buf);
    if (len >= cap - 1) return;
    cJSON *a = old ? cJSON_Parse(old) : NULL, *b = cJSON_Parse(now);
    if (!cJSON_IsObject(a) || !cJSON_IsObject(b)) {
        snprintf(buf + len, cap - len, "; %s differ (was %.120s, now %.120s)", what, old ? old : "(none)", now);
        goto done;
    }
    len += (size_t)snprintf(buf + len, cap - len, "; %s differ:", what);
    size_t before = len;
    stage_diff_members(buf, cap, &len, "", a, b);
    if (len == before && len < cap - 1) { // e.g. integers that one double cannot tell apart
        size_t i = 0;
        while (old[i] && old[i] == now[i]) i++;
        size_t from = i > 40 ? i - 40 : 0;
        snprintf(buf + len, cap - len, " at byte %zu (was ...%.80s, now ...%.80s)", i, old + from, now + from);
    }
done:
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static char *stage_meta_or_null(ts_store *s, const char *key) {
    char *t = NULL;
    if (ts_meta_get(s, key, &t) < 0) {
        err_clear();
        return NULL;
    }
    return t;
}

// Whether the store holds anything besides the store's own meta keys.
static int stage_store_empty(ts_store *s) {
    char **names = NULL;
    int n = 0;
    ERR_TRY(ts_tables(s, &names, &n));
    ts_names_free(names, n);
    if (n > 0) return 0;
    ERR_TRY(ts_meta_list(s, &names, &n));
    int empty = 1;
    for (int i = 0; i < n; i++)
        if (strncmp(names[i], "ts.", 3) != 0) empty = 0;
    ts_names_free(names, n);
    return empty;
}

// Decides the state of an open store; ERR_CONFLICT when another key is there and !force.
static int stage_decide(ts_store *s, const stage_id *id, const char *key, int force, stage_state *state) {
    int rc = 0;
    char *old_key = stage_meta_or_null(s, "key");
    char *old_stage = NULL, *old_ver = NULL, *old_params = NULL, *old_inputs = NULL;
    if (id->request) { // incremental: the same base key extends the store
        char base[HASH_HEX_LEN + 1];
        ERR_GOTO(rc, stage_key(id, base));
        char *old_base = stage_meta_or_null(s, "base_key");
        int same = old_base && !strcmp(old_base, base);
        free(old_base);
        if (same) {
            int c = old_key && !strcmp(old_key, key) ? stage_is_complete(s) : 0;
            ERR_GOTO(rc, c);
            rc = 0;
            *state = c ? STAGE_UP_TO_DATE : STAGE_RESUME;
            goto fail;
        }
    }
    if (old_key && !strcmp(old_key, key)) {
        int c = stage_is_complete(s);
        ERR_GOTO(rc, c);
        rc = 0;
        *state = c ? STAGE_UP_TO_DATE : STAGE_RESUME;
        goto fail;
    }
    if (!old_key) {
        int e = stage_store_empty(s);
        ERR_GOTO(rc, e);
        rc = 0;
        if (e) {
            *state = STAGE_FRESH;
            goto fail;
        }
    }
    if (force) {
        *state = STAGE_FRESH;
        goto fail;
    }
    char why[1536] = "";
    if (!old_key) {
        snprintf(why, sizeof why, "; it holds data without a stage key");
    } else {
        char ver[32];
        snprintf(ver, sizeof ver, "%d", id->version);
        old_stage = stage_meta_or_null(s, "stage");
        old_ver = stage_meta_or_null(s, "stage_version");
        old_params = stage_meta_or_null(s, "params");
        old_inputs = stage_meta_or_null(s, "inputs");
        size_t len = 0;
        if (!old_stage || strcmp(old_stage, id->stage))
            snprintf(why, sizeof why, "; made by stage '%s', not '%s'", old_stage ? old_stage : "?", id->stage);
        len = strlen(why);
        if (!old_ver || strcmp(old_ver, ver))
            snprintf(why + len, sizeof why - len, "; stage version %s, now %s", old_ver ? old_ver : "?", ver);
        if (!old_params || strcmp(old_params, id->params))
            stage_describe_diff(why, sizeof why, "params", old_params, id->params);
        if (!old_inputs || strcmp(old_inputs, id->inputs))
            stage_describe_diff(why, sizeof why, "inputs", old_inputs, id->inputs);
    }
    rc = err_set(ERR_CONFLICT, "%s: the store holds other results (key %s, wanted %s)%s; use --force to replace it",
                 ts_path(s), old_key ? old_key : "none", key, why);
fail:
    free(old_key);
    free(old_stage);
    free(old_ver);
    free(old_params);
    free(old_inputs);
    return rc;
}

// --- an output that is also an input --------------------------------------------------------
// The inputs of this run (stage_input_key and stage_note_input add them): an output that is one
// of them, or holds one of them, is refused before anything is touched.
#define STAGE_MAX_INPUTS 64
static struct {
    dev_t dev;
    ino_t ino;
    char real[PATH_MAX];
    char path[256];
} stage_inputs[STAGE_MAX_INPUTS];
static int stage_ninputs;

int stage_note_input(const char *path) {
    struct stat st;
    if (!path || stat(path, &st) != 0) return 0; // a missing input fails where it is read
    for (int i = 0; i < stage_ninputs; i++)
        if (stage_inputs[i].dev == st.st_dev && stage_inputs[i].ino == st.st_ino) return 0;
    ERR_IF(stage_ninputs == STAGE_MAX_INPUTS, ERR_USAGE, "%s: more than %d inputs", path, STAGE_MAX_INPUTS);
    int i = stage_ninputs++;
    stage_inputs[i].dev = st.st_dev;
    stage_inputs[i].ino = st.st_ino;
    if (!realpath(path, stage_inputs[i].real)) stage_inputs[i].real[0] = 0;
    snprintf(stage_inputs[i].path, sizeof stage_inputs[i].path, "%s", path);
    return 0;
}

void stage_forget_inputs(void) { stage_ninputs = 0; }

int stage_check_output(const char *out, int holds) {
    struct stat st;
    char real[PATH_MAX];
    if (stat(out, &st) != 0 || !realpath(out, real)) return 0; // nothing there: it cannot be an input
    size_t n = strlen(real);
    for (int i = 0; i < stage_ninputs; i++) {
        const char *in = stage_inputs[i].real;
        int same = stage_inputs[i].dev == st.st_dev && stage_inputs[i].ino == st.st_ino;
        int inside = holds && in[0] && !strncmp(in, real, n) && (in[n] == '/' || (n == 1 && real[0] == '/'));
        if (same || inside)
            return err_set(ERR_CONFLICT,
                           "%s: the output is also an input of this run (%s%s); a stage never writes over what "
                           "it reads, not even with --force: choose another output",
                           out, stage_inputs[i].path, same ? "" : " lies inside it");
    }
    return 0;
}

// --- probing and opening ---------------------------------------------------------------------

int stage_probe(const char *path, const stage_id *id, int force, stage_state *state) {
    char key[HASH_HEX_LEN + 1];
    ERR_TRY(stage_full_key(id, key));
    struct stat st;
    *state = STAGE_FRESH;
    ERR_TRY(stage_check_output(path, 1));
    if (stat(path, &st) != 0) {
        ERR_IF(errno != ENOENT, ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        return 0;
    }
    ts_store *s = NULL;
    int rc = ts_open(&s, path, TS_RDONLY);
    if (rc == ERR_NOTFOUND && S_ISDIR(st.st_mode)) { // an empty directory: nothing there yet
        err_clear();
        return 0;
    }
    if (rc == ERR_CORRUPT || rc == ERR_UNSUPPORTED) { // damaged, or another format
        if (force) { // stage_open_output replaces it
            err_clear();
            return 0;
        }
        if (!strstr(err_msg(), "--force")) {
            char msg[2048];
            snprintf(msg, sizeof msg, "%s", err_msg());
            return err_set(rc, "%s; rerun with --force to replace it", msg);
        }
    }
    ERR_TRY(rc);
    rc = stage_decide(s, id, key, force, state);
    ts_close(s);
    return rc;
}

int stage_open_output(ts_store **out, const char *path, const stage_id *id, int force, stage_state *state) {
    int rc = 0;
    ts_store *s = NULL;
    char key[HASH_HEX_LEN + 1], base[HASH_HEX_LEN + 1], ver[32];
    *out = NULL;
    ERR_TRY(stage_full_key(id, key));
    ERR_TRY(stage_key(id, base));
    ERR_TRY(stage_check_output(path, 1));
    ERR_GOTO(rc, ts_open(&s, path, TS_CREATE | (force ? TS_REPLACE : 0)));
    ERR_GOTO(rc, stage_decide(s, id, key, force, state));
    if (*state == STAGE_RESUME && id->request) { // a new request: say so before computing
        char *old_key = stage_meta_or_null(s, "key");
        int same = old_key && !strcmp(old_key, key);
        free(old_key);
        if (!same) {
            ERR_GOTO(rc, ts_begin_write(s));
            ERR_GOTO(rc, ts_meta_put(s, "complete", "false"));
            ERR_GOTO(rc, ts_meta_put(s, "request", id->request));
            ERR_GOTO(rc, ts_meta_put(s, "key", key));
            ERR_GOTO(rc, ts_commit(s));
        }
    }
    if (*state == STAGE_FRESH) {
        snprintf(ver, sizeof ver, "%d", id->version);
        // replaced, not cleared table by table: nothing of the old content is read (it may be damaged)
        ERR_GOTO(rc, ts_reset(s));
        ERR_GOTO(rc, ts_begin_write(s));
        ERR_GOTO(rc, ts_meta_put(s, "stage", id->stage));
        ERR_GOTO(rc, ts_meta_put(s, "stage_version", ver));
        ERR_GOTO(rc, ts_meta_put(s, "params", id->params));
        ERR_GOTO(rc, ts_meta_put(s, "inputs", id->inputs));
        ERR_GOTO(rc, ts_meta_put(s, "key", key));
        if (id->request) {
            ERR_GOTO(rc, ts_meta_put(s, "base_key", base));
            ERR_GOTO(rc, ts_meta_put(s, "request", id->request));
        }
        ERR_GOTO(rc, ts_meta_put(s, "complete", "false"));
        ERR_GOTO(rc, ts_commit(s));
    }
    *out = s;
    return 0;
fail:
    ts_close(s);
    return rc;
}

int stage_mark_complete(ts_store *s) { return ts_meta_put(s, "complete", "true"); }

int stage_is_complete(ts_store *s) {
    char *t = NULL;
    int rc = ts_meta_get(s, "complete", &t);
    if (rc == ERR_NOTFOUND) {
        err_clear();
        return 0;
    }
    ERR_TRY(rc);
    int c = !strcmp(t, "true");
    free(t);
    return c;
}

int stage_input_key(const char *path, char key[HASH_HEX_LEN + 1]) {
    ts_store *s = NULL;
    char *k = NULL;
    int rc = 0;
    ERR_TRY(stage_note_input(path));
    ERR_TRY(ts_open(&s, path, TS_RDONLY));
    int c = stage_is_complete(s);
    ERR_GOTO(rc, c);
    ERR_GOTO_IF(rc, c == 0, ERR_INPUT, "%s: incomplete store (run the stage that makes it to completion)", path);
    rc = ts_meta_get(s, "key", &k);
    ERR_GOTO_IF(rc, rc == ERR_NOTFOUND, ERR_INPUT, "%s: the store has no stage key in its meta", path);
    ERR_GOTO(rc, rc);
    ERR_GOTO_IF(rc, strlen(k) != HASH_HEX_LEN, ERR_INPUT, "%s: bad stage key '%.40s' in meta", path, k);
    memcpy(key, k, HASH_HEX_LEN + 1);
fail:
    free(k);
    ts_close(s);
    return rc;
}

// --- files beside a store -----------------------------------------------------------------------

int stage_side_path(const char *store, const char *suffix, char **out) {
    size_t n = strlen(store);
    while (n > 1 && store[n - 1] == '/') n--;
    *out = malloc(n + strlen(suffix) + 1);
    ERR_IF(!*out, ERR_NOMEM, "out of memory");
    memcpy(*out, store, n);
    strcpy(*out + n, suffix);
    return 0;
}

int stage_side_remove(const char *store, const char *suffix) {
    char *p = NULL;
    ERR_TRY(stage_side_path(store, suffix, &p));
    int rc = 0;
    if (unlink(p) != 0 && errno != ENOENT) rc = err_set(ERR_IO, "%s: cannot remove the old file: %s", p, strerror(errno));
    free(p);
    return rc;
}
