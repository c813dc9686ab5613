"""PyTorch companion of bench-nn: the same network, shapes, mode and thread count, timed the
same way (warm-up iterations, then timed iterations). Prints "images_per_s X" as its last line.

forward: eval mode under torch.no_grad(). train: forward, the METHOD.md loss (UNet: sum over
CHW of the squared error, mean over the batch; ResNet: cross-entropy, BatchNorm in train mode),
zero_grad, backward, then AdamW with gradient clipping at 1 (UNet) or SGD Nesterov (ResNet).

Usage: bench_nn_torch.py --model unet|resnet18 --config-json JSON --batch B --mode forward|train
       --threads T --iters N --warmup W
(JSON is the canonical text of the config section, as bench-nn passes it.)
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchref"))
import models  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=["unet", "resnet18"])
    ap.add_argument("--config-json", required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--mode", choices=["forward", "train"], default="forward")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads if a.threads > 0 else os.cpu_count())
    cfg = json.loads(a.config_json)
    b = a.batch
    torch.manual_seed(0)
    if a.model == "unet":
        net = models.UNet(ch=cfg["ch"], ch_mult=tuple(cfg["ch_mult"]), num_res_blocks=cfg["num_res_blocks"],
                          attn_resolutions=tuple(cfg["attn_resolutions"]), dropout=cfg["dropout"],
                          resamp_with_conv=cfg["resamp_with_conv"], in_channels=cfg["in_channels"],
                          out_ch=cfg["out_ch"], image_size=cfg["image_size"], num_classes=cfg["num_classes"],
                          num_groups=cfg["num_groups"])
        s, k = cfg["image_size"], cfg["num_classes"]
        x = torch.randn(b, cfg["in_channels"], s, s)
        noise = torch.randn(b, cfg["out_ch"], s, s)
        t = torch.tensor([float((i * 37) % 1000) for i in range(b)])
        y = torch.tensor([i % (k + 1) for i in range(b)])
        opt = torch.optim.AdamW(net.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

        def fwd():
            return net(x, t, y)

        def loss_fn(out):
            return (out - noise).square().sum(dim=(1, 2, 3)).mean(dim=0)
    else:
        net = models.ResNet18(num_classes=cfg["num_classes"], width=cfg["width"], in_channels=cfg["in_channels"])
        k = cfg["num_classes"]
        x = torch.randn(b, cfg["in_channels"], 32, 32)
        y = torch.tensor([i % k for i in range(b)])
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)

        def fwd():
            return net(x)[0]

        def loss_fn(out):
            return F.cross_entropy(out, y)

    params = [p for p in net.parameters()]

    def step():
        if a.mode == "forward":
            with torch.no_grad():
                fwd()
            return
        out = fwd()
        loss = loss_fn(out)
        opt.zero_grad()
        loss.backward()
        if a.model == "unet":
            torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    net.train(a.mode == "train")
    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.iters):
        step()
    dt = time.perf_counter() - t0
    ips = b * a.iters / dt
    print(f"pytorch {torch.__version__} {a.model} {a.mode} batch {b} threads {torch.get_num_threads()}: "
          f"{ips:.2f} images/s ({dt / a.iters:.4f} s/iter, {sum(p.numel() for p in params) / 1e6:.3f} M params)")
    print(f"images_per_s {ips:.6f}")


if __name__ == "__main__":
    main()
