// import-weights (issue 14): the original DiffOOD project's and OpenOOD's PyTorch checkpoints,
// or safetensors files, into checkpoint stores that sample and extract-features accept as if
// train had written them; and (--export) any checkpoint store's weights out to safetensors.
//
//   import-weights CKPT --model unet|resnet18 --out STORE [--config FILE] [--set k=v]
//                  [--mean M[,M,M] --std S[,S,S] | --data STORE] [--ema FILE] [--optim] [--force]
//   import-weights --export STORE --safetensors FILE [--table param|ema|best_param]
//
// CKPT is a torch.save zip (a state_dict such as model-N.ckpt or OpenOOD's best.ckpt; the EMA
// dict ema.ckpt; a train.ckpt-shaped list whose item 0 is the state_dict; DDP's "module."
// prefix stripped) or a safetensors file. Its names and shapes must be exactly the network of
// the configuration's `unet` / `resnet` section. The store holds, for the denoiser, tables
// `param` and `ema` (CKPT's weights in both, or --ema FILE's in `ema`) and, for the
// classifier, `param` and `buffer`; meta model, config, mean, std, step, epoch, source, the
// stage fields and complete=true. --optim (train.ckpt) adds the Adam moments (`optim`) and the
// step; with --data TRAIN_STORE the store then takes train's identity for that store and stays
// unfinished, so `train --data TRAIN_STORE --out STORE` continues the run.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/nn/resnet.h"
#include "common/nn/unet.h"
#include "common/stage.h"
#include "common/train/tr.h"
#include "tools/import_weights/iw.h"

#define IW_VERSION 1

static const cli_opt iw_opts[] = {
    {"model", "MODEL", 0, "unet (the denoiser; also 'diffusion') or resnet18 (the discriminator; also 'classifier')"},
    {"out", "STORE", 0, "checkpoint store to write (created)"},
    {"ema", "FILE", 0, "denoiser: EMA weights (ema.ckpt) for table ema when CKPT holds the trained weights"},
    {"mean", "M[,M,M]", 0, "input normalisation mean per channel, of x in [0, 1] (classifier: required unless --data)"},
    {"std", "S[,S,S]", 0, "input normalisation std per channel (with --mean)"},
    {"data", "STORE", 0, "image store whose meta mean/std are the normalisation (with --optim: the training store)"},
    {"optim", NULL, 0, "train.ckpt: also the Adam moments and step; with --data an unfinished train checkpoint"},
    {"force", NULL, 0, "replace a store made from other weights or parameters"},
    {"export", "STORE", 0, "export mode: write the weights of this checkpoint store to --safetensors FILE"},
    {"safetensors", "FILE", 0, "export: the safetensors file to write"},
    {"table", "TABLE", 0, "export: param, ema or best_param (default: the weights detection uses)"},
    {0}};

static const cli_spec iw_spec = {
    "import-weights",
    "CKPT --model unet|resnet18 --out STORE [--config FILE] [--mean M --std S | --data STORE] [options]\n"
    "       import-weights --export STORE --safetensors FILE [--table TABLE]",
    "Imports PyTorch zip checkpoints (torch.save: state_dict, ema.ckpt, train.ckpt, DDP 'module.' names, OpenOOD "
    "ResNet-18) or safetensors files into a checkpoint store that sample and extract-features accept; names and "
    "shapes are checked against the configuration's network. --export writes a store's weights to safetensors "
    "with the reference state_dict names (load_state_dict(strict=True) on the reference PyTorch modules).",
    iw_opts, CLI_STD_ALL, 0, 1};

// --- inputs ----------------------------------------------------------------------------------

typedef struct {
    const char *path;
    uint8_t *buf;
    size_t n;
    wio_file f;
    iw_source src;
    char hash[HASH_HEX_LEN + 1];
} iw_in;

