// Llama forward / backward-to-inputs / KV-cached decode, after HF modeling_llama:
//   h = x
//   per layer:  h += o_proj(attn(rope(q_proj(rms(h))), rope(k_proj(rms(h))), v_proj(rms(h))))
//               h += down_proj(silu(gate_proj(rms(h))) * up_proj(rms(h)))
//   out = norm(h)          (logits = out · lm_head^T, taken by the caller on the rows it needs)
#include "llama.h"
#include "kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define zalloc model_zalloc

static void llama_destroy(Model *base) {
  Llama *m = (Llama *)base;
  if (!m) return;
  if (m->layer)
    for (int i = 0; i < m->c.layers; i++) {
      LlamaLayer *L = &m->layer[i];
      float *ps[] = {L->input_layernorm, L->q_bias, L->k_bias, L->v_bias, L->post_attention_layernorm};
      for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
      Mat ws[] = {L->q_proj, L->k_proj, L->v_proj, L->o_proj, L->gate_proj, L->up_proj, L->down_proj};
      for (unsigned j = 0; j < sizeof ws / sizeof *ws; j++) free(ws[j].p);
    }
  free(m->layer);
  mat_free(m->lm_head, m->embed_tokens);
  free(m->embed_tokens.p);
  free(m->norm);
  free(m->inv_freq);
  free(m->cos_t);
  free(m->sin_t);
  free(m);
}

static void llama_prepare(Model *base) {
  Llama *m = (Llama *)base;
  rope_tables(m->cos_t, m->sin_t, m->inv_freq, m->c.max_pos, m->c.head_dim / 2);
  if (m->c.tied) m->lm_head = m->embed_tokens;
  base->embed_tokens = m->embed_tokens;
  base->lm_head = m->lm_head;
}

// ---- activation buffers, grown on demand

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

static void *llama_acts_new(const Model *m) {
  (void)m;
  return calloc(1, sizeof(Acts));
}

static void acts_release(Acts *a) {
  if (a->l)
    for (int i = 0; i < a->layers; i++) {
      LayerActs *L = &a->l[i];
      float *ps[] = {L->h_in, L->r1, L->xn1, L->q, L->k, L->v, L->att, L->lse, L->h_mid, L->r2, L->xn2, L->g, L->u, L->act};
      for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
    }
  free(a->l);
  float *ps[] = {a->h_out, a->rf, a->xnf, a->dh, a->dx, a->dq, a->dk, a->dv, a->datt, a->dg, a->du, a->dact};
  for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
  memset(a, 0, sizeof *a);
}

static void llama_acts_free(void *p) {
  if (!p) return;
  acts_release((Acts *)p);
  free(p);
}

static int acts_reserve(const Llama *m, Acts *a, int B, int T) {
  const long BT = (long)B * T;
  a->B = B;
  a->T = T;
  if (BT <= a->cap && a->l) return 1;
  const LlamaConfig *c = &m->c;
  acts_release(a);
  a->B = B;
  a->T = T;
  const long d = c->d, qd = (long)c->heads * c->head_dim, kvd = (long)c->kv_heads * c->head_dim, I = c->inter;
  a->layers = c->layers;
  a->l = (LayerActs *)calloc(c->layers, sizeof(LayerActs));
  if (!a->l) return 0;
  int ok = 1;
  for (int i = 0; i < c->layers; i++) {
    LayerActs *L = &a->l[i];
    L->h_in = zalloc(BT * d), L->r1 = zalloc(BT), L->xn1 = zalloc(BT * d);
    L->q = zalloc(BT * qd), L->k = zalloc(BT * kvd), L->v = zalloc(BT * kvd);
    L->att = zalloc(BT * qd), L->lse = zalloc(BT * c->heads);
    L->h_mid = zalloc(BT * d), L->r2 = zalloc(BT), L->xn2 = zalloc(BT * d);
    L->g = zalloc(BT * I), L->u = zalloc(BT * I), L->act = zalloc(BT * I);
    ok = ok && L->h_in && L->r1 && L->xn1 && L->q && L->k && L->v && L->att && L->lse && L->h_mid && L->r2 && L->xn2 && L->g && L->u && L->act;
  }
  a->h_out = zalloc(BT * d), a->rf = zalloc(BT), a->xnf = zalloc(BT * d);
  a->dh = zalloc(BT * d), a->dx = zalloc(BT * d);
  a->dq = zalloc(BT * qd), a->dk = zalloc(BT * kvd), a->dv = zalloc(BT * kvd), a->datt = zalloc(BT * qd);
  a->dg = zalloc(BT * I), a->du = zalloc(BT * I), a->dact = zalloc(BT * I);
  ok = ok && a->h_out && a->rf && a->xnf && a->dh && a->dx && a->dq && a->dk && a->dv && a->datt && a->dg && a->du && a->dact;
  if (!ok) {
    acts_release(a);
    return 0;
  }
  a->cap = BT;
  return 1;
}

