/**
 * QEMU's incoming migration (`MigrationIncomingState.state`) with its VFIO devices.
 *
 * Models (QEMU master ece408818d; shared/reference/qemu-migration.md §a "Destination life", §b, §c):
 *  - none → setup on migrate-incoming; setup → active when the stream starts (process_incoming_migration_co);
 *  - load setup: every VFIO device → RESUMING (vfio_load_setup; QEMU tracks the device as RUNNING, so it
 *    asks RUNNING → RESUMING and the kernel walks through STOP);
 *  - legacy switchover-ack: the devices that need an ack (destination device has PRE_COPY) are counted at
 *    load setup; MIG_CMD_OPEN_RETURN_PATH sends the ack at once when the count is 0; each
 *    INIT_DATA_SENT approves one and the ack goes when the count reaches 0. Per-device mode (QEMU 11.1):
 *    one ack per approved device. INIT_DATA_SENT for a device without precopy, or with the capability
 *    off, fails the load ("Received INIT_DATA_SENT but switchover ack is not used"); so does approving
 *    with the count already at 0 (-EINVAL);
 *  - each device's data — precopy chunks as they come, then its final state — is written into its
 *    resuming data_fd (vfio_load_state → vfio_load_buffer), so a device has taken its initial bytes in
 *    before the INIT_DATA_SENT behind them is approved;
 *  - at EOF the load ends (vfio_load_cleanup closes the data_fd) and the status is completed (the doc's
 *    tuples end in "none"; the code ends in completed — the model follows the code); the return path
 *    then closes. process_incoming_migration_bh starts the guest only when the source's guest ran
 *    (global state) and autostart is on — libvirt starts QEMU with -S, autostart off: the guest is then
 *    left paused and the devices stay in RESUMING until `cont` (the VM state handlers: prepare →
 *    RUNNING_P2P for P2P devices, main → RUNNING); `cont` while still incoming only sets autostart;
 *  - a device the driver refuses to leave RESUMING (its load check at RESUMING → STOP) is reset by
 *    vfio_migration_set_state; the destination has no outgoing stream to fail, so it stays completed;
 *  - a load error: failed (QEMU exits with exit-on-error; the return path closes). A new destination
 *    process (NEW_PROCESS, bounded by `restarts`) listens again; what is left of the dead connection's
 *    stream is never read by it (messages of an earlier attempt are dropped).
 *
 * @example
 *   import { createActor } from 'xstate';
 *   import { qemuDestinationMachine } from './qemuDestination.js';
 *   const dst = createActor(qemuDestinationMachine, { input: { devices: ['STOP_COPY|PRE_COPY'], ack: 'legacy' } }).start();
 *   dst.send({ type: 'MIGRATE_INCOMING' });
 *   dst.send({ type: 'MIG_STREAM_HEADER', attempt: 0 }); // the device goes to RESUMING
 *   dst.getSnapshot().context.devs[0].state; // => 'RESUMING'
 */
import { assign, enqueueActions, not, setup } from 'xstate';
import {
  type AckMode,
  MAX_MULTIFD_CHANNELS,
  type MainStreamMessage,
  type MultifdChannelMessage,
  type MultifdChannelsShut,
  type ReturnPathMessage,
  multifdChannelType,
} from './migrationMessages.js';
import { type MultifdLoadRecord, initialLoad, loadCall, loadCan, nextBufferUnits } from './multifdLoad.js';
import { type DevicePass, type VfioMigrationEvent, armFault, closeFd, deviceCall, eachDevice, hasPreCopy, initialDevice, startPass, vmStateChange } from './qemuVfio.js';
import type { DeviceRecord } from './qemuVfio.js';
import { UNIT_COUNT_MODULUS } from './qemuSource.js';
import type { FeatureSet } from './vfioArcs.js';

export interface QemuDestinationInput {
  readonly devices: readonly FeatureSet[];
  readonly ack: AckMode;
  readonly maxBytes?: number;
  /** autostart (QEMU without -S). Default true; libvirt always starts the destination with -S (false). */
  readonly autostart?: boolean;
  /** How many new destination processes management may start after one failed. Default 0. */
  readonly restarts?: number;
  /** How many driver failures the environment may inject into this host's device SETs (default 0). */
  readonly deviceFaults?: number;
  /** The multifd capability and the devices' multifd load settings (machines/multifdLoad.ts); absent: off. */
  readonly multifd?: DestinationMultifdInput;
}

