/**
 * Model-based testing against real QEMU (issue #7): a QMP client, a harness for a source and a
 * destination QEMU, the adapter from model actions to QMP, test generation from the explored model, the
 * recorded-run format, the conformance check of a run against the model and the live monitor.
 *
 * @example
 *   import { SCENARIOS, runScenario, formatRun } from './src/qemu/index.js';
 *   const run = await runScenario(SCENARIOS[0]!);
 *   console.log(formatRun(run)); // "precopy-completes: conforms (0.9 s, 2 actions)…"
 */
export { QmpClient, QmpError, QmpTimeoutError, QmpClosedError, eventMicros, type QmpEvent, type QmpGreeting, type QmpObject, type QmpValue } from './qmp.js';
export { QemuPair, startPair, QEMU_BINARY, TERMINAL, HarnessError, type PairOptions } from './harness.js';
export { runPlan, capabilitiesFor, AdapterError, type Timing, type RunOptions, type ExtraCapabilities } from './adapter.js';
export { plan, PlanError, type Plan, type PlannedAction, type Waypoint, type ModelState, type PlanOptions } from './plan.js';
export { statusGraph, StatusGraph, CONTROLLABLE, describeConfig, type ModelConfig, type ControllableEvent } from './model.js';
export { checkLog, checkObservations, Checker, formatResult, MIGRATION_RUNNING, type Checked, type ConformResult, type Divergence, type Incomplete, type CheckOptions } from './conform.js';
export { monitorMigration, MonitorError, UNSEEN, type MonitorOptions, type MonitorResult, type ConfigOverrides } from './monitor.js';
export { observationsOf, configOf, COMMAND_ACTIONS, TRACE_EVENTS, type Observation, type Fact } from './observations.js';
export { KNOWN_DISAGREEMENTS, UNSEEN_COMMAND_DISAGREEMENTS, MIGRATE_NEEDS_A_LISTENER, applyToLog, type KnownDisagreement, type Rewrite } from './exceptions.js';
export {
  parseLog,
  parseRecord,
  isProcess,
  formatLog,
  sortRecords,
  LogFormatError,
  type LogRecord,
  type EventRecord,
  type CommandRecord,
  type FaultRecord,
  type TraceRecord,
  type ProcessRecord,
  type Side,
  type FaultKind,
} from './log.js';
export { SCENARIOS, runScenario, formatRun, type Scenario, type ScenarioRun } from './scenarios.js';
export { commandWorks, cleanupAll } from './processes.js';
