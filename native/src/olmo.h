// A frozen OlmoForCausalLM (allenai/OLMo-1B-hf, OLMo-1B-0724-hf, OLMo-7B) in native memory (model.h's
// interface). Weight names follow the HF checkpoint keys; the norms have no tensors at all.
#ifndef CRAMLAB_OLMO_H
#define CRAMLAB_OLMO_H
#include "model.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int d, vocab, layers, heads, kv_heads, head_dim, inter, max_pos;
  float clip_qkv; // 0: no clamp
  int tied;
} OlmoConfig;

typedef struct {
  Mat q_proj, k_proj, v_proj; // [Hq·D, d], [Hkv·D, d], [Hkv·D, d]
  Mat o_proj;                 // [d, Hq·D]
  Mat gate_proj, up_proj;     // [I, d]
  Mat down_proj;              // [d, I]
} OlmoLayer;

typedef struct {
  Model base; // first: a Model * is an Olmo *
  OlmoConfig c;
  Mat embed_tokens;     // [V, d]
  Mat lm_head;          // [V, d] (= embed_tokens when tied)
  float *inv_freq;      // [D/2], "rope.inv_freq" from JS
  float *cos_t, *sin_t; // [max_pos, D/2]
  OlmoLayer *layer;
} Olmo;

// config keys: hidden_size vocab_size num_hidden_layers num_attention_heads num_key_value_heads head_dim
// intermediate_size max_position_embeddings clip_qkv (0 = none) tied
Model *olmo_create(const ModelConfig *cfg, char *err, int errlen);

#ifdef __cplusplus
}
#endif
#endif
