// Tests of the stage contract helpers (common/stage.h): keys, canonical JSON, fresh / resume /
// up-to-date decisions, conflicts that name what differs, --force clearing, input keys.
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/stage.h"
#include "common/store.h"
#include "tests/test_util.h"

static char spath[512];

static void setup(void) {
    tu_setup();
    snprintf(spath, sizeof spath, "%s/out.store", tu_dir);
}

START_TEST(test_key_and_canonical) {
    char k1[33], k2[33], k3[33];
    stage_id a = {"ingest", 1, "{\"pad\":2}", "{\"images\":\"aa\"}", NULL};
    stage_id b = a, c = a;
    b.version = 2;
    c.params = "{\"pad\":0}";
    ck_assert_int_eq(stage_key(&a, k1), 0);
    ck_assert_int_eq(strlen(k1), 32);
    ck_assert_int_eq(stage_key(&b, k2), 0);
    ck_assert_int_eq(stage_key(&c, k3), 0);
    ck_assert_str_ne(k1, k2);
    ck_assert_str_ne(k1, k3);
    char k4[33];
    ck_assert_int_eq(stage_key(&a, k4), 0);
    ck_assert_str_eq(k1, k4);
    // fields are separated: moving text from params to inputs changes the key
    stage_id d = {"ingest", 1, "{\"pad\":2}{", "\"images\":\"aa\"}", NULL};
    ck_assert_int_eq(stage_key(&d, k4), 0);
    ck_assert_str_ne(k1, k4);
    cJSON *j = cJSON_Parse("{\"b\":1,\"a\":{\"z\":[3,{\"y\":1,\"x\":2}],\"c\":\"t\"}}");
    char *t = NULL;
    ck_assert_int_eq(stage_canonical_json(j, &t), 0);
    ck_assert_str_eq(t, "{\"a\":{\"c\":\"t\",\"z\":[3,{\"x\":2,\"y\":1}]},\"b\":1}");
    free(t);
    cJSON_Delete(j);
}
END_TEST

static void put_record(ts_store *s, uint64_t i) {
    ts_key k;
    ts_tensor t;
    int32_t v = (int32_t)i;
    ts_key_u64(&k, i);
    ck_assert_int_eq(ts_tensor_init(&t, TS_I32, 0, NULL, &v), 0);
    ck_assert_int_eq(ts_put(s, "label", &k, &t, TS_CODEC_RAW), 0);
}

