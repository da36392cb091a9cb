/**
 * Running a suite against a system under test through an adapter, and the report of the run.
 *
 * An adapter maps model steps to actions on the system and reads back what the system shows:
 *
 *   unobservable     per component, the observation fields this system cannot see ('*': none of them,
 *                    'value': not even its state value) — declared once, reported in every run;
 *   reset()          bring the system to the model's initial state (called before every case);
 *   step(step)       make the system take the step — or, for steps the system takes by itself (a
 *                    delivery on a channel, a thread running), let it. Reject only when the step could
 *                    not be made at all; a call that returned an error is an observation, not a refusal;
 *   observe(expect)  every component's state value as the model writes it (`formatValue`), and for each
 *                    observed component its record (observe.ts) with every field. `expect` is what the
 *                    model predicts: an adapter for an asynchronous system may wait until it holds (or its
 *                    own timeout passes) first;
 *   close()          release the system (called once, at the end).
 *
 * After reset and after every step the runner compares what was observed with the prediction, field by
 * field; a field or value left out and not declared unobservable is a mismatch. The first disagreement
 * ends the case and is reported with the step, every differing field (expected and observed), the trace
 * so far, and — when the model (a SystemSpec) is given — what the model allowed from the state before.
 */
import type { RunDivergence } from '../explorer/divergence.js';
import type { SystemSpec } from '../explorer/system.js';
import type { Observations, StateValues, SuiteStep, TestSuite } from './fixture.js';
import { type AllowedStep, type StepAction, ModelCursor, describeStep } from './model.js';
import { type FieldMismatch, fieldMismatches, formatFieldMismatch } from './observe.js';

export type Observation = Readonly<Record<string, string>>;

/** What the system shows: state values, and the observed components' records. */
export interface Observed {
  readonly values: Observation;
  readonly fields: Observations;
}

/** What the model predicts after a step (or after reset). */
export interface Expectation {
  readonly expect: StateValues;
  readonly observe: Observations;
}

export interface SutAdapter {
  readonly name: string;
  readonly unobservable?: Readonly<Record<string, readonly string[]>>;
  reset(): Promise<void>;
  step(step: SuiteStep): Promise<void>;
  observe(expect: Expectation): Promise<Observed>;
  close(): Promise<void>;
}

/**
 * Where a case's run left the model: `step` is the 1-based step of the case (0 is the state right
 * after reset), `allowed` the steps the model allowed from the state before it, with where each leads
 * ([] without a model).
 */
export interface Divergence extends RunDivergence<AllowedStep> {
  readonly case: string;
  /** The step taken (null at step 0). */
  readonly action: StepAction | null;
  /**
   * 'observation': the system shows something else (state values or fields); 'refused': the adapter could
   * not make the step; 'error': the adapter failed (or the suite is not a run of the given model).
   */
  readonly kind: 'observation' | 'refused' | 'error';
  /** What the model expected after the step. */
  readonly expected: StateValues;
  /** What the system did: its observed state values (null when it refused or failed). */
  readonly observed: Observation | null;
  /** Every field that differs (state values appear as field `value`). */
  readonly fields: readonly FieldMismatch[];
  /** The steps of the case up to and including this one, as text. */
  readonly trace: readonly string[];
  readonly message: string;
}

export interface CaseResult {
  readonly name: string;
  readonly status: 'passed' | 'failed' | 'error';
  /** Steps taken (including the failing one). */
  readonly steps: number;
  readonly seconds: number;
  readonly failure: Divergence | null;
}

export interface RunReport {
  readonly system: string;
  readonly criterion: string;
  readonly adapter: string;
  /** The fields the adapter declared it cannot see (not compared). */
  readonly unobservable: Readonly<Record<string, readonly string[]>>;
  readonly cases: readonly CaseResult[];
  readonly passed: number;
  readonly failed: number;
  readonly errors: number;
  /** Steps taken over all cases, and observations compared (fields and state values). */
  readonly steps: number;
  readonly compared: number;
  readonly seconds: number;
}

export interface RunOptions {
  /** The model, for reporting what it allowed at a divergence. */
  readonly model?: SystemSpec;
  /** Stop after the first case that does not pass (default false). */
  readonly stopOnFailure?: boolean;
  /** Milliseconds clock (default performance.now); tests pass a fixed one. */
  readonly clock?: () => number;
  /** Called after each case (progress). */
  readonly onCase?: (r: CaseResult) => void;
}

/** Components whose observed value differs from the expected one (components not observed are skipped). */
export function mismatches(expected: StateValues, observed: Observation): string[] {
  return Object.keys(expected).filter((c) => observed[c] !== undefined && observed[c] !== expected[c]);
}

