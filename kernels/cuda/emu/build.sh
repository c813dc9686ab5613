#!/usr/bin/env bash
# Builds the CUDA backend's sources against the host emulator (kernels/cuda/emu/): kernel launches
# `k<<<grid, block, smem, stream>>>(args)` are rewritten to emu_launch calls (line numbers kept),
# the files compiled with g++ into OUT/libdiffood_cuda.so, the emulated cuBLAS into
# OUT/libcublas.so.emu beside it. Run any program against it with DIFFOOD_CUDA_LIB, e.g.
#   kernels/cuda/emu/build.sh /tmp/emu && DIFFOOD_CUDA_LIB=/tmp/emu/libdiffood_cuda.so bin/gpu-check-ops
# It runs the backend's own kernels, its cuBLAS calls (column-major mapping) and its cuDNN calls
# (descriptors, padding, alpha/beta) on the CPU: a check of indexing and plumbing, not of speed,
# of real cuDNN/cuBLAS behaviour, or of races between GPU threads.
set -euo pipefail
OUT=${1:?usage: build.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
mkdir -p "$OUT/src"
CXX=${CXX:-g++}
FLAGS=(-std=c++17 -O2 -g -fPIC -fvisibility=hidden -Wall -Wextra -Werror -Wno-unused-parameter
       -Wno-unused-function -I"$HERE/include" -I"$ROOT")
for f in "$ROOT"/kernels/cuda/*.cu; do
  /usr/bin/python3 - "$f" "$OUT/src/$(basename "${f%.cu}").cpp" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
out, i = [], 0
pat = re.compile(r'(\w+)<<<')
while True:
    m = pat.search(src, i)
    if not m:
        out.append(src[i:]); break
    out.append(src[i:m.start()])
    j = src.index('>>>', m.end())
    cfg = src[m.end():j]
    # split the launch configuration at top-level commas
    parts, depth, cur = [], 0, ''
    for ch in cfg:
        if ch in '([': depth += 1
        if ch in ')]': depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur); cur = ''
        else:
            cur += ch
    parts.append(cur)
    k = src.index('(', j)
    depth, e = 0, k
    while True:
        if src[e] == '(': depth += 1
        elif src[e] == ')':
            depth -= 1
            if depth == 0: break
        e += 1
    args = src[k + 1:e]
    nl = cfg.count('\n')
    extra = ''.join(', ' + q for q in parts[2:4])
    out.append('emu_launch(dim3(%s), dim3(%s), [&]() { %s(%s); }%s)%s' % (parts[0], parts[1], m.group(1), args, extra,
                                                                          '\n' * nl))
    i = e + 1
open(sys.argv[2], 'w').write('#line 1 "%s"\n' % sys.argv[1] + ''.join(out))
PY
done
objs=()
for f in "$OUT"/src/*.cpp "$HERE/emu_runtime.cpp"; do
  o="$OUT/$(basename "${f%.cpp}").o"
  "$CXX" "${FLAGS[@]}" -c "$f" -o "$o"
  objs+=("$o")
done
"$CXX" -shared "${objs[@]}" -o "$OUT/libdiffood_cuda.so" -Wl,-rpath,'$ORIGIN' -Wl,--disable-new-dtags -ldl -lpthread
"$CXX" "${FLAGS[@]}" -fvisibility=default -shared "$HERE/emu_cublas.cpp" -o "$OUT/libcublas.so.emu"
echo "emulated CUDA backend: $OUT/libdiffood_cuda.so"
