/**
 * A virtio-net device in the outgoing QEMU, as it takes part in the migration: what it saves in the
 * setup phase, how the guest changes its tracked state during precopy, and which section it saves at
 * stop-and-copy. It sits on the main stream between the QEMU source (./qemuSource.ts) and the wire: it
 * passes every QEMU message on unchanged and adds its own sections where QEMU's savevm code would.
 *
 * Models (upstream: migration/savevm.c, hw/net/virtio-net.c; designs: the two RFCs named in
 * ./virtioNetMessages.ts — nothing of them is merged):
 *  - setup: qemu_savevm_state_setup saves early_setup VMSDs and calls save_setup handlers after the
 *    header and MIG_CMD_OPEN_RETURN_PATH. early-mig (property on): the early VMSD with the current state,
 *    which the device keeps as its snapshot. iterative: the capability list of the configuration
 *    section (QEMU writes it in the header; the model sends it with the setup sections so that a
 *    destination refusing it has its return path open — in QEMU the source would notice the closed
 *    socket instead), then (feature on) the initial state of virtio_net_save_setup;
 *  - precopy (stage 1): the guest changes tracked field groups, as often as the environment allows;
 *  - stop-and-copy: the non-iterable phase saves the device last, just before QEMU_VM_EOF
 *    (qemu_savevm_state_complete_precopy: iterable handlers first, then vmstate sections). early-mig:
 *    compare every tracked group with the snapshot; equal → the virtio-delta resync only, else the full
 *    vmstate_virtio_net section. iterative: the full section if anything may have changed since
 *    save_setup (a dirty flag), else VNET_MIG_F_NO_DATA. legacy, or the feature off: the full section.
 *  - `SAVE_LIVE_ITERATE`: virtio_net_save_live_iterate. Both RFCs send nothing there (the iterative RFC
 *    writes VNET_MIG_F_NO_DATA and reports no pending data, so virtio-net never holds back the
 *    switchover); the guard `resendsDuringPrecopy` is false. The "truly iterative" route of the review
 *    thread — re-send in stage 1 whatever changed — is this machine with that guard provided as true.
 *
 * The device learns that the VM stopped from the stream: its stop-and-copy section is saved when QEMU's
 * QEMU_VM_EOF reaches it. A guest change the model lets in after QEMU's stop step and before that
 * delivery commutes with every step of the other components (no other machine reads this one), so it
 * stands for a change just before the stop: the set of reachable outcomes is what it would be with the
 * stop signalled directly. `stateAtStop` (a ghost) is the state the device had then — the truth the
 * destination must end up with.
 *
 * Left out: the content of the virtqueue resync (ring indices are always re-sent and never compared),
 * the byte size of the sections, failover (dev_unplug_pending), and vhost on the source (it is stopped by
 * the VM stop; nothing on the source depends on it).
 *
 * @example
 *   import { createActor } from 'xstate';
 *   import { virtioNetSourceMachine } from './virtioNetSource.js';
 *   const dev = createActor(virtioNetSourceMachine, { input: { design: 'early-mig', enabled: true, guestChanges: 1 } }).start();
 *   const sent: string[] = [];
 *   dev.on('*', (e) => sent.push(e.type));
 *   dev.send({ type: 'MIG_STREAM_HEADER', attempt: 0 });
 *   dev.send({ type: 'MIG_CMD_OPEN_RETURN_PATH' }); // the early section carries { control: 0, datapath: 0 }
 *   dev.getSnapshot().context.sent; // => { control: 0, datapath: 0 }
 *   dev.send({ type: 'GUEST_SETS_FIELD', group: 'datapath' });
 *   dev.send({ type: 'QEMU_VM_EOF', guest: 'running' }); // a delta: the full state goes, then QEMU_VM_EOF
 *   dev.getSnapshot().context.finalSection; // => 'VIRTIO_NET_STATE'
 *   sent.slice(-2); // => ['VIRTIO_NET_STATE', 'QEMU_VM_EOF']
 */
import { and, assign, emit, enqueueActions, setup } from 'xstate';
import type { MainStreamMessage } from './migrationMessages.js';
import { type FieldGroup, type FieldValues, type VirtioNetDesign, type VirtioNetSection, INITIAL_VALUES, sameValues } from './virtioNetMessages.js';

