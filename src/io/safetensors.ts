// Safetensors, read defensively and written plainly.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// then raw little-endian row-major data (offsets relative to the data start).
// Every weight is widened to float32: the math in cramlab is fp32 throughout.
import * as fs from 'node:fs';

import type { RawTensor, TensorLocation } from '../models/types';
import { writeFileAtomic } from './write';

export type { RawTensor };

const MAX_HEADER = 100 * 1024 * 1024; // the format's own limit
const DTYPE_BYTES: Record<string, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export class SafetensorsError extends Error {
  constructor(file: string, what: string) {
    super(`${file}: ${what}`);
    this.name = 'SafetensorsError';
  }
}

/** bf16/f16 bits → float32 in native code (the native addon sets it when it loads; else the loops below). */
let halfWidener: ((bits: Uint16Array, dtype: 'BF16' | 'F16') => Float32Array) | undefined;
export function setHalfWidener(f: typeof halfWidener): void {
  halfWidener = f;
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Decode one tensor's bytes into float32 (floats) or int32 (ints). */
function decode(file: string, name: string, dtype: string, bytes: Buffer): Float32Array | Int32Array {
  // F32 already 4-aligned in the file: a view, no second copy of the weights (matters at 100M+ params).
  if (dtype === 'F32' && bytes.byteOffset % 4 === 0)
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  // Otherwise copy into an aligned buffer: the data region need not start at a multiple of 4.
  // (A fresh read's buffer is aligned already: a view, no copy.)
  let buf: Uint8Array = bytes;
  if (bytes.byteOffset % 8 !== 0) {
    buf = new Uint8Array(bytes.length);
    buf.set(bytes);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const n = bytes.length / DTYPE_BYTES[dtype];
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf.buffer, buf.byteOffset, n);
    case 'F16': {
      if (halfWidener) return halfWidener(new Uint16Array(buf.buffer, buf.byteOffset, n), 'F16');
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      if (halfWidener) return halfWidener(new Uint16Array(buf.buffer, buf.byteOffset, n), 'BF16');
      const out = new Float32Array(n);
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u32[i] = dv.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    }
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(8 * i, true));
      return out;
    }
    case 'I32':
      return new Int32Array(buf.buffer, buf.byteOffset, n);
    case 'I16': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
      return out;
    }
    case 'I8':
      return Int32Array.from(new Int8Array(buf.buffer, buf.byteOffset, n));
    case 'U8':
    case 'BOOL':
      return Int32Array.from(buf);
    default:
      throw new SafetensorsError(file, `tensor '${name}' has unsupported dtype '${dtype}'`);
  }
}

export interface SafetensorsHeader {
  tensors: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  metadata: Record<string, string>;
  dataStart: number;
}

/**
 * The top-level keys of a JSON object text, in order, duplicates kept (JSON.parse silently keeps
 * the last of two equal keys, so a header could name one tensor twice). Assumes valid JSON.
 */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, j + 1)));
      expectKey = false;
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = c === '{' && depth === 1;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
  }
  return keys;
}

/**
 * Parse and validate the header against the file size; no tensor data is read. `bytes` is the file's
 * start (at least the length and the header); `size` the whole file's length (default: bytes.length).
 */
