/**
 * A VFIO device as the Linux migration uAPI (protocol v2) defines it, seen from its user (QEMU).
 *
 * Models (see ./vfioArcs.ts for the data and its kernel citations):
 *  - the eight `enum vfio_device_mig_state` states, one chart state each, keyed by the uAPI name;
 *  - `VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE` SET as the event `SET_STATE { target }`: refused with -EINVAL
 *    (one transition per check of vfio_mig_get_next_state(): `targetOutOfRange`, `deviceInError`,
 *    `targetIsError`, `targetUnsupported`, `arcBlocked`), a no-op success for the current state
 *    (`targetIsCurrent`), or the path resolved (./vfioPath.ts; one transition per target, `targetIs`, as
 *    the kernel's table has one entry per (state, target), and one for a SET carrying an injected
 *    failure, `faultRequested`) and then walked one kernel arc at a time: each
 *    single-step arc of drivers/vfio/vfio_main.c's per-feature-set lists is its own internal `ARC`
 *    transition, guarded by where the path goes next and the arc's feature condition (`hasP2P`,
 *    `hasPreCopy`), doing to the data session what include/uapi/linux/vfio.h says it does
 *    (`openSavingSession`, `endSession`, …). One SET is one macrostep: what the user sees (`context.last`:
 *    path, errno, data_fd) is recorded when the path ends, and `setOutcome` below says the same as a
 *    pure function;
 *  - injected driver failures: a SET whose arc k fails (`fault`) stops at the state before arc k (arcs
 *    before it are committed, as the drivers' loops commit each step) or falls into ERROR — the
 *    outcomes the uAPI allows ("the original state, any state along the path, or ERROR");
 *  - `VFIO_DEVICE_RESET`: back to RUNNING, every session ended (one transition per session it ends);
 *  - data_fd sessions: a saving session for the saving group (PRE_COPY, PRE_COPY_P2P, STOP_COPY), a
 *    resuming session for RESUMING;
 *  - `VFIO_MIG_GET_PRECOPY_INFO` (valid only in PRE_COPY / PRE_COPY_P2P) with initial_bytes and
 *    dirty_bytes in whole units 0..maxBytes, so exploration stays finite; reading drains initial, then
 *    dirty; guest activity raises dirty; initial never rises again, except by REINIT, which exists only
 *    after the PRECOPY_INFOv2 opt-in (Linux 7.1, d7140b5dde45);
 *  - STOP_COPY streams the final state to a permanent EOF;
 *  - each outcome of a data_fd call or PRECOPY_INFO its own guarded transition (no fd, the other
 *    direction's fd, an ended session, data left, drained or EOF, an overflowing or corrupt write, a
 *    REINIT to report), so that covering the chart's transitions covers every answer the uAPI gives.
 *
 * Left out: the byte values themselves (units stand for chunks, MIG_DATA_SIZE counts them too), DMA logging, fds the user
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
import { and, assign, enqueueActions, not, raise, setup } from 'xstate';
import {
  type DataFdKind,
  type FeatureSet,
  type SessionEffect,
  type VfioState,
  FEATURE_SETS,
  STATE_MEANING,
  VFIO_STATES,
  arcsOf,
  hasFeature,
  inSavingGroup,
  isSupported,
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

/**
 * Internal: one arc of a SET's path, `path[at] → path[at + 1]` (`at === path.length - 1`: the path is
 * done). SET_STATE raises the first, entering each state on the way raises the next — the drivers'
 * `while (new != cur)` loop, one step per vfio_mig_get_next_state() call — so one SET is still one
 * macrostep. Carries the request and its resolved path, so no context field holds a SET in flight.
 * Never sent from outside.
 */
export interface VfioArcEvent {
  readonly type: 'ARC';
  readonly request: Extract<VfioDeviceEvent, { type: 'SET_STATE' }>;
  /** The state the SET was made in. */
  readonly from: VfioState;
  readonly target: VfioState;
  readonly path: readonly VfioState[];
  /** The data_fd the last arc opens (what a successful SET returns). */
  readonly dataFd: DataFdKind | null;
  readonly at: number;
}

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

