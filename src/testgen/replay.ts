/**
 * Replay: re-run a fixture against the model itself (synchronously) and report, per case, the first step
 * where the model disagrees with it — a step the model does not allow there, or a state the fixture
 * expects that the model is not in. The result is a RunReport, so it prints and exports as a run does
 * (with the model as the "system": `observed` is the model's state, `expected` the fixture's).
 */
import type { SystemSpec } from '../explorer/system.js';
import type { StateValues, TestSuite } from './fixture.js';
import { type AllowedStep, type StepAction, ModelCursor, describeStep } from './model.js';
import { type CaseResult, type Divergence, type RunReport, formatValues, mismatches, summarise } from './runner.js';

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
  const cases: CaseResult[] = suite.cases.map((c) => {
    const started = clock();
    const done = (steps: number, failure: Divergence | null): CaseResult => ({
      name: c.name,
      status: failure ? 'failed' : 'passed',
      steps,
      seconds: (clock() - started) / 1000,
      failure,
    });
    cursor.reset();
    const initial = cursor.values();
    if (mismatches(suite.initial, initial).length > 0) return done(0, disagreement(c.name, 0, null, suite.initial, initial, []));
    for (let i = 0; i < c.steps.length; i++) {
      const { expect, ...action } = c.steps[i]!;
      const allowed = cursor.allowed();
      if (!cursor.take(action)) return done(i + 1, disagreement(c.name, i + 1, action, expect, null, allowed));
      const now = cursor.values();
      if (mismatches(expect, now).length > 0) return done(i + 1, disagreement(c.name, i + 1, action, expect, now, allowed));
    }
    return done(c.steps.length, null);
  });
  return summarise(suite, 'model', cases, (clock() - t0) / 1000);
}

function disagreement(
  name: string,
  step: number,
  action: StepAction | null,
  expected: StateValues,
  model: StateValues | null,
  allowed: readonly AllowedStep[],
): Divergence {
  const where = action ? `step ${step} (${describeStep(action)})` : 'initial state';
  let message: string;
  if (model === null) {
    message = `${where}: the model does not allow this step here`;
  } else {
    const bad = mismatches(expected, model);
    const by = allowed.find((a) => mismatches(expected, a.values).length === 0);
    message =
      `${where}: the fixture expects ${formatValues(expected, bad)}, the model is in ${formatValues(model, bad)}` +
      (by ? ` (the model gets there by ${describeStep(by.step)})` : '');
  }
  return { case: name, step, action, kind: model === null ? 'refused' : 'state', expected, observed: model, allowed, message };
}
