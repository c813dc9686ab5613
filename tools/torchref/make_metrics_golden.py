#!/usr/bin/python3
"""Golden data for tests/test_metrics.c: OOD metrics computed by scikit-learn the way OpenOOD
does (METHOD.md 8; OpenOOD v1.5 openood/evaluators/metrics.py, auc_and_fpr_recall), on random
scores with many ties.

    /usr/bin/python3 tools/torchref/make_metrics_golden.py > tests/data/metrics/golden.txt

Scores are "larger = more OOD" (the negated OpenOOD `conf`). One block per case:
    case NAME N_ID N_OOD
    id <N_ID scores>
    ood <N_OOD scores>
    expect AUROC AUPR_IN AUPR_OUT FPR95
    roc M <M fpr values> <M tpr values>
Numbers are Python repr (shortest round-trip), so the C reader gets the exact doubles.
"""
import sys

import numpy as np
import sklearn
from sklearn import metrics


def openood(score_id, score_ood):
    conf = -np.concatenate([score_id, score_ood])
    ood = np.concatenate([np.zeros(len(score_id)), np.ones(len(score_ood))]).astype(int)
    fpr_list, tpr_list, _ = metrics.roc_curve(ood, -conf)
    fpr = fpr_list[np.argmax(tpr_list >= 0.95)]
    p_in, r_in, _ = metrics.precision_recall_curve(1 - ood, conf)
    p_out, r_out, _ = metrics.precision_recall_curve(ood, -conf)
    auroc = metrics.auc(fpr_list, tpr_list)
    assert abs(auroc - metrics.roc_auc_score(ood, -conf)) < 1e-12
    return (auroc, metrics.auc(r_in, p_in), metrics.auc(r_out, p_out), fpr), fpr_list, tpr_list


def line(tag, xs):
    return tag + " " + " ".join(repr(float(x)) for x in xs)


def main():
    rng = np.random.default_rng(20240611)
    cases = []
    # many ties: scores on coarse grids, overlapping distributions
    for k, (n_id, n_ood, levels, shift) in enumerate(
            [(40, 30, 5, 0.5), (200, 150, 12, 1.0), (300, 300, 40, 0.3), (97, 211, 3, 0.8),
             (150, 50, 1000, 2.0), (120, 120, 8, -0.5), (1, 60, 4, 1.0), (60, 1, 4, 1.0)]):
        a = np.round(rng.normal(0, 1, n_id) * levels / 3) / levels
        b = np.round(rng.normal(shift, 1, n_ood) * levels / 3) / levels
        cases.append(("random%d" % k, a, b))
    # continuous scores (no ties) and all tied
    cases.append(("continuous", rng.normal(0, 1, 80), rng.normal(1, 1, 70)))
    cases.append(("alltied", np.full(10, 0.25), np.full(7, 0.25)))
    out = sys.stdout
    out.write("# made by tools/torchref/make_metrics_golden.py (scikit-learn %s)\n" % sklearn.__version__)
    for name, a, b in cases:
        (auroc, ain, aout, fpr), fl, tl = openood(a, b)
        out.write("case %s %d %d\n" % (name, len(a), len(b)))
        out.write(line("id", a) + "\n")
        out.write(line("ood", b) + "\n")
        out.write(line("expect", [auroc, ain, aout, fpr]) + "\n")
        out.write("roc %d %s %s\n" % (len(fl), " ".join(repr(float(x)) for x in fl),
                                       " ".join(repr(float(x)) for x in tl)))


if __name__ == "__main__":
    main()
