/**
 * Claims about multifd device-state transfer (machines/multifdSave.ts, machines/multifdLoad.ts), checked
 * over every arrival order of the packets on the channels. The claims of ./migration.ts hold as well: a
 * completed destination has received, into each device's RESUMING data_fd, every unit its source saved.
 */
import type { QemuDestinationContext } from '../../machines/qemuDestination.js';
import type { MultifdLoadRecord } from '../../machines/multifdLoad.js';
import { type GlobalView, type Invariant, allClauses } from '../explorer/system.js';
import { DESTINATION } from './migration.js';

const loadsOf = (s: GlobalView): readonly MultifdLoadRecord[] => s.context<QemuDestinationContext>(DESTINATION).multifd?.loads ?? [];

/** The load thread writes buffers strictly in index order: everything below its index, nothing above. */
export const MultifdLoadsInOrder: Invariant = {
  name: 'MultifdLoadsInOrder',
  description: 'each device\'s load thread has written exactly the buffers below its index, in order, and none above',
  holds: (s) => loadsOf(s).every((l) => l.context.bufs.every((b, i) => (b === 'written') === i < l.context.loadIdx)),
};

/** The config is loaded after the data — and after DEV_CONFIG_LOAD_READY when load-config-after-iter is on. */
export const MultifdConfigAfterData: Invariant = allClauses(
  'MultifdConfigAfterData',
  'a device\'s config is loaded only after all its data buffers were written (and, with load-config-after-iter, after DEV_CONFIG_LOAD_READY)',
  [
    {
      name: 'every data buffer was written first',
      holds: (s) => loadsOf(s).every((l) => l.state !== 'loaded' || (l.context.last !== null && l.context.loadIdx === l.context.last)),
    },
    {
      name: 'DEV_CONFIG_LOAD_READY came first (load-config-after-iter)',
      holds: (s) => loadsOf(s).every((l) => l.state !== 'loaded' || !l.context.configAfterIter || l.context.iterDone),
    },
  ],
);

/** x-migration-max-queued-buffers-size: the queued bytes never pass the cap. */
export const MultifdQueueWithinCap: Invariant = {
  name: 'MultifdQueueWithinCap',
  description: 'no device\'s queued-but-unwritten buffers exceed x-migration-max-queued-buffers-size (while the load runs)',
  holds: (s) => loadsOf(s).every((l) => l.context.cap === null || l.state === 'failed' || l.context.queued <= l.context.cap),
};

/**
 * A bounded-memory claim: no device ever queues more than `bound` units. With `bound` = what an honest
 * source can have in flight, it holds for an honest source; a malicious one (the system's
 * `maliciousPackets`) breaks it unless a cap stops the load first.
 */
export function multifdQueueBounded(bound: number): Invariant {
  return {
    name: 'MultifdQueueBounded',
    description: `no device queues more than ${bound} unit${bound === 1 ? '' : 's'} of unwritten device state on the destination`,
    holds: (s) => loadsOf(s).every((l) => l.state === 'failed' || l.context.queued <= bound),
  };
}

/** A failed multifd load started no guest on the destination and left no device loaded half-way running. */
export const MultifdFailureStartsNothing: Invariant = {
  name: 'MultifdFailureStartsNothing',
  description: 'a destination whose multifd load failed does not run the guest',
  holds: (s) => {
    const d = s.context<QemuDestinationContext>(DESTINATION);
    const failedLoad = (d.multifd?.loads ?? []).some((l) => l.state === 'failed') || d.multifd?.recvError != null;
    return !failedLoad || d.runstate !== 'running';
  },
};

export const MULTIFD_INVARIANTS: readonly Invariant[] = [MultifdLoadsInOrder, MultifdConfigAfterData, MultifdQueueWithinCap, MultifdFailureStartsNothing];
