// source: format dispatch, source fingerprints and per-image access for ingest (source.h).
#include "datasets/source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/infile.h"
#include "common/hash.h"
#include "datasets/idx.h"
#include "datasets/mnistjson.h"

static const char *const ds_format_names[DS_FMT_COUNT] = {
#define DS_FORMAT_NAME(name, text) text,
    DS_FORMAT_LIST(DS_FORMAT_NAME)
#undef DS_FORMAT_NAME
};

int ds_format_from_name(const char *name, ds_format *out) {
    for (int i = 0; i < DS_FMT_COUNT; i++)
        if (!strcmp(name, ds_format_names[i])) {
            *out = (ds_format)i;
            return 0;
        }
    return err_set(ERR_USAGE, "unknown --format '%s' (idx, mnist-json, cifar, imglist, npy)", name);
}

const char *ds_format_name(ds_format f) { return f >= 0 && f < DS_FMT_COUNT ? ds_format_names[f] : "?"; }

int ds_source_check_spec(const ds_source_spec *sp) {
    switch (sp->format) {
    case DS_FMT_IDX:
        ERR_IF(!sp->images || !sp->labels, ERR_USAGE, "--format idx needs --images FILE and --labels FILE");
        break;
    case DS_FMT_NPY:
        ERR_IF(!sp->images, ERR_USAGE, "--format npy needs --images FILE (and optionally --labels FILE)");
        break;
    case DS_FMT_MNISTJSON:
        ERR_IF(sp->n_paths != 1, ERR_USAGE, "--format mnist-json needs one --path DIR (holding 0.json .. 9.json)");
        break;
    case DS_FMT_CIFAR:
        ERR_IF(sp->n_paths < 1, ERR_USAGE, "--format cifar needs --path FILE (repeat it for several files)");
        break;
    case DS_FMT_IMGLIST:
        ERR_IF(!sp->list, ERR_USAGE, "--format imglist needs --list FILE (and --root DIR, --size S)");
        break;
    default:
        return err_set(ERR_USAGE, "unknown format");
    }
    ERR_IF(sp->channels != 0 && sp->channels != 1 && sp->channels != 3, ERR_USAGE, "--channels must be 1 or 3, not %d",
           sp->channels);
    ERR_IF(sp->size < 0 || sp->size > 65536, ERR_USAGE, "--size must be 1..65536, not %d", sp->size);
    ERR_IF(sp->num_classes < 0 || sp->num_classes > DS_MAX_CLASSES, ERR_USAGE, "--num-classes must be 1..%d, not %d",
           DS_MAX_CLASSES, sp->num_classes);
    ERR_IF(sp->num_classes && (sp->format == DS_FMT_CIFAR || sp->format == DS_FMT_MNISTJSON), ERR_USAGE,
           "--num-classes applies to idx, npy and imglist (%s fixes its classes)", ds_format_name(sp->format));
    return 0;
}

// The class count labels are checked against (ds_source_spec.num_classes).
static int ds_num_classes(const ds_source_spec *sp) {
    if (sp->num_classes > 0) return sp->num_classes;
    return sp->format == DS_FMT_IDX ? 10 : DS_MAX_CLASSES;
}

// --- fingerprints --------------------------------------------------------------------------

// XXH3-128 of a source file as hex: a regular file of at most max_bytes, streamed, polling
// ds_poll() every MiB.
static int ds_hash_file(const char *path, uint64_t max_bytes, char hex[HASH_HEX_LEN + 1]) {
    FILE *f = NULL;
    uint64_t size = 0;
    ERR_TRY(infile_fopen(path, &f, &size));
    int rc = 0;
    ERR_GOTO_IF(rc, size > max_bytes, ERR_INPUT,
                "%s: %llu bytes, more than a source file can need (%llu; DIFFOOD_DS_MAX_BYTES sets the pixel limit)",
                path, (unsigned long long)size, (unsigned long long)max_bytes);
    rc = hash_stream_hex(f, path, max_bytes, ds_poll, hex);
fail:
    fclose(f);
    return rc;
}

static int ds_fp_add(cJSON *inputs, cJSON *files, const char *role, const char *path, uint64_t max_bytes) {
    char hex[HASH_HEX_LEN + 1];
    ERR_TRY(ds_hash_file(path, max_bytes, hex));
    cJSON *f = cJSON_CreateObject();
    ERR_IF(!f, ERR_NOMEM, "out of memory");
    cJSON_AddItemToArray(files, f);
    ERR_IF(!cJSON_AddStringToObject(f, "path", path) || !cJSON_AddStringToObject(f, "xxh3", hex) ||
               !cJSON_AddStringToObject(inputs, role, hex),
           ERR_NOMEM, "out of memory");
    return 0;
}

