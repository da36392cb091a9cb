/**
 * Observations: what a system under test shows of a component after a step, predicted from the model.
 * A fixture step records, for each observed component, one flat record (every field always present,
 * null where it does not apply); a field may instead hold `{ "anyOf": [...] }` when the model allows
 * several values. The adapter of a real system returns the same records and declares, once, the fields
 * it cannot see; `runSuite` compares the rest field by field.
 *
 *  - a VFIO device: the state read back (GET), and the result of the call the step made — ok or errno,
 *    the path the kernel took, the data_fd returned, bytes moved (0 = EOF), PRECOPY_INFO's initial and
 *    dirty bytes and REINIT flag, MIG_DATA_SIZE's stop_copy_length; then the read-backs a user can take
 *    after any step without changing the device: which data_fd is still live (a zero-length read or
 *    write on it), MIG_DATA_SIZE, and PRECOPY_INFO where asking changes nothing (it succeeds with no
 *    REINIT to report; null where not asked) — so a step that leaves a session open, or a byte count
 *    wrong, shows at that step and not only when a later command happens to touch it;
 *  - a QEMU (source or destination): its MigrationStatus, its run state, the state of each of its VFIO
 *    devices (what VFIO_MIGRATION events report), and the reply to the QMP command the step sent.
 */
import { sourceStatus } from '../../machines/qemuSource.js';
import type { EventObject } from 'xstate';
import { type VfioDeviceContext, type VfioResult, liveDataFd, precopyReadBack, stopCopyLength } from '../../machines/vfioDevice.js';
import type { VfioState } from '../../machines/vfioArcs.js';
import type { AnySnapshot } from '../explorer/system.js';
import { formatValue } from '../explorer/trace.js';
import type { JsonValue } from './fixture.js';

/** A set prediction: the system may show any one of these values. */
export interface AnyOf {
  readonly anyOf: readonly JsonValue[];
}

export type ObservationRecord = Readonly<Record<string, JsonValue>>;

/**
 * What one component shows after a step. `before` is its snapshot before the step, `event` the event it
 * took in this step (null when another component stepped).
 */
export type Observer = (after: AnySnapshot, before: AnySnapshot, event: EventObject | null) => ObservationRecord;
// (an Observer is a ComponentObserver of src/explorer/system.ts whose records are JSON)

/** The fields of a device observation, in fixture order. */
export const DEVICE_FIELDS = [
  'state',
  'op',
  'ok',
  'errno',
  'path',
  'dataFd',
  'bytes',
  'initialBytes',
  'dirtyBytes',
  'reinit',
  'stopCopyLength',
  'liveFd',
  'dataSize',
  'precopyInitial',
  'precopyDirty',
  'precopyReinit',
] as const;
export type DeviceField = (typeof DEVICE_FIELDS)[number];

/** The calls a user makes; the guest's own events return nothing to the user. */
const DEVICE_CALLS = new Set([
  'SET_STATE',
  'VFIO_DEVICE_RESET',
  'VFIO_MIG_GET_PRECOPY_INFO',
  'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE',
  'DATA_FD_READ',
  'DATA_FD_WRITE',
  'DATA_FD_CLOSE',
]);

/**
 * The read-backs after a step: the live data_fd's direction (or null), MIG_DATA_SIZE's stop_copy_length,
 * and PRECOPY_INFO's answer where asking changes nothing (null: not asked — an adapter asks exactly where
 * the suite predicts a value).
 */
export interface DeviceReadBack {
  readonly liveFd: 'saving' | 'resuming' | null;
  readonly dataSize: number;
  readonly precopyInitial: number | null;
  readonly precopyDirty: number | null;
  readonly precopyReinit: boolean | null;
}

/** What the model predicts the read-backs show in a device snapshot. */
export function deviceReadBack(ctx: VfioDeviceContext, state: VfioState): DeviceReadBack {
  const p = precopyReadBack(ctx, state);
  return {
    liveFd: liveDataFd(ctx),
    dataSize: stopCopyLength(ctx, state),
    precopyInitial: p?.initialBytes ?? null,
    precopyDirty: p?.dirtyBytes ?? null,
    precopyReinit: p?.reinit ?? null,
  };
}

/**
 * The device observation of a result (`null`: no call this step) and the read-backs after it (`null`:
 * not taken — a record of the call alone, as docs/kernel-run.md's recording has).
 */
