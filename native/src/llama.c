// Llama forward / backward-to-inputs / KV-cached decode, after HF modeling_llama:
//   h = x
//   per layer:  h += o_proj(attn(rope(q_proj(rms(h))), rope(k_proj(rms(h))), v_proj(rms(h))))
//               h += down_proj(silu(gate_proj(rms(h))) * up_proj(rms(h)))
//   out = norm(h)          (logits = out · lm_head^T, taken by the caller on the rows it needs)
#include "llama.h"
#include "kernels.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>

static float *zalloc(long n) { return (float *)calloc(n > 0 ? n : 1, sizeof(float)); }

Llama *llama_new(const LlamaConfig *c) {
  Llama *m = (Llama *)calloc(1, sizeof(Llama));
  if (!m) return NULL;
  m->c = *c;
  const long d = c->d, qd = (long)c->heads * c->head_dim, kvd = (long)c->kv_heads * c->head_dim, I = c->inter;
  m->embed_tokens = zalloc((long)c->vocab * d);
  m->norm = zalloc(d);
  m->lm_head = c->tied ? m->embed_tokens : zalloc((long)c->vocab * d);
  m->inv_freq = zalloc(c->head_dim / 2);
  m->cos_t = zalloc((long)c->max_pos * c->head_dim / 2);
  m->sin_t = zalloc((long)c->max_pos * c->head_dim / 2);
  m->layer = (LlamaLayer *)calloc(c->layers, sizeof(LlamaLayer));
  int ok = m->embed_tokens && m->norm && m->lm_head && m->inv_freq && m->cos_t && m->sin_t && m->layer;
  for (int i = 0; ok && i < c->layers; i++) {
    LlamaLayer *L = &m->layer[i];
    L->input_layernorm = zalloc(d);
    L->q_proj = zalloc(qd * d);
    L->k_proj = zalloc(kvd * d);
    L->v_proj = zalloc(kvd * d);
    if (c->attention_bias) {
      L->q_bias = zalloc(qd);
      L->k_bias = zalloc(kvd);
      L->v_bias = zalloc(kvd);
      ok = ok && L->q_bias && L->k_bias && L->v_bias;
    }
    L->o_proj = zalloc(d * qd);
    L->post_attention_layernorm = zalloc(d);
    L->gate_proj = zalloc(I * d);
    L->up_proj = zalloc(I * d);
    L->down_proj = zalloc(d * I);
    ok = ok && L->input_layernorm && L->q_proj && L->k_proj && L->v_proj && L->o_proj && L->post_attention_layernorm && L->gate_proj && L->up_proj && L->down_proj;
  }
  if (!ok) {
    llama_free(m);
    return NULL;
  }
  return m;
}

void llama_free(Llama *m) {
  if (!m) return;
  if (m->layer)
    for (int i = 0; i < m->c.layers; i++) {
      LlamaLayer *L = &m->layer[i];
      float *ps[] = {L->input_layernorm, L->q_proj, L->k_proj, L->v_proj, L->q_bias, L->k_bias, L->v_bias, L->o_proj, L->post_attention_layernorm, L->gate_proj, L->up_proj, L->down_proj};
      for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
    }
  free(m->layer);
  if (m->lm_head != m->embed_tokens) free(m->lm_head);
  free(m->embed_tokens);
  free(m->norm);
  free(m->inv_freq);
  free(m->cos_t);
  free(m->sin_t);
  free(m);
}

void llama_tables(Llama *m) { rope_tables(m->cos_t, m->sin_t, m->inv_freq, m->c.max_pos, m->c.head_dim / 2); }

// ---- activation buffers, grown on demand

Acts *acts_new(void) { return (Acts *)calloc(1, sizeof(Acts)); }

static void acts_release(Acts *a, int layers) {
  if (a->l)
    for (int i = 0; i < layers; i++) {
      LayerActs *L = &a->l[i];
      float *ps[] = {L->h_in, L->r1, L->xn1, L->q, L->k, L->v, L->att, L->lse, L->h_mid, L->r2, L->xn2, L->g, L->u, L->act};
      for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
    }
  free(a->l);
  float *ps[] = {a->h_out, a->rf, a->xnf, a->dh, a->dx, a->dq, a->dk, a->dv, a->datt, a->dg, a->du, a->dact};
  for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
  memset(a, 0, sizeof *a);
}

void acts_free(Acts *a) {
  if (!a) return;
  acts_release(a, a->layers);
  free(a);
}

static int acts_reserve(const Llama *m, Acts *a, int B, int T) {
  const long BT = (long)B * T;
  a->B = B;
  a->T = T;
  if (BT <= a->cap && a->l) return 1;
  const LlamaConfig *c = &m->c;
  acts_release(a, a->layers);
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
    acts_release(a, c->layers);
    return 0;
  }
  a->cap = BT;
  return 1;
}

static void add(float *y, const float *x, long n) {
#pragma omp parallel for schedule(static) if (n > (1L << 16))
  for (long i = 0; i < n; i++) y[i] += x[i];
}

