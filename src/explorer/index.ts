/**
 * The explorer: exhaustive, breadth-first checking of composed XState v5 machines.
 *
 * @example
 *   import { explore } from 'migration-statecharts/explorer';
 *   import { vfioDeviceMachine } from 'migration-statecharts/machines/vfio-device';
 *   const r = explore({
 *     components: [{ name: 'dev', machine: vfioDeviceMachine, input: { features: 'STOP_COPY' } }],
 *     environment: { dev: [{ type: 'SET_STATE', target: 'STOP' }, { type: 'SET_STATE', target: 'RUNNING' }] },
 *   });
 *   r.states; // => 5
 *   r.properties.map((p) => p.verdict); // => ['holds']
 */
import { type Coverage, coverageOf } from './coverage.js';
import { goalUnreachable, nonProgressCycle } from './liveness.js';
import { type SearchLimit, search } from './search.js';
import { CompiledSystem } from './step.js';
import { dataSymmetryCanon } from './dataSymmetry.js';
import { symmetryCanon } from './symmetry.js';
import type { ExploreOptions, Invariant, StepLabel, SystemSpec } from './system.js';
import { type Trace, buildTrace, formatTrace, pathTo } from './trace.js';

export * from './system.js';
export { type DataSymmetry, type SymmetryDefects, symmetryDefects } from './dataSymmetry.js';
export type { RunDivergence } from './divergence.js';
export { type Coverage } from './coverage.js';
export { type Trace, type TraceStep, formatTrace, formatValue } from './trace.js';
export { CompiledSystem } from './step.js';
export { search, type SearchOptions, type SearchOutcome, type SearchLimit } from './search.js';
export { type Bfs, type BfsOptions, type ExploredGraphOptions, ExploredGraph, bfs, edgeSources, reverseGraph, treePath } from './graph.js';

/**
 * What a search decided about a property. A search stopped by a bound decides only what it has a
 * counterexample for (a safety or deadlock violation, or a lasso among the states it saw); everything
 * else is 'unknown', never 'holds'.
 */
export type Verdict = 'holds' | 'violated' | 'unknown';

export interface PropertyResult {
  readonly name: string;
  readonly kind: 'safety' | 'deadlock' | 'liveness' | 'progress';
  readonly verdict: Verdict;
  /** `verdict === 'holds'`: false when the property is violated and when a bound left it undecided. */
  readonly holds: boolean;
  readonly description?: string;
  /** The shortest run that breaks it (a lasso for non-progress cycles). */
  readonly counterexample: Trace | null;
  /** How many states break it, where that is meaningful. */
  readonly count?: number;
  /** For an invariant made of clauses: the clauses the counterexample's last state breaks. */
  readonly broken?: readonly string[];
}

export interface ExploreResult {
  readonly system: string;
  readonly states: number;
  readonly transitions: number;
  readonly seconds: number;
  readonly statesPerSecond: number;
  /** XState transition() calls made (one per distinct local step). */
  readonly localTransitions: number;
  readonly symmetry: boolean;
  /**
   * Why the symmetry reduction used is not exact (DataSymmetry.approximate), or null: then no property
   * is concluded to hold, and only violations whose traces replay as real runs are reported.
   */
  readonly approximation: string | null;
  readonly properties: readonly PropertyResult[];
  readonly deadlocks: number;
  readonly coverage: Record<string, Coverage>;
  /** Set when the search stopped at a bound; the figures are then partial. */
  readonly limit: SearchLimit | null;
  /** Retained bytes of the state store per state. */
  readonly bytesPerState: number;
}

