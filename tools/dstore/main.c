// dstore: inspect, verify, export/import (NPY), diff and merge tensor stores (ARCHITECTURE.md, "The
// tensor store"). `dstore COMMAND --help` describes each command; errors go to stderr with exit
// status 2 for bad input (missing store, table or key; a file that is not a store), 1 for
// failures (and for `verify`/`diff` finding damage or differences), 0 otherwise.
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "tools/dstore/dstore.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"ls", dst_ls, "ls STORE: tables and record counts"},
    {"info", dst_info, "info STORE: meta, per-table dtype/shape, bytes, compression, LMDB statistics"},
    {"show", dst_show, "show STORE TABLE KEY [--values [N]]: one record's header, statistics, values"},
    {"export", dst_export, "export STORE TABLE --npy FILE [--key K]: records to one NPY file"},
    {"import", dst_import, "import STORE TABLE --npy FILE [--codec C]: NPY slices to records 0..N-1"},
    {"verify", dst_verify, "verify STORE: decode every record and check its checksum"},
    {"diff", dst_diff, "diff A B [--tol X]: tables, keys and values that differ"},
    {"merge", dst_merge, "merge OUT IN...: join stores (shards) into one; differing keys conflict"},
    {"config", dst_config, "config [--config FILE] [--set K=V]: the effective configuration (canonical JSON)"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: dstore COMMAND [options] ...\n\nInspects DiffOOD tensor stores.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) fprintf(f, "  %s\n", commands[i].help);
    fprintf(f, "\nKEY is a decimal integer (42), a comma tuple (3,120,0) or a string (conv_in.weight;\n"
               "s:12 forces a string). 'dstore COMMAND --help' for the options of each command.\n");
}

int dst_open(ts_store **s, const char *path, unsigned flags) {
    return ts_open(s, path, flags); // a crash inside LMDB names the store (store_guard.c)
}

int main(int argc, char **argv) {
    log_set_prog("dstore");
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "dstore: error: unknown command '%s' (see 'dstore --help')\n", argv[1]);
    return 2;
}

// --- shared helpers ----------------------------------------------------------------------------
int dst_parse(cli_args **args, const cli_spec *spec, int argc, char **argv, int *status) {
    int rc = cli_parse(args, spec, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, spec);
        *status = 0;
        return 1;
    }
    if (rc < 0) {
        *status = cli_fail(rc);
        return 1;
    }
    return 0;
}

void dst_print_json(cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    if (s) printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(j);
}

double dst_elem(const void *data, ts_dtype dt, size_t i) {
    switch (dt) {
    case TS_U8: return ((const uint8_t *)data)[i];
    case TS_I32: return ((const int32_t *)data)[i];
    case TS_I64: return (double)((const int64_t *)data)[i];
    case TS_F32: return ((const float *)data)[i];
    case TS_F16: return ts_f16_to_f32(((const uint16_t *)data)[i]);
    case TS_F64: return ((const double *)data)[i];
    default: return 0;
    }
}

const char *dst_bytes(uint64_t n, char *buf, size_t cap) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    if (u == 0) snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else snprintf(buf, cap, "%.1f %s", v, units[u]);
    return buf;
}

cJSON *dst_shape_json(int rank, const int64_t *shape) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < rank; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)shape[i]));
    return a;
}
