/**
 * `npm run bench:explore`: the explorer against xstate/graph on K VFIO devices (see deviceSystem.ts).
 *
 * Prints, for our explorer at K = 1..4 (and 5 with symmetry): states, transitions, seconds, states/s and
 * retained bytes per state; then xstate/graph's getAdjacencyMap on the same devices as one parallel
 * machine, K = 1, 2, … until a run does not finish within 60 s (each run in a child process, killed at the
 * deadline). The last line is one JSON object with the 4-device figures and the ratio of states/s.
 *
 * The 4-device run is repeated (BENCH_RUNS, default 7) and the median is reported, with the fastest and
 * slowest beside it: this machine is shared, and one run can be 30% off either way.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { explore } from '../src/explorer/index.js';
import { deviceSystem } from './deviceSystem.js';

const OUR_K = 4;
const RUNS = Math.max(1, Number(process.env['BENCH_RUNS'] ?? 7));
const XSTATE_DEADLINE_S = Number(process.env['BENCH_XSTATE_DEADLINE_S'] ?? 60);

function ours(k: number, symmetry: boolean) {
  const r = explore(deviceSystem(k, symmetry), { progress: false });
  return {
    devices: k,
    symmetry,
    states: r.states,
    transitions: r.transitions,
    seconds: round(r.seconds),
    statesPerSecond: r.statesPerSecond,
    bytesPerState: round(r.bytesPerState),
  };
}

function xstateGraph(k: number): { devices: number; states: number; seconds: number; statesPerSecond: number } | null {
  const worker = fileURLToPath(new URL('./xstateGraphWorker.js', import.meta.url));
  try {
    const out = execFileSync(process.execPath, [worker, String(k)], { timeout: XSTATE_DEADLINE_S * 1000, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return JSON.parse(out.trim().split('\n').pop()!);
  } catch {
    return null; // did not finish within the deadline
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;

const rows = [];
for (let k = 1; k < OUR_K; k++) rows.push(ours(k, false));
const runs = Array.from({ length: RUNS }, () => ours(OUR_K, false)).sort((a, b) => a.seconds - b.seconds);
rows.push(runs[Math.floor(RUNS / 2)]!);
rows.push(ours(OUR_K, true), ours(OUR_K + 1, true));
for (const r of rows) {
  console.log(
    `explorer   K=${r.devices}${r.symmetry ? ' (symmetry)' : '           '} ${String(r.states).padStart(10)} states ${String(r.transitions).padStart(11)} transitions ` +
      `${r.seconds.toFixed(2).padStart(7)} s ${String(r.statesPerSecond).padStart(9)} states/s ${r.bytesPerState.toFixed(1).padStart(6)} B/state`,
  );
}

console.log(
  `explorer   K=${OUR_K}: median of ${RUNS} runs above; fastest ${runs[0]!.seconds.toFixed(2)} s (${runs[0]!.statesPerSecond} states/s), ` +
    `slowest ${runs[RUNS - 1]!.seconds.toFixed(2)} s (${runs[RUNS - 1]!.statesPerSecond} states/s)`,
);

let best: ReturnType<typeof xstateGraph> = null;
for (let k = 1; k <= OUR_K; k++) {
  const r = xstateGraph(k);
  if (!r) {
    console.log(`xstate/graph K=${k}: did not finish within ${XSTATE_DEADLINE_S} s`);
    break;
  }
  const same = rows.find((x) => x.devices === k && !x.symmetry)!;
  console.log(
    `xstate/graph K=${k}            ${String(r.states).padStart(10)} states ${r.seconds.toFixed(2).padStart(31)} s ${String(r.statesPerSecond).padStart(9)} states/s` +
      `   (explorer on the same K: ${same.states} states, ${Math.round(same.statesPerSecond / r.statesPerSecond)}× the rate)`,
  );
  if (r.states !== same.states) console.log(`  WARNING: state counts differ (${r.states} vs ${same.states})`);
  best = r;
}

const main = rows.find((x) => x.devices === OUR_K && !x.symmetry)!;
console.log(
  JSON.stringify({
    bench: 'explore',
    devices: OUR_K,
    states: main.states,
    transitions: main.transitions,
    seconds: main.seconds,
    statesPerSecond: main.statesPerSecond,
    bytesPerState: main.bytesPerState,
    xstateGraph: best,
    speedupVsXstateGraph: best ? Math.round(main.statesPerSecond / best.statesPerSecond) : null,
    runs: RUNS,
    fastestStatesPerSecond: runs[0]!.statesPerSecond,
    slowestStatesPerSecond: runs[RUNS - 1]!.statesPerSecond,
  }),
);
