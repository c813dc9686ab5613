"""Checks that the PyTorch reference networks of tools/torchref/models.py, built with the paper
configurations (CIFAR-10 UNet, ResNet-18 width 64), have exactly the state_dict names and shapes
of the reference tsv files. Usage: check_names.py DIR (holding the two tsv files).
Exit 0 when both match; 1 with the first differences on stderr."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

import models  # noqa: E402


def compare(label, got, want):
    if got == want:
        print(f"{label}: {len(got)} entries match")
        return True
    print(f"{label}: MISMATCH ({len(got)} entries vs {len(want)} in the tsv)", file=sys.stderr)
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            print(f"  entry {i}: got {g}, tsv {w}", file=sys.stderr)
            break
    return False


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "."
    torch.set_num_threads(1)
    ok = compare("unet", models.state_dict_shapes(models.UNet()),
                 models.read_tsv(os.path.join(d, "ddim-unet-cifar10-state-dict.tsv")))
    ok &= compare("resnet18", models.state_dict_shapes(models.ResNet18()),
                  models.read_tsv(os.path.join(d, "resnet18-32x32-state-dict.tsv")))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
