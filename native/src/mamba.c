// Mamba forward / backward-to-inputs / recurrent decode, after HF modeling_mamba's slow_forward (and mamba.ts):
//   h = x                                                    [B, T, d]
//   per layer:  u = rms(h)                                   (RMSNorm, weight norm)
//               xin, z = in_proj(u)                          (channels [0, I) and [I, 2I))
//               xs = silu(conv(xin))                         (depthwise causal conv, kernel K, with bias)
//               dt_low, Bm, Cm = x_proj(xs)                  ([R | N | N] columns)
//               Δ = softplus(dt_proj(dt_low))                ([B, T, I])
//               y = scan(Δ, A = -exp(A_log), Bm, Cm, xs) + D·xs   (kernels.h selective_scan)
//               h += out_proj(y · silu(z))
//   out = rms_f(h)          (logits = out · lm_head^T, taken by the caller)
// The backward walks the same steps in reverse; the scan keeps its state every SCAN_CHUNK steps and the
// backward recomputes the states in between (kernels.h selective_scan).
// Decode keeps, per layer, the last K-1 conv inputs and the scan state [I, N]: constant size per sequence.
#include "mamba.h"
#include "kernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define zalloc model_zalloc

static void mamba_destroy(Model *base) {
  Mamba *m = (Mamba *)base;
  if (m->layer)
    for (int i = 0; i < m->c.layers; i++) {
      MambaLayer *L = &m->layer[i];
      float *ps[] = {L->norm, L->in_proj_b, L->conv_w, L->conv_b, L->dt_proj_b, L->A_log, L->A, L->D, L->out_proj_b};
      for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
      Mat ws[] = {L->in_proj, L->x_proj, L->dt_proj, L->out_proj};
      for (unsigned j = 0; j < sizeof ws / sizeof *ws; j++) free(ws[j].p);
    }
  free(m->layer);
  mat_free(m->lm_head, m->embed_tokens);
  free(m->embed_tokens.p), free(m->norm_f);
  free(m);
}

static void mamba_prepare(Model *base) {
  Mamba *m = (Mamba *)base;
  const long IN = (long)m->c.I * m->c.N;
  for (int i = 0; i < m->c.layers; i++)
    for (long j = 0; j < IN; j++) m->layer[i].A[j] = -expf(m->layer[i].A_log[j]);
  if (m->c.tied) m->lm_head = m->embed_tokens;
  base->embed_tokens = m->embed_tokens;
  base->lm_head = m->lm_head;
}

// ---- activations of one forward over x[B,T,d], per layer, kept for the backward

typedef struct {
  float *h_in, *r1;  // layer input [M,d], its RMSNorm's 1/rms [M]
  float *z;          // gate half of in_proj [M,I]
  float *xc, *xs;    // conv output, silu of it [M,I]
  float *dbc;        // x_proj output [M, R+2N]: dt_low | B | C
  float *dtp, *dt;   // dt_proj output, Δ = softplus of it [M,I]
  float *hs;         // scan states at chunk ends [B, ceil(T/SCAN_CHUNK), I, N] (kernels.h)
  float *y;          // scan output + D·xs [M,I]
} LayerActs;

typedef struct {
  int B, T, cap, layers;
  long hs_cap;   // values each layer's hs holds
  long scan_cap; // values scan_scratch holds
  float *scan_scratch; // selective_scan_backward's per-group partial sums (shared by the layers)
  LayerActs *l;
  float *h_out, *rf, *xnf;                    // [M,d], [M], [M,d]
  float *u, *xz, *xin, *dtl, *g;              // forward scratch
  float *dh, *du, *dg, *dy, *dz, *dxs, *ddt, *ddbc, *ddtl, *dxin, *dxz; // backward scratch
} Acts;

static void *mamba_acts_new(const Model *m) {
  (void)m;
  return calloc(1, sizeof(Acts));
}

static void acts_release(Acts *a) {
  if (a->l)
    for (int i = 0; i < a->layers; i++) {
      LayerActs *L = &a->l[i];
      float *ps[] = {L->h_in, L->r1, L->z, L->xc, L->xs, L->dbc, L->dtp, L->dt, L->hs, L->y};
      for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
    }
  free(a->l);
  free(a->scan_scratch);
  float *ps[] = {a->h_out, a->rf, a->xnf, a->u, a->xz, a->xin, a->dtl, a->g, a->dh, a->du, a->dg, a->dy, a->dz, a->dxs, a->ddt, a->ddbc, a->ddtl, a->dxin, a->dxz};
  for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
  memset(a, 0, sizeof *a);
}

