/**
 * Model-based test generation: suites from the explored graph of a machine or a composed system (all
 * states, all transitions, transition pairs, a target, seeded random walks), written as versioned JSON
 * fixtures, replayed against the model, and run against a system under test through an adapter, with
 * console and JUnit reports.
 *
 * @example
 *   import { generateSuite, presetSystem, runSuite, modelAdapter, serializeSuite } from './testgen/index.js';
 *   const spec = presetSystem({ id: 'device' });
 *   const suite = generateSuite(spec, { criterion: 'transitions', preset: { id: 'device' } });
 *   serializeSuite(suite);                                   // the fixture text
 *   const report = await runSuite(suite, modelAdapter(spec)); // report.failed === 0
 */
export { type LowerBound, tourLowerBound } from './bound.js';
export { type ShortestPathsTotal, eventsAsXstateGraphSeesThem, xstateShortestPathsTotal } from './compare.js';
export { type GenerateOptions, type TargetPredicate, TargetError, generateSuite, stateNames } from './criteria.js';
export {
  type Criterion,
  type JsonValue,
  type PresetRef,
  type StateValues,
  type SuiteCoverage,
  type SuiteEvent,
  type SuiteStats,
  type SuiteStep,
  type TestCase,
  type TestSuite,
  CRITERIA,
  FixtureError,
  SUITE_SCHEMA,
  parseSuite,
  serializeSuite,
} from './fixture.js';
export { type CoverGraph, type Goal, buildCoverGraph, pairsGoal, statesGoal, transitionsGoal } from './goals.js';
export { type GraphOptions, GraphLimitError, ModelGraph, buildModelGraph } from './graph.js';
export { toJUnitXml } from './junit.js';
export { type AllowedStep, type StepAction, ModelCursor, describeStep, modelAdapter } from './model.js';
export { type Tour, bestTour } from './postman.js';
export { ReplayError, replaySuite } from './replay.js';
export {
  type CaseResult,
  type Divergence,
  type Observation,
  type RunOptions,
  type RunReport,
  type SutAdapter,
  formatRun,
  runSuite,
} from './runner.js';
export { DEVICE_EVENTS, DEVICE_FEATURES, type MachineSystemOptions, machineSystem, presetSystem } from './systems.js';
export { mulberry32, randomWalks } from './walks.js';
