"""PyTorch reference networks with the reference state_dict names (METHOD.md sections 4-5).

`UNet` is the DDIM repository's `Model` made class-conditional the DiffOOD way (an embedding
`label_emb` of K+1 rows, the last being the null label, added to the time embedding after
`temb.dense.1`). `ResNet18` is OpenOOD's ResNet18_32x32 (3x3 stem, no max-pool, BasicBlocks,
`fc`) with a width multiplier (`width` = channels of the first stage, 64 in the reference) and a
configurable number of input channels. Both are used by make_golden.py to write the golden files
that tests/test_unet.c and tests/test_resnet.c compare the C networks against.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# --- UNet (DDIM Model + label embedding) -----------------------------------------------------

def timestep_embedding(t, dim):
    half = dim // 2
    f = math.log(10000) / (half - 1)
    f = torch.exp(torch.arange(half, dtype=torch.float64, device=t.device) * -f).to(t.dtype)
    e = t[:, None] * f[None, :]
    e = torch.cat([torch.sin(e), torch.cos(e)], dim=1)
    if dim % 2 == 1:
        e = F.pad(e, (0, 1, 0, 0))
    return e


def swish(x):
    return x * torch.sigmoid(x)


def norm(c, groups):
    return nn.GroupNorm(num_groups=groups, num_channels=c, eps=1e-6, affine=True)


class Upsample(nn.Module):
    def __init__(self, c, with_conv):
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x) if self.with_conv else x


class Downsample(nn.Module):
    def __init__(self, c, with_conv):
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = nn.Conv2d(c, c, 3, 2, 0)

    def forward(self, x):
        if self.with_conv:
            return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0))
        return F.avg_pool2d(x, 2, 2)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout, temb_ch, dropout, groups):
        super().__init__()
        self.cin, self.cout = cin, cout
        self.norm1 = norm(cin, groups)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.temb_proj = nn.Linear(temb_ch, cout)
        self.norm2 = norm(cout, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1, 1, 0)

    def forward(self, x, temb):
        h = self.conv1(swish(self.norm1(x)))
        h = h + self.temb_proj(swish(temb))[:, :, None, None]
        h = self.conv2(self.dropout(swish(self.norm2(h))))
        if self.cin != self.cout:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.norm = norm(c, groups)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).permute(0, 2, 1)
        k = k.reshape(b, c, hh * ww)
        w = torch.bmm(q, k) * (int(c) ** (-0.5))
        w = F.softmax(w, dim=2)
        v = v.reshape(b, c, hh * ww)
        h = torch.bmm(v, w.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(h)


class UNet(nn.Module):
    def __init__(self, ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,),
                 dropout=0.1, resamp_with_conv=True, in_channels=3, out_ch=3, image_size=32,
                 num_classes=10, num_groups=32):
        super().__init__()
        self.ch, self.temb_ch = ch, ch * 4
        self.num_resolutions = len(ch_mult)
        self.num_res_blocks = num_res_blocks
        g = num_groups
        self.temb = nn.Module()
        self.temb.dense = nn.ModuleList([nn.Linear(ch, self.temb_ch), nn.Linear(self.temb_ch, self.temb_ch)])
        self.conv_in = nn.Conv2d(in_channels, ch, 3, 1, 1)
        curr = image_size
        in_ch_mult = (1,) + tuple(ch_mult)
        self.down = nn.ModuleList()
        block_in = None
        for i in range(self.num_resolutions):
            block, attn = nn.ModuleList(), nn.ModuleList()
            block_in, block_out = ch * in_ch_mult[i], ch * ch_mult[i]
            for _ in range(num_res_blocks):
                block.append(ResnetBlock(block_in, block_out, self.temb_ch, dropout, g))
                block_in = block_out
                if curr in attn_resolutions:
                    attn.append(AttnBlock(block_in, g))
            down = nn.Module()
            down.block, down.attn = block, attn
            if i != self.num_resolutions - 1:
                down.downsample = Downsample(block_in, resamp_with_conv)
                curr //= 2
            self.down.append(down)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, self.temb_ch, dropout, g)
        self.mid.attn_1 = AttnBlock(block_in, g)
        self.mid.block_2 = ResnetBlock(block_in, block_in, self.temb_ch, dropout, g)
        self.up = nn.ModuleList()
        for i in reversed(range(self.num_resolutions)):
            block, attn = nn.ModuleList(), nn.ModuleList()
            block_out = ch * ch_mult[i]
            skip_in = ch * ch_mult[i]
            for b in range(num_res_blocks + 1):
                if b == num_res_blocks:
                    skip_in = ch * in_ch_mult[i]
                block.append(ResnetBlock(block_in + skip_in, block_out, self.temb_ch, dropout, g))
                block_in = block_out
                if curr in attn_resolutions:
                    attn.append(AttnBlock(block_in, g))
            up = nn.Module()
            up.block, up.attn = block, attn
            if i != 0:
                up.upsample = Upsample(block_in, resamp_with_conv)
                curr *= 2
            self.up.insert(0, up)
        self.norm_out = norm(block_in, g)
        self.conv_out = nn.Conv2d(block_in, out_ch, 3, 1, 1)
        self.label_emb = nn.Embedding(num_classes + 1, self.temb_ch)

    def forward(self, x, t, y):
        temb = timestep_embedding(t, self.ch)
        temb = self.temb.dense[1](swish(self.temb.dense[0](temb)))
        temb = temb + self.label_emb(y)
        hs = [self.conv_in(x)]
        for i in range(self.num_resolutions):
            for b in range(self.num_res_blocks):
                h = self.down[i].block[b](hs[-1], temb)
                if len(self.down[i].attn) > 0:
                    h = self.down[i].attn[b](h)
                hs.append(h)
            if i != self.num_resolutions - 1:
                hs.append(self.down[i].downsample(hs[-1]))
        h = hs[-1]
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h, temb)), temb)
        for i in reversed(range(self.num_resolutions)):
            for b in range(self.num_res_blocks + 1):
                h = self.up[i].block[b](torch.cat([h, hs.pop()], dim=1), temb)
                if len(self.up[i].attn) > 0:
                    h = self.up[i].attn[b](h)
            if i != 0:
                h = self.up[i].upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


# --- ResNet-18 for 32x32 (OpenOOD ResNet18_32x32) --------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, num_classes=10, width=64, in_channels=3):
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(width, 2, 1)
        self.layer2 = self._make_layer(width * 2, 2, 2)
        self.layer3 = self._make_layer(width * 4, 2, 2)
        self.layer4 = self._make_layer(width * 8, 2, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 8, num_classes)

    def _make_layer(self, planes, n, stride):
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
        feature = self.avgpool(h).flatten(1)
        return self.fc(feature), feature


def state_dict_shapes(model):
    """[(name, [shape...])] in state_dict order (buffers included), as the reference tsv lists them."""
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


def read_tsv(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            name, shape = line.split("\t")
            shape = shape.strip("[]").strip()
            out.append((name, [int(s) for s in shape.split(",")] if shape else []))
    return out