START_TEST(test_states) {
    stage_id id = {"ingest", 1, "{\"pad\":2}", "{\"images\":\"aa\"}", NULL};
    stage_state st = STAGE_STATE_COUNT;
    ck_assert_int_eq(stage_probe(spath, &id, 0, &st), 0);
    ck_assert_int_eq(st, STAGE_FRESH);
    ck_assert_int_eq(access(spath, F_OK), -1); // probing created nothing
    ts_store *s = NULL;
    ck_assert_int_eq(stage_open_output(&s, spath, &id, 0, &st), 0);
    ck_assert_int_eq(st, STAGE_FRESH);
    put_record(s, 0);
    put_record(s, 1);
    ck_assert_int_eq(stage_is_complete(s), 0);
    char *m = NULL;
    ck_assert_int_eq(ts_meta_get(s, "params", &m), 0);
    ck_assert_str_eq(m, "{\"pad\":2}");
    free(m);
    ck_assert_int_eq(ts_meta_get(s, "stage_version", &m), 0);
    ck_assert_str_eq(m, "1");
    free(m);
    ts_close(s);
    // same key, not complete: resume, records kept
    ck_assert_int_eq(stage_probe(spath, &id, 0, &st), 0);
    ck_assert_int_eq(st, STAGE_RESUME);
    ck_assert_int_eq(stage_open_output(&s, spath, &id, 0, &st), 0);
    ck_assert_int_eq(st, STAGE_RESUME);
    uint64_t n = 0;
    ck_assert_int_eq(ts_count(s, "label", &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(stage_mark_complete(s), 0);
    ck_assert_int_eq(stage_is_complete(s), 1);
    ts_close(s);
    ck_assert_int_eq(stage_probe(spath, &id, 0, &st), 0);
    ck_assert_int_eq(st, STAGE_UP_TO_DATE);
    char key[33], want[33];
    ck_assert_int_eq(stage_input_key(spath, key), 0);
    ck_assert_int_eq(stage_key(&id, want), 0);
    ck_assert_str_eq(key, want);
    // now an input of this process: refused as an output, whatever the flags
    ck_assert_int_eq(stage_probe(spath, &id, 1, &st), ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "also an input"));
    ck_assert_int_eq(stage_open_output(&s, spath, &id, 1, &st), ERR_CONFLICT);
    stage_forget_inputs(); // this test plays several runs in one process
    // other params: refused, naming the key that differs and --force
    stage_id other = id;
    other.params = "{\"pad\":0}";
    ck_assert_int_eq(stage_probe(spath, &other, 0, &st), ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "pad (was 2, now 0)"));
    ck_assert_ptr_nonnull(strstr(err_msg(), "--force"));
    ck_assert_ptr_nonnull(strstr(err_msg(), spath));
    ck_assert_int_eq(stage_open_output(&s, spath, &other, 0, &st), ERR_CONFLICT);
    other.inputs = "{\"images\":\"bb\"}";
    ck_assert_int_eq(stage_probe(spath, &other, 0, &st), ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "inputs differ"));
    // --force: cleared and fresh
    ck_assert_int_eq(stage_probe(spath, &other, 1, &st), 0);
    ck_assert_int_eq(st, STAGE_FRESH);
    ck_assert_int_eq(stage_open_output(&s, spath, &other, 1, &st), 0);
    ck_assert_int_eq(st, STAGE_FRESH);
    ck_assert_int_eq(ts_table_exists(s, "label"), 0);
    ck_assert_int_eq(stage_is_complete(s), 0);
    ck_assert_int_eq(ts_meta_get(s, "params", &m), 0);
    ck_assert_str_eq(m, "{\"pad\":0}");
    free(m);
    ts_close(s);
    // an incomplete input store is refused as input
    ck_assert_int_eq(stage_input_key(spath, key), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "incomplete"));
}
END_TEST

START_TEST(test_foreign_store) {
    // a store with records but no stage key is not overwritten without force
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, spath, TS_CREATE), 0);
    put_record(s, 0);
    ts_close(s);
    stage_id id = {"ingest", 1, "{}", "{}", NULL};
    stage_state st;
    ck_assert_int_eq(stage_probe(spath, &id, 0, &st), ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "without a stage key"));
    ck_assert_int_eq(stage_open_output(&s, spath, &id, 1, &st), 0);
    ck_assert_int_eq(st, STAGE_FRESH);
    ck_assert_int_eq(ts_table_exists(s, "label"), 0);
    ts_close(s);
    char key[33];
    ck_assert_int_eq(stage_input_key("/nonexistent/store", key) < 0, 1);
}
END_TEST

