/**
 * The explorer on systems whose answers are known exactly.
 */
import { type AnyStateMachine, assign, createMachine, emit, setup, transition } from 'xstate';
import { describe, expect, it } from 'vitest';
import { CompiledSystem, ExploredGraph, type SystemSpec, bfs, explore, formatReport, formatTrace, search, treePath } from '../src/explorer/index.js';
import { snapshotKey } from '../src/explorer/local.js';
import { LANE_BITS, Layout } from '../src/explorer/pack.js';
import { pathTo } from '../src/explorer/trace.js';
import { symmetryCanon } from '../src/explorer/symmetry.js';

/** A ring of `n` states: TICK moves on, RESET goes home. */
function ring(n: number) {
  const states: Record<string, { on: Record<string, string> }> = {};
  for (let i = 0; i < n; i++) states[`s${i}`] = { on: { TICK: `s${(i + 1) % n}`, RESET: 's0' } };
  return createMachine({ id: `ring${n}`, initial: 's0', states });
}

function copies(k: number, m: AnyStateMachine, events = [{ type: 'TICK' }, { type: 'RESET' }]): SystemSpec {
  const names = Array.from({ length: k }, (_, i) => `c${i}`);
  return {
    name: `${k} copies`,
    components: names.map((name) => ({ name, machine: m })),
    environment: Object.fromEntries(names.map((n) => [n, events])),
    symmetry: [{ components: names }],
  };
}

const binom = (n: number, k: number): number => (k === 0 ? 1 : (binom(n - 1, k - 1) * n) / k);

describe('state counts', () => {
  it('K independent copies of an L-state machine give exactly L^K states, and C(L+K-1, K) with symmetry', () => {
    for (const [L, K] of [
      [3, 2],
      [4, 3],
      [5, 4],
      [7, 3],
    ] as const) {
      const spec = copies(K, ring(L));
      const plain = explore(spec, { symmetry: false });
      const sym = explore(spec);
      expect(plain.states, `L=${L} K=${K}`).toBe(L ** K);
      expect(plain.transitions).toBe(L ** K * 2 * K);
      expect(sym.states).toBe(binom(L + K - 1, K));
      expect(sym.symmetry).toBe(true);
    }
  });

  it('the VFIO device system: symmetric verdicts equal the unreduced ones', async () => {
    const { vfioDeviceMachine } = await import('../machines/vfioDevice.js');
    const env = [
      { type: 'SET_STATE', target: 'PRE_COPY' },
      { type: 'SET_STATE', target: 'STOP_COPY' },
      { type: 'DATA_FD_READ' },
      { type: 'GUEST_DIRTIES_DEVICE' },
    ];
    const spec: SystemSpec = {
      components: ['a', 'b', 'c'].map((name) => ({ name, machine: vfioDeviceMachine, input: { features: 'STOP_COPY|PRE_COPY' } })),
      environment: { a: env, b: env, c: env },
      invariants: [
        { name: 'NotAllInStopCopy', holds: (s) => !['a', 'b', 'c'].every((n) => s.value(n) === 'STOP_COPY') },
        { name: 'NoError', holds: (s) => !['a', 'b', 'c'].some((n) => s.value(n) === 'ERROR') },
      ],
      symmetry: [{ components: ['a', 'b', 'c'] }],
    };
    const plain = explore(spec, { symmetry: false });
    const sym = explore(spec);
    const local = plain.coverage['a,b,c']!.localStates;
    expect(plain.states).toBe(local ** 3);
    expect(sym.states).toBe(binom(local + 2, 3));
    expect(sym.properties.map((p) => [p.name, p.holds])).toEqual(plain.properties.map((p) => [p.name, p.holds]));
    expect(plain.properties.find((p) => p.name === 'NotAllInStopCopy')!.counterexample!.steps).toHaveLength(
      sym.properties.find((p) => p.name === 'NotAllInStopCopy')!.counterexample!.steps.length,
    );
  });
});

