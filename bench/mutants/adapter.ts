/**
 * Driving a ReferenceDevice (or a mutant) from model events, and what the test sees of it: one
 * observation per step with every field present (null where it does not apply).
 */
import type { ObservationRecord, SuiteStep, SutAdapter } from '../../src/testgen/index.js';
import { type Fault, type ReferenceDevice, STATE_NAMES, stateName } from './device.js';

export interface DeviceObservation {
  readonly state: string;
  readonly op: 'SET_STATE' | 'VFIO_DEVICE_RESET' | 'VFIO_MIG_GET_PRECOPY_INFO' | 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE' | 'DATA_FD_READ' | 'DATA_FD_WRITE' | null;
  readonly ok: boolean | null;
  readonly errno: string | null;
  readonly path: readonly string[] | null;
  readonly dataFd: 'saving' | 'resuming' | null;
  readonly bytes: number | null;
  readonly initialBytes: number | null;
  readonly dirtyBytes: number | null;
  readonly reinit: boolean | null;
  readonly stopCopyLength: number | null;
  /** Read-backs after the step (src/testgen/observe.ts): the live data_fd's direction, MIG_DATA_SIZE… */
  readonly liveFd: 'saving' | 'resuming' | null;
  readonly dataSize: number;
  /** …and PRECOPY_INFO, asked where the suite predicts a value (null: not asked, or it failed). */
  readonly precopyInitial: number | null;
  readonly precopyDirty: number | null;
  readonly precopyReinit: boolean | null;
}

/** A model event as suite steps carry it. */
export interface DeviceEvent {
  readonly type: string;
  readonly [key: string]: unknown;
}

const NONE = {
  op: null,
  ok: null,
  errno: null,
  path: null,
  dataFd: null,
  bytes: null,
  initialBytes: null,
  dirtyBytes: null,
  reinit: null,
  stopCopyLength: null,
} as const;

/** The uAPI number of a SET target: a state name, or a number (≥ 8 in the model's out-of-range event). */
export function targetNumber(target: unknown): number {
  if (typeof target === 'number') return target;
  const i = (STATE_NAMES as readonly unknown[]).indexOf(target);
  if (i < 0) throw new Error(`SET_STATE target ${JSON.stringify(target)} is not a uAPI state`);
  return i;
}

function faultOf(f: unknown): Fault | undefined {
  if (f === undefined || f === null) return undefined;
  const o = f as { atArc?: unknown; leaves?: unknown };
  if (typeof o.atArc !== 'number' || (o.leaves !== 'reached' && o.leaves !== 'ERROR')) throw new Error(`bad fault ${JSON.stringify(f)}`);
  return { atArc: o.atArc, leaves: o.leaves };
}

/**
 * The read-backs a user takes after a step, through the uAPI only: a zero-length read, then a
 * zero-length write (whichever the driver serves answers 0; neither moves a byte), and MIG_DATA_SIZE.
 */
export function readBack(dev: ReferenceDevice, askPrecopyInfo: boolean): Pick<DeviceObservation, ReadBackField> {
  const liveFd = dev.read(0).ok ? 'saving' : dev.write(0).ok ? 'resuming' : null;
  const p = askPrecopyInfo ? dev.precopyInfo() : null;
  return {
    liveFd,
    dataSize: dev.migDataSize().stopCopyLength,
    precopyInitial: p?.ok ? p.initialBytes : null,
    precopyDirty: p?.ok ? p.dirtyBytes : null,
    precopyReinit: p?.ok ? p.reinit : null,
  };
}

type ReadBackField = 'liveFd' | 'dataSize' | 'precopyInitial' | 'precopyDirty' | 'precopyReinit';

/**
 * Apply one model event to the device; what the test observes afterwards (the call, then the
 * read-backs; PRECOPY_INFO among them when `askPrecopyInfo`, i.e. where the suite predicts its answer).
 */
export function applyEvent(dev: ReferenceDevice, ev: DeviceEvent, askPrecopyInfo = false): DeviceObservation {
  const o = applyCall(dev, ev);
  return { ...o, ...readBack(dev, askPrecopyInfo) };
}

function applyCall(dev: ReferenceDevice, ev: DeviceEvent): Omit<DeviceObservation, ReadBackField> {
  const rest = (): Omit<DeviceObservation, 'op' | ReadBackField> => ({ ...NONE, state: stateName(dev.getState()) });
  switch (ev.type) {
    case 'SET_STATE': {
      const r = dev.setState(targetNumber(ev['target']), faultOf(ev['fault']));
      const path = r.path.map(stateName);
      return r.ret === 0
        ? { ...rest(), op: 'SET_STATE', ok: true, path, dataFd: r.dataFd }
        : { ...rest(), op: 'SET_STATE', ok: false, errno: r.errno, path };
    }
    case 'VFIO_DEVICE_RESET':
      dev.reset();
      return { ...rest(), op: 'VFIO_DEVICE_RESET', ok: true };
    case 'VFIO_MIG_GET_PRECOPY_INFO': {
      const r = dev.precopyInfo();
      return r.ok
        ? { ...rest(), op: 'VFIO_MIG_GET_PRECOPY_INFO', ok: true, initialBytes: r.initialBytes, dirtyBytes: r.dirtyBytes, reinit: r.reinit }
        : { ...rest(), op: 'VFIO_MIG_GET_PRECOPY_INFO', ok: false, errno: r.errno };
    }
    case 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE': {
      const r = dev.migDataSize();
      return { ...rest(), op: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE', ok: true, stopCopyLength: r.stopCopyLength };
    }
    case 'DATA_FD_READ':
    case 'DATA_FD_WRITE': {
      const r = ev.type === 'DATA_FD_READ' ? dev.read() : dev.write();
      return r.ok ? { ...rest(), op: ev.type, ok: true, bytes: r.bytes } : { ...rest(), op: ev.type, ok: false, errno: r.errno };
    }
    case 'GUEST_DIRTIES_DEVICE':
      dev.guestDirties();
      return { ...rest(), op: null };
    case 'GUEST_REINITS_DEVICE':
      dev.guestReinits();
      return { ...rest(), op: null };
    default:
      throw new Error(`the device adapter has no mapping for event ${ev.type}`);
  }
}

/** The observation right after a reset (before any step): the state and the read-backs. */
export function initialObservation(dev: ReferenceDevice): DeviceObservation {
  return { ...NONE, state: stateName(dev.getState()), ...readBack(dev, false) };
}

/**
 * The device as a system under test for src/testgen's runner: component `dev` (deviceSystem's), a new
 * device per case (reset() builds one: a fresh device is in RUNNING with nothing open, as the model's
 * initial state), each step applied through applyEvent, observed as the user sees it.
 */
export function deviceAdapter(make: () => ReferenceDevice, name: string, component = 'dev'): SutAdapter {
  let dev = make();
  let last: DeviceObservation = initialObservation(dev);
  return {
    name,
    reset: async () => {
      dev = make();
      last = initialObservation(dev);
    },
    step: async (step: SuiteStep) => {
      if (step.component !== component || step.kind !== 'env') throw new Error(`the device adapter takes environment steps of ${component} only`);
      last = applyEvent(dev, step.event, (step.observe[component]?.['precopyInitial'] ?? null) !== null);
    },
    observe: async () => ({ values: { [component]: last.state }, fields: { [component]: last as unknown as ObservationRecord } }),
    close: async () => {},
  };
}
