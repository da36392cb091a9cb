/**
 * The REINIT claims (issue #5), over the composed migration with a REINIT design:
 *  - S1 NoStaleSwitchover: when the source commits to switchover (VM stopped, devices leaving precopy for
 *    STOP_COPY), every device's *current* initial data has been sent and approved by the destination;
 *  - S2 is KernelAcceptsEveryRequest (src/properties/migration.ts): no design asks the kernel for a
 *    blocked arc or a state the device lacks;
 *  - L1 is MigrationEnds: with finitely many REINITs, every run can end without a cancel or a fault;
 *  - L2 NoReinitLivelock: no reachable cycle made only of guest reconfigurations, precopy rounds and
 *    stream deliveries (a REINIT storm that keeps the migration from ever ending).
 * "Current initial data" is tracked with ghost generations: the source bumps a device's generation at
 * every reconfiguration, INIT_DATA_SENT carries the generation it closes, and the destination remembers
 * the generation it approved last.
 */
import type { QemuDestinationContext } from '../../machines/qemuDestination.js';
import type { QemuSourceContext } from '../../machines/qemuSource.js';
import { hasPreCopy } from '../../machines/qemuVfio.js';
import type { Invariant, StepLabel } from '../explorer/system.js';
import { DESTINATION, SOURCE } from './migration.js';

export const NoStaleSwitchover: Invariant = {
  name: 'NoStaleSwitchover',
  description: 'S1: at switchover every device’s current initial data has been sent and approved by the destination',
  holds: (s) => {
    const status = s.value(SOURCE) as string;
    const c = s.context<QemuSourceContext>(SOURCE);
    if (!['pre-switchover', 'device', 'completed'].includes(status) || c.runstate === 'running') return true;
    const d = s.context<QemuDestinationContext>(DESTINATION);
    return c.devices.every((f, i) => !hasPreCopy(f) || (c.initialDataSent[i] === true && d.approvedGen[i] === c.gen[i]));
  },
};

/** L2: the steps a REINIT storm cycles through; every other step is progress. */
export function isReinitLoopStep(step: StepLabel): boolean {
  if (step.kind === 'deliver') return true;
  return step.event.type === 'GUEST_REINITS_DEVICE' || step.event.type === 'THREAD_STEP';
}

export const REINIT_CLAIMS = {
  S1: 'NoStaleSwitchover',
  S2: 'KernelAcceptsEveryRequest',
  L1: 'MigrationEnds',
  L2: 'NoNonProgressCycle',
} as const;
