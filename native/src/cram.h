// S cram steps for a batch of texts, each behind its own K [mem] vectors, with cram.ts's semantics:
// per step the loss (each text's mean CE over its N-1 shifted predictions) and correct count at the
// current mem, strict-improvement best / patience bookkeeping, then AdamW (adamw.ts) on mem.
// Texts that stop leave the batch at once.
#ifndef CRAMLAB_CRAM_H
#define CRAMLAB_CRAM_H
#include "model.h"
#ifdef __cplusplus
extern "C" {
#endif

enum { ST_DECODED = 0, ST_PATIENCE = 1, ST_MAX_STEPS = 2, ST_NAN = 3 };

typedef struct {
  int B, K;
  const int *ids, *offsets, *lengths; // text b: ids[offsets[b] .. offsets[b] + lengths[b])
  float *mem, *m, *v, *best_mem;      // [B, K, d_in]
  int *best_correct, *best_step, *counter, *done, *done_at, *status; // [B]; best_step -1 before any
  float *best_loss, *min_loss;        // [B]
  float lr, beta1, beta2, eps, weight_decay;
  int max_steps, patience;
  float margin;                       // > 0: a position is held when target logit − best other ≥ margin
  int it0;                            // 0-based iteration of this call's first step
  float *loss_out;                    // [S, B] per-step loss (NaN where the text was not live)
  int *correct_out;                   // [S, B]
  float *grad_out;                    // optional [B, K, d_in]: dL/dmem of the last step (parity tests)
  // schedule.ts, off at zero: leading predictions weigh lead_weight; cosine lr to min_lr; grad-norm clip
  float lead_weight, min_lr, clip_norm;
  int lead_count, lr_cosine;
  // Low-rank mem (lowrank.ts), off at rank 0: mem_b = z_b·W_bᵀ + bias_b, expanded here before each step;
  // AdamW on z (dz = dmem·W), and on W, bias when train_wb (dW = dmemᵀ·z, dbias = Σ_j dmem_j). shared:
  // one W, bias for the batch (their gradient summed over the live texts). mem, best_mem hold the expanded
  // vectors; grad_out then holds dz, grad_w_out / grad_bias_out (optional) the last step's dW / dbias.
  int rank, shared, train_wb;
  float *z, *zm, *zv, *best_z;                     // [B, K, rank]
  float *W, *Wm, *Wv;                              // [nW, d_in, rank], nW = shared ? 1 : B
  float *bias, *bm, *bv;                           // [nW, d_in]
  float *grad_w_out, *grad_bias_out;               // [nW, d_in, rank], [nW, d_in]
} CramState;

// Runs up to S steps (fewer when every text is done); returns the steps run, -1 when out of memory.
// acts: up to nacts activation sets (m->ops->acts_new, ≤ 16), one per thread that takes a group of texts.
int cram_steps(const Model *m, void **acts, int nacts, CramState *s, int S);

#ifdef __cplusplus
}
#endif
#endif
