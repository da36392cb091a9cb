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
 *  - each device's final state is written into its resuming data_fd; at EOF the load ends, the guest
 *    starts (autostart on; prepare → RUNNING_P2P for P2P devices, main → RUNNING: the VM state handlers
 *    take the device out of RESUMING) and the state is completed (the doc's tuples end in "none"; the code
 *    ends in completed — the model follows the code); the return path then closes;
 *  - a load error: failed (QEMU exits with exit-on-error; the return path closes).
 *
 * @example
 *   const dst = createActor(qemuDestinationMachine, { input: { devices: ['STOP_COPY|PRE_COPY'], ack: 'legacy' } }).start();
 *   dst.send({ type: 'MIGRATE_INCOMING' });
 *   dst.send({ type: 'MIG_STREAM_HEADER' }); // the device goes to RESUMING
 */
import { assign, enqueueActions, setup } from 'xstate';
import type { AckMode, MainStreamMessage, ReturnPathMessage } from './migrationMessages.js';
import { type DeviceRecord, deviceCall, hasP2P, hasPreCopy, initialDevice, setState } from './qemuVfio.js';
import type { FeatureSet } from './vfioArcs.js';

export interface QemuDestinationInput {
  readonly devices: readonly FeatureSet[];
  readonly ack: AckMode;
  readonly maxBytes?: number;
}

export interface QemuDestinationContext {
  readonly devices: readonly FeatureSet[];
  readonly ack: AckMode;
  readonly runstate: 'inmigrate' | 'running';
  readonly devs: readonly DeviceRecord[];
  /** legacy: mis->switchover_ack_pending_num */
  readonly ackPendingNum: number;
  readonly returnPathOpen: boolean;
  /** Units of final state received per device. */
  readonly received: readonly number[];
  readonly switchoverStarted: boolean;
  readonly loadError: string | null;
  readonly vfioRefused: string | null;
  /** Ghost: the generation of initial data approved last, per device (-1: none), for property S1. */
  readonly approvedGen: readonly number[];
}

export type QemuDestinationEvent = { type: 'MIGRATE_INCOMING' } | MainStreamMessage;

type Ctx = QemuDestinationContext;

function loadSetup(ctx: Ctx): Partial<Ctx> {
  const devs = [...ctx.devs];
  let refused = ctx.vfioRefused;
  devs.forEach((d, i) => {
    const r = setState(d, 'RESUMING');
    devs[i] = r.dev;
    refused ??= r.refused;
  });
  const needAck = ctx.ack === 'legacy' ? ctx.devices.filter(hasPreCopy).length : 0;
  return { devs, vfioRefused: refused, ackPendingNum: needAck };
}

function loadEnd(ctx: Ctx): Partial<Ctx> {
  const devs = [...ctx.devs];
  let refused = ctx.vfioRefused;
  const set = (i: number, target: 'STOP' | 'RUNNING_P2P' | 'RUNNING') => {
    const r = setState(devs[i]!, target);
    devs[i] = r.dev;
    refused ??= r.refused;
  };
  // The guest starts (autostart on): "prepare" handlers first — RESUMING -> RUNNING_P2P, which the kernel
  // walks through STOP, where the driver validates what was written — then "main" -> RUNNING.
  devs.forEach((d, i) => hasP2P(d.context.features) && set(i, 'RUNNING_P2P'));
  devs.forEach((_, i) => set(i, 'RUNNING'));
  return { devs, vfioRefused: refused, runstate: 'running' };
}

