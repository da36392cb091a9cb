/**
 * A VFIO device as the Linux migration uAPI (protocol v2) defines it, seen from its user (QEMU).
 *
 * Models (see ./vfioArcs.ts for the data and its kernel citations):
 *  - the eight `enum vfio_device_mig_state` states, one chart state each, keyed by the uAPI name;
 *  - `VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE` SET as the event `SET_STATE { target }`: the kernel's multi-step
 *    resolution (./vfioPath.ts), every arc applied in order, the returned data_fd kind, -EINVAL cases;
 *  - injected driver failures: a SET whose arc k fails (`fault`) stops at the state before arc k (arcs
 *    before it are committed, as the drivers' loops commit each step) or falls into ERROR — the
 *    outcomes the uAPI allows ("the original state, any state along the path, or ERROR");
 *  - `VFIO_DEVICE_RESET`: back to RUNNING, every session ended;
 *  - data_fd sessions: a saving session for the saving group (PRE_COPY, PRE_COPY_P2P, STOP_COPY), a
 *    resuming session for RESUMING;
 *  - `VFIO_MIG_GET_PRECOPY_INFO` (valid only in PRE_COPY / PRE_COPY_P2P) with initial_bytes and
 *    dirty_bytes in whole units 0..maxBytes, so exploration stays finite; reading drains initial, then
 *    dirty; guest activity raises dirty; initial never rises again, except by REINIT, which exists only
 *    after the PRECOPY_INFOv2 opt-in (Linux 7.1, d7140b5dde45);
 *  - STOP_COPY streams the final state to a permanent EOF.
 *
 * Left out: the byte values themselves (units stand for chunks), MIG_DATA_SIZE, DMA logging, fds the user
 * forgets to close (a session "ends" when the driver stops serving it), and the opt-in as a runtime ioctl
 * (it is an input here; the kernel refuses it without PRE_COPY, so the model ignores it then).
 *
 * @example
 *   import { createActor } from 'xstate';
 *   import { vfioDeviceMachine } from 'migration-statecharts/machines/vfio-device';
 *   const dev = createActor(vfioDeviceMachine, { input: { features: 'STOP_COPY|P2P|PRE_COPY' } }).start();
 *   dev.send({ type: 'SET_STATE', target: 'PRE_COPY' });
 *   dev.getSnapshot().context.last; // { op: 'SET_STATE', ok: true, path: ['RUNNING', 'PRE_COPY'], dataFd: 'saving', ... }
 */
import { assign, setup } from 'xstate';
import {
  type DataFdKind,
  type FeatureSet,
  type VfioState,
  FEATURE_SETS,
  STATE_MEANING,
  VFIO_STATES,
  hasFeature,
  inSavingGroup,
  sessionEffect,
  stateValue,
} from './vfioArcs.js';
import { resolveVfioPath } from './vfioPath.js';

/** An injected driver failure: arc number `atArc` (0-based) of the path fails. */
export interface VfioFault {
  readonly atArc: number;
  /** 'reached': the device stays where the failing arc started; 'ERROR': the driver could not recover. */
  readonly leaves: 'reached' | 'ERROR';
}

export type VfioDeviceEvent =
  | { type: 'SET_STATE'; target: VfioState; fault?: VfioFault }
  | { type: 'VFIO_DEVICE_RESET' }
  | { type: 'VFIO_MIG_GET_PRECOPY_INFO' }
  | { type: 'DATA_FD_READ' }
  | { type: 'DATA_FD_WRITE' }
  | { type: 'GUEST_DIRTIES_DEVICE' }
  | { type: 'GUEST_REINITS_DEVICE' };

export interface VfioDeviceInput {
  readonly features: FeatureSet;
  /** The user set VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (honoured only with PRE_COPY). */
  readonly precopyInfoV2?: boolean;
  /** Size of the byte domain: initial_bytes and dirty_bytes range over 0..maxBytes units. Default 1. */
  readonly maxBytes?: number;
}

