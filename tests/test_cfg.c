// Tests of the config trees (common/cfg.h): YAML errors with line numbers, schema overlay
// (unknown keys, types, order defaults < file < --set), --set parsing, getters, canonical text
// and hash, and that the shipped config/*.yml files load with the paper's values.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/rng.h"
#include "tests/test_util.h"


static const char *SCHEMA = "# a small schema\n"
                            "model:\n"
                            "  ch: 128\n"
                            "  mult: [1, 2, 2]\n"
                            "  dropout: 0.1\n"
                            "  conv: true\n"
                            "  name: unet\n"
                            "  levels: [0.5, 1.0]\n"
                            "train:\n"
                            "  lr: 2.0e-4\n"
                            "  steps: 1000\n"
                            "  sets: []\n"
                            "extra: {}\n";

static cfg *schema(void) {
    cfg *c = NULL;
    ck_assert_int_eq(cfg_parse_file(&c, tu_put("defaults.yml", SCHEMA)), 0);
    return c;
}

#define ck_assert_msg_has(needle) \
    ck_assert_msg(strstr(err_msg(), (needle)) != NULL, "message '%s' lacks '%s'", err_msg(), (needle))

// --- parsing -------------------------------------------------------------------------------

START_TEST(test_bad_yaml_line) {
    cfg *c = NULL;
    const char *p = tu_put("bad.yml", "model:\n  ch: 32\n  mult: [1, 2\n  dropout: 0.1\n");
    ck_assert_int_eq(cfg_parse_file(&c, p), ERR_CONFIG);
    ck_assert_ptr_null(c);
    ck_assert_msg_has(p);
    ck_assert_msg_has(":4:"); // libyaml reports the flow list running into line 4
    p = tu_put("bad2.yml", "a: 1\nb: 2\n c: 3\n");
    ck_assert_int_eq(cfg_parse_file(&c, p), ERR_CONFIG);
    ck_assert_msg_has("bad2.yml:3:");
    p = tu_put("tab.yml", "a:\n\tb: 1\n");
    ck_assert_int_eq(cfg_parse_file(&c, p), ERR_CONFIG);
    ck_assert_msg_has("tab.yml:2:");
}
END_TEST

START_TEST(test_yaml_rejects) {
    cfg *c = NULL;
    ck_assert_int_eq(cfg_parse_file(&c, tu_put("dup.yml", "a: 1\nb: 2\na: 3\n")), ERR_CONFIG);
    ck_assert_msg_has("dup.yml:3:1: duplicate key 'a'");
    ck_assert_int_eq(cfg_parse_file(&c, tu_put("alias.yml", "a: &x 1\nb: *x\n")), ERR_CONFIG);
    ck_assert_msg_has("alias.yml:2:");
    ck_assert_int_eq(cfg_parse_file(&c, tu_put("docs.yml", "a: 1\n---\nb: 2\n")), ERR_CONFIG);
    ck_assert_msg_has("docs.yml:2");
    ck_assert_int_eq(cfg_parse_file(&c, tu_put("list.yml", "- 1\n- 2\n")), ERR_CONFIG);
    ck_assert_msg_has("top level must be a map");
    ck_assert_int_eq(cfg_parse_file(&c, tu_put("key.yml", "a b: 1\n")), ERR_CONFIG);
    ck_assert_msg_has("bad key 'a b'");
    ck_assert_int_eq(cfg_parse_file(&c, tu_put("tag.yml", "a: !!float 1\n")), ERR_CONFIG);
    ck_assert_msg_has("unsupported tag");
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none.yml", tu_dir);
    ck_assert_int_eq(cfg_parse_file(&c, missing), ERR_NOTFOUND);
    ck_assert_msg_has("none.yml");
    ck_assert_int_eq(cfg_parse_file(&c, tu_put("empty.yml", "# nothing\n")), 0);
    ck_assert_int_eq(cfg_node_type(c), CFG_MAP);
    ck_assert_uint_eq(cfg_node_len(c), 0);
    cfg_free(c);
}
END_TEST

