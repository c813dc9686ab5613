// rep_html: the one self-contained HTML page of the report (rep.h): summary, headline AUROC
// table (DiffOOD at the best level highlighted, baselines beside), every metric per OOD set,
// ROC curves and score histograms per OOD set (inline SVG), training curves, and picture grids
// of originals and their denoised repeats (PNG inlined as base64). No network access needed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/report/rep.h"
#include "common/report/rep_svg.h"

static const char rep_css[] =
    "body{font-family:sans-serif;margin:24px auto;max-width:1180px;color:#222;line-height:1.4}"
    "h1{margin-bottom:4px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:36px}"
    "table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ccc;padding:4px 10px}"
    "th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums;font-family:monospace}"
    "tr.best td{background:#fff3c4;font-weight:bold}tr.diffood td:first-child{color:#1f4e99}"
    "td.top{text-decoration:underline}"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{border:1px solid #ddd}"
    "figure{margin:0 0 16px}figcaption{color:#555;font-size:13px;max-width:1100px}"
    "img.grid{image-rendering:pixelated;border:1px solid #ddd;max-width:100%;height:auto}.note{color:#555;font-size:13px}";

static void rep_method_label(const rep_method *m, char *buf, size_t cap) {
    if (m->level >= 0)
        snprintf(buf, cap, "%s t=%d (%s)", m->name, m->level, m->space);
    else
        snprintf(buf, cap, "%s", m->name);
}

static int rep_is_best(const rep_report *r, const rep_method *m) {
    return strcmp(m->family, "diffood") == 0 && m->level == r->best_level;
}

// --- tables ----------------------------------------------------------------------------------

static void rep_html_headline(const rep_report *r, rep_buf *b) {
    int d = r->decimals;
    char lab[256];
    rep_buf_printf(b, "<h2>AUROC (%%, higher is better)</h2>\n<table class=\"headline\"><tr><th>method</th><th>family</th>");
    for (int s = 1; s < r->nsets; s++) {
        rep_buf_printf(b, "<th>");
        rep_buf_escape(b, r->sets[s].name);
        rep_buf_printf(b, "</th>");
    }
    for (int g = 0; g < 2; g++)
        if (r->ngroups[g]) rep_buf_printf(b, "<th>%s-OOD</th>", g ? "far" : "near");
    rep_buf_printf(b, "<th>mean</th></tr>\n");
    for (int i = 0; i < r->nmethods; i++) {
        const rep_method *m = &r->methods[i];
        rep_method_label(m, lab, sizeof lab);
        rep_buf_printf(b, "<tr class=\"%s%s\"><td>", m->family, rep_is_best(r, m) ? " best" : "");
        rep_buf_escape(b, lab);
        rep_buf_printf(b, "</td><td>");
        rep_buf_escape(b, m->family);
        rep_buf_printf(b, "</td>");
        for (int s = 1; s < r->nsets; s++) {
            int top = 1;
            for (int k = 0; k < r->nmethods; k++) top &= r->methods[k].m[s].auroc <= m->m[s].auroc;
            rep_buf_printf(b, "<td class=\"num%s\">%.*f</td>", top ? " top" : "", d, 100 * m->m[s].auroc);
        }
        for (int g = 0; g < 2; g++)
            if (r->ngroups[g]) rep_buf_printf(b, "<td class=\"num\">%.*f</td>", d, 100 * m->group[g][0]);
        rep_buf_printf(b, "<td class=\"num\">%.*f</td></tr>\n", d, 100 * m->mean_auroc);
    }
    rep_buf_printf(b, "</table>\n<p class=\"note\">");
    if (r->best_level >= 0) rep_buf_printf(b, "Highlighted: DiffOOD at the best level (t = %d). ", r->best_level);
    rep_buf_printf(b, "Underlined: the best AUROC on that OOD set.</p>\n");
}

static void rep_html_metric_tables(const rep_report *r, rep_buf *b) {
    static const char *const names[REP_METRIC_COUNT] = {"AUROC &uarr;", "AUPR-In &uarr;", "AUPR-Out &uarr;",
                                                        "FPR@95TPR &darr;"};
    int d = r->decimals;
    char lab[256];
    rep_buf_printf(b, "<h2>All metrics (%%)</h2>\n");
    for (int s = 1; s < r->nsets; s++) {
        rep_buf_printf(b, "<h3>");
        rep_buf_escape(b, r->sets[s].name);
        rep_buf_printf(b, " (OOD, %zu images) vs ", r->sets[s].n);
        rep_buf_escape(b, r->sets[0].name);
        rep_buf_printf(b, " (ID, %zu images)</h3>\n<table class=\"metrics\"><tr><th>method</th>", r->sets[0].n);
        for (int k = 0; k < REP_METRIC_COUNT; k++) rep_buf_printf(b, "<th>%s</th>", names[k]);
        rep_buf_printf(b, "</tr>\n");
        for (int i = 0; i < r->nmethods; i++) {
            const rep_method *m = &r->methods[i];
            const ood_metrics *x = &m->m[s];
            rep_method_label(m, lab, sizeof lab);
            rep_buf_printf(b, "<tr class=\"%s%s\"><td>", m->family, rep_is_best(r, m) ? " best" : "");
            rep_buf_escape(b, lab);
            rep_buf_printf(b, "</td><td class=\"num\">%.*f</td><td class=\"num\">%.*f</td><td class=\"num\">%.*f</td>"
                              "<td class=\"num\">%.*f</td></tr>\n",
                           d, 100 * x->auroc, d, 100 * x->aupr_in, d, 100 * x->aupr_out, d, 100 * x->fpr95);
        }
        rep_buf_printf(b, "</table>\n");
    }
}

// --- charts ----------------------------------------------------------------------------------

static int rep_html_roc(const rep_report *r, rep_buf *b) {
    int *pick = calloc((size_t)r->nmethods, sizeof *pick), np = 0, rc = 0;
    ood_roc *rocs = calloc((size_t)r->nmethods, sizeof *rocs);
    rep_series *ser = calloc((size_t)r->nmethods, sizeof *ser);
    char (*labels)[128] = calloc((size_t)r->nmethods, sizeof *labels);
    ERR_GOTO_IF(rc, !pick || !rocs || !ser || !labels, ERR_NOMEM, "out of memory");
    // DiffOOD global in logit space at every level (else any DiffOOD method), then the best 3
    // baselines by mean AUROC
    int *chosen = calloc((size_t)r->nmethods, sizeof *chosen);
    ERR_GOTO_IF(rc, !chosen, ERR_NOMEM, "out of memory");
    int have_gl = 0;
    for (int i = 0; i < r->nmethods; i++)
        have_gl |= strcmp(r->methods[i].family, "diffood") == 0 && strcmp(r->methods[i].space, "logit") == 0 &&
                   strcmp(r->methods[i].kind, "global") == 0;
    for (int i = 0; i < r->nmethods && np < 10; i++) {
        const rep_method *m = &r->methods[i];
        if (strcmp(m->family, "diffood") != 0) continue;
        if (have_gl && (strcmp(m->space, "logit") != 0 || strcmp(m->kind, "global") != 0)) continue;
        pick[np++] = i, chosen[i] = 1;
    }
    for (int k = 0; k < 3; k++) {
        int bsel = rep_best_method(r, "baseline", NULL, chosen);
        if (bsel < 0) break;
        pick[np++] = bsel, chosen[bsel] = 1;
    }
    free(chosen);
    rep_buf_printf(b, "<h2>ROC curves</h2>\n<p class=\"note\">OOD is the positive class. Solid: DiffOOD%s at each "
                      "level; dashed: the three best baselines by mean AUROC.</p>\n<div class=\"charts\">\n",
                   have_gl ? " global (logit space)" : "");
    for (int s = 1; s < r->nsets; s++) {
        for (int j = 0; j < np; j++) {
            const rep_method *m = &r->methods[pick[j]];
            ERR_GOTO(rc, ood_metrics_roc(m->scores[0], m->n[0], m->scores[s], m->n[s], 1, &rocs[j]));
            if (m->level >= 0)
                snprintf(labels[j], sizeof labels[j], "%s t=%d (%.*f)", m->name, m->level, r->decimals, 100 * m->m[s].auroc);
            else
                snprintf(labels[j], sizeof labels[j], "%s (%.*f)", m->name, r->decimals, 100 * m->m[s].auroc);
            int dif = strcmp(m->family, "diffood") == 0;
            ser[j] = (rep_series){rocs[j].fpr, rocs[j].tpr, rocs[j].n, labels[j], rep_svg_color(dif ? j : 4 + j), !dif};
        }
        char title[256];
        snprintf(title, sizeof title, "ROC: %s (ID) vs %s (OOD)", r->sets[0].name, r->sets[s].name);
        rep_chart c = {"roc", title, "false-positive rate (ID called OOD)", "true-positive rate (OOD detected)",
                       0, 1, 0, 1, 1, 0};
        rep_svg_lines(b, &c, ser, np);
        for (int j = 0; j < np; j++) ood_roc_free(&rocs[j]);
    }
    rep_buf_printf(b, "</div>\n");
fail:
    for (int j = 0; rocs && j < np; j++) ood_roc_free(&rocs[j]);
    free(pick), free(rocs), free(ser), free(labels);
    return rc;
}

static void rep_html_hist(const rep_report *r, rep_buf *b) {
    int best[2] = {rep_best_method(r, "diffood", NULL, NULL), rep_best_method(r, "baseline", NULL, NULL)};
    rep_buf_printf(b, "<h2>Score histograms</h2>\n<p class=\"note\">Densities of the scores (larger = more OOD) of the "
                      "ID test set and each OOD set, for the best DiffOOD score and the best baseline (by mean "
                      "AUROC).</p>\n<div class=\"charts\">\n");
    char title[256], lab[160];
    for (int s = 1; s < r->nsets; s++)
        for (int h = 0; h < 2; h++) {
            if (best[h] < 0) continue;
            const rep_method *m = &r->methods[best[h]];
            rep_method_label(m, lab, sizeof lab);
            snprintf(title, sizeof title, "%s: %s vs %s", lab, r->sets[0].name, r->sets[s].name);
            rep_chart c = {"hist", title, "score (larger = more OOD)", "density", 0, 0, 0, 0, 0, 1};
            char la[160], lo[160];
            snprintf(la, sizeof la, "%s (ID)", r->sets[0].name);
            snprintf(lo, sizeof lo, "%s (OOD)", r->sets[s].name);
            rep_svg_hist(b, &c, m->scores[0], m->n[0], la, m->scores[s], m->n[s], lo, 40);
        }
    rep_buf_printf(b, "</div>\n");
}

static void rep_html_training(const rep_report *r, rep_buf *b) {
    if (!r->nlogs) return;
    rep_buf_printf(b, "<h2>Training</h2>\n<div class=\"charts\">\n");
    char title[256];
    for (int i = 0; i < r->nlogs; i++) {
        const rep_trainlog *l = &r->logs[i];
        int cls = strcmp(l->model, "classifier") == 0;
        snprintf(title, sizeof title, "%s training loss", cls ? "Classifier" : strcmp(l->model, "diffusion") == 0 ? "Denoiser" : l->model);
        rep_series s = {l->step, l->loss, l->n, NULL, rep_svg_color(cls ? 2 : 0), 0};
        rep_chart c = {"loss", title, "step", cls ? "cross-entropy loss" : "noise-prediction MSE", 0, 0, 0, 0, 0, 1};
        rep_svg_lines(b, &c, &s, 1);
        if (l->n_acc) {
            double *pct = malloc(l->n_acc * sizeof *pct);
            if (!pct) {
                b->oom = 1;
                return;
            }
            for (size_t k = 0; k < l->n_acc; k++) pct[k] = 100 * l->acc[k];
            rep_series a = {l->epoch, pct, l->n_acc, NULL, rep_svg_color(1), 0};
            rep_chart ca = {"acc", "Classifier validation accuracy", "epoch", "accuracy (%)", 0, 0, 0, 0, 0, 0};
            rep_svg_lines(b, &ca, &a, 1);
            free(pct);
        }
    }
    rep_buf_printf(b, "</div>\n");
}

static int rep_html_pictures(const rep_report *r, rep_buf *b) {
    if (!r->npics) return 0;
    rep_buf_printf(b, "<h2>Denoised repeats</h2>\n");
    for (int i = 0; i < r->npics; i++) {
        const rep_pictures *p = &r->pics[i];
        FILE *f = fopen(p->png_path, "rb");
        ERR_IF(!f, ERR_IO, "%s: cannot read the picture", p->png_path);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *data = n > 0 ? malloc((size_t)n) : NULL;
        size_t got = data ? fread(data, 1, (size_t)n, f) : 0;
        fclose(f);
        if (!data || got != (size_t)n) {
            free(data);
            return err_set(ERR_IO, "%s: cannot read the picture", p->png_path);
        }
        rep_buf_printf(b, "<figure class=\"pictures\"><img class=\"grid\" alt=\"samples of ");
        rep_buf_escape(b, p->set);
        rep_buf_printf(b, "\" src=\"data:image/png;base64,");
        rep_buf_base64(b, data, (size_t)n);
        free(data);
        // enlarge small pictures (pixelated) up to ~1100 pixels wide
        int scale = p->width > 0 ? 1100 / p->width : 1;
        scale = scale < 1 ? 1 : scale > 4 ? 4 : scale;
        rep_buf_printf(b, "\" width=\"%d\" height=\"%d\"><figcaption>", p->width * scale, p->height * scale);
        rep_buf_escape(b, p->set);
        rep_buf_printf(b, " (%s): %d images, one per row; first column the original, then %d repeat%s at each level t =",
                       strcmp(p->set, r->sets[0].name) == 0 ? "ID" : "OOD", p->rows, p->repeats, p->repeats > 1 ? "s" : "");
        for (int l = 0; l < p->nlevels; l++) rep_buf_printf(b, "%s %d", l ? "," : "", p->levels[l]);
        rep_buf_printf(b, " (left to right).</figcaption></figure>\n");
    }
    return 0;
}

// --- the page --------------------------------------------------------------------------------

int rep_render_html(const rep_report *r, rep_buf *b) {
    rep_buf_printf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>DiffOOD report</title>"
                      "<style>%s</style></head>\n<body>\n<h1>DiffOOD report</h1>\n<p>Scores: <code>", rep_css);
    rep_buf_escape(b, r->scores_path);
    rep_buf_printf(b, "</code><br>ID set: <b>");
    rep_buf_escape(b, r->sets[0].name);
    rep_buf_printf(b, "</b>");
    if (r->has_accuracy) rep_buf_printf(b, "; classifier accuracy on it: <b>%.*f%%</b>", r->decimals, 100 * r->accuracy);
    rep_buf_printf(b, "<br>Repeats per image: %d; levels: ", r->repeats);
    rep_buf_escape(b, r->levels);
    if (r->best_level >= 0) rep_buf_printf(b, "; best DiffOOD level: t = %d", r->best_level);
    rep_buf_printf(b, "</p>\n<table class=\"sets\"><tr><th>set</th><th>role</th><th>images scored</th></tr>\n");
    for (int s = 0; s < r->nsets; s++) {
        rep_buf_printf(b, "<tr><td>");
        rep_buf_escape(b, r->sets[s].name);
        rep_buf_printf(b, "</td><td>%s</td><td class=\"num\">%zu</td></tr>\n", strcmp(r->sets[s].role, "id") ? "OOD" : "ID",
                       r->sets[s].n);
    }
    rep_buf_printf(b, "</table>\n");
    rep_html_headline(r, b);
    ERR_TRY(rep_html_roc(r, b));
    rep_html_hist(r, b);
    rep_html_metric_tables(r, b);
    rep_html_training(r, b);
    ERR_TRY(rep_html_pictures(r, b));
    rep_buf_printf(b, "</body></html>\n");
    return rep_buf_ok(b);
}
