// A text with each token coloured by whether greedy decoding from the mem vectors got it right.
import { escapeHtml } from './charts';

/** HTML: green background for tokens the mem vectors reproduce, red (with the prediction on hover) for misses. */
export function tokenHtml(tokens: string[], correct: boolean[], predicted?: string[]): string {
  if (tokens.length !== correct.length)
    throw new Error(`tokenHtml: ${tokens.length} tokens but ${correct.length} flags`);
  const spans = tokens.map((t, i) => {
    const ok = correct[i];
    const shown = escapeHtml(t).replace(/\n/g, '↵<br>');
    const tip = ok ? `token ${i}` : `token ${i}: got ${escapeHtml(JSON.stringify(predicted?.[i] ?? '?'))}`;
    return `<span title="${tip}" style="background:${ok ? '#c8f0c8' : '#f7c6c6'};border-radius:2px;padding:0 1px;white-space:pre-wrap">${shown}</span>`;
  });
  const n = correct.filter(Boolean).length;
  return `<div style="font-family:monospace;line-height:1.7">${spans.join('')}</div><div style="font-size:small;color:#555">${n}/${tokens.length} tokens reproduced</div>`;
}