export interface VirtioNetSourceInput {
  readonly design: VirtioNetDesign;
  /** early-mig: the resolved `early-mig` property; iterative: the `virtio-iterative` capability; legacy: ignored. */
  readonly enabled: boolean;
  /** How often the guest may change a tracked group during precopy; 'unbounded' for a storm. Default 2. */
  readonly guestChanges?: number | 'unbounded';
  /** The return-path capability: QEMU then saves the setup sections after MIG_CMD_OPEN_RETURN_PATH. Default true. */
  readonly returnPath?: boolean;
  /**
   * iterative: how it is switched on — the RFC's migration capability, validated through the
   * configuration section (default), or the per-device property the review proposed instead.
   */
  readonly iterativeSwitch?: IterativeSwitch;
}

export type IterativeSwitch = 'capability' | 'property';

export interface VirtioNetSourceContext {
  readonly design: VirtioNetDesign;
  readonly enabled: boolean;
  readonly returnPath: boolean;
  readonly iterativeSwitch: IterativeSwitch;
  /** The tracked device state now. */
  readonly values: FieldValues;
  /** What the setup section carried (early-mig: the snapshot compared at stop-and-copy; iterative: the last state sent). */
  readonly sent: FieldValues | null;
  /** iterative: a tracked field was written since the state was last sent (the RFC's "may have changed"). */
  readonly mayHaveChanged: boolean;
  /** Guest changes the environment still allows (null: unbounded). */
  readonly changesLeft: number | null;
  /** Ghost: the device state when its stop-and-copy section was saved. */
  readonly stateAtStop: FieldValues | null;
  /** Which section went at stop-and-copy. */
  readonly finalSection: 'VIRTIO_DELTA_RESYNC' | 'VIRTIO_NET_STATE' | 'VNET_MIG_F_NO_DATA' | null;
}

export type VirtioNetSourceEvent =
  | MainStreamMessage
  /** The guest writes a tracked field of `group` (a control-queue command, a config or status write, a Tx kick). */
  | { type: 'GUEST_SETS_FIELD'; group: FieldGroup }
  /** The migration thread calls virtio_net_save_live_iterate (one precopy pass). */
  | { type: 'SAVE_LIVE_ITERATE' };

const flip = (v: FieldValues, g: FieldGroup): FieldValues => ({ ...v, [g]: v[g] === 0 ? 1 : 0 });

const sourceSetup = setup({
  types: {
    context: {} as VirtioNetSourceContext,
    events: {} as VirtioNetSourceEvent,
    input: {} as VirtioNetSourceInput,
    emitted: {} as MainStreamMessage | VirtioNetSection,
  },
  guards: {
    returnPath: ({ context }) => context.returnPath,
    /** The guest still may change a tracked field (its budget is not spent). */
    guestMayChange: ({ context }) => context.changesLeft !== 0,
    /** early-mig on: every tracked group equals the snapshot sent in the setup phase (the RFC's delta detection). */
    earlyStateStillCurrent: ({ context }) => context.design === 'early-mig' && context.enabled && sameValues(context.values, context.sent),
    /** iterative on: no tracked field was written since save_setup sent the state. */
    nothingChangedSinceSent: ({ context }) => context.design === 'iterative' && context.enabled && !context.mayHaveChanged,
    mayHaveChanged: ({ context }) => context.design === 'iterative' && context.enabled && context.mayHaveChanged,
    /** Does save_live_iterate re-send changed state during precopy? Neither RFC does. */
    resendsDuringPrecopy: () => false,
  },
  actions: {
    /** Pass a QEMU message on, unchanged, in order. */
    passOn: emit(({ event }) => event as MainStreamMessage),
    /** qemu_savevm_state_setup: the design's setup-phase sections. */
    saveSetupSections: enqueueActions(({ context, enqueue }) => {
      if (context.design === 'early-mig' && context.enabled) {
        enqueue.emit({ type: 'VIRTIO_NET_EARLY', state: context.values });
        enqueue.assign({ sent: context.values });
      }
      if (context.design === 'iterative') {
        if (context.iterativeSwitch === 'capability') enqueue.emit({ type: 'QEMU_VM_CONFIGURATION', virtioIterative: context.enabled });
        if (context.enabled) {
          enqueue.emit({ type: 'VNET_MIG_F_INIT_STATE', state: context.values });
          enqueue.assign({ sent: context.values });
        }
      }
    }),
    applyGuestChange: assign(({ context, event }) => {
      if (event.type !== 'GUEST_SETS_FIELD') return {};
      return { values: flip(context.values, event.group), changesLeft: context.changesLeft === null ? null : context.changesLeft - 1 };
    }),
    /** iterative: the dirty flag behind "may have changed" (only that design keeps one). */
    trackChange: assign(({ context }) => (context.design === 'iterative' && context.enabled ? { mayHaveChanged: true } : {})),
    recordStateAtStop: assign(({ context }) => ({ stateAtStop: context.values })),
    sendDeltaResync: enqueueActions(({ enqueue }) => {
      enqueue.emit({ type: 'VIRTIO_DELTA_RESYNC' });
      enqueue.assign({ finalSection: 'VIRTIO_DELTA_RESYNC' as const });
    }),
    sendNoData: enqueueActions(({ enqueue }) => {
      enqueue.emit({ type: 'VNET_MIG_F_NO_DATA' });
      enqueue.assign({ finalSection: 'VNET_MIG_F_NO_DATA' as const });
    }),
    sendFullState: enqueueActions(({ context, enqueue }) => {
      enqueue.emit({ type: 'VIRTIO_NET_STATE', state: context.values });
      enqueue.assign({ finalSection: 'VIRTIO_NET_STATE' as const });
    }),
    /** The truly iterative route: send the changed state again during precopy. */
    resendState: enqueueActions(({ context, enqueue }) => {
      enqueue.emit({ type: 'VNET_MIG_F_INIT_STATE', state: context.values });
      enqueue.assign({ sent: context.values, mayHaveChanged: false });
    }),
  },
});

