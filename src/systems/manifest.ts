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
  /** The claims the scenario breaks, by name (none unless listed): a verdict moving is as deliberate as a count. */
  readonly violated?: readonly string[];
  /** An approximate reduction (device symmetry): nothing is concluded to hold, the rest are undecided. */
  readonly approximate?: true;
}

const ALL: FeatureSet = 'STOP_COPY|P2P|PRE_COPY';
const n = (k: number): FeatureSet[] => Array<FeatureSet>(k).fill(ALL);

/*
 * Issue 13 moved every migration count, deliberately; the verdicts did not move:
 *  - the switchover is a per-pass choice (PENDING_FITS_THRESHOLD) instead of a sticky RAM-converged flag
 *    plus "every device says 0" — fewer states where the flag doubled them, more where a device may now
 *    be switched over with bytes left (no ack);
 *  - precopy chunks travel on the stream and are counted on both sides, so the guest's dirtying is
 *    bounded by the environment (guestDirties, default once per migration: before, dirty data was read
 *    and dropped, and any number of rounds collapsed into the same states);
 *  - the stop and the final save are one step (one BQL hold), so the device-before-EOF states are gone;
 *  - the source's phases are states (setup.connecting/saved, active.iterating/decided,
 *    device.saving/closing, completed/failed .cleaning/.done, cancelling's two steps) instead of flags,
 *    which leaves the global states as they were.
 *
 * The cancel race moved every count with a return path (switchover-ack on), deliberately; the verdicts
 * and every no-ack count did not move: with a return path, migrate_cancel in setup (after save setup), in
 * precopy, or after EOF while the source waits for the return path, may also end 'failed' — QEMU 10.0.2's
 * migration_cancel shuts the return path before it sets 'cancelling', and the migration thread can fail
 * first (machines/qemuSource.ts
 * CANCEL_LOSES_TO_RETURN_PATH_ERROR). The new states: the source still in setup/active with the
 * connection shut and its error noted (until the thread's next pass fails it), interleaved with what
 * the destination, the return path and the guest do meanwhile, then the failed source and what follows
 * (recovery, retries) — about 1.7–2.4 times the states of each system with a return path (the race after EOF
 * added 2–35% on top of the race in setup and precopy).
 */
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
  { name: 'migration N=1 legacy ack', build: () => migrationSystem({ devices: n(1), ack: 'legacy' }), states: 1844, transitions: 5038 },
  { name: 'migration N=2 legacy ack', build: () => migrationSystem({ devices: n(2), ack: 'legacy' }), states: 3332, transitions: 9375 },
  { name: 'migration N=3 legacy ack', build: () => migrationSystem({ devices: n(3), ack: 'legacy' }), states: 5154, transitions: 14638 },
  { name: 'migration N=1 per-device ack', build: () => migrationSystem({ devices: n(1), ack: 'per-device' }), states: 1844, transitions: 5038 },
  { name: 'migration N=2 per-device ack', build: () => migrationSystem({ devices: n(2), ack: 'per-device' }), states: 4098, transitions: 12139 },
  { name: 'migration N=3 per-device ack', build: () => migrationSystem({ devices: n(3), ack: 'per-device' }), states: 7770, transitions: 24266 },
  { name: 'migration N=1 no ack', build: () => migrationSystem({ devices: n(1), ack: 'off' }), states: 714, transitions: 1624 },
  { name: 'migration N=2 no ack', build: () => migrationSystem({ devices: n(2), ack: 'off' }), states: 1332, transitions: 3116 },
  { name: 'migration N=3 no ack', build: () => migrationSystem({ devices: n(3), ack: 'off' }), states: 2120, transitions: 5010 },
  { name: 'migration N=1 STOP_COPY|PRE_COPY legacy', build: () => migrationSystem({ devices: ['STOP_COPY|PRE_COPY'], ack: 'legacy' }), states: 1844, transitions: 5038 },
  { name: 'migration N=2 per-device, symmetry', build: () => migrationSystem({ devices: n(2), ack: 'per-device', symmetry: true }), states: 3182, transitions: 9563, approximate: true },
  { name: 'REINIT legacy design N=1', build: () => migrationSystem({ devices: n(1), ack: 'legacy', design: 'legacy' }), states: 2734, transitions: 7275, violated: ['NoStaleSwitchover', 'NoStaleStop'] },
  { name: 'REINIT reusable-ack N=2', build: () => migrationSystem({ devices: n(2), ack: 'per-device', design: 'reusable-ack' }), states: 5920, transitions: 17015, violated: ['NoStaleStop'] },
  {
    name: 'REINIT recheck-resume N=2, budget 2',
    build: () => migrationSystem({ devices: n(2), ack: 'per-device', design: 'recheck-resume', reinitBudget: 2 }),
    states: 5980,
    transitions: 17165,
  },
  // The REINIT storm run of `check --design` asks L2 only (livelockOnly, test/livelock.test.ts): 148,648
  // states and 625,810 transitions before it forgot the property-only counters and cut ended migrations.
  {
    name: 'REINIT recheck-resume N=2, budget 2, the storm run for L2',
    build: () => migrationSystem({ devices: n(2), ack: 'per-device', design: 'recheck-resume', reinitBudget: 2, guestReinits: 'unbounded', livelockOnly: true }),
    states: 10490,
    transitions: 52243,
  },
  // Findings of issue 13 (docs in the README): a management stop then cont during precopy ends the
  // saving session QEMU still holds — the final save's new data_fd is out of sync (-EBADF), and with
  // switchover-ack the device never sends INIT_DATA_SENT again, so the running guest waits for an ack
  // for ever (MigrationEnds, unless management stops the guest or cancels).
  { name: 'migration N=1 legacy, management stop/cont', build: () => migrationSystem({ devices: n(1), ack: 'legacy', management: true }), states: 9014, transitions: 32715, violated: ['DataFdInSync', 'MigrationEnds'] },
  { name: 'migration N=1 legacy, destination -S, stop/cont', build: () => migrationSystem({ devices: n(1), ack: 'legacy', management: true, autostart: false }), states: 18200, transitions: 66106, violated: ['DataFdInSync', 'MigrationEnds'] },
  { name: 'migration N=1 legacy, one retry to a new destination', build: () => migrationSystem({ devices: n(1), ack: 'legacy', retries: 1 }), states: 34678, transitions: 151047 },
  { name: 'migration N=1 legacy, a guest that dirties for ever', build: () => migrationSystem({ devices: n(1), ack: 'legacy', guestDirties: 'unbounded' }), states: 14138, transitions: 49569 },
  // One driver failure per host, anywhere: QEMU recovers or resets and every migration still ends; a
  // destination whose driver rejects the loaded state at RESUMING -> STOP is reset and both sides report
  // completed (CompletedDestinationKeptDeviceState, DestinationCompleteMeansLoaded); a failed
  // STOP_COPY -> STOP at the source's cleanup resets that device after completion (a tuple the doc lacks).
  {
    name: 'migration N=1 legacy, one driver failure per host',
    build: () => migrationSystem({ devices: n(1), ack: 'legacy', deviceFaults: 1 }),
    states: 32121,
    transitions: 159723,
    violated: ['DestinationCompleteMeansLoaded', 'CompletedDestinationKeptDeviceState', 'VfioStateTuplesFollowCode'],
  },
];
