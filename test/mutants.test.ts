/**
 * The mutation benchmark, reduced for CI (`npm run bench:mutants` runs the whole of it): an independent
 * reference implementation of the VFIO migration uAPI (bench/mutants/device.ts) must pass every suite
 * the model generates, and the transitions, pairs, commands and verified suites of two configurations must keep killing
 * the mutants (bench/mutants/mutants.ts) they kill today.
 *
 * The floors: `pairs` and `commands` kill every non-equivalent mutant (the target), `verified`
 * too. `transitions` keeps the rate measured once the device chart had one transition per answer of
 * each call (an accepted SET one per table entry, a reset one per session it ends) and every step read
 * back the live data_fd, MIG_DATA_SIZE and, where asking changes nothing, PRECOPY_INFO (64/67 here; 53/67
 * before the read-backs): the survivors need data left at one particular moment — precopy bytes unread
 * when STOP_COPY is entered (the final size then shows them), dirty bytes when the guest re-initialises —
 * which a tour that takes each transition once need not arrange; the pairs and the commands after every
 * way in do. bench/mutants.ts prints the survivors and a shortest sequence that kills each.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestSuite } from '../src/testgen/index.js';
import { MUTANTS } from '../bench/mutants/mutants.js';
import {
  type Applicability,
  type BenchConfig,
  type BenchCriterion,
  type ConfigModel,
  BENCH_CRITERIA,
  applicability,
  benchConfig,
  configModel,
  runAgainst,
  suiteFor,
} from '../bench/mutants/run.js';
import { sheetProblems } from '../bench/mutants/selfcheck.js';

/** All three features without the opt-in (P2P paths, legacy REINIT) and SC|PC with it (v2 REINIT, missing states). */
const CI_CONFIGS: readonly BenchConfig[] = [benchConfig(7, false), benchConfig(5, true)];

/**
 * Kill rates of the non-equivalent (mutant, configuration) pairs that must hold (measured: transitions
 * 64/67, pairs 67/67, commands 67/67 and, for the verified suites — every transition in every situation
 * the model tells apart, then every step the state it leaves allows and the sequences that characterize
 * it — 67/67).
 */
const FLOOR = { transitions: 0.95, pairs: 1, commands: 1, verified: 1 } as const;

const models = new Map<string, ConfigModel>();
const live = new Map<string, Applicability[]>();
const suites = new Map<string, TestSuite>();
/** Each suite generated once (the reference and the mutants run the same one). */
const suite = (cfg: BenchConfig, criterion: BenchCriterion) => {
  const k = `${cfg.label} ${criterion}`;
  let s = suites.get(k);
  if (!s) suites.set(k, (s = suiteFor(models.get(cfg.label)!, criterion)));
  return s;
};

beforeAll(() => {
  for (const cfg of CI_CONFIGS) {
    const m = configModel(cfg);
    models.set(cfg.label, m);
    live.set(cfg.label, applicability(m, MUTANTS).filter((a) => a.distinguishable));
  }
});

describe('reference device', () => {
  it('matches every figure of the fact sheet (arcs, valid pairs, the 25 multi-step paths, sessions)', () => {
    const { problems, multiStepPaths } = sheetProblems();
    expect(problems).toEqual([]);
    expect(multiStepPaths).toHaveLength(25);
  });

  it.each(CI_CONFIGS.map((c) => [c.label, c] as const))('passes every suite the model generates for %s', async (_label, cfg) => {
    for (const criterion of BENCH_CRITERIA) {
      const run = await runAgainst(cfg, suite(cfg, criterion), criterion, []);
      expect(run.disagreements.map((d) => `${criterion} ${d.case}: ${d.message}`)).toEqual([]);
    }
  });
});

describe('mutants', () => {
  it('every mutant flagged equivalent is equivalent, every other one is distinguishable somewhere', () => {
    for (const cfg of CI_CONFIGS) {
      const ids = new Set(live.get(cfg.label)!.map((a) => a.mutant));
      for (const mu of MUTANTS.filter((x) => x.equivalent)) expect(ids.has(mu.id), `${mu.id} on ${cfg.label}`).toBe(false);
    }
    const somewhere = new Set(CI_CONFIGS.flatMap((c) => live.get(c.label)!.map((a) => a.mutant)));
    expect(MUTANTS.filter((mu) => !mu.equivalent && !somewhere.has(mu.id)).map((mu) => mu.id)).toEqual([]);
    expect(MUTANTS.length).toBeGreaterThanOrEqual(24);
  });

  it.each(['transitions', 'pairs', 'commands', 'verified'] as const)('the %s suites kill at least their floor of the non-equivalent mutants', async (criterion) => {
    let killed = 0;
    let total = 0;
    const survivors: string[] = [];
    for (const cfg of CI_CONFIGS) {
      const ids = new Set(live.get(cfg.label)!.map((a) => a.mutant));
      const mutants = MUTANTS.filter((mu) => ids.has(mu.id));
      const run = await runAgainst(cfg, suite(cfg, criterion), criterion, mutants);
      expect(run.disagreements).toEqual([]);
      total += mutants.length;
      killed += run.killed.size;
      survivors.push(...mutants.filter((mu) => !run.killed.has(mu.id)).map((mu) => `${mu.id}@${cfg.label}`));
    }
    expect(killed / total, `${criterion}: ${killed}/${total} killed; survivors: ${survivors.join(', ')}`).toBeGreaterThanOrEqual(FLOOR[criterion]);
  });

});
