/**
 * Coverage goals and the cover graph they induce. A goal names its items (component states, transition
 * definitions, or transition pairs) and says which items a step covers, possibly depending on a memory
 * carried along the path (pairs remember each component's last transition). The cover graph is the
 * explored graph unfolded by that memory — for states and transitions it is the explored graph itself —
 * with, on every edge, the items taking it covers. Everything downstream (greedy, postman, bounds) works
 * on the cover graph.
 */
import type { ModelGraph } from './graph.js';

export type ItemKind = 'states' | 'transitions' | 'pairs' | 'commands';

/** What a criterion covers: items, and how steps cover them. */
export interface Goal {
  readonly kind: ItemKind;
  /** Item names; `pairs` appends to it as pairs are discovered. */
  readonly names: string[];
  /** How many items the machines define (null when not enumerated, as for pairs). */
  readonly defined: number | null;
  /** Items covered by the initial state itself. */
  initialItems(): readonly number[];
  /** The memory after taking model edge `e` with memory `m` (0 is the initial memory). */
  next(m: number, e: number): number;
  /** Push onto `out` the items covered by taking model edge `e` with memory `m`. */
  covered(m: number, e: number, out: number[]): void;
}

/** Component states: an edge covers the state nodes its component enters. */
export function statesGoal(g: ModelGraph): Goal {
  const offset = offsets(g.items.map((i) => i.states.length));
  const names = g.items.flatMap((it) => it.states.map((s) => `${it.component}: ${s}`));
  return {
    kind: 'states',
    names,
    defined: names.length,
    initialItems: () => g.components.flatMap((_, c) => g.activeStates(0, c).map((k) => offset[c]! + k)),
    next: () => 0,
    covered: (_m, e, out) => {
      const c = g.firing(e).component;
      const before = g.activeStates(g.from[e]!, c);
      for (const k of g.activeStates(g.to[e]!, c)) if (!before.includes(k)) out.push(offset[c]! + k);
    },
  };
}

/** Transition definitions: an edge covers the definitions its step fires. */
export function transitionsGoal(g: ModelGraph): Goal {
  const offset = offsets(g.items.map((i) => i.transitions.length));
  const names = g.items.flatMap((it) => it.transitions.map((t) => `${it.component}: ${t}`));
  return {
    kind: 'transitions',
    names,
    defined: names.length,
    initialItems: () => [],
    next: () => 0,
    covered: (_m, e, out) => {
      const f = g.firing(e);
      for (const t of f.transitions) out.push(offset[f.component]! + t);
    },
  };
}

/**
 * Every command in every state, however the state was entered: one item per (component, local state,
 * the transition definitions of the step that entered it, environment event) that the explored graph
 * takes — accepted or refused by the model alike, since a refusal is an observation too. A local state
 * is the component's snapshot without `context.last` (the previous call's result, which decides nothing
 * about the next one), so each command is tried in every distinct situation: read on a live, a drained,
 * a disabled and a closed fd, every SET from every state with every session, and so on.
 *
 * The way in is part of the situation because a device that gets one transition wrong usually lands in
 * a state the model does not have — a session a reset should have ended, a dirty count a read should
 * have drained — which looks like the model's state until the next command: trying every command after
 * every way in tells the two apart (the commands that follow a reset from STOP_COPY include the read on
 * the session it ended). A way in is the state value the component came from and the definitions its
 * step fired; steps that leave the local state as it was (a refusal, a query) are not ways in.
 */
