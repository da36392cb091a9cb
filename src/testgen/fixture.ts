/**
 * The test-suite fixture: a versioned JSON file, byte-identical for the same inputs (no timestamps, keys
 * in a fixed order, event payload keys sorted with `type` first, cases in generation order), and its
 * validating reader. Schema `migration-statecharts/test-suite@2`:
 *
 *   {
 *     "schema": "migration-statecharts/test-suite@2",
 *     "system": string,              // the SystemSpec name the suite was generated from
 *     "preset": null                 // how `tests replay` rebuilds the model (null: given by the API caller)
 *       | { "id": "device", "features": FeatureSet, "precopyInfoV2": bool, "profile": "generic"|"mtty",
 *           "faults": bool, "maxBytes": n }
 *       | { "id": "migration", "devices": n, "ack": "legacy"|"per-device"|"off" },
 *     "criterion": "states" | "transitions" | "pairs" | "commands" | "random" | "target",
 *     "target": string | null,       // the target state or predicate name (criterion "target")
 *     "seed": integer | null,        // PRNG seed (criterion "random")
 *     "length": integer | null,      // step bound of each walk (criterion "random")
 *     "walks": integer | null,       // number of walks (criterion "random")
 *     "observed": { component: [ field ] },   // the fields of each observed component's records
 *     "initial": { component: value },        // every component's state value before the first step
 *     "initialObservation": { component: { field: value } },
 *     "cases": [ {
 *       "name": string,
 *       "covers": [ string ],        // the items this case covers first (see "coverage")
 *       "steps": [ {
 *         "component": string,       // who takes the step
 *         "kind": "env" | "deliver", // an environment event, or the head message of a channel
 *         "channel": string,         // only for "deliver"
 *         "event": { "type": string, ... },
 *         "expect": { component: value },     // every component's state value after the step
 *         "observe": { component: { field: value | { "anyOf": [value, ...] } } }
 *                                    // what each observed component shows after the step (observe.ts)
 *       } ]
 *     } ],
 *     "coverage": {
 *       "items": "states" | "transitions" | "pairs" | "commands" | "target",
 *       "total": integer | null,     // items the machines define (null when not enumerated)
 *       "reachable": integer,        // items some run of the explored graph covers
 *       "covered": integer,          // items this suite covers
 *       "unreachable": [ string ],   // defined items no run covers (what exploration never reached)
 *       "uncovered": [ string ]      // reachable items the suite misses (empty except for random walks)
 *     },
 *     "stats": {
 *       "cases": integer, "steps": integer,
 *       "lowerBound": integer | null,   // no covering suite has fewer steps (src/testgen/bound.ts)
 *       "construction": "greedy" | "postman" | "random" | "shortest-path"
 *     }
 *   }
 *
 * A state value is written as the explorer writes it (`formatValue`: `a.b|c.d` for nested/parallel).
 * Version 1 files (state values only, no observations) are refused with the command that regenerates them.
 */
import type { AckMode } from '../../machines/migrationMessages.js';
import { FEATURE_SETS, type FeatureSet } from '../../machines/vfioArcs.js';
import { PROFILE_IDS, type ProfileId } from '../../machines/vfioProfiles.js';

export const SUITE_SCHEMA = 'migration-statecharts/test-suite@2';
const SUITE_SCHEMA_V1 = 'migration-statecharts/test-suite@1';

export const CRITERIA = ['states', 'transitions', 'pairs', 'commands', 'verified', 'random', 'target'] as const;
export type Criterion = (typeof CRITERIA)[number];

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

export interface SuiteEvent {
  readonly type: string;
  readonly [key: string]: JsonValue;
}

export type StateValues = Readonly<Record<string, string>>;

/** Per observed component, its record (observe.ts): field → value, or `{ anyOf: [...] }`. */
export type Observations = Readonly<Record<string, Readonly<Record<string, JsonValue>>>>;

export interface SuiteStep {
  readonly component: string;
  readonly kind: 'env' | 'deliver';
  readonly channel?: string;
  readonly event: SuiteEvent;
  readonly expect: StateValues;
  readonly observe: Observations;
}

export interface TestCase {
  readonly name: string;
  readonly covers: readonly string[];
  readonly steps: readonly SuiteStep[];
}

/** A VFIO device configuration: feature set, PRECOPY_INFOv2 opt-in, driver profile, injected faults, byte domain. */
export interface DevicePreset {
  readonly id: 'device';
  readonly features: FeatureSet;
  readonly precopyInfoV2: boolean;
  readonly profile: ProfileId;
  readonly faults: boolean;
  readonly maxBytes: number;
}

export type PresetRef = DevicePreset | { readonly id: 'migration'; readonly devices: number; readonly ack: AckMode };

