/**
 * The model as something to step: a cursor over a system's global states that takes suite steps by their
 * label (who, which event, from the environment or which channel) and reports every component's state
 * value — what replay checks fixtures against, and the model adapter (the model itself as the system
 * under test, so the runner can be exercised without QEMU).
 */
import { CompiledSystem } from '../explorer/step.js';
import type { SystemSpec } from '../explorer/system.js';
import { formatValue } from '../explorer/trace.js';
import type { EventObject } from 'xstate';
import { type JsonValue, type Observations, type StateValues, type SuiteStep, canonicalEvent, eventKey } from './fixture.js';
import type { SutAdapter } from './runner.js';

/** A step as the system under test is asked to take it: a suite step without its expectation. */
export type StepAction = Omit<SuiteStep, 'expect' | 'observe'>;

/** A step the model allows, and every component's value after it. */
export interface AllowedStep {
  readonly step: StepAction;
  readonly values: StateValues;
}

export class ModelCursor {
  private readonly sys: CompiledSystem;
  private cur: Uint32Array;
  /** The state before the last step taken, and who took which event (null right after reset). */
  private prev: Uint32Array;
  private lastStep: { component: number; event: EventObject } | null = null;

  constructor(readonly spec: SystemSpec) {
    this.sys = new CompiledSystem(spec);
    this.cur = this.sys.initialTuple();
    this.prev = this.cur;
  }

  get components(): readonly string[] {
    return this.sys.names;
  }

  /** Back to the initial state. */
  reset(): void {
    this.cur = this.sys.initialTuple();
    this.prev = this.cur;
    this.lastStep = null;
  }

  /** What every observed component shows now (observe.ts), after the last step taken. */
  observations(): Observations {
    const out: Record<string, Readonly<Record<string, JsonValue>>> = {};
    this.spec.components.forEach((c, i) => {
      if (!c.observe) return;
      const snap = (t: Uint32Array) => this.sys.tables[i]!.snapshots[t[i]!]!;
      const ev = this.lastStep && this.lastStep.component === i ? this.lastStep.event : null;
      out[c.name] = c.observe(snap(this.cur), snap(this.prev), ev) as Record<string, JsonValue>;
    });
    return out;
  }

  /** Every component's state value now. */
  values(): StateValues {
    return this.valuesOf(this.cur);
  }

  private valuesOf(t: Uint32Array): StateValues {
    const out: Record<string, string> = {};
    this.sys.names.forEach((n, i) => (out[n] = formatValue(this.sys.tables[i]!.snapshots[t[i]!]!.value)));
    return out;
  }

  /** Every step the model allows now, in the explorer's step order. */
  allowed(): AllowedStep[] {
    const out: AllowedStep[] = [];
    this.sys.expand(this.cur, (id, next) => out.push({ step: this.actionOf(id), values: this.valuesOf(next) }));
    return out;
  }

  /** Take `step`; false (and no change) when the model does not allow it here. */
  take(step: StepAction): boolean {
    const want = actionKey(step);
    let next: Uint32Array | null = null;
    let taken = -1;
    this.sys.expand(this.cur, (id, t) => {
      if (next === null && actionKey(this.actionOf(id)) === want) {
        next = Uint32Array.from(t);
        taken = id;
      }
    });
    if (next === null) return false;
    const l = this.sys.label(taken, this.cur);
    this.prev = this.cur;
    this.cur = next;
    this.lastStep = { component: this.sys.names.indexOf(l.component), event: l.event };
    return true;
  }

  private actionOf(id: number): StepAction {
    const l = this.sys.label(id, this.cur);
    return { component: l.component, kind: l.kind, ...(l.kind === 'deliver' ? { channel: l.channel ?? '' } : {}), event: canonicalEvent(l.event) };
  }
}

function actionKey(s: StepAction): string {
  return `${s.kind}|${s.kind === 'deliver' ? (s.channel ?? '') : ''}|${s.component}|${eventKey(s.event)}`;
}

/** `env → dev: SET_STATE {"target":"STOP"}`, `main → destination: QEMU_VM_EOF`. */
export function describeStep(s: StepAction): string {
  const { type, ...rest } = s.event;
  const payload = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
  return `${s.kind === 'env' ? 'env' : s.channel} → ${s.component}: ${type}${payload}`;
}

/** The model itself as the system under test: steps it does not allow are refused (rejected). */
export function modelAdapter(spec: SystemSpec, name = 'model'): SutAdapter {
  const cursor = new ModelCursor(spec);
  return {
    name,
    reset: async () => cursor.reset(),
    step: async (step) => {
      if (!cursor.take(step)) throw new Error(`the model does not allow ${describeStep(step)} here`);
    },
    observe: async () => ({ values: cursor.values(), fields: cursor.observations() }),
    close: async () => {},
  };
}
