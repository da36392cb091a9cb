/**
 * The scenario manifest: named configurations of the composed systems with the state and transition
 * counts the explorer finds for them, as TLA+ example manifests record theirs. `test/manifest.test.ts`
 * explores each one and fails when a count moves, so a change to the state space never goes unnoticed:
 * a model change that is meant to move a count updates this table in the same commit, and says why.
 */
import type { FeatureSet } from '../../machines/vfioArcs.js';
import type { SystemSpec } from '../explorer/system.js';
import { vfioDeviceMachine } from '../../machines/vfioDevice.js';
import { DEVICE_EVENTS, deviceSystem, devicePreset, machineSystem } from '../testgen/systems.js';
import { migrationSystem } from './migration.js';
import { vfioDevicesSystem } from './vfioDevices.js';

export interface Scenario {
  readonly name: string;
  readonly build: () => SystemSpec;
  /** Distinct global states and transitions (no symmetry unless the scenario asks for it). */
  readonly states: number;
  readonly transitions: number;
}

const ALL: FeatureSet = 'STOP_COPY|P2P|PRE_COPY';
const n = (k: number): FeatureSet[] => Array<FeatureSet>(k).fill(ALL);

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'device, the 14 classic events (all features, generic profile)',
    build: () => machineSystem(vfioDeviceMachine, DEVICE_EVENTS, { component: 'dev', input: { features: ALL } }),
    states: 583,
    transitions: 7476,
  },
  { name: 'device preset: all features, generic, faults', build: () => deviceSystem(devicePreset()), states: 1471, transitions: 54140 },
  { name: 'device preset: all features, generic, PRECOPY_INFOv2, faults', build: () => deviceSystem(devicePreset({ precopyInfoV2: true })), states: 2247, transitions: 83628 },
  { name: 'device preset: STOP_COPY, generic, faults', build: () => deviceSystem(devicePreset({ features: 'STOP_COPY' })), states: 504, transitions: 13608 },
  { name: 'device preset: all features, mtty-2', build: () => deviceSystem(devicePreset({ profile: 'mtty' })), states: 858, transitions: 14586 },
  { name: 'two independent devices', build: () => vfioDevicesSystem({ devices: 2, features: ALL }), states: 961, transitions: 8308 },
  { name: 'migration N=1 legacy ack', build: () => migrationSystem({ devices: n(1), ack: 'legacy' }), states: 822, transitions: 2427 },
  { name: 'migration N=2 legacy ack', build: () => migrationSystem({ devices: n(2), ack: 'legacy' }), states: 2598, transitions: 11015 },
  { name: 'migration N=3 legacy ack', build: () => migrationSystem({ devices: n(3), ack: 'legacy' }), states: 9990, transitions: 54241 },
  { name: 'migration N=1 per-device ack', build: () => migrationSystem({ devices: n(1), ack: 'per-device' }), states: 822, transitions: 2427 },
  { name: 'migration N=2 per-device ack', build: () => migrationSystem({ devices: n(2), ack: 'per-device' }), states: 3224, transitions: 14173 },
  { name: 'migration N=3 per-device ack', build: () => migrationSystem({ devices: n(3), ack: 'per-device' }), states: 15792, transitions: 90241 },
  { name: 'migration N=1 no ack', build: () => migrationSystem({ devices: n(1), ack: 'off' }), states: 488, transitions: 1352 },
  { name: 'migration N=2 no ack', build: () => migrationSystem({ devices: n(2), ack: 'off' }), states: 1240, transitions: 4904 },
  { name: 'migration N=3 no ack', build: () => migrationSystem({ devices: n(3), ack: 'off' }), states: 3980, transitions: 20504 },
  { name: 'migration N=1 STOP_COPY|PRE_COPY legacy', build: () => migrationSystem({ devices: ['STOP_COPY|PRE_COPY'], ack: 'legacy' }), states: 822, transitions: 2427 },
  { name: 'migration N=2 per-device, symmetry', build: () => migrationSystem({ devices: n(2), ack: 'per-device', symmetry: true }), states: 2648, transitions: 11615 },
  { name: 'REINIT legacy design N=1', build: () => migrationSystem({ devices: n(1), ack: 'legacy', design: 'legacy' }), states: 1918, transitions: 4324 },
  { name: 'REINIT reusable-ack N=2', build: () => migrationSystem({ devices: n(2), ack: 'per-device', design: 'reusable-ack' }), states: 3913, transitions: 9765 },
  {
    name: 'REINIT recheck-resume N=2, budget 2',
    build: () => migrationSystem({ devices: n(2), ack: 'per-device', design: 'recheck-resume', reinitBudget: 2 }),
    states: 3901,
    transitions: 9751,
  },
];
