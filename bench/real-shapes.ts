// The paper's models at their real shapes: each Hub config.json as published (rope scaling, tying,
// bias flags, vocabularies), a safetensors file in the published dtype with the tensor names and shapes
// the loader reads (src/native/specs.ts: one home for what each architecture's checkpoint holds), and
// seeded random values. No real weights can be had here; speed and memory depend on the shapes only.
// Written once and cached under bench/checkpoints/ (gitignored); a killed write never passes for a model.
//   Values: a seeded xorshift generator, uniform with the std of the init (0.02; embeddings 0.2 so the
//   model is peaked), norms 1, biases 0, Mamba's A_log = log(1..N), D = 1, dt bias -4 (Mamba's init).
//   Generated and written in chunks of ≤ 4M values: a 16 GB file streams to disk in minutes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NATIVE_SPECS } from '../src/native/specs';

export type StoredDtype = 'F32' | 'F16' | 'BF16';

export interface RealShape {
  /** Short name used in row labels and as the cache folder's name. */
  name: string;
  /** The Hub repo whose config.json this is. */
  hub: string;
  dtype: StoredDtype;
  config: Record<string, any>;
  /** Optional tensors the published file holds (the loader decides by their presence: biases, prefixes). */
  present?: string[];
  /** Whether ../shared/bench's torch reference (a Llama) runs it. */
  torch: boolean;
}

const TORCH_DTYPE: Record<StoredDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

const pythia = (hidden: number, layers: number, heads: number) => ({
  architectures: ['GPTNeoXForCausalLM'],
  bos_token_id: 0,
  eos_token_id: 0,
  hidden_act: 'gelu',
  hidden_size: hidden,
  initializer_range: 0.02,
  intermediate_size: 4 * hidden,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 2048,
  model_type: 'gpt_neox',
  num_attention_heads: heads,
  num_hidden_layers: layers,
  rotary_emb_base: 10000,
  rotary_pct: 0.25,
  tie_word_embeddings: false,
  use_cache: true,
  use_parallel_residual: true,
  vocab_size: 50304,
});
const PYTHIA_BIASES = ['gpt_neox.layers.0.attention.query_key_value.bias', 'gpt_neox.layers.0.attention.dense.bias'];

const llama3 = (o: Record<string, any>) => ({
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: 128001,
  hidden_act: 'silu',
  initializer_range: 0.02,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  use_cache: true,
  vocab_size: 128256,
  ...o,
});