export function deviceRecord(state: string, last: VfioResult | null, readBack: DeviceReadBack | null = null): Record<DeviceField, JsonValue> {
  const r: Record<DeviceField, JsonValue> = {
    state,
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
    liveFd: readBack?.liveFd ?? null,
    dataSize: readBack?.dataSize ?? null,
    precopyInitial: readBack?.precopyInitial ?? null,
    precopyDirty: readBack?.precopyDirty ?? null,
    precopyReinit: readBack?.precopyReinit ?? null,
  };
  if (last === null) return r;
  r.op = last.op;
  r.ok = last.ok;
  if (!last.ok) r.errno = last.errno;
  switch (last.op) {
    case 'SET_STATE':
      r.path = [...last.path];
      if (last.ok) r.dataFd = last.dataFd;
      break;
    case 'DATA_FD_READ':
    case 'DATA_FD_WRITE':
      if (last.ok) r.bytes = last.bytes;
      break;
    case 'VFIO_MIG_GET_PRECOPY_INFO':
      if (last.ok) {
        r.initialBytes = last.initialBytes;
        r.dirtyBytes = last.dirtyBytes;
        r.reinit = last.reinit;
      }
      break;
    case 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE':
      r.stopCopyLength = last.stopCopyLength;
      break;
    case 'VFIO_DEVICE_RESET':
    case 'DATA_FD_CLOSE':
      break;
  }
  return r;
}

/** A VFIO device machine (machines/vfioDevice.ts) as its user sees it. */
export const observeDevice: Observer = (after, _before, event) => {
  const ctx = after.context as VfioDeviceContext;
  const called = event !== null && DEVICE_CALLS.has(event.type);
  return deviceRecord(formatValue(after.value), called ? ctx.last : null, deviceReadBack(ctx, after.value as VfioState));
};

/** The QMP commands the QEMU machines take from management. */
const QMP_COMMANDS = new Set(['MIGRATE', 'MIGRATE_INCOMING', 'MIGRATE_CANCEL', 'MIGRATE_CONTINUE', 'MIGRATE_START_POSTCOPY']);

interface QemuLikeContext {
  readonly runstate?: string;
  readonly devs?: readonly { readonly state: string }[];
  readonly qmpError?: string | null;
}

/**
 * A QEMU machine (source or destination): `status` (MigrationStatus), `runstate`, `devices` (each VFIO
 * device's state) and `qmp`: null when the step sent no command, `"ok"`, or the error class QEMU
 * answers with (`GenericError`, the only class migration commands use).
 */
export const observeQemu: Observer = (after, before, event) => {
  const a = after.context as QemuLikeContext;
  const b = before.context as QemuLikeContext;
  let qmp: JsonValue = null;
  if (event !== null && QMP_COMMANDS.has(event.type)) {
    qmp = a.qmpError && a.qmpError !== b.qmpError ? 'GenericError' : 'ok';
  }
  return {
    status: sourceStatus(after.value), // the QAPI MigrationStatus (a source region's tag, a destination's state)
    runstate: a.runstate ?? null,
    devices: (a.devs ?? []).map((d) => d.state),
    qmp,
  };
};

export const isAnyOf = (v: JsonValue | AnyOf): v is AnyOf =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && Array.isArray((v as { anyOf?: unknown }).anyOf);

/** Whether an observed value matches a prediction (a value, or a set of them). */
export function matches(expected: JsonValue, observed: JsonValue): boolean {
  if (isAnyOf(expected)) return expected.anyOf.some((x) => sameJson(x, observed));
  return sameJson(expected, observed);
}

function sameJson(a: JsonValue, b: JsonValue): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** One differing field. */
export interface FieldMismatch {
  readonly component: string;
  readonly field: string;
  readonly expected: JsonValue;
  readonly observed: JsonValue;
  /** The adapter reported no such field (and did not declare it unobservable). */
  readonly missing?: true;
}

/**
 * The fields where `observed` differs from `expected`, skipping fields declared unobservable. A field
 * the adapter did not report at all is a mismatch (reported as observed `undefined` → null), so that an
 * adapter cannot pass by leaving fields out silently.
 */
export function fieldMismatches(
  expected: Readonly<Record<string, ObservationRecord>>,
  observed: Readonly<Record<string, ObservationRecord>> | undefined,
  unobservable: Readonly<Record<string, readonly string[]>> = {},
): FieldMismatch[] {
  const out: FieldMismatch[] = [];
  for (const [component, fields] of Object.entries(expected)) {
    const skip = unobservable[component] ?? [];
    if (skip.includes('*')) continue;
    const got = observed?.[component];
    for (const [field, want] of Object.entries(fields)) {
      if (skip.includes(field)) continue;
      const have = got && field in got ? got[field]! : MISSING;
      if (have === MISSING) out.push({ component, field, expected: want, observed: null, missing: true });
      else if (!matches(want, have)) out.push({ component, field, expected: want, observed: have });
    }
  }
  return out;
}

const MISSING = Symbol('missing') as unknown as JsonValue;

/** `dev.errno: expected "EINVAL", observed "EIO"`. */
export function formatFieldMismatch(m: FieldMismatch): string {
  const seen = m.missing ? 'not reported (declare it unobservable if the system cannot show it)' : `observed ${JSON.stringify(m.observed)}`;
  return `${m.component}.${m.field}: expected ${JSON.stringify(m.expected)}, ${seen}`;
}