export function commandsGoal(g: ModelGraph): Goal {
  const n = g.components.length;
  const names: string[] = [];
  const itemIds = new Map<string, number>();
  const localKeys = new Map<string, number>();
  const localKeyOf = new Map<number, number>();
  const keyOf = (c: number, local: number) => {
    const memo = c * 0x100000 + local;
    let k = localKeyOf.get(memo);
    if (k === undefined) {
      const snap = g.sys.tables[c]!.snapshots[local]!;
      const ctx = snap.context as Record<string, unknown> | undefined;
      const rest = ctx && typeof ctx === 'object' ? Object.fromEntries(Object.entries(ctx).filter(([f]) => f !== 'last')) : ctx;
      const text = `${c}|${JSON.stringify(snap.value)}|${JSON.stringify(rest)}`;
      k = localKeys.get(text);
      if (k === undefined) localKeys.set(text, (k = localKeys.size));
      localKeyOf.set(memo, k);
    }
    return k;
  };
  // The memory: per component that takes commands, the way into its local state — the state value it
  // came from and the definitions the step fired (way 0: the initial state). Components the environment
  // does not drive keep way 0, so the cover graph unfolds only as far as the commands need.
  const driven = g.components.map((name) => (g.spec.environment?.[name]?.length ?? 0) > 0);
  const sets = new Interner<readonly number[]>((d) => d.join(','));
  sets.id([]);
  const values = new Interner<string>((v) => v);
  const valueOf = (c: number, local: number) => values.id(JSON.stringify(g.sys.tables[c]!.snapshots[local]!.value));
  const ways = new Interner<readonly [number, number]>((w) => `${w[0]}|${w[1]}`);
  ways.id([-1, 0]);
  const memories = new Interner<Int32Array>((m) => m.join(','));
  memories.id(new Int32Array(n));
  const nextCache = new Map<number, number>();
  return {
    kind: 'commands',
    names,
    defined: null,
    initialItems: () => [],
    next: (m, e) => {
      const key = m * g.edgeCount + e;
      let r = nextCache.get(key);
      if (r !== undefined) return r;
      const f = g.firing(e);
      const c = f.component;
      if (!driven[c] || f.transitions.length === 0 || keyOf(c, g.tuple(g.from[e]!)[c]!) === keyOf(c, g.tuple(g.to[e]!)[c]!)) r = m;
      else {
        const mem = Int32Array.from(memories.get(m));
        mem[c] = ways.id([valueOf(c, g.tuple(g.from[e]!)[c]!), sets.id(f.transitions)]);
        r = memories.id(mem);
      }
      nextCache.set(key, r);
      return r;
    },
    covered: (m, e, out) => {
      const l = g.label(e);
      if (l.kind !== 'env') return;
      const c = g.components.indexOf(l.component);
      const local = keyOf(c, g.tuple(g.from[e]!)[c]!);
      const way = memories.get(m)[c]!;
      const key = `${local}|${way}|${JSON.stringify(l.event)}`;
      let id = itemIds.get(key);
      if (id === undefined) {
        id = names.length;
        itemIds.set(key, id);
        const { type, ...payload } = l.event;
        const args = Object.keys(payload).length > 0 ? ` ${JSON.stringify(payload)}` : '';
        const [prev, defs] = ways.get(way);
        const how = way === 0 ? 'initial' : `entered from ${values.get(prev)} by ${sets.get(defs).map((t) => `(${g.items[c]!.transitions[t]})`).join(' ')}`;
        names.push(`${l.component}: ${g.values(g.from[e]!)[l.component]} (local state ${local}, ${how}) ${type}${args}`);
      }
      out.push(id);
    },
  };
}

/** Values numbered in the order first seen, by a string key. */
class Interner<T> {
  private readonly ids = new Map<string, number>();
  private readonly values: T[] = [];
  constructor(private readonly key: (v: T) => string) {}
  id(v: T): number {
    const k = this.key(v);
    let id = this.ids.get(k);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(v);
      this.ids.set(k, id);
    }
    return id;
  }
  get(id: number): T {
    return this.values[id]!;
  }
}

/**
 * Transition pairs: (t1, t2) of one component, where t2 is fired by that component's very next step
 * after the step that fired t1 (other components may step in between; steps that fire nothing, such as
 * dropped deliveries, do not count). The memory is each component's last fired set of definitions.
 */
