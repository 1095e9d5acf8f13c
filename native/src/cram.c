// The cram loop (cram.ts's step, per text): forward [mem; embed(ids)], loss + accuracy on the text
// positions, backward to mem, bookkeeping, AdamW. Only the scored rows go through lm_head.
#include "cram.h"
#include "kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// adamw.ts, in float32 as tfjs computes it (constants rounded to float32 like tf scalars)
static void adamw(float *p, float *m, float *v, const float *g, long n, int t, const CramState *s) {
  const float decay = (float)(1.0 - (double)s->lr * s->weight_decay);
  const float b1 = s->beta1, b2 = s->beta2, c1 = (float)(1.0 - s->beta1), c2 = (float)(1.0 - s->beta2);
  const float step = (float)(s->lr / (1.0 - pow(s->beta1, t)));
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

int cram_steps(const Llama *mdl, Acts *a, CramState *s, int S) {
  const LlamaConfig *c = &mdl->c;
  const int B = s->B, K = s->K, d = c->d, V = c->vocab;
  const long Kd = (long)K * d;
  int Lmax = 0, Rmax = 0;
  for (int b = 0; b < B; b++) {
    if (s->lengths[b] > Lmax) Lmax = s->lengths[b];
    if (s->lengths[b] - 1 > Rmax) Rmax = s->lengths[b] - 1;
  }
  const int Tmax = K + Lmax;
  int *live = (int *)malloc(sizeof(int) * B);
  float *x = (float *)malloc(sizeof(float) * (long)B * Tmax * d);
  float *dxnf = (float *)malloc(sizeof(float) * (long)B * Tmax * d);
  float *dx = (float *)malloc(sizeof(float) * (long)B * Tmax * d);
  float *logits = (float *)malloc(sizeof(float) * (long)Rmax * V);
  float *dlogits = (float *)malloc(sizeof(float) * (long)Rmax * V);
  float *ce = (float *)malloc(sizeof(float) * Rmax), *w = (float *)malloc(sizeof(float) * Rmax);
  int *hit = (int *)malloc(sizeof(int) * Rmax), *target = (int *)malloc(sizeof(int) * Rmax);
  float *loss = (float *)malloc(sizeof(float) * B);
  int *correct = (int *)malloc(sizeof(int) * B);
  int ran = 0;
  if (!live || !x || !dxnf || !dx || !logits || !dlogits || !ce || !w || !hit || !target || !loss || !correct) {
    ran = -1;
    goto out;
  }
  for (; ran < S; ran++) {
    const int it = s->it0 + ran;
    for (int b = 0; b < B; b++) s->loss_out[(long)ran * B + b] = NAN, s->correct_out[(long)ran * B + b] = 0;
    int n = 0, L = 0;
    for (int b = 0; b < B; b++)
      if (!s->done[b]) {
        live[n++] = b;
        if (s->lengths[b] > L) L = s->lengths[b];
      }
    if (n == 0) break;
    const int T = K + L;
    // x[j] = [mem_b ; embed_tokens[ids_b] ; embed_tokens[0] as right padding]
    for (int j = 0; j < n; j++) {
      const int b = live[j];
      float *xj = x + (long)j * T * d;
      memcpy(xj, s->mem + b * Kd, sizeof(float) * Kd);
      for (int t = 0; t < L; t++) {
        const int id = t < s->lengths[b] ? s->ids[s->offsets[b] + t] : 0;
        memcpy(xj + (long)(K + t) * d, mdl->embed_tokens + (long)id * d, sizeof(float) * d);
      }
    }
    if (!llama_forward(mdl, a, x, n, T)) {
      ran = -1;
      goto out;
    }
    // text positions K .. K+N-2 predict ids 1 .. N-1; loss = Σ ce / (N-1)
    memset(dxnf, 0, sizeof(float) * (long)n * T * d);
    for (int j = 0; j < n; j++) {
      const int b = live[j], R = s->lengths[b] - 1;
      const float wt = (float)(1.0 / R);
      const float *rows = a->xnf + ((long)j * T + K) * d;
      for (int r = 0; r < R; r++) target[r] = s->ids[s->offsets[b] + r + 1], w[r] = wt;
      matmul(logits, rows, mdl->lm_head, NULL, R, d, V);
      cross_entropy(ce, hit, dlogits, logits, target, w, R, V);
      float lsum = 0.f;
      int hits = 0;
      for (int r = 0; r < R; r++) lsum += ce[r] * wt, hits += hit[r];
      loss[j] = lsum;
      correct[j] = hits;
      matmul_backward(dxnf + ((long)j * T + K) * d, dlogits, mdl->lm_head, R, d, V);
    }
    llama_backward(mdl, a, dxnf, dx);
    // bookkeeping in cram.ts's order, then AdamW (the stopping step updates mem too: finalMem)
    for (int j = 0; j < n; j++) {
      const int b = live[j];
      const float lj = loss[j];
      const int cj = correct[j], finite = isfinite(lj);
      s->loss_out[(long)ran * B + b] = lj;
      s->correct_out[(long)ran * B + b] = cj;
      const int improved = finite && cj > s->best_correct[b];
      if (improved) {
        s->best_correct[b] = cj;
        s->best_step[b] = it;
        s->best_loss[b] = lj;
        memcpy(s->best_mem + b * Kd, s->mem + b * Kd, sizeof(float) * Kd);
        s->counter[b] = 0;
      } else {
        s->counter[b]++;
      }
      if (finite && lj < s->min_loss[b]) s->min_loss[b] = lj;
      const int nan = !finite, full = s->best_correct[b] >= s->lengths[b] - 1;
      const int patient = s->counter[b] >= s->patience, last = it + 1 >= s->max_steps;
      if (s->grad_out) memcpy(s->grad_out + b * Kd, dx + (long)j * T * d, sizeof(float) * Kd);
      adamw(s->mem + b * Kd, s->m + b * Kd, s->v + b * Kd, dx + (long)j * T * d, Kd, it + 1, s);
      if (nan || full || patient || last) {
        s->done[b] = 1;
        s->done_at[b] = it + 1;
        s->status[b] = nan ? ST_NAN : full ? ST_DECODED : patient ? ST_PATIENCE : ST_MAX_STEPS;
      }
    }
  }
out:
  free(live), free(x), free(dxnf), free(dx), free(logits), free(dlogits), free(ce), free(w), free(hit), free(target), free(loss), free(correct);
  return ran;
}
