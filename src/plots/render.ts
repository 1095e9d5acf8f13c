// Standalone HTML → PNG with headless Chromium (Debian's /usr/bin/chromium), driven by playwright-core.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Path of a Chromium binary: CRAMLAB_CHROMIUM, or the usual Debian/Ubuntu places; undefined if none. */
export function findChromium(): string | undefined {
  const candidates = [
    process.env.CRAMLAB_CHROMIUM,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/usr/bin/google-chrome',
  ].filter(Boolean) as string[];
  return candidates.find((p) => fs.existsSync(p));
}

export interface Renderer {
  /** Load an HTML file, wait until Plotly has drawn (body[data-ready]), screenshot the plot. */
  png(htmlFile: string, pngFile: string): Promise<{ traces: number }>;
  close(): Promise<void>;
}

/** One browser for many figures (a launch costs seconds). */
export async function openRenderer(): Promise<Renderer> {
  const executablePath = findChromium();
  if (!executablePath)
    throw new Error(
      'no Chromium found (install Debian chromium or set CRAMLAB_CHROMIUM): PNGs need a headless browser',
    );
  const { chromium } = require('playwright-core');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1000, height: 700 },
  });
  return {
    async png(htmlFile, pngFile) {
      const page = await context.newPage();
      try {
        await page.goto('file://' + path.resolve(htmlFile));
        await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
        const traces = await page.evaluate(
          'document.querySelectorAll(".plot .trace, .barlayer .trace, .scatterlayer .trace").length',
        );
        await (await page.$('#plot'))!.screenshot({ path: pngFile });
        return { traces: Number(traces) };
      } finally {
        await page.close();
      }
    },
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
