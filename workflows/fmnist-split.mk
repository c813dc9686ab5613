# Near-OOD from real data: the networks learn Fashion-MNIST classes 0-5 only (T-shirt, trouser,
# pullover, dress, coat, sandal); OOD = the test images of classes 6-9 (shirt, sneaker, bag,
# ankle boot: near) and MNIST (far).
#   make -f workflows/fmnist-split.mk [OUT=runs/x] [REPEATS=8] [SET='k=v']
NAME := fmnist-split
CONFIG ?= fmnist
FMNIST ?= /usr/share/datasets/fashion-mnist
MNIST_DIGITS ?= $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)/data/mnist/package/src/digits
INPUT_FILES = $(FMNIST)/train-images-idx3-ubyte.gz $(FMNIST)/train-labels-idx1-ubyte.gz \
  $(FMNIST)/t10k-images-idx3-ubyte.gz $(FMNIST)/t10k-labels-idx1-ubyte.gz $(MNIST_DIGITS)/9.json
INPUT_HINT := make data installs them
WORKFLOW_SET := data.num_classes=6 resnet.num_classes=6 unet.num_classes=6 \
  report.near_ood=[fashion_mnist_6_9] report.far_ood=[mnist]
FM_TEST = --format idx --images $(FMNIST)/t10k-images-idx3-ubyte.gz --labels $(FMNIST)/t10k-labels-idx1-ubyte.gz --pad 2
TRAIN_ARGS = --format idx --images $(FMNIST)/train-images-idx3-ubyte.gz --labels $(FMNIST)/train-labels-idx1-ubyte.gz \
  --pad 2 --classes 0-5 --name fashion_mnist_0_5_train
ID_NAME := fashion_mnist_0_5
ID_ARGS = $(FM_TEST) --classes 0-5
OOD_NAMES := fashion_mnist_6_9 mnist
OOD_ARGS_fashion_mnist_6_9 = $(FM_TEST) --classes 6-9
OOD_ARGS_mnist = --format mnist-json --path $(MNIST_DIGITS) --pad 2
include $(dir $(lastword $(MAKEFILE_LIST)))detect.mk
