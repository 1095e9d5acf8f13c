// Storage precisions of [mem] vectors: what a vector becomes once written at fewer bits.
//   fp32  as optimised
//   bf16  round to nearest even on the top 16 bits (8-bit exponent: never overflows)
//   fp16  round to nearest even (|x| ≥ 65520 → ±Inf: such a vector no longer decodes)
//   int8  per vector: scale = absmax / 127 (float32), q = round(x / scale) ∈ [-127, 127], x' = q · scale
//   int4  the same with 7 levels a side: q ∈ [-7, 7]
// The integer formats store one float32 scale per vector besides the K·d codes (counted in bits()).
export const PRECISIONS = ['fp32', 'bf16', 'fp16', 'int8', 'int4'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** Bits per stored number. */
export const PRECISION_BITS: Record<Precision, number> = { fp32: 32, bf16: 16, fp16: 16, int8: 8, int4: 4 };

const INT_LEVELS: Partial<Record<Precision, number>> = { int8: 127, int4: 7 };

export class PrecisionError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'PrecisionError';
  }
}

export function parsePrecision(s: string, allowed: readonly Precision[] = PRECISIONS): Precision {
  if (!(allowed as readonly string[]).includes(s))
    throw new PrecisionError(`precision '${s}' is not one of ${allowed.join(', ')}`);
  return s as Precision;
}

/** Bits that K vectors of width d take at a precision: K·d codes, plus a float32 scale per vector for int8/int4. */
export function vectorBits(K: number, d: number, p: Precision): number {
  return K * d * PRECISION_BITS[p] + (INT_LEVELS[p] ? 32 * K : 0);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bfloat16 bits of a float32 value (round to nearest even; NaN stays NaN). */
export function bf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if (Number.isNaN(f32[0])) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export const bf16Value = (h: number): number => {
  u32[0] = h << 16;
  return f32[0];
};

/** Round half to even. */
function rint(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** IEEE half bits of a number (round to nearest even, overflow to ±Inf). */
export function f16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a < 2 ** -14) return sign | rint(a / 2 ** -24); // subnormal (rounds up into 0x400 = the smallest normal)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  const m = rint(a / 2 ** (e - 10)); // 1024 ≤ m ≤ 2048
  const [ee, mm] = m === 2048 ? [e + 1, 1024] : [e, m];
  if (ee > 15) return sign | 0x7c00;
  return sign | ((ee + 15) << 10) | (mm - 1024);
}

export function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -24 * f;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Per-vector integer codes and their float32 scales (int8 / int4). */
export function quantise(mem: Float32Array, K: number, p: 'int8' | 'int4'): { codes: Int8Array; scales: Float32Array } {
  const levels = INT_LEVELS[p]!;
  const d = mem.length / K;
  const codes = new Int8Array(mem.length);
  const scales = new Float32Array(K);
  for (let k = 0; k < K; k++) {
    let absmax = 0;
    for (let i = k * d; i < (k + 1) * d; i++) absmax = Math.max(absmax, Math.abs(mem[i]));
    const scale = Math.fround(absmax / levels);
    scales[k] = scale;
    if (scale === 0) continue;
    for (let i = k * d; i < (k + 1) * d; i++) codes[i] = Math.max(-levels, Math.min(levels, rint(mem[i] / scale)));
  }
  return { codes, scales };
}

/** The float32 values integer codes stand for (what a reader of the stored vector gets back). */
export function dequantise(codes: ArrayLike<number>, scales: ArrayLike<number>): Float32Array {
  const K = scales.length;
  const d = codes.length / K;
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = codes[i] * scales[Math.floor(i / d)];
  return out;
}

/** The vectors as they read back after storage at precision p (K rows, row-major). */
export function roundTo(mem: Float32Array, K: number, p: Precision): Float32Array {
  if (!Number.isInteger(K) || K < 1 || mem.length % K !== 0)
    throw new PrecisionError(`${mem.length} values do not make ${K} vectors`);
  switch (p) {
    case 'fp32':
      return Float32Array.from(mem);
    case 'bf16':
      return Float32Array.from(mem, (x) => bf16Value(bf16Bits(x)));
    case 'fp16':
      return Float32Array.from(mem, (x) => f16Value(f16Bits(x)));
    case 'int8':
    case 'int4': {
      const { codes, scales } = quantise(mem, K, p);
      return dequantise(codes, scales);
    }
  }
}

/** Same values, bit for bit (so one decode serves both). */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
