// The cram loop (cram.ts's step, per text): forward [mem; embed(ids)], loss + accuracy on the text
// positions, backward to mem, bookkeeping, AdamW. Only the scored rows go through lm_head.
// Architecture-neutral: the model is seen through model.h (forward to final hidden, backward to x).
#include "cram.h"
#include "kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// adamw.ts, in float32 as tfjs computes it (constants rounded to float32 like tf scalars)
static void adamw(float *p, float *m, float *v, const float *g, long n, int t, double lr, const CramState *s) {
  const float decay = (float)(1.0 - lr * s->weight_decay);
  const float b1 = s->beta1, b2 = s->beta2, c1 = (float)(1.0 - s->beta1), c2 = (float)(1.0 - s->beta2);
  const float step = (float)(lr / (1.0 - pow(s->beta1, t)));
  const float bc2 = (float)sqrt(1.0 - pow(s->beta2, t));
  const float eps = s->eps;
  for (long i = 0; i < n; i++) {
    const float mi = m[i] * b1 + g[i] * c1;
    const float vi = v[i] * b2 + g[i] * g[i] * c2;
    const float denom = sqrtf(vi) / bc2 + eps;
    p[i] = p[i] * decay - (mi / denom) * step;
    m[i] = mi;
    v[i] = vi;
  }
}

// schedule.ts: lr of iteration it (0-based), constant or cosine to min_lr over max_steps
static double lr_at(const CramState *s, int it) {
  if (!s->lr_cosine) return s->lr;
  return s->min_lr + ((double)s->lr - s->min_lr) * (1.0 + cos(3.14159265358979323846 * it / s->max_steps)) / 2.0;
}

// schedule.ts: g *= min(1, c / (|g| + 1e-6)), like torch clip_grad_norm_, over `parts` arrays as one
// vector (a text's mem; a text's z with its own W and bias; a shared W with its bias)
static void clip_norm(float *const g[], const long n[], int parts, float c) {
  double ss = 0.0;
  for (int p = 0; p < parts; p++)
    for (long i = 0; i < n[p]; i++) ss += (double)g[p][i] * g[p][i];
  const double coef = c / (sqrt(ss) + 1e-6);
  if (coef >= 1.0) return;
  for (int p = 0; p < parts; p++)
    for (long i = 0; i < n[p]; i++) g[p][i] = (float)(g[p][i] * coef);
}

// lowrank.ts: mem_b [K, d] = z_b [K, r]·W_bᵀ ([d, r]) + bias_b [d]
static void expand(CramState *s, int b, int d) {
  const int K = s->K, r = s->rank;
  const long o = s->shared ? 0 : b;
  const float *W = s->W + o * d * r, *bias = s->bias + o * d, *z = s->z + (long)b * K * r;
  float *mem = s->mem + (long)b * K * d;
  for (int j = 0; j < K; j++)
    for (int i = 0; i < d; i++) {
      float acc = 0.f;
      for (int q = 0; q < r; q++) acc += W[i * r + q] * z[j * r + q];
      mem[j * d + i] = acc + bias[i];
    }
}

// The chain rule through expand: dz = dmem·W; with gW: dW += dmemᵀ·z, dbias += Σ_j dmem_j.
static void expand_backward(float *gz, float *gW, float *gb, const float *dmem, const float *z, const float *W, int K, int d, int r) {
  for (int j = 0; j < K; j++)
    for (int q = 0; q < r; q++) {
      float acc = 0.f;
      for (int i = 0; i < d; i++) acc += dmem[j * d + i] * W[i * r + q];
      gz[j * r + q] = acc;
    }
  if (!gW) return;
  for (int i = 0; i < d; i++) {
    for (int q = 0; q < r; q++) {
      float acc = 0.f;
      for (int j = 0; j < K; j++) acc += dmem[j * d + i] * z[j * r + q];
      gW[i * r + q] += acc;
    }
    for (int j = 0; j < K; j++) gb[i] += dmem[j * d + i];
  }
}

#define GROUP_MIN_FLOPS 64e6

typedef struct {
  float *x, *dhid, *dx, *logits, *dlogits, *ce, *w;
  int *hit, *target;
  int chunk; // rows of logits / dlogits held at once
} Scratch;

// rows of [·, V] logits per chunk: ≤ 128 MB each for logits and dlogits (Llama-3.x: 261 rows)
#define LOGITS_CHUNK_FLOATS (1L << 25)

