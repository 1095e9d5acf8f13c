// A 32-bit integer arithmetic coder (Witten, Neal & Cleary 1987): bit-level output, with the
// "pending bits" trick for intervals that straddle the middle. Symbols come as cumulative
// frequencies [lo, hi) out of `total`; the caller supplies them identically to both ends.
// All arithmetic is on integers held in doubles: range ≤ 2^32 and total ≤ 2^20, so every
// product stays below 2^53 and is exact; divisions are floored exactly (div below).

const TOP = 2 ** 32 - 1;
const HALF = 2 ** 31;
const QUARTER = 2 ** 30;
/** Largest frequency total the coder takes (range · total < 2^53; total ≤ QUARTER keeps intervals non-empty). */
export const MAX_TOTAL = 2 ** 20;

/** floor(a / b) for non-negative integers below 2^53, exact (the float quotient may round up). */
function div(a: number, b: number): number {
  let q = Math.floor(a / b);
  if (q * b > a) q--;
  else if ((q + 1) * b <= a) q++;
  return q;
}

function checkSymbol(lo: number, hi: number, total: number): void {
  if (!(Number.isInteger(total) && total >= 1 && total <= MAX_TOTAL))
    throw new RangeError(`frequency total must be an integer in [1, ${MAX_TOTAL}], got ${total}`);
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && lo < hi && hi <= total))
    throw new RangeError(`symbol interval [${lo}, ${hi}) is empty or outside [0, ${total})`);
}

export interface ArithCode {
  bytes: Uint8Array;
  /** Bits actually written (the last byte is zero-padded). */
  bits: number;
}

export class ArithEncoder {
  private low = 0;
  private high = TOP;
  private pending = 0;
  private out: number[] = [];
  private bits = 0;

  private emit(bit: number): void {
    this.put(bit);
    for (; this.pending > 0; this.pending--) this.put(1 - bit);
  }

  private put(bit: number): void {
    if (this.bits % 8 === 0) this.out.push(0);
    if (bit) this.out[this.out.length - 1] |= 0x80 >> (this.bits % 8);
    this.bits++;
  }

  /** Narrow the interval to the symbol [lo, hi) of `total`. */
  encode(lo: number, hi: number, total: number): void {
    checkSymbol(lo, hi, total);
    const range = this.high - this.low + 1;
    this.high = this.low + div(range * hi, total) - 1;
    this.low = this.low + div(range * lo, total);
    for (;;) {
      if (this.high < HALF) this.emit(0);
      else if (this.low >= HALF) {
        this.emit(1);
        this.low -= HALF;
        this.high -= HALF;
      } else if (this.low >= QUARTER && this.high < 3 * QUARTER) {
        this.pending++;
        this.low -= QUARTER;
        this.high -= QUARTER;
      } else break;
      this.low = 2 * this.low;
      this.high = 2 * this.high + 1;
    }
  }

  /** Two more bits pick a point inside the final interval, whatever bits a reader finds after them. */
  finish(): ArithCode {
    this.pending++;
    this.emit(this.low < QUARTER ? 0 : 1);
    return { bytes: Uint8Array.from(this.out), bits: this.bits };
  }
}

export class ArithDecoder {
  private low = 0;
  private high = TOP;
  private value = 0;
  private pos = 0;

  constructor(private readonly code: ArithCode) {
    for (let i = 0; i < 32; i++) this.value = 2 * this.value + this.nextBit();
  }

  /** Bits past the end read as 0 (finish() made any continuation decode the same). */
  private nextBit(): number {
    const i = this.pos++;
    if (i >= this.code.bits) return 0;
    return (this.code.bytes[i >> 3] >> (7 - (i & 7))) & 1;
  }

  /** The cumulative frequency the next symbol's interval [lo, hi) contains. */
  target(total: number): number {
    const range = this.high - this.low + 1;
    return div((this.value - this.low + 1) * total - 1, range);
  }

  /** Remove the symbol [lo, hi) that target() pointed into (the encoder's narrowing, mirrored). */
  consume(lo: number, hi: number, total: number): void {
    checkSymbol(lo, hi, total);
    const range = this.high - this.low + 1;
    this.high = this.low + div(range * hi, total) - 1;
    this.low = this.low + div(range * lo, total);
    for (;;) {
      if (this.high < HALF) {
        // nothing to subtract
      } else if (this.low >= HALF) {
        this.value -= HALF;
        this.low -= HALF;
        this.high -= HALF;
      } else if (this.low >= QUARTER && this.high < 3 * QUARTER) {
        this.value -= QUARTER;
        this.low -= QUARTER;
        this.high -= QUARTER;
      } else break;
      this.low = 2 * this.low;
      this.high = 2 * this.high + 1;
      this.value = 2 * this.value + this.nextBit();
    }
  }
}

/**
 * Integer frequencies summing to exactly `total`, every symbol at least 1 (so any symbol can be
 * coded): 1 + floor(p·(total − V)), the few left over go to the most likely symbol.
 */
export function quantise(probs: ArrayLike<number>, total = MAX_TOTAL): Uint32Array {
  const V = probs.length;
  if (2 * V > total)
    throw new RangeError(`a vocabulary of ${V} needs a frequency total of at least ${2 * V}, got ${total}`);
  const freq = new Uint32Array(V);
  let sum = 0;
  let top = 0;
  for (let i = 0; i < V; i++) {
    const p = probs[i];
    freq[i] = 1 + Math.floor((Number.isFinite(p) && p > 0 ? Math.min(p, 1) : 0) * (total - V));
    sum += freq[i];
    if (probs[i] > probs[top]) top = i;
  }
  freq[top] += total - sum;
  return freq;
}

/** Symbol s's interval [lo, hi) in cumulative frequencies. */
export function interval(freq: Uint32Array, s: number): [number, number] {
  let lo = 0;
  for (let i = 0; i < s; i++) lo += freq[i];
  return [lo, lo + freq[s]];
}

/** The symbol whose interval holds cumulative frequency `c`, and that interval. */
export function symbolAt(freq: Uint32Array, c: number): { s: number; lo: number; hi: number } {
  let lo = 0;
  for (let s = 0; s < freq.length; s++) {
    if (c < lo + freq[s]) return { s, lo, hi: lo + freq[s] };
    lo += freq[s];
  }
  throw new RangeError(`cumulative frequency ${c} is beyond the total ${lo}`);
}