/**
 * Multifd on the destination: `channels` (multifd-channels, the same as the source's); each device's
 * x-migration-multifd-transfer (AUTO as on the source: on when send-switchover-start is) decided at load
 * setup; x-migration-max-queued-buffers-size (`cap`, units; null = no limit, the default) and
 * x-migration-load-config-after-iter, both QEMU 10.1.
 */
export interface DestinationMultifdInput {
  readonly channels: number;
  readonly transfer?: 'auto' | 'on' | 'off';
  readonly sendSwitchoverStart?: boolean;
  readonly cap?: number | null;
  readonly loadConfigAfterIter?: boolean;
}

export interface DestinationMultifd {
  readonly channels: number;
  /** migration->multifd_transfer of the devices (vfio_multifd_setup at load setup). */
  readonly transfer: boolean;
  readonly loadConfigAfterIter: boolean;
  readonly cap: number | null;
  /** One store and load thread per device. */
  readonly loads: readonly MultifdLoadRecord[];
  /** Channel k's receive thread has read its SYNC and waits for the main thread (multifd_recv_sync_main). */
  readonly syncWaiting: readonly boolean[];
  /** Channel k's connection ended (EOF): its receive thread has exited. */
  readonly ended: readonly boolean[];
  /** A receive thread failed (its error is set, every receive thread exits: multifd_recv_terminate_threads). */
  readonly recvError: string | null;
  /** The main stream reached EOF: the main thread waits for the load threads (qemu_loadvm_thread_pool_wait). */
  readonly eofSeen: boolean;
  /** The guest run state the EOF's global state carried (for the end of the load after the wait). */
  readonly eofGuest: 'running' | 'paused';
}

export interface QemuDestinationContext {
  readonly devices: readonly FeatureSet[];
  readonly ack: AckMode;
  readonly maxBytes: number;
  readonly runstate: 'inmigrate' | 'paused' | 'running';
  readonly autostart: boolean;
  readonly devs: readonly DeviceRecord[];
  /** legacy: mis->switchover_ack_pending_num */
  readonly ackPendingNum: number;
  readonly returnPathOpen: boolean;
  /** Units of device data received per device (precopy chunks and the final state), modulo UNIT_COUNT_MODULUS. */
  readonly received: readonly number[];
  readonly switchoverStarted: boolean;
  readonly loadError: string | null;
  /** The first device request that failed on this host. */
  readonly vfioRefused: string | null;
  /** Which process this is (0 the first; each new one after a failure one more) = the attempt it serves. */
  readonly incarnation: number;
  readonly restartsLeft: number;
  /** Driver failures the environment may still inject (DRIVER_FAULT), over every process. */
  readonly faultsLeft: number;
  /** Multifd (null: the capability is off). */
  readonly multifd: DestinationMultifd | null;
}

/**
 * Ghost state the observers keep (src/properties/ghosts.ts), out of the imported machine: the hooks
 * `ghostApprove` (before an approval) and `ghostNewProcess` (after a new process) are no-ops here.
 */
export interface QemuDestinationGhosts {
  /** The generation of initial data approved last, per device (-1: none), for property S1; absent: none yet. */
  readonly approvedGen?: readonly number[];
}
export type CheckedDestinationContext = QemuDestinationContext & QemuDestinationGhosts;

export type QemuDestinationEvent =
  | { type: 'MIGRATE_INCOMING' }
  | { type: 'CONT' }
  | { type: 'NEW_PROCESS' }
  /** The environment: the driver of `device` fails the first arc of its next SET (see DeviceRecord.fault). */
  | { type: 'DRIVER_FAULT'; device: number; leaves: 'reached' | 'ERROR' }
  /** Multifd: device `device`'s load thread takes its next step (a write, or the config load). */
  | { type: 'LOAD_THREAD_STEP'; device: number }
  /** The environment: the connection of multifd channel `channel` resets (its receive thread fails). */
  | { type: 'MULTIFD_RECV_RESET'; channel: number }
  /**
   * The environment as a malicious (or broken) source: a device-state packet arrives on a multifd channel
   * whatever the protocol says — any index, any time during the load.
   */
  | { type: 'FORGED_PACKET'; device: number; idx: number; units: number }
  | MultifdChannelMessage
  | MainStreamMessage;