describe('counterexamples are shortest', () => {
  it('finds a planted invariant violation with the shortest trace', () => {
    const spec: SystemSpec = {
      ...copies(2, ring(5)),
      symmetry: [],
      invariants: [{ name: 'NeverBothAtS3', holds: (s) => !(s.value('c0') === 's3' && s.value('c1') === 's3') }],
    };
    const r = explore(spec);
    const p = r.properties.find((x) => x.name === 'NeverBothAtS3')!;
    expect(p.holds).toBe(false);
    expect(p.counterexample!.steps).toHaveLength(6);
    expect(p.counterexample!.steps.at(-1)!.states).toEqual({ c0: 's3', c1: 's3' });
    expect(formatTrace(p.counterexample!)).toMatch(/^ {2}0\. initial: c0=s0, c1=s0\n {2}1\. env → c0: TICK {3}⇒ c0: s0 → s1/);
  });

  it('finds a planted deadlock with the shortest trace, and accepts declared terminal states', () => {
    const m = createMachine({
      id: 'dl',
      initial: 'a',
      states: { a: { on: { GO: 'b', SIDE: 'c' } }, b: { on: { GO: 'stuck' } }, c: { on: { GO: 'a' } }, stuck: {} },
    });
    const spec: SystemSpec = { components: [{ name: 'm', machine: m }], environment: { m: [{ type: 'GO' }, { type: 'SIDE' }] } };
    const r = explore(spec);
    const d = r.properties.find((p) => p.name === 'NoDeadlock')!;
    expect(d.holds).toBe(false);
    expect(d.count).toBe(1);
    expect(d.counterexample!.steps.map((s) => s.event.type)).toEqual(['GO', 'GO']);
    const ok = explore({ ...spec, terminal: (s) => s.value('m') === 'stuck' });
    expect(ok.properties.find((p) => p.name === 'NoDeadlock')!.holds).toBe(true);
    // a final state is terminal by default
    const f = createMachine({ id: 'f', initial: 'a', states: { a: { on: { GO: 'done' } }, done: { type: 'final' } } });
    expect(explore({ components: [{ name: 'f', machine: f }], environment: { f: [{ type: 'GO' }] } }).deadlocks).toBe(0);
  });

  it('finds a planted non-progress cycle as a lasso, and none when the cycle makes progress', () => {
    const m = createMachine({
      id: 'np',
      initial: 'idle',
      states: {
        idle: { on: { START: 'spin1' } },
        spin1: { on: { SPIN: 'spin2', FINISH: 'done' } },
        spin2: { on: { SPIN: 'spin1' } },
        done: { on: { START: 'idle' } },
      },
    });
    const spec: SystemSpec = {
      components: [{ name: 'w', machine: m }],
      environment: { w: [{ type: 'START' }, { type: 'SPIN' }, { type: 'FINISH' }] },
      progress: (step) => step.event.type === 'FINISH',
    };
    const r = explore(spec);
    const np = r.properties.find((p) => p.name === 'NoNonProgressCycle')!;
    expect(np.holds).toBe(false);
    const t = np.counterexample!;
    expect(t.cycleStart).toBe(2);
    expect(t.steps.map((s) => s.event.type)).toEqual(['START', 'SPIN', 'SPIN']);
    expect(formatTrace(t)).toContain('-- cycle: the steps below repeat forever --');
    const fair = explore({ ...spec, progress: (step) => step.event.type !== 'START' });
    expect(fair.properties.find((p) => p.name === 'NoNonProgressCycle')!.holds).toBe(true);
  });

  it('reports a state from which the goal cannot be reached, with the path to it', () => {
    const m = createMachine({
      id: 'g',
      initial: 'a',
      states: { a: { on: { L: 'trap', R: 'goal' } }, trap: { on: { L: 'trap2' } }, trap2: { on: { L: 'trap' } }, goal: {} },
    });
    const r = explore({
      components: [{ name: 'g', machine: m }],
      environment: { g: [{ type: 'L' }, { type: 'R' }] },
      goal: (s) => s.value('g') === 'goal',
      terminal: (s) => s.value('g') === 'goal',
    });
    const live = r.properties.find((p) => p.name === 'GoalAlwaysReachable')!;
    expect(live.holds).toBe(false);
    expect(live.count).toBe(2);
    expect(live.counterexample!.steps.map((s) => s.event.type)).toEqual(['L']);
  });
});