static int ds_check_list_labels(const ds_source_spec *sp, const imglist *l);

// The list file, and one hash over (relative path, image hash) of every listed image.
static int ds_fp_imglist(const ds_source_spec *sp, cJSON *inputs, cJSON *files) {
    int rc = 0;
    imglist l;
    hash_state *h = NULL;
    char hex[HASH_HEX_LEN + 1];
    ERR_TRY(ds_fp_add(inputs, files, "list", sp->list, ds_max_file_bytes()));
    if (sp->root && *sp->root) {
        struct stat st;
        ERR_IF(stat(sp->root, &st) != 0, errno == ENOENT || errno == ENOTDIR ? ERR_NOTFOUND : ERR_IO,
               "--root %s: %s", sp->root, strerror(errno));
        ERR_IF(!S_ISDIR(st.st_mode), ERR_INPUT, "--root %s: not a directory", sp->root);
    }
    ERR_GOTO(rc, imglist_read(&l, sp->list, NULL));
    ERR_GOTO(rc, ds_check_list_labels(sp, &l)); // before the images are read
    ERR_GOTO(rc, hash_init(&h));
    for (int64_t i = 0; i < l.n; i++) {
        const char *rel = l.items[i].path;
        size_t need = (sp->root && *sp->root ? strlen(sp->root) + 1 : 0) + strlen(rel) + 1;
        char *full = malloc(need);
        ERR_GOTO_IF(rc, !full, ERR_NOMEM, "out of memory");
        if (sp->root && *sp->root)
            snprintf(full, need, "%s/%s", sp->root, rel);
        else
            snprintf(full, need, "%s", rel);
        rc = ds_hash_file(full, ds_max_file_bytes(), hex);
        free(full);
        if (rc < 0) {
            err_prefix(rc, "%s:%d: ", sp->list, l.items[i].line);
            goto fail;
        }
        hash_update_text(h, rel);
        hash_update_text(h, hex);
    }
    hash_final_hex(h, hex);
    if (!cJSON_AddStringToObject(inputs, "images", hex)) rc = err_set(ERR_NOMEM, "out of memory");
fail:
    hash_free(h);
    imglist_free(&l);
    return rc;
}

int ds_source_fingerprint(const ds_source_spec *sp, cJSON **inputs, cJSON **files) {
    int rc = 0;
    char role[32], path[4096];
    *inputs = cJSON_CreateObject();
    *files = cJSON_CreateArray();
    ERR_GOTO_IF(rc, !*inputs || !*files, ERR_NOMEM, "out of memory");
    switch (sp->format) {
    case DS_FMT_IDX:
    case DS_FMT_NPY:
        ERR_GOTO(rc, ds_fp_add(*inputs, *files, "images", sp->images, ds_max_file_bytes()));
        if (sp->labels) // NPY labels may be int64: 8 bytes per image of at least one byte
            ERR_GOTO(rc, ds_fp_add(*inputs, *files, "labels", sp->labels,
                                   ds_max_file_bytes() > UINT64_MAX / 8 ? UINT64_MAX : 8 * ds_max_file_bytes()));
        break;
    case DS_FMT_MNISTJSON:
        ERR_GOTO(rc, mnistjson_check_dir(sp->paths[0]));
        for (int d = 0; d < 10; d++) {
            snprintf(role, sizeof role, "%d.json", d);
            ERR_GOTO(rc, ds_fp_add(*inputs, *files, role, mnistjson_path(path, sizeof path, sp->paths[0], d),
                                   MNISTJSON_MAX_FILE));
        }
        break;
    case DS_FMT_CIFAR:
        for (int i = 0; i < sp->n_paths; i++) {
            snprintf(role, sizeof role, "file%03d", i);
            ERR_GOTO(rc, ds_fp_add(*inputs, *files, role, sp->paths[i], ds_max_file_bytes()));
        }
        break;
    case DS_FMT_IMGLIST:
        ERR_GOTO(rc, ds_fp_imglist(sp, *inputs, *files));
        break;
    default:
        rc = err_set(ERR_USAGE, "unknown format");
    }
fail:
    if (rc < 0) {
        cJSON_Delete(*inputs);
        cJSON_Delete(*files);
        *inputs = *files = NULL;
    }
    return rc;
}

// --- loading and access --------------------------------------------------------------------

// Why labels stop at K (for messages).
static const char *ds_classes_hint(const ds_source_spec *sp) {
    return sp->num_classes          ? "as --num-classes says"
           : sp->format == DS_FMT_IDX ? "as in MNIST and Fashion-MNIST; --num-classes K for other IDX sets"
                                    : "the largest label count";
}

