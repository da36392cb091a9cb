/**
 * Breadth-first search of the global state space: every reachable state visited once, invariants checked
 * on each new state as it is discovered (so the first violation found has a shortest trace), deadlocks
 * noted as states are expanded, and the search stopped cleanly at `maxStates` or the memory budget.
 */
import { Progress } from './progress.js';
import { type CompiledSystem, BoundView } from './step.js';
import { StateStore } from './store.js';
import type { ExploreOptions, GlobalView } from './system.js';

export interface Edges {
  /** Edges of state i are to[start[i] .. start[i+1]). */
  readonly start: Int32Array;
  readonly to: Int32Array;
  readonly step: Int32Array;
}

export interface SearchLimit {
  readonly kind: 'maxStates' | 'memory';
  readonly message: string;
}

export interface SearchOutcome {
  readonly store: StateStore;
  readonly states: number;
  readonly transitions: number;
  readonly seconds: number;
  /** First (shortest) violating state per invariant name. */
  readonly violations: ReadonlyMap<string, number>;
  readonly deadlocks: readonly number[];
  readonly deadlockCount: number;
  readonly edges: Edges | null;
  readonly limit: SearchLimit | null;
}

const MAX_DEADLOCKS_KEPT = 16;
const DEFAULT_MAX_STATES = 50_000_000;
const DEFAULT_MEMORY = 8 * 1024 ** 3;

export function search(sys: CompiledSystem, opts: ExploreOptions & { recordEdges?: boolean } = {}): SearchOutcome {
  const t0 = performance.now();
  const spec = sys.spec;
  const maxStates = opts.maxStates ?? DEFAULT_MAX_STATES;
  const budget = opts.memoryBudget ?? DEFAULT_MEMORY;
  const invariants = spec.invariants ?? [];
  const terminal = spec.terminal ?? ((v: GlobalView) => sys.names.every((n) => v.snapshot(n).status === 'done'));
  const store = new StateStore(sys.width);
  const view = new BoundView(sys, new Uint32Array(sys.width));
  const violations = new Map<string, number>();
  const deadlocks: number[] = [];
  let deadlockCount = 0;
  let transitions = 0;
  let limit: SearchLimit | null = null;
  const progress = new Progress(opts);

  const record = opts.recordEdges === true;
  let edgeTo: Int32Array<ArrayBuffer> = new Int32Array(record ? 1 << 16 : 0);
  let edgeStep: Int32Array<ArrayBuffer> = new Int32Array(record ? 1 << 16 : 0);
  let edgeStart: Int32Array<ArrayBuffer> = new Int32Array(record ? 1 << 16 : 0);
  let nEdges = 0;

  const checkNew = (idx: number, t: Uint32Array) => {
    if (invariants.length === 0) return;
    view.bind(t);
    for (const inv of invariants) {
      if (!violations.has(inv.name) && !inv.holds(view)) violations.set(inv.name, idx);
    }
  };
  const overBudget = (extra: number) => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers + extra > budget;
  };

  const init = sys.initialTuple();
  checkNew(store.insert(init, -1), init);

  // Successors of one state are collected, hashed and prefetched as a batch, then inserted.
  const w = sys.width;
  const maxBatch = Math.max(1, sys.stepCount);
  const batch = new Uint32Array(maxBatch * w);
  const batchStep = new Int32Array(maxBatch);
  const homes = new Int32Array(maxBatch);
  let nb = 0;
  let selfLoops = 0;
  const onSucc = (step: number, next: Uint32Array) => {
    let same = true;
    for (let k = 0; k < w; k++) {
      if (next[k] !== cur[k]) {
        same = false;
        break;
      }
    }
    if (same) {
      // A step back to the state itself needs no lookup.
      selfLoops++;
      if (record) pushEdge(from, step);
      return;
    }
    const base = nb * w;
    for (let k = 0; k < w; k++) batch[base + k] = next[k]!;
    batchStep[nb++] = step;
  };
  const fresh = new Uint32Array(w);
  const cur = new Uint32Array(w);
  const next = new Uint32Array(w);
  let from = 0;
  const pushEdge = (to: number, step: number) => {
    if (nEdges === edgeTo.length) {
      edgeTo = grow(edgeTo);
      edgeStep = grow(edgeStep);
    }
    edgeTo[nEdges] = to;
    edgeStep[nEdges] = step;
    nEdges++;
  };

  for (from = 0; from < store.size && !limit; from++) {
    store.load(from, cur);
    if (record) {
      if (from >= edgeStart.length) edgeStart = grow(edgeStart);
      edgeStart[from] = nEdges;
    }
    nb = 0;
    const enabled = sys.expand(cur, next, onSucc);
    let epoch = store.epoch;
    for (let b = 0; b < nb; b++) homes[b] = store.home(store.hash(batch, b * w));
    store.prefetch(homes, nb);
    for (let b = 0; b < nb && !limit; b++) {
      transitions++;
      if (store.needsGrowth && overBudget(store.nextGrowthBytes)) {
        limit = { kind: 'memory', message: `memory budget of ${fmtBytes(budget)} reached at ${store.size} states` };
        break;
      }
      if (store.epoch !== epoch) {
        for (let c = b; c < nb; c++) homes[c] = store.home(store.hash(batch, c * w));
        epoch = store.epoch;
      }
      let idx = store.insertAt(batch, b * w, homes[b]!, from);
      if (idx >= 0) {
        if (invariants.length > 0) {
          for (let k = 0; k < w; k++) fresh[k] = batch[b * w + k]!;
          checkNew(idx, fresh);
        }
        if (store.size >= maxStates && !limit) {
          limit = { kind: 'maxStates', message: `state limit of ${maxStates} reached` };
        }
      } else {
        idx = -1 - idx;
      }
      if (record) pushEdge(idx, batchStep[b]!);
    }
    if (enabled === 0 && !terminal(view.bind(cur))) {
      deadlockCount++;
      if (deadlocks.length < MAX_DEADLOCKS_KEPT) deadlocks.push(from);
    }
    if ((from & 0xffff) === 0) {
      progress.tick(store.size, store.size - from);
      if (!limit && overBudget(0)) limit = { kind: 'memory', message: `memory budget of ${fmtBytes(budget)} reached at ${store.size} states` };
    }
  }
  progress.done();
  transitions += selfLoops;

  let edges: Edges | null = null;
  if (record && !limit) {
    const start = new Int32Array(store.size + 1);
    start.set(edgeStart.subarray(0, store.size));
    start[store.size] = nEdges;
    edges = { start, to: edgeTo.slice(0, nEdges), step: edgeStep.slice(0, nEdges) };
  }
  return {
    store,
    states: store.size,
    transitions,
    seconds: (performance.now() - t0) / 1000,
    violations,
    deadlocks,
    deadlockCount,
    edges,
    limit,
  };
}

function grow(a: Int32Array): Int32Array<ArrayBuffer> {
  const b = new Int32Array(Math.ceil(a.length * 1.5) + 16);
  b.set(a);
  return b;
}

export function fmtBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${Math.round(n / 1024)} KiB`;
}