/** The outcome of the user's last call, as the ioctl or read(2) would report it. */
export type VfioResult =
  | {
      readonly op: 'SET_STATE';
      readonly target: VfioState;
      readonly ok: true;
      readonly path: readonly VfioState[];
      readonly dataFd: DataFdKind | null;
    }
  | {
      readonly op: 'SET_STATE';
      readonly target: VfioState;
      readonly ok: false;
      readonly errno: 'EINVAL' | 'EIO';
      /** The states the device went through before the failure (just the start state for -EINVAL). */
      readonly path: readonly VfioState[];
    }
  | { readonly op: 'VFIO_DEVICE_RESET'; readonly ok: true }
  | {
      readonly op: 'VFIO_MIG_GET_PRECOPY_INFO';
      readonly ok: true;
      readonly initialBytes: number;
      readonly dirtyBytes: number;
      readonly reinit: boolean;
    }
  | { readonly op: 'VFIO_MIG_GET_PRECOPY_INFO'; readonly ok: false; readonly errno: 'EINVAL' }
  /** bytes 0 is EOF (permanent in STOP_COPY). */
  | { readonly op: 'DATA_FD_READ'; readonly ok: true; readonly bytes: 0 | 1 }
  /** ENOMSG: temporary end of precopy data; EBADF: no saving session is being served. */
  | { readonly op: 'DATA_FD_READ'; readonly ok: false; readonly errno: 'ENOMSG' | 'EBADF' }
  | { readonly op: 'DATA_FD_WRITE'; readonly ok: true }
  | { readonly op: 'DATA_FD_WRITE'; readonly ok: false; readonly errno: 'EBADF' };

export interface VfioDeviceContext {
  readonly features: FeatureSet;
  readonly precopyInfoV2: boolean;
  readonly maxBytes: number;
  /** The data session the driver is serving. */
  readonly session: DataFdKind | null;
  /** PRECOPY_INFO initial_bytes (units) while precopying. */
  readonly initialBytes: number;
  /** PRECOPY_INFO dirty_bytes (units) while precopying. */
  readonly dirtyBytes: number;
  /** A REINIT happened and the next PRECOPY_INFO reports VFIO_PRECOPY_INFO_REINIT. */
  readonly reinitPending: boolean;
  /** Units of the final state still to read in STOP_COPY before EOF. */
  readonly stopCopyBytes: number;
  /** Units written to the resuming data_fd (capped at 2·maxBytes + 1, the largest saved stream). */
  readonly loadedBytes: number;
  readonly last: VfioResult | null;
}

type Patch = Partial<Omit<VfioDeviceContext, 'features' | 'precopyInfoV2' | 'maxBytes'>>;

/** The result of a SET: where the device ends, what the user is told, and the context it leaves. */
export interface SetOutcome {
  readonly final: VfioState;
  readonly result: VfioResult;
  readonly patch: Patch;
}

const isVfioState = (x: unknown): x is VfioState => typeof x === 'string' && (VFIO_STATES as readonly string[]).includes(x);

/** What the data session and the byte counters look like after each arc of `path`, applied in order. */
function applyArcs(ctx: VfioDeviceContext, path: readonly VfioState[]): Patch {
  let { session, initialBytes, dirtyBytes, reinitPending, stopCopyBytes, loadedBytes } = ctx;
  for (let i = 1; i < path.length; i++) {
    const from = path[i - 1]!;
    const to = path[i]!;
    switch (sessionEffect(from, to)) {
      case 'opens-saving':
        session = 'saving';
        initialBytes = ctx.maxBytes; // initial_bytes "starts non-zero"
        dirtyBytes = 0;
        reinitPending = false;
        break;
      case 'opens-resuming':
        session = 'resuming';
        loadedBytes = 0;
        break;
      case 'closes':
        session = null;
        initialBytes = dirtyBytes = stopCopyBytes = 0;
        reinitPending = false;
        break;
      case 'keeps':
      case 'none':
        break;
    }
    if (to === 'STOP_COPY' && from !== 'STOP_COPY') {
      // The device stops; what precopy left, plus the stopped device's own final unit, streams to EOF.
      stopCopyBytes = initialBytes + dirtyBytes + 1;
      initialBytes = dirtyBytes = 0;
      reinitPending = false;
    }
  }
  return { session, initialBytes, dirtyBytes, reinitPending, stopCopyBytes, loadedBytes };
}

/**
 * `VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE` SET from `from`, as a pure function (the machine's guards and
 * action both use it, so the chart and the semantics cannot drift apart).
 */
