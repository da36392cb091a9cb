/**
 * The waypoints the real-QEMU scenarios are written with (src/qemu/scenarios.ts, and the nested runs
 * with VFIO devices, src/qemu-vfio/scenarios.ts): targets in the model that plan.ts finds a path to.
 */
import type { ControllableEvent } from './model.js';
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
