/**
 * The explored graph, exported once: every reachable global state of a compiled system (index 0 is the
 * initial one, the rest in breadth-first order), every step between them as a CSR edge list with the
 * explorer's step id and label, and shortest paths over it. Test generation (src/testgen/graph.ts), the
 * QEMU checker and planner (src/qemu/model.ts, plan.ts) and liveness (liveness.ts) build on it; `bfs` is
 * the one breadth-first search they all use, over this graph or over any other CSR graph (testgen's
 * cover graph, liveness's reverse graph, the QEMU model's nodes).
 */
import { type SearchLimit, search } from './search.js';
import type { CompiledSystem } from './step.js';
import type { AnySnapshot, StepLabel } from './system.js';
import { formatValue } from './trace.js';

export interface ExploredGraphOptions {
  /** Stop the search past this many global states (the explorer's default when absent). */
  readonly maxStates?: number;
  /** The error to throw when the search stops at a bound (the graph must be whole). */
  readonly incomplete: (limit: SearchLimit | null) => Error;
}

export class ExploredGraph {
  readonly components: readonly string[];
  readonly stateCount: number;
  readonly edgeCount: number;
  /** Edges of state s are start[s] .. start[s+1]. */
  readonly start: Int32Array;
  readonly from: Int32Array;
  readonly to: Int32Array;
  /** The explorer's step id of each edge (env steps first, then one per channel). */
  readonly stepId: Int32Array;
  /** Global state tuples, `sys.width` words each. */
  private readonly tuples: Uint32Array;
  private readonly labels: (StepLabel | undefined)[];

  /** Explore `sys` without symmetry reduction, recording every edge (throws `opts.incomplete` at a bound). */
  constructor(
    readonly sys: CompiledSystem,
    opts: ExploredGraphOptions,
  ) {
    this.components = sys.names;
    const out = search(sys, { recordEdges: true, progress: false, ...(opts.maxStates !== undefined ? { maxStates: opts.maxStates } : {}) });
    if (out.limit || !out.edges) throw opts.incomplete(out.limit);
    const { start, to, step } = out.edges;
    this.stateCount = out.states;
    this.edgeCount = to.length;
    this.start = start;
    this.to = to;
    this.stepId = step;
    this.from = edgeSources(this.stateCount, start);
    const w = sys.width;
    this.tuples = new Uint32Array(this.stateCount * w);
    const buf = new Uint32Array(w);
    for (let s = 0; s < this.stateCount; s++) {
      out.store.load(s, buf);
      this.tuples.set(buf, s * w);
    }
    this.labels = new Array(this.edgeCount);
  }

  /** The tuple of global state `s` (a view; do not keep it across calls that may change it). */
  tuple(s: number): Uint32Array {
    const w = this.sys.width;
    return this.tuples.subarray(s * w, s * w + w);
  }

  /** Component `c`'s local state (index into its snapshot table) in global state `s`. */
  local(s: number, c: number): number {
    return this.tuples[s * this.sys.width + c]!;
  }

  /** Component `c`'s snapshot in global state `s`. */
  snapshot(s: number, c: number): AnySnapshot {
    return this.sys.tables[c]!.snapshots[this.local(s, c)]!;
  }

  /** Every component's state value in `s`, formatted (`a.b|c.d`), in component order. */
  values(s: number): Record<string, string> {
    const out: Record<string, string> = {};
    this.components.forEach((n, c) => (out[n] = formatValue(this.snapshot(s, c).value)));
    return out;
  }

  /** The explorer's label of edge `e` (memoised). */
  label(e: number): StepLabel {
    let l = this.labels[e];
    if (!l) this.labels[e] = l = this.sys.label(this.stepId[e]!, this.tuple(this.from[e]!));
    return l;
  }

  /** Breadth-first search from `sources` (default: the initial state) over this graph's edges. */
  bfs(sources: readonly number[] = [0], opts: BfsOptions = {}): Bfs {
    return bfs(this.stateCount, this.start, this.to, sources, opts);
  }

  /** A shortest path (edges) from the initial state to the first state, in breadth-first order, where `holds`. */
  shortestPathTo(holds: (state: number) => boolean): number[] | null {
    const r = this.bfs([0], { until: holds });
    return r.found < 0 ? null : treePath(r.parent, (e) => this.from[e]!, r.found);
  }
}

export interface BfsOptions {
  /** Take edge `a` (from node `x`) only where this holds (default: every edge). */
  readonly follow?: (a: number, x: number) => boolean;
  /** Stop at the first node taken from the queue where this holds (it is `found`). */
  readonly until?: (x: number) => boolean;
  /**
   * Buffers to reuse across many searches of one graph (a covering tour searches once per step it adds):
   * nothing is allocated or cleared per search, and `dist` / `parent` then hold only for the nodes in
   * `order` (`reached` says which).
   */
  readonly scratch?: BfsScratch;
}

