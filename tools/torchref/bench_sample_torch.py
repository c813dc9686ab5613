"""PyTorch companion of bench-sample: the same detection-sampling loop (every batch of test
images, every repeat, every level: noise to the level, 50-step DDIM back to -1 under
classifier-free guidance with both branches in ONE UNet call of 2n images, labels y then the
null label K), the same shapes, batching and thread count, in eval mode under torch.no_grad().
The DDIM update is the reference's algebraic transfer (METHOD.md 6) with host-side coefficients.
Prints "images_per_s X" (test images through every level and repeat per second) as its last line.

Usage: bench_sample_torch.py --unet-json JSON --diffusion-json JSON --images N --batch B
       --repeats R --levels 0,120,240,360 --sample-step 50 --guidance 2 --index-quirk 1 --threads T
(JSON: the canonical text of the config sections `unet` and `diffusion`, as bench-sample passes.)
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


def abar_of(d):
    T = d["T"]
    if d["beta_schedule"] == "linear":
        betas = np.linspace(d["beta_start"], d["beta_end"], T, dtype=np.float64)
    elif d["beta_schedule"] == "quad":
        betas = np.linspace(d["beta_start"] ** 0.5, d["beta_end"] ** 0.5, T, dtype=np.float64) ** 2
    else:
        sys.exit("bench_sample_torch.py: only the linear and quad schedules")
    alphas = 1.0 - torch.from_numpy(betas).float()
    return [float(a) for a in alphas.cumprod(dim=0)], T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unet-json", required=True)
    ap.add_argument("--diffusion-json", required=True)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--levels", default="0,120,240,360")
    ap.add_argument("--sample-step", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--index-quirk", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads if a.threads > 0 else os.cpu_count())
    cfg = json.loads(a.unet_json)
    abar, T = abar_of(json.loads(a.diffusion_json))
    skip = T // a.sample_step
    levels = [int(v) for v in a.levels.split(",") if v]
    w = a.guidance
    torch.manual_seed(0)
    net = models.UNet(ch=cfg["ch"], ch_mult=tuple(cfg["ch_mult"]), num_res_blocks=cfg["num_res_blocks"],
                      attn_resolutions=tuple(cfg["attn_resolutions"]), dropout=cfg["dropout"],
                      resamp_with_conv=cfg["resamp_with_conv"], in_channels=cfg["in_channels"],
                      out_ch=cfg["out_ch"], image_size=cfg["image_size"], num_classes=cfg["num_classes"],
                      num_groups=cfg["num_groups"]).eval()
    s, c, k = cfg["image_size"], cfg["in_channels"], cfg["num_classes"]

    def ab(t):
        i = t + 1 if a.index_quirk else t
        return 1.0 if i < 0 else abar[i]

    def eps(x, t, lab):
        n = x.shape[0]
        e = net(torch.cat([x, x]), torch.full((2 * n,), float(t)), lab)
        return (1 + w) * e[:n] - w * e[n:]

    def ddim(x, t_start, lab):
        seq = list(range(t_start, -1, -skip))
        for t, tn in zip(seq, seq[1:] + [-1]):
            e = eps(x, t, lab)
            at, an = ab(t), ab(tn)
            st, sn = math.sqrt(at), math.sqrt(an)
            cx = 1 + (an - at) / (st * (st + sn))
            ce = -(an - at) / (st * (math.sqrt((1 - an) * at) + math.sqrt((1 - at) * an)))
            x = torch.add(x * cx, e, alpha=ce)
        return x

    evals = 0
    with torch.no_grad():
        b = min(a.batch, a.images)
        lab = torch.cat([torch.arange(b) % k, torch.full((b,), k)])
        eps(torch.randn(b, c, s, s), 100, lab)  # warm-up
        t0 = time.perf_counter()
        for i0 in range(0, a.images, b):
            n = min(b, a.images - i0)
            lab = torch.cat([torch.arange(n) % k, torch.full((n,), k)])
            x0 = torch.randn(n, c, s, s)
            for _ in range(a.repeats):
                noise = torch.randn(n, c, s, s)
                for t in levels:
                    x = math.sqrt(abar[t]) * x0 + math.sqrt(1 - abar[t]) * noise
                    if t > 0:
                        x = ddim(x, t - 1, lab)
                        evals += len(range(t - 1, -1, -skip))
        dt = time.perf_counter() - t0
    ips = a.images / dt
    print(f"pytorch {torch.__version__} ddim {a.sample_step} steps, levels {len(levels)}, repeats {a.repeats}, "
          f"guidance {w:g}: {a.images} images, batch {b} (UNet calls of {2 * b}), threads {torch.get_num_threads()}: "
          f"{dt:.3f} s, {ips:.3f} images/s ({evals} guided evaluations, {2 * evals * b / dt:.1f} UNet images/s)")
    print(f"images_per_s {ips:.6f}")


if __name__ == "__main__":
    main()