static void scratch_free(Scratch *z) {
  free(z->x), free(z->dhid), free(z->dx), free(z->logits), free(z->dlogits), free(z->ce), free(z->w), free(z->hit), free(z->target);
  memset(z, 0, sizeof *z);
}

static int scratch_new(Scratch *z, long rows, int Rmax, int d_in, int d_out, int V) {
  z->x = (float *)malloc(sizeof(float) * rows * d_in);
  z->dhid = (float *)malloc(sizeof(float) * rows * d_out);
  z->dx = (float *)malloc(sizeof(float) * rows * d_in);
  const long fit = LOGITS_CHUNK_FLOATS / (V > 0 ? V : 1);
  z->chunk = Rmax < fit ? Rmax : fit < 16 ? 16 : (int)fit;
  if (z->chunk < 1) z->chunk = 1;
  z->logits = (float *)malloc(sizeof(float) * (long)z->chunk * V);
  z->dlogits = (float *)malloc(sizeof(float) * (long)z->chunk * V);
  z->ce = (float *)malloc(sizeof(float) * Rmax), z->w = (float *)malloc(sizeof(float) * Rmax);
  z->hit = (int *)malloc(sizeof(int) * Rmax), z->target = (int *)malloc(sizeof(int) * Rmax);
  return z->x && z->dhid && z->dx && z->logits && z->dlogits && z->ce && z->w && z->hit && z->target;
}

// With a margin, a position is held only when its target logit beats every other by at least it.
static void held_by_margin(int *hit, const float *logits, const int *target, int R, int V, float margin) {
  for (int r = 0; r < R; r++) {
    const float *z = logits + (long)r * V;
    float other = -INFINITY;
    for (int i = 0; i < V; i++)
      if (i != target[r] && z[i] > other) other = z[i];
    hit[r] = z[target[r]] - other >= margin;
  }
}

// Loss, correct count and dL/dmem at the current mem for the n texts live[0..n): one padded batch.
static int group_step(const Model *mdl, void *a, Scratch *z, const CramState *s, const int *live, int n, float *loss, int *correct, float *grad) {
  const int K = s->K, d = mdl->d_in, dh = mdl->d_out, V = mdl->vocab;
  const long Kd = (long)K * d;
  int L = 0;
  for (int j = 0; j < n; j++)
    if (s->lengths[live[j]] > L) L = s->lengths[live[j]];
  const int T = K + L;
  // x[j] = [mem_b ; embed_tokens[ids_b] ; embed_tokens[0] as right padding (causal: never read)]
  for (int j = 0; j < n; j++) {
    const int b = live[j];
    float *xj = z->x + (long)j * T * d;
    memcpy(xj, s->mem + b * Kd, sizeof(float) * Kd);
    for (int t = 0; t < L; t++) {
      const int id = t < s->lengths[b] ? s->ids[s->offsets[b] + t] : 0;
      mat_row(xj + (long)(K + t) * d, mdl->embed_tokens, id, d);
    }
  }
  const float *hidden = mdl->ops->forward(mdl, a, z->x, n, T);
  if (!hidden) return 0;
  // text positions K .. K+N-2 predict ids 1 .. N-1; loss = Σ ce / (N-1)
  memset(z->dhid, 0, sizeof(float) * (long)n * T * dh);
  for (int j = 0; j < n; j++) {
    const int b = live[j], R = s->lengths[b] - 1;
    // weights sum to 1: 1/R each, or schedule.ts's leading weight
    const int lead = s->lead_weight > 0 && s->lead_weight != 1.f ? (s->lead_count < R ? s->lead_count : R) : 0;
    const double total = lead * (double)s->lead_weight + (R - lead);
    const float *rows = hidden + ((long)j * T + K) * dh;
    for (int r = 0; r < R; r++)
      z->target[r] = s->ids[s->offsets[b] + r + 1], z->w[r] = lead ? (float)((r < lead ? s->lead_weight : 1.0) / total) : (float)(1.0 / R);
    float lsum = 0.f;
    int hits = 0;
    // logits in chunks of z->chunk rows (all of them at N = 64): [R, V] twice is 1 GB at N = 1024, V = 128k
    for (int r0 = 0; r0 < R; r0 += z->chunk) {
      const int n_r = R - r0 < z->chunk ? R - r0 : z->chunk;
      matmul(z->logits, rows + (long)r0 * dh, mdl->lm_head, NULL, n_r, dh, V);
      cross_entropy(z->ce + r0, z->hit + r0, z->dlogits, z->logits, z->target + r0, z->w + r0, n_r, V);
      if (s->margin > 0.f) held_by_margin(z->hit + r0, z->logits, z->target + r0, n_r, V, s->margin);
      matmul_backward(z->dhid + ((long)j * T + K + r0) * dh, z->dlogits, mdl->lm_head, n_r, dh, V);
    }
    for (int r = 0; r < R; r++) lsum += z->ce[r] * z->w[r], hits += z->hit[r];
    loss[b] = lsum;
    correct[b] = hits;
  }
  mdl->ops->backward(mdl, a, z->dhid, z->dx);
  for (int j = 0; j < n; j++) memcpy(grad + live[j] * Kd, z->dx + (long)j * T * d, sizeof(float) * Kd);
  return 1;
}