/** Explore `spec` exhaustively and check everything it declares. */
export function explore(spec: SystemSpec, opts: ExploreOptions = {}): ExploreResult {
  const sys = new CompiledSystem(spec, opts.stepWith ? { stepWith: opts.stepWith } : {});
  const useSym = (opts.symmetry ?? true) && ((spec.symmetry?.length ?? 0) > 0 || spec.dataSymmetry !== undefined);
  if (useSym) sys.canon = spec.dataSymmetry ? dataSymmetryCanon(sys, spec.dataSymmetry) : symmetryCanon(sys, spec.symmetry!);
  const wantEdges = spec.goal !== undefined || spec.progress !== undefined;
  // with no goal, the edges are read only by the non-progress check: keep just its non-progress steps
  const progress = spec.progress;
  const onlyNonProgress = spec.goal === undefined && progress !== undefined;
  const out = search(sys, { ...opts, recordEdges: wantEdges, ...(onlyNonProgress ? { keepEdge: (step: StepLabel) => !progress(step) } : {}) });
  const bytesPerState = out.states > 0 ? out.store.bytes / out.states : 0;
  // with forget or cut, a trace is replayed step by step in the system without them (the real values)
  let concrete: CompiledSystem | undefined;
  const real = (): CompiledSystem | undefined => {
    if (spec.forget === undefined && spec.cut === undefined) return undefined;
    const { forget: _f, cut: _c, ...plain } = spec;
    return (concrete ??= new CompiledSystem(plain, opts.stepWith ? { stepWith: opts.stepWith } : {}));
  };
  // Under an approximate symmetry (DataSymmetry.approximate) the quotient may miss states and may hold
  // paths no real run takes: nothing is concluded to hold, and a violation stands only when its trace
  // replays as a real run (buildTrace throws when a step has no real counterpart).
  const approximation = useSym && sys.canon !== null && spec.dataSymmetry?.approximate !== undefined ? spec.dataSymmetry.approximate : null;
  const replayed = (build: () => Trace): Trace | null => {
    if (approximation === null) return build();
    try {
      return build();
    } catch {
      return null;
    }
  };
  const trace = (idx: number) => replayed(() => buildTrace(sys, out.store, pathTo(out.store, idx), undefined, real()));

  const properties: PropertyResult[] = [];
  // Violations found before a bound stopped the search are real; the absence of one proves nothing.
  const decided = (violated: boolean) => verdictOf(violated, out.limit !== null);
  const brokenAt = (inv: Invariant, idx: number): string[] => {
    const t = new Uint32Array(sys.width);
    out.store.load(idx, t);
    const view = sys.view(t);
    return (inv.clauses ?? []).filter((c) => !c.holds(view)).map((c) => c.name);
  };
  for (const inv of spec.invariants ?? []) {
    const v = out.violations.get(inv.name);
    const broken = v !== undefined && inv.clauses ? brokenAt(inv, v) : [];
    properties.push({
      name: inv.name,
      kind: 'safety',
      ...decided(v !== undefined),
      ...(inv.description ? { description: inv.description } : {}),
      counterexample: v === undefined ? null : trace(v),
      ...(broken.length > 0 ? { broken } : {}),
    });
  }
  // a system with cut states is not checked for deadlocks (see SystemSpec.cut)
  if (spec.cut === undefined) properties.push({
    name: 'NoDeadlock',
    kind: 'deadlock',
    ...decided(out.deadlockCount > 0),
    description: 'every reachable state has an enabled step or is terminal',
    counterexample: out.deadlocks.length > 0 ? trace(out.deadlocks[0]!) : null,
    count: out.deadlockCount,
  });
  // Liveness needs the whole graph: a bound leaves the goal and progress claims undecided.
  if (out.limit && spec.goal) {
    properties.push({ name: spec.goalName ?? 'GoalAlwaysReachable', kind: 'liveness', ...decided(false), ...(spec.goalDescription ? { description: spec.goalDescription } : {}), counterexample: null });
  }
  if (out.limit && spec.progress) {
    properties.push({ name: 'NoNonProgressCycle', kind: 'progress', ...decided(false), description: 'no reachable cycle avoids every progress step', counterexample: null });
  }
  if (out.edges && spec.goal) {
    const bad = goalUnreachable(sys, out.store, out.edges, spec.goal, spec.goalVia);
    properties.push({
      name: spec.goalName ?? 'GoalAlwaysReachable',
      kind: 'liveness',
      ...decided(bad !== null),
      description:
        spec.goalDescription ??
        (spec.goalVia ? 'from every reachable state a goal state can be reached by the allowed steps' : 'from every reachable state a goal state can be reached'),
      counterexample: bad ? trace(bad.first) : null,
      ...(bad ? { count: bad.count } : {}),
    });
  }
  if (out.edges && spec.progress) {
    const lasso = nonProgressCycle(sys, out.store, out.edges, spec.progress, spec.fair, spec.progressScope);
    let cex: Trace | null = null;
    if (lasso) {
      const stem = pathTo(out.store, lasso.entry);
      cex = replayed(() => buildTrace(sys, out.store, [...stem, ...lasso.cycle.slice(1)], stem.length, real()));
    }
    properties.push({
      name: 'NoNonProgressCycle',
      kind: 'progress',
      ...decided(lasso !== null),
      description: 'no reachable cycle avoids every progress step',
      counterexample: cex,
    });
  }
  if (approximation !== null) {
    properties.forEach((p, i) => {
      if (p.verdict === 'holds' || (p.verdict === 'violated' && p.counterexample === null)) {
        const { counterexample: _dropped, count: _count, broken: _broken, ...rest } = p;
        properties[i] = { ...rest, verdict: 'unknown', holds: false, counterexample: null };
      }
    });
  }
  const coverage = coverageOf(sys);
  return {
    system: spec.name ?? 'system',
    states: out.states,
    transitions: out.transitions,
    seconds: out.seconds,
    statesPerSecond: out.seconds > 0 ? Math.round(out.states / out.seconds) : out.states,
    localTransitions: sys.tables.reduce((a, t, i) => (sys.tables.indexOf(t) === i ? a + t.transitionsRun : a), 0),
    symmetry: useSym,
    approximation,
    properties,
    deadlocks: out.deadlockCount,
    coverage,
    limit: out.limit,
    bytesPerState,
  };
}

