// Loopback helpers for tests that need "no Hub here".
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback port nothing listens on: connecting is refused, as with no network. (Ports such as 1
 * or 9 are ones fetch refuses outright, 'bad port', which is not being offline.)
 */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
