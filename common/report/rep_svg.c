// rep_svg: inline-SVG line charts and histograms for the HTML report (rep_svg.h).
#include "common/report/rep_svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/ood/metrics.h"

#define SVG_W 540
#define SVG_H 380
#define SVG_L 64  // left margin (y tick labels, y label)
#define SVG_R 16
#define SVG_T 36  // title
#define SVG_B 52  // x tick labels, x label

const char *rep_svg_color(int i) {
    static const char *const pal[] = {"#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#d62728",
                                      "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"};
    return pal[(i % 10 + 10) % 10];
}

// A "nice" tick step (1, 2 or 5 times a power of ten) for about 5 ticks over `range`.
static double svg_step(double range) {
    double raw = range / 5, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

typedef struct {
    double x0, x1, y0, y1;
} svg_frame;

static double sx(const svg_frame *f, double x) {
    return SVG_L + (x - f->x0) / (f->x1 - f->x0) * (SVG_W - SVG_L - SVG_R);
}
static double sy(const svg_frame *f, double y) {
    return SVG_H - SVG_B - (y - f->y0) / (f->y1 - f->y0) * (SVG_H - SVG_T - SVG_B);
}

// Opens the <svg>, draws title, grid, ticks and axis labels.
static void svg_begin(rep_buf *b, const rep_chart *c, const svg_frame *f) {
    rep_buf_printf(b, "<svg class=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                      "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
                   c->cls, SVG_W, SVG_H, SVG_W, SVG_H);
    rep_buf_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n", SVG_W, SVG_H);
    rep_buf_printf(b, "<text x=\"%d\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">", SVG_W / 2);
    rep_buf_escape(b, c->title);
    rep_buf_printf(b, "</text>\n");
    double xs = svg_step(f->x1 - f->x0), ys = svg_step(f->y1 - f->y0);
    for (double t = ceil(f->x0 / xs - 1e-9) * xs; t <= f->x1 + 1e-9 * xs; t += xs) {
        double X = sx(f, t);
        rep_buf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e4e4e4\"/>"
                          "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
                       X, SVG_T, X, SVG_H - SVG_B, X, SVG_H - SVG_B + 16, fabs(t) < 1e-12 * xs ? 0.0 : t);
    }
    for (double t = ceil(f->y0 / ys - 1e-9) * ys; t <= f->y1 + 1e-9 * ys; t += ys) {
        double Y = sy(f, t);
        rep_buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                          "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                       SVG_L, Y, SVG_W - SVG_R, Y, SVG_L - 6, Y + 4, fabs(t) < 1e-12 * ys ? 0.0 : t);
    }
    rep_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", SVG_L,
                   SVG_T, SVG_W - SVG_L - SVG_R, SVG_H - SVG_T - SVG_B);
    rep_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (SVG_L + SVG_W - SVG_R) / 2, SVG_H - 12);
    rep_buf_escape(b, c->xlabel);
    rep_buf_printf(b, "</text>\n<text transform=\"translate(16 %d) rotate(-90)\" text-anchor=\"middle\">",
                   (SVG_T + SVG_H - SVG_B) / 2);
    rep_buf_escape(b, c->ylabel);
    rep_buf_printf(b, "</text>\n");
}

// The legend: n entries of (colour, label, dashed).
static void svg_legend(rep_buf *b, const rep_chart *c, const char *const *labels, const char *const *colors,
                       const int *dashed, int n, int boxes) {
    int lw = 0;
    for (int i = 0; i < n; i++)
        if ((int)strlen(labels[i]) > lw) lw = (int)strlen(labels[i]);
    int w = 34 + lw * 7, h = 8 + 17 * n;
    int x = SVG_W - SVG_R - w - 8, y = c->legend_top ? SVG_T + 8 : SVG_H - SVG_B - h - 8;
    rep_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"white\" fill-opacity=\"0.9\" "
                      "stroke=\"#bbb\"/>\n", x, y, w, h);
    for (int i = 0; i < n; i++) {
        int yy = y + 14 + 17 * i;
        if (boxes)
            rep_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"18\" height=\"10\" fill=\"%s\" fill-opacity=\"0.45\" "
                              "stroke=\"%s\"/>", x + 6, yy - 9, colors[i], colors[i]);
        else
            rep_buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2.5\"%s/>",
                           x + 6, yy - 4, x + 24, yy - 4, colors[i], dashed[i] ? " stroke-dasharray=\"5 3\"" : "");
        rep_buf_printf(b, "<text x=\"%d\" y=\"%d\">", x + 30, yy);
        rep_buf_escape(b, labels[i]);
        rep_buf_printf(b, "</text>\n");
    }
}

