/**
 * Chinese-postman construction of covering tours with resets. Every test case starts from the initial
 * state; ending a case and starting the next is a *reset* and costs no step. Given one chosen edge per
 * item (the required edges), the tour is built as in the directed Chinese postman problem:
 *
 *  1. every node's imbalance (required edges in − out) is evened out by the cheapest deadhead paths, a
 *     transportation problem solved exactly by min-cost assignment, where a surplus node u may serve a
 *     deficit node v either by the shortest path u→v or by a reset (u→initial) and the path initial→v;
 *  2. parts left unconnected to the initial state are joined, cheapest first (a reset pair from the
 *     initial state, or by redirecting an existing reset);
 *  3. an Euler circuit from the initial state (Hierholzer) is cut at its resets into test cases.
 *
 * The choice of required edges is the heuristic part: `bestTour` tries the greedy tour and seeded
 * randomised restarts of it (ties broken at random), the postman tour over each one's choices and over
 * the choices nearest the initial state, and refines the best by re-choosing each item's first
 * occurrence until it stops improving; the shortest wins (fewer cases on a tie). Deterministic.
 */
import { minCostAssignment } from './assign.js';
import { bfs, treePath } from '../explorer/graph.js';
import type { CoverGraph } from './goals.js';
import { greedyCover, sourceOf } from './greedy.js';
import { mulberry32 } from './walks.js';

export interface Tour {
  /** Cover-graph edges of each test case, each case from node 0. */
  readonly cases: readonly (readonly number[])[];
  readonly steps: number;
  /** Which construction produced it. */
  readonly construction: 'greedy' | 'postman';
}

/** Transportation problems larger than this (surplus units) are left to the greedy tour. */
const MAX_UNITS = 600;

type Arc = { from: number; to: number; kind: 'edge'; a: number } | { from: number; to: number; kind: 'path' } | { from: number; to: number; kind: 'reset' };

/** The postman tour over the required edges `chosen` (distinct cover-graph edges); null when too large. */
export function postmanTour(cg: CoverGraph, chosen: readonly number[]): number[][] | null {
  const required = [...new Set(chosen)].sort((a, b) => a - b);
  const excess = new Map<number, number>();
  const bump = (x: number, d: number) => excess.set(x, (excess.get(x) ?? 0) + d);
  const arcs: (Arc | null)[] = [];
  for (const a of required) {
    const from = sourceOf(cg, a);
    const to = cg.to[a]!;
    arcs.push({ from, to, kind: 'edge', a });
    bump(to, 1);
    bump(from, -1);
  }
  const surplus: number[] = [];
  const deficit: number[] = [];
  for (const [x, d] of [...excess].sort((p, q) => p[0] - q[0])) {
    for (let k = 0; k < d; k++) surplus.push(x);
    for (let k = 0; k < -d; k++) deficit.push(x);
  }
  if (surplus.length > MAX_UNITS) return null;
  const trees = new Map<number, ReturnType<typeof bfs>>();
  const tree = (x: number) => {
    let t = trees.get(x);
    if (!t) trees.set(x, (t = bfs(cg.nodeCount, cg.start, cg.to, [x])));
    return t;
  };
  const d0 = tree(0).dist;
  const INF = 1e9;
  const direct = (u: number, v: number) => {
    const d = tree(u).dist[v]!;
    return d < 0 ? INF : d;
  };
  if (surplus.length > 0) {
    const n = surplus.length;
    const cost = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) cost[i * n + j] = Math.min(direct(surplus[i]!, deficit[j]!), d0[deficit[j]!]!);
    const match = minCostAssignment(n, n, (i, j) => cost[i * n + j]!);
    surplus.forEach((u, i) => {
      const v = deficit[match[i]!]!;
      if (direct(u, v) <= d0[v]!) arcs.push({ from: u, to: v, kind: 'path' });
      else {
        arcs.push({ from: u, to: 0, kind: 'reset' });
        if (v !== 0) arcs.push({ from: 0, to: v, kind: 'path' });
      }
    });
  }
  connect(arcs, tree);
  const circuit = eulerCircuit(arcs);
  const cases: number[][] = [];
  let current: number[] = [];
  for (const k of circuit) {
    const arc = arcs[k]!;
    if (arc.kind === 'reset') {
      if (current.length > 0) cases.push(current);
      current = [];
    } else if (arc.kind === 'edge') current.push(arc.a);
    else current.push(...treePath(tree(arc.from).parent, (a) => sourceOf(cg, a), arc.to));
  }
  if (current.length > 0) cases.push(current);
  return cases;
}