describe('the explored graph and its one bfs', () => {
  const ring = createMachine({ id: 'r', initial: 'a', states: { a: { on: { N: 'b', S: 'c' } }, b: { on: { N: 'c' } }, c: { on: { N: 'a' } } } });
  const spec: SystemSpec = { components: [{ name: 'r', machine: ring }], environment: { r: [{ type: 'N' }, { type: 'S' }] } };
  const graph = () => new ExploredGraph(new CompiledSystem(spec), { incomplete: () => new Error('bounded') });

  it('has every state and labelled edge once, and shortest paths to a target', () => {
    const g = graph();
    expect(g.stateCount).toBe(3);
    expect(g.components).toEqual(['r']);
    const c = [...Array(g.stateCount).keys()].find((s) => g.values(s).r === 'c')!;
    const path = g.shortestPathTo((s) => s === c)!;
    expect(path.map((e) => g.label(e).event.type)).toEqual(['S']);
    expect(g.from[path[0]!]).toBe(0);
    expect(g.shortestPathTo(() => false)).toBeNull();
  });

  it('bfs: distances, parents and discovery order; follow filters edges, until stops', () => {
    const g = graph();
    const all = g.bfs();
    expect([...all.order][0]).toBe(0);
    expect(Math.max(...all.dist)).toBe(1);
    // without S, c is two steps away (a -N-> b -N-> c)
    const onlyN = bfs(g.stateCount, g.start, g.to, [0], { follow: (e) => g.label(e).event.type === 'N' });
    const c = [...Array(g.stateCount).keys()].find((s) => g.values(s).r === 'c')!;
    expect(onlyN.dist[c]).toBe(2);
    expect(treePath(onlyN.parent, (e) => g.from[e]!, c).map((e) => g.label(e).event.type)).toEqual(['N', 'N']);
    const stopped = bfs(g.stateCount, g.start, g.to, [0], { until: (s) => s === 0 });
    expect(stopped.found).toBe(0);
    expect(stopped.order.length).toBe(1);
  });

  it('refuses a bounded exploration with the caller\'s error', () => {
    expect(() => new ExploredGraph(new CompiledSystem(spec), { maxStates: 1, incomplete: (l) => new Error(`bounded: ${l?.kind}`) })).toThrow('bounded: maxStates');
  });
});

