// MambaForCausalLM (state-spaces/mamba-*-hf), after HF modeling_mamba (the slow, pure-torch path).
//   h = embeds
//   per layer:  h += out_proj(mixer(rms(h)))
//     mixer(u): x, gate = in_proj(u)                     (channels [0, I) and [I, 2I))
//               x = silu(causal depthwise conv1d(x))      (kernel conv_kernel, with bias)
//               dt_low, B, C = x_proj(x)                  ([time_step_rank | state | state])
//               Δ = softplus(dt_proj(dt_low))             ([B, T, I])
//               A = -exp(A_log)                            ([I, N])
//               y = scan(exp(Δ·A), Δ·B·x, C) + D·x        (h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t, y_t = C_t·h_t)
//               mixer = y · silu(gate)
//   logits = embeddings^T · rms_f(h)      (tied head)
import * as tf from '@tensorflow/tfjs-core';
import { assertFitsMemory } from '../backend';
import { linear, rmsNorm, silu } from './layers';
import { selectiveScanChunked, type SelectiveScan } from './mamba_scan';
import type { CausalLM, ModelInfo } from './types';
import { infoFromConfig } from './types';
import { ModelError } from './types';
import type { Weights } from './weights';

interface MambaLayer {
  norm: tf.Tensor;
  in_proj: tf.Tensor;
  in_proj_b?: tf.Tensor;
  conv_w: tf.Tensor; // [I, 1, K]
  conv_b?: tf.Tensor;
  x_proj: tf.Tensor;
  dt_proj: tf.Tensor;
  dt_proj_b: tf.Tensor;
  A_log: tf.Tensor; // [I, N]; A = -exp(A_log)
  D: tf.Tensor;
  out_proj: tf.Tensor;
  out_proj_b?: tf.Tensor;
}

/** The mixer's sizes as the config gives them (shared with the native engine's spec). */
export function mambaDims(cfg: Record<string, any>): { I: number; N: number; K: number; rank: number; eps: number } {
  const d = cfg.hidden_size;
  const rank = cfg.time_step_rank ?? 'auto';
  const r = rank === 'auto' ? Math.ceil(d / 16) : rank;
  if (!Number.isInteger(r) || r <= 0)
    throw new ModelError(`mamba time_step_rank '${rank}' is neither 'auto' nor a positive integer`);
  return {
    I: cfg.intermediate_size ?? (cfg.expand ?? 2) * d,
    N: cfg.state_size ?? 16,
    K: cfg.conv_kernel ?? 4,
    rank: r,
    eps: cfg.layer_norm_epsilon ?? 1e-5,
  };
}

/** ModelInfo with the tfjs model's checks (time_step_rank, hidden_act): shared with the native engine. */
export function mambaInfo(cfg: Record<string, any>): ModelInfo {
  mambaDims(cfg);
  const act = cfg.hidden_act ?? 'silu';
  if (act !== 'silu') throw new ModelError(`mamba hidden_act '${act}' is not supported (supported: silu)`);
  return infoFromConfig(cfg, { maxPositions: Infinity }); // recurrent: no position table
}

export class Mamba implements CausalLM {
  readonly info: ModelInfo;
  readonly embedMatrix: tf.Tensor2D;
  readonly numParams: number;
  /** The selective scan in use; tests swap in selectiveScanSequential to check the fast one. */
  scan: SelectiveScan = selectiveScanChunked(16); // chunk 16: best forward+backward in bench/mamba-scan.ts (wasm)
  private layers: MambaLayer[] = [];
  private normF: tf.Tensor;
  private lmHead: tf.Tensor;
  private I: number;
  private N: number;
  private K: number;
  private rank: number;
  private eps: number;

