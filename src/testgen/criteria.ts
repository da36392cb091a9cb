/**
 * Suites by criterion, over the explored graph of a system (or of one machine wrapped as a system):
 *
 *  - `states`: every state node of every component the exploration reached is visited;
 *  - `transitions`: every transition definition fired somewhere in the explored graph is fired, by the
 *    shortest tour the postman construction finds (src/testgen/postman.ts), with its lower bound;
 *  - `pairs`: every pair of a component's consecutive transitions that some run takes is taken;
 *  - `commands`: every environment command in every local state of its component, after every way into
 *    that state (the state it came from and the definitions fired; goals.ts), refusals included — the
 *    error-path criterion;
 *  - `verified`: every transition, each by a shortest run and then checked by the state it leaves: one
 *    case per sequence of that state's characterizing set (verify.ts) — the W-method's idea;
 *  - `target`: a shortest run to a named state (`component:stateId`, or a state id unique to one
 *    component) or to a predicate over global states;
 *  - `random`: seeded random walks of bounded length.
 *
 * A test case is a path of global steps from the initial state; each step expects every component's
 * state value after it, and what every observed component shows (observe.ts).
 */
import type { EventObject } from 'xstate';
import type { GlobalView, SystemSpec } from '../explorer/system.js';
import { treePath } from '../explorer/graph.js';
import { BoundView } from '../explorer/step.js';
import { tourLowerBound } from './bound.js';
import {
  type Criterion,
  type JsonValue,
  type Observations,
  type PresetRef,
  type SuiteCoverage,
  type SuiteStats,
  type TestCase,
  type TestSuite,
  SUITE_SCHEMA,
  canonicalEvent,
} from './fixture.js';
import { type CoverGraph, type Goal, buildCoverGraph, commandsGoal, pairsGoal, statesGoal, transitionsGoal } from './goals.js';
import { type GraphOptions, ModelGraph } from './graph.js';
import { bestTour } from './postman.js';
import { Characterizer, refine } from './verify.js';
import { randomWalks } from './walks.js';

export interface TargetPredicate {
  readonly name: string;
  readonly holds: (s: GlobalView) => boolean;
}

export interface GenerateOptions extends GraphOptions {
  readonly criterion: Criterion;
  /** Criterion `target`: a state name or a named predicate. */
  readonly target?: string | TargetPredicate;
  /** Criterion `random`: PRNG seed (default 1), steps per walk (default 20), walks (default 10). */
  readonly seed?: number;
  readonly length?: number;
  readonly walks?: number;
  /** Recorded in the fixture so that `tests replay` can rebuild the system (default null). */
  readonly preset?: PresetRef | null;
}

/** A target name that names no state (or more than one); the message lists the valid names. */
export class TargetError extends Error {
  override readonly name = 'TargetError';
}

/** Generate the suite for `opts.criterion` from a system (explored here) or an already explored graph. */
export function generateSuite(system: SystemSpec | ModelGraph, opts: GenerateOptions): TestSuite {
  const g = system instanceof ModelGraph ? system : new ModelGraph(system, opts);
  const base = {
    schema: SUITE_SCHEMA,
    system: g.name,
    preset: opts.preset ?? null,
    criterion: opts.criterion,
    observed: observedFields(g),
    initial: g.values(0),
    initialObservation: observationsAt(g, 0, 0, null),
  } as const;
  switch (opts.criterion) {
    case 'states':
    case 'transitions':
    case 'pairs':
    case 'commands': {
      const goal = goalOf(g, opts.criterion);
      const cg = buildCoverGraph(g, goal);
      const tour = bestTour(cg, cg.reachable);
      const bound = tourLowerBound(cg, cg.reachable);
      const paths = tour.cases.map((c) => c.map((a) => cg.edge[a]!));
      const covers = coversPerCase(cg, tour.cases);
      if (paths.length === 0 && cg.initial.length > 0) {
        paths.push([]);
        covers.push(cg.initial.map((i) => goal.names[i]!));
      }
      const cases = paths.map((p, i) => toCase(g, caseName(opts.criterion, i, paths.length), p, covers[i]!));
      const covered = new Set(tour.cases.flatMap((c) => c.flatMap((a) => itemsOf(cg, a))).concat(cg.initial));
      return {
        ...base,
        target: null,
        seed: null,
        length: null,
        walks: null,
        cases,
        coverage: coverageOf(goal, cg, covered),
        stats: statsOf(cases, bound.steps, tour.construction),
      };
    }
    case 'verified': {
      const goal = transitionsGoal(g);
      const paths = verifiedPaths(g, goal);
      const cases = paths.map((p, i) => toCase(g, caseName('verified', i, paths.length), p.path, p.covers));
      const cg = buildCoverGraph(g, goal);
      const covered = new Set(paths.flatMap((p) => p.items));
      return { ...base, target: null, seed: null, length: null, walks: null, cases, coverage: coverageOf(goal, cg, covered), stats: statsOf(cases, null, 'verified') };
    }
    case 'random': {
      const seed = opts.seed ?? 1;
      const length = opts.length ?? 20;
      const walks = opts.walks ?? 10;
      const goal = transitionsGoal(g);
      const cg = buildCoverGraph(g, goal);
      const seen = new Set<number>();
      const cases = randomWalks(g, seed, walks, length).map((p, i, all) => {
        const first: string[] = [];
        const items: number[] = [];
        for (const e of p) {
          items.length = 0;
          goal.covered(0, e, items);
          for (const t of items) {
            if (seen.has(t)) continue;
            seen.add(t);
            first.push(goal.names[t]!);
          }
        }
        return toCase(g, caseName('random', i, all.length), p, first);
      });
      return { ...base, target: null, seed, length, walks, cases, coverage: coverageOf(goal, cg, seen), stats: statsOf(cases, null, 'random') };
    }
    case 'target': {
      if (opts.target === undefined) throw new TargetError(`criterion target needs a target; valid: ${stateNames(g).join(', ')}`);
      const { name, holds } = typeof opts.target === 'string' ? stateTarget(g, opts.target) : predicateTarget(g, opts.target);
      const path = g.shortestPathTo(holds);
      const cases = path === null ? [] : [toCase(g, caseName('target', 0, 1), path, [name])];
      const coverage: SuiteCoverage = {
        items: 'target',
        total: 1,
        reachable: path === null ? 0 : 1,
        covered: path === null ? 0 : 1,
        unreachable: path === null ? [name] : [],
        uncovered: [],
      };
      return { ...base, target: name, seed: null, length: null, walks: null, cases, coverage, stats: statsOf(cases, path?.length ?? null, 'shortest-path') };
    }
  }
}

