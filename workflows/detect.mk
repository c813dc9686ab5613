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
#   SHARDS=n        cut sample and extract-features of every set (and the training set's
#                   features) into n image ranges (--shard I/n), stores OUT/shards/*.I, joined
#                   by dstore merge into the stores one unsharded run makes (default 1: none).
#                   Shards keep their samples in their own stores, not in CACHE (a store has one
#                   writing host at a time; n shards on n nodes would share one cache entry).
#   INGEST_SHARDS=n ingest the test sets in n shards (large image lists), joined likewise
#   CACHE=          (empty) no cache: samples stay in the samples stores
#   CLASSIFIER_CKPT=file, DENOISER_CKPT=file  import these PyTorch/safetensors checkpoints
#                   (bin/import-weights) instead of training the networks
#
# Targets besides the report (for batch schedulers, workflows/slurm/): data, classifier,
# denoiser, shard-I (every shard-I store of sample and extract-features), ingest-shard-I.
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
SHARDS ?= 1
INGEST_SHARDS ?= 1
shard_ids = $(shell seq 0 $$(( $(1) - 1 )))
SHARD_IDS := $(call shard_ids,$(SHARDS))
INGEST_SHARD_IDS := $(call shard_ids,$(INGEST_SHARDS))
SHARD_DIR := $(OUT)/shards
CLS := $(OUT)/classifier.store
DEN := $(OUT)/denoiser.store
stamp = $(1)/.done

.PHONY: all check-inputs data classifier denoiser
all: $(call stamp,$(OUT)/report)
	@echo "report: $(OUT)/report/report.html"
data: $(foreach n,train $(SETS),$(call stamp,$(DATA)/$(n).store))
classifier: $(call stamp,$(CLS))
denoiser: $(call stamp,$(DEN))

# --- a stage rule: $(call stage,STORE,PREREQUISITES,COMMAND) ------------------------------------
define stage
$(call stamp,$(1)): $(2) $(OUT)/.cmd/$(notdir $(1)) $(CONFIG_FILE) | check-inputs
	@mkdir -p $(dir $(1))
	$(3)
	@touch $$@
$(OUT)/.cmd/$(notdir $(1)): FORCE
	@mkdir -p $$(@D); printf '%s\n' '$(strip $(3))' > $$@.tmp$$$$$$$$; \
	  if cmp -s $$@.tmp$$$$$$$$ $$@; then rm -f $$@.tmp$$$$$$$$; else mv $$@.tmp$$$$$$$$ $$@; fi
endef
# (the temporary file is per process: the jobs of a scheduler run make side by side in one OUT)

# --- a store joined from shards: $(call merged,STORE,SHARD_STORES) -------------------------------
# dstore merge into STORE.merging, then in place of STORE (a rerun never merges into old content).
define merged
$(call stage,$(1),$(foreach s,$(2),$(call stamp,$(s))) $(BIN)/dstore,\
  rm -rf $(1).merging && $(BIN)/dstore merge $(1).merging $(2) && rm -rf $(1) && mv $(1).merging $(1))
endef
.PHONY: FORCE
FORCE:
# make -f W.mk print-OUT: a variable's value (for scripts such as workflows/slurm/submit)
print-%:
	@echo '$($*)'

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
ARGS_$(ID_NAME) = $(ID_ARGS)
$(foreach n,$(OOD_NAMES),$(eval ARGS_$(n) = $(OOD_ARGS_$(n))))
ingest_cmd = $(BIN)/ingest $(ARGS_$(1)) $(SUBSET) --name $(1) --out $(2) --force --quiet $(3)
ifeq ($(INGEST_SHARDS),1)
$(foreach n,$(SETS),$(eval $(call stage,$(DATA)/$(n).store,$(BIN)/ingest,$(call ingest_cmd,$(n),$(DATA)/$(n).store))))
else
ingest_shard = $(DATA)/shards/$(1).store.$(2)
$(foreach n,$(SETS),$(foreach i,$(INGEST_SHARD_IDS),$(eval $(call stage,$(call ingest_shard,$(n),$(i)),$(BIN)/ingest,\
  $(call ingest_cmd,$(n),$(call ingest_shard,$(n),$(i)),--shard $(i)/$(INGEST_SHARDS))))))
