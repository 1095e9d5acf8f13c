// OPT forward / backward-to-inputs / KV-cached decode, after HF modeling_opt (and opt.ts):
//   e = x                                          [B, T, P]   (P = word_embed_proj_dim: [mem] vectors live here)
//   h = project_in(e) + embed_positions[t + 2]     (project_in only when P != hidden; positions after it)
//   per layer, pre-LN (do_layer_norm_before, opt-125m and >= 1.3b):
//               h += out_proj(attn(LN1(h)));  h += fc2(relu(fc1(LN2(h))))
//   per layer, post-LN (opt-350m):
//               h = LN1(h + out_proj(attn(h)));  h = LN2(h + fc2(relu(fc1(h))))
//   out = project_out(final_layer_norm(h))         (final_layer_norm: pre-LN only; project_out when P != hidden)
//   (logits = out · embed_tokens^T when tied, taken by the caller)
// LN1 = self_attn_layer_norm, LN2 = the layer's final_layer_norm, all LayerNorms eps 1e-5 with weight and
// bias; attention: q/k/v/out_proj with biases, q scaled by head_dim^-0.5, no rotary, causal softmax.
#include "opt.h"
#include "kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define zalloc model_zalloc
static const float EPS = 1e-5f;  // OPTConfig has no layer_norm_eps: nn.LayerNorm's default
enum { POSITION_OFFSET = 2 };    // OPTLearnedPositionalEmbedding: position t reads row t + 2

static void opt_destroy(Model *base) {
  Opt *m = (Opt *)base;
  if (m->layer)
    for (int i = 0; i < m->c.layers; i++) {
      OptLayer *L = &m->layer[i];
      float *ps[] = {L->self_attn_layer_norm_w, L->self_attn_layer_norm_b, L->q_proj_b, L->k_proj_b, L->v_proj_b,
                     L->out_proj_b, L->final_layer_norm_w, L->final_layer_norm_b, L->fc1_b, L->fc2_b};
      for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
      Mat ws[] = {L->q_proj_w, L->k_proj_w, L->v_proj_w, L->out_proj_w, L->fc1_w, L->fc2_w};
      for (unsigned j = 0; j < sizeof ws / sizeof *ws; j++) free(ws[j].p);
    }
  free(m->layer);
  mat_free(m->lm_head, m->embed_tokens);
  free(m->embed_tokens.p), free(m->embed_positions), free(m->project_in.p), free(m->project_out.p);
  free(m->final_layer_norm_w), free(m->final_layer_norm_b);
  free(m);
}

static void opt_prepare(Model *base) {
  Opt *m = (Opt *)base;
  if (m->c.tied) m->lm_head = m->embed_tokens;
  base->embed_tokens = m->embed_tokens;
  base->lm_head = m->lm_head;
}

// ---- activations of one forward over x[B,T,P], per layer, kept for the backward

typedef struct {
  float *h_in;                   // [M,d] layer input
  float *mu1, *r1, *xn1;         // pre-LN: LN1(h_in); post-LN: LN1(s1) (= the MLP's input)
  float *q, *k, *v, *att, *lse;  // attention
  float *s1;                     // h_in + attention (pre-LN: the MLP block's residual input)
  float *mu2, *r2, *xn2;         // pre-LN: LN2(s1); post-LN: stats of LN2(s2)
  float *f, *act;                // [M,F] fc1 output, relu(f)
  float *s2;                     // post-LN: LN2's input (pre-LN: unused, the sum is the next h_in)
} LayerActs;

typedef struct {
  int B, T, cap, layers;
  LayerActs *l;
  float *h_out, *muf, *rf, *xnf, *out; // [M,d] last layer output, final LN, [M,P] project_out
  float *dh, *ds, *dhf, *dx1, *dq, *dk, *dv, *datt, *df;
} Acts;

static void *opt_acts_new(const Model *m) {
  (void)m;
  return calloc(1, sizeof(Acts));
}

