// ingest: raw dataset files (IDX, MNIST JSON, CIFAR binary, image lists, NPY) -> an image store.
//
// Output store: table `image` (u8, C x H x W per record) and table `label` (i32 scalar), keyed
// by the output index (ts_key_u64); meta: the stage contract fields (common/stage.h) plus
// `dataset`, `format`, `sources` (JSON [{path, xxh3}]), `count`, `class_counts` (JSON {label:
// n}), `shape` ([C,H,W]), `mean` and `std` (per channel, over pixel/255 of the stored images,
// population std), `pad`. The stage key covers the options that shape the content and the
// content hashes of the source files, so a rerun with the same inputs is "up to date" without
// reading the data, a rerun after a kill resumes, and a changed input or option is refused
// unless --force.
//
// --shard I/N stores only the contiguous part [I*n/N, (I+1)*n/N) of the n selected images (same
// keys as the whole run) for a cluster's job array; meta `request` {"begin","end","count","shard"}
// tells `dstore merge`, which joins the shards into the store one unsharded run gives.
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/imgstats.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/samples.h"
#include "common/stage.h"
#include "common/store.h"
#include "datasets/source.h"

#define INGEST_VERSION 1
#define INGEST_MAX_CLASS DS_MAX_CLASSES
#define INGEST_MAX_PAD 1024

static const cli_opt ingest_opts[] = {
    {"format", "FMT", 0, "input format: idx, mnist-json, cifar, imglist, npy"},
    {"images", "FILE", 0, "idx: images idx3 file (.gz or raw); npy: uint8 image array"},
    {"labels", "FILE", 0, "idx: labels idx1 file; npy: integer labels (optional)"},
    {"path", "PATH", 1, "mnist-json: the digits directory; cifar: a binary file (repeat, or list several)"},
    {"cifar", "KIND", 0, "cifar: 10 (default), 100 / 100-fine, 100-coarse"},
    {"layout", "L", 0, "npy: auto (default), nhw, nhwc, nchw (auto: the axis of size 1, 3 or 4)"},
    {"list", "FILE", 0, "imglist: OpenOOD list, 'relative/path label' per line"},
    {"root", "DIR", 0, "imglist: directory the listed paths are relative to"},
    {"size", "S", 0, "imglist: resize the shorter side to S (bilinear) and centre-crop S x S (1..65536)"},
    {"num-classes", "K", 0, "idx, npy, imglist: labels must be 0..K-1 (npy, imglist: or -1 = OOD); default: idx 10 "
                            "(MNIST, Fashion-MNIST), npy and imglist 65536"},
    {"out", "STORE", 0, "output store (created; required)"},
    {"limit", "N", 0, "keep only the first N images (after --classes and --shuffle)"},
    {"shuffle", "SEED", 0, "take the images in a random order drawn from SEED (with --limit: a random subset; "
                           "MNIST's JSON files are sorted by digit)"},
    {"classes", "LIST", 0, "keep only these labels, e.g. 0,3,7 or 0-4"},
    {"pad", "P", 0, "zero-pad P pixels on every side (default 0)"},
    {"channels", "C", 0, "convert to 1 or 3 channels (default: as the source; imglist 3)"},
    {"name", "NAME", 0, "dataset name recorded in meta (default: the store's directory name)"},
    {"batch", "N", 0, "records per commit (default 1000; does not change the output)"},
    {"force", NULL, 0, "replace an existing store that holds other results"},
    {"shard", "I/N", 0, "only part I of N (0 <= I < N) of the selected images (join the parts with dstore merge)"},
    {0}};

static const cli_spec ingest_spec = {
    "ingest", "--format FMT [format options] --out STORE [options]",
    "Reads a raw dataset into an image store (uint8 C x H x W images, int32 labels), with the\n"
    "dataset's per-channel mean and std in meta. Reruns with the same inputs are 'up to date';\n"
    "a killed run resumes; another input or option into an existing store needs --force.\n"
    "Config keys (optional, overridden by options): ingest.pad, ingest.channels, ingest.limit,\n"
    "ingest.classes, ingest.name.",
    ingest_opts, CLI_STD_ALL, 0, -1};

