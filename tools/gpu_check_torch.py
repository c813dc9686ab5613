"""PyTorch side of tools/gpu-check: GPU throughput of the same networks, shapes, precision and
steps as `gpu-check-nn --bench`, so that the two can be printed side by side.

Networks come from tools/torchref/models.py (the reference UNet and ResNet-18 with the reference
state_dict names). forward: eval mode under torch.no_grad(). train: forward (UNet: train mode,
dropout on; ResNet: BatchNorm batch statistics), the loss (UNet: squared error summed over CHW,
mean over the batch; ResNet: cross-entropy), zero_grad, backward, then one optimiser step
(UNet: AdamW without clipping; ResNet: SGD Nesterov, weight decay 5e-4), as gpu-check-nn does.
TF32 follows --tf32 for both matmul and cuDNN; cudnn.benchmark is on (gpu-check-nn times its
cuDNN algorithms once per shape too). 3 warm-up iterations, then --iters timed ones.

Prints lines "bench MODEL MODE batch B: X img/s (...)" in gpu-check-nn's format.
Exit 0 done, 2 bad arguments, 3 no CUDA in this torch (nothing measured).

Usage: gpu_check_torch.py [--model unet|resnet18|all] [--small] [--batch 128] [--iters 20]
       [--tf32 0|1] [--device cuda|cpu]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "torchref"))


def small_unet_kwargs():
    return dict(ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(8,), dropout=0.1,
                resamp_with_conv=True, in_channels=1, out_ch=1, image_size=16, num_classes=10,
                num_groups=8)


def report(model, mode, batch, iters, dt):
    print(f"bench {model:<8} {mode:<7} batch {batch:4d}: {batch * iters / dt:10.1f} img/s  "
          f"({iters} iterations, {dt:.3f} s)", flush=True)


def timed(fn, iters, sync):
    for _ in range(3):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return time.perf_counter() - t0


def syncer(torch, dev):
    return torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)


def bench_unet(torch, models, a, dev):
    kw = small_unet_kwargs() if a.small else {}
    net = models.UNet(**kw).to(dev)
    s, cin, k = net_geometry(kw)
    b = a.batch
    x = torch.rand(b, cin, s, s, device=dev) * 2 - 1
    t = torch.rand(b, device=dev) * 999
    y = torch.arange(b, device=dev) % (k + 1)
    target = torch.rand(b, kw.get("out_ch", 3), s, s, device=dev) * 2 - 1
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.0)
    name = "unet-s" if a.small else "unet"
    sync = syncer(torch, dev)

    def fwd():
        with torch.no_grad():
            net(x, t, y)

    def step():
        eps = net(x, t, y)
        loss = ((eps - target) ** 2).sum(dim=(1, 2, 3)).mean()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()

    net.eval()
    report(name, "forward", b, a.iters, timed(fwd, a.iters, sync))
    net.train()
    report(name, "train", b, a.iters, timed(step, a.iters, sync))


def net_geometry(kw):
    if kw:
        return kw["image_size"], kw["in_channels"], kw["num_classes"]
    return 32, 3, 10


def bench_resnet(torch, models, a, dev):
    import torch.nn.functional as F
    net = models.ResNet18().to(dev)
    b = a.batch
    x = torch.rand(b, 3, 32, 32, device=dev) * 4 - 2
    lab = torch.arange(b, device=dev) % 10
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sync = syncer(torch, dev)

    def fwd():
        with torch.no_grad():
            net(x)

    def step():
        out = net(x)
        logits = out[0] if isinstance(out, tuple) else out
        loss = F.cross_entropy(logits, lab)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()

    net.eval()
    report("resnet18", "forward", b, a.iters, timed(fwd, a.iters, sync))
    net.train()
    report("resnet18", "train", b, a.iters, timed(step, a.iters, sync))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["unet", "resnet18", "all"], default="all")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--tf32", type=int, choices=[0, 1], default=1)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                    help="cpu: exercise this script without a GPU (the figures mean nothing)")
    a = ap.parse_args()
    if a.batch < 1 or a.iters < 1:
        print("gpu_check_torch: --batch and --iters must be positive", file=sys.stderr)
        sys.exit(2)
    import torch
    import models
    if a.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check_torch: torch {torch.__version__} has no usable CUDA device", file=sys.stderr)
        sys.exit(3)
    torch.backends.cuda.matmul.allow_tf32 = bool(a.tf32)
    torch.backends.cudnn.allow_tf32 = bool(a.tf32)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    dev = torch.device(a.device)
    where = torch.cuda.get_device_name(0) if a.device == "cuda" else "CPU"
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
          f"{where}, tf32 {a.tf32}", flush=True)
    if a.model in ("unet", "all"):
        bench_unet(torch, models, a, dev)
    if a.model in ("resnet18", "all"):
        bench_resnet(torch, models, a, dev)


if __name__ == "__main__":
    main()
