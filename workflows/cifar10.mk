# The paper's setup (METHOD.md, config/cifar10.yml): CIFAR-10 in-distribution; CIFAR-100 and
# TinyImageNet (near-OOD), SVHN, Texture and Places365 (far-OOD) through OpenOOD's image lists.
# For users who have the data and a GPU (DEVICE=cuda); training the paper's UNet takes days.
#   make -f workflows/cifar10.mk CIFAR10=dir OPENOOD_LISTS=dir OPENOOD_IMAGES=dir [DEVICE=cuda]
# Data (nothing is downloaded): CIFAR10 = the folder of the binary version (data_batch_1.bin ..
# data_batch_5.bin, test_batch.bin); OPENOOD_LISTS = OpenOOD v1.5's benchmark_imglist/cifar10
# (test_cifar100.txt, test_tin.txt, test_svhn.txt, test_texture.txt, test_places365.txt);
# OPENOOD_IMAGES = the folder those lists' paths are relative to (images_classic/ ...).
# Every missing file is named before any stage runs.
NAME := cifar10
CONFIG ?= cifar10
ROOT_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
CIFAR10 ?= $(ROOT_DIR)/data/cifar-10-batches-bin
OPENOOD_LISTS ?= $(ROOT_DIR)/data/benchmark_imglist/cifar10
OPENOOD_IMAGES ?= $(ROOT_DIR)/data/images_classic
OOD_LIST = $(OPENOOD_LISTS)/test_$(1).txt
INPUT_FILES = $(foreach i,1 2 3 4 5,$(CIFAR10)/data_batch_$(i).bin) $(CIFAR10)/test_batch.bin \
  $(foreach n,cifar100 tin svhn texture places365,$(call OOD_LIST,$(n))) $(OPENOOD_IMAGES)
INPUT_HINT := see workflows/cifar10.mk for where the data comes from
WORKFLOW_SET := report.near_ood=[cifar100,tin] report.far_ood=[svhn,texture,places365]
TRAIN_ARGS = --format cifar $(foreach i,1 2 3 4 5,--path $(CIFAR10)/data_batch_$(i).bin) --name cifar10_train
ID_NAME := cifar10
ID_ARGS = --format cifar --path $(CIFAR10)/test_batch.bin
OOD_NAMES := cifar100 tin svhn texture places365
$(foreach n,$(OOD_NAMES),$(eval OOD_ARGS_$(n) = --format imglist --list $(call OOD_LIST,$(n)) --root $(OPENOOD_IMAGES) --size 32 --channels 3))
include $(dir $(lastword $(MAKEFILE_LIST)))detect.mk
