// stage: the stage contract of ARCHITECTURE.md, shared by every stage executable.
//
// A stage's output store is identified by its KEY: the XXH3-128 (hex) of
//     "diffood-stage\0" STAGE "\0" VERSION "\0" PARAMS "\0" INPUTS "\0"
// where PARAMS is the canonical text of the parameters that determine the content (e.g.
// cfg_canonical, or stage_canonical_json of a cJSON object) and INPUTS the canonical text of
// what it reads: input store keys and/or source-file hashes (stage_canonical_json of an
// object such as {"images":"<xxh3>","labels":"<xxh3>"} or {"in":"<store key>"}).
//
// Meta fields written into the output store: `stage`, `stage_version`, `params` (the canonical
// text), `inputs` (the canonical text), `key`, `complete` ("false" until stage_mark_complete,
// then "true").
//
// The flow of a stage main:
//     stage_id id = {"ingest", 1, params_text, inputs_text};
//     stage_state st;
//     ERR_GOTO(rc, stage_probe(out_path, &id, force, &st));      // fast, creates nothing
//     if (st == STAGE_UP_TO_DATE) { log_info("%s: up to date", out_path); ...summary...; return 0; }
//     ... load and validate inputs (bad input fails before the store is touched) ...
//     ERR_GOTO(rc, stage_open_output(&store, out_path, &id, force, &st)); // STAGE_FRESH/RESUME
//     for each batch: skip records already there (ts_has) on RESUME; ts_begin_write; ts_put...;
//                     ts_commit; cli_check_interrupt
//     ERR_GOTO(rc, stage_mark_complete(store));
//
// States: a store that does not exist or holds nothing is FRESH; one with the same key is
// UP_TO_DATE when complete, else RESUME (committed records are kept; compute only the missing
// ones). A store with ANOTHER key (or records but no key) is refused with ERR_CONFLICT (exit
// status 2) naming what differs (stage, version, which params keys, which inputs) and saying to
// use --force; with force != 0 it is replaced by an empty store (ts_reset: its LMDB files are
// removed, so a store whose pages are damaged is replaced too) and is FRESH. A store that cannot
// be opened because it is damaged or of an older format is treated the same way: refused with a
// message saying to use --force, replaced with it.
#ifndef DIFFOOD_STAGE_H
#define DIFFOOD_STAGE_H

#include <cjson/cJSON.h>

#include "common/hash.h"
#include "common/store.h"

typedef struct {
    const char *stage;  // stage name ("ingest")
    int version;        // bump when the stage's output for the same params/inputs changes
    const char *params; // canonical text of the parameters (JSON); not NULL ("{}" for none)
    const char *inputs; // canonical text of the inputs (JSON); not NULL ("{}" for none)
    const char *request; // incremental stages only (else NULL): what the store is asked to hold
                         // (canonical JSON: levels, repeats, image range); see below
} stage_id;

// Incremental stages (sample, extract-features) fill one store step by step: more repeats,
// levels or images later. Their `request` says what a run asks for. The key stage_key computes
// (stage, version, params, inputs: what determines each record) is kept as meta `base_key`;
// meta `key` is stage_full_key, which also covers the request, so a downstream stage sees a new
// input key when the content grows. A store with the same base key is never a conflict: it is
// UP_TO_DATE when its key and completion match, else RESUME (compute what is missing; the
// records already there stay). stage_open_output on RESUME then records the new request and
// key with complete=false.

typedef enum {
    STAGE_FRESH,      // nothing there (or cleared by force): compute everything
    STAGE_RESUME,     // same key, not complete: keep committed records, compute the missing ones
    STAGE_UP_TO_DATE, // same key, complete: nothing to do
    STAGE_STATE_COUNT
} stage_state;

// "fresh", "resume", "up to date".
const char *stage_state_name(stage_state s);

