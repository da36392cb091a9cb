/**
 * Scenarios on real QEMU with real VFIO devices (mtty in the nested VM, nested.ts). As for the runs
 * without a device (src/qemu/scenarios.ts), each is a model configuration and targets in the model;
 * its controllable actions come from the model path to those targets (plan.ts) and the same adapter
 * (runPlan) issues them, here on the two QEMUs inside the VM.
 *
 * The recorded run is checked at device level with checkLog (conform.ts): the log's process records
 * name each side's devices, so the model is the composed system with that many mtty devices per side,
 * and every VFIO_MIGRATION event of both sides is checked with the statuses, run states and traces
 * (ConformResult.deviceEvents, statusObservations). statusLevelRecords gives what the device-free model
 * can judge (the destination's non-zero ack count left out: with a VFIO device that supports
 * switchover-ack it counts one pending approval per device, loadvm_state_switchover_ack_needed num=N;
 * vfio_switchover_ack_needed in hw/vfio/migration.c), for comparing the two levels.
 */
import { THROTTLE, acked, both, cancelledWithReturnPath, newDestination, source, step } from '../qemu/waypoints.js';
import { type ConformResult, checkLog, formatResult } from '../qemu/conform.js';
import { QmpTimeoutError } from '../qemu/qmp.js';
import { type ExtraCapabilities, type Timing, runPlan } from '../qemu/adapter.js';
import { type LogRecord, type Side, isEvent, isProcess, isTrace, sortRecords } from '../qemu/log.js';
import type { ControllableEvent, ModelConfig } from '../qemu/model.js';
import { type Plan, type PlanOptions, type Waypoint, plan } from '../qemu/plan.js';
import { type NestedOptions, type NestedPair, type NestedTiming, TERMINAL, startNestedPair } from './nested.js';

export interface NestedScenario {
  readonly name: string;
  readonly description: string;
  readonly config: ModelConfig;
  readonly waypoints: readonly Waypoint[];
  /** mtty devices per side. */
  readonly devices: Readonly<Record<Side, 1 | 2>>;
  /** Capabilities beyond those `config` implies. */
  readonly capabilities?: ExtraCapabilities;
  /**
   * After the plan: wait up to this long for both sides to end (for outcomes the device-free model does
   * not predict, e.g. the one-sided ack), then query both once more.
   */
  readonly settleMs?: number;
  /** Holding a status long enough to act in it (a bandwidth limit on the source). */
  readonly timing?: Timing;
  readonly plan?: PlanOptions;
  /**
   * SIGSTOP this side's QEMU just before the first planned action of this kind (timing, not a model
   * action): a frozen destination neither reads the stream nor closes its return path, so the source
   * stays in 'device' after sending the final state until the fault is injected.
   */
  readonly freezeBefore?: { readonly side: Side; readonly event: ControllableEvent };
  /** The mdevs of a new destination process (NestedOptions.newDestinationMdevs). */
  readonly newDestinationMdevs?: 'fresh' | 'reused';
}

const ACK: ModelConfig = { ack: 'legacy', pauseBeforeSwitchover: false };
/** multifd on both sides: the devices' final state goes over the channels (x-migration-multifd-transfer=auto). */
const MULTIFD_ACK: ModelConfig = { ...ACK, multifd: 2 };
const PAUSE_ACK: ModelConfig = { ack: 'legacy', pauseBeforeSwitchover: true };

const ONE = { source: 1, destination: 1 } as const;
const TWO = { source: 2, destination: 2 } as const;

