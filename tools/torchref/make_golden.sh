#!/usr/bin/env bash
# Regenerates the golden files of the network tests (tests/data/nn/) from the PyTorch
# reference networks (tools/torchref/models.py), in float64. Run from anywhere; needs Debian's
# python3-torch (PYTHON overrides the interpreter). The reference state_dict tsv files are
# copied from ../shared/reference when that folder exists.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
py="${PYTHON:-/usr/bin/python3}"
"$py" "$root/tools/torchref/make_golden.py" "$root/tests/data/nn"
"$py" "$root/tools/torchref/check_names.py" "$root/tests/data/nn"
# the sampler (METHOD.md 6) and the detection noise (tests/test_sampler.c); needs python3-xxhash
"$py" "$root/tools/torchref/make_sampler_golden.py" "$root/tests/data/sampler"
du -sh "$root/tests/data/nn" "$root/tests/data/sampler"
