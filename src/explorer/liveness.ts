/**
 * Liveness over the explored graph (the search records its edges when these checks are asked for):
 *  - goal reachability: every reachable state can reach a goal state (backward search from the goals);
 *  - non-progress cycles: a reachable cycle none of whose steps is a progress step (P's "hot state"
 *    idea), found as a strongly connected component of the non-progress edges, reported as a lasso.
 *    Stuttering (a step that leaves the global state unchanged) is not a cycle: it is ignored.
 */
import type { Edges } from './search.js';
import type { CompiledSystem } from './step.js';
import type { StateStore } from './store.js';
import type { GlobalView, StepLabel } from './system.js';
import { bfs, edgeSources, reverseGraph, treePath } from './graph.js';
import { BoundView } from './step.js';

/**
 * Mark the edges whose step satisfies `pred` (1) — memoised per step id and, for deliveries, per head
 * message. Stuttering edges (back to the same state) are left unmarked when `skipStutter`.
 */
export function markEdges(sys: CompiledSystem, store: StateStore, edges: Edges, pred: (step: StepLabel) => boolean, skipStutter: boolean): Uint8Array {
  const n = store.size;
  const t = new Uint32Array(sys.width);
  const memo = new Map<number, boolean>();
  const mark = new Uint8Array(edges.to.length);
  for (let s = 0; s < n; s++) {
    const a = edges.start[s]!;
    const b = edges.start[s + 1]!;
    if (a === b) continue;
    store.load(s, t);
    for (let e = a; e < b; e++) {
      if (skipStutter && edges.to[e] === s) continue;
      const step = edges.step[e]!;
      const key = step < sys.envComp.length ? step : step * 2097152 + t[sys.chanOff[step - sys.envComp.length]!]!;
      let ok = memo.get(key);
      if (ok === undefined) {
        ok = pred(sys.label(step, t));
        memo.set(key, ok);
      }
      if (ok) mark[e] = 1;
    }
  }
  return mark;
}

/**
 * States that cannot reach the goal, using only steps that satisfy `via` (all steps when omitted); the
 * first (shortest path) one and how many.
 */
export function goalUnreachable(
  sys: CompiledSystem,
  store: StateStore,
  edges: Edges,
  goal: (s: GlobalView) => boolean,
  via?: (step: StepLabel) => boolean,
): { first: number; count: number } | null {
  const n = store.size;
  const t = new Uint32Array(sys.width);
  const view = new BoundView(sys, t);
  const allowed = via ? markEdges(sys, store, edges, via, false) : null;
  // backward breadth-first search from the goal states over the allowed edges, reversed
  const rev = reverseGraph(n, edges.to);
  const from = edgeSources(n, edges.start);
  const into = rev.edges.map((e) => from[e]!);
  const goals: number[] = [];
  for (let s = 0; s < n; s++) {
    store.load(s, t);
    if (goal(view.bind(t))) goals.push(s);
  }
  const { dist } = bfs(n, rev.start, into, goals, allowed ? { follow: (a) => allowed[rev.edges[a]!] === 1 } : {});
  const ok = (s: number) => dist[s]! >= 0;
  // Report a state where the run is stuck (no allowed step leads elsewhere) if there is one: its trace
  // shows the stall itself. Otherwise the first state (shortest path) that cannot reach the goal.
  let first = -1;
  let stuck = -1;
  let count = 0;
  for (let s = 0; s < n; s++) {
    if (ok(s)) continue;
    if (first < 0) first = s;
    count++;
    if (stuck < 0) {
      let leaves = false;
      for (let e = edges.start[s]!; e < edges.start[s + 1]! && !leaves; e++) {
        if ((!allowed || allowed[e]) && edges.to[e] !== s) leaves = true;
      }
      if (!leaves) stuck = s;
    }
  }
  if (stuck >= 0) first = stuck;
  return first < 0 ? null : { first, count };
}

/**
 * A lasso for a reachable non-progress cycle: `entry` is the first state of the cycle (reach it by its
 * parent pointers), `cycle` the states around the cycle back to `entry` (inclusive at both ends).
 */
