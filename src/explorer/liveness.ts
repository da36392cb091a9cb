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
import { BoundView } from './step.js';

/** States that cannot reach the goal; the first (shortest path) one and how many. */
export function goalUnreachable(
  sys: CompiledSystem,
  store: StateStore,
  edges: Edges,
  goal: (s: GlobalView) => boolean,
): { first: number; count: number } | null {
  const n = store.size;
  const t = new Uint32Array(sys.width);
  const view = new BoundView(sys, t);
  // reverse adjacency (CSR)
  const indeg = new Int32Array(n + 1);
  for (let e = 0; e < edges.to.length; e++) indeg[edges.to[e]! + 1]!++;
  for (let i = 0; i < n; i++) indeg[i + 1]! += indeg[i]!;
  const rstart = indeg.slice();
  const rfrom = new Int32Array(edges.to.length);
  const fill = rstart.slice(0, n);
  for (let s = 0; s < n; s++) {
    for (let e = edges.start[s]!; e < edges.start[s + 1]!; e++) rfrom[fill[edges.to[e]!]!++] = s;
  }
  const ok = new Uint8Array(n);
  const queue = new Int32Array(n);
  let qh = 0;
  let qt = 0;
  for (let s = 0; s < n; s++) {
    store.load(s, t);
    if (goal(view.bind(t))) {
      ok[s] = 1;
      queue[qt++] = s;
    }
  }
  while (qh < qt) {
    const s = queue[qh++]!;
    for (let e = rstart[s]!; e < rstart[s + 1]!; e++) {
      const p = rfrom[e]!;
      if (!ok[p]) {
        ok[p] = 1;
        queue[qt++] = p;
      }
    }
  }
  let first = -1;
  let count = 0;
  for (let s = 0; s < n; s++) {
    if (!ok[s]) {
      if (first < 0) first = s;
      count++;
    }
  }
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
): { entry: number; cycle: number[] } | null {
  const n = store.size;
  const t = new Uint32Array(sys.width);
  // Which edges are non-progress (memoised per step id and, for deliveries, head message).
  const memo = new Map<number, boolean>();
  const np = new Uint8Array(edges.to.length);
  for (let s = 0; s < n; s++) {
    const a = edges.start[s]!;
    const b = edges.start[s + 1]!;
    if (a === b) continue;
    store.load(s, t);
    for (let e = a; e < b; e++) {
      if (edges.to[e] === s) continue; // stutter
      const step = edges.step[e]!;
      const key = step < sys.envComp.length ? step : step * 2097152 + t[sys.chanOff[step - sys.envComp.length]!]!;
      let isProgress = memo.get(key);
      if (isProgress === undefined) {
        isProgress = progress(sys.label(step, t));
        memo.set(key, isProgress);
      }
      if (!isProgress) np[e] = 1;
    }
  }
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
        if (comp.length > 1 && (best === null || Math.min(...comp) < Math.min(...best))) best = comp;
      }
    }
  }
  if (!best) return null;
  const entry = Math.min(...best);
  return { entry, cycle: cycleThrough(edges, np, new Set(best), entry) };
}

/** Shortest cycle from `entry` back to itself inside one component, over non-progress edges. */
function cycleThrough(edges: Edges, np: Uint8Array, comp: Set<number>, entry: number): number[] {
  const prev = new Map<number, number>();
  const queue = [entry];
  for (let h = 0; h < queue.length; h++) {
    const v = queue[h]!;
    for (let e = edges.start[v]!; e < edges.start[v + 1]!; e++) {
      const w = edges.to[e]!;
      if (!np[e] || !comp.has(w)) continue;
      if (w === entry) {
        const cyc = [entry];
        for (let x = v; x !== entry; x = prev.get(x)!) cyc.push(x);
        cyc.push(entry);
        return [entry, ...cyc.slice(1, -1).reverse(), entry];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  throw new Error('no cycle through the component entry');
}