export const virtioNetSourceMachine = sourceSetup.createMachine({
  id: 'virtioNetSource',
  description: 'A virtio-net device in the outgoing QEMU: its setup-phase sections, guest changes, its stop-and-copy section',
  initial: 'idle',
  context: ({ input }) => ({
    design: input.design,
    enabled: input.design !== 'legacy' && input.enabled,
    returnPath: input.returnPath ?? true,
    iterativeSwitch: input.iterativeSwitch ?? 'capability',
    values: INITIAL_VALUES,
    sent: null,
    mayHaveChanged: false,
    changesLeft: input.guestChanges === 'unbounded' ? null : (input.guestChanges ?? 2),
    stateAtStop: null,
    finalSection: null,
  }),
  on: {
    MIG_CMD_OPEN_RETURN_PATH: { actions: 'passOn' },
    VFIO_MIG_FLAG_DEV_INIT_DATA_SENT: { actions: 'passOn' },
    MIG_CMD_SWITCHOVER_START: { actions: 'passOn' },
    VFIO_DEVICE_STATE: { actions: 'passOn' },
    STREAM_SHUTDOWN: { target: '.ended', actions: 'passOn' },
  },
  states: {
    idle: {
      description: 'No migration yet; waiting for the stream header.',
      on: {
        MIG_STREAM_HEADER: [
          { guard: 'returnPath', target: 'opening', actions: 'passOn' },
          { target: 'precopy', actions: ['passOn', 'saveSetupSections'] },
        ],
      },
    },
    opening: {
      description: 'Header passed on; the setup sections follow MIG_CMD_OPEN_RETURN_PATH.',
      on: { MIG_CMD_OPEN_RETURN_PATH: { target: 'precopy', actions: ['passOn', 'saveSetupSections'] } },
    },
    precopy: {
      description: 'Stage 1: the guest runs and may change tracked fields; QEMU_VM_EOF brings the stop-and-copy section.',
      on: {
        GUEST_SETS_FIELD: { guard: 'guestMayChange', actions: ['applyGuestChange', 'trackChange'] },
        SAVE_LIVE_ITERATE: { guard: and(['resendsDuringPrecopy', 'mayHaveChanged']), actions: 'resendState' },
        QEMU_VM_EOF: [
          { guard: 'earlyStateStillCurrent', target: 'stopped', actions: ['recordStateAtStop', 'sendDeltaResync', 'passOn'] },
          { guard: 'nothingChangedSinceSent', target: 'stopped', actions: ['recordStateAtStop', 'sendNoData', 'passOn'] },
          { target: 'stopped', actions: ['recordStateAtStop', 'sendFullState', 'passOn'] },
        ],
      },
    },
    stopped: {
      description: 'The stop-and-copy section and QEMU_VM_EOF are on the stream.',
    },
    ended: {
      description: 'The source shut the stream down (a cancel or a failure); the guest runs here again.',
    },
  },
});

export type VirtioNetSourceMachine = typeof virtioNetSourceMachine;
