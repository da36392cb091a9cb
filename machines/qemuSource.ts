/**
 * QEMU's outgoing migration (`MigrationState.state`) with its VFIO devices, as a statechart.
 *
 * Models (QEMU 10.0 / master ece408818d; shared/reference/qemu-migration.md §0, §a, §b, §c, §h):
 *  - the MigrationStatus values, each a state or a region of states tagged with its QAPI spelling
 *    (`sourceStatus` reads it); the statuses a migration passes through live in one compound state,
 *    `migrating`, which takes migrate_cancel and stream errors once for all of them;
 *  - the VM run state beside it (running, paused by QMP `stop`, finish-migrate at the switchover stop,
 *    postmigrate after completion);
 *  - the migration thread as events: THREAD_STEP is one pass of its loop in which RAM and device pending
 *    data do not fit the threshold (or the ack gate is closed): a precopy round, or save setup, the
 *    completion, the cleanup; PENDING_FITS_THRESHOLD is a pass in which they fit (bandwidth ×
 *    downtime-limit is the environment's: QEMU's migration_iteration_run switches over when
 *    `pending_size < threshold_size` and migration_can_switchover — the device part is the cached
 *    initial + dirty bytes, and the exact query adds the stop-copy size, so a device with bytes left,
 *    even initial ones, can be switched over, and dirty bytes that never reach 0 hold nothing up);
 *  - the ack gate, migration_can_switchover: switchover-ack off, or the guest not running, or acked.
 *    Only the gate forces a device's initial bytes out before the switchover;
 *  - precopy chunks go on the stream as they are read (vfio_save_block), before INIT_DATA_SENT;
 *  - the switchover stop and the final save run under one BQL hold (migration_completion_precopy): no
 *    QMP command lands in between, so migrate_cancel lands before the stop, in pre-switchover, or after
 *    EOF; with pause-before-switchover the BQL is dropped in pre-switchover (migration_maybe_pause);
 *  - QMP `stop`/`cont` (management): the VM state handlers run (PRE_COPY devices go to STOP_COPY on
 *    `paused`), a stopped guest opens the ack gate, and the switchover of a stopped guest runs no handler
 *    (vm_stop_force_state only sets finish-migrate); `cont` takes the devices to RUNNING, which ends a
 *    saving session whose data_fd QEMU keeps — the final save's new data_fd is then "out of sync";
 *  - a new `migrate` after failed or cancelled (migrate_init; bounded by `retries`), refused in
 *    postmigrate ("Can't migrate the vm that was paused due to previous migration", migrate_prepare);
 *  - pause-before-switchover (pre-switchover, left by MIGRATE_CONTINUE), stream errors (acted on by the
 *    thread at its next pass, as migration_detect_error does), the return path;
 *  - migrate_cancel's two outcomes with a return path: 'cancelling', or — the return-path shutdown first,
 *    the migration thread failing before the cancel's CAS — 'failed' (CANCEL_LOSES_TO_RETURN_PATH_ERROR);
 *  - postcopy: QEMU refuses `migrate` with postcopy-ram when a VFIO device is present
 *    (vfio_save_prepare), so the postcopy states exist but are unreachable in every system with a device.
 *
 * Left out: colo, background snapshots, multifd (its own model), `failing` (not in QEMU 10.0: its
 * MigrationStatus has no such value — the 10.0.2 binary holds no such QAPI string; which later release
 * carries the proposed status is unconfirmed), the QMP `migrate` refused while one runs (no state change).
 * Simplified: QEMU's exact query (a PRECOPY_INFO ioctl) runs every round, and INIT_DATA_SENT follows the
 * kernel's counter rather than QEMU's cached precopy_init_size; errors during setup fail it at once
 * (QEMU reports them after the wait-unplug step, with the same end state). Cancel appends
 * STREAM_SHUTDOWN after what is already in the stream; a real socket shutdown may also drop data still
 * in flight, which changes nothing the destination could do with it.
 *
 * @example
 *   import { createActor } from 'xstate';
 *   import { qemuSourceMachine } from './qemuSource.js';
 *   const src = createActor(qemuSourceMachine, { input: { devices: ['STOP_COPY|P2P|PRE_COPY'], ack: 'legacy' } }).start();
 *   src.send({ type: 'MIGRATE' });
 *   src.send({ type: 'THREAD_STEP' }); // save setup: the device goes RUNNING -> PRE_COPY
 *   src.getSnapshot().context.devs[0].state; // => 'PRE_COPY'
 */
import { and, assign, enqueueActions, not, setup } from 'xstate';
import { type AckMode, type MainStreamMessage, type MultifdChannelMessage, multifdChannelType } from './migrationMessages.js';
import { type MultifdSaveRecord, initialSave, saveCall } from './multifdSave.js';
import { GENERIC_PROFILE } from './vfioProfiles.js';
import {
  type DevicePass,
  type DeviceRecord,
  armFault,
  type EventRelease,
  type VfioMigrationEvent,
  closeFd,
  deviceCall,
  eachDevice,
  hasP2P,
  hasPreCopy,
  inPreCopy,
  initialDevice,
  precopyPending,
  readChunk,
  readToEof,
  startPass,
  vmStateChange,
} from './qemuVfio.js';
import type { FeatureSet, VfioState } from './vfioArcs.js';

export interface QemuSourceInput {
  /** The feature set of each VFIO device on this host. */
  readonly devices: readonly FeatureSet[];
  /** switchover-ack on this host. */
  readonly ack: AckMode;
  /** The return-path capability (default: on exactly when switchover-ack is). */
  readonly returnPath?: boolean;
  readonly pauseBeforeSwitchover?: boolean;
  /** The postcopy-ram capability (refused with VFIO devices). */
  readonly postcopyRam?: boolean;
  /** A virtio-net failover primary whose unplug the source waits for (wait-unplug). */
  readonly failoverPrimary?: boolean;
  /** Byte domain of each device (units). Default 1. */
  readonly maxBytes?: number;
  /**
   * How QEMU handles a device whose initial data comes back (VFIO_PRECOPY_INFO_REINIT); see
   * ReinitDesign. Unset: the system of issue #4, with no device reconfiguration at all.
   */
  readonly design?: ReinitDesign;
  /** Fail the migration once QEMU has seen more than this many REINIT reports (a storm bound). */
  readonly reinitBudget?: number;
  /** How often the guest may reconfigure a device (the environment's bound); 'unbounded' for a storm. */
  readonly guestReinits?: number | 'unbounded';
  /**
   * How often the guest may dirty device state during the migration (the environment's bound; default 1),
   * or 'unbounded'. Every dirtied unit is read and sent as a precopy chunk, so an unbounded guest sends for
   * ever (the counts wrap, see UNIT_COUNT_MODULUS) — and the migration still ends: the switchover does
   * not wait for dirty bytes to reach 0.
   */
  readonly guestDirties?: number | 'unbounded';
  /** How many new `migrate` commands management may issue after a failed or cancelled one. Default 0. */
  readonly retries?: number;
  /**
   * The QEMU release whose QMP events the machine emits (VFIO_MIGRATION outputs): '11.0' and later also
   * send `pre-copy-p2p-prepare`. Default '10.0', or '11.1' with the per-device ack (which 11.1 brought).
   */
  readonly release?: QemuRelease;
  /** How many driver failures the environment may inject into this host's device SETs (default 0). */
  readonly deviceFaults?: number;
  /** The multifd capability with its device-state transfer (machines/multifdSave.ts); absent: multifd off. */
  readonly multifd?: SourceMultifdInput;
  /** Units a stopped device adds to its saving stream (the generic profile's finalBytes; default 1). */
  readonly finalBytes?: number;
}

/**
 * Multifd on the source (migration/multifd*.c, hw/vfio/migration-multifd.c, QEMU 10.0.2): `channels` is
 * multifd-channels; `transfer` is each VFIO device's x-migration-multifd-transfer (AUTO: on when multifd is
 * on — mapped-ram off and compression none, which the model assumes — and send-switchover-start is on;
 * vfio_multifd_transfer_supported). `sendSwitchoverStart` is the migration property (off for machine types
 * up to 9.2, hw_compat_9_2, which also sets x-migration-multifd-transfer off). `loadConfigAfterIter` is
 * x-migration-load-config-after-iter (QEMU 10.1; AUTO is on only for ARM targets, off for machine types
 * up to 10.0): the source then sends DEV_CONFIG_LOAD_READY where it would send the dummy END_OF_STATE of
 * vfio_save_state.
 */
export interface SourceMultifdInput {
  readonly channels: number;
  readonly transfer?: 'auto' | 'on' | 'off';
  readonly sendSwitchoverStart?: boolean;
  readonly loadConfigAfterIter?: boolean;
}