// The store key of `id` into key (32 hex digits + NUL). Returns 0 or ERR_USAGE (NULL fields).
int stage_key(const stage_id *id, char key[HASH_HEX_LEN + 1]);
// The store's meta `key`: stage_key without a request; with one, XXH3-128 of
// "diffood-request\0" BASE_KEY "\0" REQUEST "\0".
int stage_full_key(const stage_id *id, char key[HASH_HEX_LEN + 1]);

// Canonical JSON text of `item`: object keys sorted bytewise (recursively), no whitespace,
// numbers as cJSON prints them. *text is malloc'd, owned by the caller. ERR_NOMEM.
int stage_canonical_json(const cJSON *item, char **text);

// Decides the state of the store at `path` for `id` without creating or changing anything
// (read-only open when it exists). *state is FRESH when the store is missing or empty, or when
// another key is there and force != 0, or when it is damaged or of an older store format
// (ERR_CORRUPT / ERR_UNSUPPORTED from ts_open) and force != 0: stage_open_output then replaces it;
// without force those errors say to rerun with --force. ERR_CONFLICT when `path` is an input
// (stage_check_output). Errors: ERR_CONFLICT (another key, force == 0; message
// names path, the differences and --force), ERR_INPUT/ERR_CORRUPT/ERR_STORE from ts_open.
int stage_probe(const char *path, const stage_id *id, int force, stage_state *state);

// Opens (creating it when missing) the output store for writing, holding its writer lock until
// ts_close (a second writer is refused: ERR_CONFLICT naming the holder), and settles its meta as
// described above: FRESH writes stage/stage_version/params/inputs/key and complete=false in one
// commit (after ts_reset); RESUME keeps everything; UP_TO_DATE opens it unchanged.
// *out is owned by the caller (ts_close). Errors: ERR_CONFLICT as stage_probe, store errors.
// No batch is open on return.
int stage_open_output(ts_store **out, const char *path, const stage_id *id, int force, stage_state *state);

// --- an output that is also an input ---------------------------------------------------------
// A stage never writes over what it reads, whatever the flags: stage_input_key notes every input
// store it is given (stage_note_input notes other inputs: source files and directories), and
// stage_probe and stage_open_output refuse an output that is one of them (the same path, a
// symlink to it, the same inode) or a directory holding one, with ERR_CONFLICT naming both, before
// anything is touched. So a stage keys its inputs before it probes its output.

// Notes `path` (a store, file or directory) as an input of this run; a missing path is ignored
// (reading it fails later). 0, or ERR_USAGE past 64 inputs.
int stage_note_input(const char *path);
// 0 when `out` is none of the noted inputs (and, when holds != 0, a directory holding none of
// them); ERR_CONFLICT otherwise. Stores are checked with holds = 1; a folder of files that may
// sit beside its inputs (report) with holds = 0.
int stage_check_output(const char *out, int holds);
// Forgets the noted inputs (a process that runs several stages, e.g. a test).
void stage_forget_inputs(void);

// Sets meta complete=true (joins the open batch, if any; else commits on its own).
int stage_mark_complete(ts_store *s);
// 1 when meta complete is "true", 0 when not or absent, negative on error.
int stage_is_complete(ts_store *s);

// The key of a complete input store at `path` into key: opens it read-only, requires meta
// `key` and complete=true. ERR_NOTFOUND (no store), ERR_INPUT ("PATH: incomplete store (run
// the stage that makes it)" or no key), store errors.
int stage_input_key(const char *path, char key[HASH_HEX_LEN + 1]);

// --- files beside a store -------------------------------------------------------------------
// Pictures and other files a stage derives from its store live BESIDE the store directory, never
// inside it (a store directory holds the LMDB environment only): STORE + suffix, e.g.
// "runs/x/denoiser.store.denoise.png" (trailing '/' of STORE dropped).

// The path STORE + suffix, malloc'd into *out (caller frees). ERR_NOMEM.
int stage_side_path(const char *store, const char *suffix, char **out);
// Removes STORE + suffix if it exists (a fresh start of the store must not leave a file made
// from its old content). ERR_IO naming the file when it is there and cannot be removed.
int stage_side_remove(const char *store, const char *suffix);

#endif
