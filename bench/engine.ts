// Which engine cram() runs on: the native addon's own word (src/native engineInfo()) when it is
// there, else tfjs. Read in the worker, where cram() runs, and in run.ts for rows whose worker died.
import * as fs from 'node:fs';
import * as path from 'node:path';

export async function engineName(): Promise<string> {
  const native = path.resolve(__dirname, '..', 'src', 'native', 'index.ts');
  if (!fs.existsSync(native)) return 'tfjs';
  try {
    const info = (await import(native)).engineInfo?.();
    return info === undefined ? 'tfjs' : typeof info === 'string' ? info : JSON.stringify(info);
  } catch (e) {
    return `unknown (${(e as Error).message.split('\n')[0]})`;
  }
}