/** Why the kernel refuses a SET from `from` (vfio_mig_get_next_state()'s checks in its order), or null. */
type SetRefusal = 'target-out-of-range' | 'device-in-error' | 'error-requested' | 'target-unsupported' | 'arc-blocked';
function setRefusal(event: { type: string; target?: unknown }, from: VfioState, features: FeatureSet | null): SetRefusal | null {
  if (event.type !== 'SET_STATE') return null;
  const target = targetState(event.target);
  if (target === null) return 'target-out-of-range';
  if (target === from) return null; // the drivers' loop never runs: a no-op success, even ERROR → ERROR
  if (from === 'ERROR') return 'device-in-error';
  if (target === 'ERROR') return 'error-requested';
  if (features === null) return null;
  if (!isSupported(target, features)) return 'target-unsupported';
  return resolveVfioPath(from, target, features).ok ? null : 'arc-blocked';
}

/** What one arc does to the data session and the byte counters, as the named actions of the chart do it. */
const ARC_EFFECTS = {
  /** Entering the saving group: a new saving session; initial_bytes "starts non-zero", dirty_bytes at 0. */
  openSavingSession: (ctx: VfioDeviceContext): Patch => ({
    session: 'saving',
    initialBytes: ctx.profile.initialBytes ?? ctx.maxBytes,
    dirtyBytes: 0,
    reinitPending: false,
  }),
  /** STOP → RESUMING: a new resuming session, nothing loaded yet. */
  openResumingSession: (_: VfioDeviceContext): Patch => ({ session: 'resuming', loadedBytes: 0 }),
  /** Leaving the saving group, or RESUMING → STOP: the driver stops serving the session. */
  endSession: (_: VfioDeviceContext): Patch => ({ session: null, initialBytes: 0, dirtyBytes: 0, stopCopyBytes: 0, reinitPending: false }),
  /** Into STOP_COPY: the device stops; what precopy left, plus its own final state, streams to EOF. */
  streamFinalState: (ctx: VfioDeviceContext): Patch => ({
    stopCopyBytes: ctx.initialBytes + ctx.dirtyBytes + ctx.profile.finalBytes,
    initialBytes: 0,
    dirtyBytes: 0,
    reinitPending: false,
  }),
} as const;
type ArcEffect = keyof typeof ARC_EFFECTS;

/** The named effects of the arc `from → to`, in order (vfio.h: the saving group, RESUMING's own session). */
export function arcEffects(from: VfioState, to: VfioState): ArcEffect[] {
  const out: ArcEffect[] = [];
  switch (sessionEffect(from, to)) {
    case 'opens-saving':
      out.push('openSavingSession');
      break;
    case 'opens-resuming':
      out.push('openResumingSession');
      break;
    case 'closes':
      out.push('endSession');
      break;
    case 'keeps':
    case 'none':
      break;
  }
  if (to === 'STOP_COPY' && from !== 'STOP_COPY') out.push('streamFinalState');
  return out;
}

/** What the data session and the byte counters look like after each arc of `path`, applied in order. */
function applyArcs(ctx: VfioDeviceContext, path: readonly VfioState[]): Patch {
  let at: VfioDeviceContext = ctx;
  for (let i = 1; i < path.length; i++) {
    for (const e of arcEffects(path[i - 1]!, path[i]!)) at = { ...at, ...ARC_EFFECTS[e](at) };
  }
  const { session, initialBytes, dirtyBytes, reinitPending, stopCopyBytes, loadedBytes } = at;
  return { session, initialBytes, dirtyBytes, reinitPending, stopCopyBytes, loadedBytes };
}

/** The driver's own check on an arc (not the kernel's table): RESUMING → STOP loads, and may fail. */
function arcCheckFails(ctx: VfioDeviceContext, from: VfioState, to: VfioState): 'EINVAL' | null {
  const r = ctx.profile.resuming;
  if (r && from === 'RESUMING' && to === 'STOP' && ctx.loadedBytes < r.imageBytes) return r.shortLoadErrno;
  return null;
}

