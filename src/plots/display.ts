// Rendering figures: the MIME bundle a Jupyter kernel sends, standalone HTML pages, and `show()`
// for tslab. Plotly's own MIME type (application/vnd.plotly.v1+json) comes first; a text/html
// fallback draws the same figure with plotly.js, so the output renders in JupyterLab with or
// without the Plotly extension, in VS Code, and in any HTML viewer.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Figure } from './figure';

export const PLOTLY_MIME = 'application/vnd.plotly.v1+json';

let plotlySource: string | undefined;

/** Version of the plotly.js bundle shipped with cramlab (plotly.js-dist). */
export function plotlyVersion(): string {
  return JSON.parse(fs.readFileSync(path.join(plotlyDir(), 'package.json'), 'utf8')).version;
}

function plotlyDir(): string {
  return path.dirname(require.resolve('plotly.js-dist/package.json'));
}

/**
 * plotly.js source, minified with esbuild when it is there (10 MB → 5 MB; esbuild comes with tsx).
 * The minified copy is cached in the temp folder, since minifying takes seconds.
 */
export function plotlyJs(): string {
  if (plotlySource) return plotlySource;
  const cached = path.join(os.tmpdir(), `cramlab-plotly-${plotlyVersion()}.min.js`);
  if (fs.existsSync(cached)) return (plotlySource = fs.readFileSync(cached, 'utf8'));
  const src = fs.readFileSync(path.join(plotlyDir(), 'plotly.js'), 'utf8');
  try {
    plotlySource = require('esbuild').transformSync(src, { minify: true, legalComments: 'inline' }).code as string;
    const tmp = `${cached}.${process.pid}`;
    fs.writeFileSync(tmp, plotlySource!);
    fs.renameSync(tmp, cached); // atomic: parallel kernels never read half a file
  } catch {
    plotlySource = src;
  }
  return plotlySource!;
}

/**
 * plotly.js as an inline <script> that always defines window.Plotly: the bundle is UMD, and in a page
 * with require.js (classic Jupyter) it would register an AMD module instead, so hide define/module.
 */
export function plotlyScriptTag(): string {
  const code = plotlyJs().replace(/<\/script/gi, '<\\/script');
  return `<script type="text/javascript">if(!window.Plotly){(function(define,module,exports){${code}\n}).call(window);}</script>`;
}

export function cdnUrl(): string {
  return `https://cdn.plot.ly/plotly-${plotlyVersion()}.min.js`;
}

let divCounter = 0;

/**
 * The HTML that draws `fig` inside a notebook output. `plotly`: 'inline' puts plotly.js in this
 * output, 'wait' expects an earlier output to have done so (and loads it from the CDN after 3 s if
 * none did, e.g. when only this cell's output survived).
 */
export function figureHtml(fig: Figure, plotly: 'inline' | 'wait' = 'inline'): string {
  const id = `cramlab-plot-${Date.now().toString(36)}-${divCounter++}`;
  const json = JSON.stringify({
    data: fig.data,
    layout: fig.layout,
    config: { responsive: true, ...(fig.config ?? {}) },
  }).replace(/</g, '\\u003c');
  const draw =
    `(function(){var f=${json};function draw(){Plotly.newPlot(${JSON.stringify(id)},f.data,f.layout,f.config);}` +
    `var t=0;(function go(){if(window.Plotly)return draw();if(++t===30){var s=document.createElement('script');s.src=${JSON.stringify(cdnUrl())};document.head.appendChild(s);}` +
    `setTimeout(go,100);})();})();`;
  return `${plotly === 'inline' ? plotlyScriptTag() : ''}<div id="${id}" style="width:${fig.layout.width ?? 760}px;max-width:100%;height:${fig.layout.height ?? 480}px"></div><script type="text/javascript">${draw}</script>`;
}

/** A one-line text description, the text/plain part of the bundle. */
export function figureSummary(fig: Figure): string {
  const title = fig.layout?.title?.text ?? 'figure';
  return `<Plotly figure: ${title}; ${fig.data.length} traces, ${fig.data.reduce((n, t) => n + (t.x?.length ?? 0), 0)} points>`;
}

