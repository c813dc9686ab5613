# The detection pipeline as GNU make rules (ARCHITECTURE.md "Workflows"), included by the
# workflow files (fmnist-mnist.mk, fmnist-split.mk, ci-tiny.mk, cifar10.mk). Make is the engine:
# every target is the completion stamp of one store (STORE/.done), every recipe one stage command.
#
#   ingest ─► train classifier, train denoiser ─► sample (per test set, cached) ─►
#   extract-features (per set, and the training set) ─► score ─► report
#
# A stamp depends on its input stamps, the stage binary, the config file and the text of its own
# command line (OUT/.cmd/NAME, rewritten only when it changes): a changed variable, config or
# binary reruns that stage and what follows it. The stages themselves decide what work is left
# (up to date, resume, incremental), so a rerun after any change computes only what changed, and
# a workflow killed at any moment resumes where it stopped. Every stage gets --force: a store of
# the workflow that was made with other parameters is remade, never mixed.
#
# The including file sets, before including this one:
#   NAME            experiment name (default output folder runs/NAME)
#   CONFIG          config name or file (config/NAME.yml)
#   TRAIN_ARGS      ingest arguments of the ID training set
#   ID_NAME         ID test set name; ID_ARGS its ingest arguments
#   OOD_NAMES       OOD set names; OOD_ARGS_<name> the ingest arguments of each
#
# Variables for the user (make -f workflows/X.mk VAR=value):
#   OUT=dir         output folder (default runs/NAME)
#   CACHE=dir       cache of repeat samples shared by experiments (default runs/cache)
#   DATA=dir        ingested image stores (default OUT/data)
#   TEST_N=n        test images per set (default: the config's data.test_subset, else all)
#   REPEATS=r       sample.repeats;  LEVELS=[0,120,240]  sample.timesteps
#   SET='k=v k=v'   more --set overrides for every stage (e.g. SET='resnet.width=16')
#   THREADS=n       threads per stage (default: all cores)
#   DEVICE=cpu|cuda|auto
#   BIN=dir         the stage binaries (default bin/ of this checkout)
#   CLASSIFIER_CKPT=file, DENOISER_CKPT=file  import these PyTorch/safetensors checkpoints
#                   (bin/import-weights) instead of training the networks
SHELL := /bin/bash
.DELETE_ON_ERROR:
.SUFFIXES:

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
BIN ?= $(ROOT)/bin
OUT ?= $(ROOT)/runs/$(NAME)
CACHE ?= $(ROOT)/runs/cache
DATA ?= $(OUT)/data
CONFIG_FILE := $(firstword $(wildcard $(CONFIG) $(ROOT)/config/$(CONFIG).yml $(ROOT)/config/$(CONFIG)))
SUBSET_SEED ?= 1234

# the config's own data.test_subset when TEST_N is not given (0 = all)
TEST_N ?= $(shell sed -n '/^data:/,/^[a-z]/s/^ *test_subset: *\([0-9]*\).*/\1/p' $(CONFIG_FILE) 2>/dev/null | head -1)

# WORKFLOW_SET: the workflow file's own overrides; SET: the user's (later, so they win)
ALL_SET := $(WORKFLOW_SET) $(SET)
COMMON := --config $(CONFIG_FILE) $(foreach s,$(ALL_SET),--set $(s)) $(if $(THREADS),--threads $(THREADS)) \
  $(if $(DEVICE),--device $(DEVICE))
SAMPLE_SETS := $(if $(REPEATS),--set sample.repeats=$(REPEATS)) $(if $(LEVELS),--set sample.timesteps=$(LEVELS))
SUBSET := $(if $(filter-out 0,$(TEST_N)),--shuffle $(SUBSET_SEED) --limit $(TEST_N))

SETS := $(ID_NAME) $(OOD_NAMES)
CLS := $(OUT)/classifier.store
DEN := $(OUT)/denoiser.store
stamp = $(1)/.done

.PHONY: all check-inputs
all: $(call stamp,$(OUT)/report)
	@echo "report: $(OUT)/report/report.html"

# --- a stage rule: $(call stage,STORE,PREREQUISITES,COMMAND) ------------------------------------
define stage
$(call stamp,$(1)): $(2) $(OUT)/.cmd/$(notdir $(1)) $(CONFIG_FILE) | check-inputs
	@mkdir -p $(dir $(1))
	$(3)
	@touch $$@
$(OUT)/.cmd/$(notdir $(1)): FORCE
	@mkdir -p $$(@D); printf '%s\n' '$(strip $(3))' > $$@.tmp; \
	  if cmp -s $$@.tmp $$@; then rm -f $$@.tmp; else mv $$@.tmp $$@; fi
endef
.PHONY: FORCE
FORCE:

