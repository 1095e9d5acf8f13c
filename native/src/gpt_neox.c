// GPT-NeoX forward / backward-to-inputs / KV-cached decode, after HF modeling_gpt_neox (and gpt_neox.ts):
//   h = x
//   per layer:  a(y) = dense(attn(rope(q), rope(k), v)),  q|k|v = query_key_value(y) per head
//               parallel (use_parallel_residual):  h = (h + a(ln1(h))) + mlp(ln2(h))
//               sequential:                        h = h + a(ln1(h));  h = h + mlp(ln2(h))
//               mlp(y) = dense_4h_to_h(gelu(dense_h_to_4h(y)))     gelu = exact (erf)
//   out = final_layer_norm(h)       (logits = out · embed_out^T, taken by the caller)
// ln1 = input_layernorm, ln2 = post_attention_layernorm: LayerNorms with weight and bias.
// RoPE (rotate-half) covers the first rotary_dim = head_size·rotary_pct dims of each head only.
#include "gpt_neox.h"
#include "kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define zalloc model_zalloc

static void neox_destroy(Model *base) {
  GPTNeoX *m = (GPTNeoX *)base;
  if (m->layer)
    for (int i = 0; i < m->c.layers; i++) {
      GPTNeoXLayer *L = &m->layer[i];
      float *ps[] = {L->input_layernorm_w, L->input_layernorm_b, L->query_key_value_b, L->dense_b,
                     L->post_attention_layernorm_w, L->post_attention_layernorm_b, L->dense_h_to_4h_b, L->dense_4h_to_h_b};
      for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
      Mat ws[] = {L->query_key_value_w, L->dense_w, L->dense_h_to_4h_w, L->dense_4h_to_h_w};
      for (unsigned j = 0; j < sizeof ws / sizeof *ws; j++) free(ws[j].p);
    }
  free(m->layer);
  mat_free(m->embed_out, m->embed_in);
  free(m->embed_in.p), free(m->final_layer_norm_w), free(m->final_layer_norm_b);
  free(m->inv_freq), free(m->cos_t), free(m->sin_t);
  free(m);
}

// query_key_value's output is per head [q (hs) | k (hs) | v (hs)] (HF's view(..., heads, 3·hs)):
// split it into q, k, v [M, H, hs] for the attention kernel, and merge their gradients back.
static void split_qkv(float *q, float *k, float *v, const float *qkv, int M, int H, int hs) {
  for (long m = 0; m < M; m++)
    for (int h = 0; h < H; h++) {
      const float *src = qkv + (m * H + h) * 3 * hs;
      const long o = (m * H + h) * hs;
      memcpy(q + o, src, sizeof(float) * hs);
      memcpy(k + o, src + hs, sizeof(float) * hs);
      memcpy(v + o, src + 2 * hs, sizeof(float) * hs);
    }
}

static void merge_qkv(float *dqkv, const float *dq, const float *dk, const float *dv, int M, int H, int hs) {
  for (long m = 0; m < M; m++)
    for (int h = 0; h < H; h++) {
      float *dst = dqkv + (m * H + h) * 3 * hs;
      const long o = (m * H + h) * hs;
      memcpy(dst, dq + o, sizeof(float) * hs);
      memcpy(dst + hs, dk + o, sizeof(float) * hs);
      memcpy(dst + 2 * hs, dv + o, sizeof(float) * hs);
    }
}

static void neox_prepare(Model *base) {
  GPTNeoX *m = (GPTNeoX *)base;
  rope_tables(m->cos_t, m->sin_t, m->inv_freq, m->c.max_pos, m->c.rotary_dim / 2);
  if (m->c.tied) m->embed_out = m->embed_in;
  base->embed_tokens = m->embed_in;
  base->lm_head = m->embed_out;
}

// ---- activations of one forward over x[B,T,d], per layer, kept for the backward

typedef struct {
  float *h_in;              // [M,d] layer input
  float *mu1, *r1, *xn1;    // ln1(h_in)
  float *q, *k, *v, *att;   // [M,d] (q, k after RoPE), att before dense
  float *lse;               // [B,H,T]
  float *h_mid;             // [M,d] h_in + a   (sequential: ln2's input; parallel: the partial sum)
  float *mu2, *r2, *xn2;    // ln2(sequential: h_mid, parallel: h_in)
  float *f, *act;           // [M,I] dense_h_to_4h output, gelu(f)
} LayerActs;

