/**
 * A virtio-net device in the incoming QEMU: which sections it knows, what it loads as provisional, the
 * early vhost-net start and its fallbacks, and the state the guest starts with. It sits on the main
 * stream between the wire and the QEMU destination (./qemuDestination.ts): it takes its own sections
 * and passes every QEMU message on, in order.
 *
 * Models (upstream: migration/savevm.c qemu_loadvm_state and its section lookup, hw/net/virtio-net.c,
 * hw/net/vhost_net.c; designs: the RFCs named in ./virtioNetMessages.ts):
 *  - a section is known only if its handler is registered here. early-mig: by default the early and the
 *    delta VMSDs are registered only with the property on — the model's reading of the RFC, following how
 *    hw/virtio/virtio-mem.c registers its early VMSD only with x-early-migration on; `sectionsRegistered`
 *    gives the two other choices the RFC leaves open. iterative: the SaveVMHandlers exist with the
 *    capability (or property) on. An unknown section fails the load
 *    (qemu_loadvm_section_start_full: no handler for the idstr → -EINVAL), and so does a capability that
 *    differs (configuration_validate_capabilities, with virtio-iterative in the validated list as the
 *    RFC proposes);
 *  - early-mig: the early section is loaded as provisional state; with vhost-net the destination starts
 *    vhost early from it, deferring the backend binding to stop-and-copy. At stop-and-copy the virtio-delta
 *    resync confirms the provisional state and binds the early vhost; the full section makes it stop the
 *    early vhost first, then reload everything. An early start failure, or a failure of the quickstart
 *    bind, is not fatal: the device continues on the userspace datapath and the ordinary vhost start at
 *    guest start tries again (`vhostFailureIsFatal` is false);
 *  - iterative: save_setup's state is loaded straight into the device (the RFC calls vmstate_load_state
 *    on it); VNET_MIG_F_NO_DATA keeps it, the full section replaces it. No early vhost start (the RFC does
 *    none);
 *  - at QEMU_VM_EOF the guest starts with the confirmed state; a device that got no section at all keeps
 *    its reset state — as far as we know qemu_loadvm_state does not check that every registered section
 *    arrived, which is how a silently wrong device could arise;
 *  - a load failure ends the incoming migration: STREAM_SHUTDOWN goes to QEMU's load, which fails and
 *    closes the return path with an error.
 *
 * Left out: the queue setup and memory pre-faulting that the provisional state lets the destination do
 * early (no observable effect here), vhost-vDPA (the RFC leaves it for later), and vhost failures after
 * the guest started.
 *
 * @example
 *   import { createActor } from 'xstate';
 *   import { virtioNetDestinationMachine } from './virtioNetDestination.js';
 *   const dev = createActor(virtioNetDestinationMachine, { input: { design: 'early-mig', enabled: true, vhost: true } }).start();
 *   dev.send({ type: 'VIRTIO_NET_EARLY', state: { control: 0, datapath: 0 } }); // provisional; vhost started early
 *   dev.getSnapshot().context.provisional; // => { control: 0, datapath: 0 }
 *   dev.send({ type: 'VIRTIO_DELTA_RESYNC' }); // confirmed; the early vhost is bound
 *   dev.getSnapshot().context.confirmedBy; // => 'resync'
 *   dev.send({ type: 'QEMU_VM_EOF', guest: 'running' }); // passed on: the guest starts with the confirmed state
 *   dev.getSnapshot().context.guestState; // => { control: 0, datapath: 0 }
 */
import { and, assign, emit, not, setup } from 'xstate';
import type { MainStreamMessage } from './migrationMessages.js';
import type { FieldValues, VirtioNetDesign, VirtioNetSection } from './virtioNetMessages.js';

export interface VirtioNetDestinationInput {
  readonly design: VirtioNetDesign;
  /** early-mig: the resolved `early-mig` property here; iterative: the `virtio-iterative` capability here. */
  readonly enabled: boolean;
  /** The backend is vhost-net (early-mig then starts it early). Default false. */
  readonly vhost?: boolean;
  /** early-mig: which sections this QEMU registers whatever its property says (default 'when-enabled'). */
  readonly sectionsRegistered?: SectionsRegistered;
  /** iterative: the capability is validated in the configuration section (default true; false: a device property). */
  readonly validatesCapability?: boolean;
}

/**
 * early-mig: when are the early and the delta VMSDs registered? The RFC cover letter does not say.
 *  - 'when-enabled': both only with the property on (the model's default, as virtio-mem does);
 *  - 'always': both always; the property then only decides what the source sends and whether vhost starts early;
 *  - 'early-always': the early VMSD always, the delta VMSD only with the property on.
 */
export type SectionsRegistered = 'when-enabled' | 'always' | 'early-always';

