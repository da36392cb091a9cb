/**
 * Coverage of each component: which of its machine's states and which (state, event, target)
 * transitions the explored system actually took, as percentages and as the list of what was never reached.
 */
import type { AnyStateMachine } from 'xstate';
import { type TransitionDef, describeTransition, firedTransitionDefs, stateNodesOf, stripMachineId, transitionDefsOf } from './machineShape.js';
import type { LocalTable } from './local.js';
import type { CompiledSystem } from './step.js';
import type { AnySnapshot } from './system.js';

export interface Coverage {
  /** The components that share this machine and input. */
  readonly components: readonly string[];
  readonly states: { readonly reached: number; readonly total: number; readonly percent: number; readonly missed: readonly string[] };
  readonly transitions: { readonly reached: number; readonly total: number; readonly percent: number; readonly missed: readonly string[] };
  /** Distinct local snapshots (value + context) reached. */
  readonly localStates: number;
}

export function coverageOf(sys: CompiledSystem): Record<string, Coverage> {
  const out: Record<string, Coverage> = {};
  const seen = new Set<LocalTable>();
  sys.tables.forEach((table) => {
    if (seen.has(table)) return;
    seen.add(table);
    const names = sys.names.filter((_, i) => sys.tables[i] === table);
    out[names.join(',')] = tableCoverage(table, names);
  });
  return out;
}

function tableCoverage(table: LocalTable, names: string[]): Coverage {
  const machine = table.machine;
  const machineId = machine.id;
  const nodes = stateNodesOf(machine);
  const defs = transitionDefsOf(machine);
  const reachedStates = new Set<string>();
  const reachedDefs = new Set<TransitionDef>();
  const markStates = (s: AnySnapshot) => {
    for (const n of (s as unknown as { _nodes: { id: string }[] })._nodes ?? []) reachedStates.add(n.id);
  };
  const reachedLocals = new Set<number>([table.initial()]);
  for (const step of table.steps()) {
    if (!step.used) continue;
    reachedLocals.add(step.from);
    reachedLocals.add(step.to);
    const snap = table.snapshots[step.from]!;
    // the steps of a machine that raises carry what they took; others need only getTransitionData
    for (const t of (step.fired as readonly TransitionDef[] | undefined) ?? firedTransitionDefs(machine, snap, step.event)) reachedDefs.add(t);
  }
  for (const l of reachedLocals) markStates(table.snapshots[l]!);
  const strip = (id: string) => stripMachineId(machineId, id);
  const stateIds = nodes.map((n) => n.id);
  const missedStates = stateIds.filter((id) => !reachedStates.has(id)).map(strip);
  const missedDefs = defs.filter((d) => !reachedDefs.has(d)).map((d) => describeTransition(machineId, d));
  const pct = (a: number, b: number) => (b === 0 ? 100 : Math.round((1000 * a) / b) / 10);
  const sr = stateIds.length - missedStates.length;
  const tr = defs.length - missedDefs.length;
  return {
    components: names,
    states: { reached: sr, total: stateIds.length, percent: pct(sr, stateIds.length), missed: missedStates },
    transitions: { reached: tr, total: defs.length, percent: pct(tr, defs.length), missed: missedDefs },
    localStates: reachedLocals.size,
  };
}