static int iw_read(iw_in *in, const char *path) {
    memset(in, 0, sizeof *in);
    in->path = path;
    FILE *fp = fopen(path, "rb");
    ERR_IF(!fp, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int rc = 0;
    long len = -1;
    if (fseek(fp, 0, SEEK_END) == 0) len = ftell(fp);
    ERR_GOTO_IF(rc, len < 0 || fseek(fp, 0, SEEK_SET) != 0, ERR_IO, "%s: cannot size the file", path);
    in->n = (size_t)len;
    in->buf = malloc(in->n ? in->n : 1);
    ERR_GOTO_IF(rc, !in->buf, ERR_NOMEM, "out of memory for %s (%zu bytes)", path, in->n);
    ERR_GOTO_IF(rc, fread(in->buf, 1, in->n, fp) != in->n, ERR_IO, "%s: read error", path);
    hash_bytes_hex(in->buf, in->n, in->hash);
    ERR_GOTO(rc, wio_parse(&in->f, in->buf, in->n, path));
    ERR_GOTO(rc, iw_source_find(&in->f, path, &in->src));
fail:
    fclose(fp);
    return rc;
}

static void iw_in_free(iw_in *in) {
    wio_file_free(&in->f);
    free(in->buf);
    memset(in, 0, sizeof *in);
}

// "0.5" or "0.49,0.48,0.45" into v[0..c): one value is used for every channel.
static int iw_parse_list(const char *opt, const char *text, double *v, int c) {
    int n = 0;
    const char *p = text;
    while (*p) {
        char *end = NULL;
        errno = 0;
        double x = strtod(p, &end);
        ERR_IF(end == p || errno || n >= c, ERR_USAGE, "--%s '%s': expected 1 or %d comma-separated numbers", opt, text,
               c);
        v[n++] = x;
        p = end;
        if (*p == ',') p++;
        else ERR_IF(*p, ERR_USAGE, "--%s '%s': expected 1 or %d comma-separated numbers", opt, text, c);
    }
    ERR_IF(n != 1 && n != c, ERR_USAGE, "--%s '%s': expected 1 or %d comma-separated numbers", opt, text, c);
    for (int i = n; i < c; i++) v[i] = v[0];
    return 0;
}

// The normalisation: --mean/--std, or --data's meta, or none (*have = 0).
static int iw_norm(const cli_args *a, int c, double *mean, double *std, int *have) {
    const char *m = cli_get(a, "mean"), *s = cli_get(a, "std"), *data = cli_get(a, "data");
    *have = 0;
    ERR_IF(!m != !s, ERR_USAGE, "give --mean and --std together");
    ERR_IF(m && data && !cli_has(a, "optim"), ERR_USAGE, "give either --mean/--std or --data, not both");
    if (m) {
        ERR_TRY(iw_parse_list("mean", m, mean, c));
        ERR_TRY(iw_parse_list("std", s, std, c));
    } else if (data) {
        ts_store *st = NULL;
        ERR_TRY(ts_open(&st, data, TS_RDONLY));
        int rc = tr_meta_get_doubles(st, "mean", mean, c);
        if (rc >= 0) rc = tr_meta_get_doubles(st, "std", std, c);
        ts_close(st);
        if (rc == ERR_NOTFOUND) rc = err_set(ERR_INPUT, "%s: an image store without meta mean/std", data);
        ERR_TRY(rc);
    } else {
        return 0;
    }
    for (int i = 0; i < c; i++)
        ERR_IF(!(std[i] > 0) || mean[i] != mean[i], ERR_USAGE, "--std %g / --mean %g of channel %d: need std > 0",
               std[i], mean[i], i);
    *have = 1;
    return 0;
}

// --- the store ---------------------------------------------------------------------------------

typedef struct {
    const char *model, *out, *data;
    cfg *root;
    nn_net *net;
    iw_in main, ema;
    int have_ema, have_norm, optim, train_id;
    double mean[4], std[4];
    int channels;
} iw_job;

// The config section `name` as a JSON object into obj.
static int iw_section(cJSON *obj, const cfg *root, const char *name) {
    char *text = NULL;
    ERR_TRY(cfg_canonical(root, name, &text));
    cJSON *x = cJSON_Parse(text);
    free(text);
    ERR_IF(!x, ERR_NOMEM, "out of memory");
    cJSON_AddItemToObject(obj, name, x);
    return 0;
}

// The store's stage params and inputs: for an import, what the weights mean to detection (the
// network section; the denoiser's schedule, which sample reads from the checkpoint; the
// normalisation) and the files' hashes; with train's identity, what train would compute.
static int iw_identity(iw_job *j, char **params, char **inputs) {
    if (j->train_id) { // train continues from this store
        ERR_TRY(tr_stage_params(j->root, j->model, params));
        return tr_stage_inputs(j->data, NULL, inputs);
    }
    cJSON *p = cJSON_CreateObject(), *in = cJSON_CreateObject();
    int rc = 0;
    ERR_GOTO_IF(rc, !p || !in, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(p, "model", j->model);
    if (strcmp(j->model, "diffusion") == 0) {
        ERR_GOTO(rc, iw_section(p, j->root, "unet"));
        ERR_GOTO(rc, iw_section(p, j->root, "diffusion"));
    } else {
        ERR_GOTO(rc, iw_section(p, j->root, "resnet"));
    }
    cJSON_AddBoolToObject(p, "optim", j->optim);
    if (j->have_norm) {
        cJSON_AddItemToObject(p, "mean", cJSON_CreateDoubleArray(j->mean, j->channels));
        cJSON_AddItemToObject(p, "std", cJSON_CreateDoubleArray(j->std, j->channels));
    }
    cJSON_AddStringToObject(in, "weights", j->main.hash);
    if (j->have_ema) cJSON_AddStringToObject(in, "ema", j->ema.hash);
    ERR_GOTO(rc, stage_canonical_json(p, params));
    ERR_GOTO(rc, stage_canonical_json(in, inputs));
fail:
    cJSON_Delete(p);
    cJSON_Delete(in);
    return rc;
}

// Host weights -> the net's device arena -> table (tr_ckpt_put, as train writes it).
static int iw_put(ts_store *s, const char *table, const char *prefix, nn_net *net, nn_kind kind, const float *host) {
    size_t nf = kind == NN_KIND_PARAM ? net->n_params : net->n_buffers;
    float *dev = kind == NN_KIND_PARAM ? net->params : net->buffers;
    if (!nf) return 0;
    ERR_TRY(ops_upload(net->ctx, dev, host, sizeof(float) * nf));
    return tr_ckpt_put(s, table, prefix, net, kind, dev);
}

static int iw_write(iw_job *j, ts_store *s, float *w, float *buf, float *ema, float *m, float *v) {
    char *config_text = NULL;
    int rc = 0;
    ERR_GOTO(rc, ts_begin_write(s));
    ERR_GOTO(rc, iw_put(s, "param", NULL, j->net, NN_KIND_PARAM, w));
    if (strcmp(j->model, "diffusion") == 0) ERR_GOTO(rc, iw_put(s, "ema", NULL, j->net, NN_KIND_PARAM, ema));
    else ERR_GOTO(rc, iw_put(s, "buffer", NULL, j->net, NN_KIND_BUFFER, buf));
    if (m) {
        ERR_GOTO(rc, iw_put(s, "optim", "exp_avg.", j->net, NN_KIND_PARAM, m));
        ERR_GOTO(rc, iw_put(s, "optim", "exp_avg_sq.", j->net, NN_KIND_PARAM, v));
    }
    ERR_GOTO(rc, cfg_canonical(j->root, "", &config_text));
    ERR_GOTO(rc, ts_meta_put(s, "model", j->model));
    ERR_GOTO(rc, ts_meta_put(s, "config", config_text));
    if (j->have_norm) {
        ERR_GOTO(rc, tr_meta_put_doubles(s, "mean", j->mean, j->channels));
        ERR_GOTO(rc, tr_meta_put_doubles(s, "std", j->std, j->channels));
    }
    const iw_source *src = &j->main.src;
    ERR_GOTO(rc, tr_meta_put_i64(s, "step", j->optim && src->step >= 0 ? src->step : 0));
    ERR_GOTO(rc, tr_meta_put_i64(s, "epoch", j->optim && src->epoch >= 0 ? src->epoch : 0));
    if (src->step >= 0) ERR_GOTO(rc, tr_meta_put_i64(s, "source_step", src->step));
    ERR_GOTO(rc, ts_meta_put(s, "source", j->main.path));
    if (j->have_ema) ERR_GOTO(rc, ts_meta_put(s, "source_ema", j->ema.path));
    if (j->train_id) {
        char key[HASH_HEX_LEN + 1];
        ERR_GOTO(rc, stage_input_key(j->data, key));
        ERR_GOTO(rc, ts_meta_put(s, "data_key", key));
    }
    if (!j->train_id) ERR_GOTO(rc, stage_mark_complete(s));
    ERR_GOTO(rc, ts_commit(s));
fail:
    if (rc < 0 && ts_in_write(s)) ts_abort(s);
    free(config_text);
    return rc;
}

// --- import ------------------------------------------------------------------------------------

static int iw_summary(const iw_job *j, const char *status, int tensors) {
    cJSON *x = cJSON_CreateObject();
    ERR_IF(!x, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(x, "out", j->out);
    cJSON_AddStringToObject(x, "model", j->model);
    cJSON_AddStringToObject(x, "source", j->main.path);
    cJSON_AddStringToObject(x, "format", j->main.f.format == WIO_FMT_TORCH ? "torch" : "safetensors");
    cJSON_AddNumberToObject(x, "tensors", tensors);
    cJSON_AddBoolToObject(x, "ddp_prefix", j->main.src.ddp);
    if (j->main.src.step >= 0) cJSON_AddNumberToObject(x, "source_step", (double)j->main.src.step);
    cJSON_AddBoolToObject(x, "optim", j->optim);
    cJSON_AddBoolToObject(x, "complete", !j->train_id);
    int rc = cli_summary(stdout, status, x);
    cJSON_Delete(x);
    return rc;
}

static int iw_import(const cli_args *a) {
    iw_job j;
    memset(&j, 0, sizeof j);
    const char *model = cli_get(a, "model");
    j.out = cli_get(a, "out");
    j.data = cli_get(a, "data");
    j.optim = cli_has(a, "optim");
    ERR_IF(cli_npos(a) != 1, ERR_USAGE, "give the checkpoint file to import (CKPT)");
    ERR_IF(!model, ERR_USAGE, "--model unet|resnet18 is required");
    if (strcmp(model, "unet") == 0 || strcmp(model, "diffusion") == 0) j.model = "diffusion";
    else if (strcmp(model, "resnet18") == 0 || strcmp(model, "classifier") == 0) j.model = "classifier";
    else return err_set(ERR_USAGE, "--model must be unet or resnet18, not '%s'", model);
    ERR_IF(!j.out, ERR_USAGE, "--out STORE is required");
    ERR_IF(cli_has(a, "ema") && strcmp(j.model, "diffusion") != 0, ERR_USAGE, "--ema is for --model unet");
    ERR_IF(j.optim && strcmp(j.model, "diffusion") != 0, ERR_USAGE,
           "--optim is for --model unet (the original project's train.ckpt holds Adam's state)");
    ERR_IF(cli_has(a, "table") || cli_has(a, "safetensors"), ERR_USAGE, "--table and --safetensors go with --export");
    j.train_id = j.optim && j.data;

    ops_ctx *ctx = NULL;
    unet_model *um = NULL;
    resnet_model *rm = NULL;
    char *params = NULL, *inputs = NULL;
    float *w = NULL, *buf = NULL, *ema = NULL, *m = NULL, *v = NULL;
    ts_store *s = NULL;
    int rc = 0, tensors = 0;
    ERR_GOTO(rc, cli_load_config(a, &j.root));
    ERR_GOTO(rc, tr_check_config(j.root, j.model));
    ERR_GOTO(rc, cfg_get_int(j.root, strcmp(j.model, "diffusion") == 0 ? "unet.in_channels" : "resnet.in_channels",
                             &j.channels));
    ERR_GOTO_IF(rc, j.channels < 1 || j.channels > 4, ERR_CONFIG, "in_channels %d outside 1..4", j.channels);
    ERR_GOTO(rc, iw_norm(a, j.channels, j.mean, j.std, &j.have_norm));
    ERR_GOTO_IF(rc, !j.have_norm && strcmp(j.model, "classifier") == 0, ERR_USAGE,
                "the classifier needs its input normalisation: --mean M --std S (OpenOOD CIFAR-10: --mean "
                "0.4914,0.4822,0.4465 --std 0.2470,0.2435,0.2616) or --data IMAGE_STORE");
    ERR_GOTO(rc, iw_read(&j.main, cli_pos(a, 0)));
    if (cli_has(a, "ema")) {
        ERR_GOTO(rc, iw_read(&j.ema, cli_get(a, "ema")));
        j.have_ema = 1;
    }
    ERR_GOTO_IF(rc, j.optim && !j.main.f.top_is_list, ERR_USAGE,
                "--optim needs a train.ckpt-shaped list [model, optimizer, scheduler, epoch, step, time]; %s is not one",
                j.main.path);

    ERR_GOTO(rc, iw_identity(&j, &params, &inputs));
    stage_id id = {j.train_id ? "train" : "import-weights", j.train_id ? TR_STAGE_VERSION : IW_VERSION, params, inputs,
                   NULL};
    stage_state st;
    ERR_GOTO(rc, stage_probe(j.out, &id, cli_has(a, "force"), &st));
    if (st == STAGE_UP_TO_DATE && !j.train_id) {
        log_info("%s: up to date", j.out);
        ERR_GOTO(rc, iw_summary(&j, "up to date", 0));
        goto fail;
    }
    ERR_GOTO_IF(rc, j.train_id && st != STAGE_FRESH, ERR_CONFLICT,
                "%s: train has already continued from these weights (meta step); --force replaces that progress",
                j.out);

    ops_options oo = ops_options_default();
    oo.threads = cli_threads(a);
    // the weights pass through the network's arenas: the CPU unless --device says otherwise
    ERR_GOTO(rc, ops_ctx_create_named(&ctx, cli_has(a, "device") ? cli_device(a) : "cpu", &oo));
    const cfg *node = NULL;
    if (strcmp(j.model, "diffusion") == 0) {
        unet_config uc;
        ERR_GOTO(rc, cfg_subtree(j.root, "unet", &node));
        ERR_GOTO(rc, unet_config_from_cfg(node, &uc));
        ERR_GOTO(rc, unet_create(&um, ctx, &uc, 1));
        j.net = unet_net(um);
    } else {
        resnet_config rcfg;
        ERR_GOTO(rc, cfg_subtree(j.root, "resnet", &node));
        ERR_GOTO(rc, resnet_config_from_cfg(node, &rcfg));
        ERR_GOTO(rc, resnet_create(&rm, ctx, &rcfg, 1));
        j.net = resnet_net(rm);
    }
    size_t np = j.net->n_params, nb = j.net->n_buffers;
    w = calloc(np + 1, sizeof(float));
    buf = calloc(nb + 1, sizeof(float));
    ERR_GOTO_IF(rc, !w || !buf, ERR_NOMEM, "out of memory for %zu weights", np);
    ERR_GOTO(rc, iw_map(&j.main.f, &j.main.src, j.main.path, j.net, w, buf));
    ema = w;
    if (j.have_ema) {
        ema = calloc(np + 1, sizeof(float));
        ERR_GOTO_IF(rc, !ema, ERR_NOMEM, "out of memory for %zu weights", np);
        ERR_GOTO(rc, iw_map(&j.ema.f, &j.ema.src, j.ema.path, j.net, ema, NULL));
    }
    if (j.optim) {
        m = calloc(np + 1, sizeof(float));
        v = calloc(np + 1, sizeof(float));
        ERR_GOTO_IF(rc, !m || !v, ERR_NOMEM, "out of memory for %zu weights", np);
        ERR_GOTO(rc, iw_map_adam(&j.main.f, j.main.path, j.net, m, v));
        ERR_GOTO_IF(rc, j.main.src.step < 0, ERR_INPUT, "%s: item 4 (the step) is not an integer", j.main.path);
    }
    tensors = j.net->n_entries;

    ERR_GOTO(rc, stage_open_output(&s, j.out, &id, cli_has(a, "force"), &st));
    ts_set_zstd_level(s, 1);
    ERR_GOTO(rc, iw_write(&j, s, w, buf, ema, m, v));
    log_info("%s: %s from %s%s (%d tensors%s)", j.out, j.model, j.main.path, j.main.src.ddp ? " (DDP names)" : "",
             tensors, j.train_id ? "; unfinished train checkpoint: run train to continue" : "");
    ERR_GOTO(rc, iw_summary(&j, "ok", tensors));
fail:
    ts_close(s);
    if (ema != w) free(ema);
    free(w);
    free(buf);
    free(m);
    free(v);
    free(params);
    free(inputs);
    unet_destroy(um);
    resnet_destroy(rm);
    ops_ctx_destroy(ctx);
    iw_in_free(&j.main);
    iw_in_free(&j.ema);
    cfg_free(j.root);
    return rc;
}

static int iw_export_main(const cli_args *a) {
    const char *store = cli_get(a, "export"), *out = cli_get(a, "safetensors");
    ERR_IF(!out, ERR_USAGE, "--export needs --safetensors FILE");
    ERR_IF(cli_npos(a) || cli_has(a, "out") || cli_has(a, "model"), ERR_USAGE,
           "--export takes a checkpoint store and --safetensors FILE only");
    int n = 0;
    ERR_TRY(iw_export(store, cli_get(a, "table"), out, &n));
    log_info("%s: %d tensors written to %s", store, n, out);
    cJSON *x = cJSON_CreateObject();
    ERR_IF(!x, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(x, "store", store);
    cJSON_AddStringToObject(x, "safetensors", out);
    cJSON_AddNumberToObject(x, "tensors", n);
    int rc = cli_summary(stdout, "ok", x);
    cJSON_Delete(x);
    return rc;
}

int main(int argc, char **argv) {
    cli_args *a = NULL;
    int rc = cli_parse(&a, &iw_spec, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, &iw_spec);
        cli_args_free(a);
        return 0;
    }
    if (rc >= 0) rc = cli_has(a, "export") ? iw_export_main(a) : iw_import(a);
    cli_args_free(a);
    return rc < 0 ? cli_fail(rc) : 0;
}