/** The source's multifd state: the setting fixed at setup, the save threads, and the completion's BQL. */
export interface SourceMultifd {
  readonly channels: number;
  /** migration->multifd_transfer (vfio_multifd_setup): device state goes over the multifd channels. */
  readonly transfer: boolean;
  /** x-migration-multifd-transfer=on asked for a transfer this configuration does not support. */
  readonly unsupported: boolean;
  readonly sendSwitchoverStart: boolean;
  readonly loadConfigAfterIter: boolean;
  /** One save thread per device. */
  readonly threads: readonly MultifdSaveRecord[];
  /** The completion runs (threads spawned, not yet joined): the migration thread holds the BQL. */
  readonly completing: boolean;
}

/** QEMU releases the machines distinguish. */
export type QemuRelease = '10.0' | '11.0' | '11.1';
export const QEMU_RELEASES: readonly QemuRelease[] = ['10.0', '11.0', '11.1'];
export const eventRelease = (r: QemuRelease): EventRelease => (r === '10.0' ? '10.0' : '11.0');

/** `11.0`, `pc-q35-11.0`, `pc-i440fx-10.2` → [11, 0]; null when the text names no version. */
export function machineTypeVersion(machineType: string): readonly [number, number] | null {
  const m = /^(?:[a-z0-9-]+-)?(\d+)\.(\d+)$/.exec(machineType);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/**
 * The ack QEMU uses when switchover-ack is on. QEMU up to 11.0 has only the one-shot ack; 11.1 uses the
 * per-device ack unless the machine type sets the migration property `switchover-ack-legacy`, which
 * hw_compat_11_0 does for every machine type up to 11.0 (shared/reference/qemu-switchover-ack-v2.md §1;
 * the property is a secondary source's report). Both hosts run the same machine type, and a machine
 * type newer than 11.0 exists only on QEMU 11.1+, so the two sides always agree.
 */
export function switchoverAckMode(release: QemuRelease, machineType: string): 'legacy' | 'per-device' {
  const v = machineTypeVersion(machineType);
  if (v === null) throw new RangeError(`machine type '${machineType}' names no version (e.g. pc-q35-11.0)`);
  const [major, minor] = v;
  const [rMajor, rMinor] = release.split('.').map(Number) as [number, number];
  if (major > rMajor || (major === rMajor && minor > rMinor)) throw new RangeError(`QEMU ${release} has no machine type ${major}.${minor}`);
  if (release !== '11.1') return 'legacy';
  return major < 11 || (major === 11 && minor <= 0) ? 'legacy' : 'per-device';
}

/**
 * - 'legacy': QEMU ≤ 11.0 — one-shot legacy ack, no PRECOPY_INFOv2 opt-in, so a reconfigured device's
 *   new initial data can only show up as dirty bytes.
 * - 'reusable-ack': QEMU 11.1 as merged — v2 opt-in, per-device acks re-requested after REINIT, a final
 *   PRECOPY_INFO check with vCPUs stopped in the P2P prepare handler only, and a request that arrives
 *   after the switchover decision fails the migration.
 * - 'recheck-resume': the kvm-thread idea — at switchover stop the vCPUs, bring P2P devices to
 *   PRE_COPY_P2P, query every device once more; on REINIT (initial bytes back) restart the vCPUs,
 *   PRE_COPY_P2P -> PRE_COPY, revoke the decision and continue precopy until a new ack. This needs QEMU
 *   behaviour that does not exist today: a stop that runs only the "prepare" handlers, and a restart that
 *   takes PRE_COPY_P2P -> PRE_COPY instead of the "main" handler's RUNNING (which would end the session).
 * The REINIT budget (fail after K REINIT reports) is this project's proposal; QEMU has no such bound.
 * Not modelled: QEMU 11.1 running a machine type in legacy ack mode (v2 opted in, but no re-request
 * and no stop-time check), and the stop-time check's own ioctl failure (QEMU then assumes a REINIT).
 */
export type ReinitDesign = 'legacy' | 'reusable-ack' | 'recheck-resume';

/** The VM run state (system/runstate.c) as the model distinguishes it. */
export type RunState = 'running' | 'paused' | 'finish-migrate' | 'postmigrate';

export interface QemuSourceContext {
  readonly devices: readonly FeatureSet[];
  readonly ack: AckMode;
  readonly returnPath: boolean;
  readonly pauseBeforeSwitchover: boolean;
  readonly postcopyRam: boolean;
  readonly failoverPrimary: boolean;
  readonly runstate: RunState;
  /** MigrationState.vm_old_state: the run state before the switchover stop (global_state_store). */
  readonly vmOldState: 'running' | 'paused';
  readonly devs: readonly DeviceRecord[];
  /** vfio: initial_data_sent per device. */
  readonly initialDataSent: readonly boolean[];
  /**
   * Units of device data sent per device (precopy chunks and the final state, VFIO_DEVICE_STATE),
   * counted modulo UNIT_COUNT_MODULUS: a guest that dirties its device for ever sends for ever.
   */
  readonly sent: readonly number[];
  /** legacy: MigrationState.switchover_acked */
  readonly switchoverAcked: boolean;
  /** per-device: acks requested and not yet received */
  readonly pendingAcks: number;
  /** An error on the stream or the return path, acted on by the thread's next pass. */
  readonly streamError: string | null;
  /** The first device request that failed (refused by the kernel, or QEMU's data_fd check). */
  readonly vfioRefused: string | null;
  /** The last QMP command refused, with QEMU's reason. */
  readonly qmpError: string | null;
  readonly design: ReinitDesign | null;
  readonly reinitBudget: number | null;
  /** REINIT reports QEMU has seen (counted only under a budget). */
  readonly reinitSeen: number;
  /** Guest reconfigurations the environment still allows (null: unbounded). */
  readonly reinitsLeft: number | null;
  /** Device dirtying the environment still allows (null: unbounded). */
  readonly dirtiesLeft: number | null;
  /** Why QEMU fails the migration on its own (a late ack request, a REINIT budget, an ack underflow). */
  readonly failReason: string | null;
  /** The destination closed its end of the return path. */
  readonly returnPathClosed: boolean;
  /** migrate_cancel already shut the connection down through the return path (shutdown(2) again does nothing). */
  readonly streamShut: boolean;
  /** Which migration this is (0 the first; each retry one more). */
  readonly attempt: number;
  /** New migrations management may still start after a failed or cancelled one. */
  readonly retriesLeft: number;
  readonly release: QemuRelease;
  /** Driver failures the environment may still inject (DRIVER_FAULT). */
  readonly faultsLeft: number;
  /** Multifd (null: the capability is off). */
  readonly multifd: SourceMultifd | null;
}

/**
 * Ghost state: what the properties need to know of a run's past, kept out of the machine an orchestrator
 * imports. The machine has a hook action at each point where it changes (`ghostSwitchoverStop`,
 * `ghostNewAttempt`, `noteInterventionAfterEof`, `ghostReconfigure`; no-ops here), and the checked systems
 * provide them (src/properties/ghosts.ts). A ghost that has its initial value is absent, so a run's states
 * are the same with and without the observers.
 */
export interface QemuSourceGhosts {
  /** Generation of each device's initial data (mod 4), bumped by every reconfiguration; absent: all 0. */
  readonly gen?: readonly number[];
  /** An ack was outstanding when the VM stopped for switchover (for NoSwitchoverWhileAckPending). */
  readonly stoppedWithAckPending?: true;
  /** Management cancelled, or the stream broke, after the final state was sent (for the whole run). */
  readonly intervenedAfterEof?: true;
}

/** The source's context in a checked system: the model's, with the observers' ghost state. */
export type CheckedSourceContext = QemuSourceContext & QemuSourceGhosts;

/**
 * What the source emits: messages on the migration stream, and its QMP VFIO_MIGRATION events — outputs
 * to the world, not messages (the migration system declares them as observations).
 */
export type SourceOutput = MainStreamMessage | MultifdChannelMessage | VfioMigrationEvent;

export type QemuSourceEvent =
  | { type: 'MIGRATE' }
  | { type: 'THREAD_STEP' }
  | { type: 'PENDING_FITS_THRESHOLD' }
  | { type: 'GUEST_DIRTIES_DEVICE'; device: number }
  | { type: 'GUEST_REINITS_DEVICE'; device: number }
  /**
   * QMP migrate_cancel. `returnPathFirst`: the environment's other interleaving of the same command
   * (QEMU 10.0, a return path open, the migration thread running): the return-path shutdown makes the
   * thread fail the migration before the cancel sets 'cancelling' (see CANCEL_LOSES_TO_RETURN_PATH_ERROR).
   */
  | { type: 'MIGRATE_CANCEL'; returnPathFirst?: true }
  | { type: 'MIGRATE_CONTINUE' }
  | { type: 'MIGRATE_START_POSTCOPY' }
  | { type: 'STOP' }
  | { type: 'CONT' }
  | { type: 'STREAM_BREAKS' }
  /** The environment: the driver of `device` fails the first arc of its next SET (see DeviceRecord.fault). */
  | { type: 'DRIVER_FAULT'; device: number; leaves: 'reached' | 'ERROR' }
  /** Multifd: device `device`'s save thread takes its next step; a packet it queues goes on `channel`. */
  | { type: 'SAVE_THREAD_STEP'; device: number; channel: number }
  | { type: 'MIG_RP_MSG_SWITCHOVER_ACK'; attempt: number }
  | { type: 'RP_SHUTDOWN'; error: boolean; attempt: number }
  /** The destination shut the multifd channels down (its receive threads failed). */
  | { type: 'MULTIFD_CHANNELS_SHUT'; attempt: number };

/**
 * Device data is counted modulo this on both hosts (the state space stays finite); what a property can
 * then miss is a loss of a whole multiple of it, which the stream (FIFO, never dropping) cannot cause.
 */
export const UNIT_COUNT_MODULUS = 8;

type Ctx = QemuSourceContext;
type Patch = Partial<Ctx>;
type Out = { patch: Patch; out: SourceOutput[] };

/** A pass over this host's devices, starting from the context. */
const devicePass = (ctx: Ctx): DevicePass => startPass(ctx.devs, ctx.vfioRefused, eventRelease(ctx.release));
/** What a pass leaves: the devices and the first failure, and its events as outputs. */
const passOut = (p: DevicePass, patch: Patch = {}, before: SourceOutput[] = []): Out => ({
  patch: { devs: p.devs, vfioRefused: p.refused, ...patch },
  out: [...before, ...p.events],
});
/** Two steps in a row: the second sees the context after the first. */
function then(ctx: Ctx, first: (c: Ctx) => Out, second: (c: Ctx) => Out): Out {
  const a = first(ctx);
  const b = second({ ...ctx, ...a.patch });
  return { patch: { ...a.patch, ...b.patch }, out: [...a.out, ...b.out] };
}

/** vfio_save_setup for every device (RUNNING → PRE_COPY, recover RUNNING), then the first PRECOPY_INFO query. */
function saveSetup(ctx: Ctx): Out {
  const out: MainStreamMessage[] = [{ type: 'MIG_STREAM_HEADER', attempt: ctx.attempt }];
  if (ctx.returnPath) out.push({ type: 'MIG_CMD_OPEN_RETURN_PATH' });
  const precopy = (d: DeviceRecord) => hasPreCopy(d.context.features) && d.state === 'RUNNING';
  const r = eachDevice(devicePass(ctx), (d) => (precopy(d) ? ['PRE_COPY', 'RUNNING'] : null));
  let requests = 0;
  const devs = r.devs.map((d, i) => {
    if (!precopy(ctx.devs[i]!) || d.state !== 'PRE_COPY') return d;
    if (ctx.ack === 'per-device') requests++; // request_switchover_ack at setup (11.1)
    return deviceCall(d, { type: 'VFIO_MIG_GET_PRECOPY_INFO' });
  });
  // vfio_save_setup → vfio_multifd_setup: an explicit x-migration-multifd-transfer=on that this
  // configuration cannot do fails the setup
  const unsupported = ctx.multifd?.unsupported && ctx.devs.length > 0 ? 'Multifd device transfer requested but unsupported in the current config' : null;
  return passOut({ ...r, devs }, { pendingAcks: ctx.pendingAcks + requests, failReason: ctx.failReason ?? unsupported }, out);
}

/** What QEMU's exact pending queries change: the device, the re-requested acks, the REINITs seen. */
interface QueryState {
  devs: DeviceRecord[];
  initialDataSent: boolean[];
  pendingAcks: number;
  reinitSeen: number;
  /** A query found REINIT after INIT_DATA_SENT and asked for a new ack. */
  newRequest: boolean;
  reinitFound: boolean;
}

function queryState(ctx: Ctx): QueryState {
  return {
    devs: [...ctx.devs],
    initialDataSent: [...ctx.initialDataSent],
    pendingAcks: ctx.pendingAcks,
    reinitSeen: ctx.reinitSeen,
    newRequest: false,
    reinitFound: false,
  };
}

/**
 * VFIO_MIG_GET_PRECOPY_INFO on device i. With the v2 opt-in a REINIT report after INIT_DATA_SENT resets
 * initial_data_sent and requests a new ack (11.1: the request is counted by the next pending query).
 */
function query(ctx: Ctx, q: QueryState, i: number): void {
  const dev = deviceCall(q.devs[i]!, { type: 'VFIO_MIG_GET_PRECOPY_INFO' });
  q.devs[i] = dev;
  const last = dev.context.last;
  if (!(last?.op === 'VFIO_MIG_GET_PRECOPY_INFO' && last.ok && last.reinit)) return;
  q.reinitFound = true;
  if (ctx.reinitBudget !== null) q.reinitSeen = Math.min(q.reinitSeen + 1, ctx.reinitBudget + 1);
  if (q.initialDataSent[i] && ctx.ack === 'per-device') {
    q.initialDataSent[i] = false;
    q.pendingAcks++;
    q.newRequest = true;
  }
}

function budgetExceeded(ctx: Ctx, q: QueryState): string | null {
  return ctx.reinitBudget !== null && q.reinitSeen > ctx.reinitBudget
    ? `a device kept re-initialising: REINIT budget of ${ctx.reinitBudget} exhausted`
    : null;
}

const queryPatch = (ctx: Ctx, q: QueryState): Patch => ({
  devs: q.devs,
  initialDataSent: q.initialDataSent,
  pendingAcks: q.pendingAcks,
  reinitSeen: q.reinitSeen,
  failReason: ctx.failReason ?? budgetExceeded(ctx, q),
});

/**
 * One precopy round (qemu_savevm_state_iterate → vfio_save_iterate): each device in a PRE_COPY state is
 * queried and gives one chunk, sent on the stream; INIT_DATA_SENT follows once its initial bytes are out.
 */
function iterate(ctx: Ctx): Out {
  const out: MainStreamMessage[] = [];
  const q = queryState(ctx);
  const sent = [...ctx.sent];
  q.devs.forEach((d, i) => {
    if (!inPreCopy(d.state)) return;
    query(ctx, q, i);
    if (precopyPending(q.devs[i]!) > 0) {
      const r = readChunk(q.devs[i]!);
      q.devs[i] = r.dev;
      if (r.units > 0) {
        sent[i] = (sent[i]! + r.units) % UNIT_COUNT_MODULUS;
        out.push({ type: 'VFIO_DEVICE_STATE', device: i, units: r.units });
      }
    }
    if (ctx.ack !== 'off' && !q.initialDataSent[i] && q.devs[i]!.context.initialBytes === 0) {
      q.initialDataSent[i] = true;
      // `gen` is the observers' tag (0 without them): which generation of initial data this marks
      out.push({ type: 'VFIO_MIG_FLAG_DEV_INIT_DATA_SENT', device: i, gen: (ctx as CheckedSourceContext).gen?.[i] ?? 0 });
    }
  });
  return { patch: { ...queryPatch(ctx, q), sent }, out };
}

/** For NoSwitchoverWhileAckPending's observer: is an ack outstanding right now (whatever the gate said)? */
export function ackOutstanding(ctx: QemuSourceContext): boolean {
  return ctx.ack !== 'off' && (ctx.ack === 'legacy' ? !ctx.switchoverAcked : ctx.pendingAcks > 0);
}

/**
 * migration_stop_vm(RUN_STATE_FINISH_MIGRATE): vm_old_state and the global state are recorded; a running
 * guest stops and the VFIO state handlers run; a guest already paused only changes run state
 * (vm_stop_force_state), so its devices stay where `stop` left them.
 */
function stopVm(ctx: Ctx): Out {
  const old = ctx.runstate === 'paused' ? 'paused' : 'running';
  const base: Patch = { runstate: 'finish-migrate', vmOldState: old };
  if (ctx.runstate !== 'running') return { patch: base, out: [] };
  return passOut(vmStateChange(devicePass(ctx), 'finish-migrate'), base);
}

export type CommitOutcome = 'proceed' | 'fail' | 'resume';

/**
 * The switchover stop of a design, after the decision: what happens to the devices and whether the
 * switchover goes on, fails, or (recheck-resume) is revoked and precopy resumes.
 */
export function commitSwitchover(ctx: Ctx): { outcome: CommitOutcome; patch: Patch; out: SourceOutput[] } {
  const q = queryState(ctx);
  let pass = devicePass(ctx);
  const set = (target: (d: DeviceRecord) => VfioState | null) => {
    pass = eachDevice({ ...pass, devs: q.devs }, target);
    q.devs = [...pass.devs];
  };
  const p2p = (d: DeviceRecord) => hasP2P(d.context.features);
  const pre = (d: DeviceRecord) => inPreCopy(d.state);
  const stopped = { ...stopVm(ctx).patch, devs: ctx.devs, vfioRefused: ctx.vfioRefused }; // the handlers run below
  if (ctx.design === 'recheck-resume') {
    // vCPUs stopped; P2P devices quiesced; one more query of every precopy device
    set((d) => (p2p(d) ? (pre(d) ? 'PRE_COPY_P2P' : 'RUNNING_P2P') : null));
    q.devs.forEach((d, i) => pre(d) && query(ctx, q, i));
    const fail = budgetExceeded(ctx, q);
    if (q.reinitFound || q.devs.some((d) => inPreCopy(d.state) && d.context.initialBytes > 0)) {
      // revoke: the vCPUs run again, PRE_COPY_P2P -> PRE_COPY, precopy goes on until a new ack
      set((d) => (p2p(d) ? (pre(d) ? 'PRE_COPY' : 'RUNNING') : null));
      return { outcome: fail ? 'fail' : 'resume', patch: { ...queryPatch(ctx, q), vfioRefused: pass.refused, runstate: 'running' }, out: [...pass.events] };
    }
    set((d) => (pre(d) ? 'STOP_COPY' : 'STOP'));
    return { outcome: 'proceed', patch: { ...stopped, ...queryPatch(ctx, q), vfioRefused: pass.refused }, out: [...pass.events] };
  }
  // legacy and reusable-ack: the VM stops; the P2P "prepare" handlers run first
  q.devs.forEach((d, i) => {
    // vfio_final_precopy_reinit_check: v2 in use, switchover-ack on and not legacy
    if (p2p(d) && ctx.design === 'reusable-ack' && ctx.ack === 'per-device' && pre(d)) query(ctx, q, i);
  });
  set((d) => (p2p(d) ? (pre(d) ? 'PRE_COPY_P2P' : 'RUNNING_P2P') : null));
  set((d) => (pre(d) ? 'STOP_COPY' : 'STOP'));
  // The final save_query_pending reports new requests; the check placed after
  // migration_switchover_prepare() fails the migration on one — after the status moved to device (or
  // pre-switchover) and the devices to STOP_COPY: there is no way back to precopy, and no device state
  // is saved.
  const late = q.newRequest ? 'switchover-ack requested after the switchover decision' : null;
  const failReason = ctx.failReason ?? late ?? budgetExceeded(ctx, q);
  return { outcome: 'proceed', patch: { ...stopped, ...queryPatch(ctx, q), failReason, vfioRefused: pass.refused }, out: [...pass.events] };
}

/** The multifd RAM sync at the end of RAM's last round: a SYNC on every channel, then the FLUSH. */
function ramSync(m: SourceMultifd): SourceOutput[] {
  return [
    ...Array.from({ length: m.channels }, (_, k): SourceOutput => ({ type: multifdChannelType(k), packet: { kind: 'SYNC' } })),
    { type: 'RAM_SAVE_FLAG_MULTIFD_FLUSH' },
  ];
}

/**
 * Multifd device-state transfer, the start of the completion: MIG_CMD_SWITCHOVER_START, then every
 * device's save thread is spawned (qemu_savevm_state_complete_precopy_iterable); the iterable handlers run
 * at the thread's next pass (saveIterables).
 */
function spawnSaveThreads(ctx: Ctx, m: SourceMultifd): Out {
  return {
    patch: { multifd: { ...m, threads: m.threads.map((t) => saveCall(t, { type: 'SPAWN' })), completing: true } },
    out: [{ type: 'MIG_CMD_SWITCHOVER_START' }],
  };
}

/**
 * The iterable handlers of the completion, while the save threads run: RAM's last round ends with the
 * multifd sync, then each device's handler (vfio_save_complete_precopy) only puts the dummy END_OF_STATE.
 */
function saveIterables(ctx: Ctx): Out {
  const m = ctx.multifd!;
  return { patch: {}, out: [...ramSync(m), ...ctx.devices.map((_, device): SourceOutput => ({ type: 'VFIO_MIG_FLAG_END_OF_STATE', device }))] };
}

/**
 * After the join (every save thread returned true): the non-iterables — each device's vfio_save_state puts
 * DEV_CONFIG_LOAD_READY (load-config-after-iter) or the dummy END_OF_STATE — the global state and EOF.
 */
function saveNonIterables(ctx: Ctx): Out {
  const m = ctx.multifd!;
  const marks = ctx.devices.map((_, device): SourceOutput => ({ type: m.loadConfigAfterIter ? 'VFIO_MIG_FLAG_DEV_CONFIG_LOAD_READY' : 'VFIO_MIG_FLAG_END_OF_STATE', device }));
  return { patch: { multifd: { ...m, completing: false } }, out: [...marks, { type: 'QEMU_VM_EOF', guest: ctx.vmOldState }] };
}

/**
 * One step of device `i`'s save thread (vfio_multifd_save_complete_precopy_thread): the STOP_COPY request
 * (channel 0 only: it queues nothing), or one read — a chunk queued as the next packet on `channel`, or at
 * EOF the config packet with the CONFIG_STATE flag.
 */
function saveThreadStep(ctx: Ctx, i: number, channel: number): Out {
  const m = ctx.multifd!;
  const threads = [...m.threads];
  const t = threads[i]!;
  if (t.state === 'stopping') {
    const r = eachDevice(devicePass(ctx), () => ['STOP_COPY', 'STOP'], i);
    threads[i] = saveCall(t, r.failed ? { type: 'SET_FAILED', reason: r.refused ?? 'STOP_COPY refused' } : { type: 'STOPPED' });
    return passOut(r, { multifd: { ...m, threads } });
  }
  const devs = [...ctx.devs];
  const read = readChunk(devs[i]!);
  devs[i] = read.dev;
  const last = read.dev.context.last;
  if (last?.op === 'DATA_FD_READ' && !last.ok) {
    threads[i] = saveCall(t, { type: 'READ_FAILED', reason: `device ${i}: reading state buffer ${t.context.idx} failed: -${last.errno}` });
    return { patch: { devs, multifd: { ...m, threads } }, out: [] };
  }
  const config = read.units === 0;
  const packet: MultifdChannelMessage = { type: multifdChannelType(channel), packet: { kind: 'device-state', device: i, idx: t.context.idx, units: read.units, config } };
  threads[i] = saveCall(t, { type: config ? 'CONFIG_QUEUED' : 'CHUNK_QUEUED' });
  const sent = [...ctx.sent];
  sent[i] = (sent[i]! + read.units) % UNIT_COUNT_MODULUS;
  return { patch: { devs, sent, multifd: { ...m, threads } }, out: [packet] };
}

/** migration_switchover_start + qemu_savevm_state_complete_precopy + the global state + EOF. */
function completePrecopy(ctx: Ctx): Out {
  if (ctx.multifd?.transfer && ctx.devs.length > 0) return spawnSaveThreads(ctx, ctx.multifd);
  const out: SourceOutput[] = ctx.multifd && !ctx.multifd.sendSwitchoverStart ? [] : [{ type: 'MIG_CMD_SWITCHOVER_START' }];
  if (ctx.multifd) out.push(...ramSync(ctx.multifd));
  const sent = [...ctx.sent];
  let pass = devicePass(ctx);
  // device by device (vfio_save_complete_precopy); the first failure ends the save: no EOF follows
  for (let i = 0; i < pass.devs.length; i++) {
    const r = eachDevice({ ...pass, events: [] }, () => ['STOP_COPY', 'STOP'], i);
    out.push(...r.events);
    pass = r;
    if (r.failed) return { patch: { devs: pass.devs, sent, vfioRefused: pass.refused }, out };
    const devs = [...pass.devs];
    const read = readToEof(devs[i]!);
    devs[i] = read.dev;
    pass = { ...pass, devs };
    sent[i] = (sent[i]! + read.units) % UNIT_COUNT_MODULUS;
    out.push({ type: 'VFIO_DEVICE_STATE', device: i, units: read.units });
  }
  out.push({ type: 'QEMU_VM_EOF', guest: ctx.vmOldState });
  return { patch: { devs: pass.devs, sent, vfioRefused: pass.refused }, out };
}

/** vfio_save_cleanup after a completed migration: close the data_fd, STOP_COPY → STOP. */
function saveCleanup(ctx: Ctx): Out {
  return passOut(eachDevice({ ...devicePass(ctx), devs: ctx.devs.map(closeFd) }, (d) => (d.state === 'STOP_COPY' ? 'STOP' : null)));
}

/**
 * migration_iteration_finish on failure or cancel: a guest stopped for the switchover goes back to
 * vm_old_state (started again if it ran: the VM state handlers run; left paused if it was paused).
 */
function restartGuest(ctx: Ctx): Out {
  if (ctx.runstate !== 'finish-migrate') return { patch: {}, out: [] };
  if (ctx.vmOldState === 'paused') return { patch: { runstate: 'paused' }, out: [] };
  return passOut(vmStateChange(devicePass(ctx), 'running'), { runstate: 'running' });
}

/**
 * migration_cleanup: vfio_save_cleanup closes QEMU's data_fd, then the MIG_EVENT_PRECOPY_FAILED notifier
 * moves every device to RUNNING (or resets it) — also when the guest stays paused.
 */
function precopyFailedNotifier(ctx: Ctx): Out {
  return passOut(eachDevice({ ...devicePass(ctx), devs: ctx.devs.map(closeFd) }, () => 'RUNNING'));
}

/** migration_iteration_finish then migration_cleanup, in one pass of the thread (failure). */
const recover = (ctx: Ctx): Out => then(ctx, restartGuest, precopyFailedNotifier);

/** The fields a new migration starts afresh (migrate_init). */
function freshAttempt(ctx: Ctx): Patch {
  return {
    initialDataSent: ctx.devices.map(() => false),
    sent: ctx.devices.map(() => 0),
    switchoverAcked: false,
    pendingAcks: 0,
    streamError: null,
    vfioRefused: null,
    qmpError: null,
    reinitSeen: 0,
    failReason: null,
    returnPathClosed: false,
    streamShut: false,
    vmOldState: 'running',
    ...(ctx.multifd ? { multifd: { ...ctx.multifd, threads: ctx.devices.map(() => initialSave()), completing: false } } : {}),
  };
}

/** Applies a step of the source in an action: assign its patch, emit its outputs in order. */
function apply(enqueue: { assign: (p: Patch) => void; emit: (e: SourceOutput) => void }, r: Out): void {
  enqueue.assign(r.patch);
  for (const m of r.out) enqueue.emit(m);
}
const stopAndComplete = (ctx: Ctx): Out => then(ctx, stopVm, completePrecopy);
const commitAndComplete = (ctx: Ctx): Out => then(ctx, commitSwitchover, completePrecopy);
const pauseGuest = (ctx: Ctx): Out => passOut(vmStateChange(devicePass(ctx), 'paused'), { runstate: 'paused' });
const resumeGuest = (ctx: Ctx): Out => passOut(vmStateChange(devicePass(ctx), 'running'), { runstate: 'running' });

const sourceSetup = setup({
  types: {
    context: {} as QemuSourceContext,
    events: {} as QemuSourceEvent,
    input: {} as QemuSourceInput,
    emitted: {} as SourceOutput,
  },
  guards: {
    /** vfio_save_prepare refuses postcopy-ram when a VFIO device is present. */
    postcopyWithVfio: ({ context }) => context.postcopyRam && context.devs.length > 0,
    /** hw/vfio/migration.c: several VFIO devices migrate only if every one supports P2P (else a blocker). */
    multipleDevicesWithoutP2P: ({ context }) => context.devs.length > 1 && context.devs.some((d) => !hasP2P(d.context.features)),
    /** migrate_caps_check: switchover-ack needs return-path. */
    ackWithoutReturnPath: ({ context }) => context.ack !== 'off' && !context.returnPath,
    /** migrate_prepare: a guest left in postmigrate by a completed migration cannot migrate again. */
    inPostmigrate: ({ context }) => context.runstate === 'postmigrate',
    retryAllowed: ({ context }) => context.retriesLeft > 0,
    failoverPrimary: ({ context }) => context.failoverPrimary,
    /** An error on the stream, the return path or a device request: migration_detect_error fails the migration. */
    streamFailed: ({ context }) => context.streamError !== null || context.vfioRefused !== null || context.failReason !== null,
    /** close_return_path_on_source can return: the destination closed it, or there is none. */
    returnPathDone: ({ context }) => !context.returnPath || context.returnPathClosed,
    /** A REINIT design is in use (the switchover decision and the stop are two steps). */
    designed: ({ context }) => context.design !== null,
    commitOutcome: ({ context }, params: { is: CommitOutcome }) => commitSwitchover(context).outcome === params.is,
    /** The design's check at the stop failed the switchover: nothing is saved, the next pass fails it. */
    commitFailsLater: ({ context }) => commitSwitchover(context).patch.failReason != null,
    /** The guest reconfigures a precopying device while its vCPUs run, as often as the environment allows. */
    guestMayReconfigure: ({ context, event }) =>
      event.type === 'GUEST_REINITS_DEVICE' &&
      context.design !== null &&
      context.runstate === 'running' &&
      context.reinitsLeft !== 0 &&
      inPreCopy(context.devs[event.device]?.state ?? 'STOP'),
    /** migration_can_switchover: ack off, or the guest not running, or acked. */
    canSwitchover: ({ context }) =>
      context.ack === 'off' ||
      context.runstate !== 'running' ||
      (context.ack === 'legacy' ? context.switchoverAcked : context.pendingAcks === 0),
    /** migration_iteration_run would complete: nothing has failed and the ack gate is open. */
    switchoverPossible: and([not('streamFailed'), 'canSwitchover']),
    pauseBeforeSwitchover: ({ context }) => context.pauseBeforeSwitchover,
    postcopyAllowed: ({ context }) => context.postcopyRam && context.devs.length === 0,
    /** The guest runs and the device tracks what it dirties (it is precopying). */
    deviceTracksDirt: ({ context, event }) =>
      context.runstate === 'running' &&
      context.dirtiesLeft !== 0 &&
      event.type === 'GUEST_DIRTIES_DEVICE' &&
      inPreCopy(context.devs[event.device]?.state ?? 'STOP'),
    guestRuns: ({ context }) => context.runstate === 'running',
    guestPaused: ({ context }) => context.runstate === 'paused',
    /** A return-path message of this migration (one of an earlier connection is never read). */
    thisAttempt: ({ context, event }) => 'attempt' in event && event.attempt === context.attempt,
    hasReturnPath: ({ context }) => context.returnPath,
    /** The plain migrate_cancel (not the interleaving in which the return-path shutdown wins). */
    plainCancel: ({ event }) => event.type === 'MIGRATE_CANCEL' && event.returnPathFirst !== true,
    /** migrate_cancel's interleaving in which the return-path shutdown wins (needs an open return path). */
    returnPathFirstCancel: ({ context, event }) => event.type === 'MIGRATE_CANCEL' && event.returnPathFirst === true && context.returnPath && !context.streamShut,
    faultMayStrike: ({ context, event }) => event.type === 'DRIVER_FAULT' && context.faultsLeft > 0 && context.devs[event.device]?.fault === undefined,
    /** Device state goes over the multifd channels (there are devices, and the transfer is on). */
    multifdTransfer: ({ context }) => context.multifd !== null && context.multifd.transfer && context.devs.length > 0,
    /** The completion holds the BQL from the threads' spawn to their join: QMP commands wait. */
    completionHoldsBql: ({ context }) => context.multifd?.completing === true,
    /** A save thread has a step to take: its STOP_COPY request (on channel 0 only), or a read. */
    saveThreadMayStep: ({ context, event }) => {
      if (event.type !== 'SAVE_THREAD_STEP' || !context.multifd?.completing) return false;
      const t = context.multifd.threads[event.device];
      return t !== undefined && (t.state === 'reading' || (t.state === 'stopping' && event.channel === 0));
    },
    saveThreadsDone: ({ context }) => context.multifd !== null && context.multifd.threads.every((t) => t.state === 'done' || t.state === 'failed'),
    /** multifd_join_device_state_save_threads: a thread returned false. */
    saveThreadFailed: ({ context }) => context.multifd !== null && context.multifd.threads.some((t) => t.state === 'failed'),
  },
  actions: {
    refusePostcopy: assign({ qmpError: 'postcopy-ram is not supported with VFIO devices (vfio_save_prepare)' }),
    refuseCaps: assign({ qmpError: 'switchover-ack requires the return-path capability' }),
    refuseMultipleWithoutP2P: assign({ qmpError: 'migration blocked: several VFIO devices need P2P support (hw/vfio/migration.c)' }),
    refusePostmigrate: assign({ qmpError: "Can't migrate the vm that was paused due to previous migration" }),
    enterPostmigrate: assign({ runstate: 'postmigrate' as const }),
    /** migrate_init: none → setup, switchover_acked = false. */
    migrateInit: assign({ switchoverAcked: false, pendingAcks: 0, qmpError: null }),
    /** migrate_init for a new migration after a failed or cancelled one. */
    migrateAgain: assign(({ context }) => ({
      ...freshAttempt(context),
      attempt: context.attempt + 1,
      retriesLeft: context.retriesLeft - 1,
    })),
    saveSetup: enqueueActions(({ context, enqueue }) => apply(enqueue, saveSetup(context))),
    iterate: enqueueActions(({ context, enqueue }) => apply(enqueue, iterate(context))),
    /** The switchover stop alone (pause-before-switchover: the final save waits for migrate-continue). */
    stopVmForSwitchover: enqueueActions(({ context, enqueue }) => apply(enqueue, stopVm(context))),
    /** The stop and the final save under one BQL hold. */
    stopAndCompletePrecopy: enqueueActions(({ context, enqueue }) => apply(enqueue, stopAndComplete(context))),
    completePrecopy: enqueueActions(({ context, enqueue }) => apply(enqueue, completePrecopy(context))),
    commitSwitchover: enqueueActions(({ context, enqueue }) => apply(enqueue, commitSwitchover(context))),
    /** A design's stop that goes on: the final save in the same BQL hold. */
    commitAndCompletePrecopy: enqueueActions(({ context, enqueue }) => apply(enqueue, commitAndComplete(context))),
    saveCleanup: enqueueActions(({ context, enqueue }) => apply(enqueue, saveCleanup(context))),
    recoverAfterFailure: enqueueActions(({ context, enqueue }) => apply(enqueue, recover(context))),
    restartGuest: enqueueActions(({ context, enqueue }) => apply(enqueue, restartGuest(context))),
    notifyPrecopyFailed: enqueueActions(({ context, enqueue }) => apply(enqueue, precopyFailedNotifier(context))),
    /** migration_cancel / a failure: shut the stream down (and every multifd channel: multifd_send_shutdown). */
    shutdownStream: enqueueActions(({ context, enqueue }) => {
      if (!context.streamShut) enqueue.emit({ type: 'STREAM_SHUTDOWN', attempt: context.attempt });
      for (let k = 0; k < (context.multifd?.channels ?? 0); k++) enqueue.emit({ type: multifdChannelType(k), packet: { kind: 'EOF' } });
    }),
    /** multifd_abort_device_state_save_threads, then the join: the completion is over. */
    abortSaveThreads: assign(({ context }) =>
      context.multifd ? { multifd: { ...context.multifd, threads: context.multifd.threads.map((t) => saveCall(t, { type: 'ABORT' })), completing: false } } : {},
    ),
    saveIterables: enqueueActions(({ context, enqueue }) => apply(enqueue, saveIterables(context))),
    saveNonIterables: enqueueActions(({ context, enqueue }) => apply(enqueue, saveNonIterables(context))),
    saveThreadStep: enqueueActions(({ context, enqueue, event }) => {
      if (event.type === 'SAVE_THREAD_STEP') apply(enqueue, saveThreadStep(context, event.device, event.channel));
    }),
    noteStreamError: assign({ streamError: 'stream broken' }),
    /**
     * migration_cancel's first step: qemu_file_shutdown of the return-path file shuts the connection
     * down both ways (the destination sees it end), and the migration thread's next write fails.
     */
    shutStreamThroughReturnPath: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ streamShut: true, streamError: context.streamError ?? 'connection shut down by migrate_cancel (return path first)' });
      enqueue.emit({ type: 'STREAM_SHUTDOWN', attempt: context.attempt });
    }),
    noteMultifdChannelsShut: assign(({ context }) => ({ streamError: context.streamError ?? 'multifd channels shut by the destination' })),
    /** Observer hook: a cancel or a stream break after the final state was sent. */
    noteInterventionAfterEof: () => {},
    /** Observer hook: the VM stops for the switchover (before the stop's own action). */
    ghostSwitchoverStop: () => {},
    /** Observer hook: a new migration starts after a failed or cancelled one. */
    ghostNewAttempt: () => {},
    /** Observer hook: the guest reconfigures a device (before the device takes it). */
    ghostReconfigure: () => {},
    /** The destination closed the return path; with an error (its load failed) the migration fails. */
    noteReturnPathClosed: assign(({ context, event }) => ({
      returnPathClosed: true,
      streamError: event.type === 'RP_SHUTDOWN' && event.error ? (context.streamError ?? 'the destination failed (return path closed with an error)') : context.streamError,
    })),
    /** source_return_path_thread: the ack arrived (per-device: one more than requested is an error). */
    receiveSwitchoverAck: assign(({ context }) => {
      if (context.ack === 'legacy') return { switchoverAcked: true };
      if (context.pendingAcks === 0) return { failReason: context.failReason ?? 'switchover ack pending num underflowed' };
      return { pendingAcks: context.pendingAcks - 1 };
    }),
    /** A message of an earlier connection: never read. */
    discard: () => {},
    /** QMP stop: the guest pauses and the VM state handlers run (vm_stop(RUN_STATE_PAUSED)). */
    pauseGuest: enqueueActions(({ context, enqueue }) => apply(enqueue, pauseGuest(context))),
    /** QMP cont: the guest runs again (vm_start). */
    resumeGuest: enqueueActions(({ context, enqueue }) => apply(enqueue, resumeGuest(context))),
    guestReconfiguresDevice: assign(({ context, event }) => {
      if (event.type !== 'GUEST_REINITS_DEVICE') return {};
      const devs = [...context.devs];
      devs[event.device] = deviceCall(devs[event.device]!, { type: 'GUEST_REINITS_DEVICE' });
      return { devs, reinitsLeft: context.reinitsLeft === null ? null : context.reinitsLeft - 1 };
    }),
    armDriverFault: assign(({ context, event }) => {
      if (event.type !== 'DRIVER_FAULT') return {};
      const devs = [...context.devs];
      devs[event.device] = armFault(devs[event.device]!, event.leaves);
      return { devs, faultsLeft: context.faultsLeft - 1 };
    }),
    guestDirtiesDevice: assign(({ context, event }) => {
      if (event.type !== 'GUEST_DIRTIES_DEVICE') return {};
      const devs = [...context.devs];
      const d = devs[event.device];
      if (!d) return {};
      devs[event.device] = deviceCall(d, { type: 'GUEST_DIRTIES_DEVICE' });
      return { devs, dirtiesLeft: context.dirtiesLeft === null ? null : context.dirtiesLeft - 1 };
    }),
  },
});

