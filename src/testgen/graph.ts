/**
 * The explored global graph of a system, as test generation sees it: every reachable global state (index
 * 0 is the initial one), every step between them (with the explorer's label), and for each step and state
 * the coverage items of each component it touches. Built from the explorer's public pieces
 * (`CompiledSystem`, `search` with recorded edges), without symmetry reduction: a test path must be a run
 * of concrete steps.
 */
import type { EventObject } from 'xstate';
import { search } from '../explorer/search.js';
import { CompiledSystem } from '../explorer/step.js';
import type { AnySnapshot, StepLabel, SystemSpec } from '../explorer/system.js';
import { formatValue } from '../explorer/trace.js';
import { type MachineItems, activeStates, firedTransitions, machineItems } from './items.js';

/** The exploration stopped at a bound: test generation needs the whole graph. */
export class GraphLimitError extends Error {
  override readonly name = 'GraphLimitError';
}

export interface GraphOptions {
  /** Refuse systems with more global states than this (default 2,000,000). */
  readonly maxStates?: number;
}

export class ModelGraph {
  readonly sys: CompiledSystem;
  readonly name: string;
  readonly components: readonly string[];
  readonly items: readonly MachineItems[];
  readonly stateCount: number;
  readonly edgeCount: number;
  /** Edges of state s are start[s] .. start[s+1]. */
  readonly start: Int32Array;
  readonly from: Int32Array;
  readonly to: Int32Array;
  /** The explorer's step id of each edge (env steps first, then one per channel). */
  readonly stepId: Int32Array;
  /** Global state tuples, `width` words each. */
  private readonly tuples: Uint32Array;
  private readonly labels: (StepLabel | undefined)[];
  private readonly fired: (EdgeFiring | undefined)[];
  private readonly active = new Map<string, readonly number[]>();

  constructor(
    readonly spec: SystemSpec,
    opts: GraphOptions = {},
  ) {
    this.sys = new CompiledSystem(spec);
    this.name = spec.name ?? 'system';
    this.components = this.sys.names;
    this.items = spec.components.map((c) => machineItems(c.name, c.machine));
    const maxStates = opts.maxStates ?? 2_000_000;
    const out = search(this.sys, { recordEdges: true, maxStates, progress: false });
    if (out.limit || !out.edges) {
      throw new GraphLimitError(`${this.name}: ${out.limit?.message ?? 'no edges recorded'}; test generation needs the whole state graph`);
    }
    const { start, to, step } = out.edges;
    this.stateCount = out.states;
    this.edgeCount = to.length;
    this.start = start;
    this.to = to;
    this.stepId = step;
    this.from = new Int32Array(to.length);
    for (let s = 0; s < this.stateCount; s++) for (let e = start[s]!; e < start[s + 1]!; e++) this.from[e] = s;
    const w = this.sys.width;
    this.tuples = new Uint32Array(this.stateCount * w);
    const buf = new Uint32Array(w);
    for (let s = 0; s < this.stateCount; s++) {
      out.store.load(s, buf);
      this.tuples.set(buf, s * w);
    }
    this.labels = new Array(this.edgeCount);
    this.fired = new Array(this.edgeCount);
  }

  /** The tuple of global state `s` (a view; do not keep it across calls that may change it). */
  tuple(s: number): Uint32Array {
    const w = this.sys.width;
    return this.tuples.subarray(s * w, s * w + w);
  }

  /** Component `c`'s snapshot in global state `s`. */
  snapshot(s: number, c: number): AnySnapshot {
    return this.sys.tables[c]!.snapshots[this.tuples[s * this.sys.width + c]!]!;
  }

  /** Every component's state value in `s`, formatted (`a.b|c.d`), in component order. */
  values(s: number): Record<string, string> {
    const out: Record<string, string> = {};
    this.components.forEach((n, c) => (out[n] = formatValue(this.snapshot(s, c).value)));
    return out;
  }

  label(e: number): StepLabel {
    let l = this.labels[e];
    if (!l) this.labels[e] = l = this.sys.label(this.stepId[e]!, this.tuple(this.from[e]!));
    return l;
  }

  /** The component that takes edge `e` and the transition definitions it fires ([] when it takes none). */
  firing(e: number): EdgeFiring {
    let f = this.fired[e];
    if (!f) {
      const l = this.label(e);
      const c = this.components.indexOf(l.component);
      f = { component: c, transitions: this.firedMemo(c, this.tuples[this.from[e]! * this.sys.width + c]!, l.event) };
      this.fired[e] = f;
    }
    return f;
  }

  private readonly firedCache = new Map<string, readonly number[]>();
  private firedMemo(c: number, local: number, event: EventObject): readonly number[] {
    const key = `${c}|${local}|${JSON.stringify(event)}`;
    let r = this.firedCache.get(key);
    if (!r) this.firedCache.set(key, (r = firedTransitions(this.items[c]!, this.sys.tables[c]!.snapshots[local]!, event)));
    return r;
  }

  /** The state nodes of component `c` active in global state `s` (indices into `items[c].states`). */
  activeStates(s: number, c: number): readonly number[] {
    const local = this.tuples[s * this.sys.width + c]!;
    const key = `${c}|${local}`;
    let r = this.active.get(key);
    if (!r) this.active.set(key, (r = activeStates(this.items[c]!, this.snapshot(s, c))));
    return r;
  }
}

export interface EdgeFiring {
  /** Index of the component that takes the step. */
  readonly component: number;
  /** Indices into that component's `items.transitions`. */
  readonly transitions: readonly number[];
}

/** Explore `spec` fully and return its graph (throws GraphLimitError past `maxStates`). */
export function buildModelGraph(spec: SystemSpec, opts: GraphOptions = {}): ModelGraph {
  return new ModelGraph(spec, opts);
}