typedef struct {
  int B, T, cap, layers;
  LayerActs *l;
  float *h_out, *muf, *rf, *xnf;                   // final_layer_norm input, stats, output
  float *qkv;                                      // [M,3d] the fused projection (forward) / its gradient (backward)
  float *dh, *dh2, *dx, *dq, *dk, *dv, *datt, *df; // backward scratch
} Acts;

static void *neox_acts_new(const Model *m) {
  (void)m;
  return calloc(1, sizeof(Acts));
}

static void acts_release(Acts *a) {
  if (a->l)
    for (int i = 0; i < a->layers; i++) {
      LayerActs *L = &a->l[i];
      float *ps[] = {L->h_in, L->mu1, L->r1, L->xn1, L->q, L->k, L->v, L->att, L->lse, L->h_mid, L->mu2, L->r2, L->xn2, L->f, L->act};
      for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
    }
  free(a->l);
  float *ps[] = {a->h_out, a->muf, a->rf, a->xnf, a->qkv, a->dh, a->dh2, a->dx, a->dq, a->dk, a->dv, a->datt, a->df};
  for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
  memset(a, 0, sizeof *a);
}

static void neox_acts_free(void *p) {
  if (!p) return;
  acts_release((Acts *)p);
  free(p);
}

static int acts_reserve(const GPTNeoX *m, Acts *a, int B, int T) {
  const long BT = (long)B * T;
  if (!(BT <= a->cap && a->l)) {
    const GPTNeoXConfig *c = &m->c;
    acts_release(a);
    const long d = c->d, I = c->inter;
    a->layers = c->layers;
    a->l = (LayerActs *)calloc(c->layers, sizeof(LayerActs));
    if (!a->l) return 0;
    int ok = 1;
    for (int i = 0; i < c->layers; i++) {
      LayerActs *L = &a->l[i];
      L->h_in = zalloc(BT * d), L->mu1 = zalloc(BT), L->r1 = zalloc(BT), L->xn1 = zalloc(BT * d);
      L->q = zalloc(BT * d), L->k = zalloc(BT * d), L->v = zalloc(BT * d), L->att = zalloc(BT * d), L->lse = zalloc(BT * c->heads);
      L->h_mid = zalloc(BT * d), L->mu2 = zalloc(BT), L->r2 = zalloc(BT), L->xn2 = zalloc(BT * d);
      L->f = zalloc(BT * I), L->act = zalloc(BT * I);
      ok = ok && L->h_in && L->mu1 && L->r1 && L->xn1 && L->q && L->k && L->v && L->att && L->lse && L->h_mid && L->mu2 && L->r2 && L->xn2 && L->f && L->act;
    }
    a->h_out = zalloc(BT * d), a->muf = zalloc(BT), a->rf = zalloc(BT), a->xnf = zalloc(BT * d);
    a->qkv = zalloc(BT * 3 * d), a->dh = zalloc(BT * d), a->dh2 = zalloc(BT * d), a->dx = zalloc(BT * d);
    a->dq = zalloc(BT * d), a->dk = zalloc(BT * d), a->dv = zalloc(BT * d), a->datt = zalloc(BT * d), a->df = zalloc(BT * I);
    ok = ok && a->h_out && a->muf && a->rf && a->xnf && a->qkv && a->dh && a->dh2 && a->dx && a->dq && a->dk && a->dv && a->datt && a->df;
    if (!ok) {
      acts_release(a);
      return 0;
    }
    a->cap = BT;
  }
  a->B = B;
  a->T = T;
  return 1;
}