const fail = { target: '#qemuSource.failed', actions: 'shutdownStream' } as const;

/**
 * QEMU 10.0.2, migration/migration.c: migration_cancel (the QMP command's handler) does, in this order,
 *  1. `qemu_file_shutdown(s->rp_state.from_dst_file)` (under qemu_file_lock), when a return path is open
 *     (return-path capability, which switchover-ack requires) — on a socket that file shares the
 *     migration connection's channel, so shutdown(2) ends both directions;
 *  2. the CAS loop: `old_state = s->state; if (!migration_is_running()) break; ...
 *     migrate_set_state(&s->state, old_state, MIGRATION_STATUS_CANCELLING)` until 'cancelling';
 *  3. `qemu_file_shutdown(s->to_dst_file)` only if the state is now 'cancelling'.
 * Between 1 and 2 the other threads run: the destination sees the connection end and fails;
 * source_return_path_thread reads an error and calls migrate_set_error; the migration thread's next
 * write fails on the shut socket and migration_detect_error does `migrate_set_state(&s->state, state,
 * MIGRATION_STATUS_FAILED)`. If that lands first, step 2 finds nothing running and the migration ends
 * 'failed'. The model: this interleaving shuts the stream (STREAM_SHUTDOWN) and notes the error, and
 * the thread's next pass fails the migration as after any stream error (failOnError) — so the
 * destination's 'failed' may come first, as on real QEMU. The QMP command holds the BQL throughout, so
 * only a thread that can fail without the BQL races it: the migration thread after save setup
 * (setup.saved), in its precopy loop (active.iterating), and after the final state and EOF (closing:
 * migration_completion's close_return_path_on_source fails on the shut return path, and its `fail:`
 * label sets 'failed' unless the state is already 'cancelling' — no BQL on that path in 10.0.2). Not in
 * pre-switchover (the thread waits on pause_sem; woken by step 2 it sets 'device' and the loop's retry
 * CAS wins), nor while the completion holds the BQL (migration_completion_precopy; the command waits),
 * nor in setup.connecting (the model's connect: no return-path file yet). Read in QEMU 10.0.2's
 * migration/migration.c (migration_cancel, migration_detect_error, migration_completion,
 * source_return_path_thread).
 */
