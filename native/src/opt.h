// A frozen OPTForCausalLM (facebook/opt-*) in native memory (model.h's interface).
// Weight names follow the HF checkpoint keys with the "model.decoder." prefix (the JS side maps Hub files
// that spell them "decoder.*"). [mem] vectors have word_embed_proj_dim values (d_in = P).
#ifndef CRAMLAB_OPT_H
#define CRAMLAB_OPT_H
#include "model.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int d, P, vocab, layers, heads, ffn, max_pos; // P = word_embed_proj_dim
  int pre_ln;      // do_layer_norm_before
  int final_norm;  // model.decoder.final_layer_norm exists (pre-LN, not _remove_final_layer_norm)
  int project;     // project_in / project_out exist (P != d, the opt-350m layout)
  int bias;        // enable_bias: q/k/v/out_proj, fc1, fc2 have biases
  int norm_affine; // layer_norm_elementwise_affine: LayerNorms have weight and bias
  int tied;
} OptConfig;

typedef struct {
  float *self_attn_layer_norm_w, *self_attn_layer_norm_b; // [d] (or NULL)
  Mat q_proj_w, k_proj_w, v_proj_w, out_proj_w;           // [d, d]
  float *q_proj_b, *k_proj_b, *v_proj_b, *out_proj_b;     // [d]
  float *final_layer_norm_w, *final_layer_norm_b;         // [d] (the layer's: before / after the MLP)
  Mat fc1_w;                                              // [F, d]
  float *fc1_b;                                           // [F]
  Mat fc2_w;                                              // [d, F]
  float *fc2_b;                                           // [d]
} OptLayer;

typedef struct {
  Model base; // first: a Model * is an Opt *
  OptConfig c;
  Mat embed_tokens;                               // [V, P]
  float *embed_positions;                         // [max_pos + 2, d]
  Mat project_in, project_out;                    // [d, P], [P, d] (unfilled without projections)
  float *final_layer_norm_w, *final_layer_norm_b; // [d] (or NULL)
  Mat lm_head;                                    // [V, P] (= embed_tokens when tied)
  OptLayer *layer;
} Opt;

// config keys: hidden_size word_embed_proj_dim vocab_size num_hidden_layers num_attention_heads ffn_dim
// max_position_embeddings do_layer_norm_before final_layer_norm enable_bias layer_norm_elementwise_affine tied
Model *opt_create(const ModelConfig *cfg, char *err, int errlen);

#ifdef __cplusplus
}
#endif
#endif
