/**
 * The REINIT storm run asks L2 only and explores only what L2 needs (migrationSystem's `livelockOnly`:
 * no ghost state, the property-only counters and call results forgotten, ended migrations cut). These
 * tests check that reduction against the storm run without it, on the systems `check --design` runs:
 *  - forget is a bisimulation: the unreduced states, mapped through it (and without their ghosts), are
 *    exactly the reduced system's states, with exactly its steps between them;
 *  - cut is safe for L2: no state in L2's scope follows a cut state, and the reduced run reaches the same
 *    scope states with the same steps among them;
 *  - the L2 verdicts are the same, violated ones included, and a counterexample shows the real values.
 */
import type { EventObject } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { ReinitDesign } from '../machines/qemuSource.js';
import type { FeatureSet } from '../machines/vfioArcs.js';
import { type AnySnapshot, CompiledSystem, type SystemSpec, explore, search } from '../src/explorer/index.js';
import { reinitLivelockScope } from '../src/properties/reinit.js';
import { type MigrationOptions, migrationSystem } from '../src/systems/migration.js';
import { checkDesign } from '../src/systems/reinit.js';

const P2P: FeatureSet = 'STOP_COPY|P2P|PRE_COPY';

/** The properties' ghost state (src/properties/ghosts.ts), which the reduced run does not carry. */
const GHOSTS = ['gen', 'approvedGen', 'stoppedWithAckPending', 'intervenedAfterEof'];

interface Graph {
  readonly sys: CompiledSystem;
  /** each state as a string of normalised component and message ids */
  readonly states: readonly string[];
  readonly inScope: readonly boolean[];
  readonly cut: readonly boolean[];
  readonly edges: readonly (readonly [number, number, number])[];
  readonly l2: boolean;
}

/**
 * Explore `spec` and describe each state by its components' snapshots (through `forget`, without ghosts)
 * and its channels' messages (INIT_DATA_SENT's ghost generation dropped), as strings of ids from `ids`,
 * comparable across the systems that share it.
 */
function graphOf(spec: SystemSpec, forget: SystemSpec['forget'], cutBy: SystemSpec['cut'], ids: Map<string, number>): Graph {
  const sys = new CompiledSystem(spec);
  const out = search(sys, { progress: false, recordEdges: true });
  expect(out.limit).toBeNull();
  const idOf = (key: string) => ids.get(key) ?? (ids.set(key, ids.size), ids.size - 1);
  const localKey = sys.names.map(() => new Map<number, number>());
  const cutLocal = sys.names.map(() => new Map<number, boolean>());
  const local = (c: number, id: number): number => {
    let k = localKey[c]!.get(id);
    if (k === undefined) {
      const name = sys.names[c]!;
      const s = sys.tables[c]!.snapshots[id]!;
      const f = forget?.[name] ? forget[name](s) : s;
      const ctx = { ...(f.context as Record<string, unknown>) };
      for (const g of GHOSTS) delete ctx[g];
      k = idOf(JSON.stringify([name, f.value, ctx]));
      localKey[c]!.set(id, k);
      cutLocal[c]!.set(id, cutBy?.[name]?.(s) ?? false);
    }
    return k;
  };
  const message = (id: number): number => {
    const e = sys.messages.events[id] as EventObject & { gen?: number };
    return idOf(JSON.stringify(e.gen === undefined ? e : { ...e, gen: 0 }));
  };
  const t = new Uint32Array(sys.width);
  const view = sys.view(t);
  const states: string[] = [];
  const inScope: boolean[] = [];
  const cut: boolean[] = [];
  for (let i = 0; i < out.states; i++) {
    out.store.load(i, t);
    const words: number[] = [];
    let isCut = false;
    for (let w = 0; w < sys.width; w++) {
      if (w < sys.names.length) {
        words.push(local(w, t[w]!));
        isCut ||= cutLocal[w]!.get(t[w]!)!;
      } else words.push(t[w] === 0 ? -1 : message(t[w]!));
    }
    states.push(words.join(','));
    inScope.push(reinitLivelockScope(view.bind(t)));
    cut.push(isCut);
  }
  const edges: [number, number, number][] = [];
  const e = out.edges!;
  for (let s = 0; s < out.states; s++) for (let k = e.start[s]!; k < e.start[s + 1]!; k++) edges.push([s, e.step[k]!, e.to[k]!]);
  const l2 = explore(spec, { progress: false }).properties.find((p) => p.name === 'NoNonProgressCycle')!.holds;
  return { sys, states, inScope, cut, edges, l2 };
}

const edgeKeys = (g: Graph, keep: (s: number) => boolean = () => true): Set<string> =>
  new Set(g.edges.filter(([a, , b]) => keep(a) && keep(b)).map(([a, step, b]) => `${g.states[a]}|${step}|${g.states[b]}`));

/** The unreduced storm, the reduced one without its cut, and the reduced one. */
function three(o: Config) {
  const reduced = migrationSystem({ ...o, guestReinits: 'unbounded', livelockOnly: true });
  const { cut, ...forgetOnly } = reduced;
  const ids = new Map<string, number>();
  return {
    full: graphOf(migrationSystem({ ...o, guestReinits: 'unbounded' }), reduced.forget, cut, ids),
    forgetOnly: graphOf(forgetOnly, reduced.forget, cut, ids),
    reduced: graphOf(reduced, reduced.forget, cut, ids),
  };
}