const CANCEL_LOSES_TO_RETURN_PATH_ERROR = { guard: 'returnPathFirstCancel', actions: 'shutStreamThroughReturnPath' } as const;

/** The source's multifd state at start: vfio_multifd_transfer_supported decides AUTO. */
function sourceMultifd(m: SourceMultifdInput, devices: number): SourceMultifd {
  const sendSwitchoverStart = m.sendSwitchoverStart ?? true;
  const transfer = m.transfer ?? 'auto';
  return {
    channels: m.channels,
    transfer: transfer === 'on' || (transfer === 'auto' && sendSwitchoverStart),
    unsupported: transfer === 'on' && !sendSwitchoverStart,
    sendSwitchoverStart,
    loadConfigAfterIter: m.loadConfigAfterIter ?? false,
    threads: Array.from({ length: devices }, () => initialSave()),
    completing: false,
  };
}
/**
 * QMP stop and cont, modelled before and during a migration (after it, they are the guest's business:
 * the model leaves them out there). In finish-migrate neither applies: stop is a no-op and the BQL is
 * held or the status is pre-switchover, where QEMU's cont would restart a guest mid-switchover — left out.
 */
const MANAGEMENT = {
  STOP: { guard: 'guestRuns', actions: 'pauseGuest' },
  CONT: { guard: 'guestPaused', actions: 'resumeGuest' },
} as const;
const failOnError = { guard: 'streamFailed', ...fail } as const;
/** A failure during the multifd completion: the save threads are aborted and joined first. */
const failCompletion = { target: '#qemuSource.failed', actions: ['abortSaveThreads', 'shutdownStream'] } as const;
const failCompletionOnError = { guard: 'streamFailed', ...failCompletion } as const;