static const float *neox_forward(const Model *base, void *acts, const float *x, int B, int T) {
  const GPTNeoX *m = (const GPTNeoX *)base;
  Acts *a = (Acts *)acts;
  if (!acts_reserve(m, a, B, T)) return NULL;
  const GPTNeoXConfig *c = &m->c;
  const int M = B * T, d = c->d, H = c->heads, hs = c->head_size, I = c->inter;
  memcpy(a->l[0].h_in, x, sizeof(float) * M * d);
  for (int i = 0; i < c->layers; i++) {
    const GPTNeoXLayer *W = &m->layer[i];
    LayerActs *L = &a->l[i];
    float *h_next = i + 1 < c->layers ? a->l[i + 1].h_in : a->h_out;
    // attention on ln1(h)
    layernorm(L->xn1, L->mu1, L->r1, L->h_in, W->input_layernorm_w, W->input_layernorm_b, M, d, c->eps);
    matmul(a->qkv, L->xn1, W->query_key_value_w, W->query_key_value_b, M, d, 3 * d);
    split_qkv(L->q, L->k, L->v, a->qkv, M, H, hs);
    rope_partial(L->q, m->cos_t, m->sin_t, B, T, H, hs, c->rotary_dim, 0);
    rope_partial(L->k, m->cos_t, m->sin_t, B, T, H, hs, c->rotary_dim, 0);
    attention(L->att, L->lse, L->q, L->k, L->v, B, T, H, H, hs);
    matmul(L->h_mid, L->att, W->dense_w, W->dense_b, M, d, d); // a
    add_inplace(L->h_mid, L->h_in, (long)M * d);                // h + a
    // mlp on ln2(parallel: h, sequential: h + a)
    layernorm(L->xn2, L->mu2, L->r2, c->parallel_residual ? L->h_in : L->h_mid, W->post_attention_layernorm_w, W->post_attention_layernorm_b, M, d, c->eps);
    matmul(L->f, L->xn2, W->dense_h_to_4h_w, W->dense_h_to_4h_b, M, d, I);
    gelu(L->act, L->f, (long)M * I);
    matmul(h_next, L->act, W->dense_4h_to_h_w, W->dense_4h_to_h_b, M, I, d);
    add_inplace(h_next, L->h_mid, (long)M * d); // (h + a) + mlp
  }
  layernorm(a->xnf, a->muf, a->rf, a->h_out, m->final_layer_norm_w, m->final_layer_norm_b, M, d, c->eps);
  return a->xnf;
}

static void neox_backward(const Model *base, void *acts, float *dxnf, float *dx) {
  const GPTNeoX *m = (const GPTNeoX *)base;
  Acts *a = (Acts *)acts;
  const GPTNeoXConfig *c = &m->c;
  const int B = a->B, T = a->T, M = B * T, d = c->d, H = c->heads, hs = c->head_size, I = c->inter;
  const long Md = (long)M * d;
  float *dh = a->dh; // dL/d(residual stream), walked from the top down
  memset(dh, 0, sizeof(float) * Md);
  layernorm_backward(dh, dxnf, a->h_out, a->muf, a->rf, m->final_layer_norm_w, M, d);
  for (int i = c->layers - 1; i >= 0; i--) {
    const GPTNeoXLayer *W = &m->layer[i];
    LayerActs *L = &a->l[i];
    // dh = dL/dh_next; h_next = h_mid + mlp(ln2(·)). dacc collects dL/dh_mid (parallel: dL/dh_in)
    float *dacc = a->dh2;
    memcpy(dacc, dh, sizeof(float) * Md);
    memset(a->df, 0, sizeof(float) * M * I); // d(act), then d(f) in place
    matmul_backward(a->df, dh, W->dense_4h_to_h_w, M, I, d);
    gelu_backward(a->df, a->df, L->f, (long)M * I);
    memset(a->dx, 0, sizeof(float) * Md);
    matmul_backward(a->dx, a->df, W->dense_h_to_4h_w, M, d, I);
    // ln2's input is h_in (parallel) or h_mid (sequential); both receive into dacc: for parallel dacc is
    // dL/dh_in so far (h_in's direct path through h_mid plus the mlp path)
    layernorm_backward(dacc, a->dx, c->parallel_residual ? L->h_in : L->h_mid, L->mu2, L->r2, W->post_attention_layernorm_w, M, d);
    // attention branch: h_mid = h_in + a(ln1(h_in)); its gradient is dL/dh_mid:
    //   parallel: dL/dh_next (dh) itself (h_mid feeds only the sum); sequential: dacc
    const float *dmid = c->parallel_residual ? dh : dacc;
    memset(a->datt, 0, sizeof(float) * Md);
    matmul_backward(a->datt, dmid, W->dense_w, M, d, d);
    attention_backward(a->dq, a->dk, a->dv, a->datt, L->att, L->lse, L->q, L->k, L->v, B, T, H, H, hs);
    rope_partial_backward(a->dq, m->cos_t, m->sin_t, B, T, H, hs, c->rotary_dim);
    rope_partial_backward(a->dk, m->cos_t, m->sin_t, B, T, H, hs, c->rotary_dim);
    merge_qkv(a->qkv, a->dq, a->dk, a->dv, M, H, hs);
    memset(a->dx, 0, sizeof(float) * Md);
    matmul_backward(a->dx, a->qkv, W->query_key_value_w, M, d, 3 * d);
    layernorm_backward(dacc, a->dx, L->h_in, L->mu1, L->r1, W->input_layernorm_w, M, d);
    // dacc is now dL/dh_in: it becomes the next (lower) layer's dh
    a->dh2 = dh;
    a->dh = dh = dacc;
  }
  memcpy(dx, dh, sizeof(float) * Md);
}