int cram_steps(const Model *mdl, void **acts, int nacts, CramState *s, int S) {
  const int B = s->B, K = s->K, d = mdl->d_in, V = mdl->vocab;
  const long Kd = (long)K * d;
  int Lmax = 0;
  for (int b = 0; b < B; b++)
    if (s->lengths[b] > Lmax) Lmax = s->lengths[b];
  // Texts split into groups, one thread each (one parallel region per step: robust on a busy machine);
  // with one group (B < threads too: a lone text) the GEMMs split their rows over the threads instead.
  const int threads0 = num_threads();
  int G = threads0 < nacts ? threads0 : nacts;
  if (G > B) G = B;
  if (G < 1) G = 1;
  const int per = (B + G - 1) / G;
  const double per_token = mdl->body_macs + (double)mdl->d_out * V; // weights read per token
  int *live = (int *)malloc(sizeof(int) * B);
  float *loss = (float *)malloc(sizeof(float) * B), *grad = (float *)malloc(sizeof(float) * B * Kd);
  int *correct = (int *)malloc(sizeof(int) * B);
  // low-rank: dz of one text, dW / dbias of one text or summed over the batch (shared)
  const int r = s->rank;
  const long Kr = (long)K * r, dr = (long)d * r;
  float *gz = r ? (float *)malloc(sizeof(float) * (Kr + dr + d)) : NULL;
  float *gW = gz ? gz + Kr : NULL, *gb = gz ? gz + Kr + dr : NULL;
  Scratch z[16];
  memset(z, 0, sizeof z);
  int ran = 0, ok = live && loss && grad && correct && (!r || gz);
  // group 0 also runs the whole batch alone when a step is too small to split
  for (int g = 0; ok && g < G; g++) ok = scratch_new(&z[g], (long)(g == 0 ? B : per) * (K + Lmax), Lmax - 1, d, mdl->d_out, V);
  if (!ok) {
    ran = -1;
    goto out;
  }
  if (r)
    for (int b = 0; b < B; b++)
      if (!s->done[b]) expand(s, b, d);
  for (; ran < S; ran++) {
    const int it = s->it0 + ran;
    for (int b = 0; b < B; b++) s->loss_out[(long)ran * B + b] = NAN, s->correct_out[(long)ran * B + b] = 0;
    int n = 0;
    for (int b = 0; b < B; b++)
      if (!s->done[b]) live[n++] = b;
    if (n == 0) break;
    // Split only when each thread gets enough work to cover a fork/join (measured: on a busy 2-core
    // machine a split of W1-sized steps is slower than one thread).
    long tokens = 0;
    for (int j = 0; j < n; j++) tokens += K + s->lengths[live[j]];
    const double flops = 4.0 * tokens * per_token;
    int g_used = n < G ? n : G;
    if (g_used > 1 && flops / g_used < GROUP_MIN_FLOPS) g_used = (int)(flops / GROUP_MIN_FLOPS) > 1 ? (int)(flops / GROUP_MIN_FLOPS) : 1;
    int failed = 0;
    if (g_used == 1) {
      // too little work to split by texts is too little to split inside the ops as well
      const int serial = threads0 > 1 && flops < GROUP_MIN_FLOPS * threads0;
      if (serial) set_threads(1);
      failed = !group_step(mdl, acts[0], &z[0], s, live, n, loss, correct, grad);
      if (serial) set_threads(threads0);
    } else {
#pragma omp parallel for num_threads(g_used) schedule(static, 1) reduction(| : failed)
      for (int g = 0; g < g_used; g++) {
        const int j0 = (int)((long)n * g / g_used), j1 = (int)((long)n * (g + 1) / g_used);
        failed |= !group_step(mdl, acts[g], &z[g], s, live + j0, j1 - j0, loss, correct, grad);
      }
    }
    if (failed) {
      ran = -1;
      goto out;
    }
    // bookkeeping in cram.ts's order, then AdamW (the stopping step updates mem too: finalMem)
    if (r && s->shared && s->train_wb) memset(gW, 0, sizeof(float) * (dr + d));
    for (int j = 0; j < n; j++) {
      const int b = live[j];
      const float lj = loss[b];
      const int cj = correct[b], finite = isfinite(lj);
      s->loss_out[(long)ran * B + b] = lj;
      s->correct_out[(long)ran * B + b] = cj;
      const int improved = finite && cj > s->best_correct[b];
      if (improved) {
        s->best_correct[b] = cj;
        s->best_step[b] = it;
        s->best_loss[b] = lj;
        memcpy(s->best_mem + b * Kd, s->mem + b * Kd, sizeof(float) * Kd);
        if (r) memcpy(s->best_z + b * Kr, s->z + b * Kr, sizeof(float) * Kr);
        s->counter[b] = 0;
      } else {
        s->counter[b]++;
      }
      if (finite && lj < s->min_loss[b]) s->min_loss[b] = lj;
      const int nan = !finite, full = s->best_correct[b] >= s->lengths[b] - 1;
      const int patient = s->counter[b] >= s->patience, last = it + 1 >= s->max_steps;
      const double lr = lr_at(s, it);
      if (!r) {
        if (s->grad_out) memcpy(s->grad_out + b * Kd, grad + b * Kd, sizeof(float) * Kd);
        if (s->clip_norm > 0) clip_norm((float *[]){grad + b * Kd}, (long[]){Kd}, 1, s->clip_norm);
        adamw(s->mem + b * Kd, s->m + b * Kd, s->v + b * Kd, grad + b * Kd, Kd, it + 1, lr, s);
      } else {
        // z (and this text's own W, bias) from dmem; a shared W, bias gathers every text's share
        const long o = s->shared ? 0 : b;
        const int own = s->train_wb && !s->shared;
        if (own) memset(gW, 0, sizeof(float) * (dr + d));
        expand_backward(gz, s->train_wb ? gW : NULL, gb, grad + b * Kd, s->z + b * Kr, s->W + o * dr, K, d, r);
        if (s->grad_out) memcpy(s->grad_out + b * Kr, gz, sizeof(float) * Kr);
        if (own && s->grad_w_out) memcpy(s->grad_w_out + b * dr, gW, sizeof(float) * dr);
        if (own && s->grad_bias_out) memcpy(s->grad_bias_out + b * d, gb, sizeof(float) * d);
        if (s->clip_norm > 0) clip_norm((float *[]){gz, gW, gb}, (long[]){Kr, own ? dr : 0, own ? d : 0}, 3, s->clip_norm);
        adamw(s->z + b * Kr, s->zm + b * Kr, s->zv + b * Kr, gz, Kr, it + 1, lr, s);
        if (own) {
          adamw(s->W + b * dr, s->Wm + b * dr, s->Wv + b * dr, gW, dr, it + 1, lr, s);
          adamw(s->bias + b * d, s->bm + b * d, s->bv + b * d, gb, d, it + 1, lr, s);
        }
      }
      if (nan || full || patient || last) {
        s->done[b] = 1;
        s->done_at[b] = it + 1;
        s->status[b] = nan ? ST_NAN : full ? ST_DECODED : patient ? ST_PATIENCE : ST_MAX_STEPS;
      }
    }
    if (r && s->shared && s->train_wb) {
      if (s->grad_w_out) memcpy(s->grad_w_out, gW, sizeof(float) * dr);
      if (s->grad_bias_out) memcpy(s->grad_bias_out, gb, sizeof(float) * d);
      if (s->clip_norm > 0) clip_norm((float *[]){gW, gb}, (long[]){dr, d}, 2, s->clip_norm);
      adamw(s->W, s->Wm, s->Wv, gW, dr, it + 1, lr_at(s, it), s);
      adamw(s->bias, s->bm, s->bv, gb, d, it + 1, lr_at(s, it), s);
    }
    // the next step's mem; a text that stopped keeps the mem of its final z (finalMem)
    if (r)
      for (int j = 0; j < n; j++) expand(s, live[j], d);
  }
out:
  for (int g = 0; g < 16; g++) scratch_free(&z[g]);
  free(live), free(loss), free(grad), free(correct), free(gz);
  return ran;
}