/**
 * The machine. Statuses are tagged with their QAPI spelling (`sourceStatus`); the end statuses and none
 * are top-level states of that name.
 */
export const qemuSourceMachine = sourceSetup.createMachine({
  id: 'qemuSource',
  description: "QEMU's outgoing migration (MigrationState.state) and the VFIO devices it drives",
  initial: 'none',
  context: ({ input }) => ({
    devices: [...input.devices],
    ack: input.ack,
    returnPath: input.returnPath ?? input.ack !== 'off',
    pauseBeforeSwitchover: input.pauseBeforeSwitchover ?? false,
    postcopyRam: input.postcopyRam ?? false,
    failoverPrimary: input.failoverPrimary ?? false,
    runstate: 'running',
    vmOldState: 'running',
    devs: input.devices.map((features) =>
      initialDevice({
        features,
        maxBytes: input.maxBytes ?? 1,
        precopyInfoV2: input.design === 'reusable-ack' || input.design === 'recheck-resume',
        ...(input.finalBytes !== undefined && input.finalBytes !== GENERIC_PROFILE.finalBytes ? { profile: { ...GENERIC_PROFILE, finalBytes: input.finalBytes } } : {}),
      }),
    ),
    initialDataSent: input.devices.map(() => false),
    sent: input.devices.map(() => 0),
    switchoverAcked: false,
    pendingAcks: 0,
    streamError: null,
    vfioRefused: null,
    qmpError: null,
    design: input.design ?? null,
    reinitBudget: input.reinitBudget ?? null,
    reinitSeen: 0,
    reinitsLeft: input.design === undefined ? 0 : input.guestReinits === 'unbounded' ? null : (input.guestReinits ?? 1),
    dirtiesLeft: input.guestDirties === 'unbounded' ? null : (input.guestDirties ?? 1),
    failReason: null,
    returnPathClosed: false,
    streamShut: false,
    attempt: 0,
    retriesLeft: input.retries ?? 0,
    release: input.release ?? (input.ack === 'per-device' ? '11.1' : '10.0'),
    faultsLeft: input.deviceFaults ?? 0,
    multifd: input.multifd ? sourceMultifd(input.multifd, input.devices.length) : null,
  }),
  on: {
    // The return path thread runs in any state; a message of an earlier connection is never read, and
    // after the migration ends its messages change nothing.
    MIG_RP_MSG_SWITCHOVER_ACK: [{ guard: 'thisAttempt', actions: 'receiveSwitchoverAck' }, { actions: 'discard' }],
    // (a source without the return path has no thread reading it: it never sees the destination go)
    RP_SHUTDOWN: [{ guard: and(['thisAttempt', 'hasReturnPath']), actions: 'noteReturnPathClosed' }, { actions: 'discard' }],
    // after the migration (or of an earlier connection) the shut channels change nothing
    MULTIFD_CHANNELS_SHUT: { actions: 'discard' },
    GUEST_DIRTIES_DEVICE: { guard: 'deviceTracksDirt', actions: 'guestDirtiesDevice' },
    GUEST_REINITS_DEVICE: { guard: 'guestMayReconfigure', actions: ['ghostReconfigure', 'guestReconfiguresDevice'] },
    DRIVER_FAULT: { guard: 'faultMayStrike', actions: 'armDriverFault' },
  },
  states: {
    none: {
      tags: ['none'],
      description: 'No migration has been started.',
      on: {
        MIGRATE_CANCEL: { guard: 'plainCancel' }, // QEMU accepts migrate_cancel with no migration running and does nothing
        ...MANAGEMENT,
        MIGRATE: [
          { guard: 'postcopyWithVfio', actions: 'refusePostcopy' },
          { guard: 'ackWithoutReturnPath', actions: 'refuseCaps' },
          { guard: 'multipleDevicesWithoutP2P', actions: 'refuseMultipleWithoutP2P' },
          { target: 'migrating', actions: 'migrateInit' },
        ],
      },
    },
    migrating: {
      description: 'A migration runs: migrate_cancel and stream errors are taken here for every status inside.',
      initial: 'setup',
      on: {
        MIGRATE_CANCEL: { guard: and(['plainCancel', not('completionHoldsBql')]), target: 'cancelling', actions: 'shutdownStream' },
        STREAM_BREAKS: { actions: 'noteStreamError' },
        // the multifd sends fail on the shut sockets (multifd_send_thread → migrate_set_error)
        MULTIFD_CHANNELS_SHUT: [{ guard: 'thisAttempt', actions: 'noteMultifdChannelsShut' }, { actions: 'discard' }],
        ...MANAGEMENT,
      },
      states: {
        setup: {
          tags: ['setup'],
          description: 'Connected; the migration thread runs save setup (VFIO: RUNNING -> PRE_COPY).',
          initial: 'connecting',
          states: {
            connecting: { on: { THREAD_STEP: [failOnError, { target: 'saved', actions: 'saveSetup' }] } },
            saved: {
              on: {
                MIGRATE_CANCEL: CANCEL_LOSES_TO_RETURN_PATH_ERROR, // the plain one falls through to migrating's
                THREAD_STEP: [failOnError, { guard: 'failoverPrimary', target: '#qemuSource.migrating.wait-unplug' }, { target: '#qemuSource.migrating.active' }],
              },
            },
          },
        },
        'wait-unplug': {
          tags: ['wait-unplug'],
          description: 'Waiting for the guest to unplug a failover primary (virtio-net dev_unplug_pending).',
          on: { THREAD_STEP: [failOnError, { target: 'active' }] },
        },
        active: {
          tags: ['active'],
          description: 'Precopy: each pass of the thread sends a round, or switches over when pending fits the threshold.',
          initial: 'iterating',
          on: { MIGRATE_START_POSTCOPY: { guard: 'postcopyAllowed', target: '#qemuSource.postcopy-device' } },
          states: {
            iterating: {
              on: {
                MIGRATE_CANCEL: CANCEL_LOSES_TO_RETURN_PATH_ERROR, // the plain one falls through to migrating's
                THREAD_STEP: [failOnError, { actions: 'iterate' }],
                // A pass in which pending fits: enabled only where it differs from a plain round (the
                // gate is open and nothing has failed).
                PENDING_FITS_THRESHOLD: [
                  // a REINIT design: the decision, taken while the vCPUs still run
                  { guard: and(['switchoverPossible', 'designed']), target: 'decided' },
                  { guard: and(['switchoverPossible', 'pauseBeforeSwitchover']), target: '#qemuSource.migrating.pre-switchover', actions: ['ghostSwitchoverStop', 'stopVmForSwitchover'] },
                  { guard: and(['switchoverPossible', 'multifdTransfer']), target: '#qemuSource.migrating.device.iterables', actions: ['ghostSwitchoverStop', 'stopAndCompletePrecopy'] },
                  { guard: 'switchoverPossible', target: '#qemuSource.migrating.device.closing', actions: ['ghostSwitchoverStop', 'stopAndCompletePrecopy'] },
                ],
              },
            },
            decided: {
              description: 'A REINIT design took the switchover decision; the stop comes at the next pass.',
              on: {
                THREAD_STEP: [
                  failOnError,
                  { guard: { type: 'commitOutcome', params: { is: 'fail' as const } }, ...fail, actions: ['commitSwitchover', 'shutdownStream'] },
                  { guard: { type: 'commitOutcome', params: { is: 'resume' as const } }, target: 'iterating', actions: 'commitSwitchover' },
                  { guard: 'pauseBeforeSwitchover', target: '#qemuSource.migrating.pre-switchover', actions: ['ghostSwitchoverStop', 'commitSwitchover'] },
                  { guard: 'commitFailsLater', target: '#qemuSource.migrating.device.saving', actions: ['ghostSwitchoverStop', 'commitSwitchover'] },
                  { guard: 'multifdTransfer', target: '#qemuSource.migrating.device.iterables', actions: ['ghostSwitchoverStop', 'commitAndCompletePrecopy'] },
                  { target: '#qemuSource.migrating.device.closing', actions: ['ghostSwitchoverStop', 'commitAndCompletePrecopy'] },
                ],
              },
            },
          },
        },
        'pre-switchover': {
          tags: ['pre-switchover'],
          description: 'pause-before-switchover: the VM is stopped, devices in STOP_COPY; waiting for migrate-continue.',
          on: { MIGRATE_CONTINUE: { target: 'device.saving' } },
        },
        device: {
          tags: ['device'],
          description: 'Switchover: the final device state, MIG_CMD_SWITCHOVER_START and EOF are sent; then the return path closes.',
          initial: 'closing',
          states: {
            saving: {
              description: 'After migrate-continue (or a failed design check): the final save comes at the next pass.',
              on: { THREAD_STEP: [failOnError, { guard: 'multifdTransfer', target: 'iterables', actions: 'completePrecopy' }, { target: 'closing', actions: 'completePrecopy' }] },
            },
            iterables: {
              description: 'Multifd: the save threads run; the iterable handlers (RAM, then the dummy END_OF_STATE of each device) come next.',
              on: {
                SAVE_THREAD_STEP: { guard: 'saveThreadMayStep', actions: 'saveThreadStep' },
                THREAD_STEP: [failCompletionOnError, { target: 'joining', actions: 'saveIterables' }],
              },
            },
            joining: {
              description: 'Multifd: waiting for every save thread; then the non-iterables and EOF.',
              on: {
                SAVE_THREAD_STEP: { guard: 'saveThreadMayStep', actions: 'saveThreadStep' },
                THREAD_STEP: [
                  failCompletionOnError,
                  { guard: and(['saveThreadsDone', 'saveThreadFailed']), ...failCompletion },
                  { guard: 'saveThreadsDone', target: 'closing', actions: 'saveNonIterables' },
                ],
              },
            },
            closing: {
              description: 'The final state and EOF are on the stream; waiting for the return path to close.',
              on: {
                THREAD_STEP: [failOnError, { guard: 'returnPathDone', target: '#qemuSource.completed', actions: 'enterPostmigrate' }],
                MIGRATE_CANCEL: [
                  // close_return_path_on_source fails on the shut return path and migration_completion's
                  // fail label sets 'failed' unless the cancel's CAS already set 'cancelling'
                  { guard: 'returnPathFirstCancel', actions: ['noteInterventionAfterEof', 'shutStreamThroughReturnPath'] },
                  { guard: 'plainCancel', target: '#qemuSource.cancelling', actions: ['noteInterventionAfterEof', 'shutdownStream'] },
                ],
                STREAM_BREAKS: { actions: ['noteStreamError', 'noteInterventionAfterEof'] },
              },
            },
          },
        },
      },
    },
    completed: {
      tags: ['completed'],
      description: 'Done; the VM is in postmigrate. vfio_save_cleanup moves the devices STOP_COPY -> STOP.',
      initial: 'cleaning',
      on: { MIGRATE_CANCEL: { guard: 'plainCancel' }, MIGRATE: { guard: and(['retryAllowed', 'inPostmigrate']), actions: 'refusePostmigrate' } },
      states: {
        cleaning: { on: { THREAD_STEP: { target: 'done', actions: 'saveCleanup' } } },
        done: {},
      },
    },
    failed: {
      tags: ['failed'],
      description: 'Failed; the thread restores the guest and the devices go back to RUNNING.',
      initial: 'recovering',
      on: { MIGRATE_CANCEL: { guard: 'plainCancel' } },
      states: {
        recovering: { on: { THREAD_STEP: { target: 'done', actions: 'recoverAfterFailure' } } },
        done: { on: { MIGRATE: { guard: 'retryAllowed', target: '#qemuSource.migrating', actions: ['ghostNewAttempt', 'migrateAgain'] } } },
      },
    },
    cancelling: {
      tags: ['cancelling'],
      description: 'migrate_cancel was issued; the thread winds down: the guest restarts, then cleanup.',
      initial: 'winding-down',
      states: {
        // migration_iteration_finish restarts the guest; migration_cleanup then moves to cancelled and
        // runs the MIG_EVENT_PRECOPY_FAILED notifier (QEMU 10.0 shows RESUME before 'cancelled')
        'winding-down': { on: { THREAD_STEP: { target: 'guest-restored', actions: 'restartGuest' } } },
        'guest-restored': { on: { THREAD_STEP: { target: '#qemuSource.cancelled', actions: 'notifyPrecopyFailed' } } },
      },
    },
    cancelled: {
      tags: ['cancelled'],
      description: 'Cancelled; the guest is back as it was on the source.',
      on: {
        MIGRATE_CANCEL: { guard: 'plainCancel' }, // accepted, and nothing to do
        MIGRATE: { guard: 'retryAllowed', target: 'migrating', actions: ['ghostNewAttempt', 'migrateAgain'] },
      },
    },
    'postcopy-device': {
      tags: ['postcopy-device'],
      description: 'Unreachable with VFIO devices: QEMU refuses postcopy-ram for them.',
      on: { THREAD_STEP: { target: 'postcopy-active' } },
    },
    'postcopy-active': {
      tags: ['postcopy-active'],
      description: 'Unreachable with VFIO devices (postcopy).',
      on: { THREAD_STEP: { target: 'completed' }, STREAM_BREAKS: { target: 'postcopy-paused' } },
    },
    'postcopy-paused': {
      tags: ['postcopy-paused'],
      description: 'Unreachable with VFIO devices (postcopy).',
      on: { MIGRATE: { target: 'postcopy-recover-setup' } },
    },
    'postcopy-recover-setup': {
      tags: ['postcopy-recover-setup'],
      description: 'Unreachable with VFIO devices (postcopy).',
      on: { THREAD_STEP: { target: 'postcopy-recover' } },
    },
    'postcopy-recover': {
      tags: ['postcopy-recover'],
      description: 'Unreachable with VFIO devices (postcopy).',
      on: { THREAD_STEP: { target: 'postcopy-active' } },
    },
  },
});