describe('channels', () => {
  const producer = setup({ types: { events: {} as { type: 'MAKE' } } }).createMachine({
    id: 'producer',
    initial: 'p',
    context: { n: 0 },
    states: { p: { on: { MAKE: { actions: emit({ type: 'ITEM' }) } } } },
  });
  const consumer = setup({ types: { context: {} as { got: number }, events: {} as { type: 'ITEM' } } }).createMachine({
    id: 'consumer',
    initial: 'c',
    context: { got: 0 },
    states: {
      c: { on: { ITEM: { guard: ({ context }) => context.got < 2, actions: ({ context }) => void context } } },
    },
  });

  it('delivers in FIFO order, bounds the channel, and blocks a message the receiver cannot take', () => {
    const r = explore({
      components: [
        { name: 'prod', machine: producer },
        { name: 'cons', machine: consumer },
      ],
      channels: [{ name: 'q', from: 'prod', to: 'cons', capacity: 3 }],
      environment: { prod: [{ type: 'MAKE' }] },
    });
    // channel holds 0..3 items; the consumer's state never changes
    expect(r.states).toBe(4);
    expect(r.transitions).toBe(3 + 3); // MAKE while not full, delivery while not empty
  });

  it('keeps each channel in FIFO order: what arrives is always a prefix of what was sent', () => {
    type Msg = { type: 'A' } | { type: 'B' };
    const sender = setup({ types: { context: {} as { sent: string }, events: {} as { type: 'SEND_A' } | { type: 'SEND_B' } } }).createMachine({
      id: 'sender',
      context: { sent: '' },
      initial: 'on',
      states: {
        on: {
          on: {
            SEND_A: { guard: ({ context }) => context.sent.length < 3, actions: [assign({ sent: ({ context }) => context.sent + 'A' }), emit({ type: 'A' })] },
            SEND_B: { guard: ({ context }) => context.sent.length < 3, actions: [assign({ sent: ({ context }) => context.sent + 'B' }), emit({ type: 'B' })] },
          },
        },
      },
    });
    const receiver = setup({ types: { context: {} as { got: string }, events: {} as Msg } }).createMachine({
      id: 'receiver',
      context: { got: '' },
      initial: 'on',
      states: { on: { on: { A: { actions: assign({ got: ({ context }) => context.got + 'A' }) }, B: { actions: assign({ got: ({ context }) => context.got + 'B' }) } } } },
    });
    const r = explore({
      components: [
        { name: 's', machine: sender },
        { name: 'r', machine: receiver },
      ],
      channels: [{ name: 'q', from: 's', to: 'r', capacity: 2 }],
      environment: { s: [{ type: 'SEND_A' }, { type: 'SEND_B' }] },
      invariants: [
        { name: 'ArrivalsArePrefixOfSends', holds: (v) => v.context<{ sent: string }>('s').sent.startsWith(v.context<{ got: string }>('r').got) },
        { name: 'InFlightIsTheRest', holds: (v) => v.context<{ got: string }>('r').got + v.channel('q').map((m) => m.type).join('') === v.context<{ sent: string }>('s').sent },
      ],
    });
    expect(r.properties.filter((p) => p.kind === 'safety').every((p) => p.holds)).toBe(true);
    // sent strings of length 0..3 (1+2+4+8 = 15), each split into delivered + in flight with ≤ 2 in flight
    expect(r.states).toBe(1 + 2 * 2 + 4 * 3 + 8 * 3);
  });

  it('a sender whose message has no channel is a clear error', () => {
    expect(() =>
      explore({ components: [{ name: 'prod', machine: producer }], environment: { prod: [{ type: 'MAKE' }] } }),
    ).toThrow("prod emitted 'ITEM' but no channel from prod carries it");
  });

  it('ping-pong over two channels reaches exactly the expected states', () => {
    const ping = createMachine({
      id: 'ping',
      initial: 'idle',
      states: {
        idle: { on: { SERVE: { target: 'waiting', actions: emit({ type: 'PING' }) } } },
        waiting: { on: { PONG: 'idle' } },
      },
    });
    const pong = createMachine({ id: 'pong', initial: 'ready', states: { ready: { on: { PING: { actions: emit({ type: 'PONG' }) } } } } });
    const r = explore({
      components: [
        { name: 'ping', machine: ping },
        { name: 'pong', machine: pong },
      ],
      channels: [
        { name: 'a', from: 'ping', to: 'pong', capacity: 1 },
        { name: 'b', from: 'pong', to: 'ping', capacity: 1 },
      ],
      environment: { ping: [{ type: 'SERVE' }] },
    });
    // idle/-/-, waiting/PING/-, waiting/-/PONG
    expect(r.states).toBe(3);
    expect(r.deadlocks).toBe(0);
  });
});