export const NESTED_SCENARIOS: readonly NestedScenario[] = [
  {
    name: 'vfio-precopy-ack',
    description: 'precopy with switchover-ack, one mtty per side: the destination acks once the device data arrived, both complete',
    config: ACK,
    waypoints: [acked, both('completed', 'completed')],
    devices: ONE,
  },
  {
    name: 'vfio-multifd-ack',
    description: 'multifd with 2 channels and switchover-ack, one mtty per side: the final device state goes over the channels, loaded in order by the load thread; both complete',
    config: MULTIFD_ACK,
    waypoints: [acked, both('completed', 'completed')],
    devices: ONE,
  },
  {
    name: 'vfio-multifd-two-devices-ack',
    description: 'multifd with 2 channels and switchover-ack, two mtty per side: a save thread and a load thread per device; both complete',
    config: MULTIFD_ACK,
    waypoints: [acked, both('completed', 'completed')],
    devices: { source: 2, destination: 2 },
  },
  {
    name: 'vfio-pause-ack',
    description: 'pause-before-switchover with switchover-ack, one mtty per side: pre-switchover, migrate-continue, both complete',
    config: PAUSE_ACK,
    waypoints: [source('pre-switchover'), acked, both('completed', 'completed')],
    devices: ONE,
  },
  {
    name: 'vfio-ack-source-only',
    description:
      'switchover-ack (and return-path) on the source only, one mtty per side: the source sends the device\'s INIT_DATA_SENT flag, ' +
      'the destination (ack off) refuses it in vfio_load_state ("Received INIT_DATA_SENT but switchover ack is not used"): the destination fails',
    config: { ack: 'legacy', oneSide: 'source', pauseBeforeSwitchover: false },
    waypoints: [both('active', 'active')],
    devices: ONE,
    settleMs: 20_000,
  },
  {
    name: 'vfio-ack-destination-only',
    description: 'switchover-ack (and return-path) on the destination only, one mtty per side: the source never sends INIT_DATA_SENT nor waits for an ack',
    config: { ack: 'legacy', oneSide: 'destination', pauseBeforeSwitchover: false },
    // run to active and watch it end (planning to both completed works too since the model's source
    // takes its return path from its own capabilities)
    waypoints: [both('active', 'active')],
    devices: ONE,
    settleMs: 20_000,
  },
  {
    name: 'vfio-cancel-in-active-ack',
    description:
      'switchover-ack, one mtty per side, the source throttled: migrate_cancel in active; the source is cancelled (or fails, when the return-path shutdown wins), the destination fails, the device runs again',
    config: ACK,
    waypoints: [both('active', 'active'), step('MIGRATE_CANCEL', 'active'), cancelledWithReturnPath],
    devices: ONE,
    timing: { throttle: THROTTLE },
  },
  {
    name: 'vfio-cancel-in-pre-switchover-ack',
    description: 'pause-before-switchover with switchover-ack, one mtty per side: migrate_cancel in pre-switchover (guest and device already stopped)',
    config: PAUSE_ACK,
    waypoints: [source('pre-switchover'), step('MIGRATE_CANCEL', 'pre-switchover'), both('cancelled', 'failed')],
    devices: ONE,
  },
  {
    name: 'vfio-destination-killed-in-active-ack',
    description: 'switchover-ack, one mtty per side, the source throttled: the destination QEMU is SIGKILLed in active; the source fails, its device runs again',
    config: ACK,
    waypoints: [both('active', 'active'), step('STREAM_BREAKS', 'active'), source('failed')],
    devices: ONE,
    timing: { throttle: THROTTLE },
  },
  {
    name: 'vfio-destination-killed-in-pre-switchover-ack',
    description:
      'pause-before-switchover with switchover-ack, one mtty per side: the destination is SIGKILLed while the source is paused, migrate-continue then fails the migration',
    config: PAUSE_ACK,
    waypoints: [
      both('pre-switchover', 'active'),
      step('STREAM_BREAKS', 'pre-switchover'),
      step('MIGRATE_CONTINUE', 'pre-switchover', (s) => s.sourceContext.streamError !== null),
      source('failed'),
    ],
    devices: ONE,
  },
  {
    name: 'vfio-unreachable-destination',
    description: 'migrate to a port nobody listens on inside the VM, one mtty on the source: setup, then failed; the device never leaves running',
    config: { ack: 'off', pauseBeforeSwitchover: false },
    waypoints: [step('STREAM_BREAKS', 'setup', (s) => s.destination === 'none' && s.sourcePhase !== 'saved'), both('failed', 'none')],
    plan: { migrateNeedsListener: false },
    devices: ONE,
  },
  {
    name: 'vfio-cancel-in-setup-ack',
    description:
      'switchover-ack, one mtty per side: migrate_cancel while the source is still in setup (its connect held pending by a host listener whose accept queue is full): ' +
      'the source is cancelled, its device never leaves running, the destination keeps listening',
    config: ACK,
    waypoints: [both('none', 'setup'), step('MIGRATE_CANCEL', 'setup'), both('cancelled', 'setup')],
    devices: ONE,
    timing: { stallConnect: true },
  },
  {
    name: 'vfio-cancel-after-completed-ack',
    description: 'switchover-ack, one mtty per side: both complete, then migrate_cancel: QEMU accepts it and nothing changes (no event, no device state change)',
    config: ACK,
    waypoints: [acked, both('completed', 'completed'), { kind: 'probe', name: 'after completed', events: ['MIGRATE_CANCEL'] }],
    devices: ONE,
  },
  {
    name: 'vfio-destination-killed-in-device-ack',
    description:
      'pause-before-switchover with switchover-ack, one mtty per side: the destination is frozen (SIGSTOP) at pre-switchover, migrate-continue takes the source to device, ' +
      'where it sends the final state and waits for the return path; the destination is SIGKILLed there: the source fails and its device runs again',
    config: PAUSE_ACK,
    waypoints: [source('pre-switchover'), acked, step('STREAM_BREAKS', 'device'), source('failed')],
    devices: ONE,
    freezeBefore: { side: 'destination', event: 'MIGRATE_CONTINUE' },
  },
  {
    name: 'vfio-retry-after-destination-killed-ack',
    description:
      'switchover-ack, one mtty per side, the source throttled: the destination is SIGKILLed in active, the source fails; a new destination process, migrate again: both complete',
    config: { ...ACK, retries: 1 },
    waypoints: [both('active', 'active'), step('STREAM_BREAKS', 'active'), source('failed'), newDestination('failed'), both('completed', 'completed')],
    devices: ONE,
    timing: { throttle: THROTTLE, releaseAfter: 'STREAM_BREAKS' },
  },
  {
    name: 'vfio-retry-on-reused-mdev',
    description:
      'as vfio-retry-after-destination-killed-ack, ack off, but the new destination process opens the mdev the killed one left in RESUMING: mtty keeps the state across close, ' +
      'QEMU cannot reset it, its RESUMING request is a no-op without a data_fd, and the first device write fails the load (EBADF) — an outcome the model does not predict',
    config: { ack: 'off', pauseBeforeSwitchover: false, retries: 1 },
    waypoints: [both('active', 'active'), step('STREAM_BREAKS', 'active'), source('failed'), newDestination('failed'), both('active', 'active')],
    devices: ONE,
    timing: { throttle: THROTTLE, releaseAfter: 'STREAM_BREAKS' },
    newDestinationMdevs: 'reused',
    settleMs: 15_000,
  },
  {
    name: 'vfio-two-devices-ack',
    description: 'precopy with switchover-ack, two mtty devices per side: both complete',
    config: ACK,
    waypoints: [acked, both('completed', 'completed')],
    devices: TWO,
  },
];