export type VhostPhase =
  /** No vhost instance: vhost off, not started yet, or stopped for a full reload. */
  | 'none'
  /** Started early from the provisional state; backend not bound yet. */
  | 'early'
  /** Backend bound: the vhost datapath runs (or will at guest start) with `vhostState`. */
  | 'bound'
  /** An early start or the quickstart bind failed: the userspace virtio-net datapath carries the traffic. */
  | 'userspace';

export interface VirtioNetDestinationContext {
  readonly design: VirtioNetDesign;
  readonly enabled: boolean;
  readonly vhost: boolean;
  readonly sectionsRegistered: SectionsRegistered;
  readonly validatesCapability: boolean;
  /** State loaded before stop-and-copy (early section or save_setup's), not yet confirmed. */
  readonly provisional: FieldValues | null;
  /** The state confirmed for the guest (by a resync, VNET_MIG_F_NO_DATA or a full load). */
  readonly device: FieldValues | null;
  readonly confirmedBy: 'resync' | 'no-data' | 'full' | null;
  readonly vhostPhase: VhostPhase;
  /** The state the vhost instance was configured with. */
  readonly vhostState: FieldValues | null;
  /** Ghost: an early vhost start or the quickstart bind failed during this migration. */
  readonly vhostFellBack: boolean;
  readonly guestStarted: boolean;
  /** The state the guest started with (null: the device's reset state — nothing was loaded). */
  readonly guestState: FieldValues | null;
  readonly failReason: string | null;
  /** When the load failed: while the source still ran the guest ('setup'), or in stop-and-copy. */
  readonly failedAt: 'setup' | 'stop-and-copy' | null;
}

export type VirtioNetDestinationEvent =
  | MainStreamMessage
  | VirtioNetSection
  /** The early vhost start, or the quickstart bind at stop-and-copy, fails (environment: a host fault). */
  | { type: 'VHOST_EARLY_FAILS' };

interface FailParams {
  readonly reason: string;
  readonly at: 'setup' | 'stop-and-copy';
}

const UNKNOWN_EARLY = 'unknown section: no early virtio-net VMSD registered here (early-mig off)';
const UNKNOWN_DELTA = 'unknown section: no virtio-delta VMSD registered here (early-mig off)';
const UNKNOWN_ITER = 'unknown section: no iterative virtio-net handlers here (virtio-iterative off)';
const NO_EARLY_STATE = 'a resync section without early state to confirm';