/** The bench's real shapes, smallest first (Llama-3.1-8B last: 16 GB). */
export const REAL_SHAPES: RealShape[] = [
  {
    name: 'SmolLM2-135M',
    hub: 'HuggingFaceTB/SmolLM2-135M',
    dtype: 'F32',
    torch: true,
    config: {
      architectures: ['LlamaForCausalLM'],
      attention_bias: false,
      attention_dropout: 0.0,
      bos_token_id: 0,
      eos_token_id: 0,
      hidden_act: 'silu',
      hidden_size: 576,
      initializer_range: 0.041666666666666664,
      intermediate_size: 1536,
      is_llama_config: true,
      max_position_embeddings: 8192,
      mlp_bias: false,
      model_type: 'llama',
      num_attention_heads: 9,
      num_hidden_layers: 30,
      num_key_value_heads: 3,
      pretraining_tp: 1,
      rms_norm_eps: 1e-5,
      rope_interleaved: false,
      rope_scaling: null,
      rope_theta: 100000,
      tie_word_embeddings: true,
      use_cache: true,
      vocab_size: 49152,
    },
  },
  {
    name: 'Pythia-160M',
    hub: 'EleutherAI/pythia-160m',
    dtype: 'F32',
    torch: false,
    config: pythia(768, 12, 12),
    present: PYTHIA_BIASES,
  },
  {
    name: 'Mamba-130m',
    hub: 'state-spaces/mamba-130m-hf',
    dtype: 'F32',
    torch: false,
    config: {
      architectures: ['MambaForCausalLM'],
      bos_token_id: 0,
      conv_kernel: 4,
      eos_token_id: 0,
      expand: 2,
      fused_add_norm: true,
      hidden_act: 'silu',
      hidden_size: 768,
      initializer_range: 0.1,
      intermediate_size: 1536,
      layer_norm_epsilon: 1e-5,
      model_type: 'mamba',
      n_layer: 24,
      num_hidden_layers: 24,
      pad_token_id: 0,
      rescale_prenorm_residual: false,
      residual_in_fp32: true,
      rms_norm: true,
      state_size: 16,
      time_step_floor: 0.0001,
      time_step_init_scheme: 'random',
      time_step_max: 0.1,
      time_step_min: 0.001,
      time_step_rank: 48,
      time_step_scale: 1.0,
      use_bias: false,
      use_cache: true,
      use_conv_bias: true,
      vocab_size: 50280,
    },
    present: ['backbone.layers.0.mixer.conv1d.bias'],
  },
  {
    name: 'OPT-350m',
    hub: 'facebook/opt-350m',
    dtype: 'F16',
    torch: false,
    config: {
      activation_dropout: 0.0,
      activation_function: 'relu',
      architectures: ['OPTForCausalLM'],
      attention_dropout: 0.0,
      bos_token_id: 2,
      do_layer_norm_before: false,
      dropout: 0.1,
      eos_token_id: 2,
      ffn_dim: 4096,
      hidden_size: 1024,
      init_std: 0.02,
      layerdrop: 0.0,
      max_position_embeddings: 2048,
      model_type: 'opt',
      num_attention_heads: 16,
      num_hidden_layers: 24,
      pad_token_id: 1,
      prefix: '</s>',
      use_cache: true,
      vocab_size: 50272,
      word_embed_proj_dim: 512,
    },
    present: [
      'model.decoder.embed_tokens.weight',
      'model.decoder.layers.0.self_attn.q_proj.bias',
      'model.decoder.layers.0.self_attn_layer_norm.weight',
    ],
  },
  {
    name: 'Pythia-410M',
    hub: 'EleutherAI/pythia-410m',
    dtype: 'F16',
    torch: false,
    config: pythia(1024, 24, 16),
    present: PYTHIA_BIASES,
  },
  {
    name: 'OLMo-1B',
    hub: 'allenai/OLMo-1B-hf',
    dtype: 'F32',
    torch: false,
    config: {
      architectures: ['OlmoForCausalLM'],
      attention_bias: false,
      attention_dropout: 0.0,
      clip_qkv: null,
      eos_token_id: 50279,
      hidden_act: 'silu',
      hidden_size: 2048,
      initializer_range: 0.02,
      intermediate_size: 8192,
      max_position_embeddings: 2048,
      model_type: 'olmo',
      num_attention_heads: 16,
      num_hidden_layers: 16,
      num_key_value_heads: 16,
      pad_token_id: 1,
      pretraining_tp: 1,
      rope_scaling: null,
      rope_theta: 10000.0,
      tie_word_embeddings: true,
      use_cache: true,
      vocab_size: 50304,
    },
  },
  {
    name: 'Llama-3.2-1B',
    hub: 'meta-llama/Llama-3.2-1B',
    dtype: 'BF16',
    torch: true,
    config: llama3({
      head_dim: 64,
      hidden_size: 2048,
      intermediate_size: 8192,
      num_attention_heads: 32,
      num_hidden_layers: 16,
      num_key_value_heads: 8,
      rope_scaling: {
        factor: 32.0,
        high_freq_factor: 4.0,
        low_freq_factor: 1.0,
        original_max_position_embeddings: 8192,
        rope_type: 'llama3',
      },
      tie_word_embeddings: true,
    }),
  },
  {
    name: 'Pythia-1.4B',
    hub: 'EleutherAI/pythia-1.4b',
    dtype: 'F16',
    torch: false,
    config: pythia(2048, 24, 16),
    present: PYTHIA_BIASES,
  },
  {
    name: 'Llama-3.1-8B',
    hub: 'meta-llama/Llama-3.1-8B',
    dtype: 'BF16',
    torch: true,
    config: llama3({
      hidden_size: 4096,
      intermediate_size: 14336,
      num_attention_heads: 32,
      num_hidden_layers: 32,
      num_key_value_heads: 8,
      rope_scaling: {
        factor: 8.0,
        high_freq_factor: 4.0,
        low_freq_factor: 1.0,
        original_max_position_embeddings: 8192,
        rope_type: 'llama3',
      },
      tie_word_embeddings: false,
    }),
  },
];

