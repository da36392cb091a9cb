/**
 * Mermaid in the browser: rendering `.mmd` text to SVG with `@mermaid-js/mermaid-cli`'s `renderMermaid`
 * (the function behind `mmdc`, given one shared browser instead of starting one per diagram), and
 * parsing it with Mermaid's own parser (`mermaid.parse`) in a page of that same browser — Mermaid's
 * parser needs a DOM, so it does not run in plain Node.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { renderMermaid } from '@mermaid-js/mermaid-cli';
import type { Browser, Page } from 'puppeteer';
import { sourceHash, stampSvg } from './svgStamp.js';

/** The SVG of one `.mmd`, stamped with the hash of that text (see ./svgStamp.ts). */
export async function renderSvg(browser: Browser, mmd: string, svgId: string): Promise<string> {
  const { data } = await renderMermaid(browser, mmd, 'svg', { backgroundColor: 'white', svgId });
  return stampSvg(withStableIds(new TextDecoder().decode(data)), sourceHash(mmd)) + '\n';
}

/**
 * Mermaid 11 names the last region of a parallel state with `generateId()`:
 * `"id-" + Math.random().toString(36).substr(2, 12) + "-" + counter`, the one random thing left once the
 * front matter fixes `handDrawnSeed` and `deterministicIds`. The counter alone is unique within a page
 * (and every diagram gets a fresh page), so the random part is dropped: `id-k3j9x0q2mz-5` → `id-5`.
 */
export function withStableIds(svg: string): string {
  return svg.replace(/\bid-[0-9a-z]{6,12}-(\d+)\b/g, 'id-$1');
}

/** Render many diagrams, at most `parallel` pages at a time, results in input order. */
export async function renderAll(
  browser: Browser,
  jobs: readonly { readonly name: string; readonly mmd: string }[],
  parallel = 2,
): Promise<string[]> {
  const results: string[] = new Array<string>(jobs.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < jobs.length; i = next++) {
      const job = jobs[i]!;
      try {
        results[i] = await renderSvg(browser, job.mmd, job.name);
      } catch (e) {
        throw new Error(`rendering ${job.name} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, jobs.length)) }, worker));
  return results;
}

export type ParseResult = { readonly ok: true; readonly diagramType: string } | { readonly ok: false; readonly error: string };

/** A browser page with Mermaid loaded, for parsing many diagrams. */
export interface MermaidParser {
  parse(mmd: string): Promise<ParseResult>;
  close(): Promise<void>;
}

/** The path of Mermaid's browser bundle — the same Mermaid `mmdc` renders with. */
export function mermaidBundlePath(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('mermaid/package.json')), 'dist', 'mermaid.min.js');
}

/** Open a page in `browser` with Mermaid loaded and initialised. */
export async function openParser(browser: Browser): Promise<MermaidParser> {
  const page: Page = await browser.newPage();
  await page.setContent('<!doctype html><html><body><div id="container"></div></body></html>');
  await page.addScriptTag({ path: mermaidBundlePath() });
  await page.evaluate(() => {
    (globalThis as unknown as { mermaid: { initialize(c: object): void } }).mermaid.initialize({ startOnLoad: false });
  });
  return {
    parse: (mmd) =>
      page.evaluate(async (text: string): Promise<ParseResult> => {
        const mermaid = (globalThis as unknown as { mermaid: { parse(t: string): Promise<{ diagramType: string }> } }).mermaid;
        try {
          const r = await mermaid.parse(text);
          return { ok: true, diagramType: r.diagramType };
        } catch (e) {
          return { ok: false, error: e instanceof Error ? e.message : String(e) };
        }
      }, mmd),
    close: () => page.close(),
  };
}
