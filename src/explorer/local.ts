/**
 * One component's local state space: every distinct snapshot interned to a small integer, and every
 * (local state, event) step memoised, so XState computes each distinct local step once.
 * Interchangeable components (same machine, equal input) share one table, which is what makes their
 * local ids comparable for symmetry reduction.
 *
 * A step is `machine.transition(snapshot, event, scope)` with one inert actor scope per table, made
 * once, whose action executor collects the actions instead of running them. That is what XState's pure
 * `transition(machine, snapshot, event)` helper does too, except that the helper builds a new actor for
 * its scope on every call, and an actor's constructor computes the machine's initial snapshot — with
 * `input` undefined, so a context factory that reads its input throws, and the error is caught and
 * recorded. On the migration system that throw-away actor was most of the time of a search; the
 * snapshots and actions are the same either way (`stepWith: 'helper'` keeps the helper, for comparisons).
 */
import { inertScope } from '../../machines/inertScope.js';
import { type AnyActorScope, type AnyStateMachine, type EventObject, createActor, initialTransition, transition } from 'xstate';
import { raisingDefs } from './machineShape.js';
import { type AnySnapshot, SystemError } from './system.js';

/** How a table asks XState for a step: one reused inert actor scope (default), or the transition() helper. */
export type StepWith = 'scope' | 'helper';


/** memo cell values */
const UNKNOWN = -1;
const DISABLED = -2;

export interface LocalStep {
  /** Next local id, or -1 when the step is not enabled. */
  readonly next: number;
  /** Emitted messages as global message ids (empty when none). */
  readonly emits: Uint32Array;
}

/** Interned events (environment samples and messages) shared by the whole system. */
export class MessageTable {
  readonly events: EventObject[] = [undefined as unknown as EventObject]; // id 0 = empty slot
  private readonly ids = new Map<string, number>();

  intern(e: EventObject): number {
    const key = JSON.stringify(e);
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.events.length;
      this.events.push(e);
      this.ids.set(key, id);
    }
    return id;
  }
}

/** A stable key for a snapshot: its value, context, status and history. */
export function snapshotKey(s: AnySnapshot): string {
  const hist = s.historyValue as Record<string, { id: string }[]> | undefined;
  const h = hist && Object.keys(hist).length > 0 ? Object.entries(hist).map(([k, v]) => [k, v.map((n) => n.id)]) : 0;
  return JSON.stringify([s.value, s.context, s.status === 'active' ? 0 : s.status, h]);
}

const EMPTY = new Uint32Array(0);

export class LocalTable {
  readonly snapshots: AnySnapshot[] = [];
  private readonly keys = new Map<string, number>();
  /** Event slots of this table: global message id → slot. */
  private slotOf = new Int32Array(64).fill(-1);
  readonly slotEvent: number[] = [];
  /** memo[local * stride + slot]: next local id, DISABLED, or UNKNOWN. */
  private memo: Int32Array;
  /** emitted message ids per memo cell, when any. */
  private readonly emitted = new Map<number, Uint32Array>();
  /** observations (emitted events of the `outputs` types) per memo cell, when any. */
  private readonly observed = new Map<number, readonly EventObject[]>();
  /** memo cell has emitted messages (1) or not (0): spares a Map lookup on the hot path. */
  private hasEmits: Uint8Array;
  /** a memo cell was used by a global step (for coverage). */
  used: Uint8Array;
  private stride = 8;
  transitionsRun = 0;
  /** actions executed by the last step (when stepping with the reused scope) */
  private readonly sink: { type: string }[] = [];
  private scope: AnyActorScope | null = null;
  /**
   * For machines that raise events (machineShape's raisingDefs): the transitions each computed step took,
   * microsteps included, per memo cell — what coverage would otherwise replay. Null for other machines.
   */
  private readonly firedSink: unknown[] | null;
  private readonly fired = new Map<number, readonly unknown[]>();

  constructor(
    readonly machine: AnyStateMachine,
    readonly input: unknown,
    readonly label: string,
    private readonly messages: MessageTable,
    private readonly stepWith: StepWith = 'scope',
    /** Emitted event types that are observations, not messages. */
    private readonly outputs: ReadonlySet<string> = new Set(),
    /** SystemSpec.forget of this component: applied to every snapshot before it is interned. */
    private readonly forget: ((s: AnySnapshot) => AnySnapshot) | null = null,
    /** SystemSpec.cut of this component: local states no step goes into. */
    private readonly cutWhen: ((s: AnySnapshot) => boolean) | null = null,
  ) {
    this.firedSink = raisingDefs(machine).size > 0 ? [] : null;
    this.memo = new Int32Array(64 * this.stride).fill(UNKNOWN);
    this.used = new Uint8Array(64 * this.stride);
    this.hasEmits = new Uint8Array(64 * this.stride);
  }

