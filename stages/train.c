// train: the training stage (issue 5; METHOD.md sections 3 and 5). Trains the class-conditional
// denoiser UNet or the ResNet-18 discriminator on an ingested image store into a checkpoint
// store, resumable to the bit; `--eval` measures a classifier checkpoint's accuracy.
//
//   train --model diffusion|classifier --data TRAIN_STORE [--val VAL_STORE] --out CKPT_STORE
//         [--config FILE] [--set k=v] [--device auto|cpu|cuda] [--threads N] [--force]
//   train --model classifier --out CKPT_STORE --eval TEST_STORE
//
// The store key covers the model, the network and schedule sections and the training section
// without the keys that do not change the result (minutes, log_every, checkpoint_every), and
// the keys of the input stores. A run stopped by its `minutes` budget ends with a checkpoint and
// the store NOT complete: rerun the same command to continue. Results are bit-identical across
// interruptions for the same --threads (and device).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/log.h"
#include "common/png.h"
#include "common/stage.h"
#include "common/train/tr.h"
#include "kernels/ops.h"


static const cli_opt train_opts[] = {
    {"model", "MODEL", 0, "diffusion (the denoiser UNet) or classifier (the ResNet-18 discriminator)"},
    {"data", "STORE", 0, "training image store (from ingest; needs labels)"},
    {"val", "STORE", 0, "validation image store (default: classifier: the held-out val_fraction; "
                        "denoiser: the first training images)"},
    {"out", "STORE", 0, "checkpoint store (created; resumed when it holds an unfinished run)"},
    {"eval", "STORE", 0, "classifier only: print the accuracy of the checkpoint --out on this store"},
    {"force", NULL, 0, "replace a checkpoint store made with other parameters or data"},
    {0}};

static const cli_spec train_spec = {
    "train", "--model diffusion|classifier --data STORE [--val STORE] --out STORE [options]",
    "Trains the denoiser or the discriminator into a checkpoint store (tables param, ema, optim, buffer, "
    "best_param, best_buffer, log, val_loss, val_acc, grid). Checkpoints every checkpoint_every steps "
    "(classifier: every epoch), on SIGINT/SIGTERM (exit 3) and when the `minutes` budget is spent (the store "
    "then stays incomplete: rerun to continue). The denoiser's picture (table grid) is also written beside the "
    "store as STORE.denoise.png.",
    train_opts, CLI_STD_ALL, 0, 0};

// The denoiser's picture beside its store (never inside the store directory).
#define TRAIN_PICTURE ".denoise.png"

// Writes table `grid` key 0 (u8 C x H x W) of the store as STORE.denoise.png.
static int train_picture(ts_store *s, const char *out) {
    ts_key k;
    ts_tensor t;
    char *path = NULL;
    ts_key_u64(&k, 0);
    ERR_TRY(ts_get(s, "grid", &k, &t));
    int rc = 0;
    ERR_GOTO_IF(rc, t.dtype != TS_U8 || t.rank != 3, ERR_CORRUPT, "%s: table grid: not a u8 C x H x W picture", out);
    ERR_GOTO(rc, stage_side_path(out, TRAIN_PICTURE, &path));
    ERR_GOTO(rc, png_write(path, (const uint8_t *)t.data, (int)t.shape[0], (int)t.shape[1], (int)t.shape[2]));
    log_info("%s: denoising picture (rows: images; columns: x0, then x_t and x0_hat for t = 120, 240, 360)", path);
fail:
    ts_tensor_free(&t);
    free(path);
    return rc;
}