// Incremental stores: the same base key with another request resumes (records kept, new key),
// the same request once complete is up to date, other params are still a conflict.
START_TEST(test_incremental_request) {
    stage_id id = {"sample", 1, "{\"guidance\":2}", "{\"images\":\"aa\"}", "{\"repeats\":2}"};
    stage_state st;
    ts_store *s = NULL;
    char k2[33], k4[33], base[33];
    ck_assert_int_eq(stage_open_output(&s, spath, &id, 0, &st), 0);
    ck_assert_int_eq(st, STAGE_FRESH);
    put_record(s, 0);
    ck_assert_int_eq(stage_mark_complete(s), 0);
    ts_close(s);
    ck_assert_int_eq(stage_full_key(&id, k2), 0);
    ck_assert_int_eq(stage_key(&id, base), 0);
    ck_assert_str_ne(k2, base);
    ck_assert_int_eq(stage_input_key(spath, k4), 0);
    stage_forget_inputs();
    ck_assert_str_eq(k4, k2);
    stage_forget_inputs();
    ck_assert_int_eq(stage_probe(spath, &id, 0, &st), 0);
    ck_assert_int_eq(st, STAGE_UP_TO_DATE);
    // more repeats: resume; the store says so (new request and key, not complete) before work
    stage_id more = id;
    more.request = "{\"repeats\":4}";
    ck_assert_int_eq(stage_probe(spath, &more, 0, &st), 0);
    ck_assert_int_eq(st, STAGE_RESUME);
    ck_assert_int_eq(stage_open_output(&s, spath, &more, 0, &st), 0);
    ck_assert_int_eq(st, STAGE_RESUME);
    ck_assert_int_eq(stage_is_complete(s), 0);
    char *m = NULL;
    ck_assert_int_eq(ts_meta_get(s, "request", &m), 0);
    ck_assert_str_eq(m, "{\"repeats\":4}");
    free(m);
    ck_assert_int_eq(ts_meta_get(s, "base_key", &m), 0);
    ck_assert_str_eq(m, base);
    free(m);
    uint64_t n = 0;
    ck_assert_int_eq(ts_count(s, "label", &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(stage_mark_complete(s), 0);
    ts_close(s);
    ck_assert_int_eq(stage_input_key(spath, k4), 0);
    stage_forget_inputs();
    ck_assert_int_ne(strcmp(k4, k2), 0);
    ck_assert_int_eq(stage_probe(spath, &more, 0, &st), 0);
    ck_assert_int_eq(st, STAGE_UP_TO_DATE);
    // another guidance: a conflict, whatever the request
    stage_id other = more;
    other.params = "{\"guidance\":1}";
    ck_assert_int_eq(stage_probe(spath, &other, 0, &st), ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "--force"));
}
END_TEST

// A conflict names nested keys, and shows the texts where values differ only beyond a double
// (a seed above 2^53: cJSON reads both as the same number).
START_TEST(test_conflict_messages) {
    stage_id id = {"train", 1, "{\"model\":\"d\",\"train\":{\"lr\":0.001,\"seed\":9007199254740992}}", "{}", NULL};
    stage_state st;
    ts_store *s = NULL;
    ck_assert_int_eq(stage_open_output(&s, spath, &id, 0, &st), 0);
    ck_assert_int_eq(stage_mark_complete(s), 0);
    ts_close(s);
    stage_id lr = id;
    lr.params = "{\"model\":\"d\",\"train\":{\"lr\":0.002,\"seed\":9007199254740992}}";
    ck_assert_int_eq(stage_probe(spath, &lr, 0, &st), ERR_CONFLICT);
    ck_assert_msg(strstr(err_msg(), "train.lr (was 0.001, now 0.002)") != NULL, "%s", err_msg());
    stage_id seed = id;
    seed.params = "{\"model\":\"d\",\"train\":{\"lr\":0.001,\"seed\":9007199254740993}}";
    ck_assert_int_eq(stage_probe(spath, &seed, 0, &st), ERR_CONFLICT);
    ck_assert_msg(strstr(err_msg(), "\"seed\":9007199254740993") != NULL, "%s", err_msg());
}
END_TEST

// An output that is an input (by path, symlink, trailing slash, or a directory holding it) is
// refused before anything is touched, whatever the flags; other outputs are not.
START_TEST(test_output_is_input) {
    stage_id id = {"ingest", 1, "{}", "{}", NULL};
    stage_state st;
    ts_store *s;
    char key[33], key2[33], p[600];
    ck_assert_int_eq(stage_open_output(&s, spath, &id, 0, &st), 0);
    ck_assert_int_eq(stage_mark_complete(s), 0);
    ts_close(s);
    ck_assert_int_eq(stage_input_key(spath, key), 0);
    ck_assert_int_eq(symlink(spath, tu_path("link.store")), 0);
    snprintf(p, sizeof p, "%s/", spath);
    const char *bad[] = {spath, tu_path("link.store"), p, tu_dir};
    stage_id other = {"train", 1, "{\"x\":1}", "{}", NULL};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(stage_probe(bad[i], &other, 1, &st), ERR_CONFLICT);
        ck_assert_msg(strstr(err_msg(), "also an input") && strstr(err_msg(), bad[i]), "%s", err_msg());
        ck_assert_int_eq(stage_open_output(&s, bad[i], &other, 1, &st), ERR_CONFLICT);
    }
    ck_assert_int_eq(stage_check_output(tu_dir, 0), 0); // a report folder beside its inputs
    ck_assert_int_eq(stage_check_output(tu_path("other.store"), 1), 0);
    const char *f = tu_put("images.idx", "x");
    ck_assert_int_eq(stage_note_input(f), 0);
    ck_assert_int_eq(stage_check_output(f, 1), ERR_CONFLICT);
    stage_forget_inputs();
    ck_assert_int_eq(stage_input_key(spath, key2), 0); // untouched
    ck_assert_str_eq(key, key2);
}
END_TEST