/** State values and fields that differ, as field mismatches (a state value is the field `value`). */
export function allMismatches(
  want: Expectation,
  got: Observed,
  unobservable: Readonly<Record<string, readonly string[]>> = {},
): FieldMismatch[] {
  const out: FieldMismatch[] = [];
  for (const [c, v] of Object.entries(want.expect)) {
    const skip = unobservable[c] ?? [];
    if (skip.includes('*') || skip.includes('value')) continue;
    const o = got.values[c];
    if (o === undefined) out.push({ component: c, field: 'value', expected: v, observed: null, missing: true });
    else if (o !== v) out.push({ component: c, field: 'value', expected: v, observed: o });
  }
  return out.concat(fieldMismatches(want.observe, got.fields, unobservable));
}

/** `dev=STOP, source=active` (only `keys`, when given). */
export function formatValues(v: StateValues, keys?: readonly string[]): string {
  return (keys ?? Object.keys(v)).map((k) => `${k}=${v[k] ?? '?'}`).join(', ');
}
const show = formatValues;

/** The one-line message of a divergence. */
export function divergenceMessage(d: Omit<Divergence, 'message'>): string {
  const where = d.step === 0 ? 'after reset' : `step ${d.step} (${describeStep(d.action!)})`;
  if (d.kind === 'observation') {
    const values = d.fields.filter((f) => f.field === 'value' && !f.missing);
    const by =
      d.observed && values.length > 0
        ? d.allowed.find((a) => mismatches(a.values, d.observed!).length === 0 && values.some((f) => a.values[f.component] === d.observed![f.component]))
        : undefined;
    const shown = d.fields.slice(0, 4).map(formatFieldMismatch).join('; ') + (d.fields.length > 4 ? `; and ${d.fields.length - 4} more` : '');
    return `${where}: ${shown}` + (by ? ` (the model gets to that state by ${describeStep(by.step)} instead)` : '');
  }
  return `${where}: ${d.kind === 'refused' ? 'the adapter could not make the step' : 'the adapter failed'}`;
}

function divergence(d: Omit<Divergence, 'message'>, detail?: string): Divergence {
  const message = divergenceMessage(d) + (detail ? `: ${detail}` : '');
  return { ...d, message };
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';

/** Run every case of `suite` against `adapter` (see the header); the adapter is closed at the end. */
export async function runSuite(suite: TestSuite, adapter: SutAdapter, opts: RunOptions = {}): Promise<RunReport> {
  const clock = opts.clock ?? (() => performance.now());
  const cursor = opts.model ? new ModelCursor(opts.model) : null;
  const results: CaseResult[] = [];
  const counts = { steps: 0, compared: 0 };
  const t0 = clock();
  try {
    for (const c of suite.cases) {
      const started = clock();
      const finish = (status: CaseResult['status'], steps: number, failure: Divergence | null) => {
        const r: CaseResult = { name: c.name, status, steps, seconds: (clock() - started) / 1000, failure };
        results.push(r);
        counts.steps += steps;
        opts.onCase?.(r);
        return r;
      };
      const r = await runCase(suite, c.name, c.steps, adapter, cursor, finish, counts);
      if (opts.stopOnFailure && r.status !== 'passed') break;
    }
  } finally {
    await adapter.close();
  }
  return summarise(suite, adapter.name, results, (clock() - t0) / 1000, { ...counts, unobservable: adapter.unobservable ?? {} });
}

/** How many predictions one comparison checks (state values and fields not declared unobservable). */
function comparedCount(want: Expectation, unobservable: Readonly<Record<string, readonly string[]>>): number {
  let n = 0;
  for (const c of Object.keys(want.expect)) {
    const skip = unobservable[c] ?? [];
    if (!skip.includes('*') && !skip.includes('value')) n++;
  }
  for (const [c, rec] of Object.entries(want.observe)) {
    const skip = unobservable[c] ?? [];
    if (skip.includes('*')) continue;
    for (const f of Object.keys(rec)) if (!skip.includes(f)) n++;
  }
  return n;
}

async function runCase(
  suite: TestSuite,
  name: string,
  steps: readonly SuiteStep[],
  adapter: SutAdapter,
  cursor: ModelCursor | null,
  finish: (status: CaseResult['status'], steps: number, failure: Divergence | null) => CaseResult,
  counts: { compared: number },
): Promise<CaseResult> {
  const hidden = adapter.unobservable ?? {};
  const trace: string[] = [];
  const base = { case: name, fields: [] as FieldMismatch[] };
  const initial: Expectation = { expect: suite.initial, observe: suite.initialObservation };
  const fail0 = (detail: string) =>
    finish('error', 0, divergence({ ...base, step: 0, action: null, kind: 'error', expected: suite.initial, observed: null, trace, allowed: [] }, detail));
  try {
    await adapter.reset();
  } catch (e) {
    return fail0(`reset: ${errorText(e)}`);
  }
  cursor?.reset();
  let observed: Observed;
  try {
    observed = await adapter.observe(initial);
  } catch (e) {
    return fail0(`observe: ${errorText(e)}`);
  }
  counts.compared += comparedCount(initial, hidden);
  const first = allMismatches(initial, observed, hidden);
  if (first.length > 0) {
    return finish('failed', 0, divergence({ ...base, step: 0, action: null, kind: 'observation', expected: suite.initial, observed: observed.values, fields: first, trace, allowed: [] }));
  }
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    const { expect, observe, ...action } = step;
    trace.push(describeStep(action));
    const allowed = () => cursor?.allowed() ?? [];
    const at = { ...base, step: i + 1, action, expected: expect, trace: [...trace] };
    try {
      await adapter.step(step);
    } catch (e) {
      return finish('failed', i + 1, divergence({ ...at, kind: 'refused', observed: null, allowed: allowed() }, errorText(e)));
    }
    const want: Expectation = { expect, observe };
    try {
      observed = await adapter.observe(want);
    } catch (e) {
      return finish('error', i + 1, divergence({ ...at, kind: 'error', observed: null, allowed: allowed() }, `observe: ${errorText(e)}`));
    }
    counts.compared += comparedCount(want, hidden);
    const bad = allMismatches(want, observed, hidden);
    if (bad.length > 0) {
      return finish('failed', i + 1, divergence({ ...at, kind: 'observation', observed: observed.values, fields: bad, allowed: allowed() }));
    }
    if (cursor && !cursor.take(action)) {
      return finish('error', i + 1, divergence({ ...at, kind: 'error', observed: observed.values, allowed: allowed() }, 'the suite does not match the model (the model does not allow this step)'));
    }
  }
  return finish('passed', steps.length, null);
}

