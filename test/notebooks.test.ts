// The workbook runs: every notebook in notebooks/ is executed headless through the tslab kernel
// at CRAMLAB_BUDGET=ci (unless set otherwise) and must finish with no error output and at least
// one Plotly figure with data. Needs the kernel: scripts/setup-jupyter.sh registers it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { checkExecuted, kernelProblem, runNotebook, unlabelledSmoke } from '../scripts/run-notebooks';
import { currentStamp, staleness } from '../scripts/notebook-stamp';
import { DEFAULT_BUDGET, SMOKE_TEST } from '../src/workbook/budget';

const ROOT = path.join(__dirname, '..');
const NOTEBOOKS = fs
  .readdirSync(path.join(ROOT, 'notebooks'))
  .filter((f) => /^\d\d-.*\.ipynb$/.test(f))
  .sort();
const OUT = path.join(ROOT, 'runs', 'notebooks', process.env.CRAMLAB_BUDGET ?? 'ci');

test('the runner flags failed cells, error outputs and notebooks without a figure', () => {
  const fig = {
    output_type: 'display_data',
    data: { 'application/vnd.plotly.v1+json': { data: [{ type: 'scatter', x: [1], y: [2] }], layout: {} } },
  };
  const ok = { cells: [{ cell_type: 'code', source: 'x', metadata: {}, outputs: [fig] }] };
  assert.deepEqual(checkExecuted(ok), { problems: [], plotlyFigures: 1 });
  const failed = {
    cells: [
      {
        cell_type: 'code',
        source: 'bad()',
        metadata: { cramlab_error: 'error' },
        outputs: [{ output_type: 'stream', name: 'stderr', text: '1:1 - Cannot find name bad.' }, fig],
      },
    ],
  };
  assert.match(checkExecuted(failed).problems.join('\n'), /cell 1 \(bad\(\)\) failed: 1:1 - Cannot find name bad\./);
  const errOut = {
    cells: [
      {
        cell_type: 'code',
        source: 'y',
        metadata: {},
        outputs: [{ output_type: 'error', ename: 'TypeError', evalue: 'boom', traceback: [] }, fig],
      },
    ],
  };
  assert.match(checkExecuted(errOut).problems[0], /TypeError: boom/);
  const empty = {
    cells: [
      {
        cell_type: 'code',
        source: 'z',
        metadata: {},
        outputs: [
          { output_type: 'display_data', data: { 'application/vnd.plotly.v1+json': { data: [{ x: [], y: [] }] } } },
        ],
      },
    ],
  };
  assert.deepEqual(checkExecuted(empty).problems, ['no Plotly figure with data in the outputs']);
  // A ci run's figure titles and tables carry the smoke-test label.
  const table = { output_type: 'display_data', data: { 'text/html': '<table></table>' } };
  const label = { output_type: 'display_data', data: { 'text/markdown': `*${SMOKE_TEST}*` } };
  const smokeFig = structuredClone(fig);
  (smokeFig.data['application/vnd.plotly.v1+json'] as any).layout = { title: { text: `${SMOKE_TEST}<br>N` } };
  const nb = (outputs: object[]) => ({ cells: [{ cell_type: 'code', source: 'x', metadata: {}, outputs }] });
  assert.deepEqual(unlabelledSmoke(nb([label, table, smokeFig])), []);
  assert.deepEqual(unlabelledSmoke(nb([table, fig])), [
    'cell 1: a table without the smoke-test label',
    "cell 1: figure ''",
  ]);
});

test('the committed notebooks use the tslab kernel and are current with the code and data they import', () => {
  assert.ok(NOTEBOOKS.length >= 7, `expected notebooks 00..06, found ${NOTEBOOKS.join(', ')}`);
  // Cheap (no execution): each notebook's stamp hashes its cells, the src/ files it imports, native/src,
  // datasets/ and models/; a change to any of them since `npm run notebooks:commit` fails here.
  const stale = NOTEBOOKS.map((f) => {
    const nb = JSON.parse(fs.readFileSync(path.join(ROOT, 'notebooks', f), 'utf8'));
    assert.equal(nb.metadata.kernelspec.name, 'tslab', `${f}: kernel`);
    return staleness(path.join(ROOT, 'notebooks', f), DEFAULT_BUDGET, nb);
  }).filter(Boolean);
  assert.deepEqual(stale, [], stale.join('\n'));
});

