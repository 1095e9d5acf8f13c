// src/ imports only go down the pipeline (load → cram → measure → plot): every relative import goes
// to a module of the same or a lower layer below, and no chain of imports between files comes back
// to where it started. A new folder or top-level file must be given a layer here.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const SRC = path.join(__dirname, '..', 'src');

/** Lowest first. A folder of src/ or a file at its top. */
const LAYERS: string[][] = [
  ['math.ts', 'random.ts', 'backend.ts', 'precision.ts'], // numbers (and their storage precisions) and where tensors live
  ['models', 'flops.ts'], // the architectures in tfjs, one file each
  ['native'], // the C engine's wrapper (weights, specs, NativeModel)
  ['io', 'mem-file.ts'], // load: safetensors, Hub, checkpoints, tokenizers, .cram files
  ['generate.ts', 'score.ts', 'decode.ts', 'datasets'], // use a model: decode, score, text sets
  ['cram'], // the optimisation of [mem] vectors (both engines' loops)
  ['metrics'], // measure a crammed text; Table 1
  ['runs', 'train'], // run folders and sweeps; the trainer of the embedded models
  ['plots'], // figures and tables
  ['workbook', 'cli', 'index.ts'], // what notebooks, the CLI and scripts use
];
const layerOf = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The src-relative files a file imports (static, type-only and dynamic imports of relative paths). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)'(\.{1,2}\/[^']+)'/g)) {
    let target = path.resolve(path.dirname(file), m[1]);
    if (fs.existsSync(target + '.ts')) target += '.ts';
    else if (fs.existsSync(path.join(target, 'index.ts'))) target = path.join(target, 'index.ts');
    if (target.startsWith(SRC + path.sep) && target.endsWith('.ts')) out.push(path.relative(SRC, target));
  }
  return out;
}

const unit = (rel: string): string => rel.split(path.sep)[0];
const files = sources(SRC).map((f) => path.relative(SRC, f));
const graph = new Map(files.map((f) => [f, importsOf(path.join(SRC, f))]));

test('every folder and top-level file of src/ has a layer', () => {
  const missing = [...new Set(files.map(unit))].filter((u) => !layerOf.has(u));
  assert.deepEqual(missing, [], `give these a layer in test/layout.test.ts: ${missing.join(', ')}`);
});

test('no import goes up a layer', () => {
  const up: string[] = [];
  for (const [f, deps] of graph) {
    for (const d of deps) if (layerOf.get(unit(d))! > layerOf.get(unit(f))!) up.push(`${f} → ${d}`);
  }
  assert.deepEqual(up, []);
});

test('no circle of imports between files', () => {
  // Tarjan's strongly connected components: any component of more than one file is a circle.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const circles: string[][] = [];
  let n = 0;
  const visit = (v: string): void => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) circles.push(comp.sort());
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);
  assert.deepEqual(circles, []);
  assert.ok(
    graph.size > 50 && [...graph.values()].some((d) => d.length > 3),
    'the import scan found the files and their imports',
  );
});
