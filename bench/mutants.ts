/**
 * Mutation benchmark of the generated device test suites (`npm run bench:mutants`).
 *
 * For each device configuration (the four feature sets; with and without the PRECOPY_INFOv2 opt-in
 * where there is PRE_COPY; maxBytes 1) and each criterion (states, transitions, pairs, commands, random
 * walks), the suite generated from the model (src/testgen) is run against an independent reference
 * implementation of the uAPI (bench/mutants/device.ts) — which must pass: a failure is a disagreement
 * between the model and a second transcription of the uAPI, and is reported — and against every mutant
 * (bench/mutants/mutants.ts); a mutant is killed when a case the reference passes fails. The same for
 * xstate/graph's shortest paths on vfioDeviceMachine, checking only the state value after each step.
 * Beyond the suites, the model and the reference are compared on every model event in every reachable
 * pair of states (bench/mutants/agreement.ts).
 *
 * A (mutant, configuration) pair counts only where the model's events can tell the mutant from the
 * reference at all (an exhaustive search, bench/mutants/equivalence.ts): a P2P bug on a device without
 * P2P is not a mutant of that device. Output: a table, survivors, disagreements; the last line is one
 * JSON object with the figures. Progress on stderr on a TTY; quiet with CI=true.
 */
import { vfioDeviceMachine } from '../machines/vfioDevice.js';
import { modelAgreement } from './mutants/agreement.js';
import { ReferenceDevice } from './mutants/device.js';
import { MUTANTS } from './mutants/mutants.js';
import {
  type Applicability,
  type BenchConfig,
  type Disagreement,
  BENCH_CRITERIA,
  CONFIGS,
  RANDOM,
  applicability,
  configModel,
  runAgainst,
  suiteFor,
  xstatePass,
  xstatePaths,
} from './mutants/run.js';

const t0 = performance.now();
const progress = process.stderr.isTTY && process.env['CI'] !== 'true' ? (s: string) => process.stderr.write(`\r\x1b[K${s}`) : () => {};

interface Row {
  cases: number;
  steps: number;
  lowerBound: number | null;
  killed: number; // (mutant, config) pairs
  nonEquivalent: number;
  survivors: string[]; // mutant@config
}
const rows = new Map<string, Row>();
const row = (k: string) => {
  let r = rows.get(k);
  if (!r) rows.set(k, (r = { cases: 0, steps: 0, lowerBound: 0, killed: 0, nonEquivalent: 0, survivors: [] }));
  return r;
};
const disagreements: Disagreement[] = [];
const xstateDisagreements: string[] = [];
const applies: Applicability[] = [];
/** Per criterion and mutant: the configurations where it is distinguishable, and where it was killed. */
const perMutant = new Map<string, Map<string, { applicable: number; killed: number }>>();
const xstateForeign = new Set<string>();
/** The exhaustive model-vs-reference search per configuration (agreement.ts). */
const exhaustive: { config: string; pairs: number; modelStates: number; disagreements: string[] }[] = [];

