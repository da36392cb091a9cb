/**
 * Greedy covering tours: from where the current test case stands, walk the shortest way to the nearest
 * step that covers an item not yet covered; start a new case (from the initial state) when that is
 * strictly nearer from there. Ties go to continuing the case; among equally near steps the first in
 * breadth-first edge order is taken, or, given a seeded `rand`, a random one (for restarts).
 */
import { BfsScratch, bfs, edgeSources } from '../explorer/graph.js';
import type { CoverGraph } from './goals.js';

/**
 * Cases (lists of cover-graph edges, each from node 0) covering every item in `required`. Each step is
 * one breadth-first search (the explorer's `bfs`, its buffers reused) from where the case stands and
 * from the initial state at once, stopping at the first node with an edge that covers an item still to
 * cover; at that node's depth every such edge is a candidate.
 */
export function greedyCover(cg: CoverGraph, required: readonly number[], rand?: () => number): number[][] {
  const todo = new Set(required);
  for (const i of cg.initial) todo.delete(i);
  const scratch = new BfsScratch(cg.nodeCount);
  const cases: number[][] = [];
  let current: number[] = [];
  let at = 0;
  // per edge, how many of its items are still to cover; per node, how many of its edges have some
  const edges = cg.to.length;
  const edgeTodo = new Int32Array(edges);
  const nodeTodo = new Int32Array(cg.nodeCount);
  let maxItem = -1;
  for (let k = 0; k < cg.items.length; k++) maxItem = Math.max(maxItem, cg.items[k]!);
  const itemStart = new Int32Array(maxItem + 2);
  for (let k = 0; k < cg.items.length; k++) itemStart[cg.items[k]! + 1]!++;
  for (let i = 0; i <= maxItem; i++) itemStart[i + 1]! += itemStart[i]!;
  const itemEdges = new Int32Array(cg.items.length);
  const fill = itemStart.slice(0, maxItem + 1);
  for (let a = 0; a < edges; a++) {
    for (let k = cg.itemStart[a]!; k < cg.itemStart[a + 1]!; k++) {
      const item = cg.items[k]!;
      itemEdges[fill[item]!++] = a;
      if (todo.has(item) && edgeTodo[a]!++ === 0) nodeTodo[sourceOf(cg, a)]!++;
    }
  }
  const cover = (item: number) => {
    if (!todo.delete(item)) return;
    for (let k = itemStart[item]!; k < itemStart[item + 1]!; k++) {
      const a = itemEdges[k]!;
      if (--edgeTodo[a]! === 0) nodeTodo[sourceOf(cg, a)]!--;
    }
  };
  const coversTodo = (a: number) => edgeTodo[a]! > 0;
  const hasCovering = (x: number) => nodeTodo[x]! > 0;
  while (todo.size > 0) {
    // sources: the case's node first, so that at equal depth the nodes reached from it come first
    const r = bfs(cg.nodeCount, cg.start, cg.to, [at, 0], { scratch, until: hasCovering });
    if (r.found < 0) throw new Error(`greedy cover: ${todo.size} required items are not reachable`);
    // candidates [edge, from]: the first covering edge of the first such node, or (given `rand`) every
    // covering edge of every node at that depth, in discovery order
    const near: [number, number][] = [];
    const depth = r.dist[r.found]!;
    for (const x of rand ? r.order : [r.found]) {
      if (r.dist[x] !== depth) continue;
      for (let a = cg.start[x]!; a < cg.start[x + 1]!; a++) {
        if (!coversTodo(a)) continue;
        near.push([a, x]);
        if (!rand) break;
      }
    }
    const rootOf = (x: number) => {
      while (r.parent[x]! >= 0) x = sourceOf(cg, r.parent[x]!);
      return x;
    };
    const continuing = near.filter(([, x]) => rootOf(x) === at);
    const pool = continuing.length > 0 ? continuing : near;
    const [found, foundFrom] = pool[rand ? Math.floor(rand() * pool.length) : 0]!;
    const path: number[] = [found];
    for (let x = foundFrom; r.parent[x]! >= 0; ) {
      const a = r.parent[x]!;
      path.push(a);
      x = sourceOf(cg, a);
    }
    path.reverse();
    if (rootOf(foundFrom) !== at) {
      // nearer from the initial state: this case ends here, a new one starts
      if (current.length > 0) cases.push(current);
      current = [];
    }
    for (const a of path) {
      current.push(a);
      for (let k = cg.itemStart[a]!; k < cg.itemStart[a + 1]!; k++) cover(cg.items[k]!);
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