export function nonProgressCycle(
  sys: CompiledSystem,
  store: StateStore,
  edges: Edges,
  progress: (step: StepLabel) => boolean,
  fair?: (step: StepLabel) => boolean,
  scope?: (s: GlobalView) => boolean,
): { entry: number; cycle: number[] } | null {
  const n = store.size;
  const np = markEdges(sys, store, edges, (step) => !progress(step), true);
  if (scope) {
    // keep only the edges between states in scope
    const t = new Uint32Array(sys.width);
    const view = new BoundView(sys, t);
    const inScope = new Uint8Array(n);
    for (let s = 0; s < n; s++) {
      store.load(s, t);
      inScope[s] = scope(view.bind(t)) ? 1 : 0;
    }
    for (let s = 0; s < n; s++) {
      for (let e = edges.start[s]!; e < edges.start[s + 1]!; e++) if (!inScope[s] || !inScope[edges.to[e]!]) np[e] = 0;
    }
  }
  const fairEdge = fair ? markEdges(sys, store, edges, fair, true) : null;
  // Iterative Tarjan on the non-progress subgraph.
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const stack: number[] = [];
  const call: number[] = [];
  const edgeAt: number[] = [];
  let counter = 0;
  let best: number[] | null = null;
  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    call.push(root);
    edgeAt.push(edges.start[root]!);
    index[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = 1;
    while (call.length > 0) {
      const v = call[call.length - 1]!;
      const e = edgeAt[edgeAt.length - 1]!;
      if (e < edges.start[v + 1]!) {
        edgeAt[edgeAt.length - 1] = e + 1;
        if (!np[e]) continue;
        const w = edges.to[e]!;
        if (index[w] === -1) {
          index[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = 1;
          call.push(w);
          edgeAt.push(edges.start[w]!);
        } else if (onStack[w]) {
          low[v] = Math.min(low[v]!, index[w]!);
        }
        continue;
      }
      call.pop();
      edgeAt.pop();
      if (call.length > 0) {
        const u = call[call.length - 1]!;
        low[u] = Math.min(low[u]!, low[v]!);
      }
      if (low[v] === index[v]) {
        const comp: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = 0;
          comp.push(w);
        } while (w !== v);
        if (comp.length > 1 && (best === null || minOf(comp) < minOf(best))) {
          if (!fairEdge || fairEdgeIn(edges, np, fairEdge, new Set(comp)) >= 0) best = comp;
        }
      }
    }
  }
  if (!best) return null;
  const members = new Set(best);
  if (fairEdge) {
    // go round through a step of the fairly scheduled component: from its source, across it, and back
    const e = fairEdgeIn(edges, np, fairEdge, members);
    let u = 0;
    while (edges.start[u + 1]! <= e) u++;
    const back = cycleThrough(edges, np, members, u, edges.to[e]!);
    return { entry: u, cycle: back };
  }
  const entry = minOf(best);
  return { entry, cycle: cycleThrough(edges, np, members, entry) };
}

/** A non-progress edge inside `comp` that is also fair, or -1. */
function fairEdgeIn(edges: Edges, np: Uint8Array, fair: Uint8Array, comp: Set<number>): number {
  let best = -1;
  for (const v of comp) {
    for (let e = edges.start[v]!; e < edges.start[v + 1]!; e++) {
      if (np[e] && fair[e] && comp.has(edges.to[e]!) && (best < 0 || e < best)) best = e;
    }
  }
  return best;
}

/**
 * Shortest cycle from `entry` back to itself inside one component, over non-progress edges; when `via`
 * is given, the cycle's first step goes to `via`.
 */
function cycleThrough(edges: Edges, np: Uint8Array, comp: Set<number>, entry: number, via?: number): number[] {
  if (via !== undefined) {
    if (via === entry) return [entry, entry];
    const rest = pathInside(edges, np, comp, via, entry);
    return [entry, ...rest];
  }
  // the first state in breadth-first order with a step back to `entry` closes the shortest cycle
  const closes = (v: number) => {
    for (let e = edges.start[v]!; e < edges.start[v + 1]!; e++) if (np[e] && edges.to[e] === entry) return true;
    return false;
  };
  const r = bfs(edges.start.length - 1, edges.start, edges.to, [entry], { follow: inside(edges, np, comp), until: closes });
  if (r.found < 0) throw new Error('no cycle through the component entry');
  return [...statesAlong(edges, r.parent, entry, r.found), entry];
}

/** The non-progress edges between states of `comp`. */
function inside(edges: Edges, np: Uint8Array, comp: Set<number>): (e: number) => boolean {
  return (e) => np[e] === 1 && comp.has(edges.to[e]!);
}

/** The states of the BFS-tree path from `source` to `target`, both included. */
function statesAlong(edges: Edges, parent: Int32Array, source: number, target: number): number[] {
  const from = edgeSources(edges.start.length - 1, edges.start);
  return [source, ...treePath(parent, (e) => from[e]!, target).map((e) => edges.to[e]!)];
}

function minOf(xs: readonly number[]): number {
  let m = Infinity;
  for (const x of xs) if (x < m) m = x;
  return m;
}

/** Shortest path from `from` to `to` inside `comp` over non-progress edges, both ends included. */
function pathInside(edges: Edges, np: Uint8Array, comp: Set<number>, from: number, to: number): number[] {
  const r = bfs(edges.start.length - 1, edges.start, edges.to, [from], { follow: inside(edges, np, comp), until: (v) => v === to });
  return statesAlong(edges, r.parent, from, to);
}
