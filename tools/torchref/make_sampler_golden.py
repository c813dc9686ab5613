"""Writes the golden files of tests/test_sampler.c (tests/data/sampler/): METHOD.md section 6
(DDIM, PNDM2, PNDM4 with classifier-free guidance, the index quirk and the corrected indexing)
re-implemented here in float64 PyTorch, independently of the C sampler, over a tiny UNet with
fixed weights; and the detection noise of METHOD.md 7 (rng_stream + Philox4x32-10 + Box-Muller,
common/rng.h and kernels/philox.h) re-implemented in Python.

Files:
  unet/names.tsv, unet/params.npy  the tiny UNet (UNET_CFG below; same layout as tests/data/nn)
  abar.npy        float32 (T) the linear schedule as common/schedule.h builds it
  x0.npy, noise.npy float32 (N, C, S, S) clean images in [-1, 1] and the noise
  y.npy           int32 (N) labels (guidance on y, null label K)
  traj_<method>_q<quirk>_t<level>.npy  float32 (steps + 1, N, C, S, S): row 0 the image noised to
                  `level`, row i the image after step i (level 0: the noised image only)
  noise_cases.npy int64 (M, 3): seed, image index, repeat; noise_keys.npy int64 (M, 4): the
                  philox key words k0, k1, c2, c3; noise_vals.npy float32 (M, NOISE_CHW);
                  noise_store_key.txt the input store key (hex) whose rng_id_str is the set id

Usage: make_sampler_golden.py OUTDIR   (tools/torchref/make_golden.sh calls it)
"""
import math
import os
import struct
import sys

import numpy as np
import torch
import xxhash

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden  # noqa: E402
import models  # noqa: E402

# The test hard-codes the same values.
UNET_CFG = dict(ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(8,), dropout=0.0,
                resamp_with_conv=True, in_channels=1, out_ch=1, image_size=8, num_classes=10,
                num_groups=4)
N = 3
LABELS = [3, 7, 0]
T, BETA_START, BETA_END = 1000, 1e-4, 0.02
SAMPLE_STEP = 50  # skip 20
GUIDANCE = 2.0
LEVELS = (0, 40, 45, 110)  # 110: six steps (PNDM's multistep phase), not a multiple of the skip;
# 45: three RK steps, the last 4 -> -1 with the midpoint 1.5 (the network gets 1.5, the index 1)
METHODS = ("ddim", "pndm2", "pndm4")

NOISE_STORE_KEY = "3f9a0c17d2b84e6590a1b2c3d4e5f607"
NOISE_CHW = 1 * 32 * 32
NOISE_CASES = [(1234, 0, 0), (1234, 0, 3), (1234, 17, 1), (1234, 999, 2), (7, 17, 1), (2 ** 63 + 5, 5, 0)]
RNG_NOISE_SAMPLE = 1


# --- schedule (common/schedule.h) ----------------------------------------------------------------

def linear_abar():
    betas = np.linspace(BETA_START, BETA_END, T, dtype=np.float64).astype(np.float32)
    alphas = (np.float32(1) - betas).astype(np.float32)
    return np.cumprod(alphas.astype(np.float64)).astype(np.float32)


# --- METHOD.md 6 ---------------------------------------------------------------------------------

class Sampler:
    """The transfer and the three methods over a guided eps(x, t); abar is float32 read as double."""

    def __init__(self, abar, quirk):
        self.abar = [float(a) for a in abar]
        self.quirk = quirk

    def a(self, t):
        i = t + 1 if self.quirk else t
        return 1.0 if i < 0 else self.abar[i]

    def transfer(self, x, e, t, t_next):
        a_t, a_n = self.a(t), self.a(t_next)
        st, sn = math.sqrt(a_t), math.sqrt(a_n)
        return x + (a_n - a_t) * (x / (st * (st + sn))
                                  - e / (st * (math.sqrt((1 - a_n) * a_t) + math.sqrt((1 - a_t) * a_n))))

    def run(self, method, x, t_start, t_end, eps):
        skip = T // SAMPLE_STEP
        seq = list(range(t_start, t_end, -skip))
        seq_next = seq[1:] + [t_end]
        hist, out = [], [x]
        for t, tn in zip(seq, seq_next):
            e1 = eps(x, t)
            if method == "ddim":
                e = e1
            elif method == "pndm2":
                if not hist:
                    e = 0.5 * (e1 + eps(self.transfer(x, e1, t, tn), tn))
                else:
                    e = 0.5 * (3 * e1 - hist[-1])
            else:
                if len(hist) < 3:
                    tmv = (t + tn) / 2  # the network gets the float midpoint (PNDM's t_list)
                    tm = int(tmv)       # the schedule index: truncated toward zero, as .long()
                    e2 = eps(self.transfer(x, e1, t, tm), tmv)
                    e3 = eps(self.transfer(x, e2, t, tm), tmv)
                    e4 = eps(self.transfer(x, e3, t, tn), tn)
                    e = (e1 + 2 * e2 + 2 * e3 + e4) / 6
                else:
                    e = (55 * e1 - 59 * hist[-1] + 37 * hist[-2] - 9 * hist[-3]) / 24
            x = self.transfer(x, e, t, tn)
            hist.append(e1)
            out.append(x)
        return out


