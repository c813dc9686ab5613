"""Writes the golden files that tests/test_unet.c, tests/test_resnet.c and tests/test_optim.c
compare the C networks and optimisers against (tests/data/nn/), computed in float64 PyTorch.

Layout of each network's folder:
  names.tsv    name <TAB> shape (comma-separated, empty for a scalar) <TAB> offset (floats) <TAB>
               kind (param|buffer), in state_dict order; offsets index the flat arrays below
  params.npy   float32 flat: every state_dict entry (buffers included, num_batches_tracked as float)
  grads.npy    float32 flat, same layout: d loss / d param (0 for buffers)
  ...          inputs, outputs, input gradient, losses of 10 optimiser steps (see below)

Usage: make_golden.py OUTDIR   (tools/torchref/make_golden.sh calls it with tests/data/nn)
"""
import math
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

# The small UNet of the golden compare (the test hard-codes the same values).
UNET_CFG = dict(ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(16,), dropout=0.0,
                resamp_with_conv=True, in_channels=1, out_ch=1, image_size=16, num_classes=10,
                num_groups=8)
UNET_BATCH = 2
# A second, deeper wiring check (two blocks per level, three levels, attention below the top
# level, RGB): forward and gradients only.
UNET2_CFG = dict(ch=8, ch_mult=(1, 2, 2), num_res_blocks=2, attn_resolutions=(8,), dropout=0.0,
                 resamp_with_conv=True, in_channels=3, out_ch=3, image_size=16, num_classes=4,
                 num_groups=4)
# AdamW steps of the golden run: lr, betas, eps, weight decay, warm-up steps, clip norm, and the
# reference's optional step decay (lr_decay, lr_gamma, lr_step of its Optim config section).
ADAMW = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.01, warmup=4, clip=1.0, lr_decay=False,
             lr_gamma=1.0, lr_step=1)
# The flat-vector optimiser golden: warm-up 3 then halving every 2 steps, over 8 steps.
OPTIM_ADAMW = dict(ADAMW, warmup=3, lr_decay=True, lr_gamma=0.5, lr_step=2)
OPTIM_STEPS = 8
RESNET_CFG = dict(num_classes=10, width=8, in_channels=3)
RESNET_BATCH = 4
SGD = dict(lr=0.05, momentum=0.9, wd=5e-4, total=10, floor=1e-6)
STEPS = 10


def save(d, name, a, dtype=np.float32):
    np.save(os.path.join(d, name), np.ascontiguousarray(np.asarray(a, dtype=dtype)))


