"""Checkpoints for tests/test_import.c (issue 14), written by PyTorch's own torch.save from the
reference networks of models.py, and the check of safetensors files exported by import-weights.

  import_check.py write DIR small|paper|hostile|tiny
      small:   unet_small.yml / resnet_small.yml config overlays; unet_ema.ckpt (the EMA helper's
               dict), unet_model.ckpt (a state_dict), unet_missing.ckpt / unet_extra.ckpt (one
               tensor less / more), unet_train.ckpt (a train.ckpt-shaped list with
               DDP "module." names, Adam state after 2 steps, LambdaLR state, epoch 3, step 1234),
               unet.safetensors (written by a small writer: the EMA weights), dtypes.ckpt and
               dtypes.safetensors (every storage type, strided and offset views), resnet_best.ckpt
               (OpenOOD-style state_dict after 3 training forwards: BatchNorm buffers),
               resnet_nonbt.ckpt (num_batches_tracked dropped); inputs and reference outputs as .npy.
      paper:   the paper configurations (UNet 35.75 M, ResNet-18 width 64): unet_paper.ckpt,
               resnet_paper.ckpt, inputs and outputs.
      hostile: hand-made torch.save-like zips: a storage claiming more bytes than the file, a
               negative stride, an offset past the storage, a global other than the allowed ones.
      tiny:    tiny_ema.ckpt and tiny_best.ckpt: the networks of config/tiny.yml.
  import_check.py check DIR MODEL CONFIG FILE.safetensors OUT_PREFIX
      loads FILE with load_state_dict(strict=True) into the reference MODEL (unet|resnet) built
      from CONFIG (name of an overlay written by `write`), runs it on OUT_PREFIX's inputs and
      compares with OUT_PREFIX's reference outputs: prints the relative error; exit 1 above 1e-4.
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

import models  # noqa: E402

UNET_SMALL = dict(ch=16, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[8], dropout=0.0, in_channels=3,
                  out_ch=3, image_size=16, num_classes=10, num_groups=4)
UNET_PAPER = dict(ch=128, ch_mult=[1, 2, 2, 2], num_res_blocks=2, attn_resolutions=[16], dropout=0.1,
                  in_channels=3, out_ch=3, image_size=32, num_classes=10, num_groups=32)
UNET_TINY = dict(ch=8, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[16], dropout=0.0, in_channels=1,
                 out_ch=1, image_size=32, num_classes=10, num_groups=4)  # config/tiny.yml
RESNET_TINY = dict(width=4, in_channels=1, num_classes=10)
RESNET_SMALL = dict(width=8, in_channels=3, num_classes=10)
RESNET_PAPER = dict(width=64, in_channels=3, num_classes=10)
MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2470, 0.2435, 0.2616]
CONFIGS = {"unet_small": ("unet", UNET_SMALL), "unet_paper": ("unet", UNET_PAPER),
           "resnet_small": ("resnet", RESNET_SMALL), "resnet_paper": ("resnet", RESNET_PAPER)}


def yaml_overlay(section, cfg):
    lines = [f"{section}:"]
    for k, v in cfg.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, float):
            v = repr(v)
        lines.append(f"  {k}: {v}")
    return "\n".join(lines) + "\n"


def build(kind, cfg):
    if kind == "unet":
        c = dict(cfg)
        c["ch_mult"] = tuple(c["ch_mult"])
        c["attn_resolutions"] = tuple(c["attn_resolutions"])
        return models.UNet(**c)
    return models.ResNet18(**cfg)


def save_npy(d, name, a):
    np.save(os.path.join(d, name + ".npy"), np.ascontiguousarray(a, dtype=np.float32 if a.dtype != np.int32 else np.int32))


def unet_inputs(cfg, n, seed):
    g = torch.Generator().manual_seed(seed)
    s, c = cfg["image_size"], cfg["in_channels"]
    x = torch.randn(n, c, s, s, generator=g)
    t = torch.tensor([0.0, 433.0, 999.0, 120.0][:n])
    y = torch.tensor([3, cfg["num_classes"], 0, 7][:n], dtype=torch.int64)
    return x, t, y


def unet_forward(model, x, t, y):
    model.eval()
    with torch.no_grad():
        return model(x, t, y)


def resnet_inputs(cfg, n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, cfg["in_channels"], 32, 32, generator=g)  # x in [0, 1]


def resnet_forward(model, x01):
    model.eval()
    m = torch.tensor(MEAN).view(1, 3, 1, 1)
    s = torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return model((x01 - m) / s)


def resnet_trained(cfg, seed):
    torch.manual_seed(seed)
    model = build("resnet", cfg)
    model.train()
    with torch.no_grad():  # moves the running statistics off (0, 1); num_batches_tracked = 3
        for i in range(3):
            model(torch.randn(8, cfg["in_channels"], 32, 32) * (1 + i) + 0.3)
    return model


def write_st(path, tensors):
    """A minimal safetensors writer: header JSON, then the raw little-endian data."""
    header, blobs, at = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().contiguous().numpy()
        dt = {np.dtype("float32"): "F32", np.dtype("int64"): "I64", np.dtype("float16"): "F16"}[a.dtype]
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_st(path):
    """A minimal safetensors reader (Debian has no safetensors package)."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": np.float32, "I64": np.int64, "F16": np.float16, "BF16": None}[e["dtype"]]
        b, end = e["data_offsets"]
        a = np.frombuffer(body[b:end], dtype=np.dtype(dt).newbyteorder("<")).reshape(e["shape"])
        out[name] = torch.from_numpy(a.astype(dt))
    return out, header.get("__metadata__", {})


