/**
 * SPIN differential test of `export --promela`: SPIN (Debian `spin`, with gcc) runs the export of small
 * systems and must store exactly our explorer's states and reach the same verdicts — each invariant
 * violated or not, a deadlock or not, and (for a toy system with progress steps) a non-progress cycle or
 * not. Never skipped: without spin or gcc the test fails and says how to install them (CI does:
 * scripts/setup.sh).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { main } from '../src/cli.js';
import { explore } from '../src/explorer/index.js';
import type { SystemSpec } from '../src/explorer/system.js';
import { DEADLOCK_MESSAGE, exportPromela } from '../src/export/promela.js';
import { srcStatus } from '../src/properties/migration.js';
import { migrationSystem } from '../src/systems/migration.js';

let dir = '';
beforeAll(() => {
  for (const tool of ['spin', 'gcc']) {
    const r = spawnSync(tool, [tool === 'spin' ? '-V' : '--version'], { encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`${tool} is not installed: the SPIN differential test needs it (apt-get install -y spin gcc, or bash scripts/setup.sh)`);
  }
  dir = mkdtempSync(join(tmpdir(), 'promela-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface SpinRun {
  readonly stored: number;
  /** The distinct messages after "assertion violated ". */
  readonly violated: ReadonlySet<string>;
  readonly nonProgress: boolean;
  readonly output: string;
}

let runs = 0;
/** spin -a, gcc, pan on `text`: the safety run, or (np) the non-progress run. */
function runSpin(text: string, np = false): SpinRun {
  const d = join(dir, `m${runs++}`);
  execFileSync('mkdir', ['-p', d]);
  writeFileSync(join(d, 'model.pml'), text);
  execFileSync('spin', [...(np ? ['-DPROGRESS'] : []), '-a', 'model.pml'], { cwd: d, stdio: 'pipe' });
  execFileSync('gcc', ['-O0', '-DNOREDUCE', np ? '-DNP' : '-DSAFETY', '-o', 'pan', 'pan.c'], { cwd: d, stdio: 'pipe' });
  const r = spawnSync('./pan', np ? ['-l', '-A', '-m1000000'] : ['-m1000000', '-c0'], { cwd: d, encoding: 'utf8' });
  const output = r.stdout + r.stderr;
  const stored = Number(/(\d+) states, stored/.exec(output)?.[1] ?? NaN);
  const violated = new Set([...output.matchAll(/assertion violated (.*) \(at depth \d+\)/g)].map((m) => m[1]!));
  if (/max search depth too small/.test(output)) throw new Error('pan: max search depth too small');
  return { stored, violated, nonProgress: /pan:\d+: non-progress cycle/.test(output), output };
}

/** Export, run SPIN, and compare the state count and every verdict SPIN can decide with our explorer's. */
function differential(spec: SystemSpec) {
  const e = exportPromela(spec);
  const spin = runSpin(e.text);
  expect(spin.stored, spin.output).toBe(e.states);
  const ours = explore(spec, { symmetry: false });
  expect(ours.states).toBe(e.states);
  for (const p of ours.properties) {
    if (p.kind === 'safety' && !e.leftOut.some((x) => x.name === p.name)) {
      expect(spin.violated.has(`invariant ${p.name}`), `${p.name}: ours ${p.verdict}`).toBe(p.verdict === 'violated');
    }
    if (p.kind === 'deadlock') expect(spin.violated.has(DEADLOCK_MESSAGE), `NoDeadlock: ours ${p.verdict}`).toBe(p.verdict === 'violated');
  }
  return { e, spin, ours };
}

const migration = (n: number, ack: 'off' | 'legacy' | 'per-device', extra: Partial<Parameters<typeof migrationSystem>[0]> = {}) =>
  migrationSystem({ devices: Array.from({ length: n }, () => 'STOP_COPY|P2P|PRE_COPY' as const), ack, ...extra });

