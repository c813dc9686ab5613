// cifar: CIFAR-10/100 binary records (label byte(s) + 3072 CHW pixel bytes) from several files.
#include "datasets/cifar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/infile.h"

static const char *const cifar_names[CIFAR_KIND_COUNT] = {"10", "100-fine", "100-coarse"};

int cifar_kind_from_name(const char *name, cifar_kind *out) {
    if (!strcmp(name, "100")) {
        *out = CIFAR_100_FINE;
        return 0;
    }
    for (int k = 0; k < CIFAR_KIND_COUNT; k++)
        if (!strcmp(name, cifar_names[k])) {
            *out = (cifar_kind)k;
            return 0;
        }
    return err_set(ERR_USAGE, "unknown CIFAR kind '%s' (10, 100, 100-fine, 100-coarse)", name);
}

const char *cifar_kind_name(cifar_kind k) { return k >= 0 && k < CIFAR_KIND_COUNT ? cifar_names[k] : "?"; }

int cifar_read(ds_images *out, const char *const *paths, int n_paths, cifar_kind kind) {
    int rc = 0;
    FILE *f = NULL;
    memset(out, 0, sizeof *out);
    int nlab = kind == CIFAR_10 ? 1 : 2;
    int max_label = kind == CIFAR_10 ? 9 : kind == CIFAR_100_FINE ? 99 : 19;
    int64_t rec = nlab + CIFAR_PIXELS, total = 0;
    ERR_IF(n_paths <= 0, ERR_USAGE, "cifar: no input files");
    int64_t *counts = calloc((size_t)n_paths, sizeof *counts);
    ERR_IF(!counts, ERR_NOMEM, "cifar: out of memory");
    for (int i = 0; i < n_paths; i++) {
        uint64_t size = 0;
        ERR_GOTO(rc, infile_fopen(paths[i], &f, &size));
        fclose(f);
        f = NULL;
        ERR_GOTO_IF(rc, size == 0 || size % (uint64_t)rec != 0, ERR_INPUT,
                    "%s: %lld bytes is not a whole number of CIFAR-%s records of %lld bytes", paths[i],
                    (long long)size, kind == CIFAR_10 ? "10" : "100", (long long)rec);
        counts[i] = (int64_t)(size / (uint64_t)rec);
        total += counts[i];
    }
    ERR_GOTO(rc, ds_images_alloc(out, paths[0], total, 3, CIFAR_SIDE, CIFAR_SIDE));
    int64_t at = 0;
    for (int i = 0; i < n_paths; i++) {
        ERR_GOTO(rc, infile_fopen(paths[i], &f, NULL));
        for (int64_t r = 0; r < counts[i]; r++, at++) {
            unsigned char lab[2];
            if (r % 4096 == 0) ERR_GOTO(rc, ds_poll());
            // a file that shrank since its size was read (or a read error) ends the records early
            ERR_GOTO_IF(rc, fread(lab, 1, (size_t)nlab, f) != (size_t)nlab, ferror(f) ? ERR_IO : ERR_INPUT,
                        "%s: %s at record %lld", paths[i], ferror(f) ? "read error" : "truncated", (long long)r);
            ERR_GOTO_IF(rc, fread(ds_image_at(out, at), 1, CIFAR_PIXELS, f) != CIFAR_PIXELS,
                        ferror(f) ? ERR_IO : ERR_INPUT, "%s: %s at record %lld", paths[i],
                        ferror(f) ? "read error" : "truncated", (long long)r);
            int label = kind == CIFAR_100_FINE ? lab[1] : lab[0];
            ERR_GOTO_IF(rc, label > max_label, ERR_INPUT, "%s: record %lld has label %d (CIFAR-%s labels are 0..%d)",
                        paths[i], (long long)r, label, cifar_kind_name(kind), max_label);
            out->labels[at] = label;
        }
        fclose(f);
        f = NULL;
    }
fail:
    if (f) fclose(f);
    free(counts);
    if (rc < 0) ds_images_free(out);
    return rc;
}
