# The whole chain on tiny data and networks (config/tiny.yml) in about a minute: what CI runs.
#   make -f workflows/ci-tiny.mk [OUT=runs/ci-tiny] [REPEATS=4]
NAME := ci-tiny
CONFIG ?= tiny
TRAIN_N ?= 600
FMNIST ?= /usr/share/datasets/fashion-mnist
MNIST_DIGITS ?= $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)/data/mnist/package/src/digits
INPUT_FILES = $(FMNIST)/train-images-idx3-ubyte.gz $(FMNIST)/t10k-images-idx3-ubyte.gz $(MNIST_DIGITS)/9.json
INPUT_HINT := make data installs them
TRAIN_ARGS = --format idx --images $(FMNIST)/train-images-idx3-ubyte.gz --labels $(FMNIST)/train-labels-idx1-ubyte.gz \
  --pad 2 --limit $(TRAIN_N) --name fashion_mnist_train
ID_NAME := fashion_mnist
ID_ARGS = --format idx --images $(FMNIST)/t10k-images-idx3-ubyte.gz --labels $(FMNIST)/t10k-labels-idx1-ubyte.gz --pad 2
OOD_NAMES := mnist
OOD_ARGS_mnist = --format mnist-json --path $(MNIST_DIGITS) --pad 2
include $(dir $(lastword $(MAKEFILE_LIST)))detect.mk
