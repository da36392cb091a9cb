/**
 * The mutation benchmark's machinery, shared by bench/mutants.ts and test/mutants.test.ts: device
 * configurations, suites generated from the model (src/testgen) run against the reference device and
 * its mutants, which (mutant, configuration) pairs are distinguishable at all with the model's events
 * (equivalence.ts), and the xstate/graph shortest-paths baseline.
 */
import type { AnyStateMachine, EventObject } from 'xstate';
import { createTestModel } from 'xstate/graph';
import {
  type Criterion,
  type DevicePreset,
  type ModelGraph as ModelGraphT,
  type TestSuite,
  ModelGraph,
  devicePreset,
  deviceSystem,
  generateSuite,
  runSuite,
} from '../../src/testgen/index.js';
import { type DeviceEvent, applyEvent, deviceAdapter } from './adapter.js';
import { type DeviceConfig, ReferenceDevice, stateName } from './device.js';
import { describeEvents, distinguish } from './equivalence.js';
import type { Mutant } from './mutants.js';

export type FeatureSet = DevicePreset['features'];

export interface BenchConfig extends DeviceConfig {
  readonly features: FeatureSet;
  /** `SC|P2P|PC+v2` */
  readonly label: string;
}

const FEATURES: Record<number, FeatureSet> = { 1: 'STOP_COPY', 3: 'STOP_COPY|P2P', 5: 'STOP_COPY|PRE_COPY', 7: 'STOP_COPY|P2P|PRE_COPY' };

export function benchConfig(flags: 1 | 3 | 5 | 7, precopyInfoV2: boolean, maxBytes = 1): BenchConfig {
  const features = FEATURES[flags]!;
  const label = features.replace('STOP_COPY', 'SC').replace('PRE_COPY', 'PC') + (precopyInfoV2 ? '+v2' : '');
  return { flags, precopyInfoV2, maxBytes, features, label };
}

/** The four feature sets, with and without the PRECOPY_INFOv2 opt-in where there is PRE_COPY. */
export const CONFIGS: readonly BenchConfig[] = [
  benchConfig(1, false),
  benchConfig(3, false),
  benchConfig(5, false),
  benchConfig(5, true),
  benchConfig(7, false),
  benchConfig(7, true),
];

export const BENCH_CRITERIA = ['states', 'transitions', 'pairs', 'commands', 'verified', 'random'] as const;
export type BenchCriterion = (typeof BENCH_CRITERIA)[number];

/** Random walks: the seed, the number of walks and their length. */
export const RANDOM = { seed: 1, walks: 20, length: 40 } as const;

export const presetOf = (c: BenchConfig): DevicePreset =>
  devicePreset({ features: c.features, precopyInfoV2: c.precopyInfoV2, maxBytes: c.maxBytes, profile: 'generic', faults: true });

/** A configuration's model: the system, its explored graph and its events. */
export interface ConfigModel {
  readonly cfg: BenchConfig;
  readonly preset: DevicePreset;
  readonly graph: ModelGraphT;
  readonly events: readonly DeviceEvent[];
  readonly input: unknown;
}

export function configModel(cfg: BenchConfig): ConfigModel {
  const preset = presetOf(cfg);
  const spec = deviceSystem(preset);
  const events = (spec.environment?.['dev'] ?? []) as readonly DeviceEvent[];
  return { cfg, preset, graph: new ModelGraph(spec), events, input: spec.components[0]!.input };
}

export function suiteFor(m: ConfigModel, criterion: BenchCriterion): TestSuite {
  const opts = criterion === 'random' ? { criterion: criterion as Criterion, ...RANDOM } : { criterion: criterion as Criterion };
  return generateSuite(m.graph, { ...opts, preset: m.preset });
}

/** A disagreement between the model and the reference device: a case of a suite the reference fails. */
export interface Disagreement {
  readonly config: string;
  readonly criterion: string;
  readonly case: string;
  readonly message: string;
  readonly trace: readonly string[];
}

export interface SuiteRun {
  readonly config: string;
  readonly criterion: BenchCriterion;
  readonly cases: number;
  readonly steps: number;
  readonly lowerBound: number | null;
  /** Cases of the suite the reference fails (excluded from the mutants' runs). */
  readonly disagreements: readonly Disagreement[];
  /** Mutants (ids) some case the reference passes kills. */
  readonly killed: ReadonlySet<string>;
}