/**
 * What the destination emits: return-path messages, and its QMP VFIO_MIGRATION events (outputs to the
 * world; the migration system declares them as observations).
 */
export type DestinationOutput = ReturnPathMessage | MultifdChannelsShut | VfioMigrationEvent;

type Ctx = QemuDestinationContext;
type Patch = Partial<Ctx>;
type Out = { patch: Patch; out: DestinationOutput[] };

/** What a pass over the devices leaves: devices, first failure, and its events as outputs. */
const passOut = (p: DevicePass, patch: Patch = {}): Out => ({ patch: { devs: p.devs, vfioRefused: p.refused, ...patch }, out: [...p.events] });

function apply(enqueue: { assign: (p: Patch) => void; emit: (e: DestinationOutput) => void }, r: Out): void {
  enqueue.assign(r.patch);
  for (const m of r.out) enqueue.emit(m);
}

function loadSetup(ctx: Ctx): Out {
  const needAck = ctx.ack === 'legacy' ? ctx.devices.filter(hasPreCopy).length : 0;
  return passOut(eachDevice(startPass(ctx.devs, ctx.vfioRefused), (d) => ['RESUMING', d.state]), { ackPendingNum: needAck });
}

/** vm_start on this host: the VM state handlers take every device out of RESUMING. */
function startGuest(ctx: Ctx): Out {
  return passOut(vmStateChange(startPass(ctx.devs, ctx.vfioRefused), 'running'), { runstate: 'running' });
}

/** The end of the load: vfio_load_cleanup, then process_incoming_migration_bh. */
function loadEnd(ctx: Ctx, guest: 'running' | 'paused'): Out {
  const closed = { ...ctx, devs: ctx.devs.map(closeFd) };
  if (guest === 'running' && ctx.autostart) return startGuest(closed);
  return { patch: { devs: closed.devs, runstate: 'paused' }, out: [] };
}

type MultifdSettings = Pick<DestinationMultifd, 'channels' | 'transfer' | 'loadConfigAfterIter' | 'cap'>;

/** The settings a destination process starts with (AUTO as vfio_multifd_transfer_supported decides it). */
function multifdSettings(m: DestinationMultifdInput): MultifdSettings {
  const transfer = m.transfer ?? 'auto';
  return {
    channels: m.channels,
    transfer: transfer === 'on' || (transfer === 'auto' && (m.sendSwitchoverStart ?? true)),
    loadConfigAfterIter: m.loadConfigAfterIter ?? false,
    cap: m.cap ?? null,
  };
}

function freshMultifd(m: MultifdSettings, devices: number): DestinationMultifd {
  return {
    ...m,
    loads: Array.from({ length: devices }, () => initialLoad({ cap: m.cap, configAfterIter: m.loadConfigAfterIter })),
    syncWaiting: Array.from({ length: m.channels }, () => false),
    ended: Array.from({ length: m.channels }, () => false),
    recvError: null,
    eofSeen: false,
    eofGuest: 'running',
  };
}

/** A device-state packet, a SYNC or the end of multifd channel k, as its receive thread takes it. */
function receive(ctx: Ctx, k: number, event: MultifdChannelMessage): Patch {
  const m = ctx.multifd!;
  const p = event.packet;
  if (p.kind === 'SYNC') return { multifd: { ...m, syncWaiting: m.syncWaiting.map((w, i) => w || i === k) } };
  if (p.kind === 'EOF') return { multifd: { ...m, ended: m.ended.map((e, i) => e || i === k) } };
  if (!m.transfer) return { multifd: { ...m, recvError: `device ${p.device}: got device state packet but not doing multifd transfer` } };
  const loads = [...m.loads];
  loads[p.device] = loadCall(loads[p.device]!, { type: 'PACKET', idx: p.idx, units: p.units, config: p.config });
  const error = loads[p.device]!.state === 'failed' ? `device ${p.device}: ${loads[p.device]!.context.error}` : null;
  return { multifd: { ...m, loads, recvError: m.recvError ?? error } };
}

