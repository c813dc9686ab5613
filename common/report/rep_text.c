// rep_text: the report as plain text (the headline table for the terminal), Markdown and JSON
// (rep.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/report/rep.h"

static const char *const rep_metric_names[REP_METRIC_COUNT] = {"AUROC", "AUPR-In", "AUPR-Out", "FPR@95TPR"};
static const char *const rep_metric_keys[REP_METRIC_COUNT] = {"auroc", "aupr_in", "aupr_out", "fpr95"};
static const char *const rep_group_names[2] = {"near", "far"};

static void rep_metric_values(const ood_metrics *m, double v[REP_METRIC_COUNT]) {
    v[0] = m->auroc, v[1] = m->aupr_in, v[2] = m->aupr_out, v[3] = m->fpr95;
}

// "DiffOOD global t120 (logit)" style label of a method.
static void rep_label(const rep_method *m, char *buf, size_t cap) {
    if (m->level >= 0)
        snprintf(buf, cap, "%s t%d%s%s%s", m->name, m->level, *m->space ? " (" : "", m->space, *m->space ? ")" : "");
    else
        snprintf(buf, cap, "%s", m->name);
}

// --- plain text ------------------------------------------------------------------------------

void rep_render_text(const rep_report *r, rep_buf *b) {
    int d = r->decimals, w = 7 + d;
    int lw = 6;
    char lab[256];
    for (int i = 0; i < r->nmethods; i++) {
        rep_label(&r->methods[i], lab, sizeof lab);
        if ((int)strlen(lab) > lw) lw = (int)strlen(lab);
    }
    int cw[64];
    rep_buf_printf(b, "AUROC x100 (ID %s, %zu images)\n%-*s", r->sets[0].name, r->sets[0].n, lw + 2, "method");
    for (int s = 1; s < r->nsets && s < 64; s++) {
        cw[s] = (int)strlen(r->sets[s].name) > w ? (int)strlen(r->sets[s].name) : w;
        rep_buf_printf(b, "  %*s", cw[s], r->sets[s].name);
    }
    rep_buf_printf(b, "  %*s\n", w, "mean");
    for (int i = 0; i < r->nmethods; i++) {
        const rep_method *m = &r->methods[i];
        rep_label(m, lab, sizeof lab);
        int hl = strcmp(m->family, "diffood") == 0 && m->level == r->best_level;
        rep_buf_printf(b, "%c %-*s", hl ? '*' : ' ', lw, lab);
        for (int s = 1; s < r->nsets && s < 64; s++) rep_buf_printf(b, "  %*.*f", cw[s], d, 100 * m->m[s].auroc);
        rep_buf_printf(b, "  %*.*f\n", w, d, 100 * m->mean_auroc);
    }
    if (r->best_level >= 0) rep_buf_printf(b, "* DiffOOD at the best level (t = %d)\n", r->best_level);
}

// --- Markdown --------------------------------------------------------------------------------

static void rep_md_row(rep_buf *b, const char *label, const double *v, int d, int bold) {
    rep_buf_printf(b, "| %s%s%s |", bold ? "**" : "", label, bold ? "**" : "");
    for (int k = 0; k < REP_METRIC_COUNT; k++) rep_buf_printf(b, " %.*f |", d, 100 * v[k]);
    rep_buf_printf(b, "\n");
}

void rep_render_md(const rep_report *r, rep_buf *b) {
    int d = r->decimals;
    char lab[256];
    rep_buf_printf(b, "# DiffOOD report\n\nScores: `%s`\n\n", r->scores_path);
    if (r->has_accuracy) rep_buf_printf(b, "Classifier accuracy on the ID test set: %.*f%%\n\n", d, 100 * r->accuracy);
    rep_buf_printf(b, "Repeats: %d; levels: %s\n\n| set | role | images scored |\n|---|---|---:|\n", r->repeats,
                   r->levels);
    for (int s = 0; s < r->nsets; s++)
        rep_buf_printf(b, "| %s | %s | %zu |\n", r->sets[s].name, r->sets[s].role, r->sets[s].n);
    if (r->best_level >= 0) rep_buf_printf(b, "\nBest DiffOOD level: t = %d (in bold).\n", r->best_level);
    rep_buf_printf(b, "\n## AUROC x100\n\n| method |");
    for (int s = 1; s < r->nsets; s++) rep_buf_printf(b, " %s |", r->sets[s].name);
    for (int g = 0; g < 2; g++)
        if (r->ngroups[g]) rep_buf_printf(b, " %s-OOD |", rep_group_names[g]);
    rep_buf_printf(b, " mean |\n|---|");
    for (int s = 1; s < r->nsets; s++) rep_buf_printf(b, "---:|");
    for (int g = 0; g < 2; g++)
        if (r->ngroups[g]) rep_buf_printf(b, "---:|");
    rep_buf_printf(b, "---:|\n");
    for (int i = 0; i < r->nmethods; i++) {
        const rep_method *m = &r->methods[i];
        int bold = strcmp(m->family, "diffood") == 0 && m->level == r->best_level;
        rep_label(m, lab, sizeof lab);
        rep_buf_printf(b, "| %s%s%s |", bold ? "**" : "", lab, bold ? "**" : "");
        for (int s = 1; s < r->nsets; s++) rep_buf_printf(b, " %.*f |", d, 100 * m->m[s].auroc);
        for (int g = 0; g < 2; g++)
            if (r->ngroups[g]) rep_buf_printf(b, " %.*f |", d, 100 * m->group[g][0]);
        rep_buf_printf(b, " %.*f |\n", d, 100 * m->mean_auroc);
    }
    for (int s = 1; s < r->nsets; s++) {
        rep_buf_printf(b, "\n## %s (OOD, %zu images) vs %s (ID, %zu images), x100\n\n| method |", r->sets[s].name,
                       r->sets[s].n, r->sets[0].name, r->sets[0].n);
        for (int k = 0; k < REP_METRIC_COUNT; k++) rep_buf_printf(b, " %s |", rep_metric_names[k]);
        rep_buf_printf(b, "\n|---|---:|---:|---:|---:|\n");
        for (int i = 0; i < r->nmethods; i++) {
            double v[REP_METRIC_COUNT];
            rep_metric_values(&r->methods[i].m[s], v);
            rep_label(&r->methods[i], lab, sizeof lab);
            rep_md_row(b, lab, v, d, strcmp(r->methods[i].family, "diffood") == 0 && r->methods[i].level == r->best_level);
        }
    }
    for (int g = 0; g < 2; g++) {
        if (!r->ngroups[g]) continue;
        rep_buf_printf(b, "\n## %s-OOD average (", rep_group_names[g]);
        for (int i = 0; i < r->ngroups[g]; i++) rep_buf_printf(b, "%s%s", i ? ", " : "", r->groups[g][i]);
        rep_buf_printf(b, "), x100\n\n| method |");
        for (int k = 0; k < REP_METRIC_COUNT; k++) rep_buf_printf(b, " %s |", rep_metric_names[k]);
        rep_buf_printf(b, "\n|---|---:|---:|---:|---:|\n");
        for (int i = 0; i < r->nmethods; i++) {
            rep_label(&r->methods[i], lab, sizeof lab);
            rep_md_row(b, lab, r->methods[i].group[g], d, 0);
        }
    }
}