/**
 * For every item of `goal`, the edge that covers it after the shortest run from the initial state; the
 * case is that run, the edge, and one sequence of the characterizing set of the state it reaches (one
 * case per sequence; the run and the edge alone when the state has none).
 */
function verifiedPaths(g: ModelGraph, goal: Goal): { path: number[]; covers: string[]; items: number[] }[] {
  const keys = new Map<string, number>();
  const outs = new Int32Array(g.edgeCount).fill(-1);
  const out = (e: number): number => {
    if (outs[e]! >= 0) return outs[e]!;
    const l = g.label(e);
    const from = g.from[e]!;
    const to = g.to[e]!;
    const key = JSON.stringify([g.values(to), observationsAt(g, from, to, { component: g.components.indexOf(l.component), event: l.event })]);
    let id = keys.get(key);
    if (id === undefined) keys.set(key, (id = keys.size));
    outs[e] = id;
    return id;
  };
  const levels = refine(g, out);
  const w = new Characterizer(g, levels, out);
  // shortest runs from the initial state (BFS parents)
  const { parent, order } = g.bfs();
  const runTo = (s: number): number[] => treePath(parent, (e) => g.from[e]!, s);
  // per item and class of the state it is taken from (states the model tells apart), the covering edge
  // with the shortest run to it (the first found in BFS order): the same transition taken in different
  // situations — a reset with and without a session — is verified in each
  const classOf = levels[levels.length - 1]!;
  const chosen = new Map<string, { item: number; edge: number }>();
  const tmp: number[] = [];
  for (const s of order) {
    for (let e = g.start[s]!; e < g.start[s + 1]!; e++) {
      tmp.length = 0;
      goal.covered(0, e, tmp);
      for (const i of tmp) {
        const k = `${i}:${classOf[s]}`;
        if (!chosen.has(k)) chosen.set(k, { item: i, edge: e });
      }
    }
  }
  const byEdge = new Map<number, number[]>();
  for (const { item, edge } of chosen.values()) byEdge.set(edge, [...(byEdge.get(edge) ?? []), item]);
  const cases: { path: number[]; covers: string[]; items: number[] }[] = [];
  for (const [e, items] of [...byEdge].sort((a, b) => a[0] - b[0])) {
    const run = [...runTo(g.from[e]!), e];
    const to = g.to[e]!;
    // every step the state allows, then the sequences that tell the state apart from the others
    const single: number[][] = [];
    for (let f = g.start[to]!; f < g.start[to + 1]!; f++) single.push([f]);
    const suffixes = [...single, ...w.of(to).filter((x) => x.length > 1)];
    const covers = items.map((i) => goal.names[i]!);
    if (suffixes.length === 0) cases.push({ path: run, covers, items });
    suffixes.forEach((sfx, k) => cases.push({ path: [...run, ...sfx], covers: k === 0 ? covers : [], items }));
  }
  return cases;
}

function goalOf(g: ModelGraph, c: 'states' | 'transitions' | 'pairs' | 'commands'): Goal {
  switch (c) {
    case 'states':
      return statesGoal(g);
    case 'transitions':
      return transitionsGoal(g);
    case 'pairs':
      return pairsGoal(g);
    case 'commands':
      return commandsGoal(g);
  }
}