export function pairsGoal(g: ModelGraph): Goal {
  const n = g.components.length;
  const sets = new Interner<readonly number[]>((d) => d.join(','));
  sets.id([]); // set id 0: nothing fired yet
  const memories = new Interner<Int32Array>((m) => m.join(','));
  memories.id(new Int32Array(n));
  const names: string[] = [];
  const pairIds = new Map<string, number>();
  const nextCache = new Map<number, number>();
  const pairId = (c: number, a: number, b: number) => {
    const key = `${c}|${a}|${b}`;
    let id = pairIds.get(key);
    if (id === undefined) {
      id = names.length;
      const it = g.items[c]!;
      names.push(`${it.component}: (${it.transitions[a]}) then (${it.transitions[b]})`);
      pairIds.set(key, id);
    }
    return id;
  };
  return {
    kind: 'pairs',
    names,
    defined: null,
    initialItems: () => [],
    next: (m, e) => {
      const key = m * g.edgeCount + e;
      let r = nextCache.get(key);
      if (r !== undefined) return r;
      const f = g.firing(e);
      if (f.transitions.length === 0) r = m;
      else {
        const mem = Int32Array.from(memories.get(m));
        mem[f.component] = sets.id(f.transitions);
        r = memories.id(mem);
      }
      nextCache.set(key, r);
      return r;
    },
    covered: (m, e, out) => {
      const f = g.firing(e);
      if (f.transitions.length === 0) return;
      const last = sets.get(memories.get(m)[f.component]!);
      for (const a of last) for (const b of f.transitions) out.push(pairId(f.component, a, b));
    },
  };
}

function offsets(sizes: readonly number[]): number[] {
  const out: number[] = [];
  let acc = 0;
  for (const s of sizes) {
    out.push(acc);
    acc += s;
  }
  return out;
}

/** The explored graph unfolded by a goal's memory, with the items each edge covers. Node 0 is the start. */
export interface CoverGraph {
  readonly goal: Goal;
  readonly nodeCount: number;
  /** Edges of node x are start[x] .. start[x+1]. */
  readonly start: Int32Array;
  readonly to: Int32Array;
  /** The model edge each cover edge stands for. */
  readonly edge: Int32Array;
  /** Items of cover edge a are items[itemStart[a] .. itemStart[a+1]). */
  readonly itemStart: Int32Array;
  readonly items: Int32Array;
  /** Items covered before any step. */
  readonly initial: readonly number[];
  /** Every item some run from the initial state covers, ascending. */
  readonly reachable: readonly number[];
}

/** Unfold `g` by `goal`'s memory (breadth-first from the initial state) and collect the items. */
export function buildCoverGraph(g: ModelGraph, goal: Goal): CoverGraph {
  const ids = new Map<number, number>();
  const nodeState: number[] = [0];
  const nodeMemory: number[] = [0];
  ids.set(0, 0);
  const start: number[] = [];
  const to: number[] = [];
  const edge: number[] = [];
  const itemStart: number[] = [];
  const items: number[] = [];
  const tmp: number[] = [];
  for (let x = 0; x < nodeState.length; x++) {
    start.push(to.length);
    const s = nodeState[x]!;
    const m = nodeMemory[x]!;
    for (let e = g.start[s]!; e < g.start[s + 1]!; e++) {
      const m2 = goal.next(m, e);
      const t = g.to[e]!;
      const key = m2 * g.stateCount + t;
      let y = ids.get(key);
      if (y === undefined) {
        y = nodeState.length;
        ids.set(key, y);
        nodeState.push(t);
        nodeMemory.push(m2);
      }
      to.push(y);
      edge.push(e);
      itemStart.push(items.length);
      tmp.length = 0;
      goal.covered(m, e, tmp);
      for (const i of new Set(tmp)) items.push(i);
    }
  }
  start.push(to.length);
  itemStart.push(items.length);
  const initial = [...new Set(goal.initialItems())].sort((a, b) => a - b);
  const reached = new Set<number>([...initial, ...items]);
  return {
    goal,
    nodeCount: nodeState.length,
    start: Int32Array.from(start),
    to: Int32Array.from(to),
    edge: Int32Array.from(edge),
    itemStart: Int32Array.from(itemStart),
    items: Int32Array.from(items),
    initial,
    reachable: [...reached].sort((a, b) => a - b),
  };
}