void rep_svg_lines(rep_buf *b, const rep_chart *c, const rep_series *s, int ns) {
    svg_frame f = {c->x0, c->x1, c->y0, c->y1};
    if (!(f.x0 < f.x1)) {
        int any = 0;
        for (int i = 0; i < ns; i++) {
            double lo, hi;
            if (ood_range(s[i].x, s[i].n, &lo, &hi) < 0) continue;
            if (!any || lo < f.x0) f.x0 = lo;
            if (!any || hi > f.x1) f.x1 = hi;
            any = 1;
        }
        if (!any || !(f.x0 < f.x1)) f.x0 = any ? f.x0 - 1 : 0, f.x1 = any ? f.x0 + 2 : 1;
    }
    if (!(f.y0 < f.y1)) {
        int any = 0;
        for (int i = 0; i < ns; i++) {
            double lo, hi;
            if (ood_range(s[i].y, s[i].n, &lo, &hi) < 0) continue;
            if (!any || lo < f.y0) f.y0 = lo;
            if (!any || hi > f.y1) f.y1 = hi;
            any = 1;
        }
        if (!any) f.y0 = 0, f.y1 = 1;
        if (f.y0 > 0 && f.y0 < 0.5 * f.y1) f.y0 = 0; // start at zero when it costs little
        if (!(f.y0 < f.y1)) f.y0 -= 0.5, f.y1 += 0.5;
        double pad = 0.04 * (f.y1 - f.y0);
        f.y1 += pad;
        if (f.y0 != 0) f.y0 -= pad;
    }
    svg_begin(b, c, &f);
    if (c->diagonal)
        rep_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"3 3\"/>\n",
                       sx(&f, f.x0), sy(&f, f.y0), sx(&f, f.x1), sy(&f, f.y1));
    const char *labels[16], *colors[16];
    int dashed[16], nl = 0;
    for (int i = 0; i < ns; i++) {
        // at most ~1500 points per polyline: thin long curves evenly
        size_t stride = s[i].n > 1500 ? (s[i].n + 1499) / 1500 : 1;
        rep_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", s[i].color,
                       s[i].dashed ? " stroke-dasharray=\"6 3\"" : "");
        for (size_t k = 0; k < s[i].n; k += stride) rep_buf_printf(b, "%.1f,%.1f ", sx(&f, s[i].x[k]), sy(&f, s[i].y[k]));
        if (s[i].n && (s[i].n - 1) % stride) rep_buf_printf(b, "%.1f,%.1f", sx(&f, s[i].x[s[i].n - 1]), sy(&f, s[i].y[s[i].n - 1]));
        rep_buf_printf(b, "\"/>\n");
        if (nl < 16 && s[i].label) labels[nl] = s[i].label, colors[nl] = s[i].color, dashed[nl++] = s[i].dashed;
    }
    if (nl) svg_legend(b, c, labels, colors, dashed, nl, 0);
    rep_buf_printf(b, "</svg>\n");
}

void rep_svg_hist(rep_buf *b, const rep_chart *c, const double *a, size_t na, const char *la, const double *o,
                  size_t no, const char *lo, int bins) {
    double l1 = 0, h1 = 1, l2 = 0, h2 = 1;
    ood_range(a, na, &l1, &h1);
    ood_range(o, no, &l2, &h2);
    svg_frame f = {l1 < l2 ? l1 : l2, h1 > h2 ? h1 : h2, 0, 1};
    if (!(f.x0 < f.x1)) f.x0 -= 0.5, f.x1 += 0.5;
    double *ca = calloc((size_t)bins, sizeof *ca), *co = calloc((size_t)bins, sizeof *co);
    if (!ca || !co) {
        free(ca), free(co);
        b->oom = 1;
        return;
    }
    double w = (f.x1 - f.x0) / bins, ymax = 0;
    ood_histogram(a, na, f.x0, f.x1, bins, ca);
    ood_histogram(o, no, f.x0, f.x1, bins, co);
    for (int k = 0; k < bins; k++) {
        ca[k] /= (na ? na : 1) * w;
        co[k] /= (no ? no : 1) * w;
        if (ca[k] > ymax) ymax = ca[k];
        if (co[k] > ymax) ymax = co[k];
    }
    f.y1 = ymax > 0 ? ymax * 1.08 : 1;
    svg_begin(b, c, &f);
    const double *cs[2] = {ca, co};
    const char *colors[2] = {"#1f77b4", "#d62728"}, *labels[2] = {la, lo};
    for (int h = 0; h < 2; h++) {
        rep_buf_printf(b, "<path fill=\"%s\" fill-opacity=\"0.35\" stroke=\"%s\" stroke-width=\"1.5\" d=\"M%.1f,%.1f",
                       colors[h], colors[h], sx(&f, f.x0), sy(&f, 0));
        for (int k = 0; k < bins; k++)
            rep_buf_printf(b, " L%.1f,%.1f L%.1f,%.1f", sx(&f, f.x0 + k * w), sy(&f, cs[h][k]), sx(&f, f.x0 + (k + 1) * w),
                           sy(&f, cs[h][k]));
        rep_buf_printf(b, " L%.1f,%.1f Z\"/>\n", sx(&f, f.x1), sy(&f, 0));
    }
    int dashed[2] = {0, 0};
    svg_legend(b, c, labels, colors, dashed, 2, 1);
    rep_buf_printf(b, "</svg>\n");
    free(ca), free(co);
}