/** One step of device i's load thread: write its next buffer into the device, or load the config. */
function loadThreadStep(ctx: Ctx, i: number): Patch {
  const m = ctx.multifd!;
  const loads = [...m.loads];
  const rec = loads[i]!;
  if (!loadCan(rec, { type: 'WROTE' })) {
    loads[i] = loadCall(rec, { type: 'LOAD_CONFIG' });
    return { multifd: { ...m, loads } };
  }
  const units = nextBufferUnits(rec);
  const devs = [...ctx.devs];
  let d = devs[i]!;
  let ok = true;
  for (let u = 0; u < units && ok; u++) {
    d = deviceCall(d, { type: 'DATA_FD_WRITE' });
    ok = d.context.last?.op === 'DATA_FD_WRITE' && d.context.last.ok;
  }
  devs[i] = d;
  loads[i] = loadCall(rec, { type: ok ? 'WROTE' : 'WRITE_FAILED' });
  const received = [...ctx.received];
  if (ok) received[i] = ((received[i] ?? 0) + units) % UNIT_COUNT_MODULUS;
  return { devs, received, multifd: { ...m, loads } };
}

/** qemu_loadvm_thread_pool_wait returned: every load thread has exited. */
const loadThreadsExited = (m: DestinationMultifd): boolean => m.loads.every((l) => l.state !== 'queuing' && l.state !== 'loading');

/** The multifd channel a message came on, or null. */
function channelOf(event: { type: string }): number | null {
  const m = /^MULTIFD_(\d+)$/.exec(event.type);
  return m ? Number(m[1]) : null;
}

function fresh(
  input: { devices: readonly FeatureSet[]; ack: AckMode; maxBytes: number; autostart: boolean; multifd: MultifdSettings | null },
  incarnation: number,
  restartsLeft: number,
  faultsLeft: number,
): Ctx {
  return {
    devices: [...input.devices],
    ack: input.ack,
    maxBytes: input.maxBytes,
    runstate: 'inmigrate',
    autostart: input.autostart,
    devs: input.devices.map((features) => initialDevice({ features, maxBytes: input.maxBytes })),
    ackPendingNum: 0,
    returnPathOpen: false,
    received: input.devices.map(() => 0),
    switchoverStarted: false,
    loadError: null,
    vfioRefused: null,
    incarnation,
    restartsLeft,
    faultsLeft,
    multifd: input.multifd ? freshMultifd(input.multifd, input.devices.length) : null,
  };
}