# Inputs, checked before any stage runs: the config parses (every stage would say so, but only
# after others ran), the raw files exist.
check-inputs:
	@test -n "$(CONFIG_FILE)" || { echo "workflow: config '$(CONFIG)' not found (config/$(CONFIG).yml)" >&2; exit 2; }
	@miss=0; for f in $(INPUT_FILES); do test -e "$$f" || { echo "workflow: missing input file $$f" >&2; miss=1; }; done; \
	  if [ $$miss = 1 ]; then echo "workflow: no stage was run$(if $(INPUT_HINT), ($(INPUT_HINT)))" >&2; exit 2; fi
	@$(BIN)/ingest --help >/dev/null || { echo "workflow: no stage binaries in $(BIN) (run make)" >&2; exit 2; }
	@$(BIN)/dstore config --config $(CONFIG_FILE) $(foreach s,$(ALL_SET),--set $(s)) $(SAMPLE_SETS) >/dev/null

# --- data ------------------------------------------------------------------------------------------
$(eval $(call stage,$(DATA)/train.store,$(BIN)/ingest,$(BIN)/ingest $(TRAIN_ARGS) --out $(DATA)/train.store --force --quiet))
$(eval $(call stage,$(DATA)/$(ID_NAME).store,$(BIN)/ingest,$(BIN)/ingest $(ID_ARGS) $(SUBSET) --name $(ID_NAME) --out $(DATA)/$(ID_NAME).store --force --quiet))
$(foreach n,$(OOD_NAMES),$(eval $(call stage,$(DATA)/$(n).store,$(BIN)/ingest,$(BIN)/ingest $(OOD_ARGS_$(n)) $(SUBSET) --name $(n) --out $(DATA)/$(n).store --force --quiet)))

# --- networks --------------------------------------------------------------------------------------
# Trained here, or imported from PyTorch checkpoints (README "Imported weights"): CLASSIFIER_CKPT
# (OpenOOD's best.ckpt; normalised with the training store's mean/std) and DENOISER_CKPT (the
# original project's ema.ckpt), each optional.
INPUT_FILES += $(CLASSIFIER_CKPT) $(DENOISER_CKPT)
ifneq ($(CLASSIFIER_CKPT),)
$(eval $(call stage,$(CLS),$(call stamp,$(DATA)/train.store) $(BIN)/import-weights $(CLASSIFIER_CKPT),\
  $(BIN)/import-weights $(CLASSIFIER_CKPT) --model resnet18 --data $(DATA)/train.store --out $(CLS) $(COMMON) --force))
else
$(eval $(call stage,$(CLS),$(call stamp,$(DATA)/train.store) $(BIN)/train,\
  $(BIN)/train --model classifier --data $(DATA)/train.store --out $(CLS) $(COMMON) --force))
endif
ifneq ($(DENOISER_CKPT),)
$(eval $(call stage,$(DEN),$(BIN)/import-weights $(DENOISER_CKPT),\
  $(BIN)/import-weights $(DENOISER_CKPT) --model unet --out $(DEN) $(COMMON) --force))
else
$(eval $(call stage,$(DEN),$(call stamp,$(DATA)/train.store) $(BIN)/train,\
  $(BIN)/train --model diffusion --data $(DATA)/train.store --out $(DEN) $(COMMON) --force))
endif

# --- detection -------------------------------------------------------------------------------------
define per_set
$(eval $(call stage,$(OUT)/$(1).samples,$(call stamp,$(DATA)/$(1).store) $(call stamp,$(CLS)) $(call stamp,$(DEN)) $(BIN)/sample,\
  $(BIN)/sample --images $(DATA)/$(1).store --denoiser $(DEN) --classifier $(CLS) --out $(OUT)/$(1).samples \
  --cache $(CACHE) $(COMMON) $(SAMPLE_SETS) --force))
$(eval $(call stage,$(OUT)/$(1).features,$(call stamp,$(OUT)/$(1).samples) $(BIN)/extract-features,\
  $(BIN)/extract-features --classifier $(CLS) --samples $(OUT)/$(1).samples --out $(OUT)/$(1).features $(COMMON) --force))
endef
$(foreach n,$(SETS),$(eval $(call per_set,$(n))))
$(eval $(call stage,$(OUT)/train.features,$(call stamp,$(DATA)/train.store) $(call stamp,$(CLS)) $(BIN)/extract-features,\
  $(BIN)/extract-features --classifier $(CLS) --images $(DATA)/train.store --out $(OUT)/train.features $(COMMON) --force))

$(eval $(call stage,$(OUT)/scores.store,$(foreach n,$(SETS) train,$(call stamp,$(OUT)/$(n).features)) $(BIN)/score,\
  $(BIN)/score --id $(OUT)/$(ID_NAME).features $(foreach n,$(OOD_NAMES),--ood $(n)=$(OUT)/$(n).features) \
  --train $(OUT)/train.features --out $(OUT)/scores.store $(COMMON) --force))

$(eval $(call stage,$(OUT)/report,$(call stamp,$(OUT)/scores.store) $(BIN)/report,\
  $(BIN)/report --scores $(OUT)/scores.store --train-log $(CLS) --train-log $(DEN) \
  $(foreach n,$(SETS),--samples $(n)=$(OUT)/$(n).samples) --out $(OUT)/report --config $(CONFIG_FILE) $(foreach s,$(ALL_SET),--set $(s))))