export type CoverageItems = 'states' | 'transitions' | 'pairs' | 'commands' | 'target';
const COVERAGE_ITEMS: readonly CoverageItems[] = ['states', 'transitions', 'pairs', 'commands', 'target'];

export interface SuiteCoverage {
  readonly items: CoverageItems;
  readonly total: number | null;
  readonly reachable: number;
  readonly covered: number;
  readonly unreachable: readonly string[];
  readonly uncovered: readonly string[];
}

export interface SuiteStats {
  readonly cases: number;
  readonly steps: number;
  readonly lowerBound: number | null;
  readonly construction: 'greedy' | 'postman' | 'random' | 'shortest-path' | 'verified';
}

export interface TestSuite {
  readonly schema: typeof SUITE_SCHEMA;
  readonly system: string;
  readonly preset: PresetRef | null;
  readonly criterion: Criterion;
  readonly target: string | null;
  readonly seed: number | null;
  readonly length: number | null;
  readonly walks: number | null;
  /** The fields of each observed component's records. */
  readonly observed: Readonly<Record<string, readonly string[]>>;
  readonly initial: StateValues;
  readonly initialObservation: Observations;
  readonly cases: readonly TestCase[];
  readonly coverage: SuiteCoverage;
  readonly stats: SuiteStats;
}

/** A fixture that does not follow the schema; the message names the first problem found. */
export class FixtureError extends Error {
  override readonly name = 'FixtureError';
}

/** An event in canonical form: plain JSON, `type` first, the other keys sorted (recursively). */
export function canonicalEvent(e: { readonly type: string }): SuiteEvent {
  return canonical(JSON.parse(JSON.stringify(e)) as JsonValue, true) as SuiteEvent;
}

function canonical(v: JsonValue, typeFirst = false): JsonValue {
  if (Array.isArray(v)) return v.map((x: JsonValue) => canonical(x));
  if (v !== null && typeof v === 'object') {
    const o = v as { readonly [key: string]: JsonValue };
    const keys = Object.keys(o).sort();
    const order = typeFirst && keys.includes('type') ? ['type', ...keys.filter((k) => k !== 'type')] : keys;
    const out: Record<string, JsonValue> = {};
    for (const k of order) out[k] = canonical(o[k]!);
    return out;
  }
  return v;
}

/** The same key, so two events are equal exactly when their keys are. */
export function eventKey(e: { readonly type: string }): string {
  return JSON.stringify(canonicalEvent(e));
}

/** The fixture text: stable key order, two-space indent, a final newline. */
export function serializeSuite(s: TestSuite): string {
  const ordered = {
    schema: s.schema,
    system: s.system,
    preset: presetJson(s.preset),
    criterion: s.criterion,
    target: s.target,
    seed: s.seed,
    length: s.length,
    walks: s.walks,
    observed: Object.fromEntries(Object.entries(s.observed).map(([c, f]) => [c, [...f]])),
    initial: { ...s.initial },
    initialObservation: observationsJson(s.initialObservation, s.observed),
    cases: s.cases.map((c) => ({
      name: c.name,
      covers: [...c.covers],
      steps: c.steps.map((st) => ({
        component: st.component,
        kind: st.kind,
        ...(st.kind === 'deliver' ? { channel: st.channel ?? '' } : {}),
        event: canonicalEvent(st.event),
        expect: { ...st.expect },
        observe: observationsJson(st.observe, s.observed),
      })),
    })),
    coverage: {
      items: s.coverage.items,
      total: s.coverage.total,
      reachable: s.coverage.reachable,
      covered: s.coverage.covered,
      unreachable: [...s.coverage.unreachable],
      uncovered: [...s.coverage.uncovered],
    },
    stats: { cases: s.stats.cases, steps: s.stats.steps, lowerBound: s.stats.lowerBound, construction: s.stats.construction },
  };
  return JSON.stringify(ordered, null, 2) + '\n';
}

function presetJson(p: PresetRef | null): JsonValue {
  if (p === null) return null;
  if (p.id === 'migration') return { id: 'migration', devices: p.devices, ack: p.ack };
  return { id: 'device', features: p.features, precopyInfoV2: p.precopyInfoV2, profile: p.profile, faults: p.faults, maxBytes: p.maxBytes };
}

/** Observations in the suite's field order (so equal suites serialise to equal bytes). */
function observationsJson(o: Observations, fields: Readonly<Record<string, readonly string[]>>): JsonValue {
  const out: Record<string, JsonValue> = {};
  for (const [c, names] of Object.entries(fields)) {
    const rec = o[c];
    if (!rec) continue;
    const r: Record<string, JsonValue> = {};
    for (const f of names) if (f in rec) r[f] = canonical(rec[f]!);
    out[c] = r;
  }
  return out;
}

