/**
 * Model-based test generation: suites from the explored graph of a machine or a composed system (all
 * states, all transitions, transition pairs, a target, seeded random walks), written as versioned JSON
 * fixtures, replayed against the model, and run against a system under test through an adapter, with
 * console and JUnit reports.
 *
 * @example
 *   import { devicePreset, generateSuite, presetSystem, runSuite, modelAdapter, serializeSuite } from 'migration-statecharts/testgen';
 *   const preset = devicePreset({ features: 'STOP_COPY|P2P|PRE_COPY', precopyInfoV2: true });
 *   const spec = presetSystem(preset);
 *   const suite = generateSuite(spec, { criterion: 'commands', preset });
 *   const fixture = serializeSuite(suite); // the fixture text
 *   JSON.parse(fixture).schema; // => 'migration-statecharts/test-suite@2'
 *   const report = await runSuite(suite, modelAdapter(spec));
 *   report.failed; // => 0
 */
export { type LowerBound, tourLowerBound } from './bound.js';
export { type ShortestPathsTotal, eventsAsXstateGraphSeesThem, xstateShortestPathsTotal } from './compare.js';
export { type GenerateOptions, type TargetPredicate, TargetError, generateSuite, stateNames } from './criteria.js';
export {
  type CoverageItems,
  type Criterion,
  type DevicePreset,
  type JsonValue,
  type Observations,
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
export { type CoverGraph, type Goal, buildCoverGraph, commandsGoal, pairsGoal, statesGoal, transitionsGoal } from './goals.js';
export {
  type AnyOf,
  type DeviceField,
  type DeviceReadBack,
  type FieldMismatch,
  type ObservationRecord,
  type Observer,
  DEVICE_FIELDS,
  deviceReadBack,
  deviceRecord,
  fieldMismatches,
  formatFieldMismatch,
  matches,
  observeDevice,
  observeQemu,
} from './observe.js';
export { type GraphOptions, GraphLimitError, ModelGraph, buildModelGraph } from './graph.js';
export { toJUnitXml } from './junit.js';
export { type AllowedStep, type StepAction, ModelCursor, describeStep, modelAdapter } from './model.js';
export { type Tour, bestTour } from './postman.js';
export { ReplayError, replaySuite } from './replay.js';
export {
  type CaseResult,
  type Divergence,
  type Expectation,
  type Observation,
  type Observed,
  type RunOptions,
  type RunReport,
  type SutAdapter,
  allMismatches,
  failureDetail,
  formatRun,
  runSuite,
} from './runner.js';
export {
  DEFAULT_DEVICE,
  DEVICE_EVENTS,
  DEVICE_FEATURES,
  type MachineSystemOptions,
  OUT_OF_RANGE_STATES,
  deviceEvents,
  devicePreset,
  deviceSystem,
  deviceSystemName,
  machineSystem,
  presetSystem,
} from './systems.js';
export { mulberry32, randomWalks } from './walks.js';