static void mamba_acts_free(void *p) {
  if (!p) return;
  acts_release((Acts *)p);
  free(p);
}

static int acts_reserve(const Mamba *m, Acts *a, int B, int T) {
  const long M = (long)B * T;
  if (!(M <= a->cap && a->l)) {
    const MambaConfig *c = &m->c;
    acts_release(a);
    const long d = c->d, I = c->I, N = c->N, R = c->R, W = R + 2 * N;
    a->layers = c->layers;
    a->l = (LayerActs *)calloc(c->layers, sizeof(LayerActs));
    if (!a->l) return 0;
    int ok = 1;
    for (int i = 0; i < c->layers; i++) {
      LayerActs *L = &a->l[i];
      L->h_in = zalloc(M * d), L->r1 = zalloc(M), L->z = zalloc(M * I), L->xc = zalloc(M * I), L->xs = zalloc(M * I);
      L->dbc = zalloc(M * W), L->dtp = zalloc(M * I), L->dt = zalloc(M * I), L->y = zalloc(M * I);
      ok = ok && L->h_in && L->r1 && L->z && L->xc && L->xs && L->dbc && L->dtp && L->dt && L->y;
    }
    a->h_out = zalloc(M * d), a->rf = zalloc(M), a->xnf = zalloc(M * d);
    a->u = zalloc(M * d), a->xz = zalloc(M * 2 * I), a->xin = zalloc(M * I), a->dtl = zalloc(M * R), a->g = zalloc(M * I);
    a->dh = zalloc(M * d), a->du = zalloc(M * d), a->dg = zalloc(M * I), a->dy = zalloc(M * I), a->dz = zalloc(M * I), a->dxs = zalloc(M * I);
    a->ddt = zalloc(M * I), a->ddbc = zalloc(M * W), a->ddtl = zalloc(M * R), a->dxin = zalloc(M * I), a->dxz = zalloc(M * 2 * I);
    ok = ok && a->h_out && a->rf && a->xnf && a->u && a->xz && a->xin && a->dtl && a->g && a->dh && a->du && a->dg && a->dy && a->dz && a->dxs &&
         a->ddt && a->ddbc && a->ddtl && a->dxin && a->dxz;
    if (!ok) {
      acts_release(a);
      return 0;
    }
    a->cap = M;
  }
  const long need = selective_scan_states(B, T, m->c.I, m->c.N); // depends on B and T, not only on B·T
  if (need > a->hs_cap) {
    for (int i = 0; i < a->layers; i++) {
      free(a->l[i].hs);
      if (!(a->l[i].hs = zalloc(need))) {
        acts_release(a);
        return 0;
      }
    }
    a->hs_cap = need;
  }
  const long scratch = selective_scan_backward_scratch(B, T, m->c.I, m->c.N);
  if (scratch > a->scan_cap) {
    free(a->scan_scratch);
    if (!(a->scan_scratch = zalloc(scratch))) {
      acts_release(a);
      return 0;
    }
    a->scan_cap = scratch;
  }
  a->B = B;
  a->T = T;
  return 1;
}

// columns [c0, c0+n) of X[M, ld] → Y[M, n]
static void take_cols(float *Y, const float *X, int M, int ld, int c0, int n) {
  for (long r = 0; r < M; r++) memcpy(Y + r * n, X + r * ld + c0, sizeof(float) * n);
}
// Y[M, ld] columns [c0, c0+n) = X[M, n]
static void put_cols(float *Y, const float *X, int M, int ld, int c0, int n) {
  for (long r = 0; r < M; r++) memcpy(Y + r * ld + c0, X + r * n, sizeof(float) * n);
}

