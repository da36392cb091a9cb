/**
 * The scenario suite run against real QEMU: each scenario is a model configuration and a list of
 * targets in the model (waypoints); its controllable actions come from the model path to those targets
 * (plan.ts), the adapter issues them on two fresh QEMUs, and the recorded run is checked against the
 * model (conform.ts). Timing choices that make a short-lived status observable are noted per scenario.
 */
import { type ConformResult, checkLog, formatResult } from './conform.js';
import { type ExtraCapabilities, type RunOptions, type Timing, runPlan } from './adapter.js';
import { type PairOptions, startPair } from './harness.js';
import type { LogRecord } from './log.js';
import type { ModelConfig } from './model.js';
import { type Plan, type PlanOptions, type Waypoint, plan } from './plan.js';
import { sortRecords } from './log.js';
import { THROTTLE, acked, both, cancelledWithReturnPath, newDestination, source, step } from './waypoints.js';

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly config: ModelConfig;
  readonly waypoints: readonly Waypoint[];
  readonly timing?: Timing;
  readonly plan?: PlanOptions;
  /** Capabilities beyond those `config` implies; the check derives its configuration from the log alone. */
  readonly capabilities?: ExtraCapabilities;
}

const PLAIN: ModelConfig = { ack: 'off', pauseBeforeSwitchover: false };
const ACK: ModelConfig = { ack: 'legacy', pauseBeforeSwitchover: false };
const PAUSE: ModelConfig = { ack: 'off', pauseBeforeSwitchover: true };
const PAUSE_ACK: ModelConfig = { ack: 'legacy', pauseBeforeSwitchover: true };
/** The destination started with -S (autostart off, as libvirt does), management may stop and cont. */
const PAUSED_DESTINATION: ModelConfig = { ...PLAIN, autostart: false, management: true };
const MANAGED: ModelConfig = { ...PLAIN, management: true };
const RETRY: ModelConfig = { ...PLAIN, retries: 1 };
const RETRY_ACK: ModelConfig = { ...ACK, retries: 1 };
const PAUSED_DESTINATION_ACK: ModelConfig = { ...ACK, autostart: false, management: true };
/** The multifd capability on both sides (RAM pages over the channels; no VFIO device, so no device state). */
const MULTIFD: ModelConfig = { ...PLAIN, multifd: 2 };
const MULTIFD_ACK: ModelConfig = { ...ACK, multifd: 3 };
const MULTIFD_PAUSE: ModelConfig = { ...PAUSE, multifd: 4 };


const destinationRuns = (running: boolean): Waypoint => ({
  kind: 'state',
  name: `the destination guest ${running ? 'runs' : 'is paused'}`,
  holds: (s) => (s.destinationContext.runstate === 'running') === running,
});