/** Count a run's results. */
export function summarise(
  suite: TestSuite,
  adapter: string,
  cases: readonly CaseResult[],
  seconds: number,
  extra: { steps?: number; compared?: number; unobservable?: Readonly<Record<string, readonly string[]>> } = {},
): RunReport {
  return {
    system: suite.system,
    criterion: suite.criterion,
    adapter,
    unobservable: extra.unobservable ?? {},
    cases,
    passed: cases.filter((c) => c.status === 'passed').length,
    failed: cases.filter((c) => c.status === 'failed').length,
    errors: cases.filter((c) => c.status === 'error').length,
    steps: extra.steps ?? cases.reduce((n, c) => n + c.steps, 0),
    compared: extra.compared ?? 0,
    seconds,
  };
}

/** A readable report: one line per case, and for each failure what the system did and the model allowed. */
export function formatRun(r: RunReport): string {
  const hidden = Object.entries(r.unobservable).filter(([, f]) => f.length > 0);
  const lines = [
    `${r.adapter} on ${r.system} (${r.criterion}): ${r.cases.length} cases, ${r.passed} passed, ${r.failed} failed, ${r.errors} errors; ${r.steps} steps, ${r.compared} observations compared`,
  ];
  if (hidden.length > 0) lines.push(`  not observable on ${r.adapter}: ${hidden.map(([c, f]) => `${c}.{${f.join(',')}}`).join(', ')}`);
  for (const c of r.cases) {
    lines.push(`  ${c.status === 'passed' ? 'PASS ' : c.status === 'failed' ? 'FAIL ' : 'ERROR'} ${c.name} (${c.steps} steps)`);
    if (c.failure) lines.push(...failureDetail(c.failure).map((l) => `        ${l}`));
  }
  return lines.join('\n');
}

/** The lines that explain a divergence (used by the console report and JUnit). */
export function failureDetail(d: Divergence): string[] {
  const lines = [d.message];
  for (const f of d.fields) lines.push(formatFieldMismatch(f));
  if (d.trace.length > 0) {
    lines.push('the steps so far:');
    const from = Math.max(0, d.trace.length - 12);
    if (from > 0) lines.push(`  ... ${from} earlier steps`);
    d.trace.slice(from).forEach((t, i) => lines.push(`  ${from + i + 1}. ${t}`));
  }
  lines.push(`expected: ${show(d.expected)}`);
  if (d.observed) lines.push(`observed: ${show(d.observed)}`);
  if (d.allowed.length > 0) {
    lines.push('the model allowed:');
    for (const a of d.allowed) lines.push(`  ${describeStep(a.step)}  ⇒ ${show(a.values)}`);
  }
  return lines;
}
