/**
 * The systems tests are generated from: any single machine wrapped as a one-component system whose
 * environment is a given event list, and the two presets the CLI names (`device`, `migration`), which a
 * fixture records so that `tests replay` can rebuild its model.
 */
import type { AnyStateMachine, EventObject } from 'xstate';
import type { AckMode } from '../../machines/migrationMessages.js';
import { type VfioDeviceInput, vfioDeviceMachine } from '../../machines/vfioDevice.js';
import { type FeatureSet, VFIO_DEVICE_STATE_NR, VFIO_STATES, hasFeature, statesOf } from '../../machines/vfioArcs.js';
import { profileById } from '../../machines/vfioProfiles.js';
import type { SystemSpec } from '../explorer/system.js';
import { migrationSystem } from '../systems/migration.js';
import type { DevicePreset, PresetRef } from './fixture.js';
import { observeDevice, observeQemu } from './observe.js';

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
 * The classic 14 device events (one SET per state but ERROR, one SET whose first arc fails into ERROR,
 * the reset, one of each data_fd / precopy-info / guest call): what xstate/graph comparisons use.
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

/** The default device configuration: every feature, no opt-in, the generic uAPI profile, faults on. */
export const DEFAULT_DEVICE: DevicePreset = {
  id: 'device',
  features: DEVICE_FEATURES,
  precopyInfoV2: false,
  profile: 'generic',
  faults: true,
  maxBytes: 1,
};

/** A device configuration from a partial one (the rest from DEFAULT_DEVICE). */
export function devicePreset(p: Partial<Omit<DevicePreset, 'id'>> = {}): DevicePreset {
  return { ...DEFAULT_DEVICE, ...p, id: 'device' };
}

/** Out-of-range `device_state` numbers every device suite requests: VFIO_DEVICE_STATE_NR and ~0U. */
export const OUT_OF_RANGE_STATES: readonly number[] = [VFIO_DEVICE_STATE_NR, 0xffffffff];

/**
 * Everything a user (and, for the generic profile, the guest) can do to a device of this configuration:
 *  - SET to every uAPI state, ERROR and those outside the feature set included, and to out-of-range numbers;
 *  - with injectable faults (generic profile, faults on): for every target the device supports, the first
 *    arc failing (leaving the device where it was, or in ERROR) and the second arc failing (the first one
 *    committed) — so every arc is failed somewhere and the commit of earlier arcs is observed;
 *  - the reset, PRECOPY_INFO, MIG_DATA_SIZE, a read, a write (with the profile's resuming checks: of a
 *    genuine image, and of bytes that fail the header check), closing the fd (profiles that follow fds);
 *  - the guest dirtying and reconfiguring the device (drivers that track it).
 */
export function deviceEvents(p: DevicePreset): (EventObject & Record<string, unknown>)[] {
  const profile = profileById(p.profile);
  const events: (EventObject & Record<string, unknown>)[] = [
    ...VFIO_STATES.map((target) => ({ type: 'SET_STATE', target })),
    ...OUT_OF_RANGE_STATES.map((target) => ({ type: 'SET_STATE', target })),
  ];
  if (p.faults && profile.injectableFaults) {
    for (const target of statesOf(p.features)) {
      if (target === 'ERROR') continue;
      events.push({ type: 'SET_STATE', target, fault: { atArc: 0, leaves: 'reached' } });
      events.push({ type: 'SET_STATE', target, fault: { atArc: 0, leaves: 'ERROR' } });
      events.push({ type: 'SET_STATE', target, fault: { atArc: 1, leaves: 'reached' } });
    }
  }
  events.push({ type: 'VFIO_DEVICE_RESET' }, { type: 'VFIO_MIG_GET_PRECOPY_INFO' }, { type: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE' });
  events.push({ type: 'DATA_FD_READ' });
  if (profile.resuming) events.push({ type: 'DATA_FD_WRITE', data: 'valid' }, { type: 'DATA_FD_WRITE', data: 'corrupt' });
  else events.push({ type: 'DATA_FD_WRITE' });
  if (profile.userFds) events.push({ type: 'DATA_FD_CLOSE' });
  if (profile.tracksDirty && hasFeature(p.features, 'PRE_COPY')) events.push({ type: 'GUEST_DIRTIES_DEVICE' }, { type: 'GUEST_REINITS_DEVICE' });
  return events;
}

/** `VFIO device (STOP_COPY|P2P|PRE_COPY, mtty, PRECOPY_INFOv2, no faults)`. */
export function deviceSystemName(p: DevicePreset): string {
  const bits: string[] = [p.features, p.profile];
  if (p.precopyInfoV2) bits.push('PRECOPY_INFOv2');
  if (!p.faults && profileById(p.profile).injectableFaults) bits.push('no faults');
  if (p.maxBytes !== 1) bits.push(`maxBytes ${p.maxBytes}`);
  return `VFIO device (${bits.join(', ')})`;
}

/** One device of a configuration as a system: component `dev`, observed as its user sees it. */
export function deviceSystem(p: DevicePreset = DEFAULT_DEVICE): SystemSpec {
  const input: VfioDeviceInput = { features: p.features, precopyInfoV2: p.precopyInfoV2, maxBytes: p.maxBytes, profile: profileById(p.profile) };
  return {
    name: deviceSystemName(p),
    components: [{ name: 'dev', machine: vfioDeviceMachine, input, observe: observeDevice }],
    environment: { dev: deviceEvents(p) },
    terminal: () => true,
  };
}

export const PRESET_IDS = ['device', 'migration'] as const;
export const ACK_MODES: readonly AckMode[] = ['legacy', 'per-device', 'off'];

/** The system a preset names. */
export function presetSystem(ref: PresetRef): SystemSpec {
  if (ref.id === 'device') return deviceSystem(ref);
  const spec = migrationSystem({ devices: Array.from({ length: ref.devices }, () => DEVICE_FEATURES), ack: ref.ack });
  return { ...spec, components: spec.components.map((c) => (c.name === 'source' || c.name === 'destination' ? { ...c, observe: observeQemu } : c)) };
}
