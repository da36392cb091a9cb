/**
 * Traces in the Informal Trace Format (ITF) of the Apalache / Quint tools
 * (https://apalache-mc.org/docs/adr/015adr-trace.html): `{"#meta", "vars", "states": [...]}`, one state
 * per step, each an object of the variables. Our variables: every component's state value (as the
 * explorer prints it, `migrating.active.iterating`) and context, and `action` — the step that led to the
 * state (`init` for the first): `component: EVENT` with the event as a record. ITF integers beyond 2^53 are
 * `{"#bigint": "…"}`; records stay objects and lists arrays; JSON null is no ITF value, so a null becomes
 * `{"#unserializable": "null"}`. A lasso (a cycle found by the liveness check) sets `loop` to the index of
 * the state where the cycle starts.
 */
import type { EventObject } from 'xstate';
import type { Trace } from '../explorer/trace.js';
import type { JsonValue, TestCase, TestSuite } from '../testgen/fixture.js';

export type ItfValue =
  | boolean
  | string
  | number
  | { readonly '#bigint': string }
  | { readonly '#unserializable': string }
  | { readonly '#set': readonly ItfValue[] }
  | readonly ItfValue[]
  | { readonly [k: string]: ItfValue };

export interface ItfTrace {
  readonly '#meta': { readonly format: 'ITF'; readonly 'format-description': string; readonly source: string; readonly description: string };
  readonly vars: readonly string[];
  readonly states: readonly Readonly<Record<string, ItfValue>>[];
  readonly loop?: number;
}

/** A JSON value as an ITF value. */
export function itfValue(v: unknown): ItfValue {
  if (v === null || v === undefined) return { '#unserializable': 'null' };
  if (typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isSafeInteger(v) || !Number.isInteger(v) ? v : { '#bigint': BigInt(v).toString() };
  if (typeof v === 'bigint') return { '#bigint': v.toString() };
  if (Array.isArray(v)) return v.map(itfValue);
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).map(([k, x]) => [k, itfValue(x)]));
  return { '#unserializable': String(v) };
}

const actionOf = (component: string, event: EventObject): ItfValue => ({ component, event: itfValue(event) });

/**
 * An explorer trace as ITF. `contexts(step)` gives every component's context after step `step` (0: the
 * initial state); leave it out for state values only.
 */
export function traceToItf(trace: Trace, description: string, contexts?: (step: number) => Readonly<Record<string, unknown>>): ItfTrace {
  const components = Object.keys(trace.initial);
  const vars = ['action', ...components, ...(contexts ? components.map((c) => `${c}.context`) : [])];
  const state = (step: number, values: Readonly<Record<string, string>>, action: ItfValue): Record<string, ItfValue> => {
    const out: Record<string, ItfValue> = { action };
    for (const c of components) out[c] = values[c]!;
    if (contexts) {
      const ctx = contexts(step);
      for (const c of components) out[`${c}.context`] = itfValue(ctx[c]);
    }
    return out;
  };
  const states = [state(0, trace.initial, 'init'), ...trace.steps.map((s) => state(s.step, s.states, actionOf(s.component, s.event)))];
  return {
    '#meta': { format: 'ITF', 'format-description': 'https://apalache-mc.org/docs/adr/015adr-trace.html', source: 'migration-statecharts', description },
    vars,
    states,
    ...(trace.cycleStart !== undefined ? { loop: trace.cycleStart - 1 } : {}),
  };
}

/** An expected observation as ITF: a prediction that is a set (`{anyOf: [...]}`) becomes an ITF `#set`. */
function observationValue(v: JsonValue): ItfValue {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && Array.isArray((v as { anyOf?: unknown }).anyOf)) {
    return { '#set': ((v as { anyOf: JsonValue[] }).anyOf).map(itfValue) };
  }
  return itfValue(v);
}

/**
 * One test case of a suite (src/testgen/fixture.ts) as an ITF trace: the initial state, then one state per
 * step with the expected state value of every component (`component`) and what each observed component
 * is expected to show (`component.observed`: its record, a set prediction as `#set`). `action` is the step:
 * `{component, kind, event}` (and `channel` for a delivery).
 */
export function caseToItf(suite: TestSuite, c: TestCase): ItfTrace {
  const components = Object.keys(suite.initial);
  const observed = Object.keys(suite.observed);
  const vars = ['action', ...components, ...observed.map((o) => `${o}.observed`)];
  const state = (action: ItfValue, values: Readonly<Record<string, string>>, obs: Readonly<Record<string, Readonly<Record<string, JsonValue>>>>) => {
    const out: Record<string, ItfValue> = { action };
    for (const comp of components) out[comp] = values[comp] ?? suite.initial[comp]!;
    for (const o of observed) out[`${o}.observed`] = Object.fromEntries(Object.entries(obs[o] ?? {}).map(([k, v]) => [k, observationValue(v)]));
    return out;
  };
  const states = [
    state('init', suite.initial, suite.initialObservation),
    ...c.steps.map((s) =>
      state({ component: s.component, kind: s.kind, ...(s.channel ? { channel: s.channel } : {}), event: itfValue(s.event) }, s.expect, s.observe),
    ),
  ];
  return {
    '#meta': {
      format: 'ITF',
      'format-description': 'https://apalache-mc.org/docs/adr/015adr-trace.html',
      source: 'migration-statecharts',
      description: `${suite.system}: ${suite.criterion} suite, case ${c.name}`,
    },
    vars,
    states,
  };
}
