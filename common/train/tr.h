// tr: the library half of the `train` stage (issue 5; METHOD.md sections 3 and 5): labelled
// image sets held in memory, counter-based data order and augmentation, checkpoint stores,
// the log table, and the two training loops (denoiser UNet, ResNet-18 discriminator).
//
// Randomness. Every random draw is element j of an rng.h stream addressed by
// (seed, purpose, step or epoch, ...), so a run resumed from any checkpoint draws exactly what
// an uninterrupted run draws, and nothing depends on the batch composition of other steps:
//   denoiser   batch members  positions step*B+i of the sequence of epoch permutations
//                             (RNG_DATA_ORDER, (epoch, 0, 0)), epoch = position / N
//              timesteps      RNG_TRAIN_T (step), randint element i (antithetic pairs)
//              noise          RNG_TRAIN_NOISE (step), normals 0..B*CHW-1 (ops_randn)
//              label dropout  RNG_LABEL_DROP (step), uniform element i
//              flips          RNG_FLIP (step), uniform element i
//              UNet dropout   RNG_DROPOUT (step)
//              validation     RNG_TRAIN_NOISE (2^63 + bucket), normals of image j at j*CHW
//   classifier split          RNG_SPLIT (0): permutation of the training store
//              batch members  RNG_DATA_ORDER (epoch): permutation of the training part
//              crop / flip    RNG_CROP / RNG_FLIP (epoch, image index)
//
// Checkpoint store tables (all f32 unless said): `param` (state_dict names), `buffer`
// (BatchNorm running statistics), `ema` (denoiser EMA weights), `optim` (PyTorch state names:
// "exp_avg.NAME", "exp_avg_sq.NAME" for AdamW, "momentum_buffer.NAME" for SGD), `best_param`
// and `best_buffer` (classifier: the epoch with the best validation accuracy), `log` (key =
// step, [step, loss, lr, grad_norm, images_per_s]), `val_loss` (denoiser, key = step, mean loss
// per timestep bucket), `val_acc` (classifier, key = epoch, [epoch, accuracy, val_loss]),
// `grid` (denoiser, key 0, u8 (C, H, W) picture). Meta: `model`, `step`, `epoch`, `mean`,
// `std` (the training store's), `config` (canonical text of the whole config), `data_key`,
// `val_key`, `best_acc`, `best_epoch`, and the stage.h fields. A checkpoint is ONE write batch.
#ifndef DIFFOOD_TR_H
#define DIFFOOD_TR_H

#include <stdint.h>

#include "common/hash.h"
#include "common/nn/nn.h"
#include "common/store.h"
#include "kernels/ops.h"

struct cfg;

// --- data (tr_data.c) -------------------------------------------------------------------------

// An image store held in host memory.
typedef struct {
    int64_t n;
    int c, h, w;
    uint8_t *img;    // (n, c, h, w)
    int32_t *label;  // (n)
    double mean[4], std[4]; // per channel, of x/255 (the store's meta)
    char key[HASH_HEX_LEN + 1]; // the store's key
} tr_images;

// Loads the complete image store at `path`: tables `image` (u8 (c, h, w), keys 0..n-1) and
// `label` (i32), and meta mean/std. Labels must lie in 0..num_classes-1. *d is owned by the
// caller (tr_images_free). ERR_NOTFOUND (no store), ERR_INPUT (incomplete store, no labels,
// mixed shapes, a label out of range, missing mean/std: messages name the store, table, key),
// ERR_CORRUPT, ERR_NOMEM.
int tr_images_load(tr_images *d, const char *path, int num_classes);
void tr_images_free(tr_images *d);

// Copies image (c, h, w) `src` into `dst` flipped horizontally when flip, then shifted as a
// random crop from the image padded by `pad` zero pixels at offset (dy, dx) in 0..2*pad.
void tr_augment(uint8_t *dst, const uint8_t *src, int c, int h, int w, int flip, int pad, int dy, int dx);
// dst[i] = src[i] / 127.5 - 1 (images in [-1, 1]) for n values.
void tr_to_signed(float *dst, const uint8_t *src, size_t n);
// dst = (src / 255 - mean[ch]) / std[ch] for a (c, hw) image.
void tr_normalise(float *dst, const uint8_t *src, int c, int hw, const double *mean, const double *std);

// Epoch permutations addressed by epoch: element `pos` of the endless sequence perm_0, perm_1,
// ... of permutations of 0..n-1 (perm_e from RNG_DATA_ORDER (e, 0, 0) of `seed`).
typedef struct {
    uint64_t seed;
    uint32_t n;
    int64_t epoch; // the permutation held (-1: none)
    uint32_t *perm;
} tr_order;

// ERR_NOMEM; ERR_INPUT for n == 0.
int tr_order_init(tr_order *o, uint64_t seed, uint32_t n);
void tr_order_free(tr_order *o);
// The item at position pos of the sequence (recomputes a permutation when the epoch changes).
uint32_t tr_order_at(tr_order *o, uint64_t pos);

