// tr_stage: the identity of the train stage's checkpoint stores (tr.h): what determines a
// checkpoint (stages/train.c; tools/import_weights writes stores that train continues).
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/cfg.h"
#include "common/err.h"
#include "common/stage.h"
#include "common/train/tr.h"

// The parameters that determine the checkpoint: sections as the config's own canonical text,
// embedded as raw JSON (never parsed into cJSON doubles: seeds above 2^53 stay distinct).
static int tr_add_section(cJSON *obj, const cfg *root, const char *path, const char *name,
                          const char *const *drop) {
    char *text = NULL;
    ERR_TRY(cfg_canonical_except(root, path, drop, &text));
    cJSON *j = cJSON_AddRawToObject(obj, name, text);
    free(text);
    ERR_IF(!j, ERR_NOMEM, "out of memory");
    return 0;
}

int tr_stage_params(const cfg *root, const char *model, char **text) {
    static const char *const drop_d[] = {"minutes", "log_every", "checkpoint_every", NULL};
    static const char *const drop_c[] = {"minutes", "log_every", NULL};
    cJSON *p = cJSON_CreateObject();
    int rc = 0;
    ERR_IF(!p, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(p, "model", model);
    if (strcmp(model, "diffusion") == 0) {
        ERR_GOTO(rc, tr_add_section(p, root, "diffusion", "diffusion", NULL));
        ERR_GOTO(rc, tr_add_section(p, root, "unet", "unet", NULL));
        ERR_GOTO(rc, tr_add_section(p, root, "train_diffusion", "train", drop_d));
    } else {
        ERR_GOTO(rc, tr_add_section(p, root, "resnet", "resnet", NULL));
        ERR_GOTO(rc, tr_add_section(p, root, "train_classifier", "train", drop_c));
    }
    ERR_GOTO(rc, stage_canonical_json(p, text));
fail:
    cJSON_Delete(p);
    return rc;
}

int tr_stage_inputs(const char *data, const char *val, char **text) {
    char k[HASH_HEX_LEN + 1];
    cJSON *p = cJSON_CreateObject();
    int rc = 0;
    ERR_IF(!p, ERR_NOMEM, "out of memory");
    ERR_GOTO(rc, stage_input_key(data, k));
    cJSON_AddStringToObject(p, "data", k);
    if (val) {
        ERR_GOTO(rc, stage_input_key(val, k));
        cJSON_AddStringToObject(p, "val", k);
    }
    ERR_GOTO(rc, stage_canonical_json(p, text));
fail:
    cJSON_Delete(p);
    return rc;
}
