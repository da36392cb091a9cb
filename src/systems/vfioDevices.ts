/**
 * A system of K independent VFIO devices, each driven by an environment that issues the requests QEMU's
 * VFIO code makes on the source (start precopy, stop-and-copy, back to running, read a chunk) in *any*
 * order, while the guest dirties device state. The invariants are the uAPI's own guarantees, which must
 * hold whatever a user asks. (Whether a real orchestrator only asks what the kernel accepts is a property
 * of the orchestrator, checked on the migration system.) Used by `migration-statecharts explore` and by
 * the explorer benchmark.
 */
import type { EventObject } from 'xstate';
import { type FeatureSet, inSavingGroup, isSupported } from '../../machines/vfioArcs.js';
import { type VfioDeviceContext, type VfioDeviceInput, vfioDeviceMachine } from '../../machines/vfioDevice.js';
import type { Invariant, SystemSpec } from '../explorer/system.js';

export interface VfioDevicesOptions {
  readonly devices: number;
  readonly features?: FeatureSet;
  readonly maxBytes?: number;
  readonly symmetry?: boolean;
}

/** What the environment may ask of each device: QEMU's save-side requests and the guest's activity. */
export function driverEvents(features: FeatureSet): (EventObject & Record<string, unknown>)[] {
  const pre = isSupported('PRE_COPY', features);
  return [
    ...(pre ? [{ type: 'SET_STATE', target: 'PRE_COPY' }] : []),
    { type: 'SET_STATE', target: 'STOP_COPY' },
    { type: 'SET_STATE', target: 'RUNNING' },
    { type: 'DATA_FD_READ' },
    ...(pre ? [{ type: 'GUEST_DIRTIES_DEVICE' }] : []),
  ];
}

export function vfioDevicesSystem(opts: VfioDevicesOptions): SystemSpec {
  const features = opts.features ?? 'STOP_COPY|P2P|PRE_COPY';
  const input: VfioDeviceInput = { features, maxBytes: opts.maxBytes ?? 1 };
  const names = Array.from({ length: opts.devices }, (_, i) => `dev${i}`);
  const events = driverEvents(features);
  const every = (f: (v: string, c: VfioDeviceContext) => boolean): Invariant['holds'] => (s) =>
    names.every((n) => f(s.value(n) as string, s.context<VfioDeviceContext>(n)));
  return {
    name: `${opts.devices} VFIO device${opts.devices === 1 ? '' : 's'} (${features})`,
    components: names.map((name) => ({ name, machine: vfioDeviceMachine, input })),
    environment: Object.fromEntries(names.map((n) => [n, events])),
    invariants: [
      {
        name: 'SavingSessionExactlyInSavingGroup',
        description: 'a saving data_fd is served exactly while the device is in PRE_COPY, PRE_COPY_P2P or STOP_COPY',
        holds: every((v, c) => (c.session === 'saving') === inSavingGroup(v as never)),
      },
      {
        name: 'RefusedRequestsChangeNothing',
        description: 'a SET the kernel refuses with -EINVAL leaves the device where it was',
        holds: every((v, c) => !(c.last?.op === 'SET_STATE' && !c.last.ok && c.last.errno === 'EINVAL') || c.last.path[0] === v),
      },
      { name: 'NoDeviceInError', description: 'no device reaches ERROR in fault-free runs', holds: every((v) => v !== 'ERROR') },
    ],
    ...(opts.symmetry ? { symmetry: [{ components: names }] } : {}),
  };
}
