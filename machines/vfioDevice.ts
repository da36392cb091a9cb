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
 *   dev.getSnapshot().context.last; // => { op: 'SET_STATE', ok: true, path: ['RUNNING', 'PRE_COPY'], dataFd: 'saving' }
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
import { type VfioProfile, GENERIC_PROFILE } from './vfioProfiles.js';

/** An injected driver failure: arc number `atArc` (0-based) of the path fails. */
export interface VfioFault {
  readonly atArc: number;
  /** 'reached': the device stays where the failing arc started; 'ERROR': the driver could not recover. */
  readonly leaves: 'reached' | 'ERROR';
}

/** What a DATA_FD_WRITE carries: bytes of a genuine saved image, or bytes that fail its header check. */
export type WriteData = 'valid' | 'corrupt';

export type VfioDeviceEvent =
  /** A state name, or a raw `device_state` number (8 and above are out of range: -EINVAL). */
  | { type: 'SET_STATE'; target: VfioState | number; fault?: VfioFault }
  | { type: 'VFIO_DEVICE_RESET' }
  | { type: 'VFIO_MIG_GET_PRECOPY_INFO' }
  | { type: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE' }
  | { type: 'DATA_FD_READ' }
  | { type: 'DATA_FD_WRITE'; data?: WriteData }
  /** close(2) of the user's data_fd (profiles that follow the user's fds). */
  | { type: 'DATA_FD_CLOSE' }
  | { type: 'GUEST_DIRTIES_DEVICE' }
  | { type: 'GUEST_REINITS_DEVICE' };

export interface VfioDeviceInput {
  readonly features: FeatureSet;
  /** The user set VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (honoured only with PRE_COPY and a driver that has it). */
  readonly precopyInfoV2?: boolean;
  /** Size of the byte domain: initial_bytes and dirty_bytes range over 0..maxBytes units. Default 1. */
  readonly maxBytes?: number;
  /** The driver (./vfioProfiles.ts). Default: the generic uAPI profile. */
  readonly profile?: VfioProfile;
}

/** Every errno the model's calls can return. */
export type VfioErrno = 'EINVAL' | 'EIO' | 'EBADF' | 'ENOMSG' | 'ENODEV' | 'ENOMEM' | 'EFAULT' | 'ENOTTY';

/** The outcome of the user's last call, as the ioctl, read(2), write(2) or close(2) would report it. */
export type VfioResult =
  | {
      readonly op: 'SET_STATE';
      readonly target: VfioState | number;
      readonly ok: true;
      readonly path: readonly VfioState[];
      readonly dataFd: DataFdKind | null;
    }
  | {
      readonly op: 'SET_STATE';
      readonly target: VfioState | number;
      readonly ok: false;
      /** EINVAL: refused (or a driver's own check failed); EIO: an injected driver failure. */
      readonly errno: 'EINVAL' | 'EIO';
      /** The states the device went through before the failure (just the start state when refused). */
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
  | { readonly op: 'VFIO_MIG_GET_PRECOPY_INFO'; readonly ok: false; readonly errno: 'EINVAL' | 'EBADF' | 'ENODEV' | 'ENOTTY' }
  | { readonly op: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE'; readonly ok: true; readonly stopCopyLength: number }
  /** bytes 0 is EOF (permanent in STOP_COPY; in precopy for drivers without ENOMSG). */
  | { readonly op: 'DATA_FD_READ'; readonly ok: true; readonly bytes: number }
  /** ENOMSG: temporary end of precopy data; EBADF: no fd, or not a saving one; ENODEV: a disabled fd (mtty). */
  | { readonly op: 'DATA_FD_READ'; readonly ok: false; readonly errno: 'ENOMSG' | 'EBADF' | 'ENODEV' }
  | { readonly op: 'DATA_FD_WRITE'; readonly ok: true; readonly bytes: number }
  | { readonly op: 'DATA_FD_WRITE'; readonly ok: false; readonly errno: 'EBADF' | 'ENODEV' | 'ENOMEM' | 'EFAULT' }
  | { readonly op: 'DATA_FD_CLOSE'; readonly ok: true }
  | { readonly op: 'DATA_FD_CLOSE'; readonly ok: false; readonly errno: 'EBADF' };

export interface VfioDeviceContext {
  readonly features: FeatureSet;
  readonly precopyInfoV2: boolean;
  readonly maxBytes: number;
  readonly profile: VfioProfile;
  /** The data session the driver is serving. */
  readonly session: DataFdKind | null;
  /**
   * The kind of the data_fd the user holds (profiles with `userFds`): the last one a SET returned, until
   * DATA_FD_CLOSE. It is live while its session is the one served (`fd === session`), else disabled.
   * Always null for profiles without `userFds`.
   */
  readonly fd: DataFdKind | null;
  /** PRECOPY_INFO initial_bytes while precopying. */
  readonly initialBytes: number;
  /** PRECOPY_INFO dirty_bytes while precopying. */
  readonly dirtyBytes: number;
  /** A REINIT happened and the next PRECOPY_INFO reports VFIO_PRECOPY_INFO_REINIT. */
  readonly reinitPending: boolean;
  /** Bytes of the final state still to read in STOP_COPY before EOF. */
  readonly stopCopyBytes: number;
  /** Bytes written to the resuming data_fd (generic: capped at 2·maxBytes + 1, the largest saved stream). */
  readonly loadedBytes: number;
  readonly last: VfioResult | null;
}

type Patch = Partial<Omit<VfioDeviceContext, 'features' | 'precopyInfoV2' | 'maxBytes' | 'profile'>>;

/** The result of a SET: where the device ends, what the user is told, and the context it leaves. */
export interface SetOutcome {
  readonly final: VfioState;
  readonly result: VfioResult;
  readonly patch: Patch;
}

const isVfioState = (x: unknown): x is VfioState => typeof x === 'string' && (VFIO_STATES as readonly string[]).includes(x);

/** A SET's target as a state, when it names one (a name, or its enum value below VFIO_DEVICE_STATE_NR). */
function targetState(t: unknown): VfioState | null {
  if (isVfioState(t)) return t;
  if (typeof t === 'number' && Number.isInteger(t) && t >= 0 && t < VFIO_STATES.length) return VFIO_STATES[t]!;
  return null;
}

/** What the data session and the byte counters look like after each arc of `path`, applied in order. */
function applyArcs(ctx: VfioDeviceContext, path: readonly VfioState[]): Patch {
  let { session, initialBytes, dirtyBytes, reinitPending, stopCopyBytes, loadedBytes } = ctx;
  for (let i = 1; i < path.length; i++) {
    const from = path[i - 1]!;
    const to = path[i]!;
    switch (sessionEffect(from, to)) {
      case 'opens-saving':
        session = 'saving';
        initialBytes = ctx.profile.initialBytes ?? ctx.maxBytes; // initial_bytes "starts non-zero"
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
      // The device stops; what precopy left, plus the stopped device's own final state, streams to EOF.
      stopCopyBytes = initialBytes + dirtyBytes + ctx.profile.finalBytes;
      initialBytes = dirtyBytes = 0;
      reinitPending = false;
    }
  }
  return { session, initialBytes, dirtyBytes, reinitPending, stopCopyBytes, loadedBytes };
}

/** The driver's own check on an arc (not the kernel's table): RESUMING → STOP loads, and may fail. */
function arcCheckFails(ctx: VfioDeviceContext, from: VfioState, to: VfioState): 'EINVAL' | null {
  const r = ctx.profile.resuming;
  if (r && from === 'RESUMING' && to === 'STOP' && ctx.loadedBytes < r.imageBytes) return r.shortLoadErrno;
  return null;
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
  const raw = event.target as VfioState | number;
  const target = targetState(event.target);
  if (target === null) {
    // A number ≥ VFIO_DEVICE_STATE_NR or garbage: the kernel answers -EINVAL.
    return { final: from, result: { op: 'SET_STATE', target: raw, ok: false, errno: 'EINVAL', path: [from] }, patch: {} };
  }
  const res = resolveVfioPath(from, target, ctx.features);
  if (!res.ok) {
    return { final: from, result: { op: 'SET_STATE', target, ok: false, errno: 'EINVAL', path: [from] }, patch: {} };
  }
  const arcs = res.path.length - 1;
  // The driver loop commits each arc; the first that fails ends the SET there (mtty_set_state and the
  // other drivers' loops), so a driver's own check acts like a fault that leaves the device where it was.
  for (let k = 0; k < arcs; k++) {
    const errno = arcCheckFails(ctx, res.path[k]!, res.path[k + 1]!);
    if (errno) {
      const reached = res.path.slice(0, k + 1);
      return { final: reached[k]!, result: { op: 'SET_STATE', target, ok: false, errno, path: reached }, patch: applyArcs(ctx, reached) };
    }
  }
  const fault = ctx.profile.injectableFaults ? event.fault : undefined;
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
  const patch = applyArcs(ctx, res.path);
  // The user holds the fd a SET returns (the previous one is closed, as QEMU does).
  const fd = ctx.profile.userFds && res.dataFd ? { fd: res.dataFd } : {};
  return {
    final: target,
    result: { op: 'SET_STATE', target, ok: true, path: res.path, dataFd: res.dataFd },
    patch: { ...patch, ...fd },
  };
}

/** Why a data_fd call cannot reach a live session of `kind`, or null when it can (the fd's own errors). */
function fdProblem(ctx: VfioDeviceContext, kind: DataFdKind): 'EBADF' | 'ENODEV' | null {
  if (!ctx.profile.userFds) return ctx.session === kind ? null : 'EBADF';
  if (ctx.fd === null || ctx.fd !== kind) return 'EBADF'; // no fd, or the other direction (O_RDONLY / O_WRONLY)
  return ctx.session === kind ? null : ctx.profile.disabledFdErrno;
}

/** VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: the driver's figure, or what STOP_COPY would stream if entered now. */
function stopCopyLength(ctx: VfioDeviceContext, s: VfioState): number {
  const p = ctx.profile;
  if (p.stopCopyLength !== null) return p.stopCopyLength;
  if (s === 'STOP_COPY') return ctx.stopCopyBytes;
  if (s === 'PRE_COPY' || s === 'PRE_COPY_P2P') return ctx.initialBytes + ctx.dirtyBytes + p.finalBytes;
  return (p.initialBytes ?? ctx.maxBytes) + p.finalBytes;
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

const result = (r: VfioResult) => r;

/**
 * Host hooks: what an orchestrator that drives a real device provides (`vfioDeviceMachine.provide({
 * actions: { deviceRequest, dataFdOperation } })`) to mirror each call on its device. They run after the
 * model's own bookkeeping and receive the call and what the model predicts it returns; they cannot change
 * the model's state (they are plain actions, not assignments), so providing them never changes what the
 * model predicts. The bookkeeping actions (applySet, precopyInfo, readChunk, …) are the model itself:
 * replace them and you replace the model.
 */
export interface DeviceRequestHook {
  /** The ioctl: a SET (VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE), VFIO_DEVICE_RESET, PRECOPY_INFO or MIG_DATA_SIZE. */
  readonly request: Extract<VfioDeviceEvent, { type: 'SET_STATE' | 'VFIO_DEVICE_RESET' | 'VFIO_MIG_GET_PRECOPY_INFO' | 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE' }>;
  /** The device state the call was made in; null for VFIO_DEVICE_RESET (every state takes it alike). */
  readonly from: VfioState | null;
  /** What the model predicts the call returns (for a SET: ok or errno, the path, the data_fd). */
  readonly result: VfioResult;
}

export interface DataFdOperationHook {
  /** read(2), write(2) or close(2) of the data_fd. */
  readonly operation: Extract<VfioDeviceEvent, { type: 'DATA_FD_READ' | 'DATA_FD_WRITE' | 'DATA_FD_CLOSE' }>;
  readonly state: VfioState;
  readonly result: VfioResult;
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
    /** Host hook: a device ioctl was made (no-op in the model; see DeviceRequestHook). */
    deviceRequest: (_: unknown, _params: DeviceRequestHook) => {},
    /** Host hook: a data_fd read, write or close was made (no-op in the model; see DataFdOperationHook). */
    dataFdOperation: (_: unknown, _params: DataFdOperationHook) => {},
    /** Apply every arc of the SET's path (sessions, counters) and record its result. */
    applySet: assign(({ context, event }, params: { from: VfioState }) => {
      if (event.type !== 'SET_STATE') return {};
      const o = setOutcome(context, params.from, event);
      return { ...o.patch, last: o.result };
    }),
    /** VFIO_DEVICE_RESET: the device runs again; every session ends (its fds stay open, disabled). */
    resetDevice: assign({
      session: null,
      initialBytes: 0,
      dirtyBytes: 0,
      reinitPending: false,
      stopCopyBytes: 0,
      loadedBytes: 0,
      last: result({ op: 'VFIO_DEVICE_RESET', ok: true }),
    }),
    /**
     * PRECOPY_INFO on the saving fd: report the counters; REINIT only after the v2 opt-in, and once per
     * re-initialisation (inferred: the uAPI says the flag marks new initial data; reporting it once is the
     * model's reading). Outside PRE_COPY(_P2P) -EINVAL (vfio.h; mtty_precopy_ioctl checks the state
     * before the fd's own state).
     */
    precopyInfo: assign(({ context }, params: { precopy: boolean }) => {
      const p = context.profile;
      if (p.userFds && context.fd === null) return { last: result({ op: 'VFIO_MIG_GET_PRECOPY_INFO', ok: false, errno: 'EBADF' }) };
      if (p.userFds && context.fd === 'resuming') return { last: result({ op: 'VFIO_MIG_GET_PRECOPY_INFO', ok: false, errno: 'ENOTTY' }) };
      if (!params.precopy) return { last: result({ op: 'VFIO_MIG_GET_PRECOPY_INFO', ok: false, errno: 'EINVAL' }) };
      const bad = fdProblem(context, 'saving');
      if (bad) return { last: result({ op: 'VFIO_MIG_GET_PRECOPY_INFO', ok: false, errno: bad }) };
      return {
        reinitPending: false,
        last: result({
          op: 'VFIO_MIG_GET_PRECOPY_INFO',
          ok: true,
          initialBytes: context.initialBytes,
          dirtyBytes: context.dirtyBytes,
          reinit: context.precopyInfoV2 && context.reinitPending,
        }),
      };
    }),
    /** VFIO_DEVICE_FEATURE_MIG_DATA_SIZE GET: allowed in every state. */
    reportDataSize: assign(({ context }, params: { state: VfioState }) => ({
      last: result({ op: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE', ok: true, stopCopyLength: stopCopyLength(context, params.state) }),
    })),
    /**
     * read() of the saving fd: in precopy initial first, then dirty; once both are drained a temporary
     * end (ENOMSG, or 0 for drivers without it); in STOP_COPY the final state, then a permanent EOF.
     */
    readChunk: assign(({ context }, params: { state: VfioState }) => {
      const bad = fdProblem(context, 'saving');
      if (bad) return { last: result({ op: 'DATA_FD_READ', ok: false, errno: bad }) };
      const chunk = context.profile.readChunk;
      if (params.state === 'STOP_COPY') {
        const n = Math.min(chunk, context.stopCopyBytes);
        return { stopCopyBytes: context.stopCopyBytes - n, last: result({ op: 'DATA_FD_READ', ok: true, bytes: n }) };
      }
      const fromInitial = Math.min(chunk, context.initialBytes);
      const fromDirty = Math.min(chunk - fromInitial, context.dirtyBytes);
      const n = fromInitial + fromDirty;
      if (n === 0 && context.profile.precopyDrained === 'ENOMSG') return { last: result({ op: 'DATA_FD_READ', ok: false, errno: 'ENOMSG' }) };
      return {
        initialBytes: context.initialBytes - fromInitial,
        dirtyBytes: context.dirtyBytes - fromDirty,
        last: result({ op: 'DATA_FD_READ', ok: true, bytes: n }),
      };
    }),
    /** write() of the resuming fd; a driver with resuming rules checks the size and the header. */
    writeChunk: assign(({ context, event }) => {
      const p = context.profile;
      const chunk = p.writeChunk;
      const r = p.resuming;
      // mtty_resume_write checks the size before the fd's state; a disabled fd's position is back at 0.
      if (r && p.userFds && context.fd === 'resuming') {
        const pos = context.session === 'resuming' ? context.loadedBytes : 0;
        if (pos + chunk > r.imageBytes) return { last: result({ op: 'DATA_FD_WRITE', ok: false, errno: r.overflowErrno }) };
      }
      const bad = fdProblem(context, 'resuming');
      if (bad) return { last: result({ op: 'DATA_FD_WRITE', ok: false, errno: bad }) };
      if (!r) {
        return {
          loadedBytes: Math.min(context.loadedBytes + chunk, 2 * context.maxBytes + 1),
          last: result({ op: 'DATA_FD_WRITE', ok: true, bytes: chunk }),
        };
      }
      const loaded = context.loadedBytes + chunk;
      const completesHeader = context.loadedBytes < r.headerBytes && loaded >= r.headerBytes;
      const corrupt = event.type === 'DATA_FD_WRITE' && event.data === 'corrupt';
      if (completesHeader && corrupt) {
        return {
          loadedBytes: r.countsRejectedBytes ? loaded : context.loadedBytes,
          last: result({ op: 'DATA_FD_WRITE', ok: false, errno: r.badHeaderErrno }),
        };
      }
      return { loadedBytes: loaded, last: result({ op: 'DATA_FD_WRITE', ok: true, bytes: chunk }) };
    }),
    /** close(2) of the user's data_fd: the driver keeps serving the session (it holds its own reference). */
    closeFd: assign(({ context }) => {
      if (context.profile.userFds && context.fd === null) return { last: result({ op: 'DATA_FD_CLOSE', ok: false, errno: 'EBADF' }) };
      return { fd: null, last: result({ op: 'DATA_FD_CLOSE', ok: true }) };
    }),
    /** The running guest changes device state the driver tracks: dirty_bytes rises (if the driver tracks it). */
    dirtyDeviceState: assign(({ context }) =>
      context.profile.tracksDirty ? { dirtyBytes: Math.min(context.dirtyBytes + 1, context.maxBytes) } : {},
    ),
    /**
     * The guest reconfigures the device. With the v2 opt-in the driver re-initialises: initial_bytes
     * jumps to a non-zero value, dirty_bytes restarts at 0, and the next PRECOPY_INFO says REINIT.
     * Without it the driver cannot raise initial_bytes, so the new data shows up only as dirty bytes.
     */
    reinitDeviceState: assign(({ context }) =>
      context.precopyInfoV2
        ? { initialBytes: context.maxBytes, dirtyBytes: 0, reinitPending: true }
        : context.profile.tracksDirty
          ? { dirtyBytes: context.maxBytes }
          : {},
    ),
  },
});

/** The hook action after a device ioctl made in state `from` (its params read the recorded result). */
const requestHook = (from: VfioState | null) =>
  ({
    type: 'deviceRequest',
    params: ({ context, event }: { context: VfioDeviceContext; event: VfioDeviceEvent }) => ({ request: event, from, result: context.last! }) as DeviceRequestHook,
  }) as const;
const fdHook = (state: VfioState) =>
  ({
    type: 'dataFdOperation',
    params: ({ context, event }: { context: VfioDeviceContext; event: VfioDeviceEvent }) => ({ operation: event, state, result: context.last! }) as DataFdOperationHook,
  }) as const;

function stateNode(s: VfioState) {
  const setTransitions = [
    ...landingsFrom(s).map((to) => ({
      guard: { type: 'setEndsIn' as const, params: { from: s, to } },
      target: to,
      actions: [{ type: 'applySet' as const, params: { from: s } }, requestHook(s)],
    })),
    // Refused, a no-op, or a failure at the first arc: the device stays.
    { actions: [{ type: 'applySet' as const, params: { from: s } }, requestHook(s)] },
  ];
  const precopy = isPrecopy(s);
  return {
    description: STATE_MEANING[s],
    meta: { source: 'include/uapi/linux/vfio.h: enum vfio_device_mig_state', value: stateValue(s) },
    tags: inSavingGroup(s) ? ['saving'] : s === 'RESUMING' ? ['resuming'] : [],
    on: {
      SET_STATE: setTransitions,
      VFIO_MIG_GET_PRECOPY_INFO: { actions: [{ type: 'precopyInfo' as const, params: { precopy } }, requestHook(s)] },
      VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: { actions: [{ type: 'reportDataSize' as const, params: { state: s } }, requestHook(s)] },
      DATA_FD_READ: { actions: [{ type: 'readChunk' as const, params: { state: s } }, fdHook(s)] },
      DATA_FD_WRITE: { actions: ['writeChunk' as const, fdHook(s)] },
      DATA_FD_CLOSE: { actions: ['closeFd' as const, fdHook(s)] },
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
  context: ({ input }) => {
    const profile = input.profile ?? GENERIC_PROFILE;
    return {
      features: input.features,
      precopyInfoV2: Boolean(input.precopyInfoV2) && hasFeature(input.features, 'PRE_COPY') && profile.supportsPrecopyInfoV2,
      maxBytes: input.maxBytes ?? 1,
      profile,
      session: null,
      fd: null,
      initialBytes: 0,
      dirtyBytes: 0,
      reinitPending: false,
      stopCopyBytes: 0,
      loadedBytes: 0,
      last: null,
    };
  },
  on: {
    VFIO_DEVICE_RESET: { target: '.RUNNING', reenter: true, actions: ['resetDevice', requestHook(null)] },
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
