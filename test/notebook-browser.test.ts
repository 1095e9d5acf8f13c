// A notebook as a reader sees it outside Jupyter: notebook 00 executed headless (ci budget), exported
// to HTML with `jupyter nbconvert`, opened in headless Chromium; each Plotly figure must have drawn
// (an SVG with traces, and a screenshot of it that is not blank).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CHROMIUM_ARGS, findChromium } from '../src/plots/render';
import { findPython, jupyterEnv, kernelProblem, runNotebook } from '../scripts/run-notebooks';
import { sharedModel } from './helpers/shared';

const ROOT = path.join(__dirname, '..');

test('notebook 00 exported to HTML draws its Plotly figures in Chromium', { timeout: 900_000 }, async (t) => {
  if (!findChromium()) return t.skip('no Chromium installed (Debian package chromium; .ci/run installs it)');
  const problem = kernelProblem();
  if (problem) return t.skip(problem);
  const s260 = sharedModel('stories260K');
  if (s260.skip) return t.skip(s260.skip); // notebook 00 crams with stories260K
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-nbhtml-'));
  const rep = runNotebook(path.join(ROOT, 'notebooks', '00-quickstart.ipynb'), dir);
  assert.deepEqual(rep.problems, [], 'the notebook ran');
  const ipynb = path.join(dir, '00-quickstart.ipynb');
  const conv = spawnSync(findPython()!, ['-m', 'nbconvert', '--to', 'html', ipynb], {
    encoding: 'utf8',
    env: jupyterEnv(),
  });
  assert.equal(conv.status, 0, conv.stderr);
  const html = path.join(dir, '00-quickstart.html');
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({ executablePath: findChromium(), headless: true, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto('file://' + html);
    await page.waitForSelector('.js-plotly-plot .main-svg', { timeout: 60_000 });
    const plots = await page.$$('.js-plotly-plot');
    assert.ok(plots.length >= 1, 'at least one Plotly figure');
    for (const plot of plots) {
      const traces = await plot.evaluate(
        (el: Element) => el.querySelectorAll('.scatterlayer .trace, .barlayer .trace').length,
      );
      assert.ok(traces >= 1, 'the figure has traces');
      const png: Buffer = await plot.screenshot();
      // Count the screenshot's non-white pixels in the page itself (a canvas decodes the PNG).
      const inked = await page.evaluate(async (b64: string) => {
        const img = new Image();
        img.src = 'data:image/png;base64,' + b64;
        await img.decode();
        const c = document.createElement('canvas');
        c.width = img.width;
        c.height = img.height;
        const ctx = c.getContext('2d')!;
        ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) n++;
        return n / (c.width * c.height);
      }, png.toString('base64'));
      assert.ok(inked > 0.005, `the figure is drawn, not blank (${(100 * inked).toFixed(2)}% inked pixels)`);
    }
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the committed notebooks show every figure as a drawn PNG (what GitHub and classic Notebook display)', async (t) => {
  if (!findChromium()) return t.skip('no Chromium installed (Debian package chromium; .ci/run installs it)');
  const pngs: { where: string; b64: string }[] = [];
  for (const f of fs.readdirSync(path.join(ROOT, 'notebooks')).filter((n) => /^\d\d-.*\.ipynb$/.test(n))) {
    const nb = JSON.parse(fs.readFileSync(path.join(ROOT, 'notebooks', f), 'utf8'));
    nb.cells.forEach((c: any, i: number) =>
      (c.outputs ?? []).forEach((o: any) => {
        if (o.data?.['application/vnd.plotly.v1+json'])
          pngs.push({ where: `${f} cell ${i + 1}`, b64: o.data['image/png'] ?? '' });
      }),
    );
  }
  assert.ok(pngs.length >= 8, `figures in the committed notebooks: ${pngs.length}`);
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({ executablePath: findChromium(), headless: true, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    for (const { where, b64 } of pngs) {
      // Inked share and size of the PNG, decoded by the browser as a reader's would.
      const [inked, width] = await page.evaluate(async (data: string) => {
        const img = new Image();
        img.src = 'data:image/png;base64,' + data;
        try {
          await img.decode();
        } catch {
          return [0, 0];
        }
        const c = document.createElement('canvas');
        c.width = img.width;
        c.height = img.height;
        const ctx = c.getContext('2d')!;
        ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) n++;
        return [n / (c.width * c.height), c.width];
      }, b64);
      assert.ok(width > 100, `${where}: the PNG does not decode`);
      assert.ok(inked > 0.005, `${where}: the PNG is blank (${(100 * inked).toFixed(2)}% inked pixels)`);
    }
  } finally {
    await browser.close();
  }
});
