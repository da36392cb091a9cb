/**
 * Breadth-first search of the global state space: every reachable state visited once, invariants checked
 * on each new state as it is discovered (so the first violation found has a shortest trace), deadlocks
 * noted as states are expanded, and the search stopped cleanly at `maxStates` or the memory budget.
 */
import { getHeapStatistics } from 'node:v8';
import { Progress } from './progress.js';
import { type CompiledSystem, BoundView } from './step.js';
import { StateStore } from './store.js';
import type { ExploreOptions, GlobalView, StepLabel } from './system.js';

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

export interface SearchOptions extends ExploreOptions {
  /** Record the explored graph's edges (for liveness and test generation). */
  readonly recordEdges?: boolean;
  /**
   * Record only the edges whose step satisfies this, and no stuttering ones (a step back to the same
   * state) — e.g. only the non-progress steps, when a non-progress cycle is the one question asked of the
   * edges. Asked once per step id, and per head message for deliveries.
   */
  readonly keepEdge?: (step: StepLabel) => boolean;
}

export function search(sys: CompiledSystem, opts: SearchOptions = {}): SearchOutcome {
  const t0 = performance.now();
  const spec = sys.spec;
  const maxStates = opts.maxStates ?? DEFAULT_MAX_STATES;
  const budget = opts.memoryBudget ?? DEFAULT_MEMORY;
  const invariants = spec.invariants ?? [];
  const terminal = spec.terminal ?? ((v: GlobalView) => sys.names.every((n) => v.snapshot(n).status === 'done'));
  const record = opts.recordEdges === true;
  const store = new StateStore(sys.width, record);
  const view = new BoundView(sys, new Uint32Array(sys.width));
  const violations = new Map<string, number>();
  const deadlocks: number[] = [];
  let deadlockCount = 0;
  let transitions = 0;
  let limit: SearchLimit | null = null;
  const progress = new Progress(opts);

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
  // The JavaScript heap has its own limit (node's --max-old-space-size), often below the budget: stop
  // cleanly before V8 aborts the process with an out-of-memory crash.
  const heapLimit = getHeapStatistics().heap_size_limit;
  let heapNear = false;
  const overBudget = (extra: number) => {
    const m = process.memoryUsage();
    heapNear = m.heapUsed > 0.8 * heapLimit;
    return heapNear || m.heapUsed + m.arrayBuffers + extra > budget;
  };
  const memoryMessage = () =>
    heapNear
      ? `the JavaScript heap limit of ${fmtBytes(heapLimit)} is near at ${store.size} states (raise it with NODE_OPTIONS=--max-old-space-size=MB)`
      : `memory budget of ${fmtBytes(budget)} reached at ${store.size} states`;

  const init = sys.initialTuple();
  checkNew(store.insertWords(init, -1), init);

  // One batch: the successors of the state being expanded, packed, with their hashes and step ids.
  const w = sys.width;
  const maxBatch = Math.max(1, sys.stepCount);
  const scratch = new Uint32Array(w);
  const cur = new Uint32Array(w);
  let lanes = new Int32Array(store.layout.lanes);
  let out = new Int32Array(maxBatch * store.layout.lanes);
  const steps = new Int32Array(maxBatch);
  const hashes = new Int32Array(maxBatch);
  /** per successor, after insertion: its state index (when the store keeps indices) */
  const found = new Int32Array(maxBatch);
  const expand = (idx: number): number => {
    store.load(idx, cur);
    for (;;) {
      const l = store.layout.lanes;
      if (lanes.length !== l) {
        lanes = new Int32Array(l);
        out = new Int32Array(maxBatch * l);
      }
      store.loadLanes(idx, lanes);
      const n = sys.expandInto(cur, lanes, store.layout, out, hashes, steps, 0, scratch);
      if (n >= 0) return n;
      store.widen(sys.overflowPos, sys.overflowValue); // a value outgrew the packing
    }
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
  // keepEdge, memoised: per environment step id, and per (channel, head message) for deliveries
  const keepEdge = opts.keepEdge;
  const nEnv = sys.envComp.length;
  const keepEnv = new Int8Array(nEnv).fill(-1);
  const keepDelivery = new Map<number, boolean>();
  const kept = (step: number): boolean => {
    if (step < nEnv) {
      if (keepEnv[step]! < 0) keepEnv[step] = keepEdge!(sys.label(step, cur)) ? 1 : 0;
      return keepEnv[step] === 1;
    }
    const key = step * 2097152 + cur[sys.chanOff[step - nEnv]!]!;
    let k = keepDelivery.get(key);
    if (k === undefined) keepDelivery.set(key, (k = keepEdge!(sys.label(step, cur))));
    return k;
  };

  for (let from = 0; from < store.size && !limit; from++) {
    const n = expand(from);
    if (record) {
      if (from >= edgeStart.length) edgeStart = grow(edgeStart);
      edgeStart[from] = nEdges;
    }
    // room for every successor of the batch before it starts (the table may grow one batch early)
    while (store.wouldGrow(n)) {
      if (overBudget(store.nextGrowthBytes)) {
        limit = { kind: 'memory', message: memoryMessage() };
        break;
      }
      store.grow();
    }
    if (limit) break;
    const sizeBefore = store.size;
    const done = store.insertBatch(out, hashes, steps, n, from, found, maxStates);
    transitions += done;
    if (store.size > sizeBefore && invariants.length > 0) {
      for (let idx = sizeBefore; idx < store.size; idx++) {
        store.load(idx, fresh);
        checkNew(idx, fresh);
      }
    }
    if (store.size >= maxStates) limit = { kind: 'maxStates', message: `state limit of ${maxStates} reached` };
    if (record && keepEdge === undefined) for (let b = 0; b < done; b++) pushEdge(found[b]!, steps[b]! < 0 ? ~steps[b]! : steps[b]!);
    else if (record) for (let b = 0; b < done; b++) if (steps[b]! >= 0 && found[b] !== from && kept(steps[b]!)) pushEdge(found[b]!, steps[b]!);
    if (n === 0 && spec.cut === undefined && !terminal(view.bind(cur))) {
      deadlockCount++;
      if (deadlocks.length < MAX_DEADLOCKS_KEPT) deadlocks.push(from);
    }
    if ((from & 0xffff) === 0) {
      progress.tick(store.size, store.size - from);
      if (!limit && overBudget(0)) limit = { kind: 'memory', message: memoryMessage() };
    }
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