  /** The local id of the machine's initial snapshot. */
  initial(): number {
    const [s, actions] = initialTransition(this.machine, this.input as never);
    if (actions.some((a) => (a.type as string) === 'xstate.emit')) {
      throw new SystemError(`${this.label}: emits during its initial transition, which the explorer does not deliver`);
    }
    return this.intern(s as AnySnapshot);
  }

  intern(snapshot: AnySnapshot): number {
    const s = this.forget ? this.forget(snapshot) : snapshot;
    const key = snapshotKey(s);
    let id = this.keys.get(key);
    if (id !== undefined) return id;
    if (s.children && Object.keys(s.children).length > 0) {
      throw new SystemError(`${this.label}: has child actors (invoke/spawn); the explorer needs plain machines`);
    }
    id = this.snapshots.length;
    this.snapshots.push(s);
    this.keys.set(key, id);
    if (this.cutWhen) this.cutIds.push(this.cutWhen(s) ? 1 : 0);
    this.ensureRows(id + 1);
    return id;
  }

  get size(): number {
    return this.snapshots.length;
  }

  /** Whether no step goes into local state `id` (SystemSpec.cut). */
  isCut(id: number): boolean {
    return this.cutIds.length > 0 && this.cutIds[id] === 1;
  }
  private readonly cutIds: number[] = [];

  /** The slot of a message id in this table, assigned on first sight. */
  slot(messageId: number): number {
    if (messageId >= this.slotOf.length) {
      const grown = new Int32Array(Math.max(messageId + 1, this.slotOf.length * 2)).fill(-1);
      grown.set(this.slotOf);
      this.slotOf = grown;
    }
    let slot = this.slotOf[messageId]!;
    if (slot < 0) {
      slot = this.slotEvent.length;
      this.slotEvent.push(messageId);
      this.slotOf[messageId] = slot;
      if (slot >= this.stride) this.widen();
    }
    return slot;
  }

  /**
   * Next local id for (local, slot), or -1 when not enabled. Memoised; the emitted messages of the last
   * call are in `lastEmits`.
   */
  lastEmits: Uint32Array = EMPTY;
  lastCell = 0;

  step(local: number, slot: number): number {
    const cell = local * this.stride + slot;
    this.lastCell = cell;
    let next = this.memo[cell]!;
    if (next === UNKNOWN) next = this.compute(local, slot, cell);
    if (next === DISABLED) return -1;
    this.lastEmits = this.hasEmits[cell] === 0 ? EMPTY : this.emitted.get(cell)!;
    return next;
  }

  /** The observations step (local, slot) emits (empty when none or not enabled). */
  observations(local: number, slot: number): readonly EventObject[] {
    if (this.step(local, slot) < 0) return [];
    return this.observed.get(this.lastCell) ?? [];
  }

  markUsed(): void {
    this.used[this.lastCell] = 1;
  }

  private compute(local: number, slot: number, cell: number): number {
    const snap = this.snapshots[local]!;
    const event = this.messages.events[this.slotEvent[slot]!]!;
    let result: number;
    if (snap.status !== 'active' || !snap.can(event)) {
      result = DISABLED;
    } else {
      this.transitionsRun++;
      const [nextSnap, actions] = this.transition(snap, event);
      const emits: number[] = [];
      const observed: EventObject[] = [];
      for (const a of actions as readonly { type: string; params?: unknown }[]) {
        if (a.type === 'xstate.emit') {
          const e = (a.params as { event: EventObject }).event;
          if (this.outputs.has(e.type)) observed.push(e);
          else emits.push(this.messages.intern(e));
        }
        else if (a.type === 'xstate.sendTo' || a.type === 'xstate.sendParent' || a.type === 'xstate.spawnChild') {
          throw new SystemError(`${this.label}: uses ${a.type}; components talk through emit() and channels`);
        }
      }
      result = this.intern(nextSnap as AnySnapshot);
      if (this.firedSink && this.firedSink.length > 0) this.fired.set(cell, [...new Set(this.firedSink)]);
      if (observed.length > 0) this.observed.set(cell, observed);
      if (emits.length > 0) {
        this.emitted.set(cell, Uint32Array.from(emits));
        this.hasEmits[cell] = 1;
      }
    }
    // intern() may have re-laid out the memo (widen never happens here, rows only grow).
    this.memo[cell] = result;
    return result;
  }