export function setOutcome(
  ctx: VfioDeviceContext,
  from: VfioState,
  event: { target: unknown; fault?: VfioFault | undefined },
): SetOutcome {
  const target = event.target;
  if (!isVfioState(target)) {
    // A number ≥ VFIO_DEVICE_STATE_NR or garbage: the kernel answers -EINVAL.
    return {
      final: from,
      result: { op: 'SET_STATE', target: target as VfioState, ok: false, errno: 'EINVAL', path: [from] },
      patch: {},
    };
  }
  const res = resolveVfioPath(from, target, ctx.features);
  if (!res.ok) {
    return { final: from, result: { op: 'SET_STATE', target, ok: false, errno: 'EINVAL', path: [from] }, patch: {} };
  }
  const arcs = res.path.length - 1;
  const fault = event.fault;
  if (fault && Number.isInteger(fault.atArc) && fault.atArc >= 0 && fault.atArc < arcs) {
    const reached = res.path.slice(0, fault.atArc + 1);
    const patch = applyArcs(ctx, reached);
    const final = fault.leaves === 'ERROR' ? 'ERROR' : reached[reached.length - 1]!;
    const after: Patch =
      final === 'ERROR'
        ? { ...patch, session: null, initialBytes: 0, dirtyBytes: 0, reinitPending: false, stopCopyBytes: 0 }
        : patch;
    return { final, result: { op: 'SET_STATE', target, ok: false, errno: 'EIO', path: reached }, patch: after };
  }
  return {
    final: target,
    result: { op: 'SET_STATE', target, ok: true, path: res.path, dataFd: res.dataFd },
    patch: applyArcs(ctx, res.path),
  };
}

const isPrecopy = (s: VfioState) => s === 'PRE_COPY' || s === 'PRE_COPY_P2P';

/** The states a SET from `from` can leave the device in, for any feature set, target and fault. */
function landingsFrom(from: VfioState): VfioState[] {
  const out = new Set<VfioState>();
  for (const set of FEATURE_SETS) {
    for (const target of VFIO_STATES) {
      const r = resolveVfioPath(from, target, set);
      if (r.ok) for (const s of r.path) out.add(s);
    }
  }
  if (from !== 'ERROR') out.add('ERROR');
  out.delete(from);
  return VFIO_STATES.filter((s) => out.has(s));
}

const machineSetup = setup({
  types: {
    context: {} as VfioDeviceContext,
    events: {} as VfioDeviceEvent,
    input: {} as VfioDeviceInput,
  },
  guards: {
    /** The SET from `from` leaves the device in `to`. */
    setEndsIn: ({ context, event }, params: { from: VfioState; to: VfioState }) =>
      event.type === 'SET_STATE' && setOutcome(context, params.from, event).final === params.to,
  },
  actions: {
    /** Apply every arc of the SET's path (sessions, counters) and record its result. */
    applySet: assign(({ context, event }, params: { from: VfioState }) => {
      if (event.type !== 'SET_STATE') return {};
      const o = setOutcome(context, params.from, event);
      return { ...o.patch, last: o.result };
    }),
    /** VFIO_DEVICE_RESET: the device runs again; every session ends and the counters clear. */
    resetDevice: assign({
      session: null,
      initialBytes: 0,
      dirtyBytes: 0,
      reinitPending: false,
      stopCopyBytes: 0,
      loadedBytes: 0,
      last: { op: 'VFIO_DEVICE_RESET', ok: true } as VfioResult,
    }),
    /**
     * PRECOPY_INFO: report the counters; REINIT only after the v2 opt-in, and once per re-initialisation
     * (inferred: the uAPI says the flag marks new initial data; reporting it once is the model's reading).
     */
    reportPrecopyInfo: assign(({ context }) => ({
      reinitPending: false,
      last: {
        op: 'VFIO_MIG_GET_PRECOPY_INFO',
        ok: true,
        initialBytes: context.initialBytes,
        dirtyBytes: context.dirtyBytes,
        reinit: context.precopyInfoV2 && context.reinitPending,
      } as VfioResult,
    })),
    refusePrecopyInfo: assign({
      last: { op: 'VFIO_MIG_GET_PRECOPY_INFO', ok: false, errno: 'EINVAL' } as VfioResult,
    }),
    /** read() in precopy: initial first, then dirty; with both at 0 a temporary end (ENOMSG). */
    readPrecopyChunk: assign(({ context }) => {
      if (context.initialBytes > 0)
        return { initialBytes: context.initialBytes - 1, last: { op: 'DATA_FD_READ', ok: true, bytes: 1 } as VfioResult };
      if (context.dirtyBytes > 0)
        return { dirtyBytes: context.dirtyBytes - 1, last: { op: 'DATA_FD_READ', ok: true, bytes: 1 } as VfioResult };
      return { last: { op: 'DATA_FD_READ', ok: false, errno: 'ENOMSG' } as VfioResult };
    }),
    /** read() in STOP_COPY: the final state, then a permanent EOF. */
    readStopCopyChunk: assign(({ context }) =>
      context.stopCopyBytes > 0
        ? { stopCopyBytes: context.stopCopyBytes - 1, last: { op: 'DATA_FD_READ', ok: true, bytes: 1 } as VfioResult }
        : { last: { op: 'DATA_FD_READ', ok: true, bytes: 0 } as VfioResult },
    ),
    refuseRead: assign({ last: { op: 'DATA_FD_READ', ok: false, errno: 'EBADF' } as VfioResult }),
    writeResumingChunk: assign(({ context }) => ({
      loadedBytes: Math.min(context.loadedBytes + 1, 2 * context.maxBytes + 1),
      last: { op: 'DATA_FD_WRITE', ok: true } as VfioResult,
    })),
    refuseWrite: assign({ last: { op: 'DATA_FD_WRITE', ok: false, errno: 'EBADF' } as VfioResult }),
    /** The running guest changes device state the driver tracks: dirty_bytes rises. */
    dirtyDeviceState: assign(({ context }) => ({ dirtyBytes: Math.min(context.dirtyBytes + 1, context.maxBytes) })),
    /**
     * The guest reconfigures the device. With the v2 opt-in the driver re-initialises: initial_bytes
     * jumps to a non-zero value, dirty_bytes restarts at 0, and the next PRECOPY_INFO says REINIT.
     * Without it the driver cannot raise initial_bytes, so the new data shows up only as dirty bytes.
     */
    reinitDeviceState: assign(({ context }) =>
      context.precopyInfoV2
        ? { initialBytes: context.maxBytes, dirtyBytes: 0, reinitPending: true }
        : { dirtyBytes: context.maxBytes },
    ),
  },
});