export function realShape(name: string): RealShape {
  const s = REAL_SHAPES.find((r) => r.name.toLowerCase() === name.toLowerCase());
  if (!s) throw new Error(`no real shape '${name}' (known: ${REAL_SHAPES.map((r) => r.name).join(', ')})`);
  return s;
}

/** The config.json written: the Hub's, with torch_dtype saying what the file holds. */
export const configOf = (s: RealShape) => ({ ...s.config, torch_dtype: TORCH_DTYPE[s.dtype] });

/** Every tensor of the published file with its shape, in the loader's names. */
export function tensorShapes(s: RealShape): Record<string, number[]> {
  const spec = NATIVE_SPECS[s.config.model_type];
  if (!spec) throw new Error(`no tensor list for model_type '${s.config.model_type}'`);
  const present = new Set(s.present ?? []);
  return spec.tensors(s.config, (n) => present.has(n));
}

const BYTES: Record<StoredDtype, number> = { F32: 4, F16: 2, BF16: 2 };
const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export function paramCount(s: RealShape): number {
  return Object.values(tensorShapes(s)).reduce((a, sh) => a + count(sh), 0);
}

/** The file's size in bytes (header aside). */
export const dataBytes = (s: RealShape) => paramCount(s) * BYTES[s.dtype];

type Fill = { kind: 'normal'; std: number } | { kind: 'const'; value: number } | { kind: 'alog'; N: number };

function fillOf(name: string, shape: number[]): Fill {
  if (/(^|\.)(embed_tokens|embed_in|embeddings|embed_out|lm_head)\.weight$/.test(name))
    return { kind: 'normal', std: 0.2 };
  if (/mixer\.A_log$/.test(name)) return { kind: 'alog', N: shape[1] };
  if (/mixer\.D$/.test(name)) return { kind: 'const', value: 1 };
  if (/dt_proj\.bias$/.test(name)) return { kind: 'const', value: -4 };
  if (/\.bias$/.test(name)) return { kind: 'const', value: 0 };
  if (/norm[^.]*\.weight$|norm_f\.weight$/.test(name)) return { kind: 'const', value: 1 };
  return { kind: 'normal', std: 0.02 };
}

/** float32 bits → IEEE half bits (round toward zero; values below half's normal range become 0). */
function halfBits(f32: number): number {
  const sign = (f32 >>> 16) & 0x8000;
  const e = ((f32 >>> 23) & 0xff) - 112;
  if (e <= 0) return sign;
  if (e >= 31) return sign | 0x7bff;
  return sign | (e << 10) | ((f32 >>> 13) & 0x3ff);
}

/** Fill `out` (float32 values, their bits in `bits`) with values first..first+n of a tensor. */
function generate(fill: Fill, out: Float32Array, n: number, first: number, state: { s: number }): void {
  if (fill.kind === 'const') out.fill(fill.value, 0, n);
  else if (fill.kind === 'alog') for (let i = 0; i < n; i++) out[i] = Math.log(1 + ((first + i) % fill.N));
  else {
    // uniform on [-a, a] with std a/√3: cheap, and the shapes are what the bench measures
    const a = fill.std * Math.sqrt(3);
    const scale = (2 * a) / 4294967296;
    let s = state.s;
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      out[i] = (s >>> 0) * scale - a;
    }
    state.s = s;
  }
}

/** FNV-1a of a name: each tensor's own seed, so files do not depend on the tensor order. */
function seedOf(name: string, seed: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0 || 1;
}

const CHUNK = 1 << 22;