/** Both sides completed with the destination guest paused (-S), then `cont` there starts it and it runs. */
const pausedUntilCont: readonly Waypoint[] = [
  {
    kind: 'state',
    name: "source 'completed', destination 'completed' and paused",
    holds: (s) => s.source === 'completed' && s.destination === 'completed' && s.destinationContext.runstate === 'paused',
    pins: { source: 'completed', destination: 'completed' },
  },
  { kind: 'step', name: 'cont on the destination', event: 'CONT', side: 'destination', from: (s) => s.destination === 'completed' },
  destinationRuns(true),
];

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'multifd-completes',
    description: 'multifd with 2 channels: the final RAM sync on every channel, then both complete',
    config: MULTIFD,
    waypoints: [both('completed', 'completed')],
  },
  {
    name: 'multifd-switchover-ack-completes',
    description: 'multifd with 3 channels and switchover-ack: both complete',
    config: MULTIFD_ACK,
    waypoints: [acked, both('completed', 'completed')],
  },
  {
    name: 'multifd-pause-then-continue',
    description: 'multifd with 4 channels, pause-before-switchover: pre-switchover, migrate-continue, both complete',
    config: MULTIFD_PAUSE,
    waypoints: [source('pre-switchover'), both('completed', 'completed')],
  },
  {
    name: 'multifd-cancel-in-active',
    description: 'multifd with 2 channels, migrate_cancel during precopy: the source is cancelled, the destination fails',
    config: MULTIFD,
    waypoints: [both('active', 'active'), step('MIGRATE_CANCEL', 'active'), both('cancelled', 'failed')],
    timing: { throttle: THROTTLE },
  },
  {
    name: 'precopy-completes',
    description: 'plain precopy: both sides reach completed',
    config: PLAIN,
    waypoints: [both('completed', 'completed')],
  },
  {
    name: 'switchover-ack-completes',
    description: 'switchover-ack with return-path: the destination acks at once (no device needs it), both complete',
    config: ACK,
    waypoints: [acked, both('completed', 'completed')],
  },
  {
    name: 'pause-then-continue',
    description: 'pause-before-switchover: pre-switchover is reached, migrate-continue, both complete',
    config: PAUSE,
    waypoints: [source('pre-switchover'), both('completed', 'completed')],
  },
  {
    name: 'pause-then-continue-with-ack',
    description: 'pause-before-switchover with switchover-ack: pre-switchover, migrate-continue, both complete',
    config: PAUSE_ACK,
    waypoints: [source('pre-switchover'), both('completed', 'completed')],
  },
  {
    name: 'cancel-in-setup',
    description: 'migrate_cancel while the source is still in setup (its connect is held pending): cancelled',
    config: PLAIN,
    waypoints: [both('none', 'setup'), step('MIGRATE_CANCEL', 'setup'), both('cancelled', 'setup')],
    timing: { stallConnect: true },
  },
  {
    name: 'cancel-in-active',
    description: 'migrate_cancel during precopy: the source is cancelled, the destination fails',
    config: PLAIN,
    waypoints: [both('active', 'active'), step('MIGRATE_CANCEL', 'active'), both('cancelled', 'failed')],
    timing: { throttle: THROTTLE },
  },
  {
    name: 'cancel-in-active-with-ack',
    description: 'migrate_cancel during precopy with switchover-ack and the return path: cancelled/failed, or failed/failed when the return-path shutdown wins',
    config: ACK,
    waypoints: [both('active', 'active'), step('MIGRATE_CANCEL', 'active'), cancelledWithReturnPath],
    timing: { throttle: THROTTLE },
  },
  {
    name: 'cancel-in-pre-switchover',
    description: 'migrate_cancel while paused before switchover: the guest resumes on the source',
    config: PAUSE,
    waypoints: [both('pre-switchover', 'active'), step('MIGRATE_CANCEL', 'pre-switchover'), both('cancelled', 'failed')],
  },
  {
    name: 'cancel-in-pre-switchover-with-ack',
    description: 'migrate_cancel while paused before switchover, switchover-ack on',
    config: PAUSE_ACK,
    waypoints: [both('pre-switchover', 'active'), step('MIGRATE_CANCEL', 'pre-switchover'), both('cancelled', 'failed')],
  },
  {
    name: 'destination-killed-in-active',
    description: 'the destination QEMU is killed during precopy: the source fails and keeps running the guest',
    config: PLAIN,
    waypoints: [both('active', 'active'), step('STREAM_BREAKS', 'active'), source('failed')],
    timing: { throttle: THROTTLE },
  },
  {
    name: 'destination-killed-in-active-with-ack',
    description: 'the destination QEMU is killed during precopy, return path open',
    config: ACK,
    waypoints: [both('active', 'active'), step('STREAM_BREAKS', 'active'), source('failed')],
    timing: { throttle: THROTTLE },
  },
  {
    name: 'destination-killed-in-pre-switchover',
    description: 'the destination is killed while the source is paused; migrate-continue then fails the migration',
    config: PAUSE,
    waypoints: [
      both('pre-switchover', 'active'),
      step('STREAM_BREAKS', 'pre-switchover'),
      step('MIGRATE_CONTINUE', 'pre-switchover', (s) => s.sourceContext.streamError !== null),
      source('failed'),
    ],
  },
  {
    name: 'unreachable-destination',
    description: 'migrate to a loopback port nobody listens on: setup, then failed',
    config: PLAIN,
    waypoints: [step('STREAM_BREAKS', 'setup', (s) => s.destination === 'none' && s.sourcePhase !== 'saved'), both('failed', 'none')],
    plan: { migrateNeedsListener: false },
  },
  {
    name: 'migrate-continue-wrong-state',
    description:
      "pause-before-switchover: in pre-switchover, migrate-continue {state: 'active'} is refused (not the current status), " +
      "then migrate-continue {state: 'pre-switchover'} and both complete",
    config: PAUSE,
    waypoints: [
      source('pre-switchover'),
      { kind: 'probe', name: 'a wrong state', events: ['MIGRATE_CONTINUE'], continueState: 'active' },
      both('completed', 'completed'),
    ],
  },
  {
    name: 'return-path-destination-only',
    description: 'return-path on the destination alone: the source never opens the return path, so it is a plain precopy and both complete',
    config: PLAIN,
    waypoints: [both('completed', 'completed')],
    capabilities: { destination: { 'return-path': true } },
  },
  {
    name: 'destination-paused-then-cont',
    description:
      'the destination runs with -S (autostart off, as libvirt starts it): after completed its guest stays paused (query-status \'paused\', no RESUME) ' +
      'until cont on the destination',
    config: PAUSED_DESTINATION,
    waypoints: [
      ...pausedUntilCont,
    ],
  },
  {
    name: 'management-stop-in-active',
    description:
      'stop on the source during precopy (a management stop, not the switchover stop): the migration completes and, ' +
      'as the source guest was paused, the destination guest is left paused',
    config: MANAGED,
    waypoints: [both('active', 'active'), step('STOP', 'active'), both('completed', 'completed'), destinationRuns(false)],
    // the throttle holds 'active' until the stop lands; once the guest is stopped the rest goes at full speed
    timing: { throttle: THROTTLE, releaseAfter: 'STOP' },
  },
  {
    name: 'management-stop-cont-in-active',
    description:
      'stop then cont on the source during precopy: the guest runs again before the switchover, so the switchover stops it and the destination starts its guest',
    config: MANAGED,
    waypoints: [
      both('active', 'active'),
      step('STOP', 'active'),
      { kind: 'step', name: 'cont on the source in active', event: 'CONT', side: 'source', from: (s) => s.source === 'active' && s.sourceContext.runstate === 'paused' },
      both('completed', 'completed'),
      destinationRuns(true),
    ],
    timing: { throttle: THROTTLE, releaseAfter: 'CONT' },
  },
  {
    name: 'retry-after-destination-killed',
    description:
      'the destination is killed during precopy, the source fails; a new destination process, migrate again: both complete',
    config: RETRY,
    waypoints: [
      both('active', 'active'),
      step('STREAM_BREAKS', 'active'),
      source('failed'),
      newDestination('failed'),
      both('completed', 'completed'),
    ],
    timing: { throttle: THROTTLE, releaseAfter: 'STREAM_BREAKS' },
  },
  {
    name: 'retry-after-cancel',
    description:
      'migrate_cancel during precopy: the source is cancelled and the destination fails; a new destination process, migrate again: both complete; ' +
      'a migrate after completed is refused (migrate_prepare: the guest is in postmigrate)',
    config: RETRY,
    waypoints: [
      both('active', 'active'),
      step('MIGRATE_CANCEL', 'active'),
      both('cancelled', 'failed'),
      newDestination('cancelled'),
      both('completed', 'completed'),
      { kind: 'probe', name: 'after completed', events: ['MIGRATE'] },
    ],
    timing: { throttle: THROTTLE, releaseAfter: 'MIGRATE_CANCEL' },
  },
  {
    name: 'retry-after-cancel-with-ack',
    description:
      'retry after a cancel with switchover-ack and the return path: the new destination process gets the same capabilities, acks, and both complete',
    config: RETRY_ACK,
    waypoints: [
      both('active', 'active'),
      step('MIGRATE_CANCEL', 'active'),
      cancelledWithReturnPath,
      newDestination('cancelled'),
      acked,
      both('completed', 'completed'),
    ],
    timing: { throttle: THROTTLE, releaseAfter: 'MIGRATE_CANCEL' },
  },
  {
    name: 'destination-paused-then-cont-with-ack',
    description: 'the destination runs with -S and switchover-ack is on: the ack does not start the guest; it stays paused until cont',
    config: PAUSED_DESTINATION_ACK,
    waypoints: [
      acked,
      ...pausedUntilCont,
    ],
  },
  {
    name: 'refused-commands',
    description:
      'commands the model does not take are refused by QEMU: a second migrate, a second migrate-incoming and migrate-continue while active; ' +
      'migrate-continue and migrate-incoming after the end (and migrate_cancel, which QEMU accepts as a no-op)',
    config: PAUSE,
    waypoints: [
      both('active', 'active'),
      { kind: 'probe', name: 'while active', events: ['MIGRATE', 'MIGRATE_INCOMING', 'MIGRATE_CONTINUE'] },
      step('MIGRATE_CANCEL', 'active'),
      both('cancelled', 'failed'),
      // QEMU accepts the cancel as a no-op: qemu10-cancel-without-migration-is-a-no-op
      { kind: 'probe', name: 'after the end', events: ['MIGRATE_CONTINUE', 'MIGRATE_INCOMING', 'MIGRATE_CANCEL'] },
    ],
    timing: { throttle: THROTTLE },
  },
];