/** The command line that regenerates a suite like this one (for the version-1 message). */
const REGENERATE = 'migration-statecharts tests generate --system device|migration ... --out FILE';

/** Read and validate a fixture; throws FixtureError naming the first problem (one line). */
export function parseSuite(text: string): TestSuite {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FixtureError(`not JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  const top = obj(raw, '(top level)');
  const schema = top['schema'];
  if (schema === SUITE_SCHEMA_V1) {
    throw new FixtureError(`this fixture is version 1 (state values only, no expected observations); regenerate it with \`${REGENERATE}\``);
  }
  if (schema !== SUITE_SCHEMA) {
    throw new FixtureError(`schema is ${JSON.stringify(schema)}; expected "${SUITE_SCHEMA}"`);
  }
  const criterion = top['criterion'];
  if (typeof criterion !== 'string' || !(CRITERIA as readonly string[]).includes(criterion)) {
    throw new FixtureError(`criterion is ${JSON.stringify(criterion)}; valid: ${CRITERIA.join(', ')}`);
  }
  const initial = values(top['initial'], 'initial');
  const observed = observedFields(top['observed'], Object.keys(initial));
  const initialObservation = observations(top['initialObservation'], 'initialObservation', observed);
  const casesRaw = top['cases'];
  if (!Array.isArray(casesRaw)) throw new FixtureError('cases: expected an array');
  const cases = casesRaw.map((c: unknown, i: number) => testCase(c, `cases[${i}]`, Object.keys(initial), observed));
  return {
    schema: SUITE_SCHEMA,
    system: str(top['system'], 'system'),
    preset: preset(top['preset']),
    criterion: criterion as Criterion,
    target: nullable(top['target'], 'target', str),
    seed: nullable(top['seed'], 'seed', int),
    length: nullable(top['length'], 'length', int),
    walks: nullable(top['walks'], 'walks', int),
    observed,
    initial,
    initialObservation,
    cases,
    coverage: coverage(top['coverage']),
    stats: stats(top['stats']),
  };
}

function obj(v: unknown, path: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new FixtureError(`${path}: expected an object`);
  return v as Record<string, unknown>;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') throw new FixtureError(`${path}: expected a string, got ${JSON.stringify(v) ?? 'nothing'}`);
  return v;
}

function int(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new FixtureError(`${path}: expected a non-negative integer, got ${JSON.stringify(v) ?? 'nothing'}`);
  return v;
}

function nullable<T>(v: unknown, path: string, f: (v: unknown, path: string) => T): T | null {
  return v === null ? null : f(v, path);
}

function strings(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) throw new FixtureError(`${path}: expected an array of strings`);
  return v.map((x: unknown, i: number) => str(x, `${path}[${i}]`));
}

function values(v: unknown, path: string): Record<string, string> {
  const o = obj(v, path);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(o)) out[k] = str(x, `${path}.${k}`);
  return out;
}

function preset(v: unknown): PresetRef | null {
  if (v === null) return null;
  const o = obj(v, 'preset');
  if (o['id'] === 'device') {
    const features = o['features'];
    if (typeof features !== 'string' || !(FEATURE_SETS as readonly string[]).includes(features)) {
      throw new FixtureError(`preset.features is ${JSON.stringify(features) ?? 'missing'}; valid: ${FEATURE_SETS.join(', ')}`);
    }
    const profile = o['profile'];
    if (typeof profile !== 'string' || !(PROFILE_IDS as readonly string[]).includes(profile)) {
      throw new FixtureError(`preset.profile is ${JSON.stringify(profile) ?? 'missing'}; valid: ${PROFILE_IDS.join(', ')}`);
    }
    const maxBytes = int(o['maxBytes'], 'preset.maxBytes');
    if (maxBytes < 1 || maxBytes > 4) throw new FixtureError(`preset.maxBytes is ${maxBytes}; valid: 1..4`);
    return {
      id: 'device',
      features: features as FeatureSet,
      precopyInfoV2: bool(o['precopyInfoV2'], 'preset.precopyInfoV2'),
      profile: profile as ProfileId,
      faults: bool(o['faults'], 'preset.faults'),
      maxBytes,
    };
  }
  if (o['id'] === 'migration') {
    const ack = o['ack'];
    if (ack !== 'legacy' && ack !== 'per-device' && ack !== 'off') throw new FixtureError(`preset.ack is ${JSON.stringify(ack)}; valid: legacy, per-device, off`);
    return { id: 'migration', devices: int(o['devices'], 'preset.devices'), ack };
  }
  throw new FixtureError(`preset.id is ${JSON.stringify(o['id'])}; valid: device, migration`);
}

function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw new FixtureError(`${path}: expected true or false, got ${JSON.stringify(v) ?? 'nothing'}`);
  return v;
}