static const float *llama_forward(const Model *base, void *acts, const float *x, int B, int T) {
  const Llama *m = (const Llama *)base;
  Acts *a = (Acts *)acts;
  if (!acts_reserve(m, a, B, T)) return NULL;
  const LlamaConfig *c = &m->c;
  const int M = B * T, d = c->d, Hq = c->heads, Hkv = c->kv_heads, D = c->head_dim, I = c->inter;
  memcpy(a->l[0].h_in, x, sizeof(float) * M * d);
  for (int i = 0; i < c->layers; i++) {
    const LlamaLayer *W = &m->layer[i];
    LayerActs *L = &a->l[i];
    float *h_next = i + 1 < c->layers ? a->l[i + 1].h_in : a->h_out;
    rmsnorm(L->xn1, L->r1, L->h_in, W->input_layernorm, M, d, c->eps);
    matmul(L->q, L->xn1, W->q_proj, W->q_bias, M, d, Hq * D);
    matmul(L->k, L->xn1, W->k_proj, W->k_bias, M, d, Hkv * D);
    matmul(L->v, L->xn1, W->v_proj, W->v_bias, M, d, Hkv * D);
    rope(L->q, m->cos_t, m->sin_t, B, T, Hq, D, 0);
    rope(L->k, m->cos_t, m->sin_t, B, T, Hkv, D, 0);
    attention(L->att, L->lse, L->q, L->k, L->v, B, T, Hq, Hkv, D);
    matmul(L->h_mid, L->att, W->o_proj, NULL, M, Hq * D, d);
    add_inplace(L->h_mid, L->h_in, (long)M * d);
    rmsnorm(L->xn2, L->r2, L->h_mid, W->post_attention_layernorm, M, d, c->eps);
    matmul(L->g, L->xn2, W->gate_proj, NULL, M, d, I);
    matmul(L->u, L->xn2, W->up_proj, NULL, M, d, I);
    swiglu(L->act, L->g, L->u, (long)M * I);
    matmul(h_next, L->act, W->down_proj, NULL, M, I, d);
    add_inplace(h_next, L->h_mid, (long)M * d);
  }
  rmsnorm(a->xnf, a->rf, a->h_out, m->norm, M, d, c->eps);
  return a->xnf;
}

static void llama_backward(const Model *base, void *acts, float *dxnf, float *dx) {
  const Llama *m = (const Llama *)base;
  Acts *a = (Acts *)acts;
  const LlamaConfig *c = &m->c;
  const int B = a->B, T = a->T, M = B * T, d = c->d, Hq = c->heads, Hkv = c->kv_heads, D = c->head_dim, I = c->inter;
  float *dh = a->dh; // gradient of the residual stream, walked from the top down
  memset(dh, 0, sizeof(float) * M * d);
  rmsnorm_backward(dh, dxnf, a->h_out, a->rf, m->norm, M, d);
  for (int i = c->layers - 1; i >= 0; i--) {
    const LlamaLayer *W = &m->layer[i];
    LayerActs *L = &a->l[i];
    // h_next = h_mid + down_proj(silu(g)·u): dh passes straight to h_mid, plus the MLP's share
    memset(a->dact, 0, sizeof(float) * M * I);
    matmul_backward(a->dact, dh, W->down_proj, M, I, d);
    swiglu_backward(a->dg, a->du, a->dact, L->g, L->u, (long)M * I);
    memset(a->dx, 0, sizeof(float) * M * d);
    matmul_backward(a->dx, a->dg, W->gate_proj, M, d, I);
    matmul_backward(a->dx, a->du, W->up_proj, M, d, I);
    rmsnorm_backward(dh, a->dx, L->h_mid, L->r2, W->post_attention_layernorm, M, d);
    // h_mid = h_in + o_proj(att)
    memset(a->datt, 0, sizeof(float) * M * Hq * D);
    matmul_backward(a->datt, dh, W->o_proj, M, Hq * D, d);
    attention_backward(a->dq, a->dk, a->dv, a->datt, L->att, L->lse, L->q, L->k, L->v, B, T, Hq, Hkv, D);
    rope_backward(a->dq, m->cos_t, m->sin_t, B, T, Hq, D);
    rope_backward(a->dk, m->cos_t, m->sin_t, B, T, Hkv, D);
    memset(a->dx, 0, sizeof(float) * M * d);
    matmul_backward(a->dx, a->dq, W->q_proj, M, d, Hq * D);
    matmul_backward(a->dx, a->dk, W->k_proj, M, d, Hkv * D);
    matmul_backward(a->dx, a->dv, W->v_proj, M, d, Hkv * D);
    rmsnorm_backward(dh, a->dx, L->h_in, L->r1, W->input_layernorm, M, d);
  }
  memcpy(dx, dh, sizeof(float) * M * d);
}