const destinationSetup = setup({
  types: {
    context: {} as VirtioNetDestinationContext,
    events: {} as VirtioNetDestinationEvent,
    input: {} as VirtioNetDestinationInput,
    emitted: {} as MainStreamMessage,
  },
  guards: {
    /** early-mig: the early VMSD is registered here. */
    earlySectionKnown: ({ context }) => context.design === 'early-mig' && (context.enabled || context.sectionsRegistered !== 'when-enabled'),
    /** early-mig: the virtio-delta VMSD is registered here. */
    deltaSectionKnown: ({ context }) => context.design === 'early-mig' && (context.enabled || context.sectionsRegistered === 'always'),
    /** qemu_loadvm_state: a section without a handler fails the load (it is never skipped). */
    unknownSectionsFail: () => true,
    /** iterative on here: the SaveVMHandlers are registered. */
    iterativeSectionsKnown: ({ context }) => context.design === 'iterative' && context.enabled,
    /** The source's validated capability differs from ours. */
    capabilityDiffers: ({ context, event }) =>
      context.validatesCapability && event.type === 'QEMU_VM_CONFIGURATION' && event.virtioIterative !== context.enabled,
    vhostRunningEarly: ({ context }) => context.vhostPhase === 'early',
    /** Bound at the quickstart, the guest not started yet. */
    vhostBoundEarly: ({ context }) => context.vhostPhase === 'bound' && !context.guestStarted,
    /** Does an early vhost failure fail the migration? Not in the RFC. */
    vhostFailureIsFatal: () => false,
    /** Can the resync be applied now? Always: it does not wait for the early vhost. */
    readyForResync: () => true,
  },
  actions: {
    passOn: emit(({ event }) => event as MainStreamMessage),
    /** Why and when the load failed. */
    noteLoadError: assign((_, params: FailParams) => ({ failReason: params.reason, failedAt: params.at })),
    /** The error is returned to qemu_loadvm_state: QEMU's incoming side fails (and closes the return path with an error). Attempt 0: these systems have one connection. */
    failIncomingMigration: emit({ type: 'STREAM_SHUTDOWN', attempt: 0 }),
    /** What a failed load does with what still arrives: nothing (QEMU stopped reading). */
    afterLoadError: () => {},
    /** Take a message and do nothing with it (a finished device; a capability list that matches ours). */
    discard: () => {},
    loadProvisional: assign(({ event }) => (event.type === 'VIRTIO_NET_EARLY' || event.type === 'VNET_MIG_F_INIT_STATE' ? { provisional: event.state } : {})),
    /** early-mig with vhost-net: start vhost from the provisional state; the backend is bound later. */
    startVhostEarly: assign(({ context, event }) =>
      context.design === 'early-mig' && context.enabled && context.vhost && event.type === 'VIRTIO_NET_EARLY' ? { vhostPhase: 'early' as const, vhostState: event.state } : {},
    ),
    fallBackToUserspace: assign({ vhostPhase: 'userspace' as const, vhostState: null, vhostFellBack: true }),
    confirmProvisional: assign(({ context, event }) => ({
      device: context.provisional,
      confirmedBy: event.type === 'VNET_MIG_F_NO_DATA' ? ('no-data' as const) : ('resync' as const),
    })),
    /** The quickstart: bind the backend of the early-started vhost. */
    bindEarlyVhost: assign(({ context }) => (context.vhostPhase === 'early' ? { vhostPhase: 'bound' as const } : {})),
    /** A full reload: an early-started vhost is stopped first (notifiers and backend torn down). */
    stopEarlyVhost: assign(({ context }) => (context.vhostPhase === 'early' ? { vhostPhase: 'none' as const, vhostState: null } : {})),
    loadFullState: assign(({ event }) => (event.type === 'VIRTIO_NET_STATE' ? { device: event.state, confirmedBy: 'full' as const, provisional: null } : {})),
    /**
     * The guest starts: with the confirmed state (or, if none, whatever the device holds). With vhost-net,
     * a vhost that is not bound yet is started now, the ordinary way (virtio_net_set_status →
     * vhost_net_start), from that state; one started early and never stopped keeps its own.
     */
    startGuest: assign(({ context }) => {
      const state = context.device ?? context.provisional;
      if (!context.vhost) return { guestStarted: true, guestState: state };
      if (context.vhostPhase === 'bound') return { guestStarted: true, guestState: state };
      const vhostState = context.vhostPhase === 'early' ? context.vhostState : state;
      return { guestStarted: true, guestState: state, vhostPhase: 'bound' as const, vhostState };
    }),
  },
});

/** The actions of a failed load: note why, then fail QEMU's incoming migration. */
const fail = (reason: string, at: 'setup' | 'stop-and-copy') => [{ type: 'noteLoadError', params: { reason, at } }, 'failIncomingMigration'] as const;

/**
 * A section this QEMU has no handler for: the load fails — or, in a loader that skips unknown sections
 * (not QEMU's; `unknownSectionsFail` provided as false), it is dropped.
 */
const unknown = (known: 'earlySectionKnown' | 'deltaSectionKnown' | 'iterativeSectionsKnown', reason: string, at: 'setup' | 'stop-and-copy') =>
  [
    { guard: and([not(known), 'unknownSectionsFail']), target: '#virtioNetDestination.failed', actions: fail(reason, at) },
    { guard: not(known), actions: 'discard' },
  ] as const;

/** Every message that can still arrive once this device is done; a finished device takes them and does nothing. */
const absorbAll = (action: 'discard' | 'afterLoadError') => {
  const t = { actions: action };
  return {
    MIG_STREAM_HEADER: t,
    MIG_CMD_OPEN_RETURN_PATH: t,
    VFIO_MIG_FLAG_DEV_INIT_DATA_SENT: t,
    MIG_CMD_SWITCHOVER_START: t,
    VFIO_DEVICE_STATE: t,
    QEMU_VM_EOF: t,
    STREAM_SHUTDOWN: t,
    VIRTIO_NET_EARLY: t,
    VIRTIO_DELTA_RESYNC: t,
    VIRTIO_NET_STATE: t,
    VNET_MIG_F_INIT_STATE: t,
    VNET_MIG_F_NO_DATA: t,
    QEMU_VM_CONFIGURATION: t,
  };
};