  constructor(cfg: Record<string, any>, w: Weights) {
    const d = cfg.hidden_size;
    const V = cfg.vocab_size;
    this.info = mambaInfo(cfg);
    ({ I: this.I, N: this.N, K: this.K, rank: this.rank, eps: this.eps } = mambaDims(cfg));
    const { I, N, K } = this;

    this.embedMatrix = w.get('backbone.embeddings.weight', [V, d]) as tf.Tensor2D;
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `backbone.layers.${i}.`;
      this.layers.push({
        norm: w.get(p + 'norm.weight', [d]),
        in_proj: w.get(p + 'mixer.in_proj.weight', [2 * I, d]),
        in_proj_b: w.maybe(p + 'mixer.in_proj.bias', [2 * I]),
        conv_w: w.get(p + 'mixer.conv1d.weight', [I, 1, K]),
        conv_b: w.maybe(p + 'mixer.conv1d.bias', [I]),
        x_proj: w.get(p + 'mixer.x_proj.weight', [this.rank + 2 * N, I]),
        dt_proj: w.get(p + 'mixer.dt_proj.weight', [I, this.rank]),
        dt_proj_b: w.get(p + 'mixer.dt_proj.bias', [I]),
        A_log: w.get(p + 'mixer.A_log', [I, N]),
        D: w.get(p + 'mixer.D', [I]),
        out_proj: w.get(p + 'mixer.out_proj.weight', [d, I]),
        out_proj_b: w.maybe(p + 'mixer.out_proj.bias', [d]),
      });
    }
    this.normF = w.get('backbone.norm_f.weight', [d]);
    const tied = cfg.tie_word_embeddings ?? true;
    this.lmHead = tied && !w.has('lm_head.weight') ? this.embedMatrix : w.get('lm_head.weight', [V, d]);
    this.numParams = w.count();
  }

  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.gather(this.embedMatrix as tf.Tensor, ids) as tf.Tensor3D;
  }

  /** Causal depthwise conv over time: out[t] = bias + Σ_j w[:, j] · x[t - (K-1) + j], zeros before t = 0. */
  private conv(x: tf.Tensor, L: MambaLayer): tf.Tensor {
    const [B, T, I] = x.shape;
    const K = this.K;
    const padded = tf.pad(x, [
      [0, 0],
      [K - 1, 0],
      [0, 0],
    ]);
    let out: tf.Tensor = L.conv_b ?? tf.zeros([I]);
    for (let j = 0; j < K; j++) {
      const tap = tf.reshape(tf.slice(L.conv_w, [0, 0, j], [I, 1, 1]), [I]);
      out = tf.add(out, tf.mul(tf.slice(padded, [0, j, 0], [B, T, I]), tap));
    }
    return out;
  }

  private mixer(u: tf.Tensor, L: MambaLayer): tf.Tensor {
    const [B, T] = u.shape;
    const { I, N } = this;
    const [xIn, gate] = tf.split(linear(u, L.in_proj, L.in_proj_b), 2, -1);
    const x = silu(this.conv(xIn, L)); // [B, T, I]
    const [dtLow, Bm, Cm] = tf.split(linear(x, L.x_proj), [this.rank, N, N], -1);
    const dt = tf.softplus(linear(dtLow, L.dt_proj, L.dt_proj_b)); // [B, T, I]
    const dt4 = tf.reshape(dt, [B, T, I, 1]);
    const A = tf.neg(tf.exp(L.A_log)); // [I, N]
    const dA = tf.exp(tf.mul(dt4, A)) as tf.Tensor4D; // [B, T, I, N]
    const dBu = tf.mul(tf.mul(dt4, tf.reshape(Bm, [B, T, 1, N])), tf.reshape(x, [B, T, I, 1])) as tf.Tensor4D;
    const y = tf.add(this.scan(dA, dBu, Cm as tf.Tensor3D), tf.mul(x, L.D));
    return linear(tf.mul(y, silu(gate)), L.out_proj, L.out_proj_b);
  }

  forward(inputsEmbeds: tf.Tensor3D): tf.Tensor3D {
    // The scan holds a few [B, T, I, N] fp32 tensors at once (dA, dBu, its partial products).
    const [B, T] = inputsEmbeds.shape;
    const I = this.layers[0]?.D.shape[0] ?? 0;
    const N = this.layers[0]?.A_log.shape[1] ?? 0;
    assertFitsMemory(3 * 4 * B * T * I * N, `mamba forward on ${B}×${T} positions`);
    return tf.tidy(() => {
      let h: tf.Tensor = inputsEmbeds;
      for (const L of this.layers) h = tf.add(h, this.mixer(rmsNorm(h, L.norm, this.eps), L));
      return linear(rmsNorm(h, this.normF, this.eps), this.lmHead) as tf.Tensor3D;
    });
  }

  dispose(): void {
    const all = new Set<tf.Tensor>([this.embedMatrix, this.normF, this.lmHead]);
    for (const L of this.layers) for (const t of Object.values(L)) if (t) all.add(t);
    for (const t of all) t.dispose();
  }
}
