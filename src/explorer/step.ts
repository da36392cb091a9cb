/**
 * A system compiled for the search: the layout of the packed global state and its successor function.
 *
 * Layout of one global state (32-bit words): [local id of component 0, …, of component n-1, channel 0
 * slot 0 … slot cap-1, channel 1 …]. A channel's messages are left-aligned, 0 marks a free slot.
 */
import type { EventObject } from 'xstate';
import { LocalTable, MessageTable, type StepWith } from './local.js';
import { Layout, hashLane, hashLanes } from './pack.js';

/** kinds of a cached environment step (see envSucc) */
const SELF = 0;
const PATCH = 1;
const FULL = 2;
import { type AnySnapshot, type GlobalView, type StepLabel, type SystemSpec, SystemError } from './system.js';

export class CompiledSystem {
  readonly names: string[];
  readonly tables: LocalTable[];
  readonly messages = new MessageTable();
  readonly width: number;
  readonly chanNames: string[];
  readonly chanOff: Int32Array;
  readonly chanCap: Int32Array;
  readonly chanTo: Int32Array;
  /** env steps: component, table slot and message id, in declaration order. */
  readonly envComp: Int32Array;
  readonly envSlot: Int32Array;
  readonly envMsg: Int32Array;
  private readonly routes: Int32Array[];
  private readonly drop: boolean;
  /** Canonical form of a tuple, in place (symmetry reduction); null when none. */
  canon: ((t: Uint32Array, base: number) => void) | null = null;

  constructor(
    readonly spec: SystemSpec,
    opts: { readonly stepWith?: StepWith } = {},
  ) {
    const comps = spec.components;
    if (comps.length === 0) throw new SystemError('the system has no components');
    this.names = comps.map((c) => c.name);
    const dup = this.names.find((n, i) => this.names.indexOf(n) !== i);
    if (dup) throw new SystemError(`component name '${dup}' is used twice`);
    for (const name of [...Object.keys(spec.forget ?? {}), ...Object.keys(spec.cut ?? {})]) {
      if (!this.names.includes(name)) throw new SystemError(`forget or cut names unknown component '${name}'`);
    }
    if (spec.cut && spec.goal) throw new SystemError('a system with cut states can have no goal (reachability through a cut state is not explored)');
    const shared = new Map<unknown, Map<string, LocalTable>>();
    const outputs = new Set(spec.observations ?? []);
    this.tables = comps.map((c) => {
      rejectUnsupported(c.name, c.machine);
      const byInput = shared.get(c.machine) ?? new Map<string, LocalTable>();
      shared.set(c.machine, byInput);
      // components with their own forget or cut functions share a table only when those are the same too
      const key = `${JSON.stringify(c.input ?? null)}|${fnId(spec.forget?.[c.name])}|${fnId(spec.cut?.[c.name])}`;
      let t = byInput.get(key);
      if (!t) {
        t = new LocalTable(c.machine, c.input, c.name, this.messages, opts.stepWith, outputs, spec.forget?.[c.name] ?? null, spec.cut?.[c.name] ?? null);
        byInput.set(key, t);
      }
      return t;
    });
    const chans = spec.channels ?? [];
    this.chanNames = chans.map((c) => c.name);
    this.chanOff = new Int32Array(chans.length);
    this.chanCap = new Int32Array(chans.length);
    this.chanTo = new Int32Array(chans.length);
    let w = comps.length;
    chans.forEach((c, k) => {
      const from = this.names.indexOf(c.from);
      const to = this.names.indexOf(c.to);
      if (from < 0) throw new SystemError(`channel '${c.name}': unknown sender '${c.from}'`);
      if (to < 0) throw new SystemError(`channel '${c.name}': unknown receiver '${c.to}'`);
      if (!Number.isInteger(c.capacity) || c.capacity < 1) throw new SystemError(`channel '${c.name}': capacity must be a positive integer`);
      this.chanOff[k] = w;
      this.chanCap[k] = c.capacity;
      this.chanTo[k] = to;
      w += c.capacity;
    });
    this.width = w;
    this.drop = spec.unhandled === 'drop';
    this.routes = comps.map(() => new Int32Array(16).fill(-2));

    const env = spec.environment ?? {};
    for (const name of Object.keys(env)) {
      if (!this.names.includes(name)) throw new SystemError(`environment names unknown component '${name}'`);
    }
    const ec: number[] = [];
    const es: number[] = [];
    const em: number[] = [];
    comps.forEach((c, i) => {
      for (const e of env[c.name] ?? []) {
        const id = this.messages.intern(e);
        ec.push(i);
        em.push(id);
        es.push(this.tables[i]!.slot(id));
      }
    });
    this.envComp = Int32Array.from(ec);
    this.envSlot = Int32Array.from(es);
    this.envMsg = Int32Array.from(em);
    this.envSucc = comps.map(() => []);
  }

