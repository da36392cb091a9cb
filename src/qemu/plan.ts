/**
 * Test generation from the model: a scenario's targets (waypoints) are reached by a shortest path in
 * the explored model, and the path is projected to the controllable actions — each with the statuses
 * both sides have in the model just before it, which the runner waits for on the real QEMUs.
 */
import type { QemuDestinationContext } from '../../machines/qemuDestination.js';
import type { QemuSourceContext } from '../../machines/qemuSource.js';
import { bfs, treePath } from '../explorer/graph.js';
import { type Pin, type Side, pinAccepts } from './log.js';
import { type ControllableEvent, type Edge, type ModelConfig, type StatusGraph, statusGraph } from './model.js';

/** One global model state, as waypoint predicates see it. */
export interface ModelState {
  readonly source: string;
  readonly destination: string;
  readonly sourceContext: QemuSourceContext;
  /** The source's state below its status (sourcePhase), or null. */
  readonly sourcePhase: string | null;
  readonly destinationContext: QemuDestinationContext;
}

export type Waypoint =
  /**
   * Reach a state where `holds`. `pins` names the statuses the predicate fixes: the runner waits for
   * the real QEMUs to report them before the next action (and at the end).
   */
  | { readonly kind: 'state'; readonly name: string; readonly holds: (s: ModelState) => boolean; readonly pins?: Partial<Record<Side, Pin>> }
  /** Take the controllable step `event` from a state where `from` holds. */
  | { readonly kind: 'step'; readonly name: string; readonly event: ControllableEvent; readonly from: (s: ModelState) => boolean; readonly side?: Side }
  /**
   * Here, issue commands the model does not take in this state: QEMU must refuse them. `continueState`:
   * send MIGRATE_CONTINUE with that state argument, which must differ from the model's source status
   * here (QEMU refuses it then, whether or not the model would continue).
   */
  | { readonly kind: 'probe'; readonly name: string; readonly events: readonly ControllableEvent[]; readonly continueState?: string };

export interface PlannedAction {
  readonly event: ControllableEvent;
  readonly side: Side;
  /** Both sides' model statuses just before the action. */
  readonly before: { readonly source: string; readonly destination: string };
  /**
   * The statuses the runner waits for before the action: the acting side's, the destination's
   * 'setup' before MIGRATE (a connect needs a listener), and those the last waypoint pinned. (A
   * shortest path may leave the other side behind what QEMU does, e.g. the stream header undelivered,
   * so its status there is not waited for.)
   */
  readonly waitFor: Partial<Record<Side, Pin>>;
  /** A probe: the model does not take this step here, so QEMU must refuse the command. */
  readonly probe: boolean;
  /** MIGRATE_CONTINUE's state argument when it is not the adapter's default ('pre-switchover'). */
  readonly continueState?: string;
}

export interface Plan {
  readonly config: ModelConfig;
  readonly actions: readonly PlannedAction[];
  /** Both sides' model statuses at the end of the path. */
  readonly final: { readonly source: string; readonly destination: string };
  /** The final statuses the last waypoint pinned (what the runner waits for at the end). */
  readonly finalWait: Partial<Record<Side, Pin>>;
  /** The model path, one line per step (who took which event, and both statuses after it), for reports. */
  readonly path: readonly string[];
}

/** Steps a path may take on its own between waypoints: internal ones and the ordinary management commands. */
const ORDINARY: ReadonlySet<ControllableEvent> = new Set(['MIGRATE_INCOMING', 'MIGRATE', 'MIGRATE_CONTINUE']);

/** The side an event is sent to (CONT goes to either: a route takes the side of its model step; a probe of CONT means the source's). */
const SIDE_OF: Readonly<Record<ControllableEvent, Side>> = {
  MIGRATE: 'source',
  MIGRATE_CANCEL: 'source',
  MIGRATE_CONTINUE: 'source',
  STREAM_BREAKS: 'source',
  STOP: 'source',
  CONT: 'source',
  MIGRATE_INCOMING: 'destination',
  NEW_PROCESS: 'destination',
};

export class PlanError extends Error {
  override readonly name = 'PlanError';
}

export function stateOf(g: StatusGraph, i: number): ModelState {
  return { source: g.status(i, 'source'), destination: g.status(i, 'destination'), sourceContext: g.sourceContext[i]!, sourcePhase: g.sourcePhase[i] ?? null, destinationContext: g.destinationContext[i]! };
}

export interface PlanOptions {
  /**
   * Take MIGRATE only once the destination listens (is in 'setup'), as a real connect needs; see
   * MIGRATE_NEEDS_A_LISTENER in exceptions.ts. Default true; false to plan an unreachable destination.
   */
  readonly migrateNeedsListener?: boolean;
}