def write_overlays(d):
    for name in ("unet_small", "resnet_small", "unet_paper", "resnet_paper"):
        kind, cfg = CONFIGS[name]
        open(os.path.join(d, name + ".yml"), "w").write(yaml_overlay(kind, cfg))


def write_small(d):
    torch.manual_seed(1)
    write_overlays(d)
    unet = build("unet", UNET_SMALL)
    # two Adam steps: trained weights and optimizer moments that are not zero
    opt = torch.optim.Adam(unet.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10))
    x, t, y = unet_inputs(UNET_SMALL, 3, 2)
    for _ in range(2):
        opt.zero_grad()
        unet(x, t, y).square().mean().backward()
        opt.step()
        sched.step()
    ema = collections.OrderedDict((k, v.detach().clone() + 0.01 * torch.randn_like(v))
                                  for k, v in unet.named_parameters())
    sd = unet.state_dict()
    torch.save(dict(ema), os.path.join(d, "unet_ema.ckpt"))  # EMAHelper.state_dict(): a plain dict
    torch.save(sd, os.path.join(d, "unet_model.ckpt"))
    torch.save(collections.OrderedDict((k, v) for k, v in sd.items() if k != "mid.attn_1.q.bias"),
               os.path.join(d, "unet_missing.ckpt"))
    extra = collections.OrderedDict(sd)
    extra["extra.weight"] = torch.zeros(2)
    torch.save(extra, os.path.join(d, "unet_extra.ckpt"))
    ddp = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    torch.save([ddp, opt.state_dict(), sched.state_dict(), 3, 1234, "1129-0945"], os.path.join(d, "unet_train.ckpt"))
    write_st(os.path.join(d, "unet.safetensors"), ema)
    first = next(iter(unet.parameters()))
    save_npy(d, "unet_exp_avg0", opt.state[first]["exp_avg"].numpy())
    save_npy(d, "unet_exp_avg_sq0", opt.state[first]["exp_avg_sq"].numpy())
    save_npy(d, "unet_small_x", x.numpy())
    save_npy(d, "unet_small_t", t.numpy())
    save_npy(d, "unet_small_y", y.numpy().astype(np.int32))
    save_npy(d, "unet_small_eps_model", unet_forward(unet, x, t, y).numpy())
    unet.load_state_dict(ema, strict=True)
    save_npy(d, "unet_small_eps_ema", unet_forward(unet, x, t, y).numpy())

    # every storage type, views sharing one storage (transpose: strides; slice: offset), a scalar
    base = torch.arange(24.0).reshape(4, 6) * 0.5
    dt = collections.OrderedDict(f32=base, t=base.t(), s=base[1:3, 2:5], f16=base.half(), bf16=base.bfloat16(),
                                 f64=base.double(), i64=base.long(), i32=base.int(), u8=base.to(torch.uint8),
                                 b=base > 3, scalar=torch.tensor(7.25))
    torch.save(dt, os.path.join(d, "dtypes.ckpt"))
    write_st(os.path.join(d, "dtypes.safetensors"), collections.OrderedDict(f32=base, f16=base.half(), i64=base.long()))

    res = resnet_trained(RESNET_SMALL, 3)
    torch.save(res.state_dict(), os.path.join(d, "resnet_best.ckpt"))
    nonbt = collections.OrderedDict((k, v) for k, v in res.state_dict().items() if "num_batches_tracked" not in k)
    torch.save(nonbt, os.path.join(d, "resnet_nonbt.ckpt"))
    x01 = resnet_inputs(RESNET_SMALL, 4, 4)
    logits, feat = resnet_forward(res, x01)
    save_npy(d, "resnet_small_x", x01.numpy())
    save_npy(d, "resnet_small_logits", logits.numpy())
    save_npy(d, "resnet_small_feature", feat.numpy())


