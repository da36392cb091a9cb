/**
 * Greedy covering tours: from where the current test case stands, walk the shortest way to the nearest
 * step that covers an item not yet covered; start a new case (from the initial state) when that is
 * strictly nearer from there. Ties go to continuing the case; among equally near steps the first in
 * breadth-first edge order is taken, or, given a seeded `rand`, a random one (for restarts).
 */
import { edgeSources } from '../explorer/graph.js';
import type { CoverGraph } from './goals.js';

/** Cases (lists of cover-graph edges, each from node 0) covering every item in `required`. */
export function greedyCover(cg: CoverGraph, required: readonly number[], rand?: () => number): number[][] {
  const todo = new Set(required);
  for (const i of cg.initial) todo.delete(i);
  const n = cg.nodeCount;
  const seen = new Int32Array(n); // epoch stamps
  const parent = new Int32Array(n);
  const root = new Int32Array(n);
  const queue = new Int32Array(n);
  const depth = new Int32Array(n);
  let epoch = 0;
  const cases: number[][] = [];
  let current: number[] = [];
  let at = 0;
  const coversTodo = (a: number) => {
    for (let k = cg.itemStart[a]!; k < cg.itemStart[a + 1]!; k++) if (todo.has(cg.items[k]!)) return true;
    return false;
  };
  while (todo.size > 0) {
    epoch++;
    let head = 0;
    let tail = 0;
    const enqueueSource = (x: number) => {
      if (seen[x] === epoch) return;
      seen[x] = epoch;
      parent[x] = -1;
      root[x] = x;
      queue[tail++] = x;
    };
    enqueueSource(at);
    enqueueSource(0);
    depth[at] = 0;
    depth[0] = 0;
    // candidates: [edge, from] at the least depth, those continuing the case first
    const near: [number, number][] = [];
    let nearDepth = Infinity;
    while (head < tail) {
      const x = queue[head++]!;
      if (depth[x]! + 1 > nearDepth) break;
      for (let a = cg.start[x]!; a < cg.start[x + 1]!; a++) {
        if (coversTodo(a)) {
          nearDepth = depth[x]! + 1;
          near.push([a, x]);
          if (!rand) break;
          continue;
        }
        const y = cg.to[a]!;
        if (seen[y] === epoch) continue;
        seen[y] = epoch;
        parent[y] = a;
        root[y] = root[x]!;
        depth[y] = depth[x]! + 1;
        queue[tail++] = y;
      }
      if (!rand && near.length > 0) break;
    }
    if (near.length === 0) throw new Error(`greedy cover: ${todo.size} required items are not reachable`);
    const continuing = near.filter(([, x]) => root[x] === at);
    const pool = continuing.length > 0 ? continuing : near;
    const [found, foundFrom] = pool[rand ? Math.floor(rand() * pool.length) : 0]!;
    const path: number[] = [found];
    for (let x = foundFrom; parent[x]! >= 0; ) {
      const a = parent[x]!;
      path.push(a);
      x = sourceOf(cg, a);
    }
    path.reverse();
    if (root[foundFrom] !== at) {
      // nearer from the initial state: this case ends here, a new one starts
      if (current.length > 0) cases.push(current);
      current = [];
    }
    for (const a of path) {
      current.push(a);
      for (let k = cg.itemStart[a]!; k < cg.itemStart[a + 1]!; k++) todo.delete(cg.items[k]!);
    }
    at = cg.to[found]!;
  }
  if (current.length > 0) cases.push(current);
  return cases;
}

const sources = new WeakMap<CoverGraph, Int32Array>();

/** The source node of cover edge `a` (cached per cover graph). */
export function sourceOf(cg: CoverGraph, a: number): number {
  let from = sources.get(cg);
  if (!from) sources.set(cg, (from = edgeSources(cg.nodeCount, cg.start)));
  return from[a]!;
}