function observedFields(v: unknown, components: readonly string[]): Record<string, readonly string[]> {
  const o = obj(v, 'observed');
  const out: Record<string, readonly string[]> = {};
  for (const [c, f] of Object.entries(o)) {
    if (!components.includes(c)) throw new FixtureError(`observed.${c}: not a component of the suite (${components.join(', ')})`);
    out[c] = strings(f, `observed.${c}`);
  }
  return out;
}

function observations(v: unknown, path: string, fields: Readonly<Record<string, readonly string[]>>): Observations {
  const o = obj(v, path);
  const out: Record<string, Readonly<Record<string, JsonValue>>> = {};
  for (const [c, names] of Object.entries(fields)) {
    const rec = obj(o[c], `${path}.${c}`);
    for (const f of names) {
      if (!(f in rec)) throw new FixtureError(`${path}.${c}: no value for field "${f}"`);
      const x = rec[f];
      if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
        const any = (x as Record<string, unknown>)['anyOf'];
        if (!Array.isArray(any) || Object.keys(x).length !== 1) throw new FixtureError(`${path}.${c}.${f}: an object must be { "anyOf": [ ... ] }`);
      }
    }
    for (const f of Object.keys(rec)) if (!names.includes(f)) throw new FixtureError(`${path}.${c}.${f}: not a field in "observed" (${names.join(', ')})`);
    out[c] = rec as Record<string, JsonValue>;
  }
  for (const c of Object.keys(o)) if (!(c in fields)) throw new FixtureError(`${path}.${c}: component not listed in "observed"`);
  return out;
}

function testCase(v: unknown, path: string, components: readonly string[], fields: Readonly<Record<string, readonly string[]>>): TestCase {
  const o = obj(v, path);
  const stepsRaw = o['steps'];
  if (!Array.isArray(stepsRaw)) throw new FixtureError(`${path}.steps: expected an array`);
  return {
    name: str(o['name'], `${path}.name`),
    covers: strings(o['covers'], `${path}.covers`),
    steps: stepsRaw.map((s: unknown, i: number) => step(s, `${path}.steps[${i}]`, components, fields)),
  };
}

function step(v: unknown, path: string, components: readonly string[], fields: Readonly<Record<string, readonly string[]>>): SuiteStep {
  const o = obj(v, path);
  const component = str(o['component'], `${path}.component`);
  if (!components.includes(component)) throw new FixtureError(`${path}.component is "${component}"; the suite's components: ${components.join(', ')}`);
  const kind = o['kind'];
  if (kind !== 'env' && kind !== 'deliver') throw new FixtureError(`${path}.kind is ${JSON.stringify(kind) ?? 'missing'}; valid: env, deliver`);
  const ev = obj(o['event'], `${path}.event`);
  str(ev['type'], `${path}.event.type`);
  const expect = values(o['expect'], `${path}.expect`);
  for (const c of components) if (!(c in expect)) throw new FixtureError(`${path}.expect: no value for component "${c}"`);
  const observe = observations(o['observe'], `${path}.observe`, fields);
  if (kind === 'deliver') {
    return { component, kind, channel: str(o['channel'], `${path}.channel`), event: canonicalEvent(ev as unknown as SuiteEvent), expect, observe };
  }
  if (o['channel'] !== undefined) throw new FixtureError(`${path}.channel: only deliver steps name a channel`);
  return { component, kind, event: canonicalEvent(ev as unknown as SuiteEvent), expect, observe };
}

function coverage(v: unknown): SuiteCoverage {
  const o = obj(v, 'coverage');
  const items = o['items'];
  if (typeof items !== 'string' || !(COVERAGE_ITEMS as readonly string[]).includes(items)) {
    throw new FixtureError(`coverage.items is ${JSON.stringify(items)}; valid: ${COVERAGE_ITEMS.join(', ')}`);
  }
  return {
    items: items as CoverageItems,
    total: nullable(o['total'], 'coverage.total', int),
    reachable: int(o['reachable'], 'coverage.reachable'),
    covered: int(o['covered'], 'coverage.covered'),
    unreachable: strings(o['unreachable'], 'coverage.unreachable'),
    uncovered: strings(o['uncovered'], 'coverage.uncovered'),
  };
}

function stats(v: unknown): SuiteStats {
  const o = obj(v, 'stats');
  const c = o['construction'];
  if (c !== 'greedy' && c !== 'postman' && c !== 'random' && c !== 'shortest-path' && c !== 'verified') {
    throw new FixtureError(`stats.construction is ${JSON.stringify(c)}; valid: greedy, postman, random, shortest-path`);
  }
  return { cases: int(o['cases'], 'stats.cases'), steps: int(o['steps'], 'stats.steps'), lowerBound: nullable(o['lowerBound'], 'stats.lowerBound', int), construction: c };
}