const destinationSetup = setup({
  types: {
    context: {} as QemuDestinationContext,
    events: {} as QemuDestinationEvent,
    input: {} as QemuDestinationInput,
    emitted: {} as ReturnPathMessage,
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
  },
  actions: {
    loadSetup: assign(({ context }) => loadSetup(context)),
    /** MIG_CMD_OPEN_RETURN_PATH; legacy: with nothing to approve, the ack goes at once. */
    openReturnPath: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ returnPathOpen: true });
      if (context.ack === 'legacy' && context.ackPendingNum === 0) enqueue.emit({ type: 'MIG_RP_MSG_SWITCHOVER_ACK' });
    }),
    /** qemu_loadvm_approve_switchover. */
    approveSwitchover: enqueueActions(({ context, enqueue, event }) => {
      if (event.type === 'VFIO_MIG_FLAG_DEV_INIT_DATA_SENT') {
        const approvedGen = [...context.approvedGen];
        approvedGen[event.device] = event.gen;
        enqueue.assign({ approvedGen });
      }
      if (context.ack === 'per-device') {
        enqueue.emit({ type: 'MIG_RP_MSG_SWITCHOVER_ACK' });
        return;
      }
      const left = context.ackPendingNum - 1;
      enqueue.assign({ ackPendingNum: left });
      if (left === 0) enqueue.emit({ type: 'MIG_RP_MSG_SWITCHOVER_ACK' });
    }),
    switchoverStart: assign({ switchoverStarted: true }),
    /** Write a device's final state into its resuming data_fd. */
    loadDeviceState: assign(({ context, event }) => {
      if (event.type !== 'VFIO_DEVICE_STATE') return {};
      const devs = [...context.devs];
      let d = devs[event.device];
      if (!d) return { loadError: `state for unknown device ${event.device}` };
      for (let u = 0; u < event.units; u++) d = deviceCall(d, { type: 'DATA_FD_WRITE' });
      devs[event.device] = d;
      const received = [...context.received];
      received[event.device] = (received[event.device] ?? 0) + event.units;
      return { devs, received };
    }),
    /** The load is over: the guest starts here and the return path closes cleanly. */
    finishLoadAndStartGuest: enqueueActions(({ context, enqueue }) => {
      enqueue.assign(loadEnd(context));
      if (context.returnPathOpen) enqueue.emit({ type: 'RP_SHUTDOWN', error: false });
    }),
    /** The load fails; QEMU exits and the return path, if open, closes with an error. */
    failLoad: enqueueActions(({ context, enqueue, event }) => {
      enqueue.assign({ loadError: context.loadError ?? `load failed on ${event.type}` });
      if (context.returnPathOpen) enqueue.emit({ type: 'RP_SHUTDOWN', error: true });
    }),
  },
});

/** The machine. State keys are QEMU's MigrationStatus strings for the incoming side. */
export const qemuDestinationMachine = destinationSetup.createMachine({
  id: 'qemuDestination',
  description: "QEMU's incoming migration (MigrationIncomingState.state) and its VFIO devices",
  initial: 'none',
  context: ({ input }) => ({
    devices: [...input.devices],
    ack: input.ack,
    runstate: 'inmigrate',
    devs: input.devices.map((features) => initialDevice({ features, maxBytes: input.maxBytes ?? 1 })),
    ackPendingNum: 0,
    returnPathOpen: false,
    received: input.devices.map(() => 0),
    switchoverStarted: false,
    loadError: null,
    vfioRefused: null,
    approvedGen: input.devices.map(() => -1),
  }),
  states: {
    none: {
      description: 'QEMU started with -incoming defer; nothing yet.',
      on: { MIGRATE_INCOMING: { target: 'setup' } },
    },
    setup: {
      description: 'Listening (migrate-incoming); waiting for the stream.',
      on: {
        MIG_STREAM_HEADER: { target: 'active', actions: 'loadSetup' },
        STREAM_SHUTDOWN: { target: 'failed', actions: 'failLoad' },
      },
    },
    active: {
      description: 'Loading: devices in RESUMING take in their state; switchover-ack approvals go back.',
      always: { guard: 'vfioRefused', target: 'failed', actions: 'failLoad' },
      on: {
        MIG_CMD_OPEN_RETURN_PATH: { actions: 'openReturnPath' },
        VFIO_MIG_FLAG_DEV_INIT_DATA_SENT: [
          { guard: 'initDataUnexpected', target: 'failed', actions: 'failLoad' },
          { actions: 'approveSwitchover' },
        ],
        MIG_CMD_SWITCHOVER_START: { actions: 'switchoverStart' },
        VFIO_DEVICE_STATE: { actions: 'loadDeviceState' },
        QEMU_VM_EOF: { target: 'completed', actions: 'finishLoadAndStartGuest' },
        STREAM_SHUTDOWN: { target: 'failed', actions: 'failLoad' },
      },
    },
    completed: {
      description: 'Loaded; the guest runs here.',
      on: { '*': {} }, // QEMU no longer reads the stream
    },
    failed: {
      description: 'The load failed (QEMU exits with exit-on-error).',
      on: { '*': {} },
    },
  },
});

export type QemuDestinationMachine = typeof qemuDestinationMachine;
