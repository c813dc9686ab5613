#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the reference scripts need; quiet and
# quick when everything is there. Run by `make deps` (and so by `make` and `make test`).
# `install-deps.sh build` installs only what building and running the stages needs (make run);
# without it, also the test and reference packages (Check, PyTorch, scikit-learn); `fuzz`: clang and
# libFuzzer for `make fuzz`.
set -euo pipefail
pkgs=(build-essential pkg-config liblmdb-dev lmdb-utils libzstd-dev libyaml-dev
      libopenblas-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev libxxhash-dev libcjson-dev)
# `install-deps.sh fuzz`: only what `make fuzz` needs (Debian's clang and its libFuzzer runtime)
if [ "${1:-all}" = fuzz ]; then pkgs=(clang libclang-rt-14-dev liblmdb-dev libzstd-dev libyaml-dev libxxhash-dev
                                     libpng-dev libjpeg62-turbo-dev libcjson-dev zlib1g-dev); fi
[ "${1:-all}" = build ] || [ "${1:-all}" = fuzz ] || pkgs+=(check libsubunit-dev python3-numpy python3-torch python3-sklearn python3-xxhash)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