// --- JSON ------------------------------------------------------------------------------------

static cJSON *rep_metrics_json(const double *v) {
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; o && k < REP_METRIC_COUNT; k++) cJSON_AddNumberToObject(o, rep_metric_keys[k], v[k]);
    return o;
}

int rep_render_json(const rep_report *r, rep_buf *b) {
    cJSON *root = cJSON_CreateObject();
    ERR_IF(!root, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(root, "scores", r->scores_path);
    cJSON *sets = cJSON_AddArrayToObject(root, "sets");
    for (int s = 0; s < r->nsets; s++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r->sets[s].name);
        cJSON_AddStringToObject(o, "role", r->sets[s].role);
        cJSON_AddNumberToObject(o, "n", (double)r->sets[s].n);
        cJSON_AddItemToArray(sets, o);
    }
    cJSON *methods = cJSON_AddArrayToObject(root, "methods");
    for (int i = 0; i < r->nmethods; i++) {
        const rep_method *m = &r->methods[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "table", m->table);
        cJSON_AddStringToObject(o, "name", m->name);
        cJSON_AddStringToObject(o, "family", m->family);
        cJSON_AddStringToObject(o, "space", m->space);
        cJSON_AddStringToObject(o, "kind", m->kind);
        if (m->level >= 0)
            cJSON_AddNumberToObject(o, "level", m->level);
        else
            cJSON_AddNullToObject(o, "level");
        cJSON *mm = cJSON_AddObjectToObject(o, "metrics");
        for (int s = 1; s < r->nsets; s++) {
            double v[REP_METRIC_COUNT];
            rep_metric_values(&m->m[s], v);
            cJSON_AddItemToObject(mm, r->sets[s].name, rep_metrics_json(v));
        }
        cJSON_AddNumberToObject(o, "mean_auroc", m->mean_auroc);
        cJSON *gg = cJSON_AddObjectToObject(o, "groups");
        for (int g = 0; g < 2; g++)
            if (m->has_group[g]) cJSON_AddItemToObject(gg, rep_group_names[g], rep_metrics_json(m->group[g]));
        cJSON_AddItemToArray(methods, o);
    }
    if (r->has_accuracy)
        cJSON_AddNumberToObject(root, "accuracy", r->accuracy);
    else
        cJSON_AddNullToObject(root, "accuracy");
    cJSON_AddNumberToObject(root, "repeats", r->repeats);
    cJSON *lv = cJSON_Parse(r->levels);
    cJSON_AddItemToObject(root, "levels", lv ? lv : cJSON_CreateArray());
    if (r->best_level >= 0)
        cJSON_AddNumberToObject(root, "best_level", r->best_level);
    else
        cJSON_AddNullToObject(root, "best_level");
    cJSON *groups = cJSON_AddObjectToObject(root, "groups");
    for (int g = 0; g < 2; g++) {
        cJSON *a = cJSON_AddArrayToObject(groups, rep_group_names[g]);
        for (int i = 0; i < r->ngroups[g]; i++) cJSON_AddItemToArray(a, cJSON_CreateString(r->groups[g][i]));
    }
    cJSON_AddNumberToObject(root, "decimals", r->decimals);
    char *t = cJSON_Print(root);
    cJSON_Delete(root);
    ERR_IF(!t, ERR_NOMEM, "out of memory");
    rep_buf_printf(b, "%s\n", t);
    free(t);
    return rep_buf_ok(b);
}
