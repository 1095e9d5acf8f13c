// OLMo forward / backward-to-inputs / KV-cached decode, after HF modeling_olmo (and olmo.ts): a Llama-shaped
// decoder whose norms are non-parametric LayerNorms (mean subtracted, no weight, no bias, eps 1e-5):
//   h = x
//   per layer:  y = norm(h);  q, k, v = clip(q_proj(y)), clip(k_proj(y)), clip(v_proj(y))   (clip_qkv, when set:
//               clamp to ±clip_qkv right after the projections, before the head split and RoPE)
//               h += o_proj(attn(rope(q), rope(k), v))       (grouped-query heads like Llama)
//               y = norm(h);  h += down_proj(silu(gate_proj(y)) * up_proj(y))
//   out = norm(h)          (logits = out · lm_head^T, taken by the caller)
// The clamp's gradient is zero where it bites (|pre-clamp value| > clip_qkv): kept as a byte mask per entry.
#include "olmo.h"
#include "kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define zalloc model_zalloc
static const float EPS = 1e-5f; // OlmoLayerNorm's, fixed (a config's rms_norm_eps is not read)

static void olmo_destroy(Model *base) {
  Olmo *m = (Olmo *)base;
  if (m->layer)
    for (int i = 0; i < m->c.layers; i++) {
      OlmoLayer *L = &m->layer[i];
      Mat ws[] = {L->q_proj, L->k_proj, L->v_proj, L->o_proj, L->gate_proj, L->up_proj, L->down_proj};
      for (unsigned j = 0; j < sizeof ws / sizeof *ws; j++) free(ws[j].p);
    }
  free(m->layer);
  mat_free(m->lm_head, m->embed_tokens);
  free(m->embed_tokens.p), free(m->inv_freq), free(m->cos_t), free(m->sin_t);
  free(m);
}

static void olmo_prepare(Model *base) {
  Olmo *m = (Olmo *)base;
  rope_tables(m->cos_t, m->sin_t, m->inv_freq, m->c.max_pos, m->c.head_dim / 2);
  if (m->c.tied) m->lm_head = m->embed_tokens;
  base->embed_tokens = m->embed_tokens;
  base->lm_head = m->lm_head;
}

// ---- activations of one forward over x[B,T,d], per layer, kept for the backward

typedef struct {
  float *h_in, *mu1, *r1, *xn1;     // layer input, norm(h_in)
  float *q, *k, *v, *att, *lse;     // q, k after clamp and RoPE; v after clamp
  unsigned char *pass_q, *pass_k, *pass_v; // clamp masks (NULL without clip_qkv)
  float *h_mid, *mu2, *r2, *xn2;    // h_in + attention, norm(h_mid)
  float *g, *u, *act;               // [M,I]
} LayerActs;

typedef struct {
  int B, T, cap, layers;
  LayerActs *l;
  float *h_out, *muf, *rf, *xnf;
  float *dh, *dx, *dq, *dk, *dv, *datt, *dg, *du, *dact;
} Acts;

static void *olmo_acts_new(const Model *m) {
  (void)m;
  return calloc(1, sizeof(Acts));
}

static void acts_release(Acts *a) {
  if (a->l)
    for (int i = 0; i < a->layers; i++) {
      LayerActs *L = &a->l[i];
      float *ps[] = {L->h_in, L->mu1, L->r1, L->xn1, L->q, L->k, L->v, L->att, L->lse, L->h_mid, L->mu2, L->r2, L->xn2, L->g, L->u, L->act};
      for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
      free(L->pass_q), free(L->pass_k), free(L->pass_v);
    }
  free(a->l);
  float *ps[] = {a->h_out, a->muf, a->rf, a->xnf, a->dh, a->dx, a->dq, a->dk, a->dv, a->datt, a->dg, a->du, a->dact};
  for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
  memset(a, 0, sizeof *a);
}

static void olmo_acts_free(void *p) {
  if (!p) return;
  acts_release((Acts *)p);
  free(p);
}

