// The workbook runs: every notebook in notebooks/ is executed headless through the tslab kernel
// at CRAMLAB_BUDGET=ci (unless set otherwise) and must finish with no error output and at least
// one Plotly figure with data. Needs the kernel: scripts/setup-jupyter.sh registers it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkExecuted, kernelProblem, runNotebook } from '../scripts/run-notebooks';

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
});

test('the notebooks are clean (no stored outputs) and use the tslab kernel', () => {
  assert.ok(NOTEBOOKS.length >= 7, `expected notebooks 00..06, found ${NOTEBOOKS.join(', ')}`);
  for (const f of NOTEBOOKS) {
    const nb = JSON.parse(fs.readFileSync(path.join(ROOT, 'notebooks', f), 'utf8'));
    assert.equal(nb.metadata.kernelspec.name, 'tslab', `${f}: kernel`);
    for (const c of nb.cells)
      if (c.cell_type === 'code') assert.deepEqual(c.outputs, [], `${f}: committed with outputs`);
  }
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
  });
}