type Config = MigrationOptions & { readonly design: ReinitDesign };
const CONFIGS: readonly [string, Config][] = [
  ['recheck-resume, 2 devices, budget 2, cancel and faults (check --design)', { devices: [P2P, P2P], ack: 'per-device', design: 'recheck-resume', reinitBudget: 2 }],
  ...(['legacy', 'reusable-ack', 'recheck-resume'] as const).flatMap((design: ReinitDesign): [string, Config][] => [
    [`${design}, 1 device, no budget`, { devices: [P2P], ack: 'per-device', design }],
    [`${design}, 1 device, budget 1`, { devices: [P2P], ack: 'per-device', design, reinitBudget: 1 }],
  ]),
];

describe('the L2 reduction of the REINIT storm run', () => {
  it.each(CONFIGS)('%s: forget is a bisimulation, cut is never followed by a scope state, the verdict is the same', (_, o) => {
    const { full, forgetOnly, reduced } = three(o);
    // forget: the same states and the same steps, up to the forgotten fields
    expect(new Set(forgetOnly.states).size).toBe(forgetOnly.states.length);
    expect(new Set(full.states)).toEqual(new Set(forgetOnly.states));
    expect(edgeKeys(full)).toEqual(edgeKeys(forgetOnly));
    expect(forgetOnly.states.length).toBeLessThan(full.states.length);
    // cut: nothing in scope is reachable from a cut state (over the steps of the uncut system)
    const from = forgetOnly.states.map((_, i) => i).filter((i) => forgetOnly.cut[i]);
    const seen = new Uint8Array(forgetOnly.states.length);
    const succ = forgetOnly.states.map((): number[] => []);
    for (const [a, , b] of forgetOnly.edges) succ[a]!.push(b);
    for (const s of from) seen[s] = 1;
    for (let q = [...from]; q.length > 0; ) {
      const s = q.pop()!;
      expect(forgetOnly.inScope[s], `scope state ${forgetOnly.states[s]} after a cut state`).toBe(false);
      for (const b of succ[s]!) if (!seen[b]) (seen[b] = 1), q.push(b);
    }
    expect(from.length).toBeGreaterThan(0);
    // and the reduced run has exactly the scope states, and the steps among them
    const scope = (g: Graph) => new Set(g.states.filter((_, i) => g.inScope[i]));
    expect(scope(reduced)).toEqual(scope(forgetOnly));
    expect(edgeKeys(reduced, (s) => reduced.inScope[s]!)).toEqual(edgeKeys(forgetOnly, (s) => forgetOnly.inScope[s]!));
    expect(reduced.cut.some(Boolean)).toBe(false);
    // the verdicts
    expect(reduced.l2).toBe(full.l2);
    expect(forgetOnly.l2).toBe(full.l2);
  });

  it('the configurations include livelocks: a design without a budget, and legacy with one', () => {
    const verdicts = CONFIGS.map(([name, o]) => [name, checkDesign({ ...o, reinits: 1 }).properties.find((p) => p.claim === 'L2')!.holds]);
    expect(Object.fromEntries(verdicts)).toMatchObject({
      'legacy, 1 device, budget 1': false,
      'reusable-ack, 1 device, no budget': false,
      'recheck-resume, 1 device, no budget': false,
      'recheck-resume, 1 device, budget 1': true,
    });
  });

  it("a livelock's counterexample is replayed without the reduction: it shows the units really sent", () => {
    const d = checkDesign({ devices: [P2P], design: 'recheck-resume' });
    const l2 = d.properties.find((p) => p.claim === 'L2')!;
    expect(l2.holds).toBe(false);
    const cex = l2.counterexample!;
    const cycle = cex.steps.slice(cex.cycleStart! - 1).map((s) => s.event.type);
    expect(cycle).toContain('GUEST_REINITS_DEVICE');
    expect(cycle).toContain('THREAD_STEP');
    // the reduced run keeps `sent` at 0; the replayed trace counts the chunks
    expect(cex.steps.some((s) => s.changes.some((c) => c.component === 'source' && /sent/.test(c.context ?? '')))).toBe(true);
  });

  it('refuses what it cannot do: livelockOnly without a design, a goal with cut states, an unknown component', () => {
    expect(() => migrationSystem({ devices: [P2P], ack: 'per-device', livelockOnly: true })).toThrow(/needs a design/);
    const reduced = migrationSystem({ devices: [P2P], ack: 'per-device', design: 'legacy', livelockOnly: true, guestReinits: 'unbounded' });
    expect(() => new CompiledSystem({ ...reduced, goal: () => true })).toThrow(/cut states can have no goal/);
    expect(() => new CompiledSystem({ ...reduced, forget: { nobody: (s: AnySnapshot) => s } })).toThrow(/unknown component 'nobody'/);
    // and a reduced run reports no deadlock claim (a state whose steps are all cut is not one)
    expect(explore(reduced, { progress: false }).properties.map((p) => p.name)).toEqual(['NoNonProgressCycle']);
  });
});