export function readHeader(file: string, bytes: Buffer, size = bytes.length): SafetensorsHeader {
  if (size < 8) throw new SafetensorsError(file, `file is ${size} bytes, too short to be safetensors (truncated?)`);
  const n = Number(bytes.readBigUInt64LE(0));
  if (n < 2 || n > MAX_HEADER)
    throw new SafetensorsError(file, `header length ${n} is out of bounds (not a safetensors file?)`);
  if (8 + n > size)
    throw new SafetensorsError(
      file,
      `header says ${n} bytes but the file has only ${size - 8} after the length (truncated?)`,
    );
  if (8 + n > bytes.length)
    throw new SafetensorsError(file, `readHeader: given ${bytes.length} bytes, the header needs ${8 + n}`);
  let json: Record<string, any>;
  try {
    json = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  } catch (e) {
    throw new SafetensorsError(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json))
    throw new SafetensorsError(file, 'header is not a JSON object');
  const keys = topLevelKeys(bytes.subarray(8, 8 + n).toString('utf8'));
  const dup = keys.find((k, i) => keys.indexOf(k) !== i);
  if (dup !== undefined) throw new SafetensorsError(file, `header names '${dup}' twice`);
  const dataStart = 8 + n;
  const dataLen = size - dataStart;
  const tensors: SafetensorsHeader['tensors'] = {};
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = info ?? {};
      continue;
    }
    const { dtype, shape, data_offsets } = info ?? {};
    if (!(dtype in DTYPE_BYTES)) throw new SafetensorsError(file, `tensor '${name}' has unknown dtype '${dtype}'`);
    if (!Array.isArray(shape) || shape.some((s: unknown) => !Number.isInteger(s) || (s as number) < 0)) {
      throw new SafetensorsError(file, `tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(data_offsets) || data_offsets.length !== 2)
      throw new SafetensorsError(file, `tensor '${name}' has no data_offsets`);
    const [begin, end] = data_offsets;
    const expected = shape.reduce((a: number, b: number) => a * b, 1) * DTYPE_BYTES[dtype];
    if (!(Number.isInteger(begin) && Number.isInteger(end) && 0 <= begin && begin <= end)) {
      throw new SafetensorsError(file, `tensor '${name}' has invalid offsets [${begin}, ${end}]`);
    }
    if (end > dataLen)
      throw new SafetensorsError(
        file,
        `tensor '${name}' ends at byte ${end} but the data is ${dataLen} bytes (truncated file?)`,
      );
    if (end - begin !== expected)
      throw new SafetensorsError(
        file,
        `tensor '${name}' holds ${end - begin} bytes but ${dtype}${JSON.stringify(shape)} needs ${expected}`,
      );
    tensors[name] = { dtype, shape, data_offsets: [begin, end] };
  }
  // The tensors must tile the data section exactly: no gap, no overlap, nothing after the last.
  const spans = Object.entries(tensors).sort(
    (a, b) => a[1].data_offsets[0] - b[1].data_offsets[0] || a[1].data_offsets[1] - b[1].data_offsets[1],
  );
  let pos = 0;
  let prev = '';
  for (const [
    name,
    {
      data_offsets: [b, e],
    },
  ] of spans) {
    if (b < pos) throw new SafetensorsError(file, `tensor '${name}' bytes [${b}, ${e}] overlap tensor '${prev}'`);
    if (b > pos)
      throw new SafetensorsError(file, `data bytes [${pos}, ${b}] before tensor '${name}' belong to no tensor`);
    pos = e;
    if (e > b) prev = name;
  }
  if (pos !== dataLen)
    throw new SafetensorsError(file, `data bytes [${pos}, ${dataLen}] after the last tensor belong to no tensor`);
  return { tensors, metadata, dataStart };
}

const CHUNK = 64 * 1024 * 1024; // one read: readSync refuses lengths past 2 GiB, and a chunk bounds the hash's buffer

/** Fill `into` from `fd` at `pos`, in chunks (a short read means the file shrank under us). */
function readFully(file: string, fd: number, into: Uint8Array, pos: number): void {
  for (let done = 0; done < into.length;) {
    const n = fs.readSync(fd, into, done, Math.min(CHUNK, into.length - done), pos + done);
    if (n <= 0)
      throw new SafetensorsError(
        file,
        `file ended at byte ${pos + done} while reading (changed since its header was read?)`,
      );
    done += n;
  }
}

/**
 * One tensor of a file, read on demand: `read()` reads its byte range (F16/BF16 stay 2-byte until
 * widened) and returns fresh float32/int32 values, held by no one; `data` does the same once and keeps
 * the result (for callers that look at it again). Nothing of the file is held between reads.
 */
class LazyTensor implements RawTensor {
  private cached?: Float32Array | Int32Array;
  readonly location: TensorLocation;
  constructor(
    private file: string,
    readonly dtype: string,
    readonly shape: number[],
    private name: string,
    private start: number,
    private end: number,
    private size: number,
  ) {
    this.location = { file, offset: start, size };
  }

  get data(): Float32Array | Int32Array {
    return (this.cached ??= this.read());
  }

  set data(v: Float32Array | Int32Array) {
    this.cached = v;
  }

  read(): Float32Array | Int32Array {
    if (this.cached) return this.cached;
    const fd = openRegular(this.file);
    try {
      const st = fs.fstatSync(fd);
      if (st.size !== this.size)
        throw new SafetensorsError(
          this.file,
          `file is ${st.size} bytes, ${this.size} when its header was read (changed since?)`,
        );
      const nbytes = this.end - this.start;
      if (this.dtype === 'F32') {
        // Straight into the float32 array: no second copy of the bytes.
        const out = new Float32Array(nbytes / 4);
        readFully(this.file, fd, new Uint8Array(out.buffer), this.start);
        return out;
      }
      const bytes = Buffer.allocUnsafeSlow(nbytes);
      readFully(this.file, fd, bytes, this.start);
      return decode(this.file, this.name, this.dtype, bytes);
    } finally {
      fs.closeSync(fd);
    }
  }
}

function streamFd(file: string, fd: number, size: number, onBytes: (bytes: Uint8Array) => void): void {
  const chunk = Buffer.allocUnsafeSlow(Math.min(CHUNK, Math.max(1, size)));
  for (let pos = 0; pos < size;) {
    const n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, size - pos), pos);
    if (n <= 0)
      throw new SafetensorsError(file, `file ended at byte ${pos} while reading (changed since its header was read?)`);
    onBytes(chunk.subarray(0, n));
    pos += n;
  }
}

/** A regular file's bytes, in order, in chunks of at most 64 MiB (hash a file of any size). */
export function streamFile(file: string, onBytes: (bytes: Uint8Array) => void): void {
  const fd = openRegular(file);
  try {
    streamFd(file, fd, fs.fstatSync(fd).size, onBytes);
  } finally {
    fs.closeSync(fd);
  }
}

/** Open a file for reading, refusing anything but a regular file (stat first: opening a FIFO blocks forever). */
function openRegular(file: string): number {
  if (!fs.existsSync(file)) throw new SafetensorsError(file, 'file not found');
  if (!fs.statSync(file).isFile()) throw new SafetensorsError(file, 'not a regular file (a folder, FIFO or device)');
  const fd = fs.openSync(file, 'r');
  if (!fs.fstatSync(fd).isFile()) {
    fs.closeSync(fd);
    throw new SafetensorsError(file, 'not a regular file (a folder, FIFO or device)');
  }
  return fd;
}

/**
 * Every tensor of a file (or only those `want` accepts), each read on first use, one at a time, by
 * its byte range (files past 2 GiB work; the file is never in memory whole). The header is read and
 * checked now.
 */
export function readSafetensors(
  file: string,
  want?: (name: string) => boolean,
): { tensors: Map<string, RawTensor>; metadata: Record<string, string>; header: SafetensorsHeader } {
  const fd = openRegular(file);
  let header: SafetensorsHeader;
  let size: number;
  try {
    size = fs.fstatSync(fd).size;
    const len = Buffer.alloc(Math.min(8, size));
    readFully(file, fd, len, 0);
    let head = len;
    if (size >= 8) {
      const n = Number(len.readBigUInt64LE(0));
      // Read the header only when its length is plausible; readHeader names what is wrong otherwise.
      if (n >= 2 && n <= MAX_HEADER && 8 + n <= size) {
        head = Buffer.alloc(8 + n);
        readFully(file, fd, head, 0);
      }
    }
    header = readHeader(file, head, size);
  } finally {
    fs.closeSync(fd);
  }
  const tensors = new Map<string, RawTensor>();
  for (const [name, info] of Object.entries(header.tensors)) {
    if (want && !want(name)) continue;
    const [b, e] = info.data_offsets;
    tensors.set(
      name,
      new LazyTensor(file, info.dtype, info.shape, name, header.dataStart + b, header.dataStart + e, size),
    );
  }
  return { tensors, metadata: header.metadata, header };
}

/** A tensor to write: F32, I32 and I8 by their arrays; 16-bit floats as raw Uint16Array bits with dtype F16 or BF16. */
export type WriteTensor =
  | { shape: number[]; data: Float32Array | Int32Array | Int8Array }
  | { shape: number[]; data: Uint16Array; dtype: 'F16' | 'BF16' };

const dtypeOf = (t: WriteTensor): string =>
  'dtype' in t ? t.dtype : t.data instanceof Int32Array ? 'I32' : t.data instanceof Int8Array ? 'I8' : 'F32';

/** Write tensors (F32, I32, I8, F16/BF16 bits) with optional string metadata. */
export function writeSafetensors(
  file: string,
  tensors: Record<string, WriteTensor>,
  metadata: Record<string, string> = {},
): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name];
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length)
      throw new Error(`writeSafetensors: '${name}' has ${t.data.length} values for shape ${JSON.stringify(t.shape)}`);
    const nbytes = t.data.byteLength;
    header[name] = {
      dtype: dtypeOf(t),
      shape: t.shape,
      data_offsets: [offset, offset + nbytes],
    };
    offset += nbytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // pad so data starts 8-aligned
  const hbytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + hbytes.length + offset);
  out.writeBigUInt64LE(BigInt(hbytes.length), 0);
  hbytes.copy(out, 8);
  let pos = 8 + hbytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    Buffer.from(d.buffer, d.byteOffset, d.byteLength).copy(out, pos);
    pos += d.byteLength;
  }
  writeFileAtomic(file, out); // a crash or a full disk never leaves half a file under the name
}