typedef struct {
    ds_source_spec spec;
    const char *out, *classes, *name;
    long limit, pad, batch, shuffle; // shuffle -1: source order
    int force;
    char classes_origin[1200], name_origin[1200]; // where --classes / --name came from (messages)
    char *name_buf;     // default name (owned)
    const char **paths; // --path values then positional words (cifar)
    int n_paths;
} ingest_opts_t;

// --- options -------------------------------------------------------------------------------

// Option --NAME, else config key ingest.NAME (when a config was loaded), else def; lo..hi. A bad
// value is named where it came from: the option, or the key and its origin (file:line, --set).
// `rule` describes the valid values ("0..1024", "1 or 3"); values outside lo..hi or equal to
// `not` (-1: none) are refused.
static int ingest_int_opt(const cli_args *a, const cfg *c, const char *name, long def, long lo, long hi, long not,
                          const char *rule, long *out) {
    const cfg *node = NULL;
    char key[64];
    snprintf(key, sizeof key, "ingest.%s", name);
    if (!cli_has(a, name) && c && (node = cfg_find(c, key))) {
        int64_t v;
        ERR_TRY(cfg_get_i64(c, key, &v));
        ERR_IF(v < lo || v > hi || v == not, ERR_CONFIG, "config key %s must be %s, not %lld (from %s)", key, rule,
               (long long)v, cfg_node_origin(node));
        *out = (long)v;
        return 0;
    }
    ERR_TRY(cli_get_int(a, name, def, out));
    ERR_IF(*out < lo || *out > hi || *out == not, ERR_USAGE, "--%s must be %s, not %ld", name, rule, *out);
    return 0;
}

// Option --NAME, else config key ingest.NAME ("" = unset); *origin says where it came from
// ("--NAME", or "config key ingest.NAME (from ORIGIN)") for messages, in buf.
static int ingest_str_opt(const cli_args *a, const cfg *c, const char *name, const char **out, char *origin,
                          size_t cap) {
    char key[64];
    *out = cli_get(a, name);
    snprintf(origin, cap, "--%s", name);
    snprintf(key, sizeof key, "ingest.%s", name);
    const cfg *node = NULL;
    if (!*out && c && (node = cfg_find(c, key))) {
        ERR_TRY(cfg_get_str(c, key, out));
        snprintf(origin, cap, "config key %s (from %s)", key, cfg_node_origin(node));
        if (!**out) *out = NULL;
    }
    return 0;
}