// Every listed label in 0..K-1 or -1 (OOD), named by list:line.
static int ds_check_list_labels(const ds_source_spec *sp, const imglist *l) {
    int K = ds_num_classes(sp);
    for (int64_t i = 0; i < l->n; i++) {
        int32_t v = l->items[i].label;
        ERR_IF(v >= K || v < -1, ERR_INPUT, "%s:%d: label %d of image %lld is outside 0..%d (%d classes, %s) or -1 (OOD)",
               sp->list, l->items[i].line, (int)v, (long long)i, K - 1, K, ds_classes_hint(sp));
    }
    return 0;
}

// Every label in 0..K-1, or -1 where the format marks OOD images (npy, imglist).
static int ds_check_labels(const ds_source *s) {
    const ds_source_spec *sp = &s->spec;
    int K = ds_num_classes(sp), ood_ok = sp->format == DS_FMT_NPY || sp->format == DS_FMT_IMGLIST;
    const char *hint = ds_classes_hint(sp);
    if (sp->format == DS_FMT_IMGLIST) return ds_check_list_labels(sp, &s->list);
    const char *file = sp->labels ? sp->labels : sp->images;
    for (int64_t i = 0; i < s->mem.n; i++) {
        int32_t v = s->mem.labels[i];
        ERR_IF(v >= K || v < (ood_ok ? -1 : 0), ERR_INPUT, "%s: label %d at index %lld is outside 0..%d (%d classes, %s)%s",
               file ? file : ds_format_name(sp->format), (int)v, (long long)i, K - 1, K, hint,
               ood_ok ? " or -1 (OOD)" : "");
    }
    return 0;
}

int ds_source_open(ds_source *s, const ds_source_spec *sp) {
    int rc = 0;
    memset(s, 0, sizeof *s);
    s->spec = *sp;
    ERR_TRY(ds_source_check_spec(sp));
    switch (sp->format) {
    case DS_FMT_IDX:
        ERR_TRY(idx_read(&s->mem, sp->images, sp->labels));
        break;
    case DS_FMT_MNISTJSON:
        ERR_TRY(mnistjson_read_dir(&s->mem, sp->paths[0]));
        break;
    case DS_FMT_CIFAR:
        ERR_TRY(cifar_read(&s->mem, sp->paths, sp->n_paths, sp->cifar));
        break;
    case DS_FMT_NPY:
        ERR_TRY(npyimg_read(&s->mem, sp->images, sp->labels, sp->layout));
        break;
    case DS_FMT_IMGLIST: {
        ERR_TRY(imglist_read(&s->list, sp->list, sp->root));
        ERR_TRY(ds_check_labels(s));
        s->n = s->list.n;
        s->c = sp->channels ? sp->channels : 3;
        if (sp->size > 0) {
            s->h = s->w = sp->size;
        } else { // the first image fixes the size; every other must match it
            uint8_t *pix = NULL;
            int c, h, w;
            rc = imglist_decode_file(s->list.items[0].path, &pix, &c, &h, &w);
            free(pix);
            if (rc < 0) return err_prefix(rc, "%s:%d: ", sp->list, s->list.items[0].line);
            s->h = h;
            s->w = w;
        }
        return 0;
    }
    default:
        return err_set(ERR_USAGE, "unknown format");
    }
    ERR_TRY(ds_check_labels(s));
    s->n = s->mem.n;
    s->c = sp->channels ? sp->channels : s->mem.c;
    s->h = s->mem.h;
    s->w = s->mem.w;
    if (s->c != s->mem.c) {
        // Validate the conversion once, so ds_source_get cannot fail on it.
        uint8_t pin[4] = {0, 0, 0, 0}, pout[3];
        ERR_TRY(ds_convert_channels(pout, s->c, pin, s->mem.c, 1, 1));
    }
    return rc;
}

void ds_source_close(ds_source *s) {
    ds_images_free(&s->mem);
    imglist_free(&s->list);
    free(s->scratch);
    memset(s, 0, sizeof *s);
}

int32_t ds_source_label(const ds_source *s, int64_t i) {
    return s->spec.format == DS_FMT_IMGLIST ? s->list.items[i].label : s->mem.labels[i];
}

int ds_source_get(ds_source *s, int64_t i, uint8_t *dst) {
    if (s->spec.format == DS_FMT_IMGLIST) return imglist_load(&s->list, i, dst, s->c, s->spec.size, s->h, s->w);
    const uint8_t *src = ds_image_at(&s->mem, i);
    if (s->c == s->mem.c) {
        memcpy(dst, src, ds_image_bytes(&s->mem));
        return 0;
    }
    return ds_convert_channels(dst, s->c, src, s->mem.c, s->h, s->w);
}
