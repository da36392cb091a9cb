/**
 * `migration-statecharts tests`: generate a model-based test suite as a JSON fixture (src/testgen/), and
 * replay a fixture against the model, reporting the first step where they disagree (console, and JUnit
 * XML with --junit). Exit 0: ok; 1: replay disagrees (or the target is unreachable); 2: bad arguments or
 * a malformed fixture; 3: the model is too large to explore whole.
 */
import { parseArgs } from 'node:util';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { caseToItf } from '../export/itf.js';
import type { AckMode } from '../../machines/migrationMessages.js';
import { vfioDeviceMachine } from '../../machines/vfioDevice.js';
import {
  type Criterion,
  type PresetRef,
  type TestSuite,
  CRITERIA,
  DEVICE_EVENTS,
  DEVICE_FEATURES,
  FixtureError,
  GraphLimitError,
  ReplayError,
  TargetError,
  eventsAsXstateGraphSeesThem,
  formatRun,
  generateSuite,
  parseSuite,
  presetSystem,
  replaySuite,
  serializeSuite,
  toJUnitXml,
  xstateShortestPathsTotal,
} from '../testgen/index.js';
import { PROFILE_IDS, type ProfileId } from '../../machines/vfioProfiles.js';
import { ACK_MODES, PRESET_IDS, devicePreset } from '../testgen/systems.js';
import { checkOutputPath, joinNegativeNumbers, parseCount, parseFeatures, readInputFile, writeWhole } from './args.js';
import { EXIT, UsageError } from './errors.js';

export const TESTS_HELP = `usage: migration-statecharts tests generate --system device|migration [--devices N] [--ack legacy|per-device|off]
                                        [--features LIST] [--precopy-info-v2] [--profile generic|mtty]
                                        [--faults on|off] [--max-bytes N]
                                        [--criterion states|transitions|pairs|commands|verified|random|target]
                                        [--target STATE] [--seed N] [--length N] [--walks N] [--out FILE]
                                        [--compare] [--max-states N]
       migration-statecharts tests replay FILE [--junit FILE]
       migration-statecharts tests itf FILE --out-dir DIR
       migration-statecharts tests generate|replay --help
  generate: explore the model whole and write a test suite (a JSON fixture, schema
  migration-statecharts/test-suite@2; printed unless --out FILE) whose cases are paths of global steps
  from the initial state, each step with every component's expected state and every expected
  observation (a device: ok or errno, path, data_fd, bytes, PRECOPY_INFO, data size, the state read back;
  a QEMU: status, run state, its devices' states, the QMP reply).
    --system device      one VFIO device: --features (comma-separated p2p, pre-copy; default all),
                         --precopy-info-v2 (the REINIT opt-in), --profile generic (the uAPI, default) or
                         mtty (samples/vfio-mdev/mtty.c, what the real-kernel suite runs), --faults on|off
                         (injected driver failures, generic profile; default on), --max-bytes 1..4
    --system migration   the source and destination QEMUs with N VFIO devices (--devices 0..2, default 0)
                         and switchover-ack --ack (default legacy)
    --criterion          states, transitions (default; shortest tour found, with a lower bound), pairs
                         (consecutive transitions of a component), commands (every command in every
                         local state after every way into it, refusals included: the error paths), verified (every transition in
                         every situation the model tells apart, then every step the state it leaves
                         allows and the sequences that characterize that state), random (--walks N walks of at
                         most --length N steps from --seed N; defaults 10, 20, 1), target (--target STATE:
                         component:state, or a state name unique to one component)
    --compare            also print xstate/graph's getShortestPaths() total on the same machine (device)
  replay: re-run FILE against the model; print each case, and the first step where the model disagrees.
    --junit FILE         also write the result as JUnit XML
  itf: write each case of FILE as an ITF trace (the Informal Trace Format of Apalache and Quint), one
  file per case, DIR/NNN.itf.json in case order: every component's expected state and each observed
  component's expected record (a prediction that is a set as an ITF #set) after every step.
    --out-dir DIR        an existing directory; no file is written if any of them exists already
  --out and --junit must name a file in an existing directory; the file is written whole or not at all.
  Exit 0: ok; 1: replay disagrees, or the target is unreachable; 2: bad arguments or a malformed fixture;
  3: the model is too large to explore whole (--max-states, default 2,000,000).`;

const SUBCOMMANDS = ['generate', 'replay', 'itf'];

export function testsCommand(argv: readonly string[], out: (s: string) => void, err: (s: string) => void): number {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'generate':
      return generateCommand(rest, out, err);
    case 'replay':
      return replayCommand(rest, out);
    case 'itf':
      return itfCommand(rest, out);
    case 'help':
    case '--help':
    case '-h':
      out(TESTS_HELP);
      return EXIT.ok;
    case undefined:
      throw new UsageError(`tests: missing subcommand; valid: ${SUBCOMMANDS.join(', ')}`);
    default:
      throw new UsageError(`tests: unknown subcommand '${sub}'; valid: ${SUBCOMMANDS.join(', ')}`);
  }
}