$(foreach n,$(SETS),$(eval $(call merged,$(DATA)/$(n).store,$(foreach i,$(INGEST_SHARD_IDS),$(call ingest_shard,$(n),$(i))))))
endif
.PHONY: $(foreach i,$(INGEST_SHARD_IDS),ingest-shard-$(i))
$(foreach i,$(INGEST_SHARD_IDS),$(eval ingest-shard-$(i): $(if $(filter-out 1,$(INGEST_SHARDS)),\
  $(foreach n,$(SETS),$(call stamp,$(call ingest_shard,$(n),$(i)))),data)))

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
# $(call sample_rule,SET,OUT_STORE,EXTRA) and $(call features_rule,SAMPLES_STORE,OUT_STORE)
sample_rule = $(call stage,$(2),$(call stamp,$(DATA)/$(1).store) $(call stamp,$(CLS)) $(call stamp,$(DEN)) $(BIN)/sample,\
  $(BIN)/sample --images $(DATA)/$(1).store --denoiser $(DEN) --classifier $(CLS) --out $(2) \
  $(3) $(COMMON) $(SAMPLE_SETS) --force)
features_rule = $(call stage,$(2),$(call stamp,$(1)) $(BIN)/extract-features,\
  $(BIN)/extract-features --classifier $(CLS) --samples $(1) --out $(2) $(COMMON) --force)
train_features_rule = $(call stage,$(1),$(call stamp,$(DATA)/train.store) $(call stamp,$(CLS)) $(BIN)/extract-features,\
  $(BIN)/extract-features --classifier $(CLS) --images $(DATA)/train.store --out $(1) $(2) $(COMMON) --force)
ifeq ($(SHARDS),1)
$(foreach n,$(SETS),$(eval $(call sample_rule,$(n),$(OUT)/$(n).samples,$(if $(CACHE),--cache $(CACHE)))))
$(foreach n,$(SETS),$(eval $(call features_rule,$(OUT)/$(n).samples,$(OUT)/$(n).features)))
$(eval $(call train_features_rule,$(OUT)/train.features))
else
# shard I of every set: samples (their own records), their features, and the training set's
shard_store = $(SHARD_DIR)/$(1).$(2)
$(foreach n,$(SETS),$(foreach i,$(SHARD_IDS),\
  $(eval $(call sample_rule,$(n),$(call shard_store,$(n).samples,$(i)),--shard $(i)/$(SHARDS)))\
  $(eval $(call features_rule,$(call shard_store,$(n).samples,$(i)),$(call shard_store,$(n).features,$(i))))))
$(foreach i,$(SHARD_IDS),$(eval $(call train_features_rule,$(call shard_store,train.features,$(i)),--shard $(i)/$(SHARDS))))
$(foreach n,$(SETS:%=%.samples) $(SETS:%=%.features) train.features,\
  $(eval $(call merged,$(OUT)/$(n),$(foreach i,$(SHARD_IDS),$(call shard_store,$(n),$(i))))))
endif
.PHONY: $(foreach i,$(SHARD_IDS),shard-$(i))
$(foreach i,$(SHARD_IDS),$(eval shard-$(i): $(if $(filter-out 1,$(SHARDS)),\
  $(foreach n,$(SETS:%=%.features) train.features,$(call stamp,$(call shard_store,$(n),$(i)))),\
  $(foreach n,$(SETS:%=%.features) train.features,$(call stamp,$(OUT)/$(n))))))

$(eval $(call stage,$(OUT)/scores.store,$(foreach n,$(SETS) train,$(call stamp,$(OUT)/$(n).features)) $(BIN)/score,\
  $(BIN)/score --id $(OUT)/$(ID_NAME).features $(foreach n,$(OOD_NAMES),--ood $(n)=$(OUT)/$(n).features) \
  --train $(OUT)/train.features --out $(OUT)/scores.store $(COMMON) --force))

$(eval $(call stage,$(OUT)/report,$(call stamp,$(OUT)/scores.store) $(foreach n,$(SETS),$(call stamp,$(OUT)/$(n).samples)) $(BIN)/report,\
  $(BIN)/report --scores $(OUT)/scores.store --train-log $(CLS) --train-log $(DEN) \
  $(foreach n,$(SETS),--samples $(n)=$(OUT)/$(n).samples) --out $(OUT)/report --config $(CONFIG_FILE) $(foreach s,$(ALL_SET),--set $(s))))
