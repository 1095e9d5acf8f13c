// A frozen LlamaForCausalLM in native memory: forward that keeps what the backward needs,
// backward to the input embeddings only, and a KV-cached forward for greedy decoding.
// Weight names follow the HF checkpoint keys (model.layers.i.self_attn.q_proj.weight → q_proj).
#ifndef CRAMLAB_LLAMA_H
#define CRAMLAB_LLAMA_H
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
  float *q_proj, *k_proj, *v_proj; // [Hq·D, d], [Hkv·D, d], [Hkv·D, d]
  float *q_bias, *k_bias, *v_bias; // [Hq·D], [Hkv·D], [Hkv·D] or NULL
  float *o_proj;                   // [d, Hq·D]
  float *post_attention_layernorm; // [d]
  float *gate_proj, *up_proj;      // [I, d]
  float *down_proj;                // [d, I]
} LlamaLayer;

typedef struct {
  LlamaConfig c;
  float *embed_tokens; // [V, d]
  float *norm;         // [d]
  float *lm_head;      // [V, d] (= embed_tokens when tied)
  float *inv_freq;     // [D/2], from JS (one home for llama3 scaling)
  float *cos_t, *sin_t; // [max_pos, D/2]
  LlamaLayer *layer;
} Llama;

// Activations of one forward over x[B,T,d], per layer, kept for the backward.
typedef struct {
  float *h_in, *r1, *xn1, *q, *k, *v, *att, *lse, *h_mid, *r2, *xn2, *g, *u, *act;
} LayerActs;

typedef struct {
  int B, T, cap, layers; // cap: B·T the buffers hold
  LayerActs *l;
  float *h_out, *rf, *xnf; // [BT,d], [BT], [BT,d] final norm input / output
  // scratch for the backward
  float *dh, *dx, *dq, *dk, *dv, *datt, *dg, *du, *dact;
} Acts;

Llama *llama_new(const LlamaConfig *c); // weights zero-filled, filled by the caller
void llama_free(Llama *m);
void llama_tables(Llama *m); // cos/sin from inv_freq

Acts *acts_new(void);
void acts_free(Acts *a);
// forward of x[B,T,d] (input embeddings); fills a; the final normed hidden states are a->xnf [BT,d]
int llama_forward(const Llama *m, Acts *a, const float *x, int B, int T);
// dxnf[BT,d] → dx[BT,d] (the gradient of the input embeddings). dxnf is consumed (used as scratch).
void llama_backward(const Llama *m, Acts *a, float *dxnf, float *dx);

// KV cache of one sequence for greedy decoding
typedef struct {
  int cap, len;
  float *k, *v; // [layers, cap, Hkv·D]
  float *h, *xn, *q, *att, *g, *u, *tmp, *lse;
} KVCache;
KVCache *kv_new(const Llama *m, int cap);
void kv_free(KVCache *c);
// run n new positions x[n,d] from position c->len; logits of the last one into logits[V]
int llama_decode(const Llama *m, KVCache *c, const float *x, int n, float *logits);

#ifdef __cplusplus
}
#endif
#endif
