/**
 * The REINIT claims (issue #5), over the composed migration with a REINIT design:
 *  - S1 NoStaleSwitchover: when the source commits to switchover — its devices' final state is on the
 *    stream (the point of no return) — every device's *current* initial data has been sent and approved
 *    by the destination;
 *  - NoStaleStop, stricter: already when the VM stops and the devices leave precopy for STOP_COPY. QEMU
 *    11.1 checks for a late ack request only after that point and then fails the migration, so it keeps
 *    S1 for P2P devices while breaking this one; the report shows both;
 *  - S2 is KernelAcceptsEveryRequest (src/properties/migration.ts): no design asks the kernel for a
 *    blocked arc or a state the device lacks;
 *  - L1 is MigrationEnds: with finitely many REINITs, every run can end without a cancel or a fault;
 *  - L2 NoReinitLivelock: no reachable cycle made only of guest reconfigurations, precopy rounds and
 *    stream deliveries (a REINIT storm that keeps the migration from ever ending).
 * "Current initial data" is tracked with ghost generations: the source bumps a device's generation at
 * every reconfiguration, INIT_DATA_SENT carries the generation it closes, and the destination remembers
 * the generation it approved last.
 */
import type { CheckedDestinationContext } from '../../machines/qemuDestination.js';
import type { CheckedSourceContext } from '../../machines/qemuSource.js';
import { hasPreCopy } from '../../machines/qemuVfio.js';
import type { GlobalView, Invariant, StepLabel } from '../explorer/system.js';
import { DESTINATION, SOURCE, finalStateSent, srcStatus } from './migration.js';
import { approvedGenOf, genOf } from './ghosts.js';

const currentDataApproved = (s: GlobalView) => {
  const c = s.context<CheckedSourceContext>(SOURCE);
  const d = s.context<CheckedDestinationContext>(DESTINATION);
  return c.devices.every((f, i) => !hasPreCopy(f) || (c.initialDataSent[i] === true && approvedGenOf(d, i) === genOf(c, i)));
};

export const NoStaleSwitchover: Invariant = {
  name: 'NoStaleSwitchover',
  description: 'S1: when the final device state is sent, every device’s current initial data has been sent and approved by the destination',
  holds: (s) => !finalStateSent(s) || currentDataApproved(s),
};

export const NoStaleStop: Invariant = {
  name: 'NoStaleStop',
  description: 'stricter than S1: the devices leave precopy for STOP_COPY only with their current initial data approved',
  holds: (s) => {
    const status = srcStatus(s);
    const c = s.context<CheckedSourceContext>(SOURCE);
    if (!['pre-switchover', 'device', 'completed'].includes(status) || c.runstate === 'running') return true;
    return currentDataApproved(s);
  },
};

/**
 * L2 is asked only where nothing but REINIT could hold the migration back: the source precopies and the
 * destination is loading. A pass in which pending fits the threshold is a progress step, so a cycle
 * that merely never takes one (bandwidth never enough) is not reported; what is reported is a cycle in
 * which the ack gate stays shut, REINIT after REINIT.
 */
export function reinitLivelockScope(s: GlobalView): boolean {
  return srcStatus(s) === 'active' && s.value(DESTINATION) === 'active';
}

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