// ---- KV-cached decode (one sequence)

typedef struct {
  int cap, len;
  float *k, *v; // [layers, cap, d]
} KVCache;

static void neox_state_free(void *p) {
  KVCache *kc = (KVCache *)p;
  if (!kc) return;
  free(kc->k), free(kc->v), free(kc);
}

static void *neox_state_new(const Model *base, int cap) {
  const GPTNeoXConfig *c = &((const GPTNeoX *)base)->c;
  KVCache *kc = (KVCache *)calloc(1, sizeof(KVCache));
  if (!kc) return NULL;
  kc->cap = cap;
  kc->k = zalloc((long)c->layers * cap * c->d);
  kc->v = zalloc((long)c->layers * cap * c->d);
  if (!kc->k || !kc->v) return neox_state_free(kc), NULL;
  return kc;
}

static int neox_decode(const Model *base, void *state, const float *x, int n, float *hidden_last) {
  const GPTNeoX *m = (const GPTNeoX *)base;
  KVCache *kc = (KVCache *)state;
  const GPTNeoXConfig *c = &m->c;
  const int d = c->d, H = c->heads, hs = c->head_size, I = c->inter, p0 = kc->len;
  if (n <= 0 || p0 + n > kc->cap) return 0;
  float *h = zalloc((long)n * d), *xn = zalloc((long)n * d), *mu = zalloc(n), *r = zalloc(n), *q = zalloc((long)n * d), *att = zalloc((long)n * d);
  float *hm = zalloc((long)n * d), *f = zalloc((long)n * I), *qkv = zalloc((long)n * 3 * d);
  int ok = h && xn && mu && r && q && att && hm && f && qkv;
  if (ok) {
    memcpy(h, x, sizeof(float) * n * d);
    for (int i = 0; i < c->layers; i++) {
      const GPTNeoXLayer *W = &m->layer[i];
      float *K = kc->k + (long)i * kc->cap * d + (long)p0 * d, *V = kc->v + (long)i * kc->cap * d + (long)p0 * d;
      layernorm(xn, mu, r, h, W->input_layernorm_w, W->input_layernorm_b, n, d, c->eps);
      matmul(qkv, xn, W->query_key_value_w, W->query_key_value_b, n, d, 3 * d);
      split_qkv(q, K, V, qkv, n, H, hs);
      rope_partial(q, m->cos_t, m->sin_t, 1, n, H, hs, c->rotary_dim, p0);
      rope_partial(K, m->cos_t, m->sin_t, 1, n, H, hs, c->rotary_dim, p0);
      attention_cached(att, q, kc->k + (long)i * kc->cap * d, kc->v + (long)i * kc->cap * d, n, p0, H, H, hs);
      matmul(hm, att, W->dense_w, W->dense_b, n, d, d);
      add_inplace(hm, h, (long)n * d); // h + a
      layernorm(xn, mu, r, c->parallel_residual ? h : hm, W->post_attention_layernorm_w, W->post_attention_layernorm_b, n, d, c->eps);
      matmul(f, xn, W->dense_h_to_4h_w, W->dense_h_to_4h_b, n, d, I);
      gelu(f, f, (long)n * I);
      matmul(h, f, W->dense_4h_to_h_w, W->dense_4h_to_h_b, n, I, d);
      add_inplace(h, hm, (long)n * d);
    }
    kc->len = p0 + n;
    layernorm(hidden_last, mu, r, h + (long)(n - 1) * d, m->final_layer_norm_w, m->final_layer_norm_b, 1, d, c->eps);
  }
  free(h), free(xn), free(mu), free(r), free(q), free(att), free(hm), free(f), free(qkv);
  return ok;
}

static const ModelOps NEOX_OPS = {neox_prepare, neox_acts_new, neox_acts_free, neox_forward, neox_backward, neox_state_new, neox_state_free, neox_decode, neox_destroy};

