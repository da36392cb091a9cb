import { sourceStatus } from '../machines/qemuSource.js';
/**
 * Model-based test generation (src/testgen/, `migration-statecharts tests`): coverage of every
 * criterion checked by an independent walk of the explored graph, byte-identical fixtures, replay,
 * the runner with the model and with broken adapters, JUnit XML, the CLI's errors, and the transition
 * tour against its lower bound and against xstate/graph on the same single machine.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assign, setup } from 'xstate';
import { beforeAll, describe, expect, it } from 'vitest';
import { vfioDeviceMachine } from '../machines/vfioDevice.js';
import { explore } from '../src/explorer/index.js';
import { UsageError } from '../src/cli/errors.js';
import { testsCommand, TESTS_HELP } from '../src/cli/tests.js';
import {
  type RunReport,
  type SuiteStep,
  type SutAdapter,
  type TestSuite,
  DEVICE_FEATURES,
  ModelGraph,
  devicePreset,
  TargetError,
  eventsAsXstateGraphSeesThem,
  formatRun,
  generateSuite,
  machineSystem,
  modelAdapter,
  parseSuite,
  presetSystem,
  replaySuite,
  runSuite,
  serializeSuite,
  toJUnitXml,
  xstateShortestPathsTotal,
} from '../src/testgen/index.js';
import { eventKey } from '../src/testgen/fixture.js';
import { type CoverGraph, buildCoverGraph, statesGoal, transitionsGoal } from '../src/testgen/goals.js';
import { tourLowerBound } from '../src/testgen/bound.js';
import { bestTour, firstOccurrences, nearestChoices, postmanTour } from '../src/testgen/postman.js';
import { greedyCover, sourceOf } from '../src/testgen/greedy.js';
import { mulberry32 } from '../src/testgen/walks.js';
import { createMachine } from 'xstate';

const FIXTURES = fileURLToPath(new URL('./fixtures/testgen/', import.meta.url));
const DEVICE = devicePreset();
const MIGRATION0 = { id: 'migration', devices: 0, ack: 'legacy' } as const;

/** As src/cli.ts's main() handles a command: usage errors are one line and exit 2. */
function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  let code: number;
  try {
    code = testsCommand(argv, (s) => out.push(s), (s) => err.push(s));
  } catch (e) {
    const parse = String((e as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS');
    if (!(e instanceof UsageError) && !parse) throw e;
    err.push(`migration-statecharts: ${(e as Error).message.split('\n')[0]}`);
    code = 2;
  }
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/**
 * An independent check of a suite against the explored graph: follow every step by its label, check
 * each expectation, and collect the states, transitions and transition pairs the suite covers.
 */
function walkSuite(g: ModelGraph, suite: TestSuite) {
  const states = new Set<string>();
  const transitions = new Set<string>();
  const pairs = new Set<string>();
  const labelKey = (s: Omit<SuiteStep, 'expect' | 'observe'>) => `${s.kind}|${s.channel ?? ''}|${s.component}|${eventKey(s.event)}`;
  const visit = (s: number) => g.components.forEach((_, c) => g.activeStates(s, c).forEach((k) => states.add(`${g.components[c]}: ${g.items[c]!.states[k]}`)));
  for (const c of suite.cases) {
    let s = 0;
    visit(0);
    const last: (readonly number[])[] = g.components.map(() => []);
    for (const step of c.steps) {
      let next = -1;
      for (let e = g.start[s]!; e < g.start[s + 1]!; e++) {
        const l = g.label(e);
        if (labelKey({ kind: l.kind, component: l.component, event: l.event as SuiteStep['event'], ...(l.channel ? { channel: l.channel } : {}) }) === labelKey(step)) {
          next = e;
          break;
        }
      }
      expect(next, `${c.name}: step not in the graph`).toBeGreaterThanOrEqual(0);
      const f = g.firing(next);
      const it = g.items[f.component]!;
      for (const t of f.transitions) transitions.add(`${it.component}: ${it.transitions[t]}`);
      if (f.transitions.length > 0) {
        for (const a of last[f.component]!) for (const b of f.transitions) pairs.add(`${it.component}: (${it.transitions[a]}) then (${it.transitions[b]})`);
        last[f.component] = f.transitions;
      }
      s = g.to[next]!;
      visit(s);
      expect(step.expect).toEqual(g.values(s));
    }
  }
  return { states, transitions, pairs };
}

// ---- a toy machine for the xstate/graph comparison ----
const turnstile = setup({
  types: { context: {} as { coins: number }, events: {} as { type: 'COIN' } | { type: 'PUSH' } | { type: 'KICK' } | { type: 'REPAIR' } },
  actions: { addCoin: assign({ coins: ({ context }) => Math.min(context.coins + 1, 2) }) },
}).createMachine({
  id: 'turnstile',
  initial: 'locked',
  context: { coins: 0 },
  states: {
    locked: { on: { COIN: { target: 'unlocked', actions: 'addCoin' }, PUSH: 'locked', KICK: 'broken' } },
    unlocked: { on: { COIN: { actions: 'addCoin' }, PUSH: 'locked' } },
    broken: { on: { REPAIR: 'locked' } },
  },
});
const TOY_EVENTS = [{ type: 'COIN' }, { type: 'PUSH' }, { type: 'KICK' }, { type: 'REPAIR' }];
const SMALL_DEVICE_EVENTS = [
  { type: 'SET_STATE', target: 'STOP' },
  { type: 'SET_STATE', target: 'RUNNING' },
  { type: 'SET_STATE', target: 'STOP_COPY' },
  { type: 'SET_STATE', target: 'PRE_COPY' },
  { type: 'DATA_FD_READ' },
  { type: 'VFIO_DEVICE_RESET' },
];

let device: ModelGraph;
let migration: ModelGraph;
beforeAll(() => {
  device = new ModelGraph(presetSystem(DEVICE));
  migration = new ModelGraph(presetSystem(MIGRATION0));
});

describe('criteria cover everything the exploration reached', () => {
  for (const [label, graph, preset] of [
    ['device', () => device, DEVICE],
    ['migration (0 devices)', () => migration, MIGRATION0],
  ] as const) {
    it(`${label}: states and transitions, as the coverage module counts them`, () => {
      const g = graph();
      const cov = Object.values(explore(presetSystem(preset)).coverage);
      for (const criterion of ['states', 'transitions'] as const) {
        const suite = generateSuite(g, { criterion });
        const walked = walkSuite(g, suite)[criterion];
        const reached = cov.reduce((n, c) => n + c[criterion].reached, 0);
        const total = cov.reduce((n, c) => n + c[criterion].total, 0);
        const missed = cov.flatMap((c) => c[criterion].missed.map((m) => `${c.components.join(',')}: ${m}`));
        expect(suite.coverage).toMatchObject({ items: criterion, total, reachable: reached, covered: reached, uncovered: [] });
        expect([...suite.coverage.unreachable].sort()).toEqual([...missed].sort());
        expect(walked.size).toBe(reached);
        expect(suite.stats.steps).toBe(suite.cases.reduce((n, c) => n + c.steps.length, 0));
        expect(suite.stats.steps).toBeGreaterThanOrEqual(suite.stats.lowerBound!);
      }
    });

    it(`${label}: transition pairs`, () => {
      const g = graph();
      const suite = generateSuite(g, { criterion: 'pairs' });
      const walked = walkSuite(g, suite).pairs;
      expect(suite.coverage.covered).toBe(suite.coverage.reachable);
      expect(walked.size).toBe(suite.coverage.reachable);
      expect(suite.coverage.total).toBeNull();
      expect(suite.stats.steps).toBeGreaterThanOrEqual(suite.stats.lowerBound!);
    });
  }

  it('target: a shortest run to a named state, a predicate, and exactly what is unreachable', () => {
    const toStopCopy = generateSuite(device, { criterion: 'target', target: 'STOP_COPY' });
    expect(toStopCopy.cases).toHaveLength(1);
    expect(toStopCopy.cases[0]!.steps).toHaveLength(1);
    expect(toStopCopy.cases[0]!.steps[0]!.expect).toEqual({ dev: 'STOP_COPY' });
    expect(toStopCopy.target).toBe('dev:STOP_COPY');

    const done = generateSuite(migration, { criterion: 'target', target: 'destination:completed' });
    const last = done.cases[0]!.steps.at(-1)!;
    expect(last.expect['destination']).toBe('completed');
    walkSuite(migration, done);
    const both = generateSuite(migration, {
      criterion: 'target',
      target: { name: 'both completed', holds: (v) => sourceStatus(v.value('source')) === 'completed' && v.value('destination') === 'completed' },
    });
    expect(both.cases[0]!.steps.at(-1)!.expect).toEqual({ source: 'completed.cleaning', destination: 'completed' });
    expect(both.cases[0]!.steps.length).toBeGreaterThanOrEqual(done.cases[0]!.steps.length);

    const never = generateSuite(migration, { criterion: 'target', target: 'source:postcopy-active' });
    expect(never.cases).toEqual([]);
    expect(never.coverage).toEqual({ items: 'target', total: 1, reachable: 0, covered: 0, unreachable: ['source:postcopy-active'], uncovered: [] });

    expect(() => generateSuite(migration, { criterion: 'target', target: 'failed' })).toThrow(TargetError);
    expect(() => generateSuite(migration, { criterion: 'target', target: 'failed' })).toThrow(/names a state of source and destination; qualify it; valid: source:none/);
    expect(() => generateSuite(device, { criterion: 'target', target: 'FLYING' })).toThrow(/^target 'FLYING' names no state; valid: dev:ERROR, /);
  });

  it('random walks: reproducible for a seed, different across seeds, bounded, valid', () => {
    const a = serializeSuite(generateSuite(device, { criterion: 'random', seed: 7, walks: 5, length: 12 }));
    const b = serializeSuite(generateSuite(device, { criterion: 'random', seed: 7, walks: 5, length: 12 }));
    const c = serializeSuite(generateSuite(device, { criterion: 'random', seed: 8, walks: 5, length: 12 }));
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    const suite = parseSuite(a);
    expect(suite).toMatchObject({ seed: 7, walks: 5, length: 12, criterion: 'random' });
    expect(suite.cases).toHaveLength(5);
    for (const k of suite.cases) expect(k.steps).toHaveLength(12); // the device always has a step
    const walked = walkSuite(device, suite).transitions;
    expect(suite.coverage.covered).toBe(walked.size);
    expect(suite.coverage.covered + suite.coverage.uncovered.length).toBe(suite.coverage.reachable);
  });
});

describe('fixtures', () => {
  it('are byte-identical across two generations, and read back to the same text', () => {
    const one = serializeSuite(generateSuite(presetSystem(MIGRATION0), { criterion: 'transitions', preset: MIGRATION0 }));
    const two = serializeSuite(generateSuite(presetSystem(MIGRATION0), { criterion: 'transitions', preset: MIGRATION0 }));
    expect(one).toBe(two);
    expect(serializeSuite(parseSuite(one))).toBe(one);
    expect(one.startsWith('{\n  "schema": "migration-statecharts/test-suite@2",\n  "system": "migration: 0 devices [], ack legacy",')).toBe(true);
    // every device configuration too, observations included
    for (const p of [devicePreset({ profile: 'mtty' }), devicePreset({ features: 'STOP_COPY|PRE_COPY', precopyInfoV2: true })]) {
      const a = serializeSuite(generateSuite(presetSystem(p), { criterion: 'commands', preset: p }));
      expect(serializeSuite(generateSuite(presetSystem(p), { criterion: 'commands', preset: p }))).toBe(a);
      expect(serializeSuite(parseSuite(a))).toBe(a);
    }
  });

  it('generate writes a fixture that replays clean, via the CLI', () => {
    const dir = mkdtempSync(join(tmpdir(), 'testgen-'));
    const file = join(dir, 'device.json');
    const gen = cli('generate', '--system', 'device', '--out', file);
    expect(gen.code).toBe(0);
    expect(gen.out).toMatch(/^VFIO device \(STOP_COPY\|P2P\|PRE_COPY, generic\), criterion transitions: \d+ cases, \d+ steps \((?:greedy|postman), lower bound \d+\)\ncoverage: (\d+) of \1 reachable transitions covered, \d+ defined\n/);
    const again = join(dir, 'again.json');
    expect(cli('generate', '--system', 'device', '--out', again).code).toBe(0);
    expect(readFileSync(again, 'utf8')).toBe(readFileSync(file, 'utf8'));
    const junit = join(dir, 'replay.xml');
    const r = cli('replay', file, '--junit', junit);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^model on VFIO device \(STOP_COPY\|P2P\|PRE_COPY, generic\) \(transitions\): (\d+) cases, \1 passed, 0 failed, 0 errors; \d+ steps, \d+ observations compared\n  PASS  transitions-01/);
    expect(readFileSync(junit, 'utf8')).toMatch(/failures="0" errors="0"/);
    // without --out the fixture goes to stdout
    const printed = cli('generate', '--system', 'migration', '--criterion', 'target', '--target', 'source:completed');
    expect(printed.code).toBe(0);
    expect(parseSuite(printed.out).cases[0]!.steps.at(-1)!.expect['source']).toBe('completed.cleaning') // the chart state; its QAPI status is in the observation;
  });

  it('replay of the hand-written fixture passes; its corrupted copy fails at the corrupted steps', () => {
    expect(cli('replay', join(FIXTURES, 'device-handwritten.json')).code).toBe(0);
    const bad = cli('replay', join(FIXTURES, 'device-corrupt.json'));
    expect(bad.code).toBe(1);
    expect(bad.out.split('\n').slice(0, 3)).toEqual([
      'model on VFIO device (STOP_COPY|P2P|PRE_COPY, generic) (transitions): 2 cases, 0 passed, 2 failed, 0 errors; 5 steps, 48 observations compared',
      '  FAIL  precopy-then-stop-copy (3 steps)',
      '        step 3 (env → dev: SET_STATE {"target":"STOP_COPY"}): the fixture expects dev.value = "STOP", the model has "STOP_COPY"; the fixture expects dev.state = "STOP", the model has "STOP_COPY" (the model gets there by env → dev: SET_STATE {"target":"STOP"})',
    ]);
    expect(bad.out).toContain('  FAIL  resume-then-reset (2 steps)\n        step 2 (env → dev: GUEST_DIRTIES_DEVICE): the model does not allow this step here');
    const report = replaySuite(parseSuite(readFileSync(join(FIXTURES, 'device-corrupt.json'), 'utf8')), presetSystem(DEVICE));
    expect(report.cases.map((c) => [c.failure?.step, c.failure?.kind])).toEqual([
      [3, 'observation'],
      [2, 'refused'],
    ]);
    expect(report.cases[1]!.failure!.allowed.map((a) => a.step.event.type)).toContain('DATA_FD_WRITE');
  });

  it('malformed files: one line naming the problem, exit 2', () => {
    const notJson = cli('replay', join(FIXTURES, 'malformed.json'));
    expect(notJson.code).toBe(2);
    expect(notJson.err).toMatch(/^migration-statecharts: \S+malformed\.json: not JSON: [^\n]+$/);
    const kind = cli('replay', join(FIXTURES, 'bad-kind.json'));
    expect(kind).toEqual({ code: 2, out: '', err: `migration-statecharts: ${join(FIXTURES, 'bad-kind.json')}: cases[0].steps[1].kind is "teleport"; valid: env, deliver` });
    const v1 = cli('replay', join(FIXTURES, 'device-v1.json'));
    expect(v1).toEqual({
      code: 2,
      out: '',
      err: `migration-statecharts: ${join(FIXTURES, 'device-v1.json')}: this fixture is version 1 (state values only, no expected observations); regenerate it with \`migration-statecharts tests generate --system device|migration ... --out FILE\``,
    });
    const dir = mkdtempSync(join(tmpdir(), 'testgen-'));
    const wrongSchema = join(dir, 'v3.json');
    writeFileSync(wrongSchema, JSON.stringify({ schema: 'migration-statecharts/test-suite@3' }));
    expect(cli('replay', wrongSchema).err).toBe(`migration-statecharts: ${wrongSchema}: schema is "migration-statecharts/test-suite@3"; expected "migration-statecharts/test-suite@2"`);
    // a field the schema does not list, and an observation without a field
    const good = JSON.parse(readFileSync(join(FIXTURES, 'device-handwritten.json'), 'utf8'));
    const extra = join(dir, 'extra.json');
    good.cases[0].steps[0].observe.dev.colour = 'blue';
    writeFileSync(extra, JSON.stringify(good));
    expect(cli('replay', extra).err).toBe(`migration-statecharts: ${extra}: cases[0].steps[0].observe.dev.colour: not a field in "observed" (state, op, ok, errno, path, dataFd, bytes, initialBytes, dirtyBytes, reinit, stopCopyLength)`);
    delete good.cases[0].steps[0].observe.dev.colour;
    delete good.cases[0].steps[0].observe.dev.errno;
    writeFileSync(extra, JSON.stringify(good));
    expect(cli('replay', extra).err).toBe(`migration-statecharts: ${extra}: cases[0].steps[0].observe.dev: no value for field "errno"`);
    expect(cli('replay', join(dir, 'missing.json')).err).toBe(`migration-statecharts: cannot read ${join(dir, 'missing.json')}: ENOENT`);
    expect(cli('replay').err).toBe('migration-statecharts: tests replay: missing FILE; expected a fixture written by tests generate');
  });
});

describe('the transition tour: lower bound and xstate/graph', () => {
  it('toy machine: measured totals', () => {
    const events = eventsAsXstateGraphSeesThem(turnstile, TOY_EVENTS);
    const suite = generateSuite(machineSystem(turnstile, events), { criterion: 'transitions' });
    const x = xstateShortestPathsTotal(turnstile, events);
    expect(suite.coverage).toMatchObject({ total: 6, reachable: 6, covered: 6 });
    expect({ steps: suite.stats.steps, lowerBound: suite.stats.lowerBound, cases: suite.stats.cases }).toEqual({ steps: 6, lowerBound: 6, cases: 1 });
    expect(x).toEqual({ paths: 6, steps: 21 });
  });

  it('VFIO device machine with a small event list: lower bound ≤ tour ≤ xstate/graph', () => {
    const events = eventsAsXstateGraphSeesThem(vfioDeviceMachine, SMALL_DEVICE_EVENTS);
    const suite = generateSuite(machineSystem(vfioDeviceMachine, events, { input: { features: DEVICE_FEATURES } }), { criterion: 'transitions' });
    const x = xstateShortestPathsTotal(vfioDeviceMachine, events, { features: DEVICE_FEATURES });
    expect(suite.stats.steps).toBeGreaterThanOrEqual(suite.stats.lowerBound!);
    expect(suite.stats.steps).toBeLessThanOrEqual(x.steps);
    expect(suite.coverage.covered).toBe(suite.coverage.reachable);
    // measured: tour 40 steps, lower bound 33; xstate/graph 71 paths, 205 steps (the machine's own
    // event types the list leaves out, MIG_DATA_SIZE and DATA_FD_CLOSE among them, are added as xstate/graph would,
    // and so is a bare ARC, the device's internal event, which every state ignores). Since the chart carries the
    // kernel arcs, a transition item is a SET's refusal or start, an arc, a failure or an ioctl, no longer each
    // state a SET can land in (it was: tour 40, lower bound 39; xstate/graph 66 paths, 184 steps). Each answer of
    // a data_fd call or PRECOPY_INFO is its own transition too (the SET refusals, by check), so the reads at the end
    // of the data join the items, and a SET to the current state is a transition of each state (it was: tour 33,
    // lower bound 27). An accepted SET is one transition per (state, target) — the kernel table's entry, its
    // path — and a reset one per session it ends (it was: tour 40, lower bound 33).
    expect({ steps: suite.stats.steps, lowerBound: suite.stats.lowerBound, xstate: x }).toEqual({ steps: 47, lowerBound: 43, xstate: { paths: 71, steps: 205 } });
  });
});

/** The least total steps covering every reachable item, by 0-1 BFS over (node, covered set); resets cost 0. */
function optimalSteps(cg: CoverGraph): number {
  const index = new Map(cg.reachable.map((t, i) => [t, i]));
  const full = (1 << cg.reachable.length) - 1;
  const maskOf = (a: number) => {
    let m = 0;
    for (let k = cg.itemStart[a]!; k < cg.itemStart[a + 1]!; k++) m |= 1 << index.get(cg.items[k]!)!;
    return m;
  };
  const start = cg.initial.reduce((m, t) => m | (1 << index.get(t)!), 0);
  const dist = new Map<number, number>();
  const key = (x: number, m: number) => m * cg.nodeCount + x;
  const deque: [number, number, number][] = [[0, start, 0]];
  while (deque.length > 0) {
    const [x, m, d] = deque.shift()!;
    if (m === full) return d;
    const k = key(x, m);
    if (dist.has(k) && dist.get(k)! <= d) continue;
    dist.set(k, d);
    if (x !== 0) deque.unshift([0, m, d]); // reset: free
    for (let a = cg.start[x]!; a < cg.start[x + 1]!; a++) deque.push([cg.to[a]!, m | maskOf(a), d + 1]);
  }
  throw new Error('unreachable items');
}

/** Every case is a path from node 0, and together they cover every reachable item; returns the total steps. */
function checkTour(cg: CoverGraph, cases: readonly (readonly number[])[]): number {
  const covered = new Set(cg.initial);
  for (const c of cases) {
    let at = 0;
    for (const a of c) {
      expect(sourceOf(cg, a)).toBe(at);
      at = cg.to[a]!;
      for (let k = cg.itemStart[a]!; k < cg.itemStart[a + 1]!; k++) covered.add(cg.items[k]!);
    }
  }
  expect(cg.reachable.filter((t) => !covered.has(t))).toEqual([]);
  return cases.reduce((n, c) => n + c.length, 0);
}

describe('lower bound ≤ optimum ≤ tour, on random small machines (optimum by exhaustive search)', () => {
  it('holds for states and transitions of 40 seeded machines', () => {
    const rand = mulberry32(2024);
    const pick = (n: number) => Math.floor(rand() * n);
    let suites = 0;
    let tightBounds = 0;
    let optimalTours = 0;
    for (let k = 0; k < 40; k++) {
      const names = Array.from({ length: 3 + pick(3) }, (_, i) => `s${i}`);
      const events = Array.from({ length: 2 + pick(2) }, (_, i) => `E${i}`);
      const states = Object.fromEntries(
        names.map((n) => [n, { on: Object.fromEntries(events.filter(() => rand() < 0.6).map((e) => [e, names[pick(names.length)]!])) }]),
      );
      // half of them count TICKs (0..2) in their context, so that an item has several steps to choose from
      const counting = k % 2 === 1;
      const tick = assign<{ n: number }, { type: string }, undefined, { type: string }, never>({ n: ({ context }) => Math.min(context.n + 1, 2) });
      const machine = createMachine({
        types: {} as { context: { n: number } },
        id: `random${k}`,
        initial: 's0',
        context: { n: 0 },
        on: counting ? { TICK: { actions: tick } } : {},
        states,
      });
      const g = new ModelGraph(machineSystem(machine, [...events, ...(counting ? ['TICK'] : [])].map((type) => ({ type }))));
      for (const goal of [statesGoal(g), transitionsGoal(g)]) {
        const cg = buildCoverGraph(g, goal);
        if (cg.reachable.length > 14) continue;
        const opt = optimalSteps(cg);
        const lb = tourLowerBound(cg, cg.reachable).steps;
        const best = bestTour(cg, cg.reachable);
        const tour = checkTour(cg, best.cases);
        const greedy = greedyCover(cg, cg.reachable);
        for (const cases of [greedy, postmanTour(cg, nearestChoices(cg, cg.reachable))!, postmanTour(cg, firstOccurrences(cg, greedy, cg.reachable))!]) {
          expect(checkTour(cg, cases)).toBeGreaterThanOrEqual(tour);
        }
        expect(lb, `machine ${k} ${goal.kind}`).toBeLessThanOrEqual(opt);
        expect(tour, `machine ${k} ${goal.kind}`).toBeGreaterThanOrEqual(opt);
        suites++;
        if (lb === opt) tightBounds++;
        if (tour === opt) optimalTours++;
      }
    }
    // measured: every tour optimal, the bound equal to the optimum in 78 of the 80
    expect({ suites, tightBounds, optimalTours }).toEqual({ suites: 80, tightBounds: 78, optimalTours: 80 });
  });
});

describe('postman tours on the presets', () => {
  it('are covering tours, no shorter than the bound', () => {
    for (const g of [device, migration]) {
      for (const goal of [statesGoal(g), transitionsGoal(g)]) {
        const cg = buildCoverGraph(g, goal);
        const lb = tourLowerBound(cg, cg.reachable).steps;
        const greedy = greedyCover(cg, cg.reachable);
        for (const cases of [postmanTour(cg, nearestChoices(cg, cg.reachable))!, postmanTour(cg, firstOccurrences(cg, greedy, cg.reachable))!]) {
          expect(checkTour(cg, cases)).toBeGreaterThanOrEqual(lb);
        }
      }
    }
  });
});

describe('runSuite', () => {
  let suite: TestSuite;
  beforeAll(() => {
    suite = generateSuite(device, { criterion: 'transitions', preset: DEVICE });
  });

  it('passes against the model adapter', async () => {
    const report = await runSuite(suite, modelAdapter(presetSystem(DEVICE)), { model: presetSystem(DEVICE), clock: () => 0 });
    expect(report).toMatchObject({ adapter: 'model', passed: suite.cases.length, failed: 0, errors: 0 });
    expect(formatRun(report).split('\n')[0]).toBe(
      `model on VFIO device (STOP_COPY|P2P|PRE_COPY, generic) (transitions): ${suite.cases.length} cases, ${suite.cases.length} passed, 0 failed, 0 errors; ${suite.stats.steps} steps, ${report.compared} observations compared`,
    );
    // every step compares the state value and the 16 fields of the device record (11 of the call, 5 read-backs)
    expect(report.compared).toBe((suite.stats.steps + suite.cases.length) * 17);
  });

  it('reports where a broken adapter diverges: the step, what the system did, what the model allowed', async () => {
    // A mapping bug: the adapter sends STOP where the model says STOP_COPY.
    const model = modelAdapter(presetSystem(DEVICE));
    let closed = false;
    const broken: SutAdapter = {
      name: 'broken',
      reset: () => model.reset(),
      step: (s) =>
        model.step(s.event.type === 'SET_STATE' && s.event['target'] === 'STOP_COPY' && s.event['fault'] === undefined ? { ...s, event: { type: 'SET_STATE', target: 'STOP' } } : s),
      observe: (e) => model.observe(e),
      close: async () => {
        closed = true;
      },
    };
    const report = await runSuite(suite, broken, { model: presetSystem(DEVICE), clock: () => 0 });
    expect(closed).toBe(true);
    expect(report.failed).toBeGreaterThan(0);
    const first = report.cases.find((c) => c.status === 'failed')!;
    const d = first.failure!;
    const steps = suite.cases.find((c) => c.name === first.name)!.steps;
    // the first STOP_COPY request of the case is where it shows
    const at = steps.findIndex((s) => s.event.type === 'SET_STATE' && s.event['target'] === 'STOP_COPY' && s.event['fault'] === undefined);
    expect(d.kind).toBe('observation');
    expect(d.step).toBe(at + 1);
    expect(d.expected['dev']).toBe(steps[d.step - 1]!.expect['dev']);
    expect(d.observed!['dev']).not.toBe(d.expected['dev']);
    expect(d.allowed.length).toBeGreaterThan(1);
    expect(d.allowed.some((a) => a.values['dev'] === d.observed!['dev'])).toBe(true);
    // every differing field is named, with the expected and the observed value
    expect(d.fields.map((f) => `${f.component}.${f.field}`)).toEqual(expect.arrayContaining(['dev.value', 'dev.state', 'dev.path']));
    expect(d.fields.find((f) => f.field === 'state')).toMatchObject({ expected: 'STOP_COPY', observed: d.observed!['dev'] });
    expect(d.message).toMatch(/^step \d+ \(env → dev: SET_STATE \{"target":"STOP_COPY"\}\): dev\.value: expected "STOP_COPY", observed "\w+"; dev\.state: expected "STOP_COPY", observed "\w+"; /);
    expect(d.message).toMatch(/\(the model gets to that state by env → dev: SET_STATE \{"target":"STOP"\} instead\)$/);
    expect(d.trace).toHaveLength(d.step);
    expect(formatRun(report)).toContain('the model allowed:\n');
    expect(formatRun(report)).toContain('the steps so far:\n');

    // A system that refuses a step the model allows; an adapter that cannot see a component.
    const refusing: SutAdapter = { ...broken, step: (s) => (s.event.type === 'DATA_FD_READ' ? Promise.reject(new Error('EIO from the kernel')) : model.step(s)) };
    const refused = await runSuite(suite, refusing, { stopOnFailure: true, clock: () => 0 });
    expect(refused.cases).toHaveLength(refused.cases.findIndex((c) => c.status !== 'passed') + 1);
    expect(refused.cases.at(-1)!.failure).toMatchObject({ kind: 'refused', observed: null, allowed: [] });
    expect(refused.cases.at(-1)!.failure!.message).toMatch(/: the adapter could not make the step: EIO from the kernel$/);
    // an adapter that reports nothing fails, naming the missing fields, unless it declares them unobservable
    const blind: SutAdapter = { ...broken, step: (s) => model.step(s), observe: async () => ({ values: {}, fields: {} }) };
    const unseen = await runSuite(suite, blind);
    expect(unseen.passed).toBe(0);
    expect(unseen.cases[0]!.failure!.message).toMatch(/^after reset: dev\.value: expected "RUNNING", not reported \(declare it unobservable/);
    const declared: SutAdapter = { ...blind, unobservable: { dev: ['*'] } };
    const report2 = await runSuite(suite, declared);
    expect(report2.passed).toBe(suite.cases.length);
    expect(report2.compared).toBe(0);
    expect(formatRun(report2)).toContain('not observable on broken: dev.{*}');
  });
});

/** A small XML well-formedness check: balanced elements, quoted attributes, only known entities. */
function parseXml(xml: string): { name: string; attrs: Record<string, string>; children: unknown[]; text: string } {
  const decode = (s: string) => {
    expect(s).not.toMatch(/&(?!(amp|lt|gt|quot|apos|#\d+);)/);
    return s.replace(/&(amp|lt|gt|quot|apos|#(\d+));/g, (_, n: string, d?: string) => (d ? String.fromCharCode(Number(d)) : { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[n]!));
  };
  type El = { name: string; attrs: Record<string, string>; children: El[]; text: string };
  const body = xml.replace(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n/, '');
  const root: El = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: El[] = [root];
  const token = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/y;
  let m: RegExpExecArray | null;
  while (token.lastIndex < body.length && (m = token.exec(body))) {
    const top = stack[stack.length - 1]!;
    if (m[5] !== undefined) {
      top.text += decode(m[5]);
      continue;
    }
    if (m[1]) {
      expect(top.name).toBe(m[2]);
      stack.pop();
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of (m[3] ?? '').matchAll(/([\w:.-]+)="([^"]*)"/g)) attrs[a[1]!] = decode(a[2]!);
    const el: El = { name: m[2]!, attrs, children: [], text: '' };
    top.children.push(el);
    if (!m[4]) stack.push(el);
  }
  expect(token.lastIndex).toBe(body.length);
  expect(stack).toHaveLength(1);
  expect(root.children).toHaveLength(1);
  return root.children[0]!;
}

describe('JUnit XML', () => {
  it('is well-formed, with testsuite, testcase and failure elements, and escapes special characters', async () => {
    const base = generateSuite(device, { criterion: 'target', target: 'STOP_COPY', preset: DEVICE });
    const weird = 'a <weird> & "quoted" \'case\'\u0001';
    const suite: TestSuite = { ...base, cases: [{ ...base.cases[0]!, name: weird }, { ...base.cases[0]!, name: 'ok' }] };
    const model = modelAdapter(presetSystem(DEVICE));
    let n = 0;
    const flaky: SutAdapter = {
      ...model,
      name: 'flaky<&>',
      observe: async (e) => {
        const o = await model.observe(e);
        return n++ === 1 ? { ...o, values: { dev: 'RUNNING' } } : o;
      },
    };
    const report: RunReport = await runSuite(suite, flaky, { model: presetSystem(DEVICE), clock: () => 0 });
    const xml = toJUnitXml(report);
    expect(xml).toContain('&lt;weird&gt; &amp; &quot;quoted&quot; &apos;case&apos;');
    expect(xml).not.toContain('\u0001');
    const doc = parseXml(xml);
    expect(doc.name).toBe('testsuites');
    expect(doc.attrs).toMatchObject({ tests: '2', failures: '1', errors: '0' });
    const ts = doc.children[0] as ReturnType<typeof parseXml>;
    expect(ts.name).toBe('testsuite');
    const cases = ts.children.filter((c) => (c as { name: string }).name === 'testcase') as ReturnType<typeof parseXml>[];
    expect(cases.map((c) => c.attrs['name'])).toEqual(['a <weird> & "quoted" \'case\'', 'ok']);
    expect(cases[0]!.attrs['classname']).toBe('flaky<&>.target');
    const failure = cases[0]!.children[0] as ReturnType<typeof parseXml>;
    expect(failure.name).toBe('failure');
    expect(failure.attrs['type']).toBe('observation');
    expect(failure.attrs['message']).toBe('step 1 (env → dev: SET_STATE {"target":"STOP_COPY"}): dev.value: expected "STOP_COPY", observed "RUNNING" (the model gets to that state by env → dev: SET_STATE {"target":"ERROR"} instead)');
    expect(failure.text).toContain('observed: dev=RUNNING');
    expect(cases[1]!.children).toEqual([]);
  });
});

describe('tests CLI', () => {
  it('bad arguments: one line naming the bad value and the valid ones, exit 2', () => {
    const e = (...argv: string[]) => {
      const r = cli(...argv);
      expect(r.code).toBe(2);
      expect(r.err.split('\n')).toHaveLength(1);
      return r.err;
    };
    expect(e('generate', '--system', 'toaster')).toBe("migration-statecharts: bad --system 'toaster'; valid: device, migration");
    expect(e('generate')).toBe('migration-statecharts: missing --system; expected device, migration');
    expect(e('generate', '--system', 'device', '--criterion', 'everything')).toBe(
      "migration-statecharts: bad --criterion 'everything'; valid: states, transitions, pairs, commands, verified, random, target",
    );
    expect(e('generate', '--system', 'migration', '--ack', 'maybe')).toBe("migration-statecharts: bad --ack 'maybe'; valid: legacy, per-device, off");
    expect(e('generate', '--system', 'migration', '--devices', '7')).toBe("migration-statecharts: bad --devices '7'; expected an integer 0..2");
    expect(e('generate', '--system', 'device', '--target', 'ERROR')).toBe('migration-statecharts: --target needs --criterion target');
    expect(e('generate', '--system', 'device', '--seed', '3')).toBe('migration-statecharts: --seed, --length and --walks need --criterion random');
    expect(e('generate', '--system', 'device', '--criterion', 'target', '--target', 'NOWHERE')).toMatch(
      /^migration-statecharts: target 'NOWHERE' names no state; valid: dev:ERROR, dev:STOP, /,
    );
    expect(e('generate', '--system', 'device', '--frobnicate')).toMatch(/^migration-statecharts: Unknown option '--frobnicate'/);
    expect(e('launch')).toBe("migration-statecharts: tests: unknown subcommand 'launch'; valid: generate, replay, itf");
    expect(e()).toBe('migration-statecharts: tests: missing subcommand; valid: generate, replay, itf');
    expect(cli('--help')).toEqual({ code: 0, out: TESTS_HELP, err: '' });
  });

  it('an unreachable target is reported, exit 1', () => {
    const r = cli('generate', '--system', 'migration', '--criterion', 'target', '--target', 'source:postcopy-active');
    expect(r.code).toBe(1);
    expect(r.err).toBe('migration-statecharts: target source:postcopy-active is unreachable in migration: 0 devices [], ack legacy');
  });
});
