// figures/search-methods.json (scripts/growth-compare.ts) → horizonVsSteps: one line per method through its
// K points, x = steps per text, y = mean horizon, as the notebook 06 cell plots it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { horizonVsSteps, type SearchRow } from '../src/plots';

test('horizonVsSteps: one trace per method, its K points in order, from the committed comparison', () => {
  const file = path.join(__dirname, '..', 'figures', 'search-methods.json');
  const { rows } = JSON.parse(fs.readFileSync(file, 'utf8')) as { rows: SearchRow[] };
  const fig = horizonVsSteps(rows);
  const methods = [...new Set(rows.map((r) => r.method))];
  assert.deepEqual(
    fig.data.map((t) => t.name),
    methods,
  );
  for (const t of fig.data) {
    const rs = rows.filter((r) => r.method === t.name).sort((a, b) => a.K - b.K);
    assert.deepEqual(
      t.x,
      rs.map((r) => r['steps / text']),
    );
    assert.deepEqual(
      t.y,
      rs.map((r) => r['mean horizon']),
    );
    assert.deepEqual(
      t.text,
      rs.map((r) => `K=${r.K}`),
    );
  }
  assert.throws(() => horizonVsSteps([]), /no rows to plot/);
});