test('a stale notebook is named with what changed and the command that regenerates it', () => {
  const file = path.join(ROOT, 'notebooks', NOTEBOOKS[0]);
  const nb = JSON.parse(fs.readFileSync(file, 'utf8'));
  const stamp = currentStamp(file, DEFAULT_BUDGET, nb);
  assert.equal(staleness(file, DEFAULT_BUDGET, { ...nb, metadata: { ...nb.metadata, cramlab: stamp } }), undefined);
  const rel = `notebooks/${NOTEBOOKS[0]}`;
  const edited = structuredClone(nb);
  edited.metadata.cramlab = stamp;
  edited.cells.find((c: any) => c.cell_type === 'code').source.push('\n// an edit');
  assert.equal(
    staleness(file, DEFAULT_BUDGET, edited),
    `${rel} is stale: its cells changed since its outputs were made; run npm run notebooks:commit -- ${rel}`,
  );
  // The cells import src/: a change there (here: an older hash of the backend) is named.
  assert.ok(stamp.files['src/backend.ts'], 'the stamp covers the src/ files the cells import');
  const older = { ...stamp, inputs: 'x', files: { ...stamp.files, 'src/backend.ts': '0000000000000000' } };
  assert.match(
    staleness(file, DEFAULT_BUDGET, { ...nb, metadata: { ...nb.metadata, cramlab: older } })!,
    /^notebooks\/\S+ is stale: src\/backend\.ts changed since its outputs were made; run npm run notebooks:commit -- /,
  );
  assert.match(
    staleness(file, DEFAULT_BUDGET, { ...nb, metadata: { ...nb.metadata, cramlab: { ...stamp, budget: 'ci' } } })!,
    /holds outputs of the 'ci' budget, not the default 'interactive'/,
  );
  assert.match(staleness(file, DEFAULT_BUDGET, { ...nb, metadata: {} })!, /has no committed outputs/);
  // Outputs are not inputs: a regeneration that printed other numbers is still current.
  const rerun = structuredClone(nb);
  rerun.metadata.cramlab = stamp;
  for (const c of rerun.cells) if (c.cell_type === 'code') c.outputs = [];
  assert.equal(staleness(file, DEFAULT_BUDGET, rerun), undefined);
});

test('committed outputs: a PNG beside each Plotly figure, no inlined plotly.js, no machine paths or clocks, under 1 MB', () => {
  const home = os.homedir();
  for (const f of NOTEBOOKS) {
    const raw = fs.readFileSync(path.join(ROOT, 'notebooks', f), 'utf8');
    assert.ok(raw.length < 1 << 20, `${f}: ${(raw.length / 1024).toFixed(0)} KiB`);
    for (const p of [ROOT, home, os.tmpdir() + '/']) assert.ok(!raw.includes(p), `${f} mentions ${p}`);
    const nb = JSON.parse(raw);
    let figures = 0;
    for (const c of nb.cells) {
      if (c.cell_type !== 'code') continue;
      assert.deepEqual(Object.keys(c.metadata), [], `${f}: cell metadata (timings) left in`);
      for (const o of c.outputs) {
        if (o.output_type === 'stream')
          assert.doesNotMatch([].concat(o.text).join(''), /steps\/s|\r/, `${f}: a progress rate or redraw left in`);
        if (!o.data?.['application/vnd.plotly.v1+json']) continue;
        figures++;
        assert.equal(o.data['text/html'], undefined, `${f}: a figure's text/html (plotly.js inline) left in`);
        assert.ok(
          !JSON.stringify(o.data).includes('smoke test'),
          `${f}: a smoke-test label in the default budget's outputs`,
        );
        const png = Buffer.from(o.data['image/png'] ?? '', 'base64');
        assert.equal(png.subarray(1, 4).toString(), 'PNG', `${f}: a figure without its PNG`);
      }
    }
    assert.ok(figures >= 1, `${f}: no figure committed`);
  }
});

test('committed outputs: a cell that crams a grid or walks lengths says first how long it can take here', () => {
  let cells = 0;
  for (const f of NOTEBOOKS) {
    const nb = JSON.parse(fs.readFileSync(path.join(ROOT, 'notebooks', f), 'utf8'));
    for (const c of nb.cells) {
      if (c.cell_type !== 'code' || !/wb\.(cramGrid|capacityWalk)\(/.test([].concat(c.source).join(''))) continue;
      const stream = [].concat(c.outputs.find((o: any) => o.output_type === 'stream')?.text ?? []).join('');
      // The estimate comes before the first cram of the cell (model descriptions may precede it).
      const lines = stream.split('\n');
      const firstCram = lines.findIndex((l) => /: cramming \d+ text/.test(l));
      // A cell whose crams were all read back from the run folder (05's walks, done by 03) says nothing.
      if (firstCram < 0 && !/at most about/.test(stream)) continue;
      cells++;
      assert.match(
        lines.slice(0, firstCram < 0 ? lines.length : firstCram).join('\n'),
        new RegExp(
          `at most about \\d+(\\.\\d)? (s|min|h) on this machine at the ${DEFAULT_BUDGET} budget \\(\\d+ (cram|text)`,
        ),
        `${f}: the cell starts without its time estimate`,
      );
    }
  }
  assert.ok(cells >= 5, `cells that cram: ${cells}`);
});

const problem = kernelProblem();
for (const f of NOTEBOOKS) {
  test(`notebook ${f} runs headless with no errors and shows a Plotly figure`, { timeout: 20 * 60_000 }, () => {
    // A missing kernel is a failure, not a skip: CI must run scripts/setup-jupyter.sh first.
    assert.equal(problem, undefined, `${problem}`);
    const rep = runNotebook(path.join(ROOT, 'notebooks', f), OUT);
    console.log(
      `# ${f}: ${rep.seconds.toFixed(0)} s, ${rep.plotlyFigures} Plotly figures, slowest cell ${Math.max(0, ...rep.cellSeconds).toFixed(0)} s`,
    );
    assert.deepEqual(rep.problems, [], `${f}:\n${rep.problems.join('\n')}`);
    assert.ok(rep.plotlyFigures >= 1);
    if ((process.env.CRAMLAB_BUDGET ?? 'ci') === 'ci') {
      // 100 steps cannot show the paper's effects: every figure and table of this run must say so.
      const nb = JSON.parse(fs.readFileSync(path.join(OUT, f), 'utf8'));
      assert.deepEqual(unlabelledSmoke(nb), [], `${f}: not labelled as a smoke test`);
    }
  });
}
