/**
 * What a correct migration guarantees, as named claims over the composed system
 * (src/systems/migration.ts). Each reads only the components it needs; safety claims are invariants
 * checked in every reachable state, the liveness claim is the system's goal.
 */
import type { QemuDestinationContext } from '../../machines/qemuDestination.js';
import type { QemuSourceContext } from '../../machines/qemuSource.js';
import type { DeviceRecord } from '../../machines/qemuVfio.js';
import { hasPreCopy } from '../../machines/qemuVfio.js';
import type { GlobalView, Invariant, StepLabel } from '../explorer/system.js';

export const SOURCE = 'source';
export const DESTINATION = 'destination';

const src = (s: GlobalView) => s.context<QemuSourceContext>(SOURCE);
const dst = (s: GlobalView) => s.context<QemuDestinationContext>(DESTINATION);
const srcStatus = (s: GlobalView) => s.value(SOURCE) as string;
const dstStatus = (s: GlobalView) => s.value(DESTINATION) as string;

/** 1. With switchover-ack on, the source never stops the VM for switchover while an ack is outstanding. */
export const NoSwitchoverWhileAckPending: Invariant = {
  name: 'NoSwitchoverWhileAckPending',
  description: 'with switchover-ack on, the VM is never stopped for switchover while an ack is outstanding',
  // Read at the stop itself (a ghost the source records then): QEMU 11.1 may take a new request after
  // the stop, which is the failure path of reusable-ack, not a switchover under an outstanding ack.
  holds: (s) => !src(s).stoppedWithAckPending,
};

const allDevs = (s: GlobalView): DeviceRecord[] => [...src(s).devs, ...dst(s).devs];

/** 2a. Every request QEMU makes is one the kernel accepts for that device's feature set. */
export const KernelAcceptsEveryRequest: Invariant = {
  name: 'KernelAcceptsEveryRequest',
  description: 'no device request of either QEMU is refused by the kernel (-EINVAL)',
  holds: (s) => src(s).vfioRefused === null && dst(s).vfioRefused === null,
};

/** 2b. No device ever enters ERROR (the system injects no device faults). */
export const NoDeviceInError: Invariant = {
  name: 'NoDeviceInError',
  description: 'no device enters ERROR in fault-free runs',
  holds: (s) => allDevs(s).every((d) => d.state !== 'ERROR'),
};

/** 3a. When the destination completes, it has every device's full state and runs the guest. */
export const DestinationCompleteMeansLoaded: Invariant = {
  name: 'DestinationCompleteMeansLoaded',
  description: 'a completed destination loaded every device state the source sent and runs the guest on RUNNING devices',
  holds: (s) => {
    if (dstStatus(s) !== 'completed') return true;
    const d = dst(s);
    const sent = src(s).sent;
    return d.runstate === 'running' && d.devs.every((dev, i) => dev.state === 'RUNNING' && d.received[i] === sent[i] && sent[i]! > 0);
  },
};

/** 3b. When the migration failed or was cancelled, the source runs again with its devices RUNNING, no session open. */
export const FailureRestoresSource: Invariant = {
  name: 'FailureRestoresSource',
  description: 'after a failed or cancelled migration the source VM runs, its devices RUNNING, no saving session open',
  holds: (s) => {
    const c = src(s);
    if (!(['failed', 'cancelled'].includes(srcStatus(s)) && c.cleanedUp)) return true;
    return c.runstate === 'running' && c.devs.every((d) => d.state === 'RUNNING' && d.context.session === null);
  },
};

/** With the return path, the source completes only after the destination has. */
export const SourceCompleteMeansDestinationComplete: Invariant = {
  name: 'SourceCompleteMeansDestinationComplete',
  description: 'with the return path, a completed source means a completed destination (the guest runs somewhere)',
  holds: (s) => !(srcStatus(s) === 'completed' && src(s).returnPath) || dstStatus(s) === 'completed',
};

/**
 * The "what" of migration: the guest never runs on both hosts at once — unless management cancels, or
 * the stream breaks, after the final state was sent. That exception is a real hazard of QEMU, not of the
 * model: the destination may already run the guest while the source, waiting for the return path to
 * close, takes the cancel (the status is still device) and restarts the guest in
 * migration_iteration_finish. test/migration.test.ts pins it with the exception taken away.
 */
