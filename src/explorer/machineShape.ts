/**
 * The static shape of an XState v5 machine as the explorer's tools read it: its state nodes below the
 * root, its transition definitions (every `on` transition of every node, root included), and how a
 * definition is written in reports: `source --EVENT [guard]--> target`, ids without the machine id.
 * Coverage and test generation both count with these, so they can never disagree.
 */
import type { AnyActorScope, AnyStateMachine, EventObject } from 'xstate';
import { inertScope } from '../../machines/inertScope.js';
import { guardName } from './guards.js';
import type { AnySnapshot } from './system.js';

export interface TransitionDef {
  readonly source: { readonly id: string };
  readonly eventType: string;
  readonly target?: readonly { readonly id: string }[] | undefined;
  readonly guard?: unknown;
}

interface NodeLike {
  readonly id: string;
  readonly states: Record<string, NodeLike>;
  readonly transitions: Map<string, TransitionDef[]>;
}

/** Every state node below the root, in document order. */
export function stateNodesOf(machine: AnyStateMachine): { readonly id: string }[] {
  const out: NodeLike[] = [];
  const walk = (n: NodeLike) => {
    for (const c of Object.values(n.states)) {
      out.push(c);
      walk(c);
    }
  };
  walk(machine.root as unknown as NodeLike);
  return out;
}

/** Every transition definition of the machine, the root's first. */
export function transitionDefsOf(machine: AnyStateMachine): TransitionDef[] {
  const nodes = [machine.root as unknown as NodeLike, ...(stateNodesOf(machine) as NodeLike[])];
  return nodes.flatMap((n) => [...n.transitions.values()].flat());
}

/** A state node id without the machine id prefix. */
export function stripMachineId(machineId: string, id: string): string {
  return id.startsWith(machineId + '.') ? id.slice(machineId.length + 1) : id;
}

/** `source --EVENT [guard]--> target`; a targetless transition points back at its source. */
export function describeTransition(machineId: string, t: TransitionDef): string {
  const strip = (id: string) => stripMachineId(machineId, id);
  const name = guardName(t.guard);
  const guard = name ? ` [${name}]` : '';
  const target = t.target && t.target.length > 0 ? t.target.map((n) => strip(n.id)).join(',') : strip(t.source.id);
  return `${strip(t.source.id)} --${t.eventType}${guard}--> ${target}`;
}

type ActionRef = unknown;
interface NodeWithActions {
  readonly states: Record<string, NodeWithActions>;
  readonly transitions: Map<string, { actions: readonly ActionRef[] }[]>;
  readonly always?: readonly { actions: readonly ActionRef[] }[];
  readonly entry: readonly ActionRef[];
  readonly exit: readonly ActionRef[];
}

/** The built-in type of an action reference (`xstate.raise`…), named ones looked up in the machine's implementations. */
function builtinType(machine: AnyStateMachine, a: ActionRef): string | undefined {
  const impls = (machine as unknown as { implementations: { actions: Record<string, unknown> } }).implementations.actions;
  const name = typeof a === 'string' ? a : typeof a === 'object' && a !== null ? (a as { type?: unknown }).type : undefined;
  const fn = typeof name === 'string' ? impls[name] : a;
  const t = (fn as { type?: unknown } | undefined)?.type;
  return typeof t === 'string' ? t : undefined;
}

/**
 * The transition definitions that may raise an event: a `raise` among their actions, or a target whose
 * entry (or a source whose exit) may raise — `raise`, or `enqueueActions` there. `enqueueActions` on a
 * transition is taken not to raise (no machine here raises from one; name a `raise` action instead).
 */
export function raisingDefs(machine: AnyStateMachine): ReadonlySet<unknown> {
  const is = (a: ActionRef, ...types: string[]) => types.includes(builtinType(machine, a) ?? '');
  const defs = new Set<unknown>();
  let entryOrExitRaises = false;
  const all: { actions: readonly ActionRef[]; target?: unknown; reenter?: boolean }[] = [];
  const walk = (n: NodeWithActions): void => {
    if ([...n.entry, ...n.exit].some((a) => is(a, 'xstate.raise', 'xstate.enqueueActions'))) entryOrExitRaises = true;
    all.push(...[...n.transitions.values()].flat(), ...(n.always ?? []));
    Object.values(n.states).forEach(walk);
  };
  walk(machine.root as unknown as NodeWithActions);
  for (const t of all) {
    const moves = (Array.isArray(t.target) && t.target.length > 0) || t.reenter === true;
    if (t.actions.some((a) => is(a, 'xstate.raise')) || (entryOrExitRaises && moves)) defs.add(t);
  }
  return defs;
}

interface Replay {
  readonly raising: ReadonlySet<unknown>;
  scope?: AnyActorScope;
  readonly taken: TransitionDef[];
}
const replays = new WeakMap<AnyStateMachine, Replay>();

/**
 * The transition definitions `event` fires from `snapshot`: those of every microstep of the macrostep,
 * so a machine that raises internal events (the VFIO device's `ARC`s) has the transitions they take
 * counted too. When no transition taken first may raise, this is the first microstep's,
 * `getTransitionData`, and nothing is replayed.
 * Pure: the replay runs on an inert scope, actions are not executed.
 */
export function firedTransitionDefs(machine: AnyStateMachine, snapshot: AnySnapshot, event: EventObject): readonly TransitionDef[] {
  let r = replays.get(machine);
  if (!r) replays.set(machine, (r = { raising: raisingDefs(machine), taken: [] }));
  const m = machine as unknown as {
    getTransitionData(s: AnySnapshot, e: EventObject): TransitionDef[] | undefined;
    transition(s: AnySnapshot, e: EventObject, scope: AnyActorScope): unknown;
  };
  const first = m.getTransitionData(snapshot, event) ?? [];
  const raising = r.raising;
  if (!first.some((t) => raising.has(t))) return first;
  const replay = r;
  replay.scope ??= inertScope(machine, undefined, undefined, (ts) => replay.taken.push(...(ts as TransitionDef[])));
  replay.taken.length = 0;
  m.transition(snapshot, event, replay.scope);
  return [...new Set(replay.taken)];
}
