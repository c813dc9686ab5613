// dstore: the tensor store inspector's private interface: one function per subcommand (each
// parses its own options with common/cli.h and returns a process exit status) and the helpers
// they share (tools/dstore/main.c).
#ifndef DIFFOOD_DSTORE_H
#define DIFFOOD_DSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/cli.h"
#include "common/store.h"

// Subcommands: argv[0] is the subcommand name. Return the exit status.
int dst_ls(int argc, char **argv);
int dst_info(int argc, char **argv);
int dst_show(int argc, char **argv);
int dst_export(int argc, char **argv);
int dst_import(int argc, char **argv);
int dst_verify(int argc, char **argv);
int dst_diff(int argc, char **argv);
int dst_merge(int argc, char **argv);
int dst_config(int argc, char **argv);

// ts_open, remembering the path for the message dstore prints if LMDB faults on a damaged
// data.mdb (exit 1 for verify, 2 otherwise).
int dst_open(ts_store **s, const char *path, unsigned flags);
// Parses argv with spec; returns 0 to go on, or sets *status (help printed: 0; error: 2) and
// returns 1 to stop. *args is always set or NULL.
int dst_parse(cli_args **args, const cli_spec *spec, int argc, char **argv, int *status);
// Prints a cJSON value as one line to stdout and deletes it.
void dst_print_json(cJSON *j);
// Element i of a typed buffer as a double.
double dst_elem(const void *data, ts_dtype dt, size_t i);
// "1.5 GiB"-style size into buf.
const char *dst_bytes(uint64_t n, char *buf, size_t cap);
// Writes a tensor's shape as a cJSON array.
cJSON *dst_shape_json(int rank, const int64_t *shape);

#endif