/** The Jupyter MIME bundle for a figure: Plotly JSON, HTML fallback, plain text. */
export function mimeBundle(fig: Figure, plotly: 'inline' | 'wait' = 'inline'): Record<string, unknown> {
  if (!fig || !Array.isArray(fig.data))
    throw new Error('mimeBundle: not a figure (expected {data: [...], layout: {...}})');
  return {
    [PLOTLY_MIME]: { data: fig.data, layout: fig.layout, config: fig.config ?? {} },
    'text/html': figureHtml(fig, plotly),
    'text/plain': figureSummary(fig),
  };
}

/** A full HTML page for one figure. `plotlySrc`: a script URL/path, or undefined to inline plotly.js. */
export function standaloneHtml(fig: Figure, plotlySrc?: string): string {
  const title = fig.layout?.title?.text ?? 'cramlab figure';
  const lib = plotlySrc
    ? `<script src="${plotlySrc}"></script><script>window.Plotly||document.write('<script src="${cdnUrl()}"><\\/script>')</script>`
    : plotlyScriptTag();
  const json = JSON.stringify({
    data: fig.data,
    layout: fig.layout,
    config: { responsive: true, ...(fig.config ?? {}) },
  }).replace(/</g, '\\u003c');
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${title.replace(/</g, '&lt;')}</title>${lib}</head>
<body style="margin:0;background:white">
<div id="plot" style="width:${fig.layout.width ?? 760}px;height:${fig.layout.height ?? 480}px"></div>
<script>var f=${json};Plotly.newPlot('plot',f.data,f.layout,f.config).then(function(){document.body.setAttribute('data-ready','1');});</script>
</body></html>
`;
}

// ---- tslab ---------------------------------------------------------------------------------

type Writer = (
  content: { data: Record<string, unknown>; metadata: object; transient: object },
  update: boolean,
) => void;

/** The running tslab kernel's display writer, or undefined outside a kernel. */
function kernelWriter(): { write?: Writer; tslab?: any } {
  let tslab: any;
  try {
    tslab = require('tslab'); // inside a tslab kernel this is the kernel's own module
  } catch {
    return {};
  }
  // tslab.display.raw sends one MIME type per output; its jupyter module sends whole bundles.
  const entry = Object.values(require.cache).find((m) => m?.exports === tslab);
  const jupyter = entry ? require.cache[path.join(path.dirname(entry.filename), 'jupyter.js')]?.exports : undefined;
  const write = (jupyter as any)?.lastWriteDisplayData as Writer | null | undefined;
  return { write: write ?? undefined, tslab };
}

let plotlySent = false;

/** Display a MIME bundle in tslab; outside a kernel, print its text/plain part. Returns whether a kernel took it. */
export function displayBundle(bundle: Record<string, unknown>): boolean {
  const { write, tslab } = kernelWriter();
  if (write) {
    write({ data: bundle, metadata: {}, transient: {} }, false);
    return true;
  }
  if (tslab?.display && process.env.JPY_PARENT_PID !== undefined) {
    const html = bundle['text/html'];
    if (typeof html === 'string') tslab.display.html(html);
    else tslab.display.text(String(bundle['text/plain'] ?? ''));
    return true;
  }
  console.log(String(bundle['text/plain'] ?? ''));
  return false;
}

/**
 * Show a figure inline. plotly.js is put in the first figure's output of the session
 * (CRAMLAB_PLOTLY=cdn: never, load it from the CDN instead, keeping notebooks small).
 */
export function show(fig: Figure): void {
  const inline = process.env.CRAMLAB_PLOTLY !== 'cdn' && !plotlySent;
  const shown = displayBundle(mimeBundle(fig, inline ? 'inline' : 'wait'));
  if (shown && inline) plotlySent = true;
}

/** Show HTML (e.g. token-coloured text) with a plain-text fallback. */
export function showHtml(html: string, plain = ''): void {
  displayBundle({ 'text/html': html, 'text/plain': plain || html.replace(/<[^>]+>/g, '') });
}

/** Show Markdown with a plain-text fallback. */
export function showMarkdown(md: string): void {
  displayBundle({ 'text/markdown': md, 'text/plain': md });
}
