/**
 * Lower bounds on the total steps of any suite that covers the required items, every case starting
 * from the initial state (resets cost nothing). Let R be the required items the initial state does not
 * already cover. The bound reported is the largest of three, each valid on its own:
 *
 *  - **farthest item**: the case that covers the item whose covering steps are farthest from the
 *    initial state has at least that distance + 1 steps.
 *  - **assignment** (when no step covers more than one required item): take in any covering suite the
 *    first occurrence of each item; in its case it is preceded either by the case start or by the first
 *    occurrence of another item, each item preceding at most one. The steps strictly between are at
 *    least the graph distance from where the predecessor's step ends to where this item's step starts
 *    (from the initial state, for a case start). Relaxing the choice of covering step per pair, the
 *    suite has at least R + min over predecessor assignments of Σ gap(predecessor → item) steps,
 *    gap(t' → t) = min over steps e' covering t', e covering t of dist(end(e'), start(e)) and
 *    gap(start → t) = min over e covering t of dist(initial, start(e)); solved exactly (Hungarian).
 *  - **walk prices**: give each item a price y ≥ 0 such that no walk from the initial state collects
 *    more than its length (a walk collects the prices of the items of every step it takes, repeats
 *    included). Every case is such a walk and together they cover each item, so the suite has at least
 *    Σ y steps. Prices are raised item by item (farthest first) as far as a Bellman-Ford check allows;
 *    this catches what the assignment misses: branches that each need their own case and its prefix.
 *
 * The assignment needs R ≤ 600, the walk prices R · edges ≤ 5·10⁷; past that they are skipped.
 */
import { minCostAssignment } from './assign.js';
import { bfs, reverseGraph } from '../explorer/graph.js';
import type { CoverGraph } from './goals.js';
import { sourceOf } from './greedy.js';

export interface LowerBound {
  readonly steps: number;
  /** Which bound was the largest. */
  readonly rule: 'farthest' | 'cover' | 'assignment' | 'walk-prices';
}

/** Required items beyond which the quadratic assignment bound is not computed. */
const MAX_ASSIGNMENT_ITEMS = 600;

export function tourLowerBound(cg: CoverGraph, required: readonly number[]): LowerBound {
  const want = [...new Set(required)].filter((i) => !cg.initial.includes(i)).sort((a, b) => a - b);
  const R = want.length;
  if (R === 0) return { steps: 0, rule: 'farthest' };
  const index = new Map(want.map((t, k) => [t, k]));
  const fromNodes: number[][] = want.map(() => []);
  const toNodes: number[][] = want.map(() => []);
  let k = 0;
  for (let a = 0; a < cg.to.length; a++) {
    let here = 0;
    for (let j = cg.itemStart[a]!; j < cg.itemStart[a + 1]!; j++) {
      const t = index.get(cg.items[j]!);
      if (t === undefined) continue;
      here++;
      fromNodes[t]!.push(sourceOf(cg, a));
      toNodes[t]!.push(cg.to[a]!);
    }
    k = Math.max(k, here);
  }
  const d0 = bfs(cg.nodeCount, cg.start, cg.to, [0]).dist;
  const startGap = fromNodes.map((nodes) => Math.min(...nodes.map((x) => (d0[x]! < 0 ? Infinity : d0[x]!))));
  if (startGap.some((g) => !Number.isFinite(g))) throw new Error('lower bound: a required item is not reachable');
  let best: LowerBound = { steps: Math.max(...startGap) + 1, rule: 'farthest' };
  const offer = (steps: number, rule: LowerBound['rule']) => {
    if (steps > best.steps) best = { steps, rule };
  };
  offer(Math.ceil(R / Math.max(k, 1)), 'cover');
  if (R * cg.to.length <= MAX_PRICE_WORK) offer(walkPriceBound(cg, want, startGap), 'walk-prices');
  if (k > 1 || R > MAX_ASSIGNMENT_ITEMS) return best;

  // gap[t][t'] = distance from the end of a step covering t' to the start of a step covering t
  const rev = reverseGraph(cg.nodeCount, cg.to);
  const into = rev.edges.map((a) => sourceOf(cg, a));
  const INF = 1e7;
  const gap = new Float64Array(R * R).fill(INF);
  for (let t = 0; t < R; t++) {
    // backwards from the starts of the steps covering t
    const { dist } = bfs(cg.nodeCount, rev.start, into, fromNodes[t]!);
    for (let p = 0; p < R; p++) {
      if (p === t) continue;
      let best = INF;
      for (const y of toNodes[p]!) if (dist[y]! >= 0 && dist[y]! < best) best = dist[y]!;
      gap[t * R + p] = best;
    }
  }
  const match = minCostAssignment(R, 2 * R, (t, col) => (col < R ? gap[t * R + col]! : startGap[t]!));
  let sum = 0;
  for (let t = 0; t < R; t++) {
    const col = match[t]!;
    sum += col < R ? gap[t * R + col]! : startGap[t]!;
  }
  offer(R + sum, 'assignment');
  return best;
}