static int ingest_parse(const cli_args *a, const cfg *c, ingest_opts_t *o) {
    memset(o, 0, sizeof *o);
    const char *fmt = cli_get(a, "format");
    ERR_IF(!fmt, ERR_USAGE, "--format is required (idx, mnist-json, cifar, imglist, npy)");
    ERR_TRY(ds_format_from_name(fmt, &o->spec.format));
    o->out = cli_get(a, "out");
    ERR_IF(!o->out, ERR_USAGE, "--out STORE is required");
    o->spec.images = cli_get(a, "images");
    o->spec.labels = cli_get(a, "labels");
    o->spec.list = cli_get(a, "list");
    o->spec.root = cli_get(a, "root");
    o->spec.cifar = CIFAR_10;
    if (cli_get(a, "cifar")) ERR_TRY(cifar_kind_from_name(cli_get(a, "cifar"), &o->spec.cifar));
    o->spec.layout = NPYIMG_AUTO;
    if (cli_get(a, "layout")) ERR_TRY(npyimg_layout_from_name(cli_get(a, "layout"), &o->spec.layout));
    long size, channels, num_classes;
    ERR_TRY(cli_get_int(a, "size", 0, &size));
    ERR_IF(cli_has(a, "size") && (size < 1 || size > 65536), ERR_USAGE, "--size must be 1..65536, not %ld", size);
    ERR_IF(cli_has(a, "size") && o->spec.format != DS_FMT_IMGLIST, ERR_USAGE,
           "--size applies to --format imglist only (the other formats keep their size)");
    o->spec.size = (int)size;
    ERR_TRY(cli_get_int(a, "num-classes", 0, &num_classes));
    ERR_IF(cli_has(a, "num-classes") && (num_classes < 1 || num_classes > DS_MAX_CLASSES), ERR_USAGE,
           "--num-classes must be 1..%d, not %ld", DS_MAX_CLASSES, num_classes);
    o->spec.num_classes = (int)num_classes;
    ERR_TRY(ingest_int_opt(a, c, "channels", 0, 0, 3, 2, "1 or 3 (0: as the source)", &channels));
    o->spec.channels = (int)channels;
    ERR_TRY(ingest_int_opt(a, c, "pad", 0, 0, INGEST_MAX_PAD, -1, "0..1024", &o->pad));
    ERR_TRY(ingest_int_opt(a, c, "limit", 0, 0, INT64_MAX / 2, -1, ">= 0 (0: all)", &o->limit));
    ERR_TRY(cli_get_int(a, "shuffle", -1, &o->shuffle));
    ERR_IF(cli_has(a, "shuffle") && o->shuffle < 0, ERR_USAGE, "--shuffle SEED must be >= 0, not %ld", o->shuffle);
    ERR_TRY(cli_get_int(a, "batch", 1000, &o->batch));
    ERR_IF(o->batch < 1 || o->batch > 1000000, ERR_USAGE, "--batch must be 1..1000000, not %ld", o->batch);
    ERR_TRY(ingest_str_opt(a, c, "classes", &o->classes, o->classes_origin, sizeof o->classes_origin));
    ERR_TRY(ingest_str_opt(a, c, "name", &o->name, o->name_origin, sizeof o->name_origin));
    o->force = cli_has(a, "force");
    size_t np = cli_count(a, "path"), npos = cli_npos(a);
    ERR_IF(npos > 0 && o->spec.format != DS_FMT_CIFAR, ERR_USAGE, "unexpected argument '%s'", cli_pos(a, 0));
    o->paths = calloc(np + npos + 1, sizeof *o->paths);
    ERR_IF(!o->paths, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < np; i++) o->paths[o->n_paths++] = cli_value(a, "path", i);
    for (size_t i = 0; i < npos; i++) o->paths[o->n_paths++] = cli_pos(a, i);
    o->spec.paths = o->paths;
    o->spec.n_paths = o->n_paths;
    if (!o->name) { // the last component of --out, trailing slashes ignored
        size_t len = strlen(o->out);
        while (len > 1 && o->out[len - 1] == '/') len--;
        size_t start = len;
        while (start > 0 && o->out[start - 1] != '/') start--;
        o->name_buf = strndup(o->out + start, len - start);
        ERR_IF(!o->name_buf, ERR_NOMEM, "out of memory");
        o->name = o->name_buf;
    }
    return ds_source_check_spec(&o->spec);
}

// The parameters that determine the content, as a JSON object. The shuffle seed goes in as its
// exact decimal text (a cJSON number is a double: seeds above 2^53 would share a key); for seeds
// below 2^53 the text is the one cJSON printed, so existing keys stay.
static cJSON *ingest_params(const ingest_opts_t *o) {
    cJSON *p = cJSON_CreateObject();
    char seed[32];
    if (!p) return NULL;
    cJSON_AddStringToObject(p, "format", ds_format_name(o->spec.format));
    cJSON_AddStringToObject(p, "name", o->name);
    cJSON_AddNumberToObject(p, "limit", (double)o->limit);
    cJSON_AddStringToObject(p, "classes", o->classes ? o->classes : "all");
    snprintf(seed, sizeof seed, "%ld", o->shuffle);
    if (o->shuffle >= 0 && !cJSON_AddRawToObject(p, "shuffle", seed)) {
        cJSON_Delete(p);
        return NULL;
    }
    cJSON_AddNumberToObject(p, "pad", (double)o->pad);
    cJSON_AddNumberToObject(p, "channels", o->spec.channels);
    if (o->spec.format == DS_FMT_IMGLIST) cJSON_AddNumberToObject(p, "size", o->spec.size);
    if (o->spec.format == DS_FMT_CIFAR) cJSON_AddStringToObject(p, "cifar", cifar_kind_name(o->spec.cifar));
    if (o->spec.format == DS_FMT_NPY) cJSON_AddStringToObject(p, "layout", npyimg_layout_name(o->spec.layout));
    return p;
}