/** Write a random checkpoint of `s` as an HF folder (config.json + model.safetensors), streamed. */
export function writeRealShape(s: RealShape, dir: string, seed = 0): void {
  fs.mkdirSync(dir, { recursive: true });
  const shapes = tensorShapes(s);
  const names = Object.keys(shapes).sort();
  const width = BYTES[s.dtype];
  const header: Record<string, unknown> = {
    __metadata__: { format: 'pt', cramlab: 'random init (bench/real-shapes.ts)' },
  };
  let offset = 0;
  for (const name of names) {
    const nbytes = count(shapes[name]) * width;
    header[name] = { dtype: s.dtype, shape: shapes[name], data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const fd = fs.openSync(path.join(dir, 'model.safetensors'), 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    fs.writeSync(fd, len);
    fs.writeSync(fd, Buffer.from(json, 'utf8'));
    const f32 = new Float32Array(CHUNK);
    const u32 = new Uint32Array(f32.buffer);
    const u16 = new Uint16Array(CHUNK);
    for (const name of names) {
      const total = count(shapes[name]);
      const fill = fillOf(name, shapes[name]);
      const state = { s: seedOf(name, seed) };
      for (let first = 0; first < total; first += CHUNK) {
        const n = Math.min(CHUNK, total - first);
        generate(fill, f32, n, first, state);
        if (s.dtype === 'F32') fs.writeSync(fd, new Uint8Array(f32.buffer, 0, 4 * n));
        else {
          if (s.dtype === 'BF16') for (let i = 0; i < n; i++) u16[i] = u32[i] >>> 16;
          else for (let i = 0; i < n; i++) u16[i] = halfBits(u32[i]);
          fs.writeSync(fd, new Uint8Array(u16.buffer, 0, 2 * n));
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(configOf(s), null, 2));
}

export const CHECKPOINTS = path.resolve(__dirname, 'checkpoints');

/** The cached folder of `s` (bench/checkpoints/<name>), or where it would be. */
export const realShapeDir = (s: RealShape, root = CHECKPOINTS) => path.join(root, s.name);

export const isCached = (s: RealShape, root = CHECKPOINTS) =>
  fs.existsSync(path.join(realShapeDir(s, root), 'model.safetensors')) &&
  fs.existsSync(path.join(realShapeDir(s, root), 'config.json'));

/** The cached checkpoint folder, written first when missing (whole or not at all). */
export function realCheckpoint(s: RealShape, root = CHECKPOINTS, log: (m: string) => void = () => {}): string {
  const dir = realShapeDir(s, root);
  if (isCached(s, root)) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const t0 = performance.now();
  log(`writing ${s.name} (${s.dtype}, ${(dataBytes(s) / 1e9).toFixed(2)} GB) to ${dir}`);
  try {
    writeRealShape(s, tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  log(`wrote ${s.name} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return dir;
}

/** Why `s` cannot be written here ('' when it can): the free disk under root. */
export function diskShortfall(s: RealShape, root = CHECKPOINTS): string {
  if (isCached(s, root)) return '';
  fs.mkdirSync(root, { recursive: true });
  const st = fs.statfsSync(root);
  const free = st.bavail * st.bsize;
  const need = dataBytes(s) * 1.02;
  return need > free
    ? `needs ${(need / 1e9).toFixed(1)} GB of disk for its checkpoint, ${(free / 1e9).toFixed(1)} GB free under ${root}`
    : '';
}

/** The same architecture and config fields at a toy size (2 layers, d 64, vocab 512): every real-shape
 *  row's code path in seconds (bench --real-tiny, the tests). */
export function tinyShape(s: RealShape): RealShape {
  const c: Record<string, any> = { ...s.config, hidden_size: 64, num_hidden_layers: 2, vocab_size: 512 };
  const set = (k: string, v: number) => k in c && (c[k] = v);
  set('intermediate_size', 128);
  set('num_attention_heads', 4);
  set('num_key_value_heads', c.model_type === 'llama' ? 2 : 4);
  set('head_dim', 16);
  set('ffn_dim', 128);
  set('word_embed_proj_dim', 32);
  set('time_step_rank', 4);
  set('n_layer', 2);
  for (const k of ['bos_token_id', 'eos_token_id', 'pad_token_id'])
    if (c[k] >= 512) c[k] = k === 'bos_token_id' ? 1 : 2;
  return { ...s, name: `${s.name}~tiny`, config: c };
}