int llama_forward(const Llama *m, Acts *a, const float *x, int B, int T) {
  if (!acts_reserve(m, a, B, T)) return 0;
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
    add(L->h_mid, L->h_in, (long)M * d);
    rmsnorm(L->xn2, L->r2, L->h_mid, W->post_attention_layernorm, M, d, c->eps);
    matmul(L->g, L->xn2, W->gate_proj, NULL, M, d, I);
    matmul(L->u, L->xn2, W->up_proj, NULL, M, d, I);
    swiglu(L->act, L->g, L->u, (long)M * I);
    matmul(h_next, L->act, W->down_proj, NULL, M, I, d);
    add(h_next, L->h_mid, (long)M * d);
  }
  rmsnorm(a->xnf, a->rf, a->h_out, m->norm, M, d, c->eps);
  return 1;
}

void llama_backward(const Llama *m, Acts *a, float *dxnf, float *dx) {
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

KVCache *kv_new(const Llama *m, int cap) {
  const LlamaConfig *c = &m->c;
  KVCache *kc = (KVCache *)calloc(1, sizeof(KVCache));
  if (!kc) return NULL;
  const long kvd = (long)c->kv_heads * c->head_dim;
  kc->cap = cap;
  kc->k = zalloc((long)c->layers * cap * kvd);
  kc->v = zalloc((long)c->layers * cap * kvd);
  if (!kc->k || !kc->v) {
    kv_free(kc);
    return NULL;
  }
  return kc;
}

void kv_free(KVCache *kc) {
  if (!kc) return;
  free(kc->k);
  free(kc->v);
  free(kc);
}

int llama_decode(const Llama *m, KVCache *kc, const float *x, int n, float *logits) {
  const LlamaConfig *c = &m->c;
  const int d = c->d, Hq = c->heads, Hkv = c->kv_heads, D = c->head_dim, I = c->inter, rep = Hq / Hkv;
  const long kvd = (long)Hkv * D, qd = (long)Hq * D;
  const int p0 = kc->len;
  if (n <= 0 || p0 + n > kc->cap) return 0;
  float *h = zalloc((long)n * d), *xn = zalloc((long)n * d), *r = zalloc(n), *q = zalloc(n * qd), *att = zalloc(n * qd);
  float *g = zalloc((long)n * I), *u = zalloc((long)n * I), *tmp = zalloc((long)n * d);
  int ok = h && xn && r && q && att && g && u && tmp;
  if (ok) {
    memcpy(h, x, sizeof(float) * n * d);
    const float scale = 1.f / sqrtf((float)D);
    for (int i = 0; i < c->layers; i++) {
      const LlamaLayer *W = &m->layer[i];
      float *K = kc->k + (long)i * kc->cap * kvd, *V = kc->v + (long)i * kc->cap * kvd;
      rmsnorm(xn, r, h, W->input_layernorm, n, d, c->eps);
      matmul(q, xn, W->q_proj, W->q_bias, n, d, Hq * D);
      matmul(K + p0 * kvd, xn, W->k_proj, W->k_bias, n, d, Hkv * D);
      matmul(V + p0 * kvd, xn, W->v_proj, W->v_bias, n, d, Hkv * D);
      rope(q, m->cos_t, m->sin_t, 1, n, Hq, D, p0);
      rope(K + p0 * kvd, m->cos_t, m->sin_t, 1, n, Hkv, D, p0);
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if ((long)n * Hq * (p0 + n) * D > (1L << 16))
      for (int t = 0; t < n; t++)
        for (int hq = 0; hq < Hq; hq++) {
          const int pos = p0 + t, gk = hq / rep;
          const float *qi = q + t * qd + hq * D;
          float *oi = att + t * qd + hq * D;
          float mx = -INFINITY, sum = 0.f;
          float *p = (float *)malloc(sizeof(float) * (pos + 1));
          for (int j = 0; j <= pos; j++) {
            float s = 0.f;
            const float *kj = K + j * kvd + gk * D;
            for (int e = 0; e < D; e++) s += qi[e] * kj[e];
            p[j] = s * scale;
            if (p[j] > mx) mx = p[j];
          }
          for (int j = 0; j <= pos; j++) sum += (p[j] = expf(p[j] - mx));
          const float inv = 1.f / sum;
          for (int e = 0; e < D; e++) oi[e] = 0.f;
          for (int j = 0; j <= pos; j++) {
            const float pj = p[j] * inv;
            const float *vj = V + j * kvd + gk * D;
            for (int e = 0; e < D; e++) oi[e] += pj * vj[e];
          }
          free(p);
        }
      matmul(tmp, att, W->o_proj, NULL, n, Hq * D, d);
      add(h, tmp, (long)n * d);
      rmsnorm(xn, r, h, W->post_attention_layernorm, n, d, c->eps);
      matmul(g, xn, W->gate_proj, NULL, n, d, I);
      matmul(u, xn, W->up_proj, NULL, n, d, I);
      swiglu(g, g, u, (long)n * I);
      matmul(tmp, g, W->down_proj, NULL, n, I, d);
      add(h, tmp, (long)n * d);
    }
    kc->len = p0 + n;
    rmsnorm(xn, r, h + (long)(n - 1) * d, m->norm, 1, d, c->eps);
    matmul(logits, xn, m->lm_head, NULL, 1, d, c->vocab);
  }
  free(h), free(xn), free(r), free(q), free(att), free(g), free(u), free(tmp);
  return ok;
}