/**
 * The inner command lines every runner here may start (the planned scenarios, runStopCont,
 * runPausedDestination), for a session VM booted once for all of them (startNestedSession).
 */
/** The destination's VFIO devices refuse multifd device-state transfer (x-migration-multifd-transfer=off). */
const MULTIFD_TRANSFER_OFF = ['-global', 'vfio-pci.x-migration-multifd-transfer=off'];

export const SESSION_PLANS: readonly NestedOptions[] = [
  ...NESTED_SCENARIOS.map((s) => ({ devices: s.devices, ...(s.newDestinationMdevs ? { newDestinationMdevs: s.newDestinationMdevs } : {}) })),
  { devices: ONE, extraArgs: { destination: ['-S'] } },
  { devices: ONE, extraArgs: { destination: MULTIFD_TRANSFER_OFF } },
];


export interface NestedRun {
  readonly scenario: NestedScenario;
  readonly plan: Plan;
  readonly records: readonly LogRecord[];
  readonly result: ConformResult;
  readonly timing: NestedTiming & { readonly totalMs: number; readonly migrationMs: number };
  /** What each inner QEMU wrote on stderr (its error_report lines). */
  readonly stderr: Readonly<Record<Side, string>>;
  /** A harness failure (a status never reached, a QEMU died), distinct from a divergence. */
  readonly error: string | null;
  /** Sides whose QMP monitor stopped answering where a scenario allows it (a blocked main loop), in order. */
  readonly unanswered: readonly Side[];
}

