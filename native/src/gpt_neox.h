// A frozen GPTNeoXForCausalLM (Pythia) in native memory (model.h's interface).
// Weight names follow the HF checkpoint keys (gpt_neox.layers.i.attention.query_key_value.weight → query_key_value).
#ifndef CRAMLAB_GPT_NEOX_H
#define CRAMLAB_GPT_NEOX_H
#include "model.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int d, vocab, layers, heads, head_size, rotary_dim, inter, max_pos;
  float eps;
  int parallel_residual, tied, qkv_bias, dense_bias;
} GPTNeoXConfig;

typedef struct {
  float *input_layernorm_w, *input_layernorm_b;                   // [d], [d]
  Mat query_key_value_w;                                          // [3d, d]; rows per head [q|k|v]
  float *query_key_value_b;                                       // [3d] (or NULL)
  Mat dense_w;                                                    // [d, d]
  float *dense_b;                                                 // [d] (or NULL)
  float *post_attention_layernorm_w, *post_attention_layernorm_b; // [d], [d]
  Mat dense_h_to_4h_w;                                            // [I, d]
  float *dense_h_to_4h_b;                                         // [I]
  Mat dense_4h_to_h_w;                                            // [d, I]
  float *dense_4h_to_h_b;                                         // [d]
} GPTNeoXLayer;

typedef struct {
  Model base; // first: a Model * is a GPTNeoX *
  GPTNeoXConfig c;
  Mat embed_in;                                     // [V, d]
  float *final_layer_norm_w, *final_layer_norm_b;   // [d]
  Mat embed_out;                                    // [V, d] (= embed_in when tied)
  float *inv_freq;                                  // [rotary_dim/2], "rope.inv_freq" from JS
  float *cos_t, *sin_t;                             // [max_pos, rotary_dim/2]
  GPTNeoXLayer *layer;
} GPTNeoX;

// config keys: hidden_size vocab_size num_hidden_layers num_attention_heads rotary_dim intermediate_size
// max_position_embeddings layer_norm_eps use_parallel_residual tied qkv_bias dense_bias
Model *gpt_neox_create(const ModelConfig *cfg, char *err, int errlen);

#ifdef __cplusplus
}
#endif
#endif
