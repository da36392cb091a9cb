/**
 * The waypoints the real-QEMU scenarios are written with (src/qemu/scenarios.ts, and the nested runs
 * with VFIO devices, src/qemu-vfio/scenarios.ts): targets in the model that plan.ts finds a path to.
 */
import type { ControllableEvent } from './model.js';
import type { Pin } from './log.js';
import type { ModelState, Waypoint } from './plan.js';

/** 100 kB/s max-bandwidth: precopy of the guest's RAM then takes long enough for 'active' to be acted in. */
export const THROTTLE = 100_000;

/** Both sides report these statuses. */
export const both = (source: string, destination: string): Waypoint => ({
  kind: 'state',
  name: `source '${source}', destination '${destination}'`,
  holds: (s) => s.source === source && s.destination === destination,
  pins: { source, destination },
});

/**
 * Both sides end in one of these outcomes ([source, destination]); which one, QEMU decides by a race.
 * The runner waits for each side to report one of its statuses in them.
 */
export const oneOf = (...outcomes: readonly (readonly [string, string])[]): Waypoint => {
  const of = (k: 0 | 1): Pin => {
    const all = [...new Set(outcomes.map((o) => o[k]))];
    return all.length === 1 ? all[0]! : all;
  };
  return {
    kind: 'state',
    name: outcomes.map(([s, d]) => `source '${s}', destination '${d}'`).join(' or '),
    holds: (s) => outcomes.some(([src, dst]) => s.source === src && s.destination === dst),
    pins: { source: of(0), destination: of(1) },
  };
};

/**
 * After migrate_cancel with a return path, in setup or precopy: cancelled/failed, or failed/failed when
 * the cancel's return-path shutdown lets the migration thread fail first (QEMU 10.0.2 migration_cancel;
 * machines/qemuSource.ts CANCEL_LOSES_TO_RETURN_PATH_ERROR).
 */
export const cancelledWithReturnPath: Waypoint = oneOf(['cancelled', 'failed'], ['failed', 'failed']);

/** The source reports this status. */
export const source = (status: string): Waypoint => ({ kind: 'state', name: `source '${status}'`, holds: (s) => s.source === status, pins: { source: status } });

/** The controllable `event`, taken while the source is in `from` (and `when` holds). */
export const step = (event: ControllableEvent, from: string, when?: (s: ModelState) => boolean): Waypoint => ({
  kind: 'step',
  name: `${event} in source '${from}'`,
  event,
  from: (s) => s.source === from && (when?.(s) ?? true),
});

/** NEW_PROCESS: a fresh destination QEMU once the source's migration ended in `sourceStatus` and the destination's failed. */
export const newDestination = (sourceStatus: string): Waypoint => ({
  kind: 'step',
  name: `a new destination process after source '${sourceStatus}'`,
  event: 'NEW_PROCESS',
  side: 'destination',
  from: (s) => s.source === sourceStatus && s.destination === 'failed',
});

/** The source has received the switchover ack. */
export const acked: Waypoint = { kind: 'state', name: 'the switchover was acked', holds: (s) => s.sourceContext.switchoverAcked };
