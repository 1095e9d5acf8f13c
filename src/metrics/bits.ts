// Bits, honestly: what a crammed text costs as vectors at the precisions that still decode it
// exactly (exactness.ts), next to what the text costs as UTF-8, under gzip/brotli/xz, and under
// the model's own arithmetic code (compression.ts). The paper's "compression" is a token ratio
// (N / K); the bit ratio divides the text's UTF-8 bits by the vectors' bits.
import type { CausalLM } from '../models/types';
import { PRECISIONS, type Precision } from '../precision';
import { arithEncode, classicBits } from './compression';
import type { Exactness } from './exactness';

export interface TextBits {
  utf8: number;
  gzip: number;
  brotli: number;
  xz: number;
  /** The model's arithmetic code of ids[1..] (ids[0] given, as to mem decoding). */
  arith: number;
  /** Vector bits at each precision that decodes the text exactly (absent: that precision does not). */
  exactVectorBits: Partial<Record<Precision, number>>;
  /** Fewest of those (null: no precision decodes exactly). */
  vectorBits: number | null;
  /** N / K, the paper's "compression". */
  tokenRatio: number;
  /** utf8 / vectorBits (null when no precision decodes exactly). */
  bitRatio: number | null;
}

// The arithmetic code of a text does not depend on K or the vectors: one per model and ids.
const arithCache = new WeakMap<CausalLM, Map<string, number>>();

function arithBits(model: CausalLM, ids: number[]): number {
  let m = arithCache.get(model);
  if (!m) arithCache.set(model, (m = new Map()));
  const key = ids.join(',');
  let bits = m.get(key);
  if (bits === undefined) m.set(key, (bits = arithEncode(model, ids).bits));
  return bits;
}

/** The bits of one record: `text` is what `ids` spell, `x` the exactness of its K vectors. */
export async function textBits(
  model: CausalLM,
  ids: number[],
  text: string,
  K: number,
  x: Exactness,
): Promise<TextBits> {
  const classic = await classicBits(text);
  const utf8 = Buffer.byteLength(text, 'utf8') * 8;
  const exactVectorBits: Partial<Record<Precision, number>> = {};
  for (const p of PRECISIONS) if (x.precisions[p]?.exact) exactVectorBits[p] = x.precisions[p].bits;
  return {
    utf8,
    ...classic,
    arith: arithBits(model, ids),
    exactVectorBits,
    vectorBits: x.exactBits,
    tokenRatio: ids.length / K,
    bitRatio: x.exactBits === null ? null : utf8 / x.exactBits,
  };
}