export const GuestRunsOnOneSide: Invariant = {
  name: 'GuestRunsOnOneSide',
  description: 'the guest never runs on both hosts at once, unless a cancel or a stream break came after the final state was sent',
  holds: (s) => !(src(s).runstate === 'running' && dst(s).runstate === 'running') || src(s).intervenedAfterEof,
};

/**
 * 5. The (VM run state, migration status, device state) tuples of docs/devel/migration/vfio.rst, as the
 * code produces them. Where the doc and the code differ the model follows the code:
 *  - the stop for switchover and migration_switchover_prepare run under one BQL hold, so after the stop
 *    the status is already pre-switchover or device (the doc shows active); PRE_COPY_P2P is passed
 *    inside that step;
 *  - a device without PRE_COPY is STOP after the VM stops and STOP_COPY only in save_complete;
 *  - the destination's run state while loading is inmigrate (the doc's RESTORE_VM is the loadvm path),
 *    QEMU asks RUNNING → RESUMING at load setup, and the destination ends in completed, not none.
 */
export const VfioStateTuplesFollowCode: Invariant = {
  name: 'VfioStateTuplesFollowCode',
  description: 'every (runstate, status, device state) tuple is one vfio.rst lists, as corrected by the code',
  holds: (s) => {
    const c = src(s);
    const st = srcStatus(s);
    const srcOk = c.devs.every((d) => sourceTupleOk(c.runstate, st, d, c));
    const d = dst(s);
    const dt = dstStatus(s);
    const dstOk = d.devs.every((dev) => destinationTupleOk(d.runstate, dt, dev.state));
    return srcOk && dstOk;
  },
};

function sourceTupleOk(run: string, status: string, d: DeviceRecord, c: QemuSourceContext): boolean {
  const pre = hasPreCopy(d.context.features);
  const v = d.state;
  switch (status) {
    case 'none':
      return run === 'running' && v === 'RUNNING';
    case 'setup':
      return run === 'running' && (v === 'RUNNING' || (pre && v === 'PRE_COPY' && c.setupDone));
    case 'wait-unplug':
    case 'active':
      return run === 'running' && v === (pre ? 'PRE_COPY' : 'RUNNING');
    case 'pre-switchover':
      return run === 'finish-migrate' && v === (pre ? 'STOP_COPY' : 'STOP');
    case 'device':
      // after save_complete every device is in STOP_COPY, its stream read to EOF
      return run === 'finish-migrate' && v === (pre || c.eofSent ? 'STOP_COPY' : 'STOP');
    case 'completed':
      return run === 'postmigrate' && v === (c.cleanedUp ? 'STOP' : 'STOP_COPY');
    case 'failed':
    case 'cancelling':
      return c.cleanedUp ? run === 'running' && v === 'RUNNING' : true; // wherever the failure struck
    case 'cancelled':
      return run === 'running' && v === 'RUNNING';
    default:
      return false; // postcopy states: unreachable with VFIO devices
  }
}

function destinationTupleOk(run: string, status: string, v: string): boolean {
  switch (status) {
    case 'none':
    case 'setup':
      return run === 'inmigrate' && v === 'RUNNING';
    case 'active':
      return run === 'inmigrate' && v === 'RESUMING';
    case 'completed':
      return run === 'running' && v === 'RUNNING';
    case 'failed':
      return run === 'inmigrate' && (v === 'RESUMING' || v === 'RUNNING');
    default:
      return false;
  }
}

/** Both sides are done (and the source has cleaned up). */
export function migrationEnded(s: GlobalView): boolean {
  return ['completed', 'failed', 'cancelled'].includes(srcStatus(s)) && src(s).cleanedUp && ['completed', 'failed'].includes(dstStatus(s));
}

/** Steps that are interventions or faults, not the migration making its own way. */
export function isInterventionOrFault(step: StepLabel): boolean {
  return step.kind === 'env' && (step.event.type === 'MIGRATE_CANCEL' || step.event.type === 'STREAM_BREAKS');
}

export const MIGRATION_INVARIANTS: readonly Invariant[] = [
  NoSwitchoverWhileAckPending,
  KernelAcceptsEveryRequest,
  NoDeviceInError,
  DestinationCompleteMeansLoaded,
  FailureRestoresSource,
  SourceCompleteMeansDestinationComplete,
  GuestRunsOnOneSide,
  VfioStateTuplesFollowCode,
];