static const float *mamba_forward(const Model *base, void *acts, const float *x, int B, int T) {
  const Mamba *m = (const Mamba *)base;
  Acts *a = (Acts *)acts;
  if (!acts_reserve(m, a, B, T)) return NULL;
  const MambaConfig *c = &m->c;
  const int M = B * T, d = c->d, I = c->I, N = c->N, R = c->R, W = R + 2 * N;
  memcpy(a->l[0].h_in, x, sizeof(float) * M * d);
  for (int i = 0; i < c->layers; i++) {
    const MambaLayer *P = &m->layer[i];
    LayerActs *L = &a->l[i];
    float *h_next = i + 1 < c->layers ? a->l[i + 1].h_in : a->h_out;
    rmsnorm(a->u, L->r1, L->h_in, P->norm, M, d, c->eps);
    matmul(a->xz, a->u, P->in_proj, P->in_proj_b, M, d, 2 * I);        // [M, 2I]
    take_cols(a->xin, a->xz, M, 2 * I, 0, I);
    take_cols(L->z, a->xz, M, 2 * I, I, I);
    conv1d_causal(L->xc, a->xin, P->conv_w, P->conv_b, B, T, I, c->K); // [M, I]
    silu(L->xs, L->xc, (long)M * I);
    matmul(L->dbc, L->xs, P->x_proj, NULL, M, I, W);                    // [M, R+2N]
    take_cols(a->dtl, L->dbc, M, W, 0, R);
    matmul(L->dtp, a->dtl, P->dt_proj, P->dt_proj_b, M, R, I);          // [M, I]
    softplus(L->dt, L->dtp, (long)M * I);
    selective_scan(L->y, L->hs, L->dt, P->A, L->dbc + R, W, L->dbc + R + N, W, L->xs, P->D, B, T, I, N);
    silu(a->g, L->z, (long)M * I);
    for (long j = 0; j < (long)M * I; j++) a->g[j] *= L->y[j];         // y · silu(z)
    matmul(h_next, a->g, P->out_proj, P->out_proj_b, M, I, d);
    add_inplace(h_next, L->h_in, (long)M * d);
  }
  rmsnorm(a->xnf, a->rf, a->h_out, m->norm_f, M, d, c->eps);
  return a->xnf;
}

static void mamba_backward(const Model *base, void *acts, float *dxnf, float *dx) {
  const Mamba *m = (const Mamba *)base;
  Acts *a = (Acts *)acts;
  const MambaConfig *c = &m->c;
  const int B = a->B, T = a->T, M = B * T, d = c->d, I = c->I, N = c->N, R = c->R, W = R + 2 * N;
  const long MI = (long)M * I;
  float *dh = a->dh; // dL/d(residual stream), walked from the top down
  memset(dh, 0, sizeof(float) * M * d);
  rmsnorm_backward(dh, dxnf, a->h_out, a->rf, m->norm_f, M, d);
  for (int i = c->layers - 1; i >= 0; i--) {
    const MambaLayer *P = &m->layer[i];
    LayerActs *L = &a->l[i];
    // h_next = h_in + out_proj(y · silu(z))
    memset(a->dg, 0, sizeof(float) * MI);
    matmul_backward(a->dg, dh, P->out_proj, M, I, d);
    for (long j = 0; j < MI; j++) {
      const float z = L->z[j], s = 1.f / (1.f + expf(-z));
      a->dy[j] = a->dg[j] * z * s;
      a->dz[j] = a->dg[j] * L->y[j] * s * (1.f + z * (1.f - s));
    }
    // y = scan(Δ, A, B, C, xs) + D·xs; B, C and dt_low are columns of x_proj's output
    memset(a->dxs, 0, sizeof(float) * MI);
    selective_scan_backward(a->ddt, a->dxs, a->ddbc + R, W, a->ddbc + R + N, W, a->dy, L->hs, L->dt, P->A, L->dbc + R, L->dbc + R + N, L->xs, P->D, a->scan_scratch, B, T, I, N);
    softplus_backward(a->ddt, a->ddt, L->dtp, MI);                      // → dL/d(dt_proj output)
    memset(a->ddtl, 0, sizeof(float) * M * R);
    matmul_backward(a->ddtl, a->ddt, P->dt_proj, M, R, I);
    put_cols(a->ddbc, a->ddtl, M, W, 0, R);
    matmul_backward(a->dxs, a->ddbc, P->x_proj, M, I, W);
    // xs = silu(conv(xin)); xin, z = in_proj(u)
    silu_backward(a->dxs, a->dxs, L->xc, MI);
    conv1d_causal_backward(a->dxin, a->dxs, P->conv_w, B, T, I, c->K);
    put_cols(a->dxz, a->dxin, M, 2 * I, 0, I);
    put_cols(a->dxz, a->dz, M, 2 * I, I, I);
    memset(a->du, 0, sizeof(float) * M * d);
    matmul_backward(a->du, a->dxz, P->in_proj, M, d, 2 * I);
    rmsnorm_backward(dh, a->du, L->h_in, L->r1, P->norm, M, d);
  }
  memcpy(dx, dh, sizeof(float) * M * d);
}

