/**
 * The static shape of an XState v5 machine as the explorer's tools read it: its state nodes below the
 * root, its transition definitions (every `on` transition of every node, root included), and how a
 * definition is written in reports: `source --EVENT [guard]--> target`, ids without the machine id.
 * Coverage and test generation both count with these, so they can never disagree.
 */
import type { AnyStateMachine } from 'xstate';
import { guardName } from './guards.js';

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