/**
 * `VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE` SET from `from`, as a pure function: what the chart's
 * SET_STATE macrostep (its `ARC` transitions) ends in, built from the same arc effects
 * (test/vfioDevice.test.ts checks the two agree on every state, target and fault).
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
export function stopCopyLength(ctx: VfioDeviceContext, s: VfioState): number {
  const p = ctx.profile;
  if (p.stopCopyLength !== null) return p.stopCopyLength;
  if (s === 'STOP_COPY') return ctx.stopCopyBytes;
  if (s === 'PRE_COPY' || s === 'PRE_COPY_P2P') return ctx.initialBytes + ctx.dirtyBytes + p.finalBytes;
  return (p.initialBytes ?? ctx.maxBytes) + p.finalBytes;
}

const isPrecopy = (s: VfioState) => s === 'PRE_COPY' || s === 'PRE_COPY_P2P';

/** What VFIO_MIG_GET_PRECOPY_INFO answers in `ctx` (`precopy`: the device is in PRE_COPY or PRE_COPY_P2P). */
export function precopyInfoAnswer(ctx: VfioDeviceContext, precopy: boolean): Extract<VfioResult, { op: 'VFIO_MIG_GET_PRECOPY_INFO' }> {
  const op = 'VFIO_MIG_GET_PRECOPY_INFO' as const;
  const p = ctx.profile;
  // mtty_precopy_ioctl: the fd first (no fd, or the resuming one), then the device state, then the session
  if (p.userFds && ctx.fd === null) return { op, ok: false, errno: 'EBADF' };
  if (p.userFds && ctx.fd === 'resuming') return { op, ok: false, errno: 'ENOTTY' };
  if (!precopy) return { op, ok: false, errno: 'EINVAL' };
  const bad = fdProblem(ctx, 'saving');
  if (bad) return { op, ok: false, errno: bad };
  return { op, ok: true, initialBytes: ctx.initialBytes, dirtyBytes: ctx.dirtyBytes, reinit: ctx.precopyInfoV2 && ctx.reinitPending };
}

/**
 * PRECOPY_INFO as a read-back: its answer where asking changes nothing — it succeeds and has no REINIT to
 * report (a report is given once: asking would take it) — else null, not asked.
 */
export function precopyReadBack(ctx: VfioDeviceContext, s: VfioState): { initialBytes: number; dirtyBytes: number; reinit: boolean } | null {
  const r = precopyInfoAnswer(ctx, isPrecopy(s));
  if (!r.ok || r.reinit) return null;
  return { initialBytes: r.initialBytes, dirtyBytes: r.dirtyBytes, reinit: r.reinit };
}

/**
 * The data_fd a user can still reach (a read-back, no effect on the device): the direction of the live
 * session — with `userFds`, only through the fd the user holds (a closed or disabled one reaches none).
 * A zero-length read(2) (saving) or write(2) (resuming) on that fd answers 0 while the driver serves it
 * and an errno once the session has ended (mtty_save_read checks `disabled` before it looks at the length;
 * mtty_resume_write checks the end offset against the image size first, which a zero length never
 * exceeds, then `disabled`), so a user can tell this after any step without moving a byte.
 */
export function liveDataFd(ctx: VfioDeviceContext): DataFdKind | null {
  if (!ctx.profile.userFds) return ctx.session;
  return ctx.fd !== null && ctx.fd === ctx.session ? ctx.fd : null;
}

/**
 * Every single-step arc of the kernel's FSM, once, with the feature sets whose drivers must implement it:
 * the union of `arcsOf(set)` over the four sets (drivers/vfio/vfio_main.c lists these arcs per feature set
 * in its comment above vfio_mig_get_next_state(); include/uapi/linux/vfio.h explains each one). The chart
 * takes each as its own `ARC` transition.
 */
export interface KernelArc {
  readonly from: VfioState;
  readonly to: VfioState;
  readonly session: SessionEffect;
  /** The feature sets in which vfio_mig_get_next_state() ever hands this arc to the driver. */
  readonly usedIn: readonly FeatureSet[];
}

export const KERNEL_ARCS: readonly KernelArc[] = (() => {
  const byKey = new Map<string, { from: VfioState; to: VfioState; session: SessionEffect; usedIn: FeatureSet[] }>();
  for (const set of FEATURE_SETS) {
    for (const a of arcsOf(set)) {
      const k = `${a.from}>${a.to}`;
      const row = byKey.get(k) ?? { from: a.from, to: a.to, session: a.session, usedIn: [] };
      byKey.set(k, row);
      row.usedIn.push(set);
    }
  }
  return [...byKey.values()].sort((x, y) => stateValue(x.from) - stateValue(y.from) || stateValue(x.to) - stateValue(y.to));
})();

/**
 * The feature condition under which an arc is used, as the fewest literals over P2P and PRE_COPY that
 * hold in exactly the arc's feature sets (e.g. RUNNING → STOP: `!hasP2P`; PRE_COPY → STOP_COPY:
 * `hasPreCopy && !hasP2P`; STOP → STOP_COPY: none, every set uses it).
 */