const destinationSetup = setup({
  types: {
    context: {} as QemuDestinationContext,
    events: {} as QemuDestinationEvent,
    input: {} as QemuDestinationInput,
    emitted: {} as DestinationOutput,
  },
  guards: {
    /**
     * INIT_DATA_SENT that this side cannot approve: ack off here, the device has no precopy, nothing left
     * to approve (-EINVAL), or no return path to send the ack on (the send fails the load).
     */
    initDataUnexpected: ({ context, event }) => {
      if (event.type !== 'VFIO_MIG_FLAG_DEV_INIT_DATA_SENT') return false;
      const f = context.devices[event.device];
      if (context.ack === 'off' || !f || !hasPreCopy(f) || !context.returnPathOpen) return true;
      return context.ack === 'legacy' && context.ackPendingNum === 0;
    },
    vfioRefused: ({ context }) => context.vfioRefused !== null,
    /** A device write the kernel refused: vfio_load_buffer fails the load. */
    writeFailed: ({ context, event }) => {
      if (event.type !== 'VFIO_DEVICE_STATE') return false;
      const last = context.devs[event.device]?.context.last;
      return context.devs[event.device] === undefined || (last?.op === 'DATA_FD_WRITE' && !last.ok);
    },
    /** The stream of this process's connection (a header or shutdown names its attempt). */
    ownStream: ({ context, event }) => !('attempt' in event) || event.attempt === context.incarnation,
    /** What is left of an earlier connection's stream: a process after the first reads none of it. */
    staleMessage: ({ context, event }) => context.incarnation > 0 && event.type !== 'MIGRATE_INCOMING' && !('attempt' in event && event.attempt === context.incarnation),
    guestPaused: ({ context }) => context.runstate === 'paused',
    /** A new connection (a later attempt) reaches a process that no longer listens. */
    newerConnection: ({ context, event }) => event.type === 'MIG_STREAM_HEADER' && event.attempt > context.incarnation,
    mayRestart: ({ context }) => context.restartsLeft > 0,
    faultMayStrike: ({ context, event }) => event.type === 'DRIVER_FAULT' && context.faultsLeft > 0 && context.devs[event.device]?.fault === undefined,
    multifdTransfer: ({ context }) => context.multifd !== null && context.multifd.transfer && context.devs.length > 0,
    /** No receive thread reads channel k any more (it ended, or a receive thread failed and all exited). */
    channelUnread: ({ context, event }) => {
      const k = channelOf(event);
      return context.multifd === null || k === null || context.multifd.recvError !== null || context.multifd.ended[k] === true;
    },
    /** Channel k's receive thread reads on: it is not parked after a SYNC. */
    channelReads: ({ context, event }) => {
      const k = channelOf(event);
      return k !== null && context.multifd?.syncWaiting[k] === false;
    },
    /** multifd_recv_sync_main: every channel's receive thread has reached its SYNC. */
    allChannelsSynced: ({ context }) => context.multifd === null || context.multifd.syncWaiting.every(Boolean),
    loadThreadMayStep: ({ context, event }) => {
      if (event.type !== 'LOAD_THREAD_STEP' || context.multifd === null) return false;
      const l = context.multifd.loads[event.device];
      return l !== undefined && (loadCan(l, { type: 'WROTE' }) || loadCan(l, { type: 'LOAD_CONFIG' }));
    },
    /** At EOF: an error is already set (a receive thread failed) — qemu_loadvm_state fails without waiting. */
    multifdErrorAtEof: ({ context }) => context.multifd?.recvError != null,
    /** The main thread waits for the load threads (after EOF). */
    waitingForLoadThreads: ({ context }) => context.multifd?.eofSeen === true,
    loadThreadsDone: ({ context }) => context.multifd !== null && context.multifd.eofSeen && loadThreadsExited(context.multifd),
    /** After the wait: migrate_has_error (a load or receive thread failed). */
    loadThreadsFailed: ({ context }) =>
      context.multifd !== null && context.multifd.eofSeen && loadThreadsExited(context.multifd) && (context.multifd.recvError !== null || context.multifd.loads.some((l) => l.state === 'failed')),
    /** DEV_CONFIG_LOAD_READY this destination refuses (vfio_load_state_config_load_ready). */
    configReadyUnexpected: ({ context, event }) => {
      if (event.type !== 'VFIO_MIG_FLAG_DEV_CONFIG_LOAD_READY') return false;
      const m = context.multifd;
      return m === null || !m.transfer || !m.loadConfigAfterIter || m.loads[event.device]?.context.iterDone !== false;
    },
    forgedPacketArrives: ({ context, event }) => event.type === 'FORGED_PACKET' && context.multifd !== null && context.multifd.recvError === null && !context.multifd.eofSeen,
    recvResetPossible: ({ context, event }) => event.type === 'MULTIFD_RECV_RESET' && context.multifd !== null && context.multifd.recvError === null && context.multifd.ended[event.channel] === false,
  },
  actions: {
    receiveForged: enqueueActions(({ context, enqueue, event }) => {
      if (event.type !== 'FORGED_PACKET') return;
      const patch = receive(context, 0, { type: 'MULTIFD_0', packet: { kind: 'device-state', device: event.device, idx: event.idx, units: event.units, config: false } });
      enqueue.assign(patch);
      if (!context.multifd?.recvError && patch.multifd?.recvError) enqueue.emit({ type: 'MULTIFD_CHANNELS_SHUT', attempt: context.incarnation });
    }),
    multifdReceive: enqueueActions(({ context, enqueue, event }) => {
      const k = channelOf(event);
      if (k === null) return;
      const patch = receive(context, k, event as MultifdChannelMessage);
      enqueue.assign(patch);
      if (!context.multifd?.recvError && patch.multifd?.recvError) enqueue.emit({ type: 'MULTIFD_CHANNELS_SHUT', attempt: context.incarnation });
    }),
    loadThreadStep: assign(({ context, event }) => (event.type === 'LOAD_THREAD_STEP' ? loadThreadStep(context, event.device) : {})),
    /** vfio_switchover_start: each device's load thread starts. */
    startLoadThreads: assign(({ context }) =>
      context.multifd?.transfer ? { multifd: { ...context.multifd, loads: context.multifd.loads.map((l) => loadCall(l, { type: 'START' })) } } : {},
    ),
    configLoadReady: assign(({ context, event }) => {
      if (event.type !== 'VFIO_MIG_FLAG_DEV_CONFIG_LOAD_READY' || !context.multifd) return {};
      const loads = [...context.multifd.loads];
      loads[event.device] = loadCall(loads[event.device]!, { type: 'CONFIG_LOAD_READY' });
      return { multifd: { ...context.multifd, loads } };
    }),
    ramSyncDone: assign(({ context }) => (context.multifd ? { multifd: { ...context.multifd, syncWaiting: context.multifd.syncWaiting.map(() => false) } } : {})),
    noteEof: assign(({ context, event }) =>
      context.multifd ? { multifd: { ...context.multifd, eofSeen: true, eofGuest: event.type === 'QEMU_VM_EOF' ? event.guest : 'running' } } : {},
    ),
    /** qemu_loadvm_state_cleanup: the load threads still running exit. */
    abortLoadThreads: assign(({ context }) =>
      context.multifd ? { multifd: { ...context.multifd, loads: context.multifd.loads.map((l) => loadCall(l, { type: 'ABORT' })) } } : {},
    ),
    recvReset: enqueueActions(({ context, enqueue, event }) => {
      if (!context.multifd || event.type !== 'MULTIFD_RECV_RESET') return;
      enqueue.assign({ multifd: { ...context.multifd, recvError: 'a multifd channel: connection reset' } });
      enqueue.emit({ type: 'MULTIFD_CHANNELS_SHUT', attempt: context.incarnation });
    }),
    loadSetup: enqueueActions(({ context, enqueue }) => apply(enqueue, loadSetup(context))),
    /** MIG_CMD_OPEN_RETURN_PATH; legacy: with nothing to approve, the ack goes at once. */
    openReturnPath: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ returnPathOpen: true });
      if (context.ack === 'legacy' && context.ackPendingNum === 0) enqueue.emit({ type: 'MIG_RP_MSG_SWITCHOVER_ACK', attempt: context.incarnation });
    }),
    /** qemu_loadvm_approve_switchover. */
    approveSwitchover: enqueueActions(({ context, enqueue }) => {
      if (context.ack === 'per-device') {
        enqueue.emit({ type: 'MIG_RP_MSG_SWITCHOVER_ACK', attempt: context.incarnation });
        return;
      }
      const left = context.ackPendingNum - 1;
      enqueue.assign({ ackPendingNum: left });
      if (left === 0) enqueue.emit({ type: 'MIG_RP_MSG_SWITCHOVER_ACK', attempt: context.incarnation });
    }),
    switchoverStart: assign({ switchoverStarted: true }),
    /** Write device data (a precopy chunk or the final state) into its resuming data_fd. */
    loadDeviceState: assign(({ context, event }) => {
      if (event.type !== 'VFIO_DEVICE_STATE') return {};
      const devs = [...context.devs];
      let d = devs[event.device];
      if (!d) return {};
      for (let u = 0; u < event.units; u++) d = deviceCall(d, { type: 'DATA_FD_WRITE' });
      devs[event.device] = d;
      const received = [...context.received];
      received[event.device] = ((received[event.device] ?? 0) + event.units) % UNIT_COUNT_MODULUS;
      return { devs, received };
    }),
    /** The load is over: the guest starts here (or stays paused) and the return path closes cleanly. */
    finishLoad: enqueueActions(({ context, enqueue, event }) => {
      apply(enqueue, loadEnd(context, event.type === 'QEMU_VM_EOF' ? event.guest : (context.multifd?.eofGuest ?? 'running')));
      if (context.returnPathOpen) enqueue.emit({ type: 'RP_SHUTDOWN', error: false, attempt: context.incarnation });
    }),
    /** QMP cont on a destination whose load is over: vm_start. */
    startGuest: enqueueActions(({ context, enqueue }) => apply(enqueue, startGuest(context))),
    /** QMP cont while incoming: the guest will start when the load ends (qmp_cont sets autostart). */
    setAutostart: assign({ autostart: true }),
    /**
     * The load fails; QEMU exits and the return path, if open, closes with an error. A device that failed
     * at load setup (before MIG_CMD_OPEN_RETURN_PATH was read) ends the process too: the connection closes
     * and a source reading its return path sees the EOF (a source without one never reads it).
     */
    failLoad: enqueueActions(({ context, enqueue, event }) => {
      enqueue.assign({ loadError: context.loadError ?? `load failed on ${event.type}` });
      if (context.returnPathOpen || context.vfioRefused !== null) enqueue.emit({ type: 'RP_SHUTDOWN', error: true, attempt: context.incarnation });
    }),
    /**
     * A process that no longer listens refuses the connection: the source's connect fails
     * (migration_connect). Shown as an error on that attempt's return path, the one way back the model has.
     */
    refuseConnection: enqueueActions(({ enqueue, event }) => {
      if (event.type === 'MIG_STREAM_HEADER') enqueue.emit({ type: 'RP_SHUTDOWN', error: true, attempt: event.attempt });
    }),
    armDriverFault: assign(({ context, event }) => {
      if (event.type !== 'DRIVER_FAULT') return {};
      const devs = [...context.devs];
      devs[event.device] = armFault(devs[event.device]!, event.leaves);
      return { devs, faultsLeft: context.faultsLeft - 1 };
    }),
    /** Observer hook: the destination approves a device's initial data (before the approval). */
    ghostApprove: () => {},
    /** Observer hook: a new process replaced this one. */
    ghostNewProcess: () => {},
    /** QEMU does not read this (a finished process, or a dead connection's leftovers). */
    discard: () => {},
    /** Management starts a new destination process, listening with the same configuration. */
    newProcess: assign(({ context }) =>
      fresh(
        { devices: context.devices, ack: context.ack, maxBytes: context.maxBytes, autostart: context.autostart, multifd: context.multifd },
        context.incarnation + 1,
        context.restartsLeft - 1,
        context.faultsLeft,
      ),
    ),
  },
});