  /**
   * envSucc[c][local]: the enabled environment steps of component c in local state `local`, in
   * declaration order, as quadruples (step id, next local id, kind, packed delta) for `succLayout`.
   * Kinds: SELF — a self-loop that sends nothing, the state itself; PATCH — sends nothing and no symmetry
   * to apply, so the successor is the parent's lanes plus `delta` in lane `layout.lane[c]`; FULL — built
   * as words. Built on first use (and again when the packing widens). A step that sends nothing is
   * enabled whatever the channels hold, so it is marked used (for coverage) here, once.
   */
  private envSucc: (Int32Array | undefined)[][];
  private succLayout: Layout | null = null;

  private envSuccOf(c: number, local: number, layout: Layout): Int32Array | null {
    const list: number[] = [];
    const table = this.tables[c]!;
    for (let s = 0; s < this.envComp.length; s++) {
      if (this.envComp[s] !== c) continue;
      const to = table.step(local, this.envSlot[s]!);
      if (to < 0 || table.isCut(to)) continue;
      const sends = table.lastEmits.length > 0;
      if (!sends) table.markUsed();
      let kind = FULL;
      if (!sends && to === local) kind = SELF;
      else if (!sends && this.canon === null) {
        if (to > layout.mask[c]!) {
          this.overflow(c, to);
          return null;
        }
        kind = PATCH;
      }
      list.push(s, to, kind, (to - local) << layout.shift[c]!);
    }
    const out = Int32Array.from(list);
    this.envSucc[c]![local] = out;
    return out;
  }

  /** Number of step ids: env steps first, then one delivery step per channel. */
  get stepCount(): number {
    return this.envComp.length + this.chanNames.length;
  }

  initialTuple(): Uint32Array {
    const t = new Uint32Array(this.width);
    this.tables.forEach((table, i) => {
      t[i] = table.initial();
      if (table.isCut(t[i]!)) throw new SystemError(`${this.names[i]}: its initial state is cut`);
    });
    this.canon?.(t, 0);
    return t;
  }

  /** Set by `expandInto` when it returns -1: a value that does not fit the layout, and its position. */
  overflowPos = -1;
  overflowValue = 0;

