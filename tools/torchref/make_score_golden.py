#!/usr/bin/python3
"""Golden data of the score tests (tests/test_score.c): small random features and the scores
that numpy/sklearn compute for them following OpenOOD's postprocessors (msp, maxlogit, ebo, mds,
knn, react, vim) and METHOD.md 7 (DiffOOD global/local), all negated to "larger = more OOD".

    /usr/bin/python3 tools/torchref/make_score_golden.py [OUT_DIR]   (default tests/data/score)

Independent of the C code: the formulas are OpenOOD's, written out here with numpy in float64
on the float32 inputs. Files: inputs <set>_<table>.npy (f32; labels i4; samples (n, L, R, dim)),
fc_weight/fc_bias, and expected <set>_<method>.npy (f64, sets id and ood), params.npy
[react_threshold, vim_alpha, vim_dim, knn_k, mds_eps], levels.npy.
"""
import os
import sys

import numpy as np
from numpy.linalg import norm, pinv
from scipy.special import logsumexp, softmax
from sklearn.covariance import EmpiricalCovariance

D, K, NTRAIN, NID, NOOD, LEVELS, R = 16, 4, 200, 40, 40, [0, 120, 240], 2
KNN_K, PCT, MDS_EPS = 50, 90.0, 1e-6
VIM_DIM = D // 2  # OpenOOD's choice for a narrow feature width (D < 768)


def make_set(rng, n, shift, W, b, labels=True):
    """Post-ReLU-like features (non-negative), their fc logits, labels and denoised repeats."""
    y = rng.integers(0, K, n).astype(np.int32)
    centers = np.abs(rng.normal(0, 1.0, (K, D)))
    f = np.abs(centers[y] + shift + rng.normal(0, 0.7, (n, D))).astype(np.float32)
    logit = (f.astype(np.float64) @ W.T.astype(np.float64) + b).astype(np.float32)
    L = len(LEVELS)
    # repeats drift away from the clean image as the level grows
    sf = np.empty((n, L, R, D), np.float32)
    for i in range(L):
        sf[:, i] = np.abs(f[:, None, :] + rng.normal(0, 0.3 * (i + 1) + shift, (n, R, D)))
    sl = (sf.astype(np.float64) @ W.T.astype(np.float64) + b).astype(np.float32)
    # one all-zero vector: the 1e-10 of the normalisation keeps it finite (v = 0)
    sf[1, 2, 1] = 0
    sl[2, 1, 0] = 0
    return dict(feature=f, logit=logit, label=y, sample_feature=sf, sample_logit=sl)


def diffood(u):
    """METHOD.md 7: u (n, L, R, d) -> global, local (n, L) with column 0 = 0."""
    u = u.astype(np.float64)
    v = u / (norm(u, axis=-1, keepdims=True) + 1e-10)
    n, L = u.shape[:2]
    g = np.zeros((n, L))
    loc = np.zeros((n, L))
    for i in range(1, L):
        g[:, i] = np.abs(v[:, 0] - v[:, i]).sum(-1).mean(-1)
        loc[:, i] = np.abs(v[:, i - 1] - v[:, i]).sum(-1).mean(-1)
    return g, loc


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../tests/data/score")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240611)
    W = rng.normal(0, 0.5, (K, D)).astype(np.float32)
    b = rng.normal(0, 0.5, K).astype(np.float32)
    sets = {"train": make_set(rng, NTRAIN, 0.0, W, b), "id": make_set(rng, NID, 0.0, W, b),
            "ood": make_set(rng, NOOD, 0.8, W, b)}
    for name, s in sets.items():
        for t, a in s.items():
            if name == "train" and t.startswith("sample"):
                continue
            np.save(os.path.join(out, f"{name}_{t}.npy"), a)
    np.save(os.path.join(out, "fc_weight.npy"), W)
    np.save(os.path.join(out, "fc_bias.npy"), b)
    np.save(os.path.join(out, "levels.npy"), np.array(LEVELS, np.int32))

    w64, b64 = W.astype(np.float64), b.astype(np.float64)
    tr = sets["train"]
    ftr = tr["feature"].astype(np.float64)
    # MDS (mds_postprocessor): class means, EmpiricalCovariance(assume_centered=False) of the
    # class-centred features; the C side adds score.mds_eps on the diagonal before inverting
    means = np.stack([ftr[tr["label"] == c].mean(0) for c in range(K)])
    centred = ftr - means[tr["label"]]
    cov = EmpiricalCovariance(assume_centered=False).fit(centred).covariance_
    prec = np.linalg.inv(cov + MDS_EPS * np.eye(D))
    # KNN (knn_postprocessor): normalizer x / ||x|| + 1e-10, faiss IndexFlatL2 = squared L2
    normalizer = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True) + 1e-10
    bank = normalizer(ftr)
    # ReAct (react_postprocessor): percentile of all activations
    thr = np.percentile(ftr.flatten(), PCT)
    # ViM (vim_postprocessor)
    u = -np.matmul(pinv(w64), b64)
    ec = EmpiricalCovariance(assume_centered=True)
    ec.fit(ftr - u)
    eig_vals, eigen_vectors = np.linalg.eig(ec.covariance_)
    eig_vals, eigen_vectors = eig_vals.real, eigen_vectors.real
    NS = np.ascontiguousarray((eigen_vectors.T[np.argsort(eig_vals * -1)[VIM_DIM:]]).T)
    logit_id_train = ftr @ w64.T + b64
    vlogit_id_train = norm(np.matmul(ftr - u, NS), axis=-1)
    alpha = logit_id_train.max(axis=-1).mean() / vlogit_id_train.mean()
    np.save(os.path.join(out, "params.npy"), np.array([thr, alpha, VIM_DIM, KNN_K, MDS_EPS], np.float64))

    for name in ("id", "ood"):
        s = sets[name]
        lg = s["logit"].astype(np.float64)
        f = s["feature"].astype(np.float64)
        exp = {}
        exp["msp"] = -softmax(lg, axis=1).max(1)
        exp["mls"] = -lg.max(1)
        exp["ebo"] = -logsumexp(lg, axis=1)
        cs = np.stack([-np.einsum("ij,jk,ik->i", f - means[c], prec, f - means[c]) for c in range(K)], 1)
        exp["mds"] = -cs.max(1)
        q = normalizer(f)
        d2 = (q ** 2).sum(1)[:, None] + (bank ** 2).sum(1)[None, :] - 2 * q @ bank.T
        exp["knn"] = np.sort(np.maximum(d2, 0), axis=1)[:, KNN_K - 1]  # -(-D[:, -1])
        exp["react"] = -logsumexp(np.minimum(f, thr) @ w64.T + b64, axis=1)
        energy = logsumexp(f @ w64.T + b64, axis=-1)
        vlogit = norm(np.matmul(f - u, NS), axis=-1) * alpha
        exp["vim"] = -(-vlogit + energy)
        for space in ("logit", "feature"):
            g, loc = diffood(s["sample_" + space])
            exp[f"diffood-global-{space}"] = g
            exp[f"diffood-local-{space}"] = loc
        for m, a in exp.items():
            np.save(os.path.join(out, f"{name}_expect_{m}.npy"), a.astype(np.float64))
    print(f"wrote {out}: threshold {thr:.6f}, alpha {alpha:.6f}")


if __name__ == "__main__":
    main()
