/**
 * The coverage items of one machine, defined as the explorer's coverage module defines them: its state
 * nodes (every node below the root, by id) and its transition definitions (every `on` transition of every
 * node, root included, as `source --EVENT [guard]--> target`). Plus the two questions test generation asks
 * of a snapshot: which state nodes are active, and which definitions a given event fires.
 */
import type { AnyStateMachine, EventObject } from 'xstate';
import { describeTransition, firedTransitionDefs, stateNodesOf, stripMachineId, transitionDefsOf } from '../explorer/machineShape.js';
import type { AnySnapshot } from '../explorer/system.js';

export interface MachineItems {
  readonly component: string;
  readonly machine: AnyStateMachine;
  /** State node ids below the root, without the machine id prefix, in document order. */
  readonly states: readonly string[];
  /** Transition definitions, described; a description that repeats gets ` #2`, ` #3`… */
  readonly transitions: readonly string[];
  /** Full state node id → index in `states`. */
  readonly stateIndex: ReadonlyMap<string, number>;
  /** Transition definition object → index in `transitions`. */
  readonly transitionIndex: ReadonlyMap<unknown, number>;
}

export { describeTransition };

/** Enumerate the state nodes and transition definitions of `machine` (a component named `component`). */
export function machineItems(component: string, machine: AnyStateMachine): MachineItems {
  const id = machine.id;
  const nodes = stateNodesOf(machine);
  const strip = (s: string) => stripMachineId(id, s);
  const stateIndex = new Map<string, number>();
  nodes.forEach((n, i) => stateIndex.set(n.id, i));
  const defs = transitionDefsOf(machine);
  const transitionIndex = new Map<unknown, number>();
  const seen = new Map<string, number>();
  const transitions = defs.map((d, i) => {
    transitionIndex.set(d, i);
    const text = describeTransition(id, d);
    const k = (seen.get(text) ?? 0) + 1;
    seen.set(text, k);
    return k === 1 ? text : `${text} #${k}`;
  });
  return { component, machine, states: nodes.map((n) => strip(n.id)), transitions, stateIndex, transitionIndex };
}

/** Indices (in `items.states`) of the state nodes active in `snapshot`, ascending. */
export function activeStates(items: MachineItems, snapshot: AnySnapshot): number[] {
  const nodes = (snapshot as unknown as { _nodes?: readonly { id: string }[] })._nodes ?? [];
  const out: number[] = [];
  for (const n of nodes) {
    const i = items.stateIndex.get(n.id);
    if (i !== undefined) out.push(i);
  }
  return out.sort((a, b) => a - b);
}

/** Indices (in `items.transitions`) of the definitions `event` fires from `snapshot` (raised events' included); [] when it is not taken. */
export function firedTransitions(items: MachineItems, snapshot: AnySnapshot, event: EventObject): number[] {
  if (snapshot.status !== 'active' || !snapshot.can(event)) return [];
  const out: number[] = [];
  for (const d of firedTransitionDefs(items.machine, snapshot, event)) {
    const i = items.transitionIndex.get(d);
    if (i !== undefined) out.push(i);
  }
  return out.sort((a, b) => a - b);
}
