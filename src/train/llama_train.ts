// Llama's forward pass written against its HF-named parameters, for training only.
// The inference class (src/models/llama.ts) may fold norms and projections into fused tensors
// for speed, which gradients cannot flow back through to the checkpoint's own weights; this is
// the same math, unfused (HF modeling_llama), so tf.variableGrads reaches every named tensor.
// test/train.test.ts checks it gives the inference class's logits.
import * as tf from '@tensorflow/tfjs-core';

export type Params = Map<string, tf.Tensor>;

function rms(x: tf.Tensor, g: tf.Tensor, eps: number): tf.Tensor {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), g);
}

/** x [..., in] · W^T for an HF Linear weight W [out, in]. */
function lin(x: tf.Tensor, W: tf.Tensor): tf.Tensor {
  const shape = x.shape;
  const y = tf.matMul(tf.reshape(x, [-1, shape[shape.length - 1]]), W, false, true);
  return tf.reshape(y, [...shape.slice(0, -1), W.shape[0]]);
}

/** cos/sin [T, D] in HF's rotate-half layout. */
function rope(T: number, D: number, theta: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const cos = new Float32Array(T * D);
  const sin = new Float32Array(T * D);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < D / 2; i++) {
      const a = Math.fround(t * Math.fround(1 / theta ** ((2 * i) / D)));
      cos[t * D + i] = cos[t * D + i + D / 2] = Math.cos(a);
      sin[t * D + i] = sin[t * D + i + D / 2] = Math.sin(a);
    }
  }
  return { cos: tf.tensor2d(cos, [T, D]), sin: tf.tensor2d(sin, [T, D]) };
}

/** [B, H, T, D]: x·cos + rotate_half(x)·sin, rotate_half(x) = [-x2, x1]. */
function applyRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const D = x.shape[3]!;
  const [x1, x2] = tf.split(x, [D / 2, D / 2], 3);
  return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2), x1], 3), sin));
}

/** Logits [B, T, V] for input embeddings [B, T, d]. */
export function llamaTrainForward(cfg: Record<string, any>, p: Params, x: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, T, d] = x.shape;
    const H = cfg.num_attention_heads;
    const Hkv = cfg.num_key_value_heads ?? H;
    const D = cfg.head_dim ?? d / H;
    const eps = cfg.rms_norm_eps ?? 1e-6;
    const { cos, sin } = rope(T, D, cfg.rope_theta ?? 10000);
    const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9);
    const heads = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [B, T, n, D]), [0, 2, 1, 3]);
    const repeat = (t: tf.Tensor) => (H === Hkv ? t : tf.reshape(tf.tile(tf.reshape(t, [B * Hkv, 1, T, D]), [1, H / Hkv, 1, 1]), [B, H, T, D]));
    let h: tf.Tensor = x;
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const w = (n: string) => p.get(`model.layers.${i}.${n}`)!;
      const a = rms(h, w('input_layernorm.weight'), eps);
      const q = applyRope(heads(lin(a, w('self_attn.q_proj.weight')), H), cos, sin);
      const k = repeat(applyRope(heads(lin(a, w('self_attn.k_proj.weight')), Hkv), cos, sin));
      const v = repeat(heads(lin(a, w('self_attn.v_proj.weight')), Hkv));
      const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D)), mask);
      const att = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), v), [0, 2, 1, 3]), [B, T, H * D]);
      h = tf.add(h, lin(att, w('self_attn.o_proj.weight')));
      const m = rms(h, w('post_attention_layernorm.weight'), eps);
      const gate = lin(m, w('mlp.gate_proj.weight'));
      h = tf.add(h, lin(tf.mul(tf.mul(gate, tf.sigmoid(gate)), lin(m, w('mlp.up_proj.weight'))), w('mlp.down_proj.weight')));
    }
    const head = p.get('lm_head.weight') ?? p.get('model.embed_tokens.weight')!;
    return lin(rms(h, p.get('model.norm.weight')!, eps), head) as tf.Tensor3D;
  });
}
