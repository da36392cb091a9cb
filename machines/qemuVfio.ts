/**
 * The VFIO side of QEMU: how hw/vfio/migration.c drives one device, on either host. QEMU holds each of
 * its devices as a `DeviceRecord` (the device machine's state and context, and whether QEMU holds a
 * data_fd) and every request it makes goes through the device machine of ./vfioDevice.ts — so a request
 * the kernel would refuse comes back as -EINVAL here exactly as it would from the ioctl, and QEMU reacts
 * to it as vfio_migration_set_state does.
 *
 * Follows (QEMU 10.0 / master ece408818d, shared/reference/qemu-migration.md §c):
 *  - vfio_save_setup: RUNNING → PRE_COPY (recover RUNNING) when the device has PRE_COPY and is RUNNING;
 *    a device already STOP (guest paused before the migration) skips precopy;
 *  - vfio_save_iterate: one chunk per round, sent on the stream (DEV_DATA_STATE, vfio_save_block);
 *    VFIO_MIG_FLAG_DEV_INIT_DATA_SENT once initial bytes reach 0 with switchover-ack on;
 *  - the VM state change handlers (`vmStateChange`): "prepare" (P2P devices only) PRE_COPY →
 *    PRE_COPY_P2P, else → RUNNING_P2P; "main": running → RUNNING; stopped → STOP_COPY from a PRE_COPY
 *    state when the new run state is finish-migrate or paused, else STOP. Both use the "or reset" variant;
 *  - vfio_save_complete_precopy: → STOP_COPY (recover STOP), read to EOF; vfio_save_cleanup: close the
 *    data_fd, STOP_COPY → STOP;
 *  - MIG_EVENT_PRECOPY_FAILED notifier: → RUNNING (or reset);
 *  - destination: vfio_load_setup → RESUMING (recover: the current state); vfio_load_cleanup closes the
 *    data_fd at the end of the load; the guest start (handlers above) takes RESUMING → RUNNING_P2P → RUNNING.
 *  - vfio_migration_set_state (`setState`): on a failed SET, SET the recover state; if there is none
 *    (ERROR) or that fails too, VFIO_DEVICE_RESET (the device is RUNNING after it; a failed reset is
 *    hw_error, which the device machine never gives). A SET that hands out a new data_fd while QEMU still
 *    holds one is -EBADF ("data_fd out of sync"): the device did move, the new fd is closed.
 */
import { type AnyActorScope, initialTransition } from 'xstate';
import { inertScope } from './inertScope.js';
import { type FeatureSet, type VfioState, isSupported } from './vfioArcs.js';
import { type VfioDeviceContext, type VfioDeviceEvent, type VfioDeviceInput, vfioDeviceMachine } from './vfioDevice.js';

/** QEMU's handle on one device: the device machine's state value and context, and QEMU's data_fd. */
export interface DeviceRecord {
  readonly state: VfioState;
  readonly context: VfioDeviceContext;
  /** VFIOMigration.data_fd != -1: QEMU holds a data_fd (from the last SET that returned one, until cleanup). */
  readonly fd: boolean;
}

/** The device as the machine starts it (RUNNING, no session). */
export function initialDevice(input: VfioDeviceInput): DeviceRecord {
  const [snap] = initialTransition(vfioDeviceMachine, input);
  return { state: snap.value as VfioState, context: snap.context, fd: false };
}

/**
 * One inert actor scope for every device call (XState's transition() helper would build a throw-away
 * actor per call, most of the cost of a step). The device machine has no side effects to run.
 */
let scope: AnyActorScope | null = null;
const deviceScope = (): AnyActorScope => (scope ??= inertScope(vfioDeviceMachine, { features: 'STOP_COPY' }));

/** One call into the device (an ioctl, a read or write on its data_fd, or guest activity). */
export function deviceCall(dev: DeviceRecord, event: VfioDeviceEvent): DeviceRecord {
  const snap = vfioDeviceMachine.resolveState({ value: dev.state, context: dev.context });
  const next = vfioDeviceMachine.transition(snap, event, deviceScope());
  return { state: next.value as VfioState, context: next.context, fd: dev.fd };
}

/** The result of a SET, and the device after it. `refused` says what went wrong, if anything. */
export interface SetResult {
  readonly dev: DeviceRecord;
  readonly refused: string | null;
}

/** The recover state a caller of vfio_migration_set_state passes; 'ERROR' means "reset on failure". */
export type Recover = VfioState;

function set(dev: DeviceRecord, target: VfioState): { dev: DeviceRecord; ok: boolean; newFd: boolean; errno: string } {
  const next = deviceCall(dev, { type: 'SET_STATE', target });
  const last = next.context.last;
  const ok = last?.op === 'SET_STATE' && last.ok;
  return { dev: next, ok, newFd: ok && last.dataFd !== null, errno: last?.op === 'SET_STATE' && !last.ok ? last.errno : '' };
}

