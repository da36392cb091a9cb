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

  // Successors of a state are generated, hashed and their home slots prefetched one state ahead of
  // their insertion (two buffers), so that the cache misses of the lookups overlap with useful work.
  const w = sys.width;
  const maxBatch = Math.max(1, sys.stepCount);
  const mk = () => ({
    from: -1,
    n: 0,
    cur: new Uint32Array(w),
    out: new Uint32Array(maxBatch * w),
    hashes: new Int32Array(maxBatch),
    steps: new Int32Array(maxBatch),
    homes: new Int32Array(maxBatch),
    epoch: -1,
  });
  type Batch = ReturnType<typeof mk>;
  let A: Batch = mk();
  let B: Batch = mk();
  const prepare = (idx: number, b: Batch) => {
    b.from = idx;
    store.load(idx, b.cur);
    b.n = sys.expandInto(b.cur, store.hash(b.cur, 0), b.out, b.hashes, b.steps);
    for (let k = 0; k < b.n; k++) b.homes[k] = store.home(b.hashes[k]! >>> 0);
    b.epoch = store.epoch;
    store.prefetch(b.homes, b.n);
  };
  const pushEdge = (to: number, step: number) => {
    if (nEdges === edgeTo.length) {
      edgeTo = grow(edgeTo);
      edgeStep = grow(edgeStep);
    }
    edgeTo[nEdges] = to;
    edgeStep[nEdges] = step;
    nEdges++;
  };
  const fresh = new Uint32Array(w);

  if (store.size > 0) prepare(0, A);
  for (let from = 0; from < store.size && !limit; from++) {
    if (A.from !== from) prepare(from, A);
    if (from + 1 < store.size) prepare(from + 1, B);
    else B.from = -1;
    if (record) {
      if (from >= edgeStart.length) edgeStart = grow(edgeStart);
      edgeStart[from] = nEdges;
    }
    const n = A.n;
    const out = A.out;
    for (let b = 0; b < n && !limit; b++) {
      transitions++;
      if (store.needsGrowth && overBudget(store.nextGrowthBytes)) {
        limit = { kind: 'memory', message: `memory budget of ${fmtBytes(budget)} reached at ${store.size} states` };
        break;
      }
      if (store.epoch !== A.epoch) {
        for (let c = b; c < n; c++) A.homes[c] = store.home(A.hashes[c]! >>> 0);
        A.epoch = store.epoch;
      }
      let idx = store.insertAt(out, b * w, A.homes[b]!, from, record);
      if (idx >= 0) {
        if (invariants.length > 0) {
          for (let k = 0; k < w; k++) fresh[k] = out[b * w + k]!;
          checkNew(idx, fresh);
        }
        if (store.size >= maxStates && !limit) {
          limit = { kind: 'maxStates', message: `state limit of ${maxStates} reached` };
        }
      } else {
        idx = -1 - idx;
      }
      if (record) pushEdge(idx, A.steps[b]!);
    }
    if (n === 0 && !terminal(view.bind(A.cur))) {
      deadlockCount++;
      if (deadlocks.length < MAX_DEADLOCKS_KEPT) deadlocks.push(from);
    }
    if ((from & 0xffff) === 0) {
      progress.tick(store.size, store.size - from);
      if (!limit && overBudget(0)) limit = { kind: 'memory', message: `memory budget of ${fmtBytes(budget)} reached at ${store.size} states` };
    }
    const t = A;
    A = B;
    B = t;
  }
  progress.done();

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