  /** XState's step of the machine: the next snapshot and the actions it would execute. */
  private transition(snap: AnySnapshot, event: EventObject): [AnySnapshot, readonly { type: string }[]] {
    if (this.stepWith === 'helper') return transition(this.machine, snap, event) as [AnySnapshot, { type: string }[]];
    const fired = this.firedSink;
    this.scope ??= inertScope(this.machine, this.input, this.sink, fired ? (ts) => fired.push(...ts) : undefined);
    this.sink.length = 0;
    if (fired) fired.length = 0;
    const next = this.machine.transition(snap, event, this.scope) as AnySnapshot;
    return [next, this.sink.slice()];
  }

  /** Every memoised, enabled step: for differential tests and coverage. */
  *steps(): Generator<{ from: number; event: EventObject; to: number; emits: EventObject[]; used: boolean; fired?: readonly unknown[] }> {
    for (let local = 0; local < this.snapshots.length; local++) {
      for (let slot = 0; slot < this.slotEvent.length; slot++) {
        const cell = local * this.stride + slot;
        const to = this.memo[cell]!;
        if (to < 0) continue;
        const emits = [...(this.emitted.get(cell) ?? EMPTY)].map((id) => this.messages.events[id]!);
        const fired = this.fired.get(cell);
        yield { from: local, event: this.messages.events[this.slotEvent[slot]!]!, to, emits, used: this.used[cell] === 1, ...(fired ? { fired } : {}) };
      }
    }
  }

  /**
   * Read-only, for exporters: every memoised cell — (local, slot) with its message id, and the next local
   * id or -1 when the step is not enabled — with the emitted message ids. Cells never computed (pairs the
   * search never met) are left out; nothing is computed or interned.
   */
  *memoised(): Generator<{ from: number; slot: number; message: number; to: number; emits: Uint32Array }> {
    for (let local = 0; local < this.snapshots.length; local++) {
      for (let slot = 0; slot < this.slotEvent.length; slot++) {
        const cell = local * this.stride + slot;
        const to = this.memo[cell]!;
        if (to === UNKNOWN) continue;
        yield { from: local, slot, message: this.slotEvent[slot]!, to: to === DISABLED ? -1 : to, emits: this.emitted.get(cell) ?? EMPTY };
      }
    }
  }

  /** Retained bytes of the typed arrays (snapshots themselves are counted by the heap). */
  get arrayBytes(): number {
    return this.memo.byteLength + this.used.byteLength + this.hasEmits.byteLength + this.slotOf.byteLength;
  }

  private ensureRows(rows: number): void {
    if (rows * this.stride <= this.memo.length) return;
    const cap = Math.max(rows, Math.ceil((this.memo.length / this.stride) * 1.5)) * this.stride;
    const memo = new Int32Array(cap).fill(UNKNOWN);
    memo.set(this.memo);
    this.memo = memo;
    const used = new Uint8Array(cap);
    used.set(this.used);
    this.used = used;
    const has = new Uint8Array(cap);
    has.set(this.hasEmits);
    this.hasEmits = has;
  }

  private widen(): void {
    const old = this.stride;
    const stride = old * 2;
    const rows = this.memo.length / old;
    const memo = new Int32Array(rows * stride).fill(UNKNOWN);
    const used = new Uint8Array(rows * stride);
    const has = new Uint8Array(rows * stride);
    const emitted = new Map<number, Uint32Array>();
    const observed = new Map<number, readonly EventObject[]>();
    const fired = new Map<number, readonly unknown[]>();
    for (let r = 0; r < rows; r++) {
      for (let s = 0; s < old; s++) {
        memo[r * stride + s] = this.memo[r * old + s]!;
        used[r * stride + s] = this.used[r * old + s]!;
        const e = this.emitted.get(r * old + s);
        if (e) {
          emitted.set(r * stride + s, e);
          has[r * stride + s] = 1;
        }
        const o = this.observed.get(r * old + s);
        if (o) observed.set(r * stride + s, o);
        const f = this.fired.get(r * old + s);
        if (f) fired.set(r * stride + s, f);
      }
    }
    this.memo = memo;
    this.used = used;
    this.hasEmits = has;
    this.emitted.clear();
    for (const [k, v] of emitted) this.emitted.set(k, v);
    this.observed.clear();
    for (const [k, v] of observed) this.observed.set(k, v);
    this.fired.clear();
    for (const [k, v] of fired) this.fired.set(k, v);
    this.stride = stride;
  }
}
