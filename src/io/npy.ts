// NumPy .npy (format 1.0): a float32 array any Python reads with np.load, no pickle.
import * as fs from 'node:fs';

/** The bytes of a C-order little-endian float32 .npy holding `data` of `shape`. */
export function npyBytes(data: Float32Array, shape: number[]): Buffer {
  if (shape.reduce((a, b) => a * b, 1) !== data.length)
    throw new Error(`npy: ${data.length} values do not fill shape [${shape}]`);
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64, ending in \n.
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

export function writeNpy(file: string, data: Float32Array, shape: number[]): void {
  fs.writeFileSync(file, npyBytes(data, shape));
}