/** vfio_migration_set_state: skip when already there; otherwise SET, and on failure recover or reset. */
export function setState(dev: DeviceRecord, target: VfioState, recover: Recover = 'ERROR'): SetResult {
  if (dev.state === target) return { dev, refused: null };
  const r = set(dev, target);
  if (r.ok) {
    if (r.newFd && dev.fd) return { dev: r.dev, refused: `${dev.state} -> ${target}: data_fd out of sync (-EBADF)` };
    return { dev: { ...r.dev, fd: dev.fd || r.newFd }, refused: null };
  }
  const refused = `${dev.state} -> ${target}: -${r.errno}`;
  if (recover !== 'ERROR') {
    const back = r.dev.state === recover ? { dev: r.dev, ok: true } : set(r.dev, recover);
    if (back.ok) return { dev: back.dev, refused };
  }
  return { dev: deviceCall(r.dev, { type: 'VFIO_DEVICE_RESET' }), refused: `${refused}, device reset` };
}

export const hasPreCopy = (f: FeatureSet) => isSupported('PRE_COPY', f);
export const hasP2P = (f: FeatureSet) => isSupported('RUNNING_P2P', f);
export const inPreCopy = (s: VfioState) => s === 'PRE_COPY' || s === 'PRE_COPY_P2P';

/** Units the device still reports through PRECOPY_INFO (initial + dirty), or 0 outside precopy. */
export function precopyPending(dev: DeviceRecord): number {
  return inPreCopy(dev.state) ? dev.context.initialBytes + dev.context.dirtyBytes : 0;
}

/** Read one chunk from the saving data_fd; `units` is what came out (0 at EOF or on an error). */
export function readChunk(dev: DeviceRecord): { dev: DeviceRecord; units: number } {
  const d = deviceCall(dev, { type: 'DATA_FD_READ' });
  const last = d.context.last;
  return { dev: d, units: last?.op === 'DATA_FD_READ' && last.ok ? last.bytes : 0 };
}

/** Read the STOP_COPY stream to EOF; returns the device and how many units came out. */
export function readToEof(dev: DeviceRecord): { dev: DeviceRecord; units: number } {
  let d = dev;
  let units = 0;
  for (let guard = 0; guard < 64; guard++) {
    const r = readChunk(d);
    d = r.dev;
    if (r.units === 0) break;
    units += r.units;
  }
  return { dev: d, units };
}

/** vfio_migration_cleanup: QEMU closes its data_fd. */
export const closeFd = (dev: DeviceRecord): DeviceRecord => (dev.fd ? { ...dev, fd: false } : dev);

/**
 * A pass over every device, in order: `request(dev, i)` names the SET to make (and its recover state),
 * or null for none. Returns the devices after the pass and the first failure, added to `refused`.
 */
export function eachDevice(
  devs: readonly DeviceRecord[],
  refused: string | null,
  request: (dev: DeviceRecord, i: number) => readonly [VfioState, Recover] | VfioState | null,
): { devs: DeviceRecord[]; refused: string | null } {
  const out = [...devs];
  let first = refused;
  out.forEach((d, i) => {
    const r = request(d, i);
    if (r === null) return;
    const [target, recover] = typeof r === 'string' ? [r, 'ERROR' as const] : r;
    const s = setState(d, target, recover);
    out[i] = s.dev;
    if (s.refused) first ??= `device ${i}: ${s.refused}`;
  });
  return { devs: out, refused: first };
}

/** The run states QEMU's VM state handlers distinguish (system/runstate.c, hw/vfio/migration.c). */
export type VmRunState = 'running' | 'paused' | 'finish-migrate' | 'postmigrate' | 'inmigrate';

/**
 * The VM state change handlers of every device (vm_state_notify): all "prepare" handlers (P2P devices)
 * first, then all "main" ones. `to` is the new run state.
 */
export function vmStateChange(devs: readonly DeviceRecord[], refused: string | null, to: VmRunState): { devs: DeviceRecord[]; refused: string | null } {
  const prepared = eachDevice(devs, refused, (d) => (hasP2P(d.context.features) ? (d.state === 'PRE_COPY' ? 'PRE_COPY_P2P' : 'RUNNING_P2P') : null));
  return eachDevice(prepared.devs, prepared.refused, (d) => {
    if (to === 'running') return 'RUNNING';
    return inPreCopy(d.state) && (to === 'finish-migrate' || to === 'paused') ? 'STOP_COPY' : 'STOP';
  });
}
