// A frozen LlamaForCausalLM in native memory (model.h's interface): forward that keeps what the
// backward needs, backward to the input embeddings only, and a KV-cached forward for greedy decoding.
// Weight names follow the HF checkpoint keys (model.layers.i.self_attn.q_proj.weight → q_proj).
#ifndef CRAMLAB_LLAMA_H
#define CRAMLAB_LLAMA_H
#include "model.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int d, vocab, layers, heads, kv_heads, head_dim, inter, max_pos;
  float eps;
  int tied, attention_bias;
} LlamaConfig;

typedef struct {
  float *input_layernorm;          // [d]
  Mat q_proj, k_proj, v_proj;      // [Hq·D, d], [Hkv·D, d], [Hkv·D, d]
  float *q_bias, *k_bias, *v_bias; // [Hq·D], [Hkv·D], [Hkv·D] or NULL
  Mat o_proj;                      // [d, Hq·D]
  float *post_attention_layernorm; // [d]
  Mat gate_proj, up_proj;          // [I, d]
  Mat down_proj;                   // [d, I]
} LlamaLayer;

typedef struct {
  Model base; // first: a Model * is a Llama *
  LlamaConfig c;
  Mat embed_tokens;     // [V, d]
  float *norm;          // [d]
  Mat lm_head;          // [V, d] (= embed_tokens when tied)
  float *inv_freq;      // [D/2], "rope.inv_freq" from JS (one home for llama3 scaling)
  float *cos_t, *sin_t; // [max_pos, D/2]
  LlamaLayer *layer;
} Llama;

// config keys: hidden_size vocab_size num_hidden_layers num_attention_heads num_key_value_heads head_dim
// intermediate_size max_position_embeddings rms_norm_eps tied attention_bias
Model *llama_create(const ModelConfig *cfg, char *err, int errlen);

#ifdef __cplusplus
}
#endif
#endif