/** The VFIO_MIGRATION device-state sequence of each device on one side, in log order, by device-id. */
export function deviceStates(records: readonly LogRecord[], side: Side): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of records) {
    if (!isEvent(r) || r.side !== side || r.event !== 'VFIO_MIGRATION') continue;
    const id = String(r.data['device-id'] ?? r.data['qom-path'] ?? '?');
    const list = out.get(id) ?? [];
    list.push(String(r.data['device-state']));
    out.set(id, list);
  }
  return out;
}

/**
 * The records the device-free model can judge: no device events or device lists (so configOf gives no
 * devices), and not the destination's non-zero ack count (see the header).
 */
export function statusLevelRecords(records: readonly LogRecord[]): LogRecord[] {
  return records
    .filter((r) => !(isTrace(r) && (r.trace === 'vfio_migration_set_state' || (r.trace === 'loadvm_state_switchover_ack_needed' && !/num=0\b/.test(r.args)))))
    .filter((r) => !(isEvent(r) && r.event === 'VFIO_MIGRATION'))
    .map((r) => (isProcess(r) && r.devices ? (({ devices: _, ...rest }) => rest)(r) : r));
}

/** Plan a scenario, run it in a fresh nested VM, check the recorded run. */
/**
 * Start a nested pair for `s`, run `body` on it, close it and check the recorded run: what every runner
 * shares. An error of `body` is the run's error (the log is still checked).
 */
async function recordRun(s: NestedScenario, p: Plan, opts: NestedOptions, body: (pair: NestedPair) => Promise<void>): Promise<NestedRun> {
  const t0 = Date.now();
  const pair = await startNestedPair(opts);
  const t1 = Date.now();
  let error: string | null = null;
  let records: LogRecord[];
  try {
    await body(pair);
  } catch (e) {
    error = (e as Error).message;
  } finally {
    records = sortRecords(await pair.close());
  }
  const migrationMs = Date.now() - t1;
  return {
    scenario: s,
    plan: p,
    records,
    result: checkLog(records),
    timing: { ...pair.timing, totalMs: Date.now() - t0, migrationMs },
    stderr: { source: pair.stderr('source'), destination: pair.stderr('destination') },
    error,
    unanswered: [...pair.unanswered],
  };
}

export async function runNestedScenario(s: NestedScenario, opts: Omit<NestedOptions, 'devices'> & { log?: (line: string) => void } = {}): Promise<NestedRun> {
  const p = plan(s.config, s.waypoints, s.plan);
  return recordRun(s, p, { ...opts, devices: s.devices, ...(s.newDestinationMdevs ? { newDestinationMdevs: s.newDestinationMdevs } : {}) }, async (pair) => {
    let frozen = false;
    const freeze = s.freezeBefore;
    const before = async (a: { event: ControllableEvent }) => {
      if (!freeze || frozen || a.event !== freeze.event) return;
      frozen = true;
      await pair.freeze(freeze.side);
    };
    await runPlan(pair, p, {
      statusTimeoutMs: 90_000,
      ...(s.capabilities ? { capabilities: s.capabilities } : {}),
      ...(s.timing ? { timing: s.timing } : {}),
      ...(opts.log ? { log: opts.log } : {}),
      finalQueries: s.settleMs === undefined,
      before,
    });
    if (s.settleMs !== undefined) {
      for (const side of ['source', 'destination'] as const) await pair.waitForAny(side, TERMINAL[side], s.settleMs).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      for (const side of ['source', 'destination'] as const) {
        await pair.execute(side, 'query-migrate');
        await pair.execute(side, 'query-status');
      }
    }
  });
}