def write_tiny(d):
    """The networks of config/tiny.yml (random weights): for the workflow with imported weights."""
    torch.manual_seed(9)
    unet = build("unet", UNET_TINY)
    torch.save({k: v.detach().clone() for k, v in unet.named_parameters()}, os.path.join(d, "tiny_ema.ckpt"))
    torch.save(resnet_trained(RESNET_TINY, 10).state_dict(), os.path.join(d, "tiny_best.ckpt"))


def write_paper(d):
    torch.manual_seed(5)
    write_overlays(d)
    unet = build("unet", UNET_PAPER)
    torch.save(unet.state_dict(), os.path.join(d, "unet_paper.ckpt"))
    x, t, y = unet_inputs(UNET_PAPER, 2, 6)
    save_npy(d, "unet_paper_x", x.numpy())
    save_npy(d, "unet_paper_t", t.numpy())
    save_npy(d, "unet_paper_y", y.numpy().astype(np.int32))
    save_npy(d, "unet_paper_eps_model", unet_forward(unet, x, t, y).numpy())
    res = resnet_trained(RESNET_PAPER, 7)
    torch.save(res.state_dict(), os.path.join(d, "resnet_paper.ckpt"))
    x01 = resnet_inputs(RESNET_PAPER, 2, 8)
    logits, feat = resnet_forward(res, x01)
    save_npy(d, "resnet_paper_x", x01.numpy())
    save_npy(d, "resnet_paper_logits", logits.numpy())
    save_npy(d, "resnet_paper_feature", feat.numpy())


# --- hostile files: torch.save's layout with chosen numbers ------------------------------------

class Storage:
    def __init__(self, key, numel, type_name="FloatStorage"):
        self.key, self.numel, self.type_name = key, numel, type_name


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo the pickle ran code >&2",))


class P(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", getattr(torch, obj.type_name), obj.key, "cpu", obj.numel)
        return None


def write_zip(path, obj, storages):
    buf = io.BytesIO()
    P(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        for key, data in storages.items():
            z.writestr("archive/data/" + key, data)
        z.writestr("archive/version", "3\n")


def write_hostile(d):
    data = np.arange(6, dtype=np.float32).tobytes()  # 6 floats
    ok = collections.OrderedDict(w=Tensor(Storage("0", 6), 0, [2, 3], [3, 1]))
    write_zip(os.path.join(d, "ok.ckpt"), ok, {"0": data})  # the control: a valid file
    write_zip(os.path.join(d, "bigstorage.ckpt"),
              collections.OrderedDict(w=Tensor(Storage("0", 600), 0, [2, 3], [3, 1])), {"0": data})
    write_zip(os.path.join(d, "negstride.ckpt"),
              collections.OrderedDict(w=Tensor(Storage("0", 6), 5, [2, 3], [-3, 1])), {"0": data})
    write_zip(os.path.join(d, "offset.ckpt"),
              collections.OrderedDict(w=Tensor(Storage("0", 6), 4, [2, 3], [3, 1])), {"0": data})
    write_zip(os.path.join(d, "evil.ckpt"), collections.OrderedDict(w=Evil()), {})
    write_zip(os.path.join(d, "nostorage.ckpt"),
              collections.OrderedDict(w=Tensor(Storage("7", 6), 0, [2, 3], [3, 1])), {"0": data})


def check(d, model, config, st_path, prefix):
    kind, cfg = CONFIGS[config]
    net = build(kind, cfg)
    sd, meta = read_st(st_path)
    net.load_state_dict(sd, strict=True)
    load = lambda n: torch.from_numpy(np.load(os.path.join(d, f"{prefix}_{n}.npy")))  # noqa: E731
    if kind == "unet":
        got = [unet_forward(net, load("x"), load("t"), load("y").long())]
        want = [load("eps_" + model)]
    else:
        got = list(resnet_forward(net, load("x")))
        want = [load("logits"), load("feature")]
    worst = max(float((g - w).abs().max() / w.abs().max()) for g, w in zip(got, want))
    print(f"{config} {os.path.basename(st_path)}: {len(sd)} tensors, strict load ok, metadata {meta}, "
          f"relative error {worst:.3g}")
    sys.exit(0 if worst <= 1e-4 else 1)


def main():
    torch.set_num_threads(2)
    if sys.argv[1] == "write":
        d, what = sys.argv[2], sys.argv[3]
        {"small": write_small, "paper": write_paper, "hostile": write_hostile, "tiny": write_tiny}[what](d)
    elif sys.argv[1] == "check":
        check(*sys.argv[2:7])
    else:
        sys.exit("usage: import_check.py write DIR small|paper|hostile | check DIR MODEL CONFIG FILE PREFIX")


if __name__ == "__main__":
    main()
