/**
 * Example runs of the composed migration system (src/systems/migration.ts), found by the explorer as
 * the counterexample to "this never happens": the shortest run that makes it happen. Regenerated from
 * the machines like every other diagram.
 */
import type { FeatureSet } from '../../machines/vfioArcs.js';
import { explore } from '../explorer/index.js';
import type { SystemSpec } from '../explorer/system.js';
import type { Trace } from '../explorer/trace.js';
import { DESTINATION, srcStatus } from '../properties/migration.js';
import { migrationSystem } from '../systems/migration.js';

/** The sending component of each channel of a system, for the sequence diagram's arrows. */
export function channelSenders(spec: SystemSpec): Record<string, string> {
  return Object.fromEntries((spec.channels ?? []).map((c) => [c.name, c.from]));
}

/** The system the example migration runs in: one device with every feature, legacy switchover-ack, no cancel, no faults. */
export function exampleMigrationSystem(devices: readonly FeatureSet[] = ['STOP_COPY|P2P|PRE_COPY']): SystemSpec {
  return migrationSystem({ devices, ack: 'legacy', cancel: false, faults: false });
}

/** The shortest run in which both QEMUs reach `completed`. */
export function successfulMigrationRun(spec: SystemSpec = exampleMigrationSystem()): Trace {
  const result = explore(
    {
      ...spec,
      invariants: [
        { name: 'NeverCompletes', holds: (s) => !(srcStatus(s) === 'completed' && s.value(DESTINATION) === 'completed') },
      ],
    },
    { progress: false },
  );
  const trace = result.properties.find((p) => p.name === 'NeverCompletes')?.counterexample;
  if (!trace) throw new Error(`the explorer found no completed migration in ${spec.name ?? 'the system'}`);
  return trace;
}