/** Join every part of the arc multigraph to the initial state's part, cheapest first. */
function connect(arcs: (Arc | null)[], tree: (x: number) => { dist: Int32Array }): void {
  const parent = new Map<number, number>();
  const find = (x: number): number => {
    let r = x;
    while (parent.has(r) && parent.get(r) !== r) r = parent.get(r)!;
    parent.set(x, r);
    return r;
  };
  const union = (a: number, b: number) => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(Math.max(ra, rb), Math.min(ra, rb));
  };
  find(0);
  for (const arc of arcs) if (arc) union(arc.from, arc.to);
  for (;;) {
    const nodes = [...parent.keys()].filter((x) => find(x) !== find(0)).sort((a, b) => a - b);
    if (nodes.length === 0) return;
    const d0 = tree(0).dist;
    let best = { cost: Infinity, v: -1, reset: -1 };
    for (const v of nodes) {
      if (d0[v]! >= 0 && d0[v]! < best.cost) best = { cost: d0[v]!, v, reset: -1 };
      arcs.forEach((arc, k) => {
        if (!arc || arc.kind !== 'reset' || find(arc.from) !== find(0)) return;
        const d = tree(arc.from).dist[v]!;
        if (d >= 0 && d < best.cost) best = { cost: d, v, reset: k };
      });
    }
    if (best.v < 0) throw new Error('postman: a required edge is not reachable from the initial state');
    if (best.reset >= 0) {
      const r = arcs[best.reset]!;
      arcs[best.reset] = null;
      arcs.push({ from: r.from, to: best.v, kind: 'path' });
    } else {
      arcs.push({ from: 0, to: best.v, kind: 'path' });
    }
    arcs.push({ from: best.v, to: 0, kind: 'reset' });
    union(0, best.v);
  }
}

/** Hierholzer's algorithm from node 0; returns arc indices in circuit order (every non-null arc once). */
function eulerCircuit(arcs: readonly (Arc | null)[]): number[] {
  const out = new Map<number, number[]>();
  arcs.forEach((arc, k) => {
    if (!arc) return;
    const list = out.get(arc.from) ?? [];
    list.push(k);
    out.set(arc.from, list);
  });
  const ptr = new Map<number, number>();
  const stack: { node: number; arc: number }[] = [{ node: 0, arc: -1 }];
  const circuit: number[] = [];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const list = out.get(top.node) ?? [];
    const i = ptr.get(top.node) ?? 0;
    if (i < list.length) {
      ptr.set(top.node, i + 1);
      const k = list[i]!;
      stack.push({ node: arcs[k]!.to, arc: k });
    } else {
      stack.pop();
      if (top.arc >= 0) circuit.push(top.arc);
    }
  }
  circuit.reverse();
  const live = arcs.filter((a) => a !== null).length;
  if (circuit.length !== live) throw new Error(`postman: Euler circuit covers ${circuit.length} of ${live} arcs`);
  return circuit;
}

/** For each required item, the first edge of `cases` covering it. */
export function firstOccurrences(cg: CoverGraph, cases: readonly (readonly number[])[], required: readonly number[]): number[] {
  const want = new Set(required);
  for (const i of cg.initial) want.delete(i);
  const chosen: number[] = [];
  for (const c of cases) {
    for (const a of c) {
      for (let k = cg.itemStart[a]!; k < cg.itemStart[a + 1]!; k++) {
        if (want.delete(cg.items[k]!)) chosen.push(a);
      }
    }
  }
  return chosen;
}

/** For each required item, the covering edge whose source is nearest the initial state (lowest id on ties). */
export function nearestChoices(cg: CoverGraph, required: readonly number[]): number[] {
  const want = new Set(required);
  for (const i of cg.initial) want.delete(i);
  const d0 = bfs(cg.nodeCount, cg.start, cg.to, [0]).dist;
  const best = new Map<number, number>();
  for (let a = 0; a < cg.to.length; a++) {
    for (let k = cg.itemStart[a]!; k < cg.itemStart[a + 1]!; k++) {
      const i = cg.items[k]!;
      if (!want.has(i)) continue;
      const cur = best.get(i);
      if (cur === undefined || d0[sourceOf(cg, a)]! < d0[sourceOf(cg, cur)]!) best.set(i, a);
    }
  }
  return [...best.values()];
}

/** Randomised greedy restarts: at most this many, and fewer when edges × items is large. */
const MAX_RESTARTS = 32;
const RESTART_WORK = 3e7;

const stepsOf = (cases: readonly (readonly number[])[]) => cases.reduce((n, c) => n + c.length, 0);

/** The shortest covering tour the constructions find (see the header); deterministic. */
export function bestTour(cg: CoverGraph, required: readonly number[]): Tour {
  const greedy = greedyCover(cg, required);
  let best: Tour = { cases: greedy, steps: stepsOf(greedy), construction: 'greedy' };
  const consider = (cases: number[][] | null, construction: Tour['construction'] = 'postman'): boolean => {
    if (!cases) return false;
    const steps = stepsOf(cases);
    if (steps < best.steps || (steps === best.steps && cases.length < best.cases.length)) {
      best = { cases, steps, construction };
      return true;
    }
    return false;
  };
  consider(postmanTour(cg, firstOccurrences(cg, greedy, required)));
  consider(postmanTour(cg, nearestChoices(cg, required)));
  const restarts = Math.max(0, Math.min(MAX_RESTARTS, Math.floor(RESTART_WORK / Math.max(1, cg.to.length * required.length))));
  for (let seed = 1; seed <= restarts; seed++) {
    const cases = greedyCover(cg, required, mulberry32(seed));
    consider(cases, 'greedy');
    consider(postmanTour(cg, firstOccurrences(cg, cases, required)));
  }
  for (let round = 0; round < 8; round++) {
    if (!consider(postmanTour(cg, firstOccurrences(cg, best.cases, required)))) break;
  }
  return best;
}