START_TEST(test_scalar_types) {
    cfg *c = NULL;
    const char *text = "i: 42\nn: -7\nh: 0x1F\no: 0o17\nf: 1e-4\ng: 2.5\nd: 3.\ninf: -.inf\nb: True\n"
                       "s: hello\nq: '123'\nqq: \"true\"\nss: !!str 5\nbig: 9223372036854775807\n";
    ck_assert_int_eq(cfg_parse_text(&c, text, strlen(text), "t.yml"), 0);
    int64_t i;
    double f;
    bool b;
    const char *s;
    ck_assert_int_eq(cfg_get_i64(c, "i", &i), 0);
    ck_assert_int_eq(i, 42);
    ck_assert_int_eq(cfg_get_i64(c, "n", &i), 0);
    ck_assert_int_eq(i, -7);
    ck_assert_int_eq(cfg_get_i64(c, "h", &i), 0);
    ck_assert_int_eq(i, 31);
    ck_assert_int_eq(cfg_get_i64(c, "o", &i), 0);
    ck_assert_int_eq(i, 15);
    ck_assert_int_eq(cfg_get_i64(c, "big", &i), 0);
    ck_assert_int_eq(i, INT64_MAX);
    ck_assert_int_eq(cfg_node_type(cfg_find(c, "f")), CFG_FLOAT);
    ck_assert_int_eq(cfg_get_float(c, "f", &f), 0);
    ck_assert_double_eq(f, 1e-4);
    ck_assert_int_eq(cfg_get_float(c, "d", &f), 0);
    ck_assert_double_eq(f, 3.0);
    ck_assert_int_eq(cfg_get_float(c, "inf", &f), 0);
    ck_assert(isinf(f) && f < 0);
    ck_assert_int_eq(cfg_get_bool(c, "b", &b), 0);
    ck_assert(b);
    ck_assert_int_eq(cfg_get_str(c, "s", &s), 0);
    ck_assert_str_eq(s, "hello");
    ck_assert_int_eq(cfg_get_str(c, "q", &s), 0); // quoted: a string, not an int
    ck_assert_str_eq(s, "123");
    ck_assert_int_eq(cfg_get_str(c, "qq", &s), 0);
    ck_assert_str_eq(s, "true");
    ck_assert_int_eq(cfg_get_str(c, "ss", &s), 0);
    ck_assert_str_eq(s, "5");
    int small;
    ck_assert_int_eq(cfg_get_int(c, "big", &small), ERR_CONFIG); // does not fit an int
    ck_assert_msg_has("'big'");
    cfg_free(c);
    const char *huge = "x: 99999999999999999999\n";
    ck_assert_int_eq(cfg_parse_text(&c, huge, strlen(huge), "h.yml"), ERR_CONFIG);
    ck_assert_msg_has("h.yml:1:4");
}
END_TEST

// --- overlay -------------------------------------------------------------------------------

START_TEST(test_unknown_key) {
    cfg *c = schema();
    const char *p = tu_put("user.yml", "model:\n  ch: 32\n  chh: 3\n");
    ck_assert_int_eq(cfg_overlay_file(c, p), ERR_CONFIG);
    ck_assert_msg_has("user.yml:3");
    ck_assert_msg_has("unknown key 'model.chh'");
    ck_assert_msg_has("valid keys of 'model': ch, mult, dropout, conv, name, levels");
    cfg_free(c);
    c = schema();
    p = tu_put("user2.yml", "\n\nmodle:\n  ch: 32\n");
    ck_assert_int_eq(cfg_overlay_file(c, p), ERR_CONFIG);
    ck_assert_msg_has("user2.yml:4"); // the value's line
    ck_assert_msg_has("unknown key 'modle'; valid sections: model, train, extra");
    cfg_free(c);
}
END_TEST