describe('export --promela: SPIN agrees with the explorer', () => {
  it('the device-free migration: same states, nothing violated', () => {
    const { spin, ours } = differential(migration(0, 'off'));
    expect(spin.violated.size).toBe(0);
    expect(ours.properties.filter((p) => p.kind !== 'liveness').every((p) => p.holds)).toBe(true);
  });

  it('one device, switchover-ack off and legacy: same states, same verdicts', () => {
    for (const ack of ['off', 'legacy'] as const) {
      const { spin } = differential(migration(1, ack));
      expect(spin.violated.size).toBe(0);
    }
  });

  it('planted violations: a broken invariant, a channel invariant left out, and deadlocks SPIN must find itself', () => {
    const base = migration(1, 'off');
    const spec: SystemSpec = {
      ...base,
      invariants: [
        ...(base.invariants ?? []),
        { name: 'PlantedSourceNeverCompletes', holds: (s) => srcStatus(s) !== 'completed' },
        { name: 'PlantedMainStreamEmpty', holds: (s) => s.channel('main').length === 0 },
      ],
    };
    const { e, spin } = differential(spec);
    expect(e.leftOut.map((x) => x.name)).toEqual(['PlantedMainStreamEmpty']);
    expect(spin.violated.has('invariant PlantedSourceNeverCompletes')).toBe(true);
    // no migration thread (no THREAD_STEP): the migration stalls in states that are not terminal
    const stalled: SystemSpec = { ...base, environment: { source: [{ type: 'MIGRATE' }], destination: [{ type: 'MIGRATE_INCOMING' }] } };
    const d = differential(stalled);
    expect(d.ours.properties.find((p) => p.name === 'NoDeadlock')!.verdict).toBe('violated');
    expect(d.spin.violated.has(DEADLOCK_MESSAGE)).toBe(true);
  });

  it('one device with a driver fault on each host: the same three invariants violated', () => {
    const { spin, ours } = differential(migration(1, 'legacy', { deviceFaults: 1 }));
    const violated = ours.properties.filter((p) => p.kind === 'safety' && p.verdict === 'violated').map((p) => `invariant ${p.name}`);
    expect(violated.length).toBeGreaterThan(0);
    expect([...spin.violated].sort()).toEqual(violated.sort());
  });

  it('switchover-ack on the source only: same states, same verdicts', () => {
    differential(migration(1, 'legacy', { oneSide: 'source' }));
  });

  it('non-progress cycles: SPIN -DNP finds one exactly when the explorer does (a toy ping-pong)', () => {
    const pinger = setup({ types: { events: {} as { type: 'GO' } | { type: 'PONG' } | { type: 'IDLE' }, emitted: {} as { type: 'PING' } } }).createMachine({
      id: 'pinger',
      initial: 'ready',
      context: { n: 0 },
      states: {
        ready: { on: { GO: { target: 'waiting', actions: [{ type: 'xstate.emit', params: { event: { type: 'PING' } } } as never] }, IDLE: 'dozing' } },
        dozing: { on: { IDLE: 'ready' } },
        waiting: { on: { PONG: { target: 'ready', actions: assign({ n: ({ context }) => (context.n + 1) % 2 }) } } },
      },
    });
    const ponger = setup({ types: { events: {} as { type: 'PING' }, emitted: {} as { type: 'PONG' } } }).createMachine({
      id: 'ponger',
      on: { PING: { actions: [{ type: 'xstate.emit', params: { event: { type: 'PONG' } } } as never] } },
    });
    const base: SystemSpec = {
      name: 'ping-pong',
      components: [
        { name: 'a', machine: pinger },
        { name: 'b', machine: ponger },
      ],
      channels: [
        { name: 'ab', from: 'a', to: 'b', capacity: 1 },
        { name: 'ba', from: 'b', to: 'a', capacity: 1 },
      ],
      environment: { a: [{ type: 'GO' }, { type: 'IDLE' }] },
      terminal: () => false,
    };
    for (const [progress, cycle] of [
      [(s: { component: string; kind: string; event: { type: string } }) => s.kind === 'deliver' || s.event.type === 'IDLE', false],
      [(s: { kind: string }) => s.kind === 'deliver', true],
    ] as const) {
      const spec: SystemSpec = { ...base, progress };
      const { e } = differential(spec);
      const ours = explore(spec, { symmetry: false }).properties.find((p) => p.name === 'NoNonProgressCycle')!;
      expect(ours.verdict).toBe(cycle ? 'violated' : 'holds');
      expect(runSpin(e.text, true).nonProgress).toBe(cycle);
    }
  });
});

describe('export --promela: the command', () => {
  const run = (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = main(['export', '--promela', ...args], (s) => out.push(s), (s) => err.push(s));
    return { code, out: out.join('\n'), err: err.join('\n') };
  };

  it('writes the system check would explore, whole, to --out', () => {
    const file = join(dir, 'cli.pml');
    const r = run(['--devices', '1', '--ack', 'off', '--out', file]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/714 states/);
    const spin = runSpin(execFileSync('cat', [file], { encoding: 'utf8' }));
    expect(spin.stored).toBe(714);
  });

  it('bad flags and a model over the states bound are one line and exit 2', () => {
    for (const args of [['--devices', '0'], ['--ack', 'sometimes'], ['--design', 'legacy'], ['--devices', '1', '--max-states', '10'], ['--symmetry']]) {
      const r = run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.split('\n')).toHaveLength(1);
      expect(r.out).toBe('');
    }
  });
});