def sampler_golden(out):
    torch.manual_seed(4242)
    gen = torch.Generator().manual_seed(31)
    model = models.UNet(**UNET_CFG)
    make_golden.perturb_norms(model, gen)
    d = os.path.join(out, "unet")
    os.makedirs(d, exist_ok=True)
    make_golden.write_table(d, model)
    model = model.double().eval()
    c, s, k = UNET_CFG["in_channels"], UNET_CFG["image_size"], UNET_CFG["num_classes"]
    x0 = (torch.rand(N, c, s, s, generator=gen, dtype=torch.float64) * 2 - 1).float().double()
    noise = torch.randn(N, c, s, s, generator=gen, dtype=torch.float64).float().double()
    y = torch.tensor(LABELS, dtype=torch.int64)
    abar = linear_abar()
    make_golden.save(out, "abar.npy", abar)
    make_golden.save(out, "x0.npy", x0)
    make_golden.save(out, "noise.npy", noise)
    make_golden.save(out, "y.npy", y, np.int32)

    labels = torch.cat([y, torch.full_like(y, k)])

    @torch.no_grad()
    def eps(x, t):
        # the two guidance branches in one call of 2N images: labels y, then the null label K
        tt = torch.full((2 * N,), float(t), dtype=torch.float64)
        e = model(torch.cat([x, x]), tt, labels)
        return (1 + GUIDANCE) * e[:N] - GUIDANCE * e[N:]

    for level in LEVELS:
        a = float(abar[level])
        xt = math.sqrt(a) * x0 + math.sqrt(1 - a) * noise
        for quirk in (1, 0):
            smp = Sampler(abar, quirk)
            for m in METHODS:
                traj = smp.run(m, xt, level - 1, -1, eps)
                make_golden.save(out, f"traj_{m}_q{quirk}_t{level}.npy", torch.stack(traj))
                if level == LEVELS[-1] and quirk == 1:
                    print(f"sampler {m} level {level}: {len(traj) - 1} steps, |x| {float(traj[-1].abs().max()):.4g}")


# --- detection noise (common/rng.h, kernels/philox.h) -----------------------------------------

M32 = 0xFFFFFFFF


def rng_stream(seed, purpose, a, b, c):
    data = b"diffood-rng-v1" + struct.pack("<5Q", seed, purpose, a, b, c)
    h = xxhash.xxh3_128_intdigest(data)  # (high64 << 64) | low64
    lo, hi = h & 0xFFFFFFFFFFFFFFFF, h >> 64
    return (lo & M32, lo >> 32, hi & M32, hi >> 32)


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    for _ in range(10):
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ c3 ^ k1) & M32, p0 & M32
        k0 = (k0 + 0x9E3779B9) & M32
        k1 = (k1 + 0xBB67AE85) & M32
    return c0, c1, c2, c3


def normals(key, n):
    k0, k1, c2, c3 = key
    out = np.empty(n, dtype=np.float32)
    two_pi = 6.283185307179586476925286766559
    for blk in range((n + 3) // 4):
        v = philox4x32_10(blk & M32, blk >> 32, c2, c3, k0, k1)
        for i in (0, 2):
            u0 = (v[i] + 0.5) * (1.0 / 4294967296.0)
            u1 = (v[i + 1] + 0.5) * (1.0 / 4294967296.0)
            r = math.sqrt(-2.0 * math.log(u0))
            ang = two_pi * u1
            for j, z in ((i, r * math.cos(ang)), (i + 1, r * math.sin(ang))):
                if 4 * blk + j < n:
                    out[4 * blk + j] = np.float32(z)
    return out


def noise_golden(out):
    set_id = xxhash.xxh3_64_intdigest(NOISE_STORE_KEY.encode())  # rng_id_str: XXH3-64, seed 0
    cases, keys, vals = [], [], []
    for seed, index, rep in NOISE_CASES:
        key = rng_stream(seed, RNG_NOISE_SAMPLE, set_id, index, rep)
        cases.append((seed - 2 ** 64 if seed >= 2 ** 63 else seed, index, rep))
        keys.append(key)
        vals.append(normals(key, NOISE_CHW))
    make_golden.save(out, "noise_cases.npy", cases, np.int64)
    make_golden.save(out, "noise_keys.npy", keys, np.int64)
    make_golden.save(out, "noise_vals.npy", np.stack(vals))
    with open(os.path.join(out, "noise_store_key.txt"), "w") as f:
        f.write(NOISE_STORE_KEY + "\n")
    print(f"noise: set id {set_id:016x}, {len(cases)} cases of {NOISE_CHW}, first {vals[0][:3]}")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_sampler_golden.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    sampler_golden(out)
    noise_golden(out)


if __name__ == "__main__":
    main()