Model *gpt_neox_create(const ModelConfig *cfg, char *err, int errlen) {
  GPTNeoXConfig c = {0};
  int ok = config_int(cfg, "hidden_size", 1, 1 << 16, &c.d, err, errlen) && config_int(cfg, "vocab_size", 1, 1 << 22, &c.vocab, err, errlen) &&
           config_int(cfg, "num_hidden_layers", 1, 1024, &c.layers, err, errlen) && config_int(cfg, "num_attention_heads", 1, 1024, &c.heads, err, errlen) &&
           config_int(cfg, "intermediate_size", 1, 1 << 20, &c.inter, err, errlen) && config_int(cfg, "max_position_embeddings", 1, 1 << 20, &c.max_pos, err, errlen) &&
           config_float(cfg, "layer_norm_eps", &c.eps, err, errlen);
  if (!ok) return NULL;
  if (c.d % c.heads) return snprintf(err, errlen, "hidden_size %d is not a multiple of num_attention_heads %d", c.d, c.heads), NULL;
  c.head_size = c.d / c.heads;
  if (!config_int(cfg, "rotary_dim", 0, c.head_size, &c.rotary_dim, err, errlen)) return NULL;
  if (c.rotary_dim % 2) return snprintf(err, errlen, "rotary_dim must be even (RoPE pairs), got %d", c.rotary_dim), NULL;
  c.parallel_residual = config_bool(cfg, "use_parallel_residual", 1);
  c.tied = config_bool(cfg, "tied", 0);
  c.qkv_bias = config_bool(cfg, "qkv_bias", 1);
  c.dense_bias = config_bool(cfg, "dense_bias", 1);

  GPTNeoX *m = (GPTNeoX *)calloc(1, sizeof(GPTNeoX));
  if (!m) return snprintf(err, errlen, "out of memory allocating the model"), NULL;
  m->c = c;
  Model *b = &m->base;
  b->ops = &NEOX_OPS;
  b->type = "gpt_neox";
  const long d = c.d, I = c.inter, V = c.vocab, half = c.rotary_dim / 2;
  char p[128];
#define SLOT(ptr, name, n) (((ptr) = zalloc(n)) && model_slot(b, (name), (ptr), (n)))
#define LSLOT(ptr, name, n) (((ptr) = zalloc(n)) && (snprintf(p, sizeof p, "gpt_neox.layers.%d.%s", i, name), model_slot(b, p, (ptr), (n))))
#define LMAT(w, name, n) (snprintf(p, sizeof p, "gpt_neox.layers.%d.%s", i, name), model_mat(b, p, &(w), (n)))
  ok = model_mat(b, "gpt_neox.embed_in.weight", &m->embed_in, V * d) && SLOT(m->final_layer_norm_w, "gpt_neox.final_layer_norm.weight", d) &&
       SLOT(m->final_layer_norm_b, "gpt_neox.final_layer_norm.bias", d) && SLOT(m->inv_freq, "rope.inv_freq", half) &&
       (m->cos_t = zalloc((long)c.max_pos * half)) && (m->sin_t = zalloc((long)c.max_pos * half)) &&
       (m->layer = (GPTNeoXLayer *)calloc(c.layers, sizeof(GPTNeoXLayer)));
  if (ok && !c.tied) ok = model_mat(b, "embed_out.weight", &m->embed_out, V * d);
  for (int i = 0; ok && i < c.layers; i++) {
    GPTNeoXLayer *L = &m->layer[i];
    ok = LSLOT(L->input_layernorm_w, "input_layernorm.weight", d) && LSLOT(L->input_layernorm_b, "input_layernorm.bias", d) &&
         LMAT(L->query_key_value_w, "attention.query_key_value.weight", 3 * d * d) &&
         (!c.qkv_bias || LSLOT(L->query_key_value_b, "attention.query_key_value.bias", 3 * d)) && LMAT(L->dense_w, "attention.dense.weight", d * d) &&
         (!c.dense_bias || LSLOT(L->dense_b, "attention.dense.bias", d)) && LSLOT(L->post_attention_layernorm_w, "post_attention_layernorm.weight", d) &&
         LSLOT(L->post_attention_layernorm_b, "post_attention_layernorm.bias", d) && LMAT(L->dense_h_to_4h_w, "mlp.dense_h_to_4h.weight", I * d) &&
         LSLOT(L->dense_h_to_4h_b, "mlp.dense_h_to_4h.bias", I) && LMAT(L->dense_4h_to_h_w, "mlp.dense_4h_to_h.weight", d * I) &&
         LSLOT(L->dense_4h_to_h_b, "mlp.dense_4h_to_h.bias", d);
  }
#undef SLOT
#undef LSLOT
#undef LMAT
  if (!ok) {
    model_free(b);
    snprintf(err, errlen, "out of memory allocating the model");
    return NULL;
  }
  b->d_in = b->d_out = c.d;
  b->vocab = c.vocab;
  b->max_pos = c.max_pos;
  b->body_macs = (double)c.layers * (4.0 * d * d + 2.0 * d * I);
  return b;
}
