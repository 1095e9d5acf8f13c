// A frozen MambaForCausalLM (state-spaces/mamba-*-hf) in native memory (model.h's interface). Weight names
// follow the HF checkpoint keys (backbone.*); A = -exp(A_log) is derived in prepare.
#ifndef CRAMLAB_MAMBA_H
#define CRAMLAB_MAMBA_H
#include "model.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int d, vocab, layers, max_pos;
  int I;    // intermediate_size (expand·d): the mixer's channels
  int N;    // state_size
  int K;    // conv_kernel
  int R;    // time_step_rank
  float eps; // layer_norm_epsilon
  int tied, use_bias, use_conv_bias;
} MambaConfig;

typedef struct {
  float *norm;                  // [d]
  Mat in_proj;                  // [2I, d]
  float *in_proj_b;             // [2I] (use_bias)
  float *conv_w, *conv_b;       // [I, K] (checkpoint [I, 1, K]), [I] (use_conv_bias)
  Mat x_proj;                   // [R + 2N, I]
  Mat dt_proj;                  // [I, R]
  float *dt_proj_b;             // [I]
  float *A_log, *A;             // [I, N]; A = -exp(A_log) (prepare)
  float *D;                     // [I]
  Mat out_proj;                 // [d, I]
  float *out_proj_b;            // [d] (use_bias)
} MambaLayer;

typedef struct {
  Model base; // first: a Model * is a Mamba *
  MambaConfig c;
  Mat embed_tokens;    // [V, d] backbone.embeddings.weight
  float *norm_f;       // [d]
  Mat lm_head;         // [V, d] (= embed_tokens when tied)
  MambaLayer *layer;
} Mamba;

// config keys: hidden_size vocab_size num_hidden_layers intermediate_size state_size conv_kernel time_step_rank
// layer_norm_epsilon max_position_embeddings tied use_bias use_conv_bias
Model *mamba_create(const ModelConfig *cfg, char *err, int errlen);

#ifdef __cplusplus
}
#endif
#endif
