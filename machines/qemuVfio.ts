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
import { type VfioDeviceContext, type VfioDeviceEvent, type VfioDeviceInput, type VfioFault, vfioDeviceMachine } from './vfioDevice.js';

/** QEMU's handle on one device: the device machine's state value and context, and QEMU's data_fd. */
export interface DeviceRecord {
  readonly state: VfioState;
  readonly context: VfioDeviceContext;
  /** VFIOMigration.data_fd != -1: QEMU holds a data_fd (from the last SET that returned one, until cleanup). */
  readonly fd: boolean;
  /**
   * A driver failure the environment has armed: the first arc of this device's next SET fails (and the
   * device stays where it was, or falls into ERROR). Absent when none is armed.
   */
  readonly fault?: VfioFault;
}

/** The environment arms a driver failure for the device's next SET. */
export const armFault = (dev: DeviceRecord, leaves: VfioFault['leaves']): DeviceRecord => ({ ...dev, fault: { atArc: 0, leaves } });

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
  return { state: next.value as VfioState, context: next.context, fd: dev.fd, ...(dev.fault ? { fault: dev.fault } : {}) };
}

/**
 * QEMU's QMP event `VFIO_MIGRATION` (qapi/vfio.json, QEMU 9.1+; sent only for devices with
 * `migration-events=on`): the state QEMU now tracks for a device. hw/vfio/migration.c
 * vfio_migration_set_device_state sends it on every update of `device_state` — after a SET that
 * succeeded (also when the data_fd check then fails with -EBADF), after falling back to the recover
 * state, and after a reset (RUNNING). QEMU 11.0 also sends `pre-copy-p2p-prepare` before it asks for
 * PRE_COPY_P2P (the request may then fail). `device` is the device's index on its host.
 */
export interface VfioMigrationEvent {
  readonly type: 'VFIO_MIGRATION';
  readonly device: number;
  readonly state: QapiVfioMigrationState;
}

/** QapiVfioMigrationState (qapi/vfio.json) as QEMU spells it in the event. */
export type QapiVfioMigrationState =
  | 'stop'
  | 'running'
  | 'stop-copy'
  | 'resuming'
  | 'running-p2p'
  | 'pre-copy'
  | 'pre-copy-p2p'
  | 'pre-copy-p2p-prepare';

/** mig_state_to_qapi_state (hw/vfio/migration.c). QEMU never tracks ERROR: a failed SET ends in a reset. */
export function qapiState(s: VfioState): QapiVfioMigrationState {
  if (s === 'ERROR') throw new Error('QEMU never tracks a device in ERROR (a failed SET resets it)');
  return s.toLowerCase().replace(/_/g, '-') as QapiVfioMigrationState;
}

/** The QEMU release whose QMP events the machines emit: 11.0 added `pre-copy-p2p-prepare`. */
export type EventRelease = '10.0' | '11.0';

/** The result of a SET, and the device after it. `refused` says what went wrong, if anything. */
export interface SetResult {
  readonly dev: DeviceRecord;
  readonly refused: string | null;
  /** Every state QEMU tracked for the device during the call, in order (one VFIO_MIGRATION event each). */
  readonly tracked: readonly QapiVfioMigrationState[];
}

/** The recover state a caller of vfio_migration_set_state passes; 'ERROR' means "reset on failure". */
export type Recover = VfioState;

function set(dev: DeviceRecord, target: VfioState): { dev: DeviceRecord; ok: boolean; newFd: boolean; errno: string } {
  // an armed driver failure is used up by this SET
  const { fault, ...unarmed } = dev;
  const next = deviceCall(unarmed, { type: 'SET_STATE', target, ...(fault ? { fault } : {}) });
  const last = next.context.last;
  const ok = last?.op === 'SET_STATE' && last.ok;
  return { dev: next, ok, newFd: ok && last.dataFd !== null, errno: last?.op === 'SET_STATE' && !last.ok ? last.errno : '' };
}

/**
 * vfio_migration_set_state: skip when already there; otherwise SET, and on failure recover or reset.
 * `release` '11.0' adds the event QEMU 11.0 sends before a PRE_COPY_P2P request.
 */
