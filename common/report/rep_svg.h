// rep_svg: small inline-SVG charts for the HTML report (internal to common/report): line charts
// (ROC curves, training curves) and overlaid histograms, with titles, axis labels, ticks and a
// legend. Everything is appended to a rep_buf; nothing fails (see rep_buf_ok).
#ifndef DIFFOOD_REP_SVG_H
#define DIFFOOD_REP_SVG_H

#include <stddef.h>

#include "common/report/rep.h"

typedef struct {
    const double *x, *y; // n points
    size_t n;
    const char *label;   // legend text
    const char *color;   // CSS colour
    int dashed;          // 1: dashed line
} rep_series;

typedef struct {
    const char *cls;      // CSS class of the <svg> element ("roc", "loss", ...)
    const char *title;
    const char *xlabel, *ylabel;
    double x0, x1, y0, y1; // axis ranges (x0 == x1: from the data)
    int diagonal;          // 1: a dashed grey y = x line (ROC)
    int legend_top;        // 1: legend in the top right corner, else bottom right
} rep_chart;

// A line chart of ns series.
void rep_svg_lines(rep_buf *b, const rep_chart *c, const rep_series *s, int ns);

// Two overlaid histograms (as densities) of a[0..na) and o[0..no) with `bins` bins over their
// joint range; labels la / lo in the legend.
void rep_svg_hist(rep_buf *b, const rep_chart *c, const double *a, size_t na, const char *la, const double *o,
                  size_t no, const char *lo, int bins);

// The colour of series i of a palette of distinct colours.
const char *rep_svg_color(int i);

#endif