// A damaged output store: refused saying to use --force; --force replaces it, also when its page
// structure is damaged (replacing reads none of the old pages).
START_TEST(test_force_replaces_damaged) {
    stage_id id = {"ingest", 1, "{}", "{}", NULL}, other = {"ingest", 1, "{\"pad\":1}", "{}", NULL};
    stage_state st;
    ts_store *s;
    char file[600];
    snprintf(file, sizeof file, "%s/data.mdb", spath);
    ck_assert_int_eq(stage_open_output(&s, spath, &id, 0, &st), 0);
    ck_assert_int_eq(ts_begin_write(s), 0);
    for (uint64_t i = 0; i < 2000; i++) put_record(s, i);
    ck_assert_int_eq(ts_commit(s), 0);
    ck_assert_int_eq(stage_mark_complete(s), 0);
    ts_close(s);
    // every other leaf page of records made a branch page: dropping the table would walk them and
    // abort in LMDB
    size_t len;
    uint8_t *d = tu_read_file(file, &len);
    int n = 0;
    for (size_t pg = 2; pg < len / 4096; pg++) {
        uint8_t *q = d + pg * 4096;
        uint64_t pgno;
        memcpy(&pgno, q, 8);
        uint16_t lower;
        memcpy(&lower, q + 12, 2);
        // a leaf (flags P_LEAF) full of records (> 40 nodes: not the small meta or main leaf)
        if (pgno == pg && q[10] == 2 && q[11] == 0 && (lower - 16) / 2 > 40 && pg % 2) q[10] = 1, n++;
    }
    ck_assert_int_ge(n, 2);
    tu_write_file(file, d, len);
    int orc = stage_open_output(&s, spath, &other, 1, &st);
    ck_assert_msg(orc == 0, "%d %s", orc, err_msg());
    ck_assert_int_eq(st, STAGE_FRESH);
    ck_assert_int_eq(ts_table_exists(s, "label"), 0);
    put_record(s, 7);
    ts_close(s);
    // a truncated data.mdb: refused, naming --force; replaced with it
    ck_assert_int_eq(truncate(file, 5000), 0);
    ck_assert_int_eq(stage_probe(spath, &other, 0, &st), ERR_CORRUPT);
    ck_assert_msg(strstr(err_msg(), "truncated") && strstr(err_msg(), "--force"), "%s", err_msg());
    ck_assert_int_eq(stage_open_output(&s, spath, &other, 0, &st), ERR_CORRUPT);
    ck_assert_int_eq(stage_probe(spath, &other, 1, &st), 0);
    ck_assert_int_eq(st, STAGE_FRESH);
    ck_assert_int_eq(stage_open_output(&s, spath, &other, 1, &st), 0);
    ck_assert_int_eq(st, STAGE_FRESH);
    ck_assert_int_eq(stage_mark_complete(s), 0);
    ts_close(s);
    ck_assert_int_eq(stage_probe(spath, &other, 0, &st), 0);
    ck_assert_int_eq(st, STAGE_UP_TO_DATE);
    free(d);
}
END_TEST

Suite *suite_stage(void) {
    Suite *s = suite_create("stage");
    TCase *tc = tcase_create("contract");
    tcase_add_checked_fixture(tc, setup, tu_teardown);
    tcase_add_test(tc, test_key_and_canonical);
    tcase_add_test(tc, test_states);
    tcase_add_test(tc, test_incremental_request);
    tcase_add_test(tc, test_foreign_store);
    tcase_add_test(tc, test_conflict_messages);
    tcase_add_test(tc, test_output_is_input);
    tcase_add_test(tc, test_force_replaces_damaged);
    suite_add_tcase(s, tc);
    return s;
}