static void acts_release(Acts *a) {
  if (a->l)
    for (int i = 0; i < a->layers; i++) {
      LayerActs *L = &a->l[i];
      float *ps[] = {L->h_in, L->mu1, L->r1, L->xn1, L->q, L->k, L->v, L->att, L->lse, L->s1, L->mu2, L->r2, L->xn2, L->f, L->act, L->s2};
      for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
    }
  free(a->l);
  float *ps[] = {a->h_out, a->muf, a->rf, a->xnf, a->out, a->dh, a->ds, a->dhf, a->dx1, a->dq, a->dk, a->dv, a->datt, a->df};
  for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
  memset(a, 0, sizeof *a);
}

static void opt_acts_free(void *p) {
  if (!p) return;
  acts_release((Acts *)p);
  free(p);
}

static int acts_reserve(const Opt *m, Acts *a, int B, int T) {
  const long BT = (long)B * T;
  if (!(BT <= a->cap && a->l)) {
    const OptConfig *c = &m->c;
    acts_release(a);
    const long d = c->d, F = c->ffn;
    a->layers = c->layers;
    a->l = (LayerActs *)calloc(c->layers, sizeof(LayerActs));
    if (!a->l) return 0;
    int ok = 1;
    for (int i = 0; i < c->layers; i++) {
      LayerActs *L = &a->l[i];
      L->h_in = zalloc(BT * d), L->mu1 = zalloc(BT), L->r1 = zalloc(BT), L->xn1 = zalloc(BT * d);
      L->q = zalloc(BT * d), L->k = zalloc(BT * d), L->v = zalloc(BT * d), L->att = zalloc(BT * d), L->lse = zalloc(BT * c->heads);
      L->s1 = zalloc(BT * d), L->mu2 = zalloc(BT), L->r2 = zalloc(BT), L->xn2 = c->pre_ln ? zalloc(BT * d) : NULL;
      L->f = zalloc(BT * F), L->act = zalloc(BT * F), L->s2 = c->pre_ln ? NULL : zalloc(BT * d);
      ok = ok && L->h_in && L->mu1 && L->r1 && L->xn1 && L->q && L->k && L->v && L->att && L->lse && L->s1 && L->mu2 && L->r2 && (L->xn2 || !c->pre_ln) && L->f && L->act &&
           (L->s2 || c->pre_ln);
    }
    a->h_out = zalloc(BT * d), a->muf = zalloc(BT), a->rf = zalloc(BT), a->xnf = zalloc(BT * d), a->out = zalloc(BT * c->P);
    a->dh = zalloc(BT * d), a->ds = zalloc(BT * d), a->dhf = zalloc(BT * d), a->dx1 = zalloc(BT * d);
    a->dq = zalloc(BT * d), a->dk = zalloc(BT * d), a->dv = zalloc(BT * d), a->datt = zalloc(BT * d), a->df = zalloc(BT * F);
    ok = ok && a->h_out && a->muf && a->rf && a->xnf && a->out && a->dh && a->ds && a->dhf && a->dx1 && a->dq && a->dk && a->dv && a->datt && a->df;
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

// s = h + out_proj(attn(q_proj(y), k_proj(y), v_proj(y))) for the attention input y
static void attention_block(const OptLayer *W, LayerActs *L, const float *y, const float *h, int B, int T, int d, int H) {
  const int M = B * T;
  matmul(L->q, y, W->q_proj_w, W->q_proj_b, M, d, d);
  matmul(L->k, y, W->k_proj_w, W->k_proj_b, M, d, d);
  matmul(L->v, y, W->v_proj_w, W->v_proj_b, M, d, d);
  attention(L->att, L->lse, L->q, L->k, L->v, B, T, H, H, d / H);
  matmul(L->s1, L->att, W->out_proj_w, W->out_proj_b, M, d, d);
  add_inplace(L->s1, h, (long)M * d);
}

static const float *opt_forward(const Model *base, void *acts, const float *x, int B, int T) {
  const Opt *m = (const Opt *)base;
  Acts *a = (Acts *)acts;
  if (!acts_reserve(m, a, B, T)) return NULL;
  const OptConfig *c = &m->c;
  const int M = B * T, d = c->d, H = c->heads, F = c->ffn;
  float *h0 = a->l[0].h_in;
  if (c->project) matmul(h0, x, m->project_in, NULL, M, c->P, d);
  else memcpy(h0, x, sizeof(float) * M * d);
  add_positions(h0, m->embed_positions, B, T, d, POSITION_OFFSET);
  for (int i = 0; i < c->layers; i++) {
    const OptLayer *W = &m->layer[i];
    LayerActs *L = &a->l[i];
    float *h_next = i + 1 < c->layers ? a->l[i + 1].h_in : a->h_out;
    if (c->pre_ln) {
      layernorm(L->xn1, L->mu1, L->r1, L->h_in, W->self_attn_layer_norm_w, W->self_attn_layer_norm_b, M, d, EPS);
      attention_block(W, L, L->xn1, L->h_in, B, T, d, H); // s1 = h + attn(LN1(h))
      layernorm(L->xn2, L->mu2, L->r2, L->s1, W->final_layer_norm_w, W->final_layer_norm_b, M, d, EPS);
      matmul(L->f, L->xn2, W->fc1_w, W->fc1_b, M, d, F);
      relu(L->act, L->f, (long)M * F);
      matmul(h_next, L->act, W->fc2_w, W->fc2_b, M, F, d);
      add_inplace(h_next, L->s1, (long)M * d); // s1 + mlp(LN2(s1))
    } else {
      attention_block(W, L, L->h_in, L->h_in, B, T, d, H); // s1 = h + attn(h)
      layernorm(L->xn1, L->mu1, L->r1, L->s1, W->self_attn_layer_norm_w, W->self_attn_layer_norm_b, M, d, EPS);
      matmul(L->f, L->xn1, W->fc1_w, W->fc1_b, M, d, F);
      relu(L->act, L->f, (long)M * F);
      matmul(L->s2, L->act, W->fc2_w, W->fc2_b, M, F, d);
      add_inplace(L->s2, L->xn1, (long)M * d); // s2 = LN1(s1) + mlp(LN1(s1))
      layernorm(h_next, L->mu2, L->r2, L->s2, W->final_layer_norm_w, W->final_layer_norm_b, M, d, EPS);
    }
  }
  const float *hf = a->h_out;
  if (c->final_norm) {
    layernorm(a->xnf, a->muf, a->rf, a->h_out, m->final_layer_norm_w, m->final_layer_norm_b, M, d, EPS);
    hf = a->xnf;
  }
  if (!c->project) return hf;
  matmul(a->out, hf, m->project_out, NULL, M, d, c->P);
  return a->out;
}

// dL/dy (into dy, accumulated) of the attention block's input y, given ds = dL/ds1 (s1 = h + attention(y))
static void attention_block_backward(const OptLayer *W, LayerActs *L, Acts *a, float *dy, const float *ds, int B, int T, int d, int H) {
  const int M = B * T;
  memset(a->datt, 0, sizeof(float) * M * d);
  matmul_backward(a->datt, ds, W->out_proj_w, M, d, d);
  attention_backward(a->dq, a->dk, a->dv, a->datt, L->att, L->lse, L->q, L->k, L->v, B, T, H, H, d / H);
  matmul_backward(dy, a->dq, W->q_proj_w, M, d, d);
  matmul_backward(dy, a->dk, W->k_proj_w, M, d, d);
  matmul_backward(dy, a->dv, W->v_proj_w, M, d, d);
}

// dL/dy (into dy, accumulated) of the MLP's input y, given dz = dL/d(fc2 output)
static void mlp_backward(const OptLayer *W, LayerActs *L, Acts *a, float *dy, const float *dz, int M, int d, int F) {
  memset(a->df, 0, sizeof(float) * M * F);
  matmul_backward(a->df, dz, W->fc2_w, M, F, d);
  relu_backward(a->df, a->df, L->f, (long)M * F);
  matmul_backward(dy, a->df, W->fc1_w, M, d, F);
}

static void opt_backward(const Model *base, void *acts, float *dout, float *dx) {
  const Opt *m = (const Opt *)base;
  Acts *a = (Acts *)acts;
  const OptConfig *c = &m->c;
  const int B = a->B, T = a->T, M = B * T, d = c->d, H = c->heads, F = c->ffn;
  const long Md = (long)M * d;
  // out = project_out(final_norm(h_out))
  const float *dhf = dout;
  if (c->project) {
    memset(a->dhf, 0, sizeof(float) * Md);
    matmul_backward(a->dhf, dout, m->project_out, M, d, c->P);
    dhf = a->dhf;
  }
  float *dh = a->dh; // dL/d(layer output), walked from the top down
  if (c->final_norm) {
    memset(dh, 0, sizeof(float) * Md);
    layernorm_backward(dh, dhf, a->h_out, a->muf, a->rf, m->final_layer_norm_w, M, d);
  } else {
    memcpy(dh, dhf, sizeof(float) * Md);
  }
  for (int i = c->layers - 1; i >= 0; i--) {
    const OptLayer *W = &m->layer[i];
    LayerActs *L = &a->l[i];
    if (c->pre_ln) {
      // h_next = s1 + mlp(LN2(s1)): dh becomes dL/ds1
      memset(a->dx1, 0, sizeof(float) * Md);
      mlp_backward(W, L, a, a->dx1, dh, M, d, F);
      layernorm_backward(dh, a->dx1, L->s1, L->mu2, L->r2, W->final_layer_norm_w, M, d);
      // s1 = h_in + attn(LN1(h_in)): dh becomes dL/dh_in
      memset(a->dx1, 0, sizeof(float) * Md);
      attention_block_backward(W, L, a, a->dx1, dh, B, T, d, H);
      layernorm_backward(dh, a->dx1, L->h_in, L->mu1, L->r1, W->self_attn_layer_norm_w, M, d);
    } else {
      // h_next = LN2(s2): ds = dL/ds2
      float *ds = a->ds;
      memset(ds, 0, sizeof(float) * Md);
      layernorm_backward(ds, dh, L->s2, L->mu2, L->r2, W->final_layer_norm_w, M, d);
      // s2 = xn1 + mlp(xn1): ds accumulates dL/dxn1 (mlp_backward reads ds before its last, accumulating
      // matmul, so it uses a copy)
      memcpy(a->dx1, ds, sizeof(float) * Md);
      mlp_backward(W, L, a, ds, a->dx1, M, d, F);
      // xn1 = LN1(s1): dh = dL/ds1
      memset(dh, 0, sizeof(float) * Md);
      layernorm_backward(dh, ds, L->s1, L->mu1, L->r1, W->self_attn_layer_norm_w, M, d);
      // s1 = h_in + attn(h_in): dh accumulates dL/dh_in (its own value is the direct path); a copy of
      // dL/ds1 drives the attention backward
      memcpy(a->dx1, dh, sizeof(float) * Md);
      attention_block_backward(W, L, a, dh, a->dx1, B, T, d, H);
    }
  }
  // h0 = project_in(x) + positions
  if (c->project) {
    memset(dx, 0, sizeof(float) * M * c->P);
    matmul_backward(dx, dh, m->project_in, M, c->P, d);
  } else {
    memcpy(dx, dh, sizeof(float) * Md);
  }
}

// ---- KV-cached decode (one sequence)

typedef struct {
  int cap, len;
  float *k, *v; // [layers, cap, d]
} KVCache;

static void opt_state_free(void *p) {
  KVCache *kc = (KVCache *)p;
  if (!kc) return;
  free(kc->k), free(kc->v), free(kc);
}

static void *opt_state_new(const Model *base, int cap) {
  const OptConfig *c = &((const Opt *)base)->c;
  KVCache *kc = (KVCache *)calloc(1, sizeof(KVCache));
  if (!kc) return NULL;
  kc->cap = cap;
  kc->k = zalloc((long)c->layers * cap * c->d);
  kc->v = zalloc((long)c->layers * cap * c->d);
  if (!kc->k || !kc->v) return opt_state_free(kc), NULL;
  return kc;
}

static int opt_decode(const Model *base, void *state, const float *x, int n, float *hidden_last) {
  const Opt *m = (const Opt *)base;
  KVCache *kc = (KVCache *)state;
  const OptConfig *c = &m->c;
  const int d = c->d, H = c->heads, F = c->ffn, p0 = kc->len;
  if (n <= 0 || p0 + n > kc->cap || p0 + n > c->max_pos) return 0;
  float *h = zalloc((long)n * d), *xn = zalloc((long)n * d), *mu = zalloc(n), *r = zalloc(n), *q = zalloc((long)n * d), *att = zalloc((long)n * d);
  float *s = zalloc((long)n * d), *f = zalloc((long)n * F);
  int ok = h && xn && mu && r && q && att && s && f;
  if (ok) {
    if (c->project) matmul(h, x, m->project_in, NULL, n, c->P, d);
    else memcpy(h, x, sizeof(float) * n * d);
    add_positions(h, m->embed_positions, 1, n, d, POSITION_OFFSET + p0);
    for (int i = 0; i < c->layers; i++) {
      const OptLayer *W = &m->layer[i];
      float *Kc = kc->k + (long)i * kc->cap * d, *Vc = kc->v + (long)i * kc->cap * d;
      const float *y = h;
      if (c->pre_ln) {
        layernorm(xn, mu, r, h, W->self_attn_layer_norm_w, W->self_attn_layer_norm_b, n, d, EPS);
        y = xn;
      }
      matmul(q, y, W->q_proj_w, W->q_proj_b, n, d, d);
      matmul(Kc + (long)p0 * d, y, W->k_proj_w, W->k_proj_b, n, d, d);
      matmul(Vc + (long)p0 * d, y, W->v_proj_w, W->v_proj_b, n, d, d);
      attention_cached(att, q, Kc, Vc, n, p0, H, H, d / H);
      matmul(s, att, W->out_proj_w, W->out_proj_b, n, d, d);
      add_inplace(s, h, (long)n * d); // s1
      if (c->pre_ln) {
        layernorm(xn, mu, r, s, W->final_layer_norm_w, W->final_layer_norm_b, n, d, EPS);
        matmul(f, xn, W->fc1_w, W->fc1_b, n, d, F);
        relu(f, f, (long)n * F);
        matmul(h, f, W->fc2_w, W->fc2_b, n, F, d);
        add_inplace(h, s, (long)n * d);
      } else {
        layernorm(xn, mu, r, s, W->self_attn_layer_norm_w, W->self_attn_layer_norm_b, n, d, EPS);
        matmul(f, xn, W->fc1_w, W->fc1_b, n, d, F);
        relu(f, f, (long)n * F);
        matmul(s, f, W->fc2_w, W->fc2_b, n, F, d);
        add_inplace(s, xn, (long)n * d); // s2
        layernorm(h, mu, r, s, W->final_layer_norm_w, W->final_layer_norm_b, n, d, EPS);
      }
    }
    kc->len = p0 + n;
    const float *last = h + (long)(n - 1) * d;
    if (c->final_norm) {
      layernorm(xn, mu, r, last, m->final_layer_norm_w, m->final_layer_norm_b, 1, d, EPS);
      last = xn;
    }
    if (c->project) matmul(hidden_last, last, m->project_out, NULL, 1, d, c->P);
    else memcpy(hidden_last, last, sizeof(float) * d);
  }
  free(h), free(xn), free(mu), free(r), free(q), free(att), free(s), free(f);
  return ok;
}

static const ModelOps OPT_OPS = {opt_prepare, opt_acts_new, opt_acts_free, opt_forward, opt_backward, opt_state_new, opt_state_free, opt_decode, opt_destroy};

Model *opt_create(const ModelConfig *cfg, char *err, int errlen) {
  OptConfig c = {0};
  int ok = config_int(cfg, "hidden_size", 1, 1 << 16, &c.d, err, errlen) && config_int(cfg, "word_embed_proj_dim", 1, 1 << 16, &c.P, err, errlen) &&
           config_int(cfg, "vocab_size", 1, 1 << 22, &c.vocab, err, errlen) && config_int(cfg, "num_hidden_layers", 1, 1024, &c.layers, err, errlen) &&
           config_int(cfg, "num_attention_heads", 1, 1024, &c.heads, err, errlen) && config_int(cfg, "ffn_dim", 1, 1 << 20, &c.ffn, err, errlen) &&
           config_int(cfg, "max_position_embeddings", 1, 1 << 20, &c.max_pos, err, errlen);
  if (!ok) return NULL;
  if (c.d % c.heads) return snprintf(err, errlen, "hidden_size %d is not a multiple of num_attention_heads %d", c.d, c.heads), NULL;
  c.pre_ln = config_bool(cfg, "do_layer_norm_before", 1);
  c.final_norm = config_bool(cfg, "final_layer_norm", c.pre_ln);
  c.project = c.P != c.d;
  c.bias = config_bool(cfg, "enable_bias", 1);
  c.norm_affine = config_bool(cfg, "layer_norm_elementwise_affine", 1);
  c.tied = config_bool(cfg, "tied", 1);

  Opt *m = (Opt *)calloc(1, sizeof(Opt));
  if (!m) return snprintf(err, errlen, "out of memory allocating the model"), NULL;
  m->c = c;
  Model *b = &m->base;
  b->ops = &OPT_OPS;
  b->type = "opt";
  const long d = c.d, P = c.P, F = c.ffn, V = c.vocab;
  char p[128];
#define SLOT(ptr, name, n) (((ptr) = zalloc(n)) && model_slot(b, (name), (ptr), (n)))
#define LSLOT(ptr, name, n) (((ptr) = zalloc(n)) && (snprintf(p, sizeof p, "model.decoder.layers.%d.%s", i, name), model_slot(b, p, (ptr), (n))))
#define LMAT(w, name, n) (snprintf(p, sizeof p, "model.decoder.layers.%d.%s", i, name), model_mat(b, p, &(w), (n)))
  ok = model_mat(b, "model.decoder.embed_tokens.weight", &m->embed_tokens, V * P) &&
       SLOT(m->embed_positions, "model.decoder.embed_positions.weight", (c.max_pos + (long)POSITION_OFFSET) * d) &&
       (!c.project || (model_mat(b, "model.decoder.project_in.weight", &m->project_in, d * P) && model_mat(b, "model.decoder.project_out.weight", &m->project_out, P * d))) &&
       (!c.final_norm || !c.norm_affine ||
        (SLOT(m->final_layer_norm_w, "model.decoder.final_layer_norm.weight", d) && SLOT(m->final_layer_norm_b, "model.decoder.final_layer_norm.bias", d))) &&
       (m->layer = (OptLayer *)calloc(c.layers, sizeof(OptLayer)));
  if (ok && !c.tied) ok = model_mat(b, "lm_head.weight", &m->lm_head, V * P);
  for (int i = 0; ok && i < c.layers; i++) {
    OptLayer *L = &m->layer[i];
    ok = LMAT(L->q_proj_w, "self_attn.q_proj.weight", d * d) && LMAT(L->k_proj_w, "self_attn.k_proj.weight", d * d) &&
         LMAT(L->v_proj_w, "self_attn.v_proj.weight", d * d) && LMAT(L->out_proj_w, "self_attn.out_proj.weight", d * d) &&
         LMAT(L->fc1_w, "fc1.weight", F * d) && LMAT(L->fc2_w, "fc2.weight", d * F);
    if (ok && c.bias)
      ok = LSLOT(L->q_proj_b, "self_attn.q_proj.bias", d) && LSLOT(L->k_proj_b, "self_attn.k_proj.bias", d) && LSLOT(L->v_proj_b, "self_attn.v_proj.bias", d) &&
           LSLOT(L->out_proj_b, "self_attn.out_proj.bias", d) && LSLOT(L->fc1_b, "fc1.bias", F) && LSLOT(L->fc2_b, "fc2.bias", d);
    if (ok && c.norm_affine)
      ok = LSLOT(L->self_attn_layer_norm_w, "self_attn_layer_norm.weight", d) && LSLOT(L->self_attn_layer_norm_b, "self_attn_layer_norm.bias", d) &&
           LSLOT(L->final_layer_norm_w, "final_layer_norm.weight", d) && LSLOT(L->final_layer_norm_b, "final_layer_norm.bias", d);
  }
#undef SLOT
#undef LSLOT
#undef LMAT
  if (!ok) {
    model_free(b);
    snprintf(err, errlen, "out of memory allocating the model");
    return NULL;
  }
  b->d_in = b->d_out = c.P;
  b->vocab = c.vocab;
  b->max_pos = c.max_pos;
  b->body_macs = (double)c.layers * (4.0 * d * d + 2.0 * d * F) + (c.project ? 2.0 * d * P : 0);
  return b;
}
