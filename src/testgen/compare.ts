/**
 * The baseline test generation is measured against: `xstate/graph`'s `createTestModel(machine,
 * { events }).getShortestPaths()` — one shortest path to every distinct (snapshot, last transition)
 * xstate/graph distinguishes, paths that are prefixes of others dropped — counted as the total steps of
 * all its paths. Single machines only, as xstate/graph takes one machine.
 */
import type { AnyStateMachine, EventObject } from 'xstate';
import { createTestModel } from 'xstate/graph';

export interface ShortestPathsTotal {
  /** Paths after xstate/graph's deduplication. */
  readonly paths: number;
  /** Their total length in events. */
  readonly steps: number;
}

/**
 * `events` completed as xstate/graph completes them: a bare `{ type }` for every event type the machine
 * handles that the list has no sample of. Generate from the completed list to compare like with like.
 */
export function eventsAsXstateGraphSeesThem(machine: AnyStateMachine, events: readonly EventObject[]): EventObject[] {
  const types = new Set<string>();
  const walk = (node: { transitions: Map<string, unknown>; states: Record<string, unknown> }) => {
    for (const t of node.transitions.keys()) types.add(t);
    for (const c of Object.values(node.states)) walk(c as typeof node);
  };
  walk(machine.root as unknown as { transitions: Map<string, unknown>; states: Record<string, unknown> });
  const given = new Set(events.map((e) => e.type));
  const missing = [...types].filter((t) => !given.has(t) && t !== '*' && !t.startsWith('xstate.')).sort();
  return [...events, ...missing.map((type) => ({ type }))];
}

/** xstate/graph's shortest-paths suite for `machine` driven by `events` (with `input`), in total steps. */
export function xstateShortestPathsTotal(machine: AnyStateMachine, events: readonly EventObject[], input?: unknown): ShortestPathsTotal {
  const model = createTestModel(machine, { events: [...events], ...(input !== undefined ? { input } : {}) });
  const paths = model.getShortestPaths();
  return { paths: paths.length, steps: paths.reduce((n, p) => n + p.weight, 0) };
}
