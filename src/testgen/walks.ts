/**
 * Seeded random walks over the explored graph: with shortest paths to a target (ExploredGraph's
 * shortestPathTo), one of the two criteria that are not about covering items. The PRNG is mulberry32,
 * so a seed gives the same walks on every platform.
 */
import type { ModelGraph } from './graph.js';

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `walks` walks from the initial state, each of at most `length` steps (fewer where no step is enabled). */
export function randomWalks(g: ModelGraph, seed: number, walks: number, length: number): number[][] {
  const rand = mulberry32(seed);
  const out: number[][] = [];
  for (let w = 0; w < walks; w++) {
    const path: number[] = [];
    let s = 0;
    while (path.length < length) {
      const lo = g.start[s]!;
      const n = g.start[s + 1]! - lo;
      if (n === 0) break;
      const e = lo + Math.floor(rand() * n);
      path.push(e);
      s = g.to[e]!;
    }
    out.push(path);
  }
  return out;
}