def perturb_norms(model, gen):
    """Non-trivial affine parameters and running statistics, so that their gradients matter."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            leaf = name.rsplit(".", 1)[-1]
            is_norm = any(s in name for s in ("norm", "bn", "shortcut.1"))
            if not is_norm:
                continue
            if leaf == "weight":
                t.copy_(1 + 0.2 * torch.randn(t.shape, generator=gen))
            elif leaf == "bias":
                t.copy_(0.2 * torch.randn(t.shape, generator=gen))
            elif leaf == "running_mean":
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))
            elif leaf == "running_var":
                t.copy_(1 + 0.5 * torch.rand(t.shape, generator=gen))


def write_table(d, model):
    """names.tsv + params.npy (flat float32 of the whole state_dict); returns the offsets."""
    sd = model.state_dict()
    params = dict(model.named_parameters())
    rows, flat, off = [], [], 0
    for name, t in sd.items():
        n = t.numel()
        kind = "param" if name in params else "buffer"
        rows.append(f"{name}\t{','.join(str(s) for s in t.shape)}\t{off}\t{kind}\n")
        flat.append(t.detach().double().reshape(-1).numpy())
        off += n
    with open(os.path.join(d, "names.tsv"), "w") as f:
        f.writelines(rows)
    save(d, "params.npy", np.concatenate(flat))
    return off


def flat_grads(model):
    params = dict(model.named_parameters())
    out = []
    for name, t in model.state_dict().items():
        p = params.get(name)
        g = p.grad if p is not None and p.grad is not None else torch.zeros_like(t, dtype=torch.float64)
        out.append(g.detach().double().reshape(-1).numpy())
    return np.concatenate(out)


def clip_grad_norm(params, max_norm):
    """torch.nn.utils.clip_grad_norm_ (as the reference calls it); returns the norm before clipping."""
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))


def adamw_with_schedule(params, cfg):
    """AdamW and the learning-rate schedule the way the reference builds them (runner/runner.py
    get_optim): a torch LambdaLR whose factor is step / warmup during the warm-up, then
    lr_gamma ** ((step - warmup) // lr_step) with lr_decay, else 1. The caller steps the
    scheduler after each optimizer.step(), as the reference's training loop does, so the C side
    must match whatever lr torch hands each step (the first one: 0)."""
    opt = torch.optim.AdamW(params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
                            weight_decay=cfg["wd"])

    def factor(step):
        if step < cfg["warmup"]:
            return step / cfg["warmup"]
        if cfg["lr_decay"]:
            return cfg["lr_gamma"] ** ((step - cfg["warmup"]) // cfg["lr_step"])
        return 1

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


# --- UNet ----------------------------------------------------------------------------------

def unet_golden(out, name="unet", cfg=UNET_CFG, steps=True):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(1234)
    gen = torch.Generator().manual_seed(99)
    model = models.UNet(**cfg)
    perturb_norms(model, gen)
    write_table(d, model)
    model = model.double()
    c, s = cfg["in_channels"], cfg["image_size"]
    x = torch.randn(UNET_BATCH, c, s, s, generator=gen, dtype=torch.float64)
    noise = torch.randn(UNET_BATCH, c, s, s, generator=gen, dtype=torch.float64)
    t = torch.tensor([3.0, 517.0], dtype=torch.float64)[:UNET_BATCH]
    y = torch.tensor([cfg["num_classes"] - 1, cfg["num_classes"]], dtype=torch.int64)[:UNET_BATCH]  # + null label
    # Inputs rounded to float32 first, so C and torch see the same numbers.
    x, noise = x.float().double(), noise.float().double()
    xg = x.clone().requires_grad_(True)
    eps = model(xg, t, y)
    loss = (eps - noise).square().sum(dim=(1, 2, 3)).mean(dim=0)
    loss.backward()
    save(d, "x.npy", x)
    save(d, "noise.npy", noise)
    save(d, "t.npy", t)
    save(d, "y.npy", y, np.int32)
    save(d, "eps.npy", eps.detach())
    save(d, "loss.npy", [float(loss)])
    save(d, "grads.npy", flat_grads(model))
    save(d, "dx.npy", xg.grad)
    if not steps:
        print(f"{name}: {sum(p.numel() for p in model.parameters())} params, loss {float(loss):.6g}")
        return

    # 10 AdamW steps with linear warm-up and gradient clipping on the same batch.
    params = list(model.parameters())
    opt, sched = adamw_with_schedule(params, ADAMW)
    losses, norms = [], []
    for _ in range(STEPS):
        opt.zero_grad()
        e = model(x, t, y)
        loss = (e - noise).square().sum(dim=(1, 2, 3)).mean(dim=0)
        loss.backward()
        norms.append(clip_grad_norm(params, ADAMW["clip"]))
        opt.step()
        sched.step()
        losses.append(float(loss))
    save(d, "losses.npy", losses)
    save(d, "gnorms.npy", norms)
    print(f"unet: {sum(p.numel() for p in params)} params, loss {losses[0]:.6g} -> {losses[-1]:.6g}, "
          f"grad norms {norms[0]:.4g} .. {norms[-1]:.4g}")


# --- ResNet-18 -------------------------------------------------------------------------------

def sgd_with_schedule(params, cfg, total):
    """SGD Nesterov and OpenOOD's schedule (openood/trainers/base_trainer.py): a torch LambdaLR of
    cosine annealing from 1 to floor / lr over `total` steps, stepped after each optimizer.step()."""
    opt = torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["wd"], nesterov=True)
    lo = cfg["floor"] / cfg["lr"]
    return opt, torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: lo + (1 - lo) * 0.5 * (1 + math.cos(step / total * math.pi)))


def resnet_golden(out):
    d = os.path.join(out, "resnet")
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(4321)
    gen = torch.Generator().manual_seed(77)
    model = models.ResNet18(**RESNET_CFG)
    perturb_norms(model, gen)
    write_table(d, model)
    model = model.double()
    x = torch.randn(RESNET_BATCH, RESNET_CFG["in_channels"], 32, 32, generator=gen).double()
    x = x.float().double()
    y = torch.tensor([3, 0, 9, 3], dtype=torch.int64)[:RESNET_BATCH]
    save(d, "x.npy", x)
    save(d, "y.npy", y, np.int32)

    model.train()
    xg = x.clone().requires_grad_(True)
    logits, feat = model(xg)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    save(d, "logits_train.npy", logits.detach())
    save(d, "feature_train.npy", feat.detach())
    save(d, "loss.npy", [float(loss)])
    save(d, "grads.npy", flat_grads(model))
    save(d, "dx.npy", xg.grad)
    # running statistics (every buffer, state_dict order) after one training forward
    params = dict(model.named_parameters())
    save(d, "buffers_after.npy", np.concatenate([t.detach().double().reshape(-1).numpy()
                                                 for k, t in model.state_dict().items() if k not in params]))
    model.eval()
    with torch.no_grad():
        logits, feat = model(x)
    save(d, "logits_eval.npy", logits)
    save(d, "feature_eval.npy", feat)

    # 10 SGD Nesterov steps (weight decay, cosine per step) in train mode on the same batch.
    model.train()
    opt, sched = sgd_with_schedule(model.parameters(), SGD, SGD["total"])
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        logits, _ = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss))
    save(d, "losses.npy", losses)
    print(f"resnet: {sum(p.numel() for p in model.parameters())} params, "
          f"loss {losses[0]:.6g} -> {losses[-1]:.6g}")


# --- optimiser primitives (tests/test_optim.c) -------------------------------------------------

def optim_golden(out):
    """One small flat parameter vector through OPTIM_STEPS steps of AdamW (the reference's
    LambdaLR warm-up and step decay, clipping) and of SGD Nesterov (cosine) with fixed
    pseudo-gradients, plus EMA; the C optimisers must match. adamw_lrs.npy: the lr torch used at
    each AdamW step."""
    d = os.path.join(out, "optim")
    os.makedirs(d, exist_ok=True)
    gen = torch.Generator().manual_seed(5)
    n, steps = 1000, OPTIM_STEPS
    p0 = torch.randn(n, generator=gen).float().double()
    grads = (torch.randn(steps, n, generator=gen) * 0.1).float().double()
    save(d, "p0.npy", p0)
    save(d, "grads.npy", grads)
    p = p0.clone().requires_grad_(True)
    opt, sched = adamw_with_schedule([p], OPTIM_ADAMW)
    ema, lrs = p0.clone(), []
    for s in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        p.grad = grads[s].clone()
        clip_grad_norm([p], OPTIM_ADAMW["clip"])
        opt.step()
        sched.step()
        ema = 0.9 * ema + 0.1 * p.detach()
    save(d, "adamw.npy", p.detach())
    save(d, "adamw_lrs.npy", lrs, np.float64)
    save(d, "ema.npy", ema)
    p = p0.clone().requires_grad_(True)
    opt, sched = sgd_with_schedule([p], SGD, steps)
    for s in range(steps):
        p.grad = grads[s].clone()
        opt.step()
        sched.step()
    save(d, "sgd.npy", p.detach())


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_golden.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    unet_golden(out)
    unet_golden(out, "unet2", UNET2_CFG, steps=False)
    resnet_golden(out)
    optim_golden(out)
    here = os.path.dirname(os.path.abspath(__file__))
    for tsv in ("ddim-unet-cifar10-state-dict.tsv", "resnet18-32x32-state-dict.tsv"):
        src = os.path.join(here, "..", "..", "..", "shared", "reference", tsv)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(out, tsv))


if __name__ == "__main__":
    main()