export const virtioNetDestinationMachine = destinationSetup.createMachine({
  id: 'virtioNetDestination',
  description: 'A virtio-net device in the incoming QEMU: known sections, provisional state, early vhost, the state the guest starts with',
  initial: 'loading',
  context: ({ input }) => ({
    design: input.design,
    enabled: input.design !== 'legacy' && input.enabled,
    vhost: input.vhost ?? false,
    sectionsRegistered: input.sectionsRegistered ?? 'when-enabled',
    validatesCapability: input.validatesCapability ?? true,
    provisional: null,
    device: null,
    confirmedBy: null,
    vhostPhase: 'none',
    vhostState: null,
    vhostFellBack: false,
    guestStarted: false,
    guestState: null,
    failReason: null,
    failedAt: null,
  }),
  states: {
    loading: {
      description: 'qemu_loadvm_state: QEMU messages are passed on; virtio-net sections are loaded here.',
      initial: 'empty',
      on: {
        MIG_STREAM_HEADER: { actions: 'passOn' },
        MIG_CMD_OPEN_RETURN_PATH: { actions: 'passOn' },
        VFIO_MIG_FLAG_DEV_INIT_DATA_SENT: { actions: 'passOn' },
        MIG_CMD_SWITCHOVER_START: { actions: 'passOn' },
        VFIO_DEVICE_STATE: { actions: 'passOn' },
        STREAM_SHUTDOWN: { target: 'closed', actions: 'passOn' },
        QEMU_VM_EOF: { target: 'running', actions: ['startGuest', 'passOn'] },
      },
      states: {
        empty: {
          description: 'Nothing of virtio-net loaded yet.',
          on: {
            QEMU_VM_CONFIGURATION: [
              { guard: 'capabilityDiffers', target: '#virtioNetDestination.failed', actions: [{ type: 'noteLoadError', params: ({ context }) => capabilityFailure(context.enabled) }, 'failIncomingMigration'] },
              { actions: 'discard' },
            ],
            VIRTIO_NET_EARLY: [
              ...unknown('earlySectionKnown', UNKNOWN_EARLY, 'setup'),
              { target: 'provisional', actions: ['loadProvisional', 'startVhostEarly'] },
            ],
            VNET_MIG_F_INIT_STATE: [...unknown('iterativeSectionsKnown', UNKNOWN_ITER, 'setup'), { target: 'provisional', actions: 'loadProvisional' }],
            VIRTIO_DELTA_RESYNC: [
              ...unknown('deltaSectionKnown', UNKNOWN_DELTA, 'stop-and-copy'),
              { target: '#virtioNetDestination.failed', actions: fail(NO_EARLY_STATE, 'stop-and-copy') },
            ],
            VNET_MIG_F_NO_DATA: [
              ...unknown('iterativeSectionsKnown', UNKNOWN_ITER, 'stop-and-copy'),
              { target: '#virtioNetDestination.failed', actions: fail(NO_EARLY_STATE, 'stop-and-copy') },
            ],
            VIRTIO_NET_STATE: { target: 'confirmed', actions: 'loadFullState' },
          },
        },
        provisional: {
          description: 'Provisional state loaded (early-mig: vhost may run early); waiting for the stop-and-copy section.',
          on: {
            VHOST_EARLY_FAILS: [
              { guard: and(['vhostRunningEarly', 'vhostFailureIsFatal']), target: '#virtioNetDestination.failed', actions: fail('early vhost start failed', 'setup') },
              { guard: 'vhostRunningEarly', actions: 'fallBackToUserspace' },
            ],
            VNET_MIG_F_INIT_STATE: { actions: 'loadProvisional' },
            VIRTIO_DELTA_RESYNC: [
              ...unknown('deltaSectionKnown', UNKNOWN_DELTA, 'stop-and-copy'),
              { guard: 'readyForResync', target: 'confirmed', actions: ['confirmProvisional', 'bindEarlyVhost'] },
            ],
            VNET_MIG_F_NO_DATA: { target: 'confirmed', actions: 'confirmProvisional' },
            VIRTIO_NET_STATE: { target: 'confirmed', actions: ['stopEarlyVhost', 'loadFullState'] },
          },
        },
        confirmed: {
          description: 'The stop-and-copy section is loaded; the guest starts at QEMU_VM_EOF.',
          on: {
            VHOST_EARLY_FAILS: [
              { guard: and(['vhostBoundEarly', 'vhostFailureIsFatal']), target: '#virtioNetDestination.failed', actions: fail('vhost quickstart failed', 'stop-and-copy') },
              { guard: 'vhostBoundEarly', actions: 'fallBackToUserspace' },
            ],
          },
        },
      },
    },
    running: {
      description: 'QEMU_VM_EOF passed on: the guest runs here with guestState.',
      on: absorbAll('discard'),
    },
    failed: {
      description: 'The virtio-net load failed; QEMU’s incoming migration fails with it.',
      on: absorbAll('afterLoadError'),
    },
    closed: {
      description: 'The source shut the stream down before the end.',
      on: absorbAll('discard'),
    },
  },
});

function capabilityFailure(here: boolean): FailParams {
  return { reason: `capability virtio-iterative is ${here ? 'off' : 'on'} on the source and ${here ? 'on' : 'off'} here`, at: 'setup' };
}

export type VirtioNetDestinationMachine = typeof virtioNetDestinationMachine;
