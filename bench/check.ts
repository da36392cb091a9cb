/**
 * `npm run bench:check`: the workload users run — `check` on the composed migration system (source,
 * destination, N VFIO devices with every feature, both channels, every property) — for N = 2..8, both
 * ack modes, with and without symmetry, and the REINIT designs (their finite-REINIT system, and the
 * whole of `check --design` with the storm run that decides L2); and xstate/graph's getAdjacencyMap on the
 * same system (bench/composedMachine.ts: the same state count) for the N it finishes.
 *
 * Each run is a child process (bench/checkWorker.ts) with a deadline (BENCH_DEADLINE_S, default 120 s;
 * the whole `check --design` row has ten minutes, BENCH_DESIGN_DEADLINE_S, since the issue asks for the
 * largest N within 60 s and within ten minutes); a row stops growing N at its first run past its deadline. The ratio of states/s is taken at the
 * largest N both engines finish, as the median of BENCH_RUNS (default 3) runs of each, in this run.
 * Prints a table; the last line is one JSON object. Progress on stderr on a terminal; quiet with CI set.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FeatureSet } from '../machines/vfioArcs.js';
import type { MigrationOptions } from '../src/systems/migration.js';
import type { DesignCheckOptions } from '../src/systems/reinit.js';

const DEADLINE_S = Number(process.env['BENCH_DEADLINE_S'] ?? 120);
const DESIGN_DEADLINE_S = Number(process.env['BENCH_DESIGN_DEADLINE_S'] ?? 600);
const RUNS = Math.max(1, Number(process.env['BENCH_RUNS'] ?? 3));
const MAX_N = Number(process.env['BENCH_MAX_N'] ?? 8);
const ALL: FeatureSet = 'STOP_COPY|P2P|PRE_COPY';
const tty = process.stderr.isTTY && !process.env['CI'];
const progress = (s: string) => tty && process.stderr.write(`\r\x1b[K${s}`);

interface Run {
  states: number;
  transitions?: number;
  seconds: number;
  statesPerSecond: number;
  bytesPerState?: number;
  /** `design` runs: the storm run's share of the states, and whether every claim got a verdict. */
  stormStates?: number;
  decided?: boolean;
}

type Engine = 'ours' | 'xstate' | 'design';

function run(engine: Engine, o: MigrationOptions | DesignCheckOptions, deadlineS = DEADLINE_S): Run | null {
  const worker = fileURLToPath(new URL('./checkWorker.js', import.meta.url));
  try {
    const out = execFileSync(process.execPath, ['--max-old-space-size=16384', worker, engine, JSON.stringify(o)], {
      timeout: deadlineS * 1000,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      maxBuffer: 1 << 20,
    });
    return JSON.parse(out.trim().split('\n').pop()!) as Run;
  } catch {
    return null; // past the deadline (or out of memory)
  }
}

interface Row {
  readonly label: string;
  readonly engine: Engine;
  readonly options: (n: number) => MigrationOptions | DesignCheckOptions;
  readonly deadlineS?: number;
}

const devices = (n: number) => Array.from({ length: n }, () => ALL);
const ROWS: Row[] = [
  { label: 'per-device', engine: 'ours', options: (n) => ({ devices: devices(n), ack: 'per-device' }) },
  { label: 'legacy', engine: 'ours', options: (n) => ({ devices: devices(n), ack: 'legacy' }) },
  // approximate (DEVICES_NOT_INTERCHANGEABLE): its states are a bug finder's, not a proof's
  { label: 'per-device, symmetry (approximate)', engine: 'ours', options: (n) => ({ devices: devices(n), ack: 'per-device', symmetry: true }) },
  { label: 'design reusable-ack', engine: 'ours', options: (n) => ({ devices: devices(n), ack: 'per-device', design: 'reusable-ack', guestReinits: 1 }) },
  { label: 'design recheck-resume, budget 2', engine: 'ours', options: (n) => ({ devices: devices(n), ack: 'per-device', design: 'recheck-resume', reinitBudget: 2, guestReinits: 1 }) },
  { label: 'per-device (xstate/graph)', engine: 'xstate', options: (n) => ({ devices: devices(n), ack: 'per-device' }) },
  // the whole of `check --design recheck-resume --reinit-budget 2`: the row above plus the storm run for L2
  {
    label: 'check --design recheck-resume --reinit-budget 2, every claim (with the storm run)',
    engine: 'design',
    options: (n) => ({ devices: devices(n), design: 'recheck-resume', reinitBudget: 2 }),
    deadlineS: DESIGN_DEADLINE_S,
  },
];