// --- meta ------------------------------------------------------------------------------------

// Writes the dataset facts into meta (inside the open batch).
static int ingest_write_meta(ts_store *s, const ingest_opts_t *o, const cJSON *files, int h, int w,
                             const imgstats *st) {
    int rc = 0;
    char buf[128], *sources = cJSON_PrintUnformatted(files);
    ERR_IF(!sources, ERR_NOMEM, "out of memory");
    ERR_GOTO(rc, ts_meta_put(s, "dataset", o->name));
    ERR_GOTO(rc, ts_meta_put(s, "format", ds_format_name(o->spec.format)));
    ERR_GOTO(rc, ts_meta_put(s, "sources", sources));
    ERR_GOTO(rc, imgstats_meta_put(s, st)); // count, class_counts, mean, std
    snprintf(buf, sizeof buf, "[%d,%d,%d]", st->c, h, w);
    ERR_GOTO(rc, ts_meta_put(s, "shape", buf));
    snprintf(buf, sizeof buf, "%ld", o->pad);
    ERR_GOTO(rc, ts_meta_put(s, "pad", buf));
fail:
    free(sources);
    return rc;
}

// --- the work ------------------------------------------------------------------------------

// Indices of the source images to store, in order: those whose label passes --classes, at most
// --limit of them. *sel is malloc'd.
static int ingest_select(const ds_source *src, const ingest_opts_t *o, int64_t **sel, int64_t *n_sel) {
    uint8_t *mask = NULL;
    *sel = malloc(sizeof **sel * (size_t)(src->n ? src->n : 1));
    ERR_IF(!*sel, ERR_NOMEM, "out of memory");
    if (o->classes) {
        mask = malloc(INGEST_MAX_CLASS);
        ERR_IF(!mask, ERR_NOMEM, "out of memory");
        int rc = ds_parse_classes(o->classes, mask, INGEST_MAX_CLASS);
        if (rc < 0) {
            free(mask);
            if (strncmp(o->classes_origin, "--", 2) == 0) return rc;
            char msg[1024]; // ds_parse_classes names "--classes": say it was the config key
            const char *m = err_msg();
            snprintf(msg, sizeof msg, "%s", strncmp(m, "--classes", 9) == 0 ? m + 9 : m);
            return err_set(ERR_CONFIG, "%s%s", o->classes_origin, msg);
        }
    }
    int64_t n = 0;
    for (int64_t i = 0; i < src->n && (o->shuffle >= 0 || o->limit == 0 || n < o->limit); i++) {
        int32_t lab = ds_source_label(src, i);
        if (mask && (lab < 0 || lab >= INGEST_MAX_CLASS || !mask[lab])) continue;
        (*sel)[n++] = i;
    }
    free(mask);
    if (o->shuffle >= 0 && n > 1) { // Fisher-Yates over the candidates (RNG_SUBSET of the seed)
        ERR_IF(n > UINT32_MAX, ERR_INPUT, "--shuffle: too many images (%lld)", (long long)n);
        philox_key k = rng_stream((uint64_t)o->shuffle, RNG_SUBSET, 0, 0, 0);
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = rng_randint(k, (uint64_t)i, (uint32_t)(i + 1)), t = (*sel)[i];
            (*sel)[i] = (*sel)[j];
            (*sel)[j] = t;
        }
        if (o->limit > 0 && n > o->limit) n = o->limit;
    }
    *n_sel = n;
    ERR_IF(n == 0, ERR_INPUT, "no images left to store (classes: %s)", o->classes ? o->classes : "all");
    return 0;
}

typedef struct {
    int64_t written, kept;
} ingest_counts;

#define INGEST_CHUNK 64 // images decoded side by side (image lists), then written in order