describe('packed states', () => {
  it('packs and unpacks any tuple its fields can hold; a field never straddles two lanes', () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let trial = 0; trial < 200; trial++) {
      const width = 1 + rnd(24);
      const bits = Int32Array.from({ length: width }, () => 1 + rnd(LANE_BITS));
      const layout = new Layout(bits);
      for (let i = 0; i < width; i++) expect(layout.shift[i]! + bits[i]!).toBeLessThanOrEqual(LANE_BITS);
      const t = Uint32Array.from(bits, (b) => rnd(2 ** b));
      const lanes = new Int32Array(layout.lanes + 1).fill(-7);
      expect(layout.pack(t, 0, lanes, 1)).toBe(-1);
      for (let k = 1; k <= layout.lanes; k++) expect(lanes[k]).toBeGreaterThanOrEqual(0); // -1 stays free for empty slots
      const back = new Uint32Array(width);
      layout.unpack(lanes, 1, back);
      expect([...back]).toEqual([...t]);
      const pos = rnd(width);
      if (bits[pos]! < LANE_BITS) {
        const big = Uint32Array.from(t);
        big[pos] = 2 ** bits[pos]!;
        expect(layout.pack(big, 0, lanes, 0)).toBe(pos); // names the field that does not fit
        const wider = layout.widened(pos, big[pos]!);
        expect(wider.pack(big, 0, lanes, 0)).toBe(-1);
      }
    }
  });

  it('widens the packing in the middle of a search without losing or duplicating a state', () => {
    // local ids up to 39 outgrow the first 4-bit fields; the search repacks and goes on
    const r = explore({ ...copies(3, ring(40)), invariants: [{ name: 'NotAt30', holds: (s) => s.value('c1') !== 's30' }] }, { symmetry: false });
    expect(r.states).toBe(40 ** 3);
    expect(r.transitions).toBe(40 ** 3 * 2 * 3);
    expect(r.properties.find((p) => p.name === 'NotAt30')!.counterexample!.steps).toHaveLength(30);
    const sys = new CompiledSystem(copies(3, ring(40)));
    expect(Array.from(search(sys).store.layout.bits).every((b) => b >= 6)).toBe(true);
  });

  it('spreads many components over several lanes', () => {
    const sys = new CompiledSystem({ ...copies(9, ring(3)), symmetry: [] });
    const out = search(sys);
    expect(out.store.layout.lanes).toBeGreaterThan(1);
    expect(out.states).toBe(3 ** 9);
    expect(explore(copies(9, ring(3))).states).toBe(binom(3 + 9 - 1, 9));
  });

  it('stores exactly the states, edges and BFS depths a plain breadth-first search over tuples finds', async () => {
    // The reference keeps tuples as strings in a Map and takes successors one at a time from
    // CompiledSystem.expand: no packing, no hash table, no shortcut for self-loops.
    const { migrationSystem } = await import('../src/systems/migration.js');
    const spec = migrationSystem({ devices: ['STOP_COPY|P2P|PRE_COPY', 'STOP_COPY|P2P|PRE_COPY'], ack: 'per-device' });
    const sys = new CompiledSystem(spec);
    const out = search(sys, { recordEdges: true });
    const ref = new CompiledSystem(spec);
    // a system-independent name for a tuple: every component's snapshot and every message, spelt out
    const name = (x: CompiledSystem, t: Uint32Array) =>
      [...t].map((v, i) => (i < x.tables.length ? snapshotKey(x.tables[i]!.snapshots[v]!) : JSON.stringify(x.messages.events[v] ?? null))).join('|');
    const depth = new Map<string, number>();
    const queue: Uint32Array[] = [ref.initialTuple()];
    depth.set(name(ref, queue[0]!), 0);
    let transitions = 0;
    const edgesOf = new Map<string, string[]>();
    for (let q = 0; q < queue.length; q++) {
      const cur = queue[q]!;
      const key = name(ref, cur);
      const edges: string[] = [];
      transitions += ref.expand(cur, (step, next) => {
        const k = name(ref, next);
        edges.push(`${step}>${k}`);
        if (!depth.has(k)) {
          depth.set(k, depth.get(key)! + 1);
          queue.push(Uint32Array.from(next));
        }
      });
      edgesOf.set(key, edges);
    }
    expect(out.states).toBe(depth.size);
    expect(out.transitions).toBe(transitions);
    const t = new Uint32Array(sys.width);
    const keyOf = (i: number) => (out.store.load(i, t), name(sys, t));
    for (let i = 0; i < out.states; i++) {
      const key = keyOf(i);
      expect(depth.get(key)).toBe(pathTo(out.store, i).length - 1);
      const { start, to, step } = out.edges!;
      const edges = [];
      for (let e = start[i]!; e < start[i + 1]!; e++) edges.push(`${step[e]}>${keyOf(to[e]!)}`);
      expect(edges).toEqual(edgesOf.get(key));
    }
  });
});

