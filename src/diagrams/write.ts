/**
 * Writes `diagrams/`: every `.mmd`, the SVG of every diagram whose SVG is missing or stale (or of all,
 * with `force`), rendered in one shared browser, and removes `.mmd`/`.svg` files no entry generates.
 * Files whose content would not change are not rewritten.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { diagramPaths, strayFiles } from './check.js';
import type { GeneratedDiagram } from './generate.js';
import { sourceHash, stampOf } from './svgStamp.js';

export interface WriteOptions {
  /** Render every SVG, even those already stamped with their `.mmd`'s hash. */
  readonly force?: boolean;
  /** Diagrams rendered at once (browser pages). Default 2. */
  readonly parallel?: number;
}

export interface WriteReport {
  readonly mmdWritten: readonly string[];
  readonly svgRendered: readonly string[];
  readonly removed: readonly string[];
  /** Browser start, rendering and writing the SVGs (0 when nothing needed rendering). */
  readonly renderSeconds: number;
  readonly launchSeconds: number;
}

async function writeIfChanged(path: string, text: string): Promise<boolean> {
  const old = await readFile(path, 'utf8').catch(() => undefined);
  if (old === text) return false;
  await writeFile(path, text);
  return true;
}

export async function writeDiagrams(dir: string, generated: readonly GeneratedDiagram[], opts: WriteOptions = {}): Promise<WriteReport> {
  await mkdir(dir, { recursive: true });
  const mmdWritten: string[] = [];
  const toRender: GeneratedDiagram[] = [];
  for (const g of generated) {
    const paths = diagramPaths(dir, g.entry.name);
    if (await writeIfChanged(paths.mmd, g.mmd)) mmdWritten.push(paths.mmd);
    const svg = await readFile(paths.svg, 'utf8').catch(() => undefined);
    if (opts.force || svg === undefined || stampOf(svg) !== sourceHash(g.mmd)) toRender.push(g);
  }

  const svgRendered: string[] = [];
  let renderSeconds = 0;
  let launchSeconds = 0;
  if (toRender.length > 0) {
    const t0 = performance.now();
    // Loaded only when something must be rendered: an up-to-date run never starts (or loads) a browser.
    const { launchBrowser } = await import('./browser.js');
    const { renderAll } = await import('./render.js');
    const browser = await launchBrowser();
    launchSeconds = (performance.now() - t0) / 1000;
    try {
      const svgs = await renderAll(browser, toRender.map((g) => ({ name: g.entry.name, mmd: g.mmd })), opts.parallel);
      for (const [i, g] of toRender.entries()) {
        const path = diagramPaths(dir, g.entry.name).svg;
        await writeIfChanged(path, svgs[i]!);
        svgRendered.push(path);
      }
    } finally {
      await browser.close();
    }
    renderSeconds = (performance.now() - t0) / 1000;
  }

  const removed = await strayFiles(dir, generated);
  for (const f of removed) await rm(f);
  return { mmdWritten, svgRendered, removed, renderSeconds, launchSeconds };
}
