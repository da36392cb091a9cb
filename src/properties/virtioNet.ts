/**
 * The virtio-net early-migration claims, over the composed system of src/systems/virtioNet.ts (the QEMU
 * source and destination with a virtio-net device on each side):
 *  - NoStaleDeviceState (safety): the destination never runs the guest with a virtio-net state other
 *    than the source's when it saved its stop-and-copy section. "Older" in the words: the source
 *    state at the stop is the newest there is, so any other state is an older one (or the reset state);
 *  - ProvisionalStateConfirmed (safety): the guest starts only with state that a stop-and-copy section
 *    confirmed — a resync (or VNET_MIG_F_NO_DATA) of the provisional state, or a full reload. It is the
 *    "how" beside NoStaleDeviceState's "what": a design may be lucky on values and still break this;
 *  - NoStaleVhostBind (safety): a vhost-net backend is never bound with state other than the source's at
 *    the stop, on the groups vhost is set up from;
 *  - EarlyVhostFailureNotFatal (safety): a failed early vhost start or quickstart never fails the load;
 *  - VirtioNetFailureIsClean (safety): when the virtio-net load fails, the destination never runs the
 *    guest and the source does not complete (it learns of the failure over the return path);
 *  - MigrationEnds (liveness, src/properties/migration.ts): with finitely many guest changes — and also
 *    under a storm — every run can end;
 *  - BoundedResends (progress, storm run): no reachable cycle in which the source keeps re-sending
 *    virtio-net state while the guest keeps changing it.
 * Outcome witnesses (each claims a thing never happens; the explorer's counterexample is the shortest
 * run where it does): the fast path, the full reload, a virtio-net load failure, a completed migration
 * after an early vhost failure, and the fast path after the guest changed fields back.
 */
import type { QemuDestinationContext } from '../../machines/qemuDestination.js';
import type { VirtioNetDestinationContext } from '../../machines/virtioNetDestination.js';
import { VHOST_GROUPS, sameValues } from '../../machines/virtioNetMessages.js';
import type { VirtioNetSourceContext } from '../../machines/virtioNetSource.js';
import type { GlobalView, Invariant, StepLabel } from '../explorer/system.js';
import { DESTINATION, SOURCE, srcStatus } from './migration.js';

export const NET_SOURCE = 'virtioNetSource';
export const NET_DESTINATION = 'virtioNetDestination';

const netSrc = (s: GlobalView) => s.context<VirtioNetSourceContext>(NET_SOURCE);
const netDst = (s: GlobalView) => s.context<VirtioNetDestinationContext>(NET_DESTINATION);
/** The guest runs on the destination (QEMU's incoming side started it). */
const guestRunsOnDestination = (s: GlobalView) => s.context<QemuDestinationContext>(DESTINATION).runstate === 'running';

export const NoStaleDeviceState: Invariant = {
  name: 'NoStaleDeviceState',
  description: 'the destination never runs the guest with virtio-net state other than the source’s at its stop-and-copy save',
  holds: (s) => !guestRunsOnDestination(s) || (netDst(s).guestState !== null && sameValues(netDst(s).guestState, netSrc(s).stateAtStop)),
};

export const ProvisionalStateConfirmed: Invariant = {
  name: 'ProvisionalStateConfirmed',
  description: 'the guest starts only with state confirmed at stop-and-copy (a resync of the provisional state, or a full reload)',
  holds: (s) => !guestRunsOnDestination(s) || netDst(s).confirmedBy !== null,
};

export const NoStaleVhostBind: Invariant = {
  name: 'NoStaleVhostBind',
  description: 'a vhost-net backend is never bound with state other than the source’s at the stop (on the groups vhost is set up from)',
  holds: (s) => {
    const d = netDst(s);
    return d.vhostPhase !== 'bound' || (d.vhostState !== null && sameValues(d.vhostState, netSrc(s).stateAtStop, VHOST_GROUPS));
  },
};

export const EarlyVhostFailureNotFatal: Invariant = {
  name: 'EarlyVhostFailureNotFatal',
  description: 'a failed early vhost start or quickstart bind never fails the load (the userspace datapath takes over)',
  holds: (s) => !(netDst(s).failReason ?? '').includes('vhost'),
};

export const VirtioNetFailureIsClean: Invariant = {
  name: 'VirtioNetFailureIsClean',
  description: 'when the virtio-net load fails, the destination never runs the guest and the source does not complete',
  holds: (s) => netDst(s).failReason === null || (!guestRunsOnDestination(s) && srcStatus(s) !== 'completed'),
};

export const VIRTIO_NET_INVARIANTS: readonly Invariant[] = [
  NoStaleDeviceState,
  ProvisionalStateConfirmed,
  NoStaleVhostBind,
  EarlyVhostFailureNotFatal,
  VirtioNetFailureIsClean,
];

/** Was the migration's outcome on the destination the fast path (the provisional state confirmed)? */
const fastPath = (s: GlobalView) => guestRunsOnDestination(s) && (netDst(s).confirmedBy === 'resync' || netDst(s).confirmedBy === 'no-data');

/** The outcome witnesses, by outcome; `guestChanges` is the bound the run was explored with (for the last one). */
export function outcomeWitnesses(guestChanges: number | 'unbounded'): Record<Outcome, Invariant> {
  return {
    'fast path': { name: 'NeverFastPath', holds: (s) => !fastPath(s) },
    'full reload': { name: 'NeverFullReload', holds: (s) => !(guestRunsOnDestination(s) && netDst(s).confirmedBy === 'full') },
    'clean failure at setup': { name: 'NeverFailsAtSetup', holds: (s) => netDst(s).failedAt !== 'setup' },
    'clean failure at stop-and-copy': { name: 'NeverFailsAtStopAndCopy', holds: (s) => netDst(s).failedAt !== 'stop-and-copy' },
    'completes after a vhost fallback': { name: 'NeverCompletesAfterVhostFallback', holds: (s) => !(guestRunsOnDestination(s) && netDst(s).vhostFellBack) },
    'fast path after changes made and undone': {
      name: 'NeverFastPathAfterGuestChanges',
      holds: (s) => !(fastPath(s) && guestChanges !== 'unbounded' && netSrc(s).changesLeft !== guestChanges),
    },
  };
}

export type Outcome =
  | 'fast path'
  | 'full reload'
  | 'clean failure at setup'
  | 'clean failure at stop-and-copy'
  | 'completes after a vhost fallback'
  | 'fast path after changes made and undone';

export const OUTCOMES: readonly Outcome[] = [
  'fast path',
  'full reload',
  'clean failure at setup',
  'clean failure at stop-and-copy',
  'completes after a vhost fallback',
  'fast path after changes made and undone',
];

/** BoundedResends: the steps a resend storm cycles through (every other step is progress). */
export function isResendLoopStep(step: StepLabel): boolean {
  if (step.kind === 'deliver') return true;
  return step.component === NET_SOURCE && (step.event.type === 'GUEST_SETS_FIELD' || step.event.type === 'SAVE_LIVE_ITERATE');
}

/** BoundedResends counts only cycles in which the source re-sends state (the fair step). */
export function isResend(step: StepLabel): boolean {
  return step.kind === 'env' && step.component === NET_SOURCE && step.event.type === 'SAVE_LIVE_ITERATE';
}
