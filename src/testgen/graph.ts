/**
 * The explored global graph of a system, as test generation sees it: the explorer's ExploredGraph
 * (every reachable global state, index 0 the initial one; every step between them with its label) plus,
 * for each step and state, the coverage items of each component it touches. Without symmetry
 * reduction: a test path must be a run of concrete steps.
 */
import type { EventObject } from 'xstate';
import { ExploredGraph } from '../explorer/graph.js';
import { CompiledSystem } from '../explorer/step.js';
import type { SystemSpec } from '../explorer/system.js';
import { type MachineItems, activeStates, firedTransitions, machineItems } from './items.js';

/** The exploration stopped at a bound: test generation needs the whole graph. */
export class GraphLimitError extends Error {
  override readonly name = 'GraphLimitError';
}

export interface GraphOptions {
  /** Refuse systems with more global states than this (default 2,000,000). */
  readonly maxStates?: number;
}

export class ModelGraph extends ExploredGraph {
  readonly name: string;
  readonly items: readonly MachineItems[];
  private readonly fired: (EdgeFiring | undefined)[];
  private readonly active = new Map<string, readonly number[]>();

  constructor(
    readonly spec: SystemSpec,
    opts: GraphOptions = {},
  ) {
    const name = spec.name ?? 'system';
    super(new CompiledSystem(spec), {
      maxStates: opts.maxStates ?? 2_000_000,
      incomplete: (limit) => new GraphLimitError(`${name}: ${limit?.message ?? 'no edges recorded'}; test generation needs the whole state graph`),
    });
    this.name = name;
    this.items = spec.components.map((c) => machineItems(c.name, c.machine));
    this.fired = new Array(this.edgeCount);
  }

  /** The component that takes edge `e` and the transition definitions it fires ([] when it takes none). */
  firing(e: number): EdgeFiring {
    let f = this.fired[e];
    if (!f) {
      const l = this.label(e);
      const c = this.components.indexOf(l.component);
      f = { component: c, transitions: this.firedMemo(c, this.local(this.from[e]!, c), l.event) };
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
    const local = this.local(s, c);
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