describe('the explorer agrees with XState', () => {
  it('every explored local step equals what transition() returns for that snapshot and event', async () => {
    const { vfioDeviceMachine } = await import('../machines/vfioDevice.js');
    const { VFIO_STATES } = await import('../machines/vfioArcs.js');
    const env = [
      ...VFIO_STATES.map((target) => ({ type: 'SET_STATE', target })),
      { type: 'SET_STATE', target: 'STOP_COPY', fault: { atArc: 1, leaves: 'ERROR' } },
      { type: 'DATA_FD_READ' },
      { type: 'DATA_FD_WRITE' },
      { type: 'VFIO_MIG_GET_PRECOPY_INFO' },
      { type: 'GUEST_DIRTIES_DEVICE' },
      { type: 'GUEST_REINITS_DEVICE' },
      { type: 'VFIO_DEVICE_RESET' },
    ];
    const sys = new CompiledSystem({
      components: [{ name: 'd', machine: vfioDeviceMachine, input: { features: 'STOP_COPY|P2P|PRE_COPY', precopyInfoV2: true } }],
      environment: { d: env },
    });
    const out = search(sys);
    const table = sys.tables[0]!;
    let checked = 0;
    for (const step of table.steps()) {
      const [next] = transition(vfioDeviceMachine, table.snapshots[step.from]!, step.event as never);
      expect(snapshotKey(next)).toBe(snapshotKey(table.snapshots[step.to]!));
      checked++;
    }
    expect(out.states).toBe(table.size);
    expect(checked).toBeGreaterThan(1000);
  });
});

describe('bounds, determinism, refusals', () => {
  it('stops at maxStates with a clear message and partial statistics', () => {
    const r = explore(copies(3, ring(10)), { symmetry: false, maxStates: 100 });
    expect(r.limit).toEqual({ kind: 'maxStates', message: 'state limit of 100 reached' });
    expect(r.states).toBe(100);
    expect(formatReport(r)).toContain('STOPPED: state limit of 100 reached; the figures above are partial');
  });

  it('stops at the memory budget instead of running out of memory', () => {
    const r = explore(copies(4, ring(12)), { symmetry: false, memoryBudget: 1 });
    expect(r.limit?.kind).toBe('memory');
    expect(r.limit?.message).toMatch(/^memory budget of 0 KiB reached at \d+ states$/);
  });

  it('gives the same counts, traces and report on every run', () => {
    const spec: SystemSpec = {
      ...copies(3, ring(4)),
      invariants: [{ name: 'NotAll3', holds: (s) => !['c0', 'c1', 'c2'].every((n) => s.value(n) === 's3') }],
    };
    const strip = (r: ReturnType<typeof explore>) => JSON.stringify({ ...r, seconds: 0, statesPerSecond: 0 });
    expect(strip(explore(spec))).toBe(strip(explore(spec)));
  });

  it('refuses invoked actors and delayed transitions, naming the feature', () => {
    const inv = createMachine({ id: 'i', initial: 'a', states: { a: { invoke: { src: 'x' } } } });
    const aft = createMachine({ id: 'd', initial: 'a', states: { a: { after: { 100: 'a' } } } });
    expect(() => explore({ components: [{ name: 'i', machine: inv }] })).toThrow("i: state 'a' invokes an actor; the explorer needs plain machines");
    expect(() => explore({ components: [{ name: 'd', machine: aft }] })).toThrow("d: state 'a' has a delayed (after) transition; model time as an environment event");
  });

  it('refuses a symmetry group of components that are not interchangeable', () => {
    const sys = new CompiledSystem({ components: [{ name: 'a', machine: ring(2) }, { name: 'b', machine: ring(3) }] });
    expect(() => symmetryCanon(sys, [{ components: ['a', 'b'] }])).toThrow("symmetry group: 'b' is not interchangeable with 'a' (different machine or input)");
  });
});

describe('coverage', () => {
  it('lists the states and transitions the system never reached', () => {
    const m = createMachine({
      id: 'cov',
      initial: 'a',
      states: { a: { on: { GO: 'b', NEVER: 'c' } }, b: { on: { GO: 'a' } }, c: {} },
    });
    const r = explore({ components: [{ name: 'm', machine: m }], environment: { m: [{ type: 'GO' }] } });
    const c = r.coverage['m']!;
    expect(c.states).toEqual({ reached: 2, total: 3, percent: 66.7, missed: ['c'] });
    expect(c.transitions).toEqual({ reached: 2, total: 3, percent: 66.7, missed: ['a --NEVER--> c'] });
  });
});