function generateCommand(argv: readonly string[], out: (s: string) => void, err: (s: string) => void): number {
  const { values } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: {
      system: { type: 'string' },
      devices: { type: 'string' },
      ack: { type: 'string' },
      criterion: { type: 'string' },
      target: { type: 'string' },
      seed: { type: 'string' },
      length: { type: 'string' },
      walks: { type: 'string' },
      out: { type: 'string' },
      compare: { type: 'boolean', default: false },
      'max-states': { type: 'string' },
      features: { type: 'string' },
      'precopy-info-v2': { type: 'boolean', default: false },
      profile: { type: 'string' },
      faults: { type: 'string' },
      'max-bytes': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    out(TESTS_HELP);
    return EXIT.ok;
  }
  const system = values.system;
  if (system === undefined || system === '') throw new UsageError(`missing --system; expected ${PRESET_IDS.join(', ')}`);
  if (!(PRESET_IDS as readonly string[]).includes(system)) throw new UsageError(`bad --system '${system}'; valid: ${PRESET_IDS.join(', ')}`);
  let preset: PresetRef;
  const deviceOptions = [values.features, values.profile, values.faults, values['max-bytes']].some((v) => v !== undefined) || values['precopy-info-v2'];
  if (system === 'device') {
    if (values.devices !== undefined || values.ack !== undefined) throw new UsageError('--devices and --ack apply to --system migration');
    const profile = values.profile ?? 'generic';
    if (!(PROFILE_IDS as readonly string[]).includes(profile)) throw new UsageError(`bad --profile '${profile}'; valid: ${PROFILE_IDS.join(', ')}`);
    const faults = values.faults ?? 'on';
    if (faults !== 'on' && faults !== 'off') throw new UsageError(`bad --faults '${faults}'; valid: on, off`);
    if (faults === 'on' && values.faults !== undefined && profile === 'mtty') throw new UsageError('--faults on needs --profile generic (a real driver fails only for real)');
    preset = devicePreset({
      features: values.features === undefined ? DEVICE_FEATURES : parseFeatures(values.features),
      precopyInfoV2: values['precopy-info-v2'],
      profile: profile as ProfileId,
      faults: faults === 'on' && profile === 'generic',
      maxBytes: parseCount(values['max-bytes'], '--max-bytes', 1, 1, 4),
    });
  } else {
    if (deviceOptions) throw new UsageError('--features, --precopy-info-v2, --profile, --faults and --max-bytes apply to --system device');
    const ack = (values.ack ?? 'legacy') as AckMode;
    if (!ACK_MODES.includes(ack)) throw new UsageError(`bad --ack '${values.ack}'; valid: ${ACK_MODES.join(', ')}`);
    preset = { id: 'migration', devices: parseCount(values.devices, '--devices', 0, 0, 2), ack };
  }
  const criterion = (values.criterion ?? 'transitions') as Criterion;
  if (!(CRITERIA as readonly string[]).includes(criterion)) throw new UsageError(`bad --criterion '${values.criterion}'; valid: ${CRITERIA.join(', ')}`);
  if (criterion === 'target' && (values.target === undefined || values.target === '')) throw new UsageError('--criterion target needs --target STATE');
  if (criterion !== 'target' && values.target !== undefined) throw new UsageError('--target needs --criterion target');
  if (criterion !== 'random' && (values.seed ?? values.length ?? values.walks) !== undefined) {
    throw new UsageError('--seed, --length and --walks need --criterion random');
  }
  if (values.compare && system !== 'device') throw new UsageError('--compare needs --system device (xstate/graph takes a single machine)');
  const maxStates = parseCount(values['max-states'], '--max-states', 2_000_000, 1);
  checkOutputPath(values.out, '--out');
  const seed = parseCount(values.seed, '--seed', 1, 0, 0xffffffff);
  const length = parseCount(values.length, '--length', 20, 1, 100_000);
  const walks = parseCount(values.walks, '--walks', 10, 1, 100_000);

  let suite: TestSuite;
  try {
    suite = generateSuite(presetSystem(preset), {
      criterion,
      preset,
      maxStates,
      ...(criterion === 'target' ? { target: values.target! } : {}),
      ...(criterion === 'random' ? { seed, length, walks } : {}),
    });
  } catch (e) {
    if (e instanceof TargetError) throw new UsageError(e.message);
    if (e instanceof GraphLimitError) {
      err(`migration-statecharts: ${e.message}`);
      return EXIT.limit;
    }
    throw e;
  }
  const text = serializeSuite(suite);
  if (values.out) {
    writeWhole(values.out, text, '--out');
    out(summary(suite));
    out(`wrote ${values.out}`);
  } else {
    out(text.trimEnd());
  }
  if (values.compare) {
    const x = xstateShortestPathsTotal(vfioDeviceMachine, eventsAsXstateGraphSeesThem(vfioDeviceMachine, DEVICE_EVENTS), { features: DEVICE_FEATURES });
    (values.out ? out : err)(`xstate/graph getShortestPaths(): ${x.paths} paths, ${x.steps} steps (this suite: ${suite.stats.cases} cases, ${suite.stats.steps} steps)`);
  }
  if (suite.criterion === 'target' && suite.coverage.reachable === 0) {
    err(`migration-statecharts: target ${suite.target} is unreachable in ${suite.system}`);
    return EXIT.violated;
  }
  return EXIT.ok;
}