// Decodes the images of a chunk that the store lacks (need[k]) into raw (k-th image at k *
// in_bytes): image lists on every --threads thread (each image on its own, so the bytes do not
// depend on the threads), other formats are copies. The first failing image in chunk order
// decides the error, whatever the threads.
static int ingest_decode_chunk(ds_source *src, const int64_t *sel, int64_t j0, int k_n, const uint8_t *need,
                               uint8_t *raw, size_t in_bytes) {
    int rcs[INGEST_CHUNK];
    char *msgs[INGEST_CHUNK];
    int par = src->spec.format == DS_FMT_IMGLIST;
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int k = 0; k < k_n; k++) {
        rcs[k] = 0;
        msgs[k] = NULL;
        if (!need[k]) continue;
        rcs[k] = ds_source_get(src, sel[j0 + k], raw + (size_t)k * in_bytes);
        if (rcs[k] < 0) msgs[k] = strdup(err_msg()); // err messages are per thread
    }
    int rc = 0;
    for (int k = 0; k < k_n; k++) {
        if (rcs[k] < 0 && rc == 0) rc = err_set(rcs[k], "%s", msgs[k] ? msgs[k] : err_str(rcs[k]));
        free(msgs[k]);
    }
    return rc;
}

// Writes every selected image that the store lacks (sel[j] under key first + j), in batches;
// reads back the ones it has (resume) for the statistics. Fills stats and class counts. SIGINT/SIGTERM stop after the
// current batch, which is committed (whole batches, as in every stage).
static int ingest_write(ts_store *s, ds_source *src, const ingest_opts_t *o, const int64_t *sel, int64_t first,
                        int64_t n, imgstats *st, ingest_counts *cnt) {
    int rc = 0, p = (int)o->pad, c = src->c, oh = src->h + 2 * p, ow = src->w + 2 * p;
    size_t in_bytes = (size_t)c * src->h * src->w, out_bytes = (size_t)c * oh * ow;
    uint8_t *raw = malloc(in_bytes * INGEST_CHUNK), *img = malloc(out_bytes), need[INGEST_CHUNK];
    ERR_GOTO_IF(rc, !raw || !img, ERR_NOMEM, "out of memory");
    int64_t shape[3] = {c, oh, ow};
    prog_begin("ingest", (uint64_t)n);
    for (int64_t b0 = 0; b0 < n; b0 += o->batch) {
        int64_t b1 = b0 + o->batch < n ? b0 + o->batch : n;
        ERR_GOTO(rc, ts_begin_write(s));
        for (int64_t j0 = b0; j0 < b1; j0 += INGEST_CHUNK) {
            int k_n = (int)(b1 - j0 < INGEST_CHUNK ? b1 - j0 : INGEST_CHUNK);
            for (int k = 0; k < k_n; k++) { // what the store lacks (LMDB stays on this thread)
                ts_key key;
                ts_key_u64(&key, (uint64_t)(first + j0 + k));
                int have = ts_has(s, "image", &key);
                ERR_GOTO(rc, have);
                if (have) ERR_GOTO(rc, have = ts_has(s, "label", &key));
                need[k] = !have;
            }
            ERR_GOTO(rc, ingest_decode_chunk(src, sel, j0, k_n, need, raw, in_bytes));
            for (int k = 0; k < k_n; k++) {
                int64_t j = j0 + k;
                ts_key key;
                ts_tensor t;
                ts_key_u64(&key, (uint64_t)(first + j));
                int32_t lab = ds_source_label(src, sel[j]);
                if (!need[k]) { // committed by an earlier run: read it back for the statistics
                    ERR_GOTO(rc, ts_get_into(s, "image", &key, &t, img, out_bytes));
                    ERR_GOTO_IF(rc, t.dtype != TS_U8 || t.rank != 3 || t.shape[0] != c || t.shape[1] != oh ||
                                        t.shape[2] != ow,
                                ERR_CORRUPT, "%s: record %lld of table image has another shape than %d x %d x %d",
                                o->out, (long long)(first + j), c, oh, ow);
                    cnt->kept++;
                } else {
                    const uint8_t *r = raw + (size_t)k * in_bytes;
                    if (p > 0)
                        ds_pad(img, r, c, src->h, src->w, p);
                    else
                        memcpy(img, r, in_bytes);
                    ERR_GOTO(rc, ts_tensor_init(&t, TS_U8, 3, shape, img));
                    ERR_GOTO(rc, ts_put(s, "image", &key, &t, TS_CODEC_ZSTD));
                    ERR_GOTO(rc, ts_tensor_init(&t, TS_I32, 0, NULL, &lab));
                    ERR_GOTO(rc, ts_put(s, "label", &key, &t, TS_CODEC_RAW));
                    cnt->written++;
                }
                imgstats_add(st, img, (size_t)oh * ow, lab);
            }
        }
        ERR_GOTO(rc, ts_commit(s));
        ERR_GOTO(rc, cli_check_interrupt());
        prog_update((uint64_t)b1, NULL);
    }
    prog_end();
fail:
    if (ts_in_write(s)) ts_abort(s);
    free(raw);
    free(img);
    return rc;
}