function stateNode(s: VfioState) {
  const setTransitions = [
    ...landingsFrom(s).map((to) => ({
      guard: { type: 'setEndsIn' as const, params: { from: s, to } },
      target: to,
      actions: { type: 'applySet' as const, params: { from: s } },
    })),
    // Refused, a no-op, or a failure at the first arc: the device stays.
    { actions: { type: 'applySet' as const, params: { from: s } } },
  ];
  const precopy = isPrecopy(s);
  return {
    description: STATE_MEANING[s],
    meta: { source: 'include/uapi/linux/vfio.h: enum vfio_device_mig_state', value: stateValue(s) },
    tags: inSavingGroup(s) ? ['saving'] : s === 'RESUMING' ? ['resuming'] : [],
    on: {
      SET_STATE: setTransitions,
      VFIO_MIG_GET_PRECOPY_INFO: { actions: precopy ? 'reportPrecopyInfo' : 'refusePrecopyInfo' },
      DATA_FD_READ: {
        actions: precopy ? 'readPrecopyChunk' : s === 'STOP_COPY' ? 'readStopCopyChunk' : 'refuseRead',
      },
      DATA_FD_WRITE: { actions: s === 'RESUMING' ? 'writeResumingChunk' : 'refuseWrite' },
      ...(precopy
        ? {
            GUEST_DIRTIES_DEVICE: { actions: 'dirtyDeviceState' as const },
            GUEST_REINITS_DEVICE: { actions: 'reinitDeviceState' as const },
          }
        : {}),
    },
  } as const;
}

/** The machine. Its state keys are the uAPI names; `context.last` is what the user's last call returned. */
export const vfioDeviceMachine = machineSetup.createMachine({
  id: 'vfioDevice',
  description: 'A VFIO device under the Linux migration uAPI v2 (include/uapi/linux/vfio.h)',
  initial: 'RUNNING',
  context: ({ input }) => ({
    features: input.features,
    precopyInfoV2: Boolean(input.precopyInfoV2) && hasFeature(input.features, 'PRE_COPY'),
    maxBytes: input.maxBytes ?? 1,
    session: null,
    initialBytes: 0,
    dirtyBytes: 0,
    reinitPending: false,
    stopCopyBytes: 0,
    loadedBytes: 0,
    last: null,
  }),
  on: {
    VFIO_DEVICE_RESET: { target: '.RUNNING', reenter: true, actions: 'resetDevice' },
  },
  states: {
    ERROR: stateNode('ERROR'),
    STOP: stateNode('STOP'),
    RUNNING: stateNode('RUNNING'),
    STOP_COPY: stateNode('STOP_COPY'),
    RESUMING: stateNode('RESUMING'),
    RUNNING_P2P: stateNode('RUNNING_P2P'),
    PRE_COPY: stateNode('PRE_COPY'),
    PRE_COPY_P2P: stateNode('PRE_COPY_P2P'),
  },
});

export type VfioDeviceMachine = typeof vfioDeviceMachine;
