// A .cram file out to Python: the [mem] vectors as .npy or plain safetensors (never a pickle), with a
// JSON sidecar holding what decoding needs (first token id, token count, the ids when stored).
import * as fs from 'node:fs';
import { writeSafetensors } from '../../io/safetensors';
import { writeNpy } from '../../io/npy';
import { loadMem } from '../../mem-file';
import { str, UsageError, type Args } from '../args';
import { checkOutFile } from '../input';
import type { Command } from '../main';

export const command: Command = {
  name: 'export',
  summary: 'write the vectors of a .cram file as .npy or plain safetensors (+ a .json of first id and token count)',
  usage: 'export FILE.cram --to npy|safetensors [-o OUT]',
  async run(args: Args) {
    const file = args._[0];
    if (!file) throw new UsageError('give the .cram file: export FILE.cram --to npy|safetensors');
    const to = str(args, 'to');
    if (to !== 'npy' && to !== 'safetensors') throw new UsageError(`--to must be npy or safetensors, got '${to}'`);
    const base = file.replace(/\.cram$/, '');
    const out = str(args, 'o', typeof args.out === 'string' ? args.out : `${base}.${to}`);
    const sidecar = out.replace(/\.(npy|safetensors)$/, '') + '.json';
    checkOutFile(out, file);
    checkOutFile(sidecar, file);
    const m = loadMem(file);
    const meta = {
      K: m.K,
      mem_dim: m.memDim,
      tokens: m.tokens,
      first_id: m.firstId,
      model: m.model,
      ids: m.extra?.ids ? JSON.parse(m.extra.ids) : undefined,
    };
    if (to === 'npy') writeNpy(out, m.vectors, [m.K, m.memDim]);
    else
      writeSafetensors(
        out,
        { mem: { shape: [m.K, m.memDim], data: m.vectors } },
        Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])),
      );
    fs.writeFileSync(sidecar, JSON.stringify(meta) + '\n');
    console.log(
      `wrote ${out} (mem, float32 [${m.K}, ${m.memDim}]) and ${sidecar} (first_id ${m.firstId}, tokens ${m.tokens}, model ${m.model})`,
    );
  },
};