// ---- recurrent decode (one sequence): per layer the last K-1 conv inputs and the scan state

typedef struct {
  int cap, len;
  float *conv; // [layers, K-1, I], oldest input first
  float *ssm;  // [layers, I, N]
  float *h, *u, *xz, *xc, *dbc, *dtp, *g, *out, *r; // one position's scratch
} MambaState;

static void mamba_state_free(void *p) {
  MambaState *s = (MambaState *)p;
  if (!s) return;
  float *ps[] = {s->conv, s->ssm, s->h, s->u, s->xz, s->xc, s->dbc, s->dtp, s->g, s->out, s->r};
  for (unsigned j = 0; j < sizeof ps / sizeof *ps; j++) free(ps[j]);
  free(s);
}

static void *mamba_state_new(const Model *base, int cap) {
  const MambaConfig *c = &((const Mamba *)base)->c;
  MambaState *s = (MambaState *)calloc(1, sizeof(MambaState));
  if (!s) return NULL;
  const long I = c->I;
  s->cap = cap;
  s->conv = zalloc((long)c->layers * (c->K - 1) * I), s->ssm = zalloc((long)c->layers * I * c->N);
  s->h = zalloc(c->d), s->u = zalloc(c->d), s->xz = zalloc(2 * I), s->xc = zalloc(I), s->dbc = zalloc(c->R + 2 * c->N);
  s->dtp = zalloc(I), s->g = zalloc(I), s->out = zalloc(c->d), s->r = zalloc(1);
  if (!s->conv || !s->ssm || !s->h || !s->u || !s->xz || !s->xc || !s->dbc || !s->dtp || !s->g || !s->out || !s->r) return mamba_state_free(s), NULL;
  return s;
}

static int mamba_decode(const Model *base, void *state, const float *x, int n, float *hidden_last) {
  const Mamba *m = (const Mamba *)base;
  MambaState *s = (MambaState *)state;
  const MambaConfig *c = &m->c;
  const int d = c->d, I = c->I, N = c->N, R = c->R, K = c->K, W = R + 2 * N;
  if (n <= 0 || s->len + n > s->cap) return 0;
  for (int p = 0; p < n; p++) {
    memcpy(s->h, x + (long)p * d, sizeof(float) * d);
    for (int i = 0; i < c->layers; i++) {
      const MambaLayer *P = &m->layer[i];
      float *cs = s->conv + (long)i * (K - 1) * I, *hs = s->ssm + (long)i * I * N;
      rmsnorm(s->u, s->r, s->h, P->norm, 1, d, c->eps);
      matmul(s->xz, s->u, P->in_proj, P->in_proj_b, 1, d, 2 * I);
      const float *xin = s->xz, *z = s->xz + I;
      for (int ch = 0; ch < I; ch++) { // conv over the K-1 kept inputs and this one, then shift the window
        float acc = P->conv_b ? P->conv_b[ch] : 0.f;
        for (int j = 0; j < K - 1; j++) acc += P->conv_w[(long)ch * K + j] * cs[(long)j * I + ch];
        acc += P->conv_w[(long)ch * K + K - 1] * xin[ch];
        for (int j = 0; j + 1 < K - 1; j++) cs[(long)j * I + ch] = cs[(long)(j + 1) * I + ch];
        if (K > 1) cs[(long)(K - 2) * I + ch] = xin[ch];
        s->xc[ch] = acc;
      }
      silu(s->xc, s->xc, I); // xs
      matmul(s->dbc, s->xc, P->x_proj, NULL, 1, I, W);
      matmul(s->dtp, s->dbc, P->dt_proj, P->dt_proj_b, 1, R, I); // dt_low = the first R columns
      softplus(s->dtp, s->dtp, I);                                 // Δ
      selective_scan_step(s->g, hs, s->dtp, P->A, s->dbc + R, s->dbc + R + N, s->xc, P->D, I, N); // y
      for (int ch = 0; ch < I; ch++) {
        const float zz = z[ch];
        s->g[ch] *= zz * (1.f / (1.f + expf(-zz))); // y · silu(z), rounded as the forward's silu then product
      }
      matmul(s->out, s->g, P->out_proj, P->out_proj_b, 1, I, d);
      add_inplace(s->h, s->out, d);
    }
  }
  s->len += n;
  rmsnorm(hidden_last, s->r, s->h, m->norm_f, 1, d, c->eps);
  return 1;
}