START_TEST(test_wrong_types) {
    static const struct {
        const char *yaml, *needle;
    } bad[] = {
        {"model:\n  ch: 3.5\n", "key 'model.ch' must be an int"},
        {"model:\n  ch: abc\n", "got the string 'abc'"},
        {"model:\n  conv: yes\n", "key 'model.conv' must be a bool"},
        {"model:\n  conv: 1\n", "must be a bool"},
        {"model:\n  mult: 3\n", "key 'model.mult' must be a list"},
        {"model:\n  mult: [1, 2.5]\n", "element 1 is the float '2.5'"},
        {"model: 5\n", "key 'model' must be a map"},
        {"model:\n  ch:\n", "has no value"},
        {"model:\n  name: [a]\n", "must be a string"},
        {"train:\n  sets: [a, 1.5]\n", "mixes"},
        {"train:\n  sets: [[1]]\n", "only numbers, strings or bools"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg *c = schema();
        const char *p = tu_put("user.yml", bad[i].yaml);
        ck_assert_int_eq(cfg_overlay_file(c, p), ERR_CONFIG);
        ck_assert_msg(strstr(err_msg(), bad[i].needle), "case %zu: '%s' lacks '%s'", i, err_msg(), bad[i].needle);
        ck_assert_msg(strstr(err_msg(), "user.yml:"), "case %zu: '%s' lacks the file", i, err_msg());
        cfg_free(c);
    }
}
END_TEST

START_TEST(test_widening_and_open) {
    cfg *c = schema();
    const char *p = tu_put("user.yml",
                        "train:\n  lr: 1\n  sets: [mnist, svhn]\nmodel:\n  levels: [1, 2]\n  name: 2024\n"
                        "extra:\n  anything: {deep: [1, 2]}\n");
    ck_assert_int_eq(cfg_overlay_file(c, p), 0);
    ck_assert_int_eq(cfg_node_type(cfg_find(c, "train.lr")), CFG_FLOAT); // int widened
    double v[4];
    size_t n;
    ck_assert_int_eq(cfg_get_float_list(c, "model.levels", v, 4, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_double_eq(v[1], 2.0);
    ck_assert_int_eq(cfg_node_type(cfg_node_at(cfg_find(c, "model.levels"), 0)), CFG_FLOAT);
    const char *s;
    ck_assert_int_eq(cfg_get_str(c, "model.name", &s), 0);
    ck_assert_str_eq(s, "2024");
    ck_assert_uint_eq(cfg_node_len(cfg_find(c, "train.sets")), 2);
    ck_assert_int_eq(cfg_get_str(cfg_node_at(cfg_find(c, "train.sets"), 1), "", &s), 0);
    ck_assert_str_eq(s, "svhn");
    int deep[4];
    ck_assert_int_eq(cfg_get_int_list(c, "extra.anything.deep", deep, 4, &n), 0);
    ck_assert_int_eq(deep[1], 2);
    char *t = NULL;
    ck_assert_int_eq(cfg_canonical(c, "train", &t), 0);
    ck_assert_str_eq(t, "{\"lr\":1.0,\"sets\":[\"mnist\",\"svhn\"],\"steps\":1000}");
    free(t);
    cfg_free(c);
}
END_TEST

START_TEST(test_set) {
    cfg *c = schema();
    ck_assert_int_eq(cfg_set(c, "model.ch=64"), 0);
    ck_assert_int_eq(cfg_set(c, "model.mult=[1, 1]"), 0);
    ck_assert_int_eq(cfg_set(c, "model.name='my net: v2'"), 0);
    ck_assert_int_eq(cfg_set(c, "train.lr=5"), 0);
    ck_assert_int_eq(cfg_set(c, "extra.note=hi"), 0); // open map: new key
    int ch, mult[4];
    size_t n;
    const char *s;
    double lr;
    ck_assert_int_eq(cfg_get_int(c, "model.ch", &ch), 0);
    ck_assert_int_eq(ch, 64);
    ck_assert_int_eq(cfg_get_int_list(c, "model.mult", mult, 4, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert(mult[0] == 1 && mult[1] == 1); // replaced, not merged with the default [1, 2, 2]
    ck_assert_int_eq(cfg_get_str(c, "model.name", &s), 0);
    ck_assert_str_eq(s, "my net: v2");
    ck_assert_int_eq(cfg_get_float(c, "train.lr", &lr), 0);
    ck_assert_double_eq(lr, 5.0);
    ck_assert_str_eq(cfg_node_origin(cfg_find(c, "model.ch")), "--set model.ch=64");
    ck_assert_int_eq(cfg_get_str(c, "extra.note", &s), 0);
    ck_assert_str_eq(s, "hi");

    ck_assert_int_eq(cfg_set(c, "model.ch"), ERR_CONFIG);
    ck_assert_msg_has("--set model.ch: expected KEY=VALUE");
    ck_assert_int_eq(cfg_set(c, "model.chh=3"), ERR_CONFIG);
    ck_assert_msg_has("unknown key 'model.chh'; valid keys of 'model': ch, mult");
    ck_assert_int_eq(cfg_set(c, "nosuch.ch=3"), ERR_CONFIG);
    ck_assert_msg_has("valid sections: model, train, extra");
    ck_assert_int_eq(cfg_set(c, "model.ch=2.5"), ERR_CONFIG);
    ck_assert_msg_has("--set model.ch=2.5: key 'model.ch' must be an int");
    ck_assert_int_eq(cfg_set(c, "model.ch="), ERR_CONFIG);
    ck_assert_msg_has("no value");
    ck_assert_int_eq(cfg_set(c, "model.ch.x=1"), ERR_CONFIG);
    ck_assert_msg_has("not a section");
    ck_assert_int_eq(cfg_set(c, "=1"), ERR_CONFIG);
    ck_assert_int_eq(cfg_set(c, "model..ch=1"), ERR_CONFIG);
    ck_assert_int_eq(cfg_set(c, "model.mult=[1, 2"), ERR_CONFIG);
    ck_assert_msg_has("--set model.mult=[1, 2");
    ck_assert_int_eq(cfg_get_int(c, "model.ch", &ch), 0); // failed sets changed nothing
    ck_assert_int_eq(ch, 64);
    cfg_free(c);
}
END_TEST

START_TEST(test_overlay_order) {
    const char *d = tu_put("defaults.yml", SCHEMA);
    const char *u = tu_put("user.yml", "model:\n  ch: 32\n  dropout: 0.0\ntrain:\n  steps: 7\n");
    const char *sets[] = {"model.ch=16", "train.steps=9", "model.ch=8"};
    cfg *c = NULL;
    ck_assert_int_eq(cfg_load_stack(&c, d, u, sets, 3), 0);
    int v;
    double f;
    ck_assert_int_eq(cfg_get_int(c, "model.ch", &v), 0);
    ck_assert_int_eq(v, 8); // the last --set wins
    ck_assert_int_eq(cfg_get_int(c, "train.steps", &v), 0);
    ck_assert_int_eq(v, 9); // --set over the file
    ck_assert_int_eq(cfg_get_float(c, "model.dropout", &f), 0);
    ck_assert_double_eq(f, 0.0); // the file over the defaults
    ck_assert_int_eq(cfg_get_float(c, "train.lr", &f), 0);
    ck_assert_double_eq(f, 2e-4); // the default
    ck_assert(strstr(cfg_node_origin(cfg_find(c, "model.dropout")), "user.yml:3"));
    cfg_free(c);
    ck_assert_int_eq(cfg_load_stack(&c, d, NULL, NULL, 0), 0);
    ck_assert_int_eq(cfg_get_int(c, "model.ch", &v), 0);
    ck_assert_int_eq(v, 128);
    cfg_free(c);
    const char *badschema = tu_put("bad.yml", "a:\n  b:\n");
    ck_assert_int_eq(cfg_load_stack(&c, badschema, NULL, NULL, 0), ERR_CONFIG);
    ck_assert_msg_has("'a.b' has no value");
}
END_TEST

START_TEST(test_getters) {
    cfg *c = schema();
    const cfg *m;
    int ch, mult[2];
    size_t n;
    ck_assert_int_eq(cfg_subtree(c, "model", &m), 0);
    ck_assert_int_eq(cfg_get_int(m, "ch", &ch), 0);
    ck_assert_int_eq(ch, 128);
    ck_assert_int_eq(cfg_get_int(c, "model.dropout", &ch), ERR_CONFIG);
    ck_assert_msg_has("config key 'model.dropout' (from ");
    ck_assert_msg_has("defaults.yml:5) is a float, expected an int");
    ck_assert_int_eq(cfg_get_int(m, "nope", &ch), ERR_CONFIG);
    ck_assert_msg_has("config key 'model.nope' not found");
    ck_assert_int_eq(cfg_subtree(c, "model.ch", &m), ERR_CONFIG);
    ck_assert_int_eq(cfg_get_int_list(c, "model.mult", mult, 2, &n), ERR_CONFIG);
    ck_assert_msg_has("3 elements, at most 2");
    ck_assert_int_eq(cfg_get_int_list(c, "model.mult", NULL, 0, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(cfg_get_int_list(c, "model.levels", mult, 2, &n), ERR_CONFIG);
    ck_assert_msg_has("element 0 is a float");
    static const char *const names[] = {"resnet", "unet"};
    int e = -1;
    ck_assert_int_eq(cfg_get_enum(c, "model.name", names, 2, &e), 0);
    ck_assert_int_eq(e, 1);
    static const char *const other[] = {"ddim", "pndm2", "pndm4"};
    ck_assert_int_eq(cfg_get_enum(c, "model.name", other, 3, &e), ERR_CONFIG);
    ck_assert_msg_has("'unet' is not one of: ddim, pndm2, pndm4");
    char path[64];
    ck_assert_str_eq(cfg_node_path(cfg_node_at(cfg_find(c, "model.mult"), 2), path, sizeof path), "model.mult[2]");
    ck_assert_str_eq(cfg_node_key(c, 1), "train");
    cfg *copy = NULL;
    ck_assert_int_eq(cfg_clone(&copy, cfg_find(c, "model")), 0);
    ck_assert_int_eq(cfg_remove(copy, "dropout"), 0);
    ck_assert_int_eq(cfg_remove(copy, "levels"), 0);
    char *t = NULL;
    ck_assert_int_eq(cfg_canonical(copy, "", &t), 0);
    ck_assert_str_eq(t, "{\"ch\":128,\"conv\":true,\"mult\":[1,2,2],\"name\":\"unet\"}");
    free(t);
    ck_assert_int_eq(cfg_remove(copy, "dropout"), ERR_CONFIG);
    ck_assert_int_eq(cfg_remove(copy, ""), ERR_CONFIG);
    ck_assert_ptr_nonnull(cfg_find(c, "model.dropout")); // the original keeps it
    cfg_free(c); // the copy owns its own memory
    ck_assert_int_eq(cfg_get_int(copy, "ch", &ch), 0);
    ck_assert_int_eq(ch, 128);
    cfg_free(copy);
}
END_TEST

// --- canonical text ------------------------------------------------------------------------

START_TEST(test_canonical_order) {
    const char *a = "b: 1\na:\n  y: [1, 2]\n  x: 0.1\nc: text\n";
    const char *b = "c: \"text\"\na: {x: 1.0e-1, y: [1, 2]}\nb: 1\n";
    cfg *ca = NULL, *cb = NULL;
    ck_assert_int_eq(cfg_parse_text(&ca, a, strlen(a), "a.yml"), 0);
    ck_assert_int_eq(cfg_parse_text(&cb, b, strlen(b), "b.yml"), 0);
    char *ta, *tb, ha[33], hb[33];
    ck_assert_int_eq(cfg_canonical(ca, "", &ta), 0);
    ck_assert_int_eq(cfg_canonical(cb, NULL, &tb), 0);
    ck_assert_str_eq(ta, "{\"a\":{\"x\":0.1,\"y\":[1,2]},\"b\":1,\"c\":\"text\"}");
    ck_assert_str_eq(ta, tb);
    ck_assert_int_eq(cfg_hash(ca, "", ha), 0);
    ck_assert_int_eq(cfg_hash(cb, "", hb), 0);
    ck_assert_str_eq(ha, hb);
    ck_assert_uint_eq(strlen(ha), 32);
    // the hash is XXH3-128 of the text, high half first
    XXH128_hash_t h = XXH3_128bits(ta, strlen(ta));
    char want[33];
    snprintf(want, sizeof want, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    ck_assert_str_eq(ha, want);
    free(ta);
    free(tb);
    ck_assert_int_eq(cfg_canonical(ca, "a", &ta), 0);
    ck_assert_str_eq(ta, "{\"x\":0.1,\"y\":[1,2]}");
    free(ta);
    // a changed value changes text and hash; int 1 and float 1.0 differ
    ck_assert_int_eq(cfg_set(cb, "a.x=0.10000000000000002"), 0);
    ck_assert_int_eq(cfg_hash(cb, "", hb), 0);
    ck_assert_str_ne(ha, hb);
    cfg_free(cb);
    const char *d = "b: 1.0\na:\n  y: [1, 2]\n  x: 0.1\nc: text\n";
    ck_assert_int_eq(cfg_parse_text(&cb, d, strlen(d), "d.yml"), 0);
    ck_assert_int_eq(cfg_hash(cb, "", hb), 0);
    ck_assert_str_ne(ha, hb);
    ck_assert_int_eq(cfg_hash(ca, "nope", ha), ERR_CONFIG);
    cfg_free(ca);
    cfg_free(cb);
}
END_TEST

START_TEST(test_canonical_numbers) {
    const char *y = "a: 2.0\nb: 1e-4\nc: 1e20\nd: -0.0\ne: .nan\nf: 0.30000000000000004\ng: -5\n"
                    "h: \"q\\\"\\\\\\n\"\ni: false\nj: 123456789.125\n";
    cfg *c = NULL;
    ck_assert_int_eq(cfg_parse_text(&c, y, strlen(y), "n.yml"), 0);
    char *t;
    ck_assert_int_eq(cfg_canonical(c, "", &t), 0);
    ck_assert_str_eq(t, "{\"a\":2.0,\"b\":0.0001,\"c\":1e+20,\"d\":-0.0,\"e\":NaN,\"f\":0.30000000000000004,"
                        "\"g\":-5,\"h\":\"q\\\"\\\\\\u000a\",\"i\":false,\"j\":123456789.125}");
    free(t);
    cfg_free(c);
    // shortest round trip on awkward values
    const double vals[] = {0.1, 1.0 / 3.0, 6.02214076e23, 5e-324, 1.7976931348623157e308, 2e-4, 0.9999};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char src[64];
        snprintf(src, sizeof src, "v: %.17g\n", vals[i]);
        ck_assert_int_eq(cfg_parse_text(&c, src, strlen(src), "v.yml"), 0);
        ck_assert_int_eq(cfg_canonical(c, "v", &t), 0);
        ck_assert_msg(strtod(t, NULL) == vals[i], "%s does not read back as %.17g", t, vals[i]);
        ck_assert_msg(strlen(t) <= 24, "%s is not short", t);
        free(t);
        cfg_free(c);
    }
}
END_TEST

START_TEST(test_canonical_except) {
    // a stage's params text: the section without some keys, numbers exactly as cfg_canonical
    // writes them (int64 beyond 2^53, 2.0 as a float), nested drops, absent drops skipped
    const char *y = "s:\n  seed: 9007199254740993\n  guidance: 2.0\n  repeats: 4\n  sub:\n    a: 1\n    b: 2\n";
    cfg *c = NULL;
    ck_assert_int_eq(cfg_parse_text(&c, y, strlen(y), "x.yml"), 0);
    const char *const drop[] = {"repeats", "sub.b", "nothere", NULL};
    char *t = NULL, *u = NULL;
    ck_assert_int_eq(cfg_canonical_except(c, "s", drop, &t), 0);
    ck_assert_str_eq(t, "{\"guidance\":2.0,\"seed\":9007199254740993,\"sub\":{\"a\":1}}");
    ck_assert_int_eq(cfg_canonical_except(c, "s", NULL, &u), 0); // the tree is untouched
    ck_assert_str_eq(u, "{\"guidance\":2.0,\"repeats\":4,\"seed\":9007199254740993,\"sub\":{\"a\":1,\"b\":2}}");
    free(t);
    free(u);
    ck_assert_int_eq(cfg_canonical_except(c, "nosuch", drop, &t), ERR_CONFIG);
    ck_assert_ptr_null(t);
    cfg_free(c);
}
END_TEST

// --- the shipped configs -------------------------------------------------------------------

START_TEST(test_shipped_configs) {
    char dir[4096], defaults[4200], path[4200];
    ck_assert_msg(cli_config_dir(dir, sizeof dir) == 0, "%s", err_msg());
    snprintf(defaults, sizeof defaults, "%s/defaults.yml", dir);
    static const char *const files[] = {NULL, "cifar10.yml", "fmnist.yml", "tiny.yml"};
    for (int i = 0; i < 4; i++) {
        cfg *c = NULL;
        if (files[i]) snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        ck_assert_msg(cfg_load_stack(&c, defaults, files[i] ? path : NULL, NULL, 0) == 0, "%s", err_msg());
        int ch, groups, mult[8];
        size_t nm;
        // every channel count of the UNet must be divisible by num_groups
        ck_assert_int_eq(cfg_get_int(c, "unet.ch", &ch), 0);
        ck_assert_int_eq(cfg_get_int(c, "unet.num_groups", &groups), 0);
        ck_assert_int_eq(cfg_get_int_list(c, "unet.ch_mult", mult, 8, &nm), 0);
        for (size_t k = 0; k < nm; k++) ck_assert_int_eq(ch * mult[k] % groups, 0);
        int in_ch, out_ch, data_ch, rin;
        ck_assert_int_eq(cfg_get_int(c, "unet.in_channels", &in_ch), 0);
        ck_assert_int_eq(cfg_get_int(c, "unet.out_ch", &out_ch), 0);
        ck_assert_int_eq(cfg_get_int(c, "data.channels", &data_ch), 0);
        ck_assert_int_eq(cfg_get_int(c, "resnet.in_channels", &rin), 0);
        ck_assert(in_ch == data_ch && out_ch == data_ch && rin == data_ch);
        static const char *const methods[] = {"ddim", "pndm2", "pndm4"};
        static const char *const spaces[] = {"logit", "feature"};
        static const char *const sched[] = {"linear", "quad", "cosine"};
        int e;
        ck_assert_int_eq(cfg_get_enum(c, "sample.method", methods, 3, &e), 0);
        ck_assert_int_eq(cfg_get_enum(c, "score.space", spaces, 2, &e), 0);
        ck_assert_int_eq(cfg_get_enum(c, "diffusion.beta_schedule", sched, 3, &e), 0);
        if (i <= 1) { // defaults and cifar10: the paper's values (METHOD.md)
            double f;
            int v;
            ck_assert_int_eq(ch, 128);
            ck_assert_int_eq(groups, 32);
            ck_assert_int_eq(cfg_get_int(c, "diffusion.T", &v), 0);
            ck_assert_int_eq(v, 1000);
            ck_assert_int_eq(cfg_get_float(c, "diffusion.beta_start", &f), 0);
            ck_assert_double_eq(f, 1e-4);
            ck_assert_int_eq(cfg_get_float(c, "diffusion.beta_end", &f), 0);
            ck_assert_double_eq(f, 0.02);
            ck_assert_int_eq(cfg_get_float(c, "train_diffusion.lr", &f), 0);
            ck_assert_double_eq(f, 2e-4);
            ck_assert_int_eq(cfg_get_float(c, "train_diffusion.ema", &f), 0);
            ck_assert_double_eq(f, 0.9999);
            ck_assert_int_eq(cfg_get_int(c, "train_diffusion.warmup", &v), 0);
            ck_assert_int_eq(v, 5000);
            ck_assert_int_eq(cfg_get_float(c, "diffusion.cond_ratio", &f), 0);
            ck_assert_double_eq(f, 0.9);
            ck_assert_int_eq(cfg_get_float(c, "train_diffusion.grad_clip", &f), 0);
            ck_assert_double_eq(f, 1.0);
            ck_assert_int_eq(cfg_get_float(c, "sample.guidance", &f), 0);
            ck_assert_double_eq(f, 2.0);
            int ts[8];
            size_t nt;
            ck_assert_int_eq(cfg_get_int_list(c, "sample.timesteps", ts, 8, &nt), 0);
            ck_assert_uint_eq(nt, 4);
            ck_assert(ts[0] == 0 && ts[1] == 120 && ts[2] == 240 && ts[3] == 360);
            ck_assert_int_eq(cfg_get_int(c, "resnet.width", &v), 0);
            ck_assert_int_eq(v, 64);
        }
        cfg_free(c);
    }
}
END_TEST

// --- robustness ----------------------------------------------------------------------------

START_TEST(test_mutated_yaml) {
    // random byte edits of a valid file: every result is a clean success or ERR_CONFIG with a
    // message naming the input (run under ASan by `make SAN=1`)
    static const char alphabet[] = ":-[]{},#&*!|>'\"\n\t %@`?.0123456789abcxyz";
    cfg *sch = schema();
    const char *user = "model:\n  ch: 32\n  mult: [1, 2]\n  name: 'x y'\ntrain: {lr: 0.5, sets: [a, b]}\n"
                       "extra:\n  k: [1, 2]\n";
    size_t len = strlen(user);
    char buf[256];
    philox_key key = rng_stream(9, RNG_TEST, 77, 0, 0);
    uint64_t j = 0;
    int ok = 0, bad = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, user, len + 1);
        int edits = 1 + (int)rng_randint(key, j++, 4);
        for (int e = 0; e < edits; e++) {
            size_t at = rng_randint(key, j++, (uint32_t)len);
            buf[at] = alphabet[rng_randint(key, j++, sizeof alphabet - 1)];
        }
        cfg *u = NULL, *c = NULL;
        int rc = cfg_parse_text(&u, buf, len, "mut.yml");
        if (rc == 0) {
            ck_assert_int_eq(cfg_clone(&c, sch), 0);
            rc = cfg_overlay(c, u);
            if (rc == 0) {
                char *t = NULL;
                ck_assert_int_eq(cfg_canonical(c, "", &t), 0);
                free(t);
            }
        }
        ck_assert_msg(rc == 0 || rc == ERR_CONFIG, "iteration %d: rc %d for:\n%s", it, rc, buf);
        if (rc < 0) ck_assert_msg(strstr(err_msg(), "mut.yml"), "iteration %d: '%s'", it, err_msg());
        rc == 0 ? ok++ : bad++;
        cfg_free(u);
        cfg_free(c);
    }
    ck_assert_int_gt(ok, 100); // both outcomes occur
    ck_assert_int_gt(bad, 100);
    cfg_free(sch);
}
END_TEST

Suite *suite_cfg(void) {
    Suite *s = suite_create("cfg");
    TCase *tc = tcase_create("cfg");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_add_test(tc, test_bad_yaml_line);
    tcase_add_test(tc, test_yaml_rejects);
    tcase_add_test(tc, test_scalar_types);
    tcase_add_test(tc, test_unknown_key);
    tcase_add_test(tc, test_wrong_types);
    tcase_add_test(tc, test_widening_and_open);
    tcase_add_test(tc, test_set);
    tcase_add_test(tc, test_overlay_order);
    tcase_add_test(tc, test_getters);
    tcase_add_test(tc, test_canonical_order);
    tcase_add_test(tc, test_canonical_numbers);
    tcase_add_test(tc, test_canonical_except);
    tcase_add_test(tc, test_shipped_configs);
    tcase_add_test(tc, test_mutated_yaml);
    suite_add_tcase(s, tc);
    return s;
}
