// import-weights (issue 14): PyTorch zip checkpoints and safetensors files into checkpoint
// stores that sample and extract-features accept (main.c), and any checkpoint store's weights
// out to safetensors (iw_export.c). The parsers are common/wio; iw_map.c matches a file's
// tensors to a network's state_dict names.
#ifndef DIFFOOD_IW_H
#define DIFFOOD_IW_H

#include <stddef.h>
#include <stdint.h>

#include "common/nn/nn.h"
#include "common/wio/wio.h"

// The weights found in a file, for one network.
typedef struct {
    const char *prefix;   // where the state_dict lies in the file: "" or "0." (train.ckpt-shaped list)
    int ddp;              // its names carry DDP's "module." prefix (stripped)
    int64_t step, epoch;  // train.ckpt's items 4 and 3 (-1 when absent)
} iw_source;

// Finds the state_dict in f: the top-level dict, or item 0 of a top-level list (train.ckpt:
// [model, optimizer, scheduler, epoch, step, start time]); notes DDP's "module." prefix when
// every tensor name under it carries one. ERR_INPUT naming `what` when there is no tensor.
int iw_source_find(const wio_file *f, const char *what, iw_source *src);

// Copies the tensors of f's state_dict into host arenas laid out as net's params (n_params
// floats) and, when buffers is not NULL, buffers (n_buffers floats). Every entry of net must be
// present with its shape (num_batches_tracked may be absent: 0), and every tensor of the
// state_dict must be an entry of net: else ERR_INPUT naming the tensor, the shapes, and `what`.
// Buffers not given (buffers == NULL) must not be in the file.
int iw_map(const wio_file *f, const iw_source *src, const char *what, const nn_net *net, float *params,
           float *buffers);

// Adam moments of a train.ckpt-shaped list (item 1: optimizer.state_dict()): for the i-th
// parameter of net (state_dict order = model.parameters() order), 1.param_groups.0.params.i
// names the state id; 1.state.ID.exp_avg / exp_avg_sq go into m / v (n_params floats each).
// ERR_INPUT naming what is missing or mis-shaped.
int iw_map_adam(const wio_file *f, const char *what, const nn_net *net, float *m, float *v);

// Export (iw_export.c): the weights of checkpoint store `path` into a safetensors file `out`.
// table NULL: the weights detection uses (denoiser ema; classifier best_param, else param);
// else param, ema or best_param. Buffers follow (best_buffer with best_param, else buffer),
// num_batches_tracked as I64. Returns 0 and the tensor count in *n; store errors, ERR_INPUT.
int iw_export(const char *path, const char *table, const char *out, int *n);

#endif