function verdictOf(violated: boolean, stopped: boolean): { verdict: Verdict; holds: boolean } {
  const verdict: Verdict = violated ? 'violated' : stopped ? 'unknown' : 'holds';
  return { verdict, holds: verdict === 'holds' };
}

/** The eight-column mark a text report puts before a property's name. */
export function verdictMark(p: { readonly verdict: Verdict }): string {
  return p.verdict === 'holds' ? 'holds   ' : p.verdict === 'violated' ? 'VIOLATED' : 'unknown ';
}

/** A short text report: counts, each property with holds/violated and its trace, coverage. */
export function formatReport(r: ExploreResult): string {
  const lines = [
    `${r.system}: ${r.states.toLocaleString('en-US')} states, ${r.transitions.toLocaleString('en-US')} transitions in ${r.seconds.toFixed(2)} s` +
      ` (${r.statesPerSecond.toLocaleString('en-US')} states/s${r.symmetry ? ', symmetry reduced' : ''})`,
  ];
  if (r.limit) lines.push(`STOPPED: ${r.limit.message}; the figures above are partial`);
  if (r.approximation) lines.push(`APPROXIMATE: ${r.approximation}; nothing is concluded to hold`);
  for (const p of r.properties) {
    lines.push(`  ${verdictMark(p)} ${p.name}${p.count ? ` (${p.count} states)` : ''}${p.broken ? ` — broken: ${p.broken.join('; ')}` : ''}`);
    if (p.counterexample) lines.push(formatTrace(p.counterexample).replace(/^/gm, '    '));
  }
  lines.push('coverage:');
  for (const [name, c] of Object.entries(r.coverage)) {
    lines.push(`  ${name}: states ${c.states.reached}/${c.states.total} (${c.states.percent}%), transitions ${c.transitions.reached}/${c.transitions.total} (${c.transitions.percent}%), ${c.localStates} local snapshots`);
  }
  return lines.join('\n');
}