/** A driver failure can be armed in every state; listed in each, before the states' '*' transitions. */
const FAULT = { DRIVER_FAULT: { guard: 'faultMayStrike', actions: 'armDriverFault' } } as const;

/** The same transitions for the messages of every multifd channel. */
function onEveryChannel<T>(t: T): Record<`MULTIFD_${number}`, T> {
  return Object.fromEntries(Array.from({ length: MAX_MULTIFD_CHANNELS }, (_, k) => [multifdChannelType(k), t])) as Record<`MULTIFD_${number}`, T>;
}
/**
 * After the load, nothing reads the multifd channels. Before it (none, setup) their packets wait: the
 * receive threads run from the channels' connection, but a device-state packet read before load setup
 * would be refused ("not doing multifd transfer") — a race the source cannot lose in practice (it sends
 * device state only at the switchover, long after the header), left out.
 */
const MULTIFD_UNREAD = onEveryChannel({ actions: 'discard' } as const);
/** During the load: the receive threads, each parked after a SYNC until the main thread's flush. */
const MULTIFD_RECEIVE = onEveryChannel([{ guard: 'channelUnread', actions: 'discard' }, { guard: 'channelReads', actions: 'multifdReceive' }] as const);

/** The machine. State keys are QEMU's MigrationStatus strings for the incoming side. */
export const qemuDestinationMachine = destinationSetup.createMachine({
  id: 'qemuDestination',
  description: "QEMU's incoming migration (MigrationIncomingState.state) and its VFIO devices",
  initial: 'none',
  context: ({ input }) =>
    fresh(
      { devices: input.devices, ack: input.ack, maxBytes: input.maxBytes ?? 1, autostart: input.autostart ?? true, multifd: input.multifd ? multifdSettings(input.multifd) : null },
      0,
      input.restarts ?? 0,
      input.deviceFaults ?? 0,
    ),
  states: {
    none: {
      description: 'QEMU started with -incoming defer; nothing yet.',
      on: {
        ...FAULT,
        MIGRATE_INCOMING: { target: 'setup' },
        CONT: { actions: 'setAutostart' },
        '*': { guard: 'staleMessage', actions: 'discard' },
      },
    },
    setup: {
      description: 'Listening (migrate-incoming); waiting for the stream.',
      on: {
        ...FAULT,
        MIG_STREAM_HEADER: { guard: 'ownStream', target: 'active', actions: 'loadSetup' },
        STREAM_SHUTDOWN: { guard: 'ownStream', target: 'failed', actions: 'failLoad' },
        CONT: { actions: 'setAutostart' },
        '*': { guard: 'staleMessage', actions: 'discard' },
      },
    },
    active: {
      description: 'Loading: devices in RESUMING take in their data; switchover-ack approvals go back.',
      always: [
        { guard: 'vfioRefused', target: 'failed', actions: 'failLoad' },
        // multifd: the wait for the load threads is over
        { guard: 'loadThreadsFailed', target: 'failed', actions: 'failLoad' },
        { guard: 'loadThreadsDone', target: 'completed', actions: 'finishLoad' },
      ],
      on: {
        ...FAULT,
        ...MULTIFD_RECEIVE,
        LOAD_THREAD_STEP: { guard: 'loadThreadMayStep', actions: 'loadThreadStep' },
        MULTIFD_RECV_RESET: { guard: 'recvResetPossible', actions: 'recvReset' },
        FORGED_PACKET: { guard: 'forgedPacketArrives', actions: 'receiveForged' },
        VFIO_MIG_FLAG_END_OF_STATE: { actions: 'discard' },
        VFIO_MIG_FLAG_DEV_CONFIG_LOAD_READY: [{ guard: 'configReadyUnexpected', target: 'failed', actions: 'failLoad' }, { actions: 'configLoadReady' }],
        RAM_SAVE_FLAG_MULTIFD_FLUSH: { guard: 'allChannelsSynced', actions: 'ramSyncDone' },
        MIG_CMD_OPEN_RETURN_PATH: { actions: 'openReturnPath' },
        VFIO_MIG_FLAG_DEV_INIT_DATA_SENT: [
          { guard: 'initDataUnexpected', target: 'failed', actions: 'failLoad' },
          { actions: ['ghostApprove', 'approveSwitchover'] },
        ],
        MIG_CMD_SWITCHOVER_START: { actions: ['switchoverStart', 'startLoadThreads'] },
        VFIO_DEVICE_STATE: [{ guard: 'writeFailed', target: 'failed', actions: 'failLoad' }, { actions: 'loadDeviceState' }],
        QEMU_VM_EOF: [
          { guard: 'multifdErrorAtEof', target: 'failed', actions: 'failLoad' },
          // multifd device state: qemu_loadvm_state waits for the load threads (the always above ends it)
          { guard: 'multifdTransfer', actions: 'noteEof' },
          { target: 'completed', actions: 'finishLoad' },
        ],
        // (while the main thread waits for the load threads nobody reads the main stream)
        STREAM_SHUTDOWN: { guard: not('waitingForLoadThreads'), target: 'failed', actions: 'failLoad' },
        CONT: { actions: 'setAutostart' },
      },
    },
    completed: {
      description: 'Loaded; the guest runs here, or waits paused for cont.',
      on: {
        ...FAULT,
        ...MULTIFD_UNREAD,
        CONT: { guard: 'guestPaused', actions: 'startGuest' },
        MIG_STREAM_HEADER: { guard: 'newerConnection', actions: 'refuseConnection' },
        '*': { actions: 'discard' }, // QEMU no longer reads the stream
      },
    },
    failed: {
      description: 'The load failed (QEMU exits with exit-on-error).',
      entry: 'abortLoadThreads',
      on: {
        ...FAULT,
        ...MULTIFD_UNREAD,
        NEW_PROCESS: { guard: 'mayRestart', target: 'none', actions: ['newProcess', 'ghostNewProcess'] },
        MIG_STREAM_HEADER: { guard: 'newerConnection', actions: 'refuseConnection' },
        '*': { actions: 'discard' },
      },
    },
  },
});

export type QemuDestinationMachine = typeof qemuDestinationMachine;