const t0 = performance.now();
const results: { row: string; engine: string; devices: number; run: Run | null }[] = [];
for (const row of ROWS) {
  for (let n = 2; n <= MAX_N; n++) {
    progress(`${row.label}: N=${n}`);
    const r = run(row.engine, row.options(n), row.deadlineS);
    results.push({ row: row.label, engine: row.engine, devices: n, run: r });
    if (r === null || r.decided === false) break;
  }
}

// the ratio: the largest N both engines finish, median of RUNS runs each
const finished = (label: string) => results.filter((x) => x.row === label && x.run !== null).map((x) => x.devices);
const both = finished('per-device').filter((n) => finished('per-device (xstate/graph)').includes(n));
const ratioN = both.length > 0 ? Math.max(...both) : null;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
let ratio: { devices: number; ours: number; xstate: number; speedup: number } | null = null;
if (ratioN !== null) {
  const o = { devices: devices(ratioN), ack: 'per-device' as const };
  const oursSps: number[] = [];
  const xsSps: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    progress(`ratio at N=${ratioN}: run ${i + 1} of ${RUNS}`);
    const a = run('ours', o);
    const b = run('xstate', o);
    if (a) oursSps.push(a.statesPerSecond);
    if (b) xsSps.push(b.statesPerSecond);
  }
  if (oursSps.length > 0 && xsSps.length > 0) {
    const ours = median(oursSps);
    const xstate = median(xsSps);
    ratio = { devices: ratioN, ours, xstate, speedup: Math.round((ours / xstate) * 10) / 10 };
  }
}
progress('');
if (tty) process.stderr.write('\r\x1b[K');

const fmt = (x: number) => x.toLocaleString('en-US');
console.log(`bench:check — the composed migration system, every device STOP_COPY|P2P|PRE_COPY, every property checked (deadline ${DEADLINE_S} s)`);
console.log('| system | N | states | transitions | seconds | states/s | bytes/state |');
console.log('|---|---|---|---|---|---|---|');
for (const x of results) {
  if (x.run === null) {
    const deadline = ROWS.find((r) => r.label === x.row)?.deadlineS ?? DEADLINE_S;
    console.log(`| ${x.row} | ${x.devices} | past the ${deadline} s deadline (or out of memory) | | | | |`);
    continue;
  }
  const r = x.run;
  const undecided = r.decided === false ? ' (a bound stopped the storm run: L2 undecided)' : r.stormStates !== undefined ? ` (storm run ${fmt(r.stormStates)})` : '';
  console.log(
    `| ${x.row} | ${x.devices} | ${fmt(r.states)}${undecided} | ${r.transitions === undefined ? '—' : fmt(r.transitions)} | ${r.seconds.toFixed(1)} | ${fmt(r.statesPerSecond)} | ${r.bytesPerState === undefined ? '—' : Math.round(r.bytesPerState)} |`,
  );
}
// the same systems must have the same state counts under both engines
const mismatch = results
  .filter((x) => x.engine === 'xstate' && x.run)
  .filter((x) => {
    const ours = results.find((y) => y.row === 'per-device' && y.devices === x.devices)?.run;
    return ours && ours.states !== x.run!.states;
  })
  .map((x) => x.devices);
if (mismatch.length > 0) console.log(`STATE COUNTS DIFFER between the engines at N = ${mismatch.join(', ')}`);
if (ratio) console.log(`ratio at N=${ratio.devices} (median of ${RUNS}): ours ${fmt(ratio.ours)} states/s, xstate/graph ${fmt(ratio.xstate)} states/s: ${ratio.speedup}×`);
const largest = (label: string) => Math.max(0, ...results.filter((x) => x.row === label && x.run !== null && x.run.decided !== false).map((x) => x.devices));
const seconds = Math.round((performance.now() - t0) / 100) / 10;
console.log(
  JSON.stringify({
    deadlineSeconds: DEADLINE_S,
    largestN: Object.fromEntries(ROWS.map((r) => [r.label, largest(r.label)])),
    runs: results.map((x) => ({ system: x.row, devices: x.devices, ...(x.run ?? { pastDeadline: true }) })),
    ratio,
    stateCountsAgree: mismatch.length === 0,
    seconds,
  }),
);