/** What a generated suite is, in a few lines. */
export function summary(s: TestSuite): string {
  const c = s.coverage;
  const bound = s.stats.lowerBound === null ? '' : `, lower bound ${s.stats.lowerBound}`;
  const lines = [
    `${s.system}, criterion ${s.criterion}${s.target ? ` ${s.target}` : ''}${s.seed !== null ? `, seed ${s.seed}` : ''}: ` +
      `${s.stats.cases} cases, ${s.stats.steps} steps (${s.stats.construction}${bound})`,
    `coverage: ${c.covered} of ${c.reachable} reachable ${c.items} covered` + (c.total !== null ? `, ${c.total} defined` : ''),
  ];
  if (c.unreachable.length > 0) lines.push(`never reached by the exploration (${c.unreachable.length}):`, ...listed(c.unreachable));
  if (c.uncovered.length > 0) lines.push(`reachable but not covered (${c.uncovered.length}):`, ...listed(c.uncovered));
  return lines.join('\n');
}

/** At most 40 items, indented; the rest counted (the fixture has them all). */
function listed(items: readonly string[]): string[] {
  const shown = items.slice(0, 40).map((u) => `  ${u}`);
  return items.length > 40 ? [...shown, `  … and ${items.length - 40} more (see the fixture's coverage)`] : shown;
}

/** `tests itf FILE --out-dir DIR`: every case as an ITF trace file. */
function itfCommand(argv: readonly string[], out: (s: string) => void): number {
  const { values, positionals } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: { 'out-dir': { type: 'string' }, help: { type: 'boolean', default: false } },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    out(TESTS_HELP);
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new UsageError(`tests itf: one FILE expected (a fixture written by tests generate), got ${positionals.length}`);
  const dir = values['out-dir'];
  if (dir === undefined || dir === '') throw new UsageError('tests itf: missing --out-dir DIR');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`tests itf: --out-dir ${dir} is not an existing directory`);
  const file = positionals[0]!;
  let suite: TestSuite;
  try {
    suite = parseSuite(readInputFile(file));
  } catch (e) {
    if (e instanceof FixtureError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
  const width = String(suite.cases.length).length;
  const files = suite.cases.map((c, i) => ({ path: join(dir, `${String(i + 1).padStart(Math.max(3, width), '0')}.itf.json`), text: JSON.stringify(caseToItf(suite, c), null, 2) + '\n' }));
  const taken = files.find((f) => existsSync(f.path));
  if (taken) throw new UsageError(`tests itf: ${taken.path} exists already; nothing written`);
  for (const f of files) writeWhole(f.path, f.text, '--out-dir');
  out(`wrote ${files.length} ITF trace${files.length === 1 ? '' : 's'} to ${dir}`);
  return EXIT.ok;
}

function replayCommand(argv: readonly string[], out: (s: string) => void): number {
  const { values, positionals } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: { junit: { type: 'string' }, help: { type: 'boolean', default: false } },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    out(TESTS_HELP);
    return EXIT.ok;
  }
  if (positionals.length === 0) throw new UsageError('tests replay: missing FILE; expected a fixture written by tests generate');
  if (positionals.length > 1) throw new UsageError(`tests replay: one FILE expected, got ${positionals.length}: ${positionals.join(' ')}`);
  const file = positionals[0]!;
  checkOutputPath(values.junit, '--junit');
  const text = readInputFile(file);
  let suite: TestSuite;
  try {
    suite = parseSuite(text);
  } catch (e) {
    if (e instanceof FixtureError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
  if (suite.preset === null) throw new UsageError(`${file}: the fixture names no preset system; replay it with replaySuite() and its SystemSpec`);
  const spec = presetSystem(suite.preset);
  if (spec.name !== suite.system) throw new UsageError(`${file}: system is "${suite.system}" but its preset builds "${spec.name ?? 'system'}"`);
  let report;
  try {
    report = replaySuite(suite, spec);
  } catch (e) {
    if (e instanceof ReplayError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
  out(formatRun(report));
  if (values.junit) writeWhole(values.junit, toJUnitXml(report), '--junit');
  return report.failed + report.errors > 0 ? EXIT.violated : EXIT.ok;
}