/** Plan a scenario: the shortest path through the waypoints, projected to its controllable actions. */
export function plan(config: ModelConfig, waypoints: readonly Waypoint[], opts: PlanOptions = {}): Plan {
  const listener = opts.migrateNeedsListener ?? true;
  const g = statusGraph(config);
  let at = 0;
  const actions: PlannedAction[] = [];
  const path: string[] = [];
  const before = (i: number) => ({ source: g.status(i, 'source'), destination: g.status(i, 'destination') });
  let pins: Partial<Record<Side, Pin>> = {};
  // a side pinned to several statuses (an outcome a race decides) is waited for with all of them while
  // the model stays in one of them, also when that side acts next and across later waypoints that do
  // not pin it (e.g. migrate after a cancel that may have ended 'failed')
  let alternatives: Partial<Record<Side, readonly string[]>> = {};
  const waitFor = (i: number, event: ControllableEvent, probe = false, acting: Side = SIDE_OF[event]): Partial<Record<Side, Pin>> => {
    const w: Partial<Record<Side, Pin>> = {};
    for (const [side, pin] of Object.entries(pins) as [Side, Pin][]) if (pinAccepts(pin, g.status(i, side))) w[side] = pin;
    const here = g.status(i, acting);
    w[acting] = alternatives[acting]?.includes(here) ? alternatives[acting] : here;
    if (event === 'MIGRATE' && listener && !probe) w.destination = 'setup';
    return w;
  };
  for (const wp of waypoints) {
    if (wp.kind === 'probe') {
      for (const event of wp.events) {
        const side = SIDE_OF[event];
        const wrongState = event === 'MIGRATE_CONTINUE' ? wp.continueState : undefined;
        if (wrongState !== undefined && wrongState === g.status(at, 'source')) {
          throw new PlanError(`probe '${wp.name}': MIGRATE_CONTINUE with state '${wrongState}' names the model's source status there; only a wrong state is refused`);
        }
        const takes = g.succ[at]!.filter((e) => e.action === event && e.label.component === side);
        if (wrongState === undefined && takes.some((e) => g.changed(at, e.to).length > 0)) {
          throw new PlanError(`probe '${wp.name}': the model takes ${event} in ${describe(g, at)}; only a step it refuses can be probed`);
        }
        actions.push({ event, side, before: before(at), waitFor: waitFor(at, event, true), probe: true, ...(wrongState !== undefined ? { continueState: wrongState } : {}) });
      }
      continue;
    }
    const steps = route(g, at, wp, listener);
    if (!steps) throw new PlanError(`waypoint '${wp.name}' is unreachable in the model from ${describe(g, at)}`);
    for (const { from, edge } of steps) {
      const e = g.succ[from]![edge]!;
      if (e.action) {
        const side = e.label.component as Side;
        actions.push({ event: e.action, side, before: before(from), waitFor: waitFor(from, e.action, false, side), probe: false });
        pins = {};
      }
      path.push(`${e.label.kind === 'env' ? 'env' : e.label.channel} → ${e.label.component}: ${e.label.event.type}   ⇒ ${describe(g, e.to)}`);
      at = e.to;
      for (const side of ['source', 'destination'] as const) if (!alternatives[side]?.includes(g.status(at, side))) delete alternatives[side];
    }
    if (wp.kind === 'state') {
      pins = { ...(wp.pins ?? {}) };
      for (const [side, pin] of Object.entries(pins) as [Side, Pin][]) {
        if (typeof pin === 'string') delete alternatives[side];
        else alternatives[side] = pin;
      }
    }
  }
  return { config, actions, final: before(at), finalWait: pins, path };
}

function describe(g: StatusGraph, i: number): string {
  return `source '${g.status(i, 'source')}', destination '${g.status(i, 'destination')}'`;
}

/**
 * Shortest route (as state/edge-index pairs) from `start` to the waypoint: the explorer's bfs over the
 * model's nodes, taking only internal steps and the ordinary commands, up to the first node where a
 * state waypoint holds, or where a step waypoint's command can be taken (its step then ends the route).
 */
function route(g: StatusGraph, start: number, wp: Exclude<Waypoint, { kind: 'probe' }>, listener: boolean): { from: number; edge: number }[] | null {
  const { edges } = g;
  const allowed = (i: number, e: Edge) =>
    e.action === null || (ORDINARY.has(e.action) && !(listener && e.action === 'MIGRATE' && g.status(i, 'destination') !== 'setup'));
  // the command's plain step: an environment variant of it (MIGRATE_CANCEL's returnPathFirst, an
  // interleaving QEMU may also take) is nothing a plan can drive
  const stepFrom = (i: number): number => {
    if (wp.kind !== 'step' || !wp.from(stateOf(g, i))) return -1;
    const takes = (e: Edge) => e.action === wp.event && (wp.side === undefined || e.label.component === wp.side);
    const variant = (e: Edge) => (e.label.event as { returnPathFirst?: true }).returnPathFirst === true;
    const plain = g.succ[i]!.findIndex((e) => takes(e) && !variant(e));
    return plain >= 0 ? plain : g.succ[i]!.findIndex(takes);
  };
  const r = bfs(g.nodes, edges.start, edges.to, [start], {
    follow: (a, i) => allowed(i, g.succ[i]![a - edges.start[i]!]!),
    until: wp.kind === 'state' ? (i) => wp.holds(stateOf(g, i)) : (i) => stepFrom(i) >= 0,
  });
  if (r.found < 0) return null;
  const out = treePath(r.parent, (a) => edges.from[a]!, r.found).map((a) => ({ from: edges.from[a]!, edge: a - edges.start[edges.from[a]!]! }));
  if (wp.kind === 'step') out.push({ from: r.found, edge: stepFrom(r.found) });
  return out;
}
