/**
 * Running a suite against a system under test through an adapter, and the report of the run.
 *
 * An adapter maps model steps to actions on the system and its observations back to model state values:
 *
 *   reset()          bring the system to the model's initial state (called before every case);
 *   step(step)       make the system take the step — or, for steps the system takes by itself (a
 *                    delivery on a channel, a thread running), let it; reject when the system refuses;
 *   observe(expect)  every component's state value as the model writes it (`formatValue`). Components
 *                    left out are not checked. `expect` is what the model expects: an adapter for an
 *                    asynchronous system may wait until it holds (or its own timeout passes) first;
 *   close()          release the system (called once, at the end).
 *
 * After reset and after every step the runner compares the observation with the model's expectation.
 * The first disagreement ends the case and is reported with the step, what the system did, and — when
 * the model (a SystemSpec) is given — what the model allowed from the state before the step.
 */
import type { SystemSpec } from '../explorer/system.js';
import type { StateValues, SuiteStep, TestSuite } from './fixture.js';
import { type AllowedStep, type StepAction, ModelCursor, describeStep } from './model.js';

export type Observation = Readonly<Record<string, string>>;

export interface SutAdapter {
  readonly name: string;
  reset(): Promise<void>;
  step(step: SuiteStep): Promise<void>;
  observe(expect: StateValues): Promise<Observation>;
  close(): Promise<void>;
}

export interface Divergence {
  readonly case: string;
  /** 1-based step of the case; 0 is the state right after reset. */
  readonly step: number;
  /** The step taken (null at step 0). */
  readonly action: StepAction | null;
  /** 'state': the system is elsewhere; 'refused': it refused the step; 'error': the adapter failed. */
  readonly kind: 'state' | 'refused' | 'error';
  /** What the model expected after the step. */
  readonly expected: StateValues;
  /** What the system did: its observed state (null when it refused or failed). */
  readonly observed: Observation | null;
  /** The steps the model allowed from the state before this step, with where each leads ([] without a model). */
  readonly allowed: readonly AllowedStep[];
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
  readonly cases: readonly CaseResult[];
  readonly passed: number;
  readonly failed: number;
  readonly errors: number;
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

/** `dev=STOP, source=active` (only `keys`, when given). */
export function formatValues(v: StateValues, keys?: readonly string[]): string {
  return (keys ?? Object.keys(v)).map((k) => `${k}=${v[k] ?? '?'}`).join(', ');
}
const show = formatValues;

/** The one-line message of a divergence. */
export function divergenceMessage(d: Omit<Divergence, 'message'>): string {
  const where = d.step === 0 ? 'after reset' : `step ${d.step} (${describeStep(d.action!)})`;
  if (d.kind === 'state' && d.observed) {
    const bad = mismatches(d.expected, d.observed);
    const by = d.allowed.find((a) => mismatches(a.values, d.observed!).length === 0 && bad.some((c) => a.values[c] === d.observed![c]));
    return `${where}: the system is in ${show(d.observed, bad)}, the model expects ${show(d.expected, bad)}` + (by ? ` (the model gets there by ${describeStep(by.step)} instead)` : '');
  }
  return `${where}: ${d.kind === 'refused' ? 'the system refused the step' : 'the adapter failed'}`;
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
  const t0 = clock();
  try {
    for (const c of suite.cases) {
      const started = clock();
      const finish = (status: CaseResult['status'], steps: number, failure: Divergence | null) => {
        const r: CaseResult = { name: c.name, status, steps, seconds: (clock() - started) / 1000, failure };
        results.push(r);
        opts.onCase?.(r);
        return r;
      };
      const r = await runCase(suite, c.name, c.steps, adapter, cursor, finish);
      if (opts.stopOnFailure && r.status !== 'passed') break;
    }
  } finally {
    await adapter.close();
  }
  return summarise(suite, adapter.name, results, (clock() - t0) / 1000);
}

async function runCase(
  suite: TestSuite,
  name: string,
  steps: readonly SuiteStep[],
  adapter: SutAdapter,
  cursor: ModelCursor | null,
  finish: (status: CaseResult['status'], steps: number, failure: Divergence | null) => CaseResult,
): Promise<CaseResult> {
  const base = { case: name };
  try {
    await adapter.reset();
  } catch (e) {
    return finish('error', 0, divergence({ ...base, step: 0, action: null, kind: 'error', expected: suite.initial, observed: null, allowed: [] }, `reset: ${errorText(e)}`));
  }
  cursor?.reset();
  let observed: Observation;
  try {
    observed = await adapter.observe(suite.initial);
  } catch (e) {
    return finish('error', 0, divergence({ ...base, step: 0, action: null, kind: 'error', expected: suite.initial, observed: null, allowed: [] }, `observe: ${errorText(e)}`));
  }
  if (mismatches(suite.initial, observed).length > 0) {
    return finish('failed', 0, divergence({ ...base, step: 0, action: null, kind: 'state', expected: suite.initial, observed, allowed: [] }));
  }
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    const { expect, ...action } = step;
    const allowed = () => cursor?.allowed() ?? [];
    const at = { ...base, step: i + 1, action, expected: expect };
    try {
      await adapter.step(step);
    } catch (e) {
      return finish('failed', i + 1, divergence({ ...at, kind: 'refused', observed: null, allowed: allowed() }, errorText(e)));
    }
    try {
      observed = await adapter.observe(expect);
    } catch (e) {
      return finish('error', i + 1, divergence({ ...at, kind: 'error', observed: null, allowed: allowed() }, `observe: ${errorText(e)}`));
    }
    if (mismatches(expect, observed).length > 0) {
      return finish('failed', i + 1, divergence({ ...at, kind: 'state', observed, allowed: allowed() }));
    }
    if (cursor && !cursor.take(action)) {
      return finish('error', i + 1, divergence({ ...at, kind: 'error', observed, allowed: allowed() }, 'the suite does not match the model (the model does not allow this step)'));
    }
  }
  return finish('passed', steps.length, null);
}

/** Count a run's results. */
export function summarise(suite: TestSuite, adapter: string, cases: readonly CaseResult[], seconds: number): RunReport {
  return {
    system: suite.system,
    criterion: suite.criterion,
    adapter,
    cases,
    passed: cases.filter((c) => c.status === 'passed').length,
    failed: cases.filter((c) => c.status === 'failed').length,
    errors: cases.filter((c) => c.status === 'error').length,
    seconds,
  };
}

/** A readable report: one line per case, and for each failure what the system did and the model allowed. */
export function formatRun(r: RunReport): string {
  const lines = [
    `${r.adapter} on ${r.system} (${r.criterion}): ${r.cases.length} cases, ${r.passed} passed, ${r.failed} failed, ${r.errors} errors`,
  ];
  for (const c of r.cases) {
    lines.push(`  ${c.status === 'passed' ? 'PASS ' : c.status === 'failed' ? 'FAIL ' : 'ERROR'} ${c.name} (${c.steps} steps)`);
    if (c.failure) lines.push(...failureDetail(c.failure).map((l) => `        ${l}`));
  }
  return lines.join('\n');
}

/** The lines that explain a divergence (used by the console report and JUnit). */
export function failureDetail(d: Divergence): string[] {
  const lines = [d.message, `expected: ${show(d.expected)}`];
  if (d.observed) lines.push(`observed: ${show(d.observed)}`);
  if (d.allowed.length > 0) {
    lines.push('the model allowed:');
    for (const a of d.allowed) lines.push(`  ${describeStep(a.step)}  ⇒ ${show(a.values)}`);
  }
  return lines;
}