export function featureCondition(usedIn: readonly FeatureSet[]): { readonly feature: 'P2P' | 'PRE_COPY'; readonly has: boolean }[] {
  type Lit = { feature: 'P2P' | 'PRE_COPY'; has: boolean };
  const options: (Lit | null)[][] = [[null, { feature: 'P2P', has: true }, { feature: 'P2P', has: false }], [null, { feature: 'PRE_COPY', has: true }, { feature: 'PRE_COPY', has: false }]];
  const candidates = options[0]!.flatMap((p) => options[1]!.map((q) => [p, q].filter((x): x is Lit => x !== null)));
  candidates.sort((x, y) => x.length - y.length);
  const want = [...usedIn].sort().join(',');
  const fit = candidates.find((lits) => FEATURE_SETS.filter((set) => lits.every((l) => hasFeature(set, l.feature) === l.has)).sort().join(',') === want);
  if (!fit) throw new Error(`no feature condition for the sets ${want}`);
  return fit;
}

const result = (r: VfioResult) => r;

/**
 * An `ARC` the machine raised itself: a bare `{ type: 'ARC' }` from outside (xstate/graph sends one for
 * every event type it finds) matches no transition and is ignored.
 */
function isArc(e: VfioDeviceEvent | VfioArcEvent): e is VfioArcEvent {
  return e.type === 'ARC' && Array.isArray((e as Partial<VfioArcEvent>).path) && typeof (e as Partial<VfioArcEvent>).at === 'number' && typeof (e as Partial<VfioArcEvent>).request === 'object';
}

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
    events: {} as VfioDeviceEvent | VfioArcEvent,
    input: {} as VfioDeviceInput,
  },
  guards: {
    // The SET's refusals, each the question vfio_mig_get_next_state() asks (drivers/vfio/vfio_main.c;
    // ./vfioPath.ts), in its order; the first that holds answers -EINVAL before any arc.
    /** The target is no state: a number ≥ VFIO_DEVICE_STATE_NR, or garbage. */
    targetOutOfRange: ({ event }) => event.type === 'SET_STATE' && targetState(event.target) === null,
    /** The device is in ERROR and the target is another state (only a SET to ERROR itself is a no-op). */
    deviceInError: ({ event }, params: { from: VfioState }) => setRefusal(event, params.from, null) === 'device-in-error',
    /** The target is ERROR, which no SET may ask for. */
    targetIsError: ({ event }, params: { from: VfioState }) => setRefusal(event, params.from, null) === 'error-requested',
    /** The target needs a feature the device lacks (RUNNING_P2P without P2P, PRE_COPY without PRE_COPY). */
    targetUnsupported: ({ context, event }, params: { from: VfioState }) => setRefusal(event, params.from, context.features) === 'target-unsupported',
    /** The table's path from here to the target meets ERROR: a blocked arc (STOP_COPY → PRE_COPY, …). */
    arcBlocked: ({ context, event }, params: { from: VfioState }) => setRefusal(event, params.from, context.features) === 'arc-blocked',
    /** The SET asks for the state the device is already in (a no-op success, even ERROR → ERROR). */
    targetIsCurrent: ({ event }, params: { from: VfioState }) => event.type === 'SET_STATE' && targetState(event.target) === params.from,
    /** The SET carries a driver failure this profile can inject (the arc it names fails: driverFailsArc). */
    faultRequested: ({ context, event }) => event.type === 'SET_STATE' && event.fault !== undefined && context.profile.injectableFaults,
    /** The driver serves a data session of this kind. */
    servesSession: ({ context }, params: { kind: DataFdKind }) => context.session === params.kind,
    /** The SET asks for `target` (by name or by number). */
    targetIs: ({ event }, params: { target: VfioState }) => event.type === 'SET_STATE' && targetState(event.target) === params.target,
    /** Every arc of the path is taken: the device is where the SET asked. */
    pathEnds: ({ event }) => isArc(event) && event.at === event.path.length - 1,
    /** The path's next arc ends in `to`. */
    pathContinuesTo: ({ event }, params: { to: VfioState }) => isArc(event) && event.path[event.at + 1] === params.to,
    /** The device has VFIO_MIGRATION_P2P. */
    hasP2P: ({ context }) => hasFeature(context.features, 'P2P'),
    /** The device has VFIO_MIGRATION_PRE_COPY. */
    hasPreCopy: ({ context }) => hasFeature(context.features, 'PRE_COPY'),
    /** The driver fails this arc (an injected fault at this arc number, for profiles that allow faults). */
    driverFailsArc: ({ context, event }) => {
      if (!isArc(event) || !context.profile.injectableFaults) return false;
      const f = event.request.fault;
      return f !== undefined && Number.isInteger(f.atArc) && f.atArc === event.at;
    },
    /** …and cannot restore a valid state: the device falls into ERROR. */
    faultLeavesError: ({ event }) => isArc(event) && event.request.fault?.leaves === 'ERROR',
    /** RESUMING → STOP with less than the driver's image loaded: its own check fails the arc. */
    imageIncomplete: ({ context, event }) =>
      isArc(event) && arcCheckFails(context, event.path[event.at]!, event.path[event.at + 1]!) !== null,
    // The data_fd calls' cases, each its own transition (the drivers' read/write/ioctl handlers,
    // e.g. samples/vfio-mdev/mtty.c's mtty_save_read, mtty_resume_write and mtty_precopy_ioctl).
    /** The user holds no data_fd (profiles with `userFds`): the call has no fd to go to, -EBADF. */
    noDataFd: ({ context }) => context.profile.userFds && context.fd === null,
    /** The user's data_fd is the resuming one: it has no PRECOPY_INFO ioctl, -ENOTTY. */
    resumingDataFd: ({ context }) => context.profile.userFds && context.fd === 'resuming',
    /** The call cannot reach a live session of this kind: no such fd, or the session it belonged to ended. */
    sessionUnreachable: ({ context }, params: { kind: DataFdKind }) => fdProblem(context, params.kind) !== null,
    /** PRECOPY_INFO has a re-initialisation to report (after the v2 opt-in). */
    reinitToReport: ({ context }) => context.precopyInfoV2 && context.reinitPending,
    /** STOP_COPY: bytes of the final state are still to be read. */
    finalStateLeft: ({ context }) => context.stopCopyBytes > 0,
    /** Precopy: initial bytes are still to be read (a read drains them before the dirty ones). */
    initialDataLeft: ({ context }) => context.initialBytes > 0,
    /** Precopy: the initial bytes are drained and dirty bytes are left. */
    dirtyDataLeft: ({ context }) => context.dirtyBytes > 0,
    /** A write past the driver's image size (checked before the fd's own state, as mtty_resume_write does). */
    writeOverflows: ({ context }) => {
      const p = context.profile;
      const r = p.resuming;
      if (!r || !p.userFds || context.fd !== 'resuming') return false;
      const pos = context.session === 'resuming' ? context.loadedBytes : 0;
      return pos + p.writeChunk > r.imageBytes;
    },
    /** This write completes the image's header, and the header is corrupt: the driver rejects it. */
    corruptHeader: ({ context, event }) => {
      const r = context.profile.resuming;
      if (!r || event.type !== 'DATA_FD_WRITE' || event.data !== 'corrupt') return false;
      const loaded = context.loadedBytes + context.profile.writeChunk;
      return context.loadedBytes < r.headerBytes && loaded >= r.headerBytes;
    },
    /** The user opted into PRECOPY_INFOv2: a reconfiguration re-initialises the precopy data. */
    optedIntoV2: ({ context }) => context.precopyInfoV2,
  },
  actions: {
    /** Host hook: a device ioctl was made (no-op in the model; see DeviceRequestHook). */
    deviceRequest: (_: unknown, _params: DeviceRequestHook) => {},
    /** Host hook: a data_fd read, write or close was made (no-op in the model; see DataFdOperationHook). */
    dataFdOperation: (_: unknown, _params: DataFdOperationHook) => {},
    /** The kernel refused the SET: -EINVAL, the device stays. */
    refuseSet: assign(({ event }, params: { from: VfioState }) => {
      if (event.type !== 'SET_STATE') return {};
      const target = targetState(event.target) ?? (event.target as VfioState | number);
      return { last: result({ op: 'SET_STATE', target, ok: false, errno: 'EINVAL', path: [params.from] }) };
    }),
    /**
     * The path is resolved (every vfio_mig_get_next_state() call of the drivers' loop, ./vfioPath.ts);
     * its first arc is raised (a SET to the current state is taken before, by acceptNoopSet).
     */
    resolvePath: raise(({ context, event }, params: { from: VfioState }): VfioArcEvent => {
      const request = event as Extract<VfioDeviceEvent, { type: 'SET_STATE' }>;
      const target = targetState(request.target)!;
      const r = resolveVfioPath(params.from, target, context.features);
      if (!r.ok) throw new Error(`resolvePath after the refusal guards: ${r.reason}`);
      return { type: 'ARC', request, from: params.from, target, path: r.path, dataFd: r.dataFd, at: 0 };
    }),
    /** On entering a state by an arc, the drivers' loop goes on: the next arc is raised. */
    continuePath: enqueueActions<VfioDeviceContext, VfioDeviceEvent | VfioArcEvent, { state: VfioState }, VfioDeviceEvent | VfioArcEvent, never, never, never, never, never>(({ event, enqueue }, params) => {
      if (event.type === 'ARC' && event.path[event.at + 1] === params.state) enqueue.raise({ ...event, at: event.at + 1 });
    }),
    openSavingSession: assign(({ context }) => ARC_EFFECTS.openSavingSession(context)),
    openResumingSession: assign(({ context }) => ARC_EFFECTS.openResumingSession(context)),
    endSession: assign(({ context }) => ARC_EFFECTS.endSession(context)),
    streamFinalState: assign(({ context }) => ARC_EFFECTS.streamFinalState(context)),
    /** A SET to the current state succeeds with no arc and returns no data_fd (the user's fd stays as it is). */
    acceptNoopSet: assign((_, params: { from: VfioState }) => ({
      last: result({ op: 'SET_STATE', target: params.from, ok: true, path: [params.from], dataFd: null }),
    })),
    /** The SET succeeded; the user holds the data_fd it returned (the previous one is closed, as QEMU does). */
    finishSet: assign(({ context, event }) => {
      if (event.type !== 'ARC') return {};
      const last = result({ op: 'SET_STATE', target: event.target, ok: true, path: event.path, dataFd: event.dataFd });
      return context.profile.userFds && event.dataFd ? { fd: event.dataFd, last } : { last };
    }),
    /** The SET failed at this arc: the arcs before it are committed (path: the states passed). */
    failSet: assign(({ context, event }) => {
      if (event.type !== 'ARC') return {};
      const errno = arcCheckFails(context, event.path[event.at]!, event.path[event.at + 1]!) ?? 'EIO';
      return { last: result({ op: 'SET_STATE', target: event.target, ok: false, errno, path: event.path.slice(0, event.at + 1) }) };
    }),
    /** A driver that falls into ERROR serves no session any more. */
    loseDeviceState: assign({ session: null, initialBytes: 0, dirtyBytes: 0, reinitPending: false, stopCopyBytes: 0 }),
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
      const last = precopyInfoAnswer(context, params.precopy);
      return last.ok ? { reinitPending: false, last } : { last };
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

/**
 * The hook action after a device ioctl made in state `from` (its params read the recorded result). A SET
 * reports once, when it ends (on its last `ARC`): the request and the state it was made in ride on the event.
 */
const requestHook = (from: VfioState | null) =>
  ({
    type: 'deviceRequest',
    params: ({ context, event }: { context: VfioDeviceContext; event: VfioDeviceEvent | VfioArcEvent }) =>
      (event.type === 'ARC'
        ? { request: event.request, from: event.from, result: context.last! }
        : { request: event, from, result: context.last! }) as DeviceRequestHook,
  }) as const;
const fdHook = (state: VfioState) =>
  ({
    type: 'dataFdOperation',
    params: ({ context, event }: { context: VfioDeviceContext; event: VfioDeviceEvent | VfioArcEvent }) => ({ operation: event, state, result: context.last! }) as DataFdOperationHook,
  }) as const;

const SOURCE_ARCS = 'drivers/vfio/vfio_main.c: vfio_mig_get_next_state (arc lists per feature set); include/uapi/linux/vfio.h: enum vfio_device_mig_state';

/** The guard of a kernel arc: the path goes there, under the arc's feature condition. */
function arcGuard(arc: KernelArc) {
  const lits = featureCondition(arc.usedIn).map((l) => {
    const g = l.feature === 'P2P' ? ('hasP2P' as const) : ('hasPreCopy' as const);
    return l.has ? g : not(g);
  });
  const path = { type: 'pathContinuesTo' as const, params: { to: arc.to } };
  // Typed as the path guard alone: XState's `and`/`not` cannot infer this setup's guard names outside the
  // config. A wrong name would throw when evaluated; test/vfioDevice.test.ts takes every arc.
  return (lits.length === 0 ? path : and([path, ...lits] as never)) as typeof path;
}

/**
 * The `ARC` transitions of state `s`, first match wins: the path is done; the driver's own check or an
 * injected failure ends the SET at this arc (staying, or falling into ERROR); else one transition per
 * kernel arc out of `s`, each doing to the data session what vfio.h says that arc does.
 *
 * The kernel side, in our words: drivers/vfio/vfio_main.c never hands a driver a multi-step request.
 * vfio_mig_get_next_state() looks up the next state towards the target in its full-feature table and,
 * while that state needs a flag the device lacks, looks again from there; the driver performs that one
 * arc and asks again until it has arrived. The comment above the function lists, per feature set, the
 * arcs a driver must therefore implement — these transitions, with `usedIn` naming the sets. What each
 * arc does to the data_fd is include/uapi/linux/vfio.h's FSM comment: entering the saving group
 * (PRE_COPY, PRE_COPY_P2P, STOP_COPY) from outside starts a saving session, moving within it keeps the
 * session, leaving it ends it; STOP → RESUMING starts a resuming session and RESUMING → STOP ends it.
 */
function arcTransitions(s: VfioState) {
  const hook = requestHook(null);
  const ends = [{ guard: 'pathEnds' as const, actions: ['finishSet' as const, hook] }];
  if (s === 'ERROR') return ends;
  return [
    ...ends,
    ...(s === 'RESUMING' ? [{ guard: 'imageIncomplete' as const, actions: ['failSet' as const, hook] }] : []),
    { guard: and(['driverFailsArc', 'faultLeavesError']), target: 'ERROR', actions: ['loseDeviceState' as const, 'failSet' as const, hook] },
    { guard: 'driverFailsArc' as const, actions: ['failSet' as const, hook] },
    ...KERNEL_ARCS.filter((a) => a.from === s).map((a) => ({
      guard: arcGuard(a),
      target: a.to,
      actions: arcEffects(a.from, a.to),
      description: `${a.from} -> ${a.to}: ${SESSION_WORDS[a.session]}`,
      meta: { source: SOURCE_ARCS, session: a.session, usedIn: a.usedIn },
    })),
  ];
}

/** What an arc does to the data session, in words (vfio.h's FSM comment, paraphrased). */
const SESSION_WORDS: Readonly<Record<SessionEffect, string>> = {
  'opens-saving': 'opens a saving data_fd session',
  'opens-resuming': 'opens a resuming data_fd session',
  keeps: 'the saving session goes on',
  closes: 'ends the data_fd session',
  none: 'no data_fd session involved',
};

/**
 * The SET's refusal guards, in the order vfio_mig_get_next_state() checks. In ERROR only the first two can
 * hold (every other target is refused as the device's state), and deviceInError only there.
 */
const SET_REFUSALS = ['targetOutOfRange', 'deviceInError', 'targetIsError', 'targetUnsupported', 'arcBlocked'] as const;

function stateNode(s: VfioState) {
  const precopy = isPrecopy(s);
  const precopyInfo = [{ type: 'precopyInfo' as const, params: { precopy } }, requestHook(s)];
  const readChunk = [{ type: 'readChunk' as const, params: { state: s } }, fdHook(s)];
  const writeChunk = ['writeChunk' as const, fdHook(s)];
  const closeFd = ['closeFd' as const, fdHook(s)];
  return {
    description: STATE_MEANING[s],
    meta: { source: 'include/uapi/linux/vfio.h: enum vfio_device_mig_state', value: stateValue(s) },
    tags: inSavingGroup(s) ? ['saving'] : s === 'RESUMING' ? ['resuming'] : [],
    // ERROR is never a step of a path (only a failure's landing), so a SET goes on from every other state.
    ...(s === 'ERROR' ? {} : { entry: { type: 'continuePath' as const, params: { state: s } } }),
    on: {
      SET_STATE: [
        ...SET_REFUSALS.filter((g) => (s === 'ERROR' ? g === 'targetOutOfRange' || g === 'deviceInError' : g !== 'deviceInError')).map((g) => ({
          guard: { type: g, params: { from: s } },
          actions: [{ type: 'refuseSet' as const, params: { from: s } }, requestHook(s)],
        })),
        // a SET to the state the device is in: the drivers' loop never runs, no arc, no data_fd
        { guard: { type: 'targetIsCurrent' as const, params: { from: s } }, actions: [{ type: 'acceptNoopSet' as const, params: { from: s } }, requestHook(s)] },
        // (in ERROR every SET is refused above: no path is ever resolved there)
        ...(s === 'ERROR'
          ? []
          : [
              // an accepted SET the driver is told to fail on one arc (the failure is the ARC transitions' business)
              { guard: 'faultRequested' as const, actions: { type: 'resolvePath' as const, params: { from: s } }, description: 'a SET whose path a driver failure cuts short' },
              // an accepted SET: one transition per entry of the kernel's table (vfio_from_fsm_table[s][target]),
              // since each (state, target) has its own path — the multi-step ones are where drivers go wrong
              ...VFIO_STATES.filter((t) => t !== s && t !== 'ERROR').map((t) => ({
                guard: { type: 'targetIs' as const, params: { target: t } },
                actions: { type: 'resolvePath' as const, params: { from: s } },
                description: `SET ${t}: the kernel's path from ${s}`,
              })),
            ]),
      ],
      ARC: arcTransitions(s),
      VFIO_MIG_GET_PRECOPY_INFO: [
        // mtty_precopy_ioctl: the fd first (no fd, or the resuming one), then the device state, then the session
        ...(['noDataFd', 'resumingDataFd'] as const).map((guard) => ({ guard, actions: precopyInfo })),
        ...(precopy
          ? [
              { guard: { type: 'sessionUnreachable' as const, params: { kind: 'saving' as const } }, actions: precopyInfo },
              { guard: 'reinitToReport' as const, actions: precopyInfo, description: 'reports VFIO_PRECOPY_INFO_REINIT, once' },
            ]
          : []),
        { actions: precopyInfo, ...(precopy ? {} : { description: '-EINVAL outside PRE_COPY(_P2P)' }) },
      ],
      VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: { actions: [{ type: 'reportDataSize' as const, params: { state: s } }, requestHook(s)] },
      DATA_FD_READ: !inSavingGroup(s)
        ? { actions: readChunk, description: 'no saving session outside the saving group' }
        : [
            { guard: { type: 'sessionUnreachable' as const, params: { kind: 'saving' as const } }, actions: readChunk },
            s === 'STOP_COPY'
              ? { guard: 'finalStateLeft' as const, actions: readChunk }
              : { guard: 'initialDataLeft' as const, actions: readChunk, description: 'initial bytes first' },
            ...(s === 'STOP_COPY' ? [] : [{ guard: 'dirtyDataLeft' as const, actions: readChunk, description: 'then dirty bytes' }]),
            { actions: readChunk, description: s === 'STOP_COPY' ? 'end of stream: 0 bytes, for good' : 'drained for now: -ENOMSG, or 0 for drivers without it' },
          ],
      DATA_FD_WRITE:
        s !== 'RESUMING'
          ? { actions: writeChunk, description: 'no resuming session outside RESUMING' }
          : [
              { guard: 'writeOverflows' as const, actions: writeChunk },
              { guard: { type: 'sessionUnreachable' as const, params: { kind: 'resuming' as const } }, actions: writeChunk },
              { guard: 'corruptHeader' as const, actions: writeChunk },
              { actions: writeChunk },
            ],
      DATA_FD_CLOSE: [{ guard: 'noDataFd' as const, actions: closeFd }, { actions: closeFd }],
      ...(precopy
        ? {
            GUEST_DIRTIES_DEVICE: { actions: 'dirtyDeviceState' as const },
            GUEST_REINITS_DEVICE: [{ guard: 'optedIntoV2' as const, actions: 'reinitDeviceState' as const }, { actions: 'reinitDeviceState' as const }],
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
    // one transition per session the reset ends (it disables the fd: mtty_reset → mtty_disable_files)
    VFIO_DEVICE_RESET: [
      { guard: { type: 'servesSession', params: { kind: 'saving' } }, target: '.RUNNING', reenter: true, actions: ['resetDevice', requestHook(null)], description: 'ends the saving session' },
      { guard: { type: 'servesSession', params: { kind: 'resuming' } }, target: '.RUNNING', reenter: true, actions: ['resetDevice', requestHook(null)], description: 'ends the resuming session' },
      { target: '.RUNNING', reenter: true, actions: ['resetDevice', requestHook(null)], description: 'no data session to end' },
    ],
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
