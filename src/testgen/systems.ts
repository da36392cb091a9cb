/**
 * The systems tests are generated from: any single machine wrapped as a one-component system whose
 * environment is a given event list, and the two presets the CLI names (`device`, `migration`), which a
 * fixture records so that `tests replay` can rebuild its model.
 */
import type { AnyStateMachine, EventObject } from 'xstate';
import type { AckMode } from '../../machines/migrationMessages.js';
import { vfioDeviceMachine } from '../../machines/vfioDevice.js';
import type { FeatureSet } from '../../machines/vfioArcs.js';
import type { SystemSpec } from '../explorer/system.js';
import { migrationSystem } from '../systems/migration.js';
import type { PresetRef } from './fixture.js';

export interface MachineSystemOptions {
  /** The component's name (default: the machine id). */
  readonly component?: string;
  readonly input?: unknown;
  /** The system's name (default: the component name). */
  readonly name?: string;
}

/** One machine as a system: the environment may send it any of `events` at any time. */
export function machineSystem(machine: AnyStateMachine, events: readonly EventObject[], opts: MachineSystemOptions = {}): SystemSpec {
  const component = opts.component ?? machine.id;
  return {
    name: opts.name ?? component,
    components: [{ name: component, machine, ...(opts.input !== undefined ? { input: opts.input } : {}) }],
    environment: { [component]: events },
    // A single machine has no goal; every state without an enabled step is fine for test generation.
    terminal: () => true,
  };
}

export const DEVICE_FEATURES: FeatureSet = 'STOP_COPY|P2P|PRE_COPY';

/**
 * The `device` preset's events: one SET for every uAPI state but ERROR, one SET whose first arc fails
 * into ERROR, the reset, and one of each data_fd / precopy-info / guest call.
 */
export const DEVICE_EVENTS: readonly (EventObject & Record<string, unknown>)[] = [
  ...(['RUNNING', 'STOP', 'STOP_COPY', 'RESUMING', 'RUNNING_P2P', 'PRE_COPY', 'PRE_COPY_P2P'] as const).map((target) => ({ type: 'SET_STATE', target })),
  { type: 'SET_STATE', target: 'STOP_COPY', fault: { atArc: 0, leaves: 'ERROR' } },
  { type: 'VFIO_DEVICE_RESET' },
  { type: 'VFIO_MIG_GET_PRECOPY_INFO' },
  { type: 'DATA_FD_READ' },
  { type: 'DATA_FD_WRITE' },
  { type: 'GUEST_DIRTIES_DEVICE' },
  { type: 'GUEST_REINITS_DEVICE' },
];

export const PRESET_IDS = ['device', 'migration'] as const;
export const ACK_MODES: readonly AckMode[] = ['legacy', 'per-device', 'off'];

/** The system a preset names. */
export function presetSystem(ref: PresetRef): SystemSpec {
  if (ref.id === 'device') {
    return machineSystem(vfioDeviceMachine, DEVICE_EVENTS, {
      component: 'dev',
      input: { features: DEVICE_FEATURES },
      name: `VFIO device (${DEVICE_FEATURES})`,
    });
  }
  return migrationSystem({ devices: Array.from({ length: ref.devices }, () => DEVICE_FEATURES), ack: ref.ack });
}