// ---- KV-cached decode (one sequence)

typedef struct {
  int cap, len;
  float *k, *v; // [layers, cap, Hkv·D]
} KVCache;

static void llama_state_free(void *p) {
  KVCache *kc = (KVCache *)p;
  if (!kc) return;
  free(kc->k);
  free(kc->v);
  free(kc);
}

static void *llama_state_new(const Model *base, int cap) {
  const LlamaConfig *c = &((const Llama *)base)->c;
  KVCache *kc = (KVCache *)calloc(1, sizeof(KVCache));
  if (!kc) return NULL;
  const long kvd = (long)c->kv_heads * c->head_dim;
  kc->cap = cap;
  kc->k = zalloc((long)c->layers * cap * kvd);
  kc->v = zalloc((long)c->layers * cap * kvd);
  if (!kc->k || !kc->v) {
    llama_state_free(kc);
    return NULL;
  }
  return kc;
}

static int llama_decode(const Model *base, void *state, const float *x, int n, float *hidden_last) {
  const Llama *m = (const Llama *)base;
  KVCache *kc = (KVCache *)state;
  const LlamaConfig *c = &m->c;
  const int d = c->d, Hq = c->heads, Hkv = c->kv_heads, D = c->head_dim, I = c->inter;
  const long kvd = (long)Hkv * D, qd = (long)Hq * D;
  const int p0 = kc->len;
  if (n <= 0 || p0 + n > kc->cap) return 0;
  float *h = zalloc((long)n * d), *xn = zalloc((long)n * d), *r = zalloc(n), *q = zalloc(n * qd), *att = zalloc(n * qd);
  float *g = zalloc((long)n * I), *u = zalloc((long)n * I), *tmp = zalloc((long)n * d);
  int ok = h && xn && r && q && att && g && u && tmp;
  if (ok) {
    memcpy(h, x, sizeof(float) * n * d);
    for (int i = 0; i < c->layers; i++) {
      const LlamaLayer *W = &m->layer[i];
      float *K = kc->k + (long)i * kc->cap * kvd, *V = kc->v + (long)i * kc->cap * kvd;
      rmsnorm(xn, r, h, W->input_layernorm, n, d, c->eps);
      matmul(q, xn, W->q_proj, W->q_bias, n, d, Hq * D);
      matmul(K + p0 * kvd, xn, W->k_proj, W->k_bias, n, d, Hkv * D);
      matmul(V + p0 * kvd, xn, W->v_proj, W->v_bias, n, d, Hkv * D);
      rope(q, m->cos_t, m->sin_t, 1, n, Hq, D, p0);
      rope(K + p0 * kvd, m->cos_t, m->sin_t, 1, n, Hkv, D, p0);
      attention_cached(att, q, K, V, n, p0, Hq, Hkv, D);
      matmul(tmp, att, W->o_proj, NULL, n, Hq * D, d);
      add_inplace(h, tmp, (long)n * d);
      rmsnorm(xn, r, h, W->post_attention_layernorm, n, d, c->eps);
      matmul(g, xn, W->gate_proj, NULL, n, d, I);
      matmul(u, xn, W->up_proj, NULL, n, d, I);
      swiglu(g, g, u, (long)n * I);
      matmul(tmp, g, W->down_proj, NULL, n, I, d);
      add_inplace(h, tmp, (long)n * d);
    }
    kc->len = p0 + n;
    rmsnorm(hidden_last, r, h + (long)(n - 1) * d, m->norm, 1, d, c->eps);
  }
  free(h), free(xn), free(r), free(q), free(att), free(g), free(u), free(tmp);
  return ok;
}

static const ModelOps LLAMA_OPS = {llama_prepare, llama_acts_new, llama_acts_free, llama_forward, llama_backward, llama_state_new, llama_state_free, llama_decode, llama_destroy};