/** A report of one run: the verdict, timings and the device-state sequences. */
export function formatNestedRun(r: NestedRun): string {
  const verdict = r.error ? `ERROR: ${r.error}` : r.result.divergence ? 'DIVERGES' : r.result.incomplete ? 'INCOMPLETE' : 'conforms';
  const t = r.timing;
  const lines = [
    `${r.scenario.name}: ${verdict} (${(t.totalMs / 1000).toFixed(1)} s: VM ready ${(t.readyMs / 1000).toFixed(1)} s, QMP ${(t.connectedMs / 1000).toFixed(1)} s, migration ${(t.migrationMs / 1000).toFixed(1)} s)`,
    formatResult(r.result).replace(/^/gm, '  '),
  ];
  for (const side of ['source', 'destination'] as const) {
    for (const [id, states] of deviceStates(r.records, side)) lines.push(`  ${side} ${id}: ${states.join(' -> ')}`);
  }
  if (r.error || r.result.divergence || r.result.incomplete) lines.push('  model path:', ...r.plan.path.map((l) => `    ${l}`));
  for (const side of r.unanswered) {
    // what that QEMU did last (its trace lines reach us through the VM's console, not its monitor)
    const last = r.records.filter((x) => isTrace(x) && x.side === side).slice(-20);
    lines.push(`  ${side}: its QMP monitor stopped answering; its last trace lines:`, ...last.map((x) => (isTrace(x) ? `    ${x.trace} ${x.args}` : '')));
  }
  return lines.join('\n');
}

/**
 * Management `stop` then `cont` of the source during precopy, with one mtty per side — hand-written, not
 * planned: stop/cont are not actions of the status-level model (the composed model has them with
 * `migrationSystem({ management: true })`, which predicts both outcomes this observes). The source is
 * held in precopy (max-bandwidth 1000 B/s, downtime-limit 1 ms), `stop` and `cont` are sent back to back,
 * then the limits are lifted and the run is watched for `watchMs`:
 *  - switchover-ack off: the stop moves the device to stop-copy and the cont back to running
 *    (vfio_vmstate_change), which ends the kernel's saving session; the final save gets a new data_fd
 *    while QEMU still holds the old one ("data_fd out of sync", vfio_save_complete_precopy → -EBADF), so
 *    the migration fails;
 *  - switchover-ack on: the new session never sends INIT_DATA_SENT, so no ack comes and the source stays
 *    in 'active' for good; the run ends with migrate_cancel.
 * With `cont: false` (a stop alone, ack on, before the ack came): QEMU switches over without the ack
 * (migration_can_switchover: "No reason to wait for switchover ACK if VM is stopped"), and the
 * destination of a paused source completes paused, its device left in RESUMING.
 */
