/**
 * The VFIO side of QEMU: how hw/vfio/migration.c drives one device, on either host. QEMU holds each of
 * its devices as a `DeviceRecord` (the device machine's state and context) and every request it makes
 * goes through the device machine of ./vfioDevice.ts — so a request the kernel would refuse comes back
 * as -EINVAL here exactly as it would from the ioctl, and QEMU reacts to it.
 *
 * Follows (QEMU master ece408818d, see shared/reference/qemu-migration.md §c):
 *  - vfio_save_setup: RUNNING → PRE_COPY when the device has PRE_COPY (else precopy is skipped);
 *  - vfio_save_iterate: one chunk per round; VFIO_MIG_FLAG_DEV_INIT_DATA_SENT once initial bytes reach 0
 *    with switchover-ack on;
 *  - VM state change handlers on stop: "prepare" (P2P devices only) PRE_COPY → PRE_COPY_P2P, else
 *    → RUNNING_P2P; "main": STOP_COPY from a PRE_COPY state, else STOP;
 *  - vfio_save_complete_precopy: → STOP_COPY (if not there), read to EOF; vfio_save_cleanup: → STOP;
 *  - MIG_EVENT_PRECOPY_FAILED notifier: → RUNNING;
 *  - destination: vfio_load_setup → RESUMING; load end → STOP; guest start: prepare → RUNNING_P2P (P2P
 *    devices), main → RUNNING.
 *  - vfio_migration_set_state: a failed SET is an error of the migration (QEMU then tries a recover
 *    state or a reset; the model records the refusal and fails the migration — the property checked is
 *    that no reachable run ever gets there).
 */
import { initialTransition, transition } from 'xstate';
import { type FeatureSet, type VfioState, isSupported } from './vfioArcs.js';
import { type VfioDeviceContext, type VfioDeviceEvent, type VfioDeviceInput, vfioDeviceMachine } from './vfioDevice.js';

/** QEMU's handle on one device: the device machine's state value and context. */
export interface DeviceRecord {
  readonly state: VfioState;
  readonly context: VfioDeviceContext;
}

/** The device as the machine starts it (RUNNING, no session). */
export function initialDevice(input: VfioDeviceInput): DeviceRecord {
  const [snap] = initialTransition(vfioDeviceMachine, input);
  return { state: snap.value as VfioState, context: snap.context };
}

/** One call into the device (an ioctl, a read or write on its data_fd, or guest activity). */
export function deviceCall(dev: DeviceRecord, event: VfioDeviceEvent): DeviceRecord {
  const snap = vfioDeviceMachine.resolveState({ value: dev.state, context: dev.context });
  const [next] = transition(vfioDeviceMachine, snap, event);
  return { state: next.value as VfioState, context: next.context };
}

/** The result of a SET, and the device after it. `refused` is the request the kernel rejected, if any. */
export interface SetResult {
  readonly dev: DeviceRecord;
  readonly refused: string | null;
}

/** vfio_migration_set_state: skip when already there; otherwise SET and report a refusal. */
export function setState(dev: DeviceRecord, target: VfioState): SetResult {
  if (dev.state === target) return { dev, refused: null };
  const next = deviceCall(dev, { type: 'SET_STATE', target });
  const last = next.context.last;
  const refused = last?.op === 'SET_STATE' && !last.ok ? `${dev.state} -> ${target}: -${last.errno}` : null;
  return { dev: next, refused };
}

export const hasPreCopy = (f: FeatureSet) => isSupported('PRE_COPY', f);
export const hasP2P = (f: FeatureSet) => isSupported('RUNNING_P2P', f);
export const inPreCopy = (s: VfioState) => s === 'PRE_COPY' || s === 'PRE_COPY_P2P';

/** Units the device still reports through PRECOPY_INFO (initial + dirty), or 0 outside precopy. */
export function precopyPending(dev: DeviceRecord): number {
  return inPreCopy(dev.state) ? dev.context.initialBytes + dev.context.dirtyBytes : 0;
}

/** Read one chunk from the saving data_fd. */
export function readChunk(dev: DeviceRecord): DeviceRecord {
  return deviceCall(dev, { type: 'DATA_FD_READ' });
}

/** Read the STOP_COPY stream to EOF; returns the device and how many units came out. */
export function readToEof(dev: DeviceRecord): { dev: DeviceRecord; units: number } {
  let d = dev;
  let units = 0;
  for (let guard = 0; guard < 64; guard++) {
    d = readChunk(d);
    const last = d.context.last;
    if (!(last?.op === 'DATA_FD_READ' && last.ok && last.bytes === 1)) break;
    units++;
  }
  return { dev: d, units };
}