/** Reusable buffers for `bfs` over graphs of up to `nodeCount` nodes (a node is reached when stamped). */
export class BfsScratch {
  readonly dist: Int32Array;
  readonly parent: Int32Array;
  readonly queue: Int32Array;
  readonly stamp: Int32Array;
  epoch = 0;
  constructor(readonly nodeCount: number) {
    this.dist = new Int32Array(nodeCount);
    this.parent = new Int32Array(nodeCount);
    this.queue = new Int32Array(nodeCount);
    this.stamp = new Int32Array(nodeCount);
  }
}

export interface Bfs {
  /** Distance from the nearest source; -1 where not reached (with `scratch`: only where `reached`). */
  readonly dist: Int32Array;
  /** The edge that discovered each node; -1 at sources and where not reached (with `scratch`: as `dist`). */
  readonly parent: Int32Array;
  /** The nodes in the order they were discovered (sources first). */
  readonly order: Int32Array;
  /** The node `until` stopped at, or -1. */
  readonly found: number;
  /** Whether the search reached node x. */
  readonly reached: (x: number) => boolean;
}

/**
 * The breadth-first search: distances from `sources` (all at 0) over a CSR graph (edges of node x are
 * start[x] .. start[x+1], edge a leads to to[a]), the parent edge of each node, the discovery order; with
 * `follow`, only the edges it allows; with `until`, stopping at the first node dequeued where it holds.
 */
export function bfs(nodeCount: number, start: Int32Array, to: Int32Array, sources: readonly number[], opts: BfsOptions = {}): Bfs {
  const { follow, until } = opts;
  const sc = opts.scratch;
  if (sc && sc.nodeCount < nodeCount) throw new Error(`bfs: scratch for ${sc.nodeCount} nodes, graph of ${nodeCount}`);
  const dist = sc ? sc.dist : new Int32Array(nodeCount).fill(-1);
  const parent = sc ? sc.parent : new Int32Array(nodeCount).fill(-1);
  const queue = sc ? sc.queue : new Int32Array(nodeCount);
  // a node is seen when its stamp is this search's epoch (without scratch: when its distance is set)
  const stamp = sc?.stamp;
  const epoch = sc ? ++sc.epoch : 0;
  const seen = stamp ? (x: number) => stamp[x] === epoch : (x: number) => dist[x] !== -1;
  let head = 0;
  let tail = 0;
  for (const s of sources) {
    if (seen(s)) continue;
    if (stamp) stamp[s] = epoch;
    dist[s] = 0;
    parent[s] = -1;
    queue[tail++] = s;
  }
  let found = -1;
  while (head < tail) {
    const x = queue[head++]!;
    if (until && until(x)) {
      found = x;
      break;
    }
    for (let a = start[x]!; a < start[x + 1]!; a++) {
      const y = to[a]!;
      if (seen(y)) continue;
      if (follow && !follow(a, x)) continue;
      if (stamp) stamp[y] = epoch;
      dist[y] = dist[x]! + 1;
      parent[y] = a;
      queue[tail++] = y;
    }
  }
  return { dist, parent, order: queue.subarray(0, tail), found, reached: seen };
}

/** The edges of the BFS-tree path to `target` (parents from `bfs`; `from` gives an edge's source). */
export function treePath(parent: Int32Array, from: (a: number) => number, target: number): number[] {
  const path: number[] = [];
  for (let x = target; parent[x]! >= 0; x = from(parent[x]!)) path.push(parent[x]!);
  return path.reverse();
}

/** Sources of a CSR graph's edges. */
export function edgeSources(nodeCount: number, start: Int32Array): Int32Array {
  const from = new Int32Array(start[nodeCount]!);
  for (let x = 0; x < nodeCount; x++) for (let a = start[x]!; a < start[x + 1]!; a++) from[a] = x;
  return from;
}

/** The reverse of a CSR graph: rstart/redge list, for each node, the edges into it. */
export function reverseGraph(nodeCount: number, to: Int32Array): { start: Int32Array; edges: Int32Array } {
  const start = new Int32Array(nodeCount + 1);
  for (let a = 0; a < to.length; a++) start[to[a]! + 1]!++;
  for (let x = 0; x < nodeCount; x++) start[x + 1]! += start[x]!;
  const fill = start.slice(0, nodeCount);
  const edges = new Int32Array(to.length);
  for (let a = 0; a < to.length; a++) edges[fill[to[a]!]!++] = a;
  return { start, edges };
}