export function setState(dev: DeviceRecord, target: VfioState, recover: Recover = 'ERROR', release: EventRelease = '10.0'): SetResult {
  if (dev.state === target) return { dev, refused: null, tracked: [] };
  const before: QapiVfioMigrationState[] = release === '11.0' && target === 'PRE_COPY_P2P' ? ['pre-copy-p2p-prepare'] : [];
  const r = set(dev, target);
  if (r.ok) {
    const tracked = [...before, qapiState(target)];
    if (r.newFd && dev.fd) return { dev: r.dev, refused: `${dev.state} -> ${target}: data_fd out of sync (-EBADF)`, tracked };
    return { dev: { ...r.dev, fd: dev.fd || r.newFd }, refused: null, tracked };
  }
  const refused = `${dev.state} -> ${target}: -${r.errno}`;
  if (recover !== 'ERROR') {
    // QEMU asks for the recover state even when the failed SET left the device there (the ioctl is then
    // a no-op); either way it tracks the recover state and says so.
    const back = r.dev.state === recover ? { dev: r.dev, ok: true } : set(r.dev, recover);
    if (back.ok) return { dev: back.dev, refused, tracked: [...before, qapiState(recover)] };
  }
  return { dev: deviceCall(r.dev, { type: 'VFIO_DEVICE_RESET' }), refused: `${refused}, device reset`, tracked: [...before, 'running'] };
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
 * QEMU's devices on one host as a pass over them sees them: the devices, the first request that failed,
 * the VFIO_MIGRATION events sent so far, and which release's events to send.
 */
export interface DevicePass {
  readonly devs: readonly DeviceRecord[];
  readonly refused: string | null;
  readonly events: readonly VfioMigrationEvent[];
  readonly release: EventRelease;
}

/** A pass that starts from a host's devices and its first failure, with no events yet. */
export const startPass = (devs: readonly DeviceRecord[], refused: string | null, release: EventRelease = '10.0'): DevicePass => ({
  devs,
  refused,
  events: [],
  release,
});

/**
 * A pass over every device, in order: `request(dev, i)` names the SET to make (and its recover state),
 * or null for none. Returns the devices after the pass, the first failure, and the events sent.
 * `only` restricts the pass to one device (vfio_save_complete_precopy goes device by device);
 * `reverse` goes from the last device to the first (the VM state handlers on a stop, vmStateChange).
 */
export function eachDevice(
  pass: DevicePass,
  request: (dev: DeviceRecord, i: number) => readonly [VfioState, Recover] | VfioState | null,
  only?: number,
  reverse = false,
): DevicePass & { readonly failed: boolean } {
  const out = [...pass.devs];
  const events = [...pass.events];
  let first = pass.refused;
  let failed = false;
  const order = out.map((_, i) => i);
  if (reverse) order.reverse();
  order.forEach((i) => {
    const d = out[i]!;
    if (only !== undefined && i !== only) return;
    const r = request(d, i);
    if (r === null) return;
    const [target, recover] = typeof r === 'string' ? [r, 'ERROR' as const] : r;
    const s = setState(d, target, recover, pass.release);
    out[i] = s.dev;
    for (const state of s.tracked) events.push({ type: 'VFIO_MIGRATION', device: i, state });
    if (s.refused) {
      failed = true;
      first ??= `device ${i}: ${s.refused}`;
    }
  });
  return { devs: out, refused: first, events, release: pass.release, failed };
}

/** The run states QEMU's VM state handlers distinguish (system/runstate.c, hw/vfio/migration.c). */
export type VmRunState = 'running' | 'paused' | 'finish-migrate' | 'postmigrate' | 'inmigrate';

/**
 * The VM state change handlers of every device (vm_state_notify, system/runstate.c): all "prepare"
 * handlers (P2P devices) first, then all "main" ones — in registration order (device order) when the VM
 * starts and in reverse order when it stops (QTAILQ_FOREACH_REVERSE_SAFE; seen with two mtty devices:
 * mtty1 reports pre-copy-p2p and stop-copy before mtty0). `to` is the new run state.
 */
export function vmStateChange(pass: DevicePass, to: VmRunState): DevicePass {
  const stopping = to !== 'running';
  const prepared = eachDevice(pass, (d) => (hasP2P(d.context.features) ? (d.state === 'PRE_COPY' ? 'PRE_COPY_P2P' : 'RUNNING_P2P') : null), undefined, stopping);
  return eachDevice(
    prepared,
    (d) => {
      if (to === 'running') return 'RUNNING';
      return inPreCopy(d.state) && (to === 'finish-migrate' || to === 'paused') ? 'STOP_COPY' : 'STOP';
    },
    undefined,
    stopping,
  );
}