// Meta `request` of shard i of n: the part [begin, end) of the `count` selected images.
static int ingest_shard_request(int64_t begin, int64_t end, int64_t count, int i, int n, char **text) {
    cJSON *j = cJSON_CreateObject(), *sh = cJSON_CreateArray();
    int rc = 0;
    ERR_GOTO_IF(rc, !j || !sh, ERR_NOMEM, "out of memory");
    cJSON_AddNumberToObject(j, "begin", (double)begin);
    cJSON_AddNumberToObject(j, "end", (double)end);
    cJSON_AddNumberToObject(j, "count", (double)count);
    cJSON_AddItemToArray(sh, cJSON_CreateNumber(i));
    cJSON_AddItemToArray(sh, cJSON_CreateNumber(n));
    cJSON_AddItemToObject(j, "shard", sh);
    sh = NULL;
    rc = stage_canonical_json(j, text);
fail:
    cJSON_Delete(sh);
    cJSON_Delete(j);
    return rc;
}

static int ingest_summary(const ingest_opts_t *o, const char *state, int64_t count, const ingest_counts *cnt) {
    cJSON *x = cJSON_CreateObject();
    ERR_IF(!x, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(x, "out", o->out);
    cJSON_AddStringToObject(x, "state", state);
    if (count >= 0) cJSON_AddNumberToObject(x, "count", (double)count);
    cJSON_AddNumberToObject(x, "written", cnt ? (double)cnt->written : 0);
    cJSON_AddNumberToObject(x, "kept", cnt ? (double)cnt->kept : 0);
    int rc = cli_summary(stdout, "ok", x);
    cJSON_Delete(x);
    return rc;
}

// The sources are inputs: the output may be none of them, nor hold one (common/stage.h).
static int ingest_note_inputs(const ds_source_spec *sp) {
    const char *one[] = {sp->images, sp->labels, sp->list, sp->root};
    for (int i = 0; i < 4; i++) ERR_TRY(stage_note_input(one[i]));
    for (int i = 0; i < sp->n_paths; i++) ERR_TRY(stage_note_input(sp->paths[i]));
    return 0;
}

int main(int argc, char **argv) {
    cli_args *a = NULL;
    cfg *c = NULL;
    ingest_opts_t o;
    memset(&o, 0, sizeof o);
    cJSON *params = NULL, *inputs = NULL, *files = NULL;
    char *params_text = NULL, *inputs_text = NULL, *request = NULL;
    ds_source src;
    memset(&src, 0, sizeof src);
    ts_store *s = NULL;
    int64_t *sel = NULL, n_sel = 0, begin = 0, end = 0;
    int shard_i = 0, shard_n = 1;
    imgstats st = {0};
    ingest_counts cnt = {0, 0};
    stage_state state;

    int rc = cli_parse(&a, &ingest_spec, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, &ingest_spec);
        cli_args_free(a);
        return 0;
    }
    if (rc < 0) goto fail;
    if (cli_has(a, "config") || cli_count(a, "set") > 0) ERR_GOTO(rc, cli_load_config(a, &c));
    ERR_GOTO(rc, ingest_parse(a, c, &o));
    if (cli_get(a, "shard")) ERR_GOTO(rc, smp_shard_parse(cli_get(a, "shard"), &shard_i, &shard_n));
    ERR_GOTO_IF(rc, shard_n > 1 && o.name_buf, ERR_USAGE,
                "--shard needs --name (the default name, the store's directory name, differs between shards)");
    ERR_GOTO(rc, cli_install_interrupt());
    if (cli_threads(a) > 0) omp_set_num_threads(cli_threads(a)); // image lists decode in parallel
    ds_set_poll(cli_check_interrupt); // hashing and reading the sources stop on SIGINT/SIGTERM too

    // The stage key: options + content hashes of the sources (cheap; no parsing).
    params = ingest_params(&o);
    ERR_GOTO_IF(rc, !params, ERR_NOMEM, "out of memory");
    ERR_GOTO(rc, stage_canonical_json(params, &params_text));
    ERR_GOTO(rc, ds_source_fingerprint(&o.spec, &inputs, &files));
    ERR_GOTO(rc, stage_canonical_json(inputs, &inputs_text));
    if (shard_n > 1) { // a shard's request is its part of the selection: select first
        ERR_GOTO(rc, ds_source_open(&src, &o.spec));
        ERR_GOTO(rc, ingest_select(&src, &o, &sel, &n_sel));
        smp_shard_range(n_sel, shard_i, shard_n, &begin, &end);
        ERR_GOTO(rc, ingest_shard_request(begin, end, n_sel, shard_i, shard_n, &request));
    }
    stage_id id = {"ingest", INGEST_VERSION, params_text, inputs_text, request};
    ERR_GOTO(rc, ingest_note_inputs(&o.spec));
    ERR_GOTO(rc, stage_probe(o.out, &id, o.force, &state));
    if (state == STAGE_UP_TO_DATE) {
        log_info("%s: up to date", o.out);
        ERR_GOTO(rc, ingest_summary(&o, "up to date", -1, NULL));
        goto fail;
    }

    // Read and check the source before the store is touched: bad input leaves nothing behind.
    if (!sel) {
        ERR_GOTO(rc, ds_source_open(&src, &o.spec));
        ERR_GOTO(rc, ingest_select(&src, &o, &sel, &n_sel));
        end = n_sel;
    }
    ERR_GOTO(rc, ds_check_size(o.out, n_sel, src.c, src.h + 2 * o.pad, src.w + 2 * o.pad));
    ERR_GOTO(rc, imgstats_init(&st, src.c));

    ERR_GOTO(rc, stage_open_output(&s, o.out, &id, o.force, &state));
    ts_set_zstd_level(s, 1);
    log_info("%s: %s, %lld images of %d x %d x %d", o.out, stage_state_name(state), (long long)(end - begin), src.c,
             src.h + 2 * (int)o.pad, src.w + 2 * (int)o.pad);
    ERR_GOTO(rc,
             ingest_write(s, &src, &o, sel + begin, begin, end - begin, &st, &cnt));

    ERR_GOTO(rc, ts_begin_write(s));
    ERR_GOTO(rc, ingest_write_meta(s, &o, files, src.h + 2 * (int)o.pad, src.w + 2 * (int)o.pad, &st));
    ERR_GOTO(rc, stage_mark_complete(s));
    ERR_GOTO(rc, ts_commit(s));
    ERR_GOTO(rc, ingest_summary(&o, stage_state_name(state), end - begin, &cnt));
fail:
    ts_close(s);
    ds_source_close(&src);
    free(sel);
    imgstats_free(&st);
    free(o.paths);
    free(o.name_buf);
    free(params_text);
    free(inputs_text);
    free(request);
    cJSON_Delete(params);
    cJSON_Delete(inputs);
    cJSON_Delete(files);
    cfg_free(c);
    cli_args_free(a);
    return rc < 0 ? cli_fail(rc) : 0;
}