export async function runStopCont(ack: boolean, opts: Omit<NestedOptions, 'devices'> & { watchMs?: number; cont?: boolean } = {}): Promise<NestedRun> {
  const cont = opts.cont ?? true;
  const s: NestedScenario = {
    name: `vfio-stop${cont ? '-cont' : ''}-in-precopy${ack ? '-ack' : ''}`,
    description: `management stop${cont ? ' + cont' : ''} of the source during precopy, switchover-ack ${ack ? 'on' : 'off'} (hand-written)`,
    config: ack ? ACK : { ack: 'off', pauseBeforeSwitchover: false },
    waypoints: [both('active', 'active')],
    devices: ONE,
  };
  const p = plan(s.config, s.waypoints);
  return recordRun(s, p, { ...opts, devices: s.devices }, async (pair) => {
    const caps = {
      capabilities: [
        { capability: 'events', state: true },
        { capability: 'return-path', state: ack },
        { capability: 'switchover-ack', state: ack },
      ],
    };
    for (const side of ['destination', 'source'] as const) await pair.execute(side, 'migrate-set-capabilities', caps);
    await pair.execute('source', 'migrate-set-parameters', { 'max-bandwidth': 1000, 'downtime-limit': 1 });
    await pair.execute('destination', 'migrate-incoming', { uri: pair.incomingUri, 'exit-on-error': false });
    await pair.execute('source', 'migrate', { uri: pair.incomingUri });
    await pair.waitForStatus('source', 'active', 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    // one after the other: QMP runs them in order anyway, and the log then has each command before its effects
    await pair.execute('source', 'stop');
    if (cont) await pair.execute('source', 'cont');
    await new Promise((r) => setTimeout(r, 500));
    await pair.execute('source', 'migrate-set-parameters', { 'max-bandwidth': 10_000_000_000, 'downtime-limit': 300 });
    await pair.waitForAny('source', TERMINAL.source, opts.watchMs ?? 8000).catch(() => undefined);
    await pair.execute('source', 'query-migrate');
    if (!TERMINAL.source.includes(pair.status.source)) {
      await pair.execute('source', 'migrate_cancel');
      await pair.waitForAny('source', TERMINAL.source, 10_000);
    }
    await pair.waitForAny('destination', TERMINAL.destination, 10_000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    for (const side of ['source', 'destination'] as const) {
      await pair.execute(side, 'query-migrate');
      await pair.execute(side, 'query-status');
    }
  });
}

/**
 * multifd on both sides, but x-migration-multifd-transfer=off on the destination's device (the source's
 * is auto, so on) — hand-written (the planning model has no device property): the source sends the
 * device state over the channels; the destination refuses the first packet ("got device state packet but
 * not doing multifd transfer", vfio_multifd_load_state_buffer), shuts the channels and fails (or, if the
 * refusal stops the receive threads before they read their SYNC, waits in the RAM sync for ever). The
 * source, without a return path, completes if its sends were done before the channels went, and fails
 * otherwise — both seen on real runs; the model has every one of these outcomes (docs/multifd.md).
 */
export async function runMultifdTransferMismatch(opts: Omit<NestedOptions, 'devices' | 'extraArgs'> = {}): Promise<NestedRun> {
  const s: NestedScenario = {
    name: 'vfio-multifd-transfer-off-on-destination',
    description: 'multifd on both sides, x-migration-multifd-transfer=off on the destination: the source completes, the destination refuses the device state (hand-written)',
    config: { ack: 'off', pauseBeforeSwitchover: false, multifd: 2 },
    // the plan goes as far as the switchover; how each side ends is QEMU's race (see above)
    waypoints: [source('device')],
    devices: ONE,
    settleMs: 20_000,
  };
  const p = plan(s.config, s.waypoints);
  return recordRun(s, p, { ...opts, devices: s.devices, extraArgs: { destination: MULTIFD_TRANSFER_OFF } }, async (pair) => {
    await runPlan(pair, p, { statusTimeoutMs: 90_000, finalQueries: false });
    for (const side of ['source', 'destination'] as const) await pair.waitForAny(side, TERMINAL[side], s.settleMs!).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    // a blocked main loop does not answer: noted (the test judges it), not a harness failure
    // (the destination's other errors, as before, are no finding: it may have closed its monitor)
    const query = (side: Side) =>
      pair.execute(side, 'query-migrate').then(
        () => undefined,
        (e: unknown) => {
          if (e instanceof QmpTimeoutError) pair.unanswered.add(side);
          else if (side === 'source') throw e;
        },
      );
    await query('source');
    if (!pair.dead.has('destination')) await query('destination');
  });
}

/**
 * The destination started paused (`-S`, as libvirt starts it), switchover-ack on, one mtty per side —
 * hand-written (the status-level model has no `cont`): the migration completes with the destination
 * paused and its device left in RESUMING (QEMU moves it on only when the VM starts,
 * vfio_vmstate_change); `cont` on the destination then takes it through running-p2p to running.
 */
export async function runPausedDestination(opts: Omit<NestedOptions, 'devices' | 'extraArgs'> = {}): Promise<NestedRun> {
  const s: NestedScenario = {
    name: 'vfio-destination-paused-then-cont-ack',
    description: 'destination started with -S, switchover-ack on: completes paused, then cont (hand-written)',
    config: ACK,
    waypoints: [acked, both('completed', 'completed')],
    devices: ONE,
  };
  const p = plan(s.config, s.waypoints);
  return recordRun(s, p, { ...opts, devices: s.devices, extraArgs: { destination: ['-S'] } }, async (pair) => {
    await runPlan(pair, p, { statusTimeoutMs: 90_000 });
    await pair.execute('destination', 'cont');
    await new Promise((r) => setTimeout(r, 500));
    await pair.execute('destination', 'query-status');
  });
}