/** Run a suite against the reference, then — its passing cases only — against every mutant. */
export async function runAgainst(cfg: BenchConfig, suite: TestSuite, criterion: BenchCriterion, mutants: readonly Mutant[]): Promise<SuiteRun> {
  const ref = await runSuite(suite, deviceAdapter(() => new ReferenceDevice(cfg), 'reference'));
  const failing = new Set(ref.cases.filter((c) => c.status !== 'passed').map((c) => c.name));
  const disagreements = ref.cases
    .filter((c) => c.failure !== null)
    .map((c) => ({ config: cfg.label, criterion, case: c.name, message: c.failure!.message, trace: c.failure!.trace }));
  const passing: TestSuite = failing.size === 0 ? suite : { ...suite, cases: suite.cases.filter((c) => !failing.has(c.name)) };
  const killed = new Set<string>();
  for (const m of mutants) {
    const r = await runSuite(passing, deviceAdapter(() => m.make(cfg), m.id), { stopOnFailure: true });
    if (r.failed + r.errors > 0) killed.add(m.id);
  }
  return { config: cfg.label, criterion, cases: suite.stats.cases, steps: suite.stats.steps, lowerBound: suite.stats.lowerBound, disagreements, killed };
}

/** For every mutant: whether the model's events can tell it from the reference in this configuration. */
export interface Applicability {
  readonly mutant: string;
  readonly config: string;
  readonly distinguishable: boolean;
  /** A shortest distinguishing event sequence (model events), or null. */
  readonly witness: string | null;
  readonly complete: boolean;
}

export function applicability(m: ConfigModel, mutants: readonly Mutant[]): Applicability[] {
  return mutants.map((mu) => {
    const d = distinguish((c) => new ReferenceDevice(c), m.cfg, mu, m.events);
    return { mutant: mu.id, config: m.cfg.label, distinguishable: d.witness !== null, witness: d.witness ? describeEvents(d.witness) : null, complete: d.complete };
  });
}

// ------------------------------------------------------------------------------- xstate/graph baseline

export interface XstatePaths {
  readonly paths: readonly { readonly events: readonly DeviceEvent[]; readonly states: readonly string[] }[];
  readonly steps: number;
  /** Event types xstate/graph added that the uAPI device has no call for (those steps are skipped). */
  readonly foreign: readonly string[];
}

const KNOWN = new Set([
  'SET_STATE',
  'VFIO_DEVICE_RESET',
  'VFIO_MIG_GET_PRECOPY_INFO',
  'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE',
  'DATA_FD_READ',
  'DATA_FD_WRITE',
  'GUEST_DIRTIES_DEVICE',
  'GUEST_REINITS_DEVICE',
]);

/** `createTestModel(machine, { events, input }).getShortestPaths()`: every path's events and the state value after each. */
export function xstatePaths(machine: AnyStateMachine, m: ConfigModel): XstatePaths {
  const model = createTestModel(machine, { events: [...(m.events as EventObject[])], input: m.input });
  const foreign = new Set<string>();
  const paths = model.getShortestPaths().map((p) => {
    const events: DeviceEvent[] = [];
    const states: string[] = [];
    for (const s of p.steps) {
      if (s.event.type.startsWith('xstate.')) continue;
      events.push(s.event as DeviceEvent);
      states.push(String(s.state.value));
      if (!KNOWN.has(s.event.type)) foreign.add(s.event.type);
    }
    return { events, states };
  });
  return { paths, steps: paths.reduce((n, p) => n + p.events.length, 0), foreign: [...foreign].sort() };
}

/** Run the xstate/graph paths (state value after each step only) against a device; true when every path passes. */
export function xstatePass(x: XstatePaths, make: () => ReferenceDevice): { pass: boolean; firstFailure: string | null } {
  for (const p of x.paths) {
    const dev = make();
    for (let i = 0; i < p.events.length; i++) {
      const ev = p.events[i]!;
      if (KNOWN.has(ev.type)) applyEvent(dev, ev);
      const got = stateName(dev.getState());
      if (got !== p.states[i]) {
        return { pass: false, firstFailure: `${describeEvents(p.events.slice(0, i + 1))}: state ${got}, the model says ${p.states[i]}` };
      }
    }
  }
  return { pass: true, firstFailure: null };
}