  /**
   * Write every enabled successor of `cur` (words; `curLanes` the same state packed by `layout`) packed
   * into `out` (successor k at (at+k)·lanes), its hash (see pack.ts) into `hashes[at+k]` and its step id
   * into `steps[at+k]`. Returns how many were written — the number of enabled steps — or -1 when a
   * successor has a value the layout cannot hold (see `overflowPos`). A step that leaves the state as it is (a local self-loop that sends nothing) is
   * written as `~step`, with no lanes: it needs no lookup. A step that changes one component's local id
   * and sends nothing is its parent's lanes with one field patched; other steps are built as words in
   * `scratch` and packed.
   */
  expandInto(cur: Uint32Array, curLanes: Int32Array, layout: Layout, out: Int32Array, hashes: Int32Array, steps: Int32Array, at: number, scratch: Uint32Array): number {
    let n = at;
    const w = this.width;
    const l = layout.lanes;
    const canon = this.canon;
    const nComp = this.tables.length;
    if (layout !== this.succLayout) {
      this.envSucc = this.tables.map(() => []);
      this.succLayout = layout;
    }
    const lane0 = curLanes[0]!;
    for (let c = 0; c < nComp; c++) {
      const from = cur[c]!;
      const succ = this.envSucc[c]![from] ?? this.envSuccOf(c, from, layout);
      if (succ === null) return -1;
      const len = succ.length;
      const laneC = layout.lane[c]!;
      for (let j = 0; j < len; j += 4) {
        const s = succ[j]!;
        const kind = succ[j + 2]!;
        if (kind === SELF) {
          steps[n++] = ~s;
        } else if (kind === PATCH) {
          if (l === 1) {
            const v = (lane0 + succ[j + 3]!) | 0;
            out[n] = v;
            hashes[n] = hashLane(v);
          } else {
            const base = n * l;
            for (let k = 0; k < l; k++) out[base + k] = curLanes[k]!;
            out[base + laneC] = (out[base + laneC]! + succ[j + 3]!) | 0;
            hashes[n] = hashLanes(out, base, l);
          }
          steps[n++] = s;
        } else {
          for (let i = 0; i < w; i++) scratch[i] = cur[i]!;
          scratch[c] = succ[j + 1]!;
          const table = this.tables[c]!;
          table.step(from, this.envSlot[s]!);
          if (table.lastEmits.length > 0) {
            if (!this.appendAll(scratch, 0, c, table.lastEmits)) continue;
            table.markUsed();
          }
          if (canon !== null) canon(scratch, 0);
          const bad = layout.pack(scratch, 0, out, n * l);
          if (bad >= 0) return this.overflow(bad, scratch[bad]!);
          hashes[n] = hashLanes(out, n * l, l);
          steps[n++] = s;
        }
      }
    }
    const nEnv = this.envComp.length;
    const tables = this.tables;
    for (let k = 0; k < this.chanNames.length; k++) {
      const off = this.chanOff[k]!;
      const msg = cur[off]!;
      if (msg === 0) continue;
      const r = this.chanTo[k]!;
      const table = tables[r]!;
      const to = table.step(cur[r]!, table.slot(msg));
      if (to < 0 && !this.drop) continue;
      if (to >= 0 && table.isCut(to)) continue;
      for (let i = 0; i < w; i++) scratch[i] = cur[i]!;
      const cap = this.chanCap[k]!;
      for (let i = 0; i < cap - 1; i++) scratch[off + i] = scratch[off + i + 1]!;
      scratch[off + cap - 1] = 0;
      if (to >= 0) {
        scratch[r] = to;
        const emits = table.lastEmits;
        if (emits.length > 0 && !this.appendAll(scratch, 0, r, emits)) continue;
        table.markUsed();
      }
      if (canon !== null) canon(scratch, 0);
      const bad = layout.pack(scratch, 0, out, n * l);
      if (bad >= 0) return this.overflow(bad, scratch[bad]!);
      hashes[n] = hashLanes(out, n * l, l);
      steps[n++] = nEnv + k;
    }
    return n - at;
  }

  private overflow(pos: number, value: number): -1 {
    this.overflowPos = pos;
    this.overflowValue = value;
    return -1;
  }

  /**
   * Call `onSucc(stepId, next)` for every enabled step of `cur` (`next` is valid only during the call).
   * Returns the number of enabled steps. (The search uses `expandInto`; this is for traces and tools.)
   */
  expand(cur: Uint32Array, onSucc: (step: number, next: Uint32Array) => void): number {
    const w = this.width;
    const max = Math.max(1, this.stepCount);
    const plain = (this.plainLayout ??= Layout.plain(w));
    const curLanes = new Int32Array(plain.lanes);
    plain.pack(cur, 0, curLanes, 0);
    const out = new Int32Array(max * plain.lanes);
    const steps = new Int32Array(max);
    const n = this.expandInto(cur, curLanes, plain, out, new Int32Array(max), steps, 0, new Uint32Array(w));
    const next = new Uint32Array(w);
    for (let k = 0; k < n; k++) {
      const s = steps[k]!;
      if (s < 0) next.set(cur);
      else plain.unpack(out, k * plain.lanes, next);
      onSucc(s < 0 ? ~s : s, next);
    }
    return n;
  }
  private plainLayout: Layout | undefined;

  private appendAll(t: Uint32Array, base: number, sender: number, emits: Uint32Array): boolean {
    for (let i = 0; i < emits.length; i++) {
      const msg = emits[i]!;
      const k = this.route(sender, msg);
      const off = base + this.chanOff[k]!;
      const end = off + this.chanCap[k]!;
      let j = off;
      while (j < end && t[j] !== 0) j++;
      if (j === end) return false; // channel full: the step is not enabled
      t[j] = msg;
    }
    return true;
  }

  /** The channel index message id `msg` emitted by component `sender` goes on (read-only use: exporters). */
  channelOf(sender: number, msg: number): number {
    return this.route(sender, msg);
  }

