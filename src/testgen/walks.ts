/**
 * Seeded random walks over the explored graph and shortest paths to a target: the two criteria that are
 * not about covering items. The PRNG is mulberry32, so a seed gives the same walks on every platform.
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

/** A shortest path (model edges) from the initial state to the first state, in breadth-first order, where `holds`. */
export function shortestPathTo(g: ModelGraph, holds: (state: number) => boolean): number[] | null {
  const parent = new Int32Array(g.stateCount).fill(-2);
  const queue = new Int32Array(g.stateCount);
  let head = 0;
  let tail = 0;
  parent[0] = -1;
  queue[tail++] = 0;
  while (head < tail) {
    const s = queue[head++]!;
    if (holds(s)) {
      const path: number[] = [];
      for (let x = s; parent[x]! >= 0; x = g.from[parent[x]!]!) path.push(parent[x]!);
      return path.reverse();
    }
    for (let e = g.start[s]!; e < g.start[s + 1]!; e++) {
      const t = g.to[e]!;
      if (parent[t] !== -2) continue;
      parent[t] = e;
      queue[tail++] = t;
    }
  }
  return null;
}