export type QemuSourceMachine = typeof qemuSourceMachine;

/** QEMU's MigrationStatus values the source machine has, in QAPI spelling. */
export const SOURCE_STATUSES = [
  'none',
  'setup',
  'wait-unplug',
  'active',
  'pre-switchover',
  'device',
  'completed',
  'failed',
  'cancelling',
  'cancelled',
  'postcopy-device',
  'postcopy-active',
  'postcopy-paused',
  'postcopy-recover-setup',
  'postcopy-recover',
] as const;
export type SourceStatus = (typeof SOURCE_STATUSES)[number];

/**
 * The MigrationStatus (QAPI spelling) of a source state value: the status of its outermost tagged
 * region. Works on `snapshot.value` of this machine (and of any `provide()` of it).
 */
export function sourceStatus(value: unknown): SourceStatus {
  if (typeof value === 'string') return value as SourceStatus;
  const v = value as Record<string, unknown>;
  const top = Object.keys(v)[0]!;
  if (top !== 'migrating') return top as SourceStatus;
  const inner = v[top];
  return (typeof inner === 'string' ? inner : Object.keys(inner as Record<string, unknown>)[0]!) as SourceStatus;
}

/** The state below a status (e.g. 'closing' of device), or null when the status has none. */
export function sourcePhase(value: unknown): string | null {
  if (typeof value === 'string') return null;
  const v = value as Record<string, unknown>;
  const top = Object.keys(v)[0]!;
  const inner = v[top];
  if (top !== 'migrating') return typeof inner === 'string' ? inner : null;
  if (typeof inner === 'string') return null;
  const status = Object.keys(inner as Record<string, unknown>)[0]!;
  const leaf = (inner as Record<string, unknown>)[status];
  return typeof leaf === 'string' ? leaf : null;
}