Model *llama_create(const ModelConfig *cfg, char *err, int errlen) {
  LlamaConfig c = {0};
  int ok = config_int(cfg, "hidden_size", 1, 1 << 16, &c.d, err, errlen) && config_int(cfg, "vocab_size", 1, 1 << 22, &c.vocab, err, errlen) &&
           config_int(cfg, "num_hidden_layers", 1, 1024, &c.layers, err, errlen) && config_int(cfg, "num_attention_heads", 1, 1024, &c.heads, err, errlen) &&
           config_int(cfg, "num_key_value_heads", 1, c.heads, &c.kv_heads, err, errlen) && config_int(cfg, "head_dim", 2, 4096, &c.head_dim, err, errlen) &&
           config_int(cfg, "intermediate_size", 1, 1 << 20, &c.inter, err, errlen) && config_int(cfg, "max_position_embeddings", 1, 1 << 20, &c.max_pos, err, errlen) &&
           config_float(cfg, "rms_norm_eps", &c.eps, err, errlen);
  if (!ok) return NULL;
  c.tied = config_bool(cfg, "tied", 0);
  c.attention_bias = config_bool(cfg, "attention_bias", 0);
  if (c.heads % c.kv_heads) return snprintf(err, errlen, "num_attention_heads must be a multiple of num_key_value_heads"), NULL;
  if (c.head_dim % 2) return snprintf(err, errlen, "head_dim must be even (RoPE pairs)"), NULL;

  Llama *m = (Llama *)calloc(1, sizeof(Llama));
  if (!m) return snprintf(err, errlen, "out of memory allocating the model"), NULL;
  m->c = c;
  Model *b = &m->base;
  b->ops = &LLAMA_OPS;
  b->type = "llama";
  const long d = c.d, qd = (long)c.heads * c.head_dim, kvd = (long)c.kv_heads * c.head_dim, I = c.inter, V = c.vocab;
  m->norm = zalloc(d);
  m->inv_freq = zalloc(c.head_dim / 2);
  m->cos_t = zalloc((long)c.max_pos * c.head_dim / 2);
  m->sin_t = zalloc((long)c.max_pos * c.head_dim / 2);
  m->layer = (LlamaLayer *)calloc(c.layers, sizeof(LlamaLayer));
  ok = m->norm && m->inv_freq && m->cos_t && m->sin_t && m->layer;
  ok = ok && model_mat(b, "model.embed_tokens.weight", &m->embed_tokens, V * d) && model_slot(b, "model.norm.weight", m->norm, d) &&
       (c.tied || model_mat(b, "lm_head.weight", &m->lm_head, V * d)) && model_slot(b, "rope.inv_freq", m->inv_freq, c.head_dim / 2);
  char p[96];
#define SLOT(ptr, name, n) (((ptr) = zalloc(n)) && (snprintf(p, sizeof p, "model.layers.%d.%s", i, name), model_slot(b, p, (ptr), (n))))
#define MAT(w, name, n) (snprintf(p, sizeof p, "model.layers.%d.%s", i, name), model_mat(b, p, &(w), (n)))
  for (int i = 0; ok && i < c.layers; i++) {
    LlamaLayer *L = &m->layer[i];
    ok = SLOT(L->input_layernorm, "input_layernorm.weight", d) && MAT(L->q_proj, "self_attn.q_proj.weight", qd * d) &&
         MAT(L->k_proj, "self_attn.k_proj.weight", kvd * d) && MAT(L->v_proj, "self_attn.v_proj.weight", kvd * d) &&
         (!c.attention_bias || (SLOT(L->q_bias, "self_attn.q_proj.bias", qd) && SLOT(L->k_bias, "self_attn.k_proj.bias", kvd) && SLOT(L->v_bias, "self_attn.v_proj.bias", kvd))) &&
         MAT(L->o_proj, "self_attn.o_proj.weight", d * qd) && SLOT(L->post_attention_layernorm, "post_attention_layernorm.weight", d) &&
         MAT(L->gate_proj, "mlp.gate_proj.weight", I * d) && MAT(L->up_proj, "mlp.up_proj.weight", I * d) && MAT(L->down_proj, "mlp.down_proj.weight", d * I);
  }
#undef SLOT
#undef MAT
  if (!ok) {
    model_free(b);
    snprintf(err, errlen, "out of memory allocating the model");
    return NULL;
  }
  b->d_in = b->d_out = c.d;
  b->vocab = c.vocab;
  b->max_pos = c.max_pos;
  b->body_macs = (double)c.layers * (d * (2 * qd + 2 * kvd) + 3.0 * d * I);
  return b;
}