for (const cfg of CONFIGS) {
  progress(`${cfg.label}: exploring the model`);
  const m = configModel(cfg);
  progress(`${cfg.label}: equivalence of ${MUTANTS.length} mutants`);
  const app = applicability(m, MUTANTS);
  applies.push(...app);
  const live = MUTANTS.filter((_, i) => app[i]!.distinguishable);
  const tally = (criterion: string, killed: ReadonlySet<string>, r: Row) => {
    r.nonEquivalent += live.length;
    for (const mu of live) {
      const pm = perMutant.get(criterion) ?? new Map<string, { applicable: number; killed: number }>();
      perMutant.set(criterion, pm);
      const e = pm.get(mu.id) ?? { applicable: 0, killed: 0 };
      pm.set(mu.id, e);
      e.applicable++;
      if (killed.has(mu.id)) {
        r.killed++;
        e.killed++;
      } else r.survivors.push(`${mu.id}@${cfg.label}`);
    }
  };
  for (const criterion of BENCH_CRITERIA) {
    progress(`${cfg.label}: ${criterion}: generating`);
    const suite = suiteFor(m, criterion);
    progress(`${cfg.label}: ${criterion}: ${suite.stats.steps} steps × ${live.length + 1} devices`);
    const run = await runAgainst(cfg, suite, criterion, live);
    disagreements.push(...run.disagreements);
    const r = row(criterion);
    r.cases += run.cases;
    r.steps += run.steps;
    r.lowerBound = r.lowerBound === null || run.lowerBound === null ? null : r.lowerBound + run.lowerBound;
    tally(criterion, run.killed, r);
  }
  progress(`${cfg.label}: every model event in every reachable state, model vs reference`);
  const agree = modelAgreement(vfioDeviceMachine, m);
  exhaustive.push({ config: cfg.label, pairs: agree.explored, modelStates: m.graph.stateCount, disagreements: agree.disagreements.map((d) => `${d.events}: ${d.fields}`) });
  progress(`${cfg.label}: xstate/graph shortest paths`);
  const x = xstatePaths(vfioDeviceMachine, m);
  x.foreign.forEach((t) => xstateForeign.add(t));
  const ref = xstatePass(x, () => new ReferenceDevice(cfg));
  if (!ref.pass) xstateDisagreements.push(`${cfg.label}: ${ref.firstFailure}`);
  const killed = new Set(live.filter((mu) => !xstatePass(x, () => mu.make(cfg)).pass).map((mu) => mu.id));
  const r = row('xstate/graph');
  r.cases += x.paths.length;
  r.steps += x.steps;
  r.lowerBound = null;
  tally('xstate/graph', killed, r);
}
progress('');

