/**
 * Replay: re-run a fixture against the model itself (synchronously) and report, per case, the first step
 * where the model disagrees with it — a step the model does not allow there, or a state the fixture
 * expects that the model is not in. The result is a RunReport, so it prints and exports as a run does
 * (with the model as the "system": `observed` is the model's state, `expected` the fixture's).
 */
import type { SystemSpec } from '../explorer/system.js';
import type { StateValues, TestSuite } from './fixture.js';
import { type AllowedStep, type StepAction, ModelCursor, describeStep } from './model.js';
import type { FieldMismatch } from './observe.js';
import { type CaseResult, type Divergence, type RunReport, allMismatches, mismatches, summarise } from './runner.js';

/** The suite and the model do not even have the same components (a fixture for another system). */
export class ReplayError extends Error {
  override readonly name = 'ReplayError';
}

export function replaySuite(suite: TestSuite, spec: SystemSpec, clock: () => number = () => performance.now()): RunReport {
  const cursor = new ModelCursor(spec);
  const have = [...cursor.components].sort().join(', ');
  const want = Object.keys(suite.initial).sort().join(', ');
  if (have !== want) throw new ReplayError(`the suite's components (${want}) are not the model's (${have})`);
  const t0 = clock();
  let compared = 0;
  const cases: CaseResult[] = suite.cases.map((c) => {
    const started = clock();
    const trace: string[] = [];
    const done = (steps: number, failure: Divergence | null): CaseResult => ({
      name: c.name,
      status: failure ? 'failed' : 'passed',
      steps,
      seconds: (clock() - started) / 1000,
      failure,
    });
    cursor.reset();
    const first = allMismatches({ expect: suite.initial, observe: suite.initialObservation }, { values: cursor.values(), fields: cursor.observations() });
    if (first.length > 0) return done(0, disagreement(c.name, 0, null, suite.initial, cursor.values(), first, trace, []));
    for (let i = 0; i < c.steps.length; i++) {
      const { expect, observe, ...action } = c.steps[i]!;
      trace.push(describeStep(action));
      const allowed = cursor.allowed();
      if (!cursor.take(action)) return done(i + 1, disagreement(c.name, i + 1, action, expect, null, [], trace, allowed));
      const now = cursor.values();
      const bad = allMismatches({ expect, observe }, { values: now, fields: cursor.observations() });
      compared += Object.keys(expect).length + Object.values(observe).reduce((n, r) => n + Object.keys(r).length, 0);
      if (bad.length > 0) return done(i + 1, disagreement(c.name, i + 1, action, expect, now, bad, trace, allowed));
    }
    return done(c.steps.length, null);
  });
  return summarise(suite, 'model', cases, (clock() - t0) / 1000, { compared });
}

function disagreement(
  name: string,
  step: number,
  action: StepAction | null,
  expected: StateValues,
  model: StateValues | null,
  fields: readonly FieldMismatch[],
  trace: readonly string[],
  allowed: readonly AllowedStep[],
): Divergence {
  const where = action ? `step ${step} (${describeStep(action)})` : 'initial state';
  let message: string;
  if (model === null) {
    message = `${where}: the model does not allow this step here`;
  } else {
    const bad = mismatches(expected, model);
    const by = bad.length > 0 ? allowed.find((a) => mismatches(expected, a.values).length === 0) : undefined;
    const parts = fields.slice(0, 4).map((f) => `the fixture expects ${f.component}.${f.field} = ${JSON.stringify(f.expected)}, the model has ${JSON.stringify(f.observed)}`);
    message = `${where}: ${parts.join('; ')}${fields.length > 4 ? `; and ${fields.length - 4} more` : ''}` + (by ? ` (the model gets there by ${describeStep(by.step)})` : '');
  }
  return { case: name, step, action, kind: model === null ? 'refused' : 'observation', expected, observed: model, fields, trace: [...trace], allowed, message };
}