static const ModelOps MAMBA_OPS = {mamba_prepare, mamba_acts_new, mamba_acts_free, mamba_forward, mamba_backward, mamba_state_new, mamba_state_free, mamba_decode, mamba_destroy};

Model *mamba_create(const ModelConfig *cfg, char *err, int errlen) {
  MambaConfig c = {0};
  int ok = config_int(cfg, "hidden_size", 1, 1 << 16, &c.d, err, errlen) && config_int(cfg, "vocab_size", 1, 1 << 22, &c.vocab, err, errlen) &&
           config_int(cfg, "num_hidden_layers", 1, 1024, &c.layers, err, errlen) && config_int(cfg, "intermediate_size", 1, 1 << 20, &c.I, err, errlen) &&
           config_int(cfg, "state_size", 1, 1024, &c.N, err, errlen) && config_int(cfg, "conv_kernel", 1, 64, &c.K, err, errlen) &&
           config_int(cfg, "time_step_rank", 1, 1 << 16, &c.R, err, errlen) && config_int(cfg, "max_position_embeddings", 1, 1 << 20, &c.max_pos, err, errlen) &&
           config_float(cfg, "layer_norm_epsilon", &c.eps, err, errlen);
  if (!ok) return NULL;
  c.tied = config_bool(cfg, "tied", 1);
  c.use_bias = config_bool(cfg, "use_bias", 0);
  c.use_conv_bias = config_bool(cfg, "use_conv_bias", 1);
  if (!(c.eps > 0)) return snprintf(err, errlen, "layer_norm_epsilon must be > 0, got %g", c.eps), NULL;

  Mamba *m = (Mamba *)calloc(1, sizeof(Mamba));
  if (!m) return snprintf(err, errlen, "out of memory allocating the model"), NULL;
  m->c = c;
  Model *b = &m->base;
  b->ops = &MAMBA_OPS;
  b->type = "mamba";
  const long d = c.d, I = c.I, N = c.N, K = c.K, R = c.R, V = c.vocab;
  char p[96];
#define SLOT(ptr, name, n) (((ptr) = zalloc(n)) && model_slot(b, (name), (ptr), (n)))
#define LSLOT(ptr, name, n) (((ptr) = zalloc(n)) && (snprintf(p, sizeof p, "backbone.layers.%d.%s", i, name), model_slot(b, p, (ptr), (n))))
#define LMAT(w, name, n) (snprintf(p, sizeof p, "backbone.layers.%d.%s", i, name), model_mat(b, p, &(w), (n)))
  ok = model_mat(b, "backbone.embeddings.weight", &m->embed_tokens, V * d) && SLOT(m->norm_f, "backbone.norm_f.weight", d) &&
       (m->layer = (MambaLayer *)calloc(c.layers, sizeof(MambaLayer)));
  if (ok && !c.tied) ok = model_mat(b, "lm_head.weight", &m->lm_head, V * d);
  for (int i = 0; ok && i < c.layers; i++) {
    MambaLayer *L = &m->layer[i];
    ok = LSLOT(L->norm, "norm.weight", d) && LMAT(L->in_proj, "mixer.in_proj.weight", 2 * I * d) && LSLOT(L->conv_w, "mixer.conv1d.weight", I * K) &&
         LMAT(L->x_proj, "mixer.x_proj.weight", (R + 2 * N) * I) && LMAT(L->dt_proj, "mixer.dt_proj.weight", I * R) &&
         LSLOT(L->dt_proj_b, "mixer.dt_proj.bias", I) && LSLOT(L->A_log, "mixer.A_log", I * N) && LSLOT(L->D, "mixer.D", I) &&
         LMAT(L->out_proj, "mixer.out_proj.weight", d * I) && (L->A = zalloc(I * N));
    if (ok && c.use_bias) ok = LSLOT(L->in_proj_b, "mixer.in_proj.bias", 2 * I) && LSLOT(L->out_proj_b, "mixer.out_proj.bias", d);
    if (ok && c.use_conv_bias) ok = LSLOT(L->conv_b, "mixer.conv1d.bias", I);
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
  b->body_macs = (double)c.layers * (3.0 * d * I + I * (R + 2 * N) + (double)R * I + 3.0 * I * N);
  return b;
}