/** The observed components and their fields (from one observation of the initial state). */
function observedFields(g: ModelGraph): Record<string, readonly string[]> {
  const out: Record<string, readonly string[]> = {};
  g.spec.components.forEach((c, i) => {
    if (c.observe) out[c.name] = Object.keys(c.observe(g.snapshot(0, i), g.snapshot(0, i), null));
  });
  return out;
}

/** What every observed component shows in state `to`, reached from `from` by a step of `stepper` (or none). */
function observationsAt(g: ModelGraph, from: number, to: number, step: { component: number; event: EventObject } | null): Observations {
  const out: Record<string, Readonly<Record<string, JsonValue>>> = {};
  g.spec.components.forEach((c, i) => {
    if (!c.observe) return;
    const ev = step && step.component === i ? step.event : null;
    out[c.name] = c.observe(g.snapshot(to, i), g.snapshot(from, i), ev) as Record<string, JsonValue>;
  });
  return out;
}

function itemsOf(cg: CoverGraph, a: number): number[] {
  return Array.from(cg.items.subarray(cg.itemStart[a]!, cg.itemStart[a + 1]!));
}

/** The items each case covers first, in the order it covers them (the initial state's go to the first case). */
function coversPerCase(cg: CoverGraph, cases: readonly (readonly number[])[]): string[][] {
  const seen = new Set<number>();
  const names = cg.goal.names;
  return cases.map((c, k) => {
    const out: string[] = [];
    const add = (i: number) => {
      if (!seen.has(i)) {
        seen.add(i);
        out.push(names[i]!);
      }
    };
    if (k === 0) cg.initial.forEach(add);
    for (const a of c) itemsOf(cg, a).forEach(add);
    return out;
  });
}

function coverageOf(goal: Goal, cg: CoverGraph, covered: ReadonlySet<number>): SuiteCoverage {
  const reachable = new Set(cg.reachable);
  const unreachable = goal.defined === null ? [] : goal.names.slice(0, goal.defined).filter((_, i) => !reachable.has(i));
  return {
    items: goal.kind,
    total: goal.defined,
    reachable: reachable.size,
    covered: cg.reachable.filter((i) => covered.has(i)).length,
    unreachable,
    uncovered: cg.reachable.filter((i) => !covered.has(i)).map((i) => goal.names[i]!),
  };
}

function statsOf(cases: readonly TestCase[], lowerBound: number | null, construction: SuiteStats['construction']): SuiteStats {
  return { cases: cases.length, steps: cases.reduce((n, c) => n + c.steps.length, 0), lowerBound, construction };
}

function caseName(criterion: Criterion, i: number, count: number): string {
  return `${criterion}-${String(i + 1).padStart(Math.max(2, String(count).length), '0')}`;
}

/** A path of model edges from the initial state as a test case. */
function toCase(g: ModelGraph, name: string, path: readonly number[], covers: readonly string[]): TestCase {
  let at = 0;
  const steps = path.map((e) => {
    if (g.from[e] !== at) throw new Error(`test case ${name}: edge ${e} does not continue the path`);
    const from = at;
    at = g.to[e]!;
    const l = g.label(e);
    return {
      component: l.component,
      kind: l.kind,
      ...(l.kind === 'deliver' ? { channel: l.channel ?? '' } : {}),
      event: canonicalEvent(l.event),
      expect: g.values(at),
      observe: observationsAt(g, from, at, { component: g.components.indexOf(l.component), event: l.event }),
    };
  });
  return { name, covers, steps };
}

/** Every name `--target` accepts: `component:stateId` for every state, and state ids unique to one component. */
export function stateNames(g: ModelGraph): string[] {
  const qualified = g.items.flatMap((it) => it.states.map((s) => `${it.component}:${s}`));
  const count = new Map<string, number>();
  for (const it of g.items) for (const s of it.states) count.set(s, (count.get(s) ?? 0) + 1);
  return [...qualified, ...[...count].filter(([, n]) => n === 1).map(([s]) => s)];
}

function stateTarget(g: ModelGraph, name: string): { name: string; holds: (s: number) => boolean } {
  const colon = name.lastIndexOf(':');
  const matches: { c: number; k: number }[] = [];
  g.items.forEach((it, c) => {
    it.states.forEach((s, k) => {
      if (colon >= 0 ? `${it.component}:${s}` === name : s === name) matches.push({ c, k });
    });
  });
  if (matches.length !== 1) {
    const why = matches.length === 0 ? 'names no state' : `names a state of ${matches.map((m) => g.components[m.c]).join(' and ')}; qualify it`;
    throw new TargetError(`target '${name}' ${why}; valid: ${stateNames(g).join(', ')}`);
  }
  const { c, k } = matches[0]!;
  return { name: `${g.components[c]}:${g.items[c]!.states[k]}`, holds: (s) => g.activeStates(s, c).includes(k) };
}

function predicateTarget(g: ModelGraph, t: TargetPredicate): { name: string; holds: (s: number) => boolean } {
  const view = new BoundView(g.sys, g.tuple(0));
  return { name: t.name, holds: (s) => t.holds(view.bind(g.tuple(s))) };
}