const MAX_PRICE_WORK = 5e7;

/** Σ of item prices such that no walk from node 0 collects more than its length (see the header). */
function walkPriceBound(cg: CoverGraph, want: readonly number[], startGap: readonly number[]): number {
  const n = cg.nodeCount;
  const m = cg.to.length;
  const price = new Map<number, number>(want.map((t) => [t, 0]));
  const cost = new Float64Array(m).fill(1);
  const edgesOf = new Map<number, number[]>(want.map((t) => [t, []]));
  for (let a = 0; a < m; a++) {
    for (let j = cg.itemStart[a]!; j < cg.itemStart[a + 1]!; j++) edgesOf.get(cg.items[j]!)?.push(a);
  }
  const from = new Int32Array(m);
  for (let a = 0; a < m; a++) from[a] = sourceOf(cg, a);
  const rev = reverseGraph(n, cg.to);
  const queue = new Int32Array(n + 1);
  const inQueue = new Uint8Array(n);
  const passes = new Int32Array(n);
  // Cheapest walk from node 0 to each node under `cost`; null when some walk costs < 0 (prices infeasible).
  const fromStart = (): Float64Array | null => {
    const d = new Float64Array(n).fill(Infinity);
    d[0] = 0;
    inQueue.fill(0);
    passes.fill(0);
    let head = 0;
    let size = 0;
    const push = (x: number) => {
      if (inQueue[x]) return;
      inQueue[x] = 1;
      queue[(head + size++) % (n + 1)] = x;
    };
    push(0);
    while (size > 0) {
      const x = queue[head]!;
      head = (head + 1) % (n + 1);
      size--;
      inQueue[x] = 0;
      if (++passes[x]! > n) return null;
      for (let a = cg.start[x]!; a < cg.start[x + 1]!; a++) {
        const y = cg.to[a]!;
        const v = d[x]! + cost[a]!;
        if (v < d[y]!) {
          if (v < 0) return null;
          d[y] = v;
          push(y);
        }
      }
    }
    return d;
  };
  // Cheapest walk from each node to anywhere (≤ 0: the empty walk).
  const toAnywhere = (): Float64Array => {
    const s = new Float64Array(n);
    inQueue.fill(0);
    let head = 0;
    let size = 0;
    const push = (x: number) => {
      if (inQueue[x]) return;
      inQueue[x] = 1;
      queue[(head + size++) % (n + 1)] = x;
    };
    for (let x = 0; x < n; x++) push(x);
    while (size > 0) {
      const y = queue[head]!;
      head = (head + 1) % (n + 1);
      size--;
      inQueue[y] = 0;
      for (let r = rev.start[y]!; r < rev.start[y + 1]!; r++) {
        const a = rev.edges[r]!;
        const x = from[a]!;
        const v = cost[a]! + s[y]!;
        if (v < s[x]!) {
          s[x] = v;
          push(x);
        }
      }
    }
    return s;
  };
  const setPrice = (t: number, p: number) => {
    const delta = p - price.get(t)!;
    price.set(t, p);
    for (const a of edgesOf.get(t)!) cost[a]! -= delta;
  };
  const order = want.map((t, i) => ({ t, gap: startGap[i]! })).sort((a, b) => b.gap - a.gap || a.t - b.t);
  let d = fromStart()!;
  let s = toAnywhere();
  for (let pass = 0; pass < 2; pass++) {
    for (const { t } of order) {
      let room = Infinity;
      for (const a of edgesOf.get(t)!) room = Math.min(room, d[from[a]!]! + cost[a]! + s[cg.to[a]!]!);
      if (!(room >= 1)) continue;
      const old = price.get(t)!;
      // the largest integer raise ≤ room that keeps every walk's cost ≥ 0
      let lo = 0;
      let hi = Math.floor(room);
      let okD: Float64Array | null = null;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        setPrice(t, old + mid);
        const check = fromStart();
        if (check) {
          lo = mid;
          okD = check;
        } else hi = mid - 1;
      }
      setPrice(t, old + lo);
      if (lo > 0) {
        d = okD ?? fromStart()!;
        s = toAnywhere();
      }
    }
  }
  let sum = 0;
  for (const p of price.values()) sum += p;
  return sum;
}
