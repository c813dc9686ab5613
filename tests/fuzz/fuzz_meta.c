// Fuzz target: store meta as the stages read it. A small valid image store (2 images 1 x 2 x 2,
// labels) gets the input's meta entries, written through ts_meta_put (so they pass whatever
// checks the store applies to meta itself), then the readers run on it: the stage contract
// (stage_probe, stage_input_key: key, complete, stage, params, inputs, request) and the samples
// store reader (smp_open: request, images, records, cache key), and the request parser on the
// meta `request` text. Input: NAME '\0' VALUE '\0' pairs (names 1..64 bytes), at most 16.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/stage.h"
#include "common/store.h"
#include "common/samples.h"
#include "tests/fuzz/util.h"

static char fuzz_meta_path[512];

static void fuzz_meta_make(void) {
    ts_store *s = NULL;
    snprintf(fuzz_meta_path, sizeof fuzz_meta_path, "%s/meta.store", fuzz_dir());
    if (ts_open(&s, fuzz_meta_path, TS_CREATE) < 0 || ts_begin_write(s) < 0) abort();
    for (uint64_t i = 0; i < 2; i++) {
        ts_key k;
        ts_tensor t;
        uint8_t px[4] = {1, 2, 3, (uint8_t)i};
        int32_t lab = (int32_t)i;
        ts_key_u64(&k, i);
        if (ts_tensor_init(&t, TS_U8, 3, (int64_t[]){1, 2, 2}, px) < 0 || ts_put(s, "image", &k, &t, TS_CODEC_RAW) < 0 ||
            ts_tensor_init(&t, TS_I32, 0, NULL, &lab) < 0 || ts_put(s, "label", &k, &t, TS_CODEC_RAW) < 0)
            abort();
    }
    if (ts_commit(s) < 0) abort();
    ts_close(s);
}

int fuzz_meta(const uint8_t *data, size_t size) {
    fuzz_init();
    if (!fuzz_meta_path[0]) fuzz_meta_make();
    ts_store *s = NULL;
    if (ts_open(&s, fuzz_meta_path, 0) < 0 || ts_begin_write(s) < 0) abort();
    char **names = NULL;
    int n = 0;
    if (ts_meta_list(s, &names, &n) == 0) { // start from no meta but the store's own
        for (int i = 0; i < n; i++)
            if (strncmp(names[i], "ts.", 3) != 0) ts_meta_del(s, names[i]);
        ts_names_free(names, n);
    }
    char *buf = malloc(size + 2);
    if (!buf) abort();
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = '\0';
    const char *p = buf, *end = buf + size;
    for (int pairs = 0; pairs < 16 && p < end; pairs++) {
        const char *name = p, *value = p + strlen(p) + 1;
        if (value > end) break;
        p = value + strlen(value) + 1;
        size_t nl = strlen(name);
        if (nl < 1 || nl > 64 || strncmp(name, "ts.", 3) == 0) continue;
        ts_meta_put(s, name, value);
    }
    free(buf);
    if (ts_commit(s) < 0) abort();
    ts_close(s);
    // the readers
    char key[HASH_HEX_LEN + 1];
    stage_input_key(fuzz_meta_path, key);
    stage_id id = {"ingest", 1, "{}", "{}", NULL};
    stage_state st;
    stage_probe(fuzz_meta_path, &id, 0, &st);
    id.request = "{\"levels\":[0]}";
    id.stage = "sample";
    stage_probe(fuzz_meta_path, &id, 0, &st);
    smp_view v;
    if (smp_open(&v, fuzz_meta_path) == 0) smp_close(&v);
    if (ts_open(&s, fuzz_meta_path, TS_RDONLY) == 0) {
        char *req = NULL;
        smp_request r;
        if (ts_meta_get(s, "request", &req) == 0) smp_request_parse(&r, req, "meta request");
        free(req);
        ts_close(s);
    }
    return 0;
}
