// test_ops_ref: compiles the op references (kernels/cpu/ref/) into the test runner. They are
// test-only code, so they live outside the folders the Makefile builds into the library; this
// translation unit is their one home (it defines no suite).
#include "kernels/cpu/ref/ref_misc.c"
#include "kernels/cpu/ref/ref_nn.c"
