// The architecture-neutral face of a frozen causal LM in the native engine: cram.c and addon.cc see
// only this header. A Model is
//   x [B, T, d_in]  (input embeddings: [mem] vectors and embed_tokens rows)
//     → forward → final hidden states [B·T, d_out] → (the caller) · lm_head^T → logits [B·T, vocab]
// with the gradient back from the final hidden states to x (the weights are frozen: no other gradient),
// and an incremental decode (KV cache for transformers, recurrent state for Mamba) for greedy generation.
// d_in is the width of a [mem] vector (OPT-350m: word_embed_proj_dim), d_out the width lm_head reads.
//
// How to add an architecture "foo" (model_type as HF writes it):
//   1. native/src/foo.{h,c}: typedef struct { Model base; FooConfig c; ...weights... } Foo;  (base first,
//      so a Model * is a Foo *), and
//        Model *foo_create(const ModelConfig *cfg, char *err, int errlen);
//      It reads its config with config_int / config_float / config_bool (they write a message to err
//      and return 0 when a key is missing or out of range), registers every weight matrix that only
//      matmul / matmul_backward / mat_row read with model_mat(&f->base, "HF checkpoint key", &f->w, n)
//      (the addon allocates it and fills it as the checkpoint stores it: fp32, bf16 or f16), and every
//      other weight (norms, biases, tables read value by value) allocated zero-filled with
//      model_slot(&f->base, "HF checkpoint key", ptr, n) (fp32; derived tables such as "rope.inv_freq"
//      the same way), fills d_in, d_out, vocab, max_pos, body_macs, and sets base.ops.
//      On failure: write err, free what was made, return NULL.
//   2. its ModelOps (below): prepare (once the weights are in: sets base.embed_tokens / lm_head), acts_new/acts_free, forward, backward,
//      state_new/state_free, decode, destroy. Buffers grow on demand; a 0 / NULL return means out of memory.
//   3. one row { "foo", foo_create } in model.c's ARCHS table; foo.c in binding.gyp's sources.
//   4. JS side: a NativeSpec for 'foo' in src/native/specs.ts (the config keys the C side reads, the
//      checkpoint tensors with their shapes); test/native.test.ts's reference loop picks it up.
#ifndef CRAMLAB_MODEL_H
#define CRAMLAB_MODEL_H
#include "kernels.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct Model Model;

typedef struct {
  // After every slot has been filled from the checkpoint: derived tables (RoPE cos/sin, regrouped rows).
  void (*prepare)(Model *m);
  // Activation buffers of one forward, kept for its backward; one set per thread that runs a group of texts.
  void *(*acts_new)(const Model *m);
  void (*acts_free)(void *acts);
  // Forward of x[B, T, d_in] at positions 0..T-1, keeping what the backward needs in acts. Returns the
  // final hidden states [B·T, d_out] (inside acts, valid until its next forward), NULL when out of memory.
  const float *(*forward)(const Model *m, void *acts, const float *x, int B, int T);
  // dhidden[B·T, d_out] = dL/d(forward's output) → dx[B·T, d_in] = dL/dx (overwritten) for the B, T of the
  // last forward on acts. dhidden may be used as scratch.
  void (*backward)(const Model *m, void *acts, float *dhidden, float *dx);
  // Decode state of one sequence for up to cap positions (KV cache / recurrent state), length 0.
  void *(*state_new)(const Model *m, int cap);
  void (*state_free)(void *state);
  // Runs n new positions x[n, d_in] after the state's current ones; the last one's final hidden state
  // into hidden_last[d_out]. Returns 0 when out of memory or past cap.
  int (*decode)(const Model *m, void *state, const float *x, int n, float *hidden_last);
  // Frees the weights and the struct itself.
  void (*destroy)(Model *m);
} ModelOps;

typedef struct {
  const char *name; // HF checkpoint key
  float *dst;       // fp32 slot (preallocated), or NULL for
  Mat *mat;         // a matrix slot: allocated and filled by the addon, dtype as stored
  long n;           // values expected
} WeightSlot;

struct Model {
  const ModelOps *ops;
  const char *type; // model_type
  int d_in, d_out, vocab, max_pos;
  Mat embed_tokens;          // [vocab, d_in] (set by prepare)
  Mat lm_head;               // [vocab, d_out] (may alias embed_tokens when tied)
  double body_macs;          // weight multiply-adds per token outside lm_head (cram.c's thread split)
  WeightSlot *slots;         // the arrays the addon fills, by checkpoint name
  int n_slots, cap_slots;
};

// Config values by key as the addon read them from the JS object (numbers; booleans as 0/1).
typedef struct {
  int n;
  const char *const *keys;
  const double *vals;
} ModelConfig;

// Each returns 1 and sets *out, or writes "<key> must be ..." to err and returns 0.
int config_int(const ModelConfig *c, const char *key, long lo, long hi, int *out, char *err, int errlen);
int config_float(const ModelConfig *c, const char *key, float *out, char *err, int errlen);
// a missing key is def
int config_bool(const ModelConfig *c, const char *key, int def);

// Register ptr[n] under name (copied). Returns 0 when out of memory.
int model_slot(Model *m, const char *name, float *ptr, long n);
// Register a weight matrix of n values under name, stored as the checkpoint stores it. Returns 0 when out of memory.
int model_mat(Model *m, const char *name, Mat *mat, long n);
// free(W.p) unless it is `keep`'s storage (a tied lm_head)
void mat_free(Mat W, Mat keep);

// model_type → constructor; NULL (with err) when the type has no native engine or the config is bad.
Model *model_create(const char *type, const ModelConfig *cfg, char *err, int errlen);
// ", "-joined list of the model types of model.c's ARCHS ("llama, gpt_neox, ...")
const char *model_types(void);
void model_free(Model *m);

// shared by the implementations: zero-filled float buffer (n ≤ 0 gives one value)
float *model_zalloc(long n);

#ifdef __cplusplus
}
#endif
#endif