// ------------------------------------------------------------------------------------------ report
const seconds = (performance.now() - t0) / 1000;
const pct = (a: number, b: number) => (b === 0 ? '—' : `${((100 * a) / b).toFixed(1)}%`);
const equivalentEverywhere = MUTANTS.filter((mu) => applies.every((a) => a.mutant !== mu.id || !a.distinguishable));
const claimed = MUTANTS.filter((mu) => mu.equivalent);
const out: string[] = [];
out.push(`Mutation benchmark: ${MUTANTS.length} mutants (${claimed.length} flagged equivalent) × ${CONFIGS.length} configurations (${CONFIGS.map((c) => c.label).join(', ')}); maxBytes 1`);
const nonEqPairs = applies.filter((a) => a.distinguishable).length;
out.push(`${nonEqPairs} of ${applies.length} (mutant, configuration) pairs are distinguishable with the model's events (the rest are equivalent there)`);
out.push('');
const head = ['criterion', 'cases', 'steps', 'lower bound', 'killed / non-equivalent (mutant, config) pairs', 'mutants killed in every config', 'in some config', 'surviving pairs'];
const table: string[][] = [head];
const summary: Record<string, unknown> = {};
for (const [k, r] of rows) {
  const pm = perMutant.get(k) ?? new Map<string, { applicable: number; killed: number }>();
  const everywhere = [...pm.values()].filter((e) => e.killed === e.applicable).length;
  const somewhere = [...pm.values()].filter((e) => e.killed > 0).length;
  table.push([
    k,
    String(r.cases),
    String(r.steps),
    r.lowerBound === null ? '—' : String(r.lowerBound),
    `${r.killed}/${r.nonEquivalent} (${pct(r.killed, r.nonEquivalent)})`,
    `${everywhere}/${pm.size}`,
    `${somewhere}/${pm.size}`,
    String(r.survivors.length),
  ]);
  summary[k] = {
    cases: r.cases,
    steps: r.steps,
    lowerBound: r.lowerBound,
    killed: r.killed,
    nonEquivalent: r.nonEquivalent,
    killRate: r.nonEquivalent === 0 ? null : Math.round((10000 * r.killed) / r.nonEquivalent) / 10000,
    mutantsKilledEverywhere: everywhere,
    mutantsKilledSomewhere: somewhere,
    mutantsNonEquivalent: pm.size,
    survivors: groupSurvivors(r.survivors),
  };
}
const widths = head.map((_, i) => Math.max(...table.map((t) => t[i]!.length)));
for (const t of table) out.push(t.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
out.push('');
out.push('Survivors (mutant: configurations where it is distinguishable but not killed):');
for (const [k, r] of rows) {
  if (k === 'states') continue;
  const g = groupSurvivors(r.survivors);
  out.push(`  ${k}: ${Object.keys(g).length === 0 ? 'none' : Object.entries(g).map(([id, c]) => `${id} (${c.join(', ')})`).join('; ')}`);
}
out.push('');
out.push(`random: seed ${RANDOM.seed}, ${RANDOM.walks} walks of ${RANDOM.length} steps per configuration. xstate/graph: createTestModel(vfioDeviceMachine, { events }).getShortestPaths(), state value after each step only` + (xstateForeign.size > 0 ? ` (bare events it adds and the uAPI device has no call for, skipped: ${[...xstateForeign].join(', ')})` : ''));
out.push('');
out.push('Equivalent mutants (no sequence of the model\'s events tells them from the reference, in any configuration):');
for (const mu of equivalentEverywhere) out.push(`  ${mu.id}${mu.equivalent ? '' : '  (NOT flagged equivalent)'}: ${mu.reason ?? mu.description}`);
for (const mu of claimed.filter((c) => !equivalentEverywhere.includes(c))) {
  const w = applies.find((a) => a.mutant === mu.id && a.distinguishable)!;
  out.push(`  WRONG CLAIM ${mu.id} is flagged equivalent but ${w.config} tells it apart: ${w.witness}`);
}
const inconclusive = applies.filter((a) => !a.complete);
if (inconclusive.length > 0) out.push(`  (search bounded, inconclusive: ${inconclusive.map((a) => `${a.mutant}@${a.config}`).join(', ')})`);
out.push('');
out.push('A shortest distinguishing sequence of each mutant surviving transitions, pairs, commands or random somewhere:');
const survivingIds = new Set(
  [...rows].filter(([k]) => k !== 'states' && k !== 'xstate/graph').flatMap(([, r]) => r.survivors.map((s) => s.split('@')[0]!)),
);
for (const id of [...survivingIds]) {
  const w = applies.find((a) => a.mutant === id && a.distinguishable);
  out.push(`  ${id}: ${w?.witness} (${w?.config})`);
}
out.push('');
const exhaustiveBad = exhaustive.flatMap((x) => x.disagreements.map((d) => `${x.config}: ${d}`));
out.push(
  `Exhaustive model vs reference (every model event in every reachable pair of states): ${exhaustive.map((x) => `${x.config} ${x.pairs} pairs (${x.modelStates} model states)`).join(', ')}; ${exhaustiveBad.length} disagreements`,
);
const allBad = disagreements.length + xstateDisagreements.length + exhaustiveBad.length;
if (allBad === 0) out.push('The reference passes every suite of every criterion and configuration and every xstate/graph path: no disagreement with the model.');
else {
  out.push(`DISAGREEMENTS between the model and the reference (${allBad}):`);
  for (const d of disagreements) out.push(`  ${d.config} ${d.criterion} ${d.case}: ${d.message}\n      trace: ${d.trace.join(' ; ')}`);
  for (const d of xstateDisagreements) out.push(`  xstate/graph ${d}`);
  for (const d of exhaustiveBad) out.push(`  exhaustive ${d}`);
}
out.push(`${seconds.toFixed(1)} s`);
console.log(out.join('\n'));
console.log(
  JSON.stringify({
    mutants: MUTANTS.length,
    flaggedEquivalent: claimed.map((m) => m.id),
    equivalent: equivalentEverywhere.map((m) => m.id),
    configurations: CONFIGS.map((c: BenchConfig) => c.label),
    nonEquivalentPairs: nonEqPairs,
    criteria: summary,
    exhaustive: exhaustive.map((x) => ({ config: x.config, pairs: x.pairs, modelStates: x.modelStates, disagreements: x.disagreements.length })),
    disagreements: allBad,
    seconds: Math.round(seconds * 10) / 10,
  }),
);

/** `a@SC, a@SC|P2P, b@SC` → `{ a: ['SC', 'SC|P2P'], b: ['SC'] }` (`['all']` for every configuration). */
function groupSurvivors(list: readonly string[]): Record<string, string[]> {
  const by: Record<string, string[]> = {};
  for (const s of list) {
    const [id, cfg] = s.split('@') as [string, string];
    (by[id] ??= []).push(cfg);
  }
  for (const id of Object.keys(by)) if (by[id]!.length === CONFIGS.length) by[id] = ['all'];
  return by;
}