// --- the denoiser's training batch (tr_batch.c) --------------------------------------------------

// What one denoiser batch draws from (METHOD.md 3).
typedef struct {
    int batch;          // B (train_diffusion.batch)
    int iter_interval;  // I: timesteps drawn from 0..I-1 (diffusion.iter_interval, not T)
    int num_classes;    // K: the null label (unet.num_classes)
    double cond_ratio;  // probability of keeping the label (diffusion.cond_ratio)
    int flip;           // random horizontal flips (train_diffusion.random_flip)
    uint64_t seed;      // train_diffusion.seed
} tr_batch_spec;

// Reads the spec from the config keys named above. ERR_CONFIG naming a missing or bad key.
int tr_batch_spec_from_cfg(const struct cfg *root, tr_batch_spec *b);
// The batch of optimiser step `step` (0-based), a function of (seed, step) only (see
// "Randomness" above): member i is image order[step * B + i] of tr, flipped horizontally with
// probability 1/2 (when flip), into x (B, C, H, W) in [-1, 1]; y[i] its label, or K with
// probability 1 - cond_ratio; t[i] (B floats): ceil(B/2) draws uniform on 0..I-1, then
// t[i] = I - 1 - t[i - ceil(B/2)] (antithetic pairs). scratch: C*H*W bytes. Host memory only.
void tr_batch_draw(const tr_batch_spec *b, const tr_images *tr, tr_order *order, long step, float *x, float *t,
                   int32_t *y, uint8_t *scratch);

// --- checkpoints (tr_ckpt.c) --------------------------------------------------------------------

// Writes every entry of `kind` of `net` from `arena` (device memory with the params/buffers
// layout: params, ema, an optimiser state half, ...) into `table` under prefix + name, f32 with
// the entry's shape. Joins the open batch. Store errors, ERR_NOMEM, device errors.
int tr_ckpt_put(ts_store *s, const char *table, const char *prefix, const nn_net *net, nn_kind kind,
                const float *arena);
// Reads them back into `arena` (device). ERR_NOTFOUND naming store, table and key; ERR_CORRUPT
// for a record whose dtype or element count differs from the entry's.
int tr_ckpt_get(ts_store *s, const char *table, const char *prefix, const nn_net *net, nn_kind kind, float *arena);
// meta[key] = decimal text of v (joins the open batch).
int tr_meta_put_i64(ts_store *s, const char *key, int64_t v);
// *v = meta[key] parsed; ERR_NOTFOUND when absent, ERR_CORRUPT when not a number.
int tr_meta_get_i64(ts_store *s, const char *key, int64_t *v);
// meta[key] = JSON list of n doubles ("%.17g").
int tr_meta_put_doubles(ts_store *s, const char *key, const double *v, int n);
// Parses meta[key] (a JSON list of n numbers) into v. ERR_NOTFOUND, ERR_CORRUPT.
int tr_meta_get_doubles(ts_store *s, const char *key, double *v, int n);

// --- log table (tr_log.c) -----------------------------------------------------------------------

#define TR_LOG_WIDTH 5 // [step, loss, lr, grad_norm, images_per_s]

// Rows gathered since the last checkpoint (written with it, so a resumed run rewrites the same
// rows it lost).
typedef struct {
    float *rows; // (n, width)
    int n, cap, width;
} tr_log;

void tr_log_init(tr_log *l, int width);
void tr_log_free(tr_log *l);
// Appends one row of `width` floats. ERR_NOMEM.
int tr_log_add(tr_log *l, const float *row);
// Puts every row into `table`, key = (uint64) row[0], f32 (width), and empties the buffer.
// Joins the open batch. Store errors.
int tr_log_flush(tr_log *l, ts_store *s, const char *table);
// Puts one f32 vector of n values under the u64 key `key` of `table`.
int tr_put_vector(ts_store *s, const char *table, uint64_t key, const float *v, int n);

// --- training loops -----------------------------------------------------------------------------

typedef struct {
    int64_t step, steps;   // where the run stopped, and the target
    int complete;          // 1: reached the target (the stage marks the store complete)
    double loss;           // smoothed training loss at the end
    double images_per_s;   // throughput of this process
    double seconds;        // training seconds of this process
    double val_metric;     // denoiser: mean validation loss; classifier: best validation accuracy
    int best_epoch;        // classifier
} tr_result;

// Seconds on the monotonic clock.
double tr_now(void);