static int train_summary(const char *status, const char *out, const char *model, const tr_result *r) {
    cJSON *x = cJSON_CreateObject();
    ERR_IF(!x, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(x, "out", out);
    cJSON_AddStringToObject(x, "model", model);
    if (r) {
        cJSON_AddNumberToObject(x, "step", (double)r->step);
        cJSON_AddNumberToObject(x, "steps", (double)r->steps);
        cJSON_AddBoolToObject(x, "complete", r->complete);
        cJSON_AddNumberToObject(x, "loss", r->loss);
        cJSON_AddNumberToObject(x, "images_per_s", r->images_per_s);
        cJSON_AddNumberToObject(x, "train_seconds", r->seconds);
        if (strcmp(model, "diffusion") == 0) {
            cJSON_AddNumberToObject(x, "val_loss", r->val_metric);
        } else {
            cJSON_AddNumberToObject(x, "best_val_acc", r->val_metric);
            cJSON_AddNumberToObject(x, "best_epoch", r->best_epoch);
        }
    }
    int rc = cli_summary(stdout, status, x);
    cJSON_Delete(x);
    return rc;
}

static int train_eval(const cli_args *a, const char *out, const char *test_path) {
    ts_store *s = NULL;
    ops_ctx *ctx = NULL;
    tr_images test;
    memset(&test, 0, sizeof test);
    double acc = 0;
    int rc = 0;
    ops_options oo = ops_options_default();
    oo.threads = cli_threads(a);
    ERR_GOTO(rc, ts_open(&s, out, TS_RDONLY));
    ERR_GOTO(rc, tr_images_load(&test, test_path, 1 << 30));
    ERR_GOTO(rc, ops_ctx_create_named(&ctx, cli_device(a), &oo));
    ERR_GOTO(rc, tr_classifier_eval(s, ctx, &test, 256, &acc));
    log_info("%s: accuracy %.2f%% on %lld images of %s", out, 100 * acc, (long long)test.n, test_path);
    cJSON *x = cJSON_CreateObject();
    ERR_GOTO_IF(rc, !x, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(x, "out", out);
    cJSON_AddStringToObject(x, "eval", test_path);
    cJSON_AddNumberToObject(x, "images", (double)test.n);
    cJSON_AddNumberToObject(x, "accuracy", acc);
    rc = cli_summary(stdout, "ok", x);
    cJSON_Delete(x);
fail:
    tr_images_free(&test);
    ops_ctx_destroy(ctx);
    ts_close(s);
    return rc;
}

int main(int argc, char **argv) {
    cli_args *a = NULL;
    cfg *c = NULL;
    char *params = NULL, *inputs = NULL, *config_text = NULL;
    ts_store *s = NULL;
    ops_ctx *ctx = NULL;
    tr_images train, val;
    memset(&train, 0, sizeof train);
    memset(&val, 0, sizeof val);
    stage_state st;
    tr_result res;
    int rc = cli_parse(&a, &train_spec, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, &train_spec);
        cli_args_free(a);
        return 0;
    }
    if (rc < 0) goto fail;
    const char *model = cli_get(a, "model"), *data = cli_get(a, "data"), *valp = cli_get(a, "val"),
               *out = cli_get(a, "out"), *evalp = cli_get(a, "eval");
    int force = cli_has(a, "force");
    ERR_GOTO_IF(rc, !model, ERR_USAGE, "--model diffusion|classifier is required");
    ERR_GOTO_IF(rc, strcmp(model, "diffusion") != 0 && strcmp(model, "classifier") != 0, ERR_USAGE,
                "--model must be diffusion or classifier, not '%s'", model);
    ERR_GOTO_IF(rc, !out, ERR_USAGE, "--out STORE is required");
    if (evalp) {
        ERR_GOTO_IF(rc, strcmp(model, "classifier") != 0, ERR_USAGE, "--eval works with --model classifier only");
        rc = train_eval(a, out, evalp);
        goto fail;
    }
    ERR_GOTO_IF(rc, !data, ERR_USAGE, "--data STORE is required");
    ERR_GOTO(rc, cli_load_config(a, &c));
    ERR_GOTO(rc, tr_check_config(c, model));
    ERR_GOTO(rc, cli_install_interrupt());

    ERR_GOTO(rc, tr_stage_params(c, model, &params));
    ERR_GOTO(rc, tr_stage_inputs(data, valp, &inputs));
    stage_id id = {"train", TR_STAGE_VERSION, params, inputs, NULL};
    ERR_GOTO(rc, stage_probe(out, &id, force, &st));
    if (st == STAGE_UP_TO_DATE) {
        log_info("%s: up to date", out);
        ERR_GOTO(rc, train_summary("up to date", out, model, NULL));
        goto fail;
    }
    ops_options oo = ops_options_default();
    oo.threads = cli_threads(a);
    ERR_GOTO(rc, ops_ctx_create_named(&ctx, cli_device(a), &oo));
    int K = 0;
    ERR_GOTO(rc, cfg_get_int(c, strcmp(model, "diffusion") == 0 ? "unet.num_classes" : "resnet.num_classes", &K));
    ERR_GOTO(rc, tr_images_load(&train, data, K));
    if (valp) ERR_GOTO(rc, tr_images_load(&val, valp, K));
    ERR_GOTO(rc, tr_check_data(c, model, &train, valp ? &val : NULL));
    ERR_GOTO(rc, cfg_canonical(c, "", &config_text));

    ERR_GOTO(rc, stage_open_output(&s, out, &id, force, &st));
    if (st == STAGE_FRESH) ERR_GOTO(rc, stage_side_remove(out, TRAIN_PICTURE)); // an older run's picture
    ts_set_zstd_level(s, 1);
    log_info("%s: %s, %s on %lld images of %d x %d x %d (%s, %s)", out, stage_state_name(st), model,
             (long long)train.n, train.c, train.h, train.w, data, ops_device_name(ops_ctx_device(ctx)));
    tr_env env = {s, out, ctx, c, config_text, &train, valp ? &val : NULL};
    if (strcmp(model, "diffusion") == 0)
        ERR_GOTO(rc, tr_diffusion_run(&env, &res));
    else
        ERR_GOTO(rc, tr_classifier_run(&env, &res));
    if (res.complete && strcmp(model, "diffusion") == 0) ERR_GOTO(rc, train_picture(s, out));
    if (res.complete) ERR_GOTO(rc, stage_mark_complete(s));
    ERR_GOTO(rc, train_summary(res.complete ? "ok" : "budget spent", out, model, &res));
fail:
    ts_close(s);
    ops_ctx_destroy(ctx);
    tr_images_free(&train);
    tr_images_free(&val);
    free(params);
    free(inputs);
    free(config_text);
    cfg_free(c);
    cli_args_free(a);
    return rc < 0 ? cli_fail(rc) : 0;
}