static int acts_reserve(const Olmo *m, Acts *a, int B, int T) {
  const long BT = (long)B * T;
  if (!(BT <= a->cap && a->l)) {
    const OlmoConfig *c = &m->c;
    acts_release(a);
    const long d = c->d, qd = (long)c->heads * c->head_dim, kvd = (long)c->kv_heads * c->head_dim, I = c->inter;
    a->layers = c->layers;
    a->l = (LayerActs *)calloc(c->layers, sizeof(LayerActs));
    if (!a->l) return 0;
    int ok = 1;
    for (int i = 0; i < c->layers; i++) {
      LayerActs *L = &a->l[i];
      L->h_in = zalloc(BT * d), L->mu1 = zalloc(BT), L->r1 = zalloc(BT), L->xn1 = zalloc(BT * d);
      L->q = zalloc(BT * qd), L->k = zalloc(BT * kvd), L->v = zalloc(BT * kvd), L->att = zalloc(BT * qd), L->lse = zalloc(BT * c->heads);
      L->h_mid = zalloc(BT * d), L->mu2 = zalloc(BT), L->r2 = zalloc(BT), L->xn2 = zalloc(BT * d);
      L->g = zalloc(BT * I), L->u = zalloc(BT * I), L->act = zalloc(BT * I);
      ok = ok && L->h_in && L->mu1 && L->r1 && L->xn1 && L->q && L->k && L->v && L->att && L->lse && L->h_mid && L->mu2 && L->r2 && L->xn2 && L->g && L->u && L->act;
      if (c->clip_qkv > 0) {
        L->pass_q = (unsigned char *)malloc(BT * qd), L->pass_k = (unsigned char *)malloc(BT * kvd), L->pass_v = (unsigned char *)malloc(BT * kvd);
        ok = ok && L->pass_q && L->pass_k && L->pass_v;
      }
    }
    a->h_out = zalloc(BT * d), a->muf = zalloc(BT), a->rf = zalloc(BT), a->xnf = zalloc(BT * d);
    a->dh = zalloc(BT * d), a->dx = zalloc(BT * d);
    a->dq = zalloc(BT * qd), a->dk = zalloc(BT * kvd), a->dv = zalloc(BT * kvd), a->datt = zalloc(BT * qd);
    a->dg = zalloc(BT * I), a->du = zalloc(BT * I), a->dact = zalloc(BT * I);
    ok = ok && a->h_out && a->muf && a->rf && a->xnf && a->dh && a->dx && a->dq && a->dk && a->dv && a->datt && a->dg && a->du && a->dact;
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

static const float *olmo_forward(const Model *base, void *acts, const float *x, int B, int T) {
  const Olmo *m = (const Olmo *)base;
  Acts *a = (Acts *)acts;
  if (!acts_reserve(m, a, B, T)) return NULL;
  const OlmoConfig *c = &m->c;
  const int M = B * T, d = c->d, Hq = c->heads, Hkv = c->kv_heads, D = c->head_dim, I = c->inter;
  const long qn = (long)M * Hq * D, kvn = (long)M * Hkv * D;
  memcpy(a->l[0].h_in, x, sizeof(float) * M * d);
  for (int i = 0; i < c->layers; i++) {
    const OlmoLayer *W = &m->layer[i];
    LayerActs *L = &a->l[i];
    float *h_next = i + 1 < c->layers ? a->l[i + 1].h_in : a->h_out;
    layernorm(L->xn1, L->mu1, L->r1, L->h_in, NULL, NULL, M, d, EPS);
    matmul(L->q, L->xn1, W->q_proj, NULL, M, d, Hq * D);
    matmul(L->k, L->xn1, W->k_proj, NULL, M, d, Hkv * D);
    matmul(L->v, L->xn1, W->v_proj, NULL, M, d, Hkv * D);
    if (c->clip_qkv > 0) {
      clamp(L->q, L->pass_q, qn, c->clip_qkv);
      clamp(L->k, L->pass_k, kvn, c->clip_qkv);
      clamp(L->v, L->pass_v, kvn, c->clip_qkv);
    }
    rope(L->q, m->cos_t, m->sin_t, B, T, Hq, D, 0);
    rope(L->k, m->cos_t, m->sin_t, B, T, Hkv, D, 0);
    attention(L->att, L->lse, L->q, L->k, L->v, B, T, Hq, Hkv, D);
    matmul(L->h_mid, L->att, W->o_proj, NULL, M, Hq * D, d);
    add_inplace(L->h_mid, L->h_in, (long)M * d);
    layernorm(L->xn2, L->mu2, L->r2, L->h_mid, NULL, NULL, M, d, EPS);
    matmul(L->g, L->xn2, W->gate_proj, NULL, M, d, I);
    matmul(L->u, L->xn2, W->up_proj, NULL, M, d, I);
    swiglu(L->act, L->g, L->u, (long)M * I);
    matmul(h_next, L->act, W->down_proj, NULL, M, I, d);
    add_inplace(h_next, L->h_mid, (long)M * d);
  }
  layernorm(a->xnf, a->muf, a->rf, a->h_out, NULL, NULL, M, d, EPS);
  return a->xnf;
}

static void olmo_backward(const Model *base, void *acts, float *dxnf, float *dx) {
  const Olmo *m = (const Olmo *)base;
  Acts *a = (Acts *)acts;
  const OlmoConfig *c = &m->c;
  const int B = a->B, T = a->T, M = B * T, d = c->d, Hq = c->heads, Hkv = c->kv_heads, D = c->head_dim, I = c->inter;
  const long qn = (long)M * Hq * D, kvn = (long)M * Hkv * D;
  float *dh = a->dh; // dL/d(residual stream), walked from the top down
  memset(dh, 0, sizeof(float) * M * d);
  layernorm_backward(dh, dxnf, a->h_out, a->muf, a->rf, NULL, M, d);
  for (int i = c->layers - 1; i >= 0; i--) {
    const OlmoLayer *W = &m->layer[i];
    LayerActs *L = &a->l[i];
    // h_next = h_mid + down_proj(silu(g)·u)
    memset(a->dact, 0, sizeof(float) * M * I);
    matmul_backward(a->dact, dh, W->down_proj, M, I, d);
    swiglu_backward(a->dg, a->du, a->dact, L->g, L->u, (long)M * I);
    memset(a->dx, 0, sizeof(float) * M * d);
    matmul_backward(a->dx, a->dg, W->gate_proj, M, d, I);
    matmul_backward(a->dx, a->du, W->up_proj, M, d, I);
    layernorm_backward(dh, a->dx, L->h_mid, L->mu2, L->r2, NULL, M, d);
    // h_mid = h_in + o_proj(att)
    memset(a->datt, 0, sizeof(float) * M * Hq * D);
    matmul_backward(a->datt, dh, W->o_proj, M, Hq * D, d);
    attention_backward(a->dq, a->dk, a->dv, a->datt, L->att, L->lse, L->q, L->k, L->v, B, T, Hq, Hkv, D);
    rope_backward(a->dq, m->cos_t, m->sin_t, B, T, Hq, D);
    rope_backward(a->dk, m->cos_t, m->sin_t, B, T, Hkv, D);
    if (c->clip_qkv > 0) {
      clamp_backward(a->dq, L->pass_q, qn);
      clamp_backward(a->dk, L->pass_k, kvn);
      clamp_backward(a->dv, L->pass_v, kvn);
    }
    memset(a->dx, 0, sizeof(float) * M * d);
    matmul_backward(a->dx, a->dq, W->q_proj, M, d, Hq * D);
    matmul_backward(a->dx, a->dk, W->k_proj, M, d, Hkv * D);
    matmul_backward(a->dx, a->dv, W->v_proj, M, d, Hkv * D);
    layernorm_backward(dh, a->dx, L->h_in, L->mu1, L->r1, NULL, M, d);
  }
  memcpy(dx, dh, sizeof(float) * M * d);
}

// ---- KV-cached decode (one sequence)

typedef struct {
  int cap, len;
  float *k, *v; // [layers, cap, Hkv·D]
  unsigned char *pass; // clamp's scratch mask (unused: no backward in decoding)
} KVCache;

static void olmo_state_free(void *p) {
  KVCache *kc = (KVCache *)p;
  if (!kc) return;
  free(kc->k), free(kc->v), free(kc->pass), free(kc);
}

static void *olmo_state_new(const Model *base, int cap) {
  const OlmoConfig *c = &((const Olmo *)base)->c;
  KVCache *kc = (KVCache *)calloc(1, sizeof(KVCache));
  if (!kc) return NULL;
  const long kvd = (long)c->kv_heads * c->head_dim;
  kc->cap = cap;
  kc->k = zalloc((long)c->layers * cap * kvd);
  kc->v = zalloc((long)c->layers * cap * kvd);
  kc->pass = (unsigned char *)malloc((long)cap * c->heads * c->head_dim);
  if (!kc->k || !kc->v || !kc->pass) return olmo_state_free(kc), NULL;
  return kc;
}

static int olmo_decode(const Model *base, void *state, const float *x, int n, float *hidden_last) {
  const Olmo *m = (const Olmo *)base;
  KVCache *kc = (KVCache *)state;
  const OlmoConfig *c = &m->c;
  const int d = c->d, Hq = c->heads, Hkv = c->kv_heads, D = c->head_dim, I = c->inter, p0 = kc->len;
  const long kvd = (long)Hkv * D, qd = (long)Hq * D;
  if (n <= 0 || p0 + n > kc->cap) return 0;
  float *h = zalloc((long)n * d), *xn = zalloc((long)n * d), *mu = zalloc(n), *r = zalloc(n), *q = zalloc(n * qd), *att = zalloc(n * qd);
  float *g = zalloc((long)n * I), *u = zalloc((long)n * I), *tmp = zalloc((long)n * d);
  int ok = h && xn && mu && r && q && att && g && u && tmp;
  if (ok) {
    memcpy(h, x, sizeof(float) * n * d);
    for (int i = 0; i < c->layers; i++) {
      const OlmoLayer *W = &m->layer[i];
      float *K = kc->k + (long)i * kc->cap * kvd, *V = kc->v + (long)i * kc->cap * kvd;
      layernorm(xn, mu, r, h, NULL, NULL, n, d, EPS);
      matmul(q, xn, W->q_proj, NULL, n, d, Hq * D);
      matmul(K + p0 * kvd, xn, W->k_proj, NULL, n, d, Hkv * D);
      matmul(V + p0 * kvd, xn, W->v_proj, NULL, n, d, Hkv * D);
      if (c->clip_qkv > 0) {
        clamp(q, kc->pass, n * qd, c->clip_qkv);
        clamp(K + p0 * kvd, kc->pass, n * kvd, c->clip_qkv);
        clamp(V + p0 * kvd, kc->pass, n * kvd, c->clip_qkv);
      }
      rope(q, m->cos_t, m->sin_t, 1, n, Hq, D, p0);
      rope(K + p0 * kvd, m->cos_t, m->sin_t, 1, n, Hkv, D, p0);
      attention_cached(att, q, K, V, n, p0, Hq, Hkv, D);
      matmul(tmp, att, W->o_proj, NULL, n, Hq * D, d);
      add_inplace(h, tmp, (long)n * d);
      layernorm(xn, mu, r, h, NULL, NULL, n, d, EPS);
      matmul(g, xn, W->gate_proj, NULL, n, d, I);
      matmul(u, xn, W->up_proj, NULL, n, d, I);
      swiglu(g, g, u, (long)n * I);
      matmul(tmp, g, W->down_proj, NULL, n, I, d);
      add_inplace(h, tmp, (long)n * d);
    }
    kc->len = p0 + n;
    layernorm(hidden_last, mu, r, h + (long)(n - 1) * d, NULL, NULL, 1, d, EPS);
  }
  free(h), free(xn), free(mu), free(r), free(q), free(att), free(g), free(u), free(tmp);
  return ok;
}

static const ModelOps OLMO_OPS = {olmo_prepare, olmo_acts_new, olmo_acts_free, olmo_forward, olmo_backward, olmo_state_new, olmo_state_free, olmo_decode, olmo_destroy};

Model *olmo_create(const ModelConfig *cfg, char *err, int errlen) {
  OlmoConfig c = {0};
  int ok = config_int(cfg, "hidden_size", 1, 1 << 16, &c.d, err, errlen) && config_int(cfg, "vocab_size", 1, 1 << 22, &c.vocab, err, errlen) &&
           config_int(cfg, "num_hidden_layers", 1, 1024, &c.layers, err, errlen) && config_int(cfg, "num_attention_heads", 1, 1024, &c.heads, err, errlen) &&
           config_int(cfg, "num_key_value_heads", 1, c.heads, &c.kv_heads, err, errlen) && config_int(cfg, "head_dim", 2, 4096, &c.head_dim, err, errlen) &&
           config_int(cfg, "intermediate_size", 1, 1 << 20, &c.inter, err, errlen) && config_int(cfg, "max_position_embeddings", 1, 1 << 20, &c.max_pos, err, errlen) &&
           config_float(cfg, "clip_qkv", &c.clip_qkv, err, errlen);
  if (!ok) return NULL;
  c.tied = config_bool(cfg, "tied", 0);
  if (c.clip_qkv < 0) return snprintf(err, errlen, "clip_qkv must be ≥ 0 (0: no clamp), got %g", c.clip_qkv), NULL;
  if (c.heads % c.kv_heads) return snprintf(err, errlen, "num_attention_heads must be a multiple of num_key_value_heads"), NULL;
  if (c.head_dim % 2) return snprintf(err, errlen, "head_dim must be even (RoPE pairs)"), NULL;

  Olmo *m = (Olmo *)calloc(1, sizeof(Olmo));
  if (!m) return snprintf(err, errlen, "out of memory allocating the model"), NULL;
  m->c = c;
  Model *b = &m->base;
  b->ops = &OLMO_OPS;
  b->type = "olmo";
  const long d = c.d, qd = (long)c.heads * c.head_dim, kvd = (long)c.kv_heads * c.head_dim, I = c.inter, V = c.vocab, half = c.head_dim / 2;
  char p[96];
#define SLOT(ptr, name, n) (((ptr) = zalloc(n)) && model_slot(b, (name), (ptr), (n)))
#define LMAT(w, name, n) (snprintf(p, sizeof p, "model.layers.%d.%s", i, name), model_mat(b, p, &(w), (n)))
  ok = model_mat(b, "model.embed_tokens.weight", &m->embed_tokens, V * d) && SLOT(m->inv_freq, "rope.inv_freq", half) &&
       (m->cos_t = zalloc((long)c.max_pos * half)) && (m->sin_t = zalloc((long)c.max_pos * half)) && (m->layer = (OlmoLayer *)calloc(c.layers, sizeof(OlmoLayer)));
  if (ok && !c.tied) ok = model_mat(b, "lm_head.weight", &m->lm_head, V * d);
  for (int i = 0; ok && i < c.layers; i++) {
    OlmoLayer *L = &m->layer[i];
    ok = LMAT(L->q_proj, "self_attn.q_proj.weight", qd * d) && LMAT(L->k_proj, "self_attn.k_proj.weight", kvd * d) &&
         LMAT(L->v_proj, "self_attn.v_proj.weight", kvd * d) && LMAT(L->o_proj, "self_attn.o_proj.weight", d * qd) &&
         LMAT(L->gate_proj, "mlp.gate_proj.weight", I * d) && LMAT(L->up_proj, "mlp.up_proj.weight", I * d) && LMAT(L->down_proj, "mlp.down_proj.weight", d * I);
  }
#undef SLOT
#undef LMAT
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