// The per-step bookkeeping of a training loop (tr_loop.c). The loop sets the first group of
// fields, calls tr_meter_begin before its first step, tr_meter_step after every step and
// tr_meter_end when it leaves the loop other than by an error.
typedef struct {
    const char *out_path; // the checkpoint store, for messages
    const char *section;  // config section named when the loss diverges ("train_diffusion")
    int batch;            // images per step
    long log_every;       // a log row and a progress line every log_every steps (0: never)
    double minutes;       // time budget of this process (0: none)
    int loss_digits;      // decimals of the smoothed loss on the progress line
    tr_log *log;          // where log rows go
    double t0;            // when this process started (tr_now)
    long step0;           // steps taken before this process (set by tr_meter_begin)
    double smooth;        // smoothed training loss
    int budget_spent;     // the last tr_meter_step found the budget spent
} tr_meter;

// Starts the meter at step0 of total and the progress reporter ("train").
void tr_meter_begin(tr_meter *m, long step0, long total);
// Accounts the step that brought the run to `step` steps with batch loss `loss`, learning rate
// lr and gradient norm gnorm: ERR_INTERNAL when the loss is not finite (the message names
// SECTION.lr), the smoothed loss, every log_every steps a log row [step, loss, lr, gnorm,
// images/s] and a progress line; *budget = 1 when the time budget is spent. ERR_NOMEM.
int tr_meter_step(tr_meter *m, long step, float loss, double lr, float gnorm, int *budget);
// Ends the run: says when the budget stopped it, ends the progress line, and fills step,
// steps, complete, loss, seconds and images_per_s of res.
void tr_meter_end(tr_meter *m, long step, long steps, tr_result *res);

// The run's surroundings, filled by the stage.
typedef struct {
    ts_store *out;           // the checkpoint store, opened by stage_open_output
    const char *out_path;    // for messages
    ops_ctx *ctx;
    const struct cfg *root;  // the effective configuration
    const char *config_text; // its canonical text (meta `config`)
    const tr_images *train;  // the training store
    const tr_images *val;    // the --val store, or NULL
} tr_env;

// The meta every checkpoint carries (tr_ckpt.c; joins the open batch): model, config
// (env->config_text), data_key, val_key (with env->val), mean and std (the training store's),
// step and epoch. Store errors.
int tr_ckpt_put_meta(ts_store *s, const tr_env *env, const char *model, int64_t step, int64_t epoch);
// Where a run starts (tr_ckpt.c): 0 and *step = 0 for a store without meta step (fresh);
// 1 and *step = meta step to resume; ERR_CORRUPT naming env->out_path when that lies outside
// 0..total; store errors.
int tr_ckpt_step(const tr_env *env, long total, long *step);

// Trains (or continues training) the denoiser of config sections unet, diffusion and
// train_diffusion; checkpoints every checkpoint_every steps, at the end, on SIGINT/SIGTERM
// (then returns ERR_INTERRUPTED) and when `minutes` are spent (then complete = 0). At the end
// writes the grid picture into the store (table `grid`; library code writes no files: the train
// stage draws it beside the store as STORE.denoise.png). ERR_CONFIG naming a bad key,
// store/device errors.
int tr_diffusion_run(const tr_env *env, tr_result *res);
// The same for the ResNet-18 classifier (sections resnet, train_classifier); validation after
// every epoch on env->val or the held-out val_fraction of the training store; checkpoints at
// every epoch end, on interrupt and when the budget is spent.
int tr_classifier_run(const tr_env *env, tr_result *res);
// Accuracy of the classifier in checkpoint store `ckpt` (best_param/best_buffer, or
// param/buffer when absent) on `test` (normalised with the checkpoint's mean/std). *acc in
// [0, 1]. Store errors, ERR_INPUT (shape mismatch), device errors.
int tr_classifier_eval(ts_store *ckpt, ops_ctx *ctx, const tr_images *test, int batch, double *acc);

// --- the train stage's identity (tr_stage.c) -----------------------------------------------------

// stage_id version of train's checkpoint stores. 2: the reference's warm-up (step k uses
// lr * k / warmup, the first step lr 0) and step decay counted from the end of the warm-up;
// stores of version 1 trained one step ahead. The params text holds the config sections exactly
// (cfg_canonical_except), no longer through cJSON doubles.
#define TR_STAGE_VERSION 2
// The canonical params text of a checkpoint of `model` ("diffusion" or "classifier"): the
// network and schedule sections and the training section without the keys that do not change
// the result (minutes, log_every, checkpoint_every). *text malloc'd. ERR_CONFIG, ERR_NOMEM.
int tr_stage_params(const struct cfg *root, const char *model, char **text);
// The canonical inputs text: the keys of the complete image stores `data` and `val` (may be
// NULL). stage_input_key's errors.
int tr_stage_inputs(const char *data, const char *val, char **text);

// Checks the config values the loops use (ERR_CONFIG naming key and value): for model
// "diffusion" or "classifier". Called by the stage before it touches the output store.
int tr_check_config(const struct cfg *root, const char *model);
// Checks the loaded training (and optional validation) images against the config: channels and
// image size of the network, square images, equal shapes. ERR_CONFIG / ERR_INPUT naming the key.
int tr_check_data(const struct cfg *root, const char *model, const tr_images *train, const tr_images *val);

#endif