export interface ScenarioRun {
  readonly scenario: Scenario;
  readonly plan: Plan;
  /** The recorded run, time-ordered. */
  readonly records: readonly LogRecord[];
  readonly result: ConformResult;
  readonly seconds: number;
  /** A harness failure (a status never reached, QEMU died at start), distinct from a divergence. */
  readonly error: string | null;
}

/** Plan a scenario, run it on two fresh QEMUs, check the recorded run. */
export async function runScenario(s: Scenario, opts: PairOptions & Omit<RunOptions, 'timing'> = {}): Promise<ScenarioRun> {
  const t0 = performance.now();
  const p = plan(s.config, s.waypoints, s.plan);
  const pair = await startPair({ ...opts, destinationAutostart: s.config.autostart ?? true });
  let error: string | null = null;
  let records: LogRecord[];
  try {
    await runPlan(pair, p, { ...opts, ...(s.timing ? { timing: s.timing } : {}), ...(s.capabilities ? { capabilities: s.capabilities } : {}) });
  } catch (e) {
    error = (e as Error).message;
  } finally {
    records = sortRecords(await pair.close());
  }
  return { scenario: s, plan: p, records, result: checkLog(records), seconds: (performance.now() - t0) / 1000, error };
}

/** A report of one run: the verdict, and on a divergence or error the model path for reference. */
export function formatRun(r: ScenarioRun): string {
  const verdict = r.error ? `ERROR: ${r.error}` : r.result.divergence ? 'DIVERGES' : r.result.incomplete ? 'INCOMPLETE' : 'conforms';
  const lines = [`${r.scenario.name}: ${verdict} (${r.seconds.toFixed(2)} s, ${r.plan.actions.length} actions)`, formatResult(r.result).replace(/^/gm, '  ')];
  if (r.error || r.result.divergence || r.result.incomplete) lines.push('  model path:', ...r.plan.path.map((l) => `    ${l}`));
  return lines.join('\n');
}