  private route(sender: number, msg: number): number {
    let r = this.routes[sender]!;
    if (msg >= r.length) {
      const g = new Int32Array(Math.max(msg + 1, r.length * 2)).fill(-2);
      g.set(r);
      this.routes[sender] = r = g;
    }
    let k = r[msg]!;
    if (k === -2) {
      const type = this.messages.events[msg]!.type;
      const chans = this.spec.channels ?? [];
      const from = this.names[sender]!;
      k = chans.findIndex((c) => c.from === from && c.messages?.includes(type));
      if (k < 0) k = chans.findIndex((c) => c.from === from && c.messages === undefined);
      if (k < 0) throw new SystemError(`${from} emitted '${type}' but no channel from ${from} carries it`);
      r[msg] = k;
    }
    return k;
  }

  /** The label of step `step` taken from state `cur`. */
  label(step: number, cur: Uint32Array): StepLabel {
    const nEnv = this.envComp.length;
    if (step < nEnv) {
      return { kind: 'env', component: this.names[this.envComp[step]!]!, event: this.messages.events[this.envMsg[step]!]! };
    }
    const k = step - nEnv;
    return {
      kind: 'deliver',
      component: this.names[this.chanTo[k]!]!,
      event: this.messages.events[cur[this.chanOff[k]!]!]!,
      channel: this.chanNames[k]!,
    };
  }

  /** The observations (SystemSpec.observations) step `step` emits when taken from state `cur`. */
  observe(step: number, cur: Uint32Array): readonly EventObject[] {
    const nEnv = this.envComp.length;
    if (step < nEnv) {
      const c = this.envComp[step]!;
      return this.tables[c]!.observations(cur[c]!, this.envSlot[step]!);
    }
    const k = step - nEnv;
    const r = this.chanTo[k]!;
    const msg = cur[this.chanOff[k]!]!;
    if (msg === 0) return [];
    const table = this.tables[r]!;
    return table.observations(cur[r]!, table.slot(msg));
  }

    /** A view of tuple `t` for predicates. Cheap: reuse it by calling `bind`. */
  view(t?: Uint32Array): BoundView {
    return new BoundView(this, t ?? new Uint32Array(this.width));
  }
}

export class BoundView implements GlobalView {
  private readonly index = new Map<string, number>();
  private readonly chanIndex = new Map<string, number>();

  constructor(
    private readonly sys: CompiledSystem,
    public tuple: Uint32Array,
  ) {
    sys.names.forEach((n, i) => this.index.set(n, i));
    sys.chanNames.forEach((n, i) => this.chanIndex.set(n, i));
  }

  bind(t: Uint32Array): this {
    this.tuple = t;
    return this;
  }

  snapshot(component: string): AnySnapshot {
    const i = this.index.get(component);
    if (i === undefined) throw new SystemError(`no component '${component}'`);
    return this.sys.tables[i]!.snapshots[this.tuple[i]!]!;
  }

  value(component: string): unknown {
    return this.snapshot(component).value;
  }

  context<T = unknown>(component: string): T {
    return this.snapshot(component).context as T;
  }

  channel(name: string): readonly EventObject[] {
    const k = this.chanIndex.get(name);
    if (k === undefined) throw new SystemError(`no channel '${name}'`);
    const out: EventObject[] = [];
    const off = this.sys.chanOff[k]!;
    for (let i = 0; i < this.sys.chanCap[k]!; i++) {
      const m = this.tuple[off + i]!;
      if (m === 0) break;
      out.push(this.sys.messages.events[m]!);
    }
    return out;
  }
}

/** Refuse machine features the explorer cannot model, with a message naming the feature. */
function rejectUnsupported(name: string, machine: { root: { config?: unknown } }): void {
  const walk = (node: { config: { invoke?: unknown; after?: unknown; always?: unknown }; states?: Record<string, unknown>; key?: string }) => {
    if (node.config.invoke) throw new SystemError(`${name}: state '${node.key}' invokes an actor; the explorer needs plain machines`);
    if (node.config.after) throw new SystemError(`${name}: state '${node.key}' has a delayed (after) transition; model time as an environment event`);
    for (const child of Object.values(node.states ?? {})) walk(child as never);
  };
  walk(machine.root as never);
}

const fnIds = new WeakMap<object, number>();
let nextFnId = 1;
/** A number naming a function, for table sharing (0: none). */
function fnId(f: object | undefined): number {
  if (f === undefined) return 0;
  let id = fnIds.get(f);
  if (id === undefined) fnIds.set(f, (id = nextFnId++));
  return id;
}
