/**
 * `migration-statecharts check`: explore the composed migration system (src/systems/migration.ts) and
 * report every property, with a counterexample for each violated one, and the coverage of each machine.
 */
import { parseArgs } from 'node:util';
import type { AckMode } from '../../machines/migrationMessages.js';
import type { FeatureSet } from '../../machines/vfioArcs.js';
import type { ReinitDesign } from '../../machines/qemuSource.js';
import { type ExploreResult, type PropertyResult, explore, formatReport, formatTrace } from '../explorer/index.js';
import { DESIGNS, type DesignCheck, checkDesign } from '../systems/reinit.js';
import { UNREACHED_BECAUSE, migrationSystem } from '../systems/migration.js';
import { parseCount, parseFeatures } from './args.js';
import { EXIT, UsageError } from './errors.js';
import { RUN_OPTIONS, finish, parseBounds } from './output.js';

export const CHECK_HELP = `usage: migration-statecharts check [--devices N] [--features SET[/SET…]] [--ack legacy|per-device|off]
                                 [--one-side source|destination] [--pause-before-switchover] [--symmetry]
                                 [--design legacy|reusable-ack|recheck-resume [--reinit-budget K] [--reinits N]]
                                 [--no-cancel] [--no-faults] [--max-states N] [--memory-mb N] [--json] [--out FILE]
  Explore a migration of N VFIO devices (default 2) from a source QEMU to a destination QEMU and check
  every property. SET is a comma list of p2p, pre-copy (default p2p,pre-copy); give one per device,
  separated by '/', for a mixed set. --one-side enables switchover-ack on that host only. --symmetry
  reduces by interchangeable devices (alike on both hosts).
  --design adds guest device reconfiguration (REINIT) and checks S1 (no stale switchover), S2 (kernel-
  legal requests), L1 (the migration ends, with --reinits N reconfigurations, default 1) and L2 (no
  livelock under a REINIT storm); the design fixes the ack mode. --reinit-budget K fails the migration
  once QEMU has seen more than K REINIT reports.
  Exit 0: every property holds; 1: one is violated; 2: bad arguments; 3: a bound stopped the search.`;

const ACKS: readonly AckMode[] = ['legacy', 'per-device', 'off'];

export function checkCommand(argv: readonly string[], out: (s: string) => void, err: (s: string) => void): number {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      devices: { type: 'string' },
      features: { type: 'string' },
      ack: { type: 'string' },
      'one-side': { type: 'string' },
      'pause-before-switchover': { type: 'boolean', default: false },
      symmetry: { type: 'boolean', default: false },
      design: { type: 'string' },
      'reinit-budget': { type: 'string' },
      reinits: { type: 'string' },
      'no-cancel': { type: 'boolean', default: false },
      'no-faults': { type: 'boolean', default: false },
      ...RUN_OPTIONS,
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    out(CHECK_HELP);
    return EXIT.ok;
  }
  const sets = (values.features ?? 'p2p,pre-copy').split('/').map((f) => parseFeatures(f));
  const n = parseCount(values.devices, '--devices', sets.length > 1 ? sets.length : 2, 1, 6);
  if (sets.length > 1 && sets.length !== n) throw new UsageError(`--features lists ${sets.length} devices but --devices is ${n}`);
  const devices: FeatureSet[] = sets.length > 1 ? sets : Array.from({ length: n }, () => sets[0]!);
  const ack = (values.ack ?? 'legacy') as AckMode;
  if (!ACKS.includes(ack)) throw new UsageError(`bad --ack '${values.ack}'; valid: ${ACKS.join(', ')}`);
  const oneSide = values['one-side'];
  if (oneSide !== undefined && oneSide !== 'source' && oneSide !== 'destination') {
    throw new UsageError(`bad --one-side '${oneSide}'; valid: source, destination`);
  }
  if (oneSide && ack === 'off') throw new UsageError('--one-side needs --ack legacy or per-device');
  const bounds = parseBounds(values);
  if (values.design !== undefined || values['reinit-budget'] !== undefined || values.reinits !== undefined) {
    const design = values.design as ReinitDesign | undefined;
    if (design === undefined) throw new UsageError('--reinit-budget and --reinits need --design');
    if (!DESIGNS.includes(design)) throw new UsageError(`bad --design '${values.design}'; valid: ${DESIGNS.join(', ')}`);
    if (values.ack !== undefined || oneSide !== undefined) throw new UsageError('--design fixes the ack mode; drop --ack and --one-side');
    const budget = values['reinit-budget'] === undefined ? undefined : parseCount(values['reinit-budget'], '--reinit-budget', 0, 0, 100);
    const reinits = parseCount(values.reinits, '--reinits', 1, 1, 4);
    const d = checkDesign(
      { devices, design, ...(budget !== undefined ? { reinitBudget: budget } : {}), reinits, cancel: !values['no-cancel'], faults: !values['no-faults'] },
      bounds,
    );
    const limit = d.finite.limit ?? d.storm.limit;
    const partial = d.finite.limit ? d.finite : d.storm;
    return finish({ report: designReport(d), text: formatDesign(d), limit, partial, holds: d.properties.every((p) => p.holds) }, values, out, err);
  }
  const spec = migrationSystem({
    devices,
    ack,
    ...(oneSide ? { oneSide } : {}),
    pauseBeforeSwitchover: values['pause-before-switchover'],
    symmetry: values.symmetry,
    cancel: !values['no-cancel'],
    faults: !values['no-faults'],
  });
  const r = explore(spec, bounds);
  return finish({ report: checkReport(r), text: formatCheck(r), limit: r.limit, partial: r, holds: r.properties.every((p) => p.holds) }, values, out, err);
}

/** The machine-readable report of a design check: both runs' sizes, every claim with its trace. */
export function designReport(d: DesignCheck) {
  return {
    design: d.design,
    devices: d.devices,
    reinitBudget: d.reinitBudget,
    states: d.finite.states,
    transitions: d.finite.transitions,
    storm: { states: d.storm.states, transitions: d.storm.transitions },
    properties: d.properties.map((p) => ({ name: p.name, claim: p.claim, run: p.run, ...propertyJson(p) })),
    deadlocks: d.finite.deadlocks,
    coverage: d.finite.coverage,
  };
}

function formatDesign(d: DesignCheck): string {
  const lines = [
    `design ${d.design}${d.reinitBudget !== null ? ` with a REINIT budget of ${d.reinitBudget}` : ''}, devices [${d.devices.join(', ')}]`,
    `  finite REINITs: ${d.finite.states.toLocaleString('en-US')} states, ${d.finite.transitions.toLocaleString('en-US')} transitions; ` +
      `REINIT storm: ${d.storm.states.toLocaleString('en-US')} states, ${d.storm.transitions.toLocaleString('en-US')} transitions`,
  ];
  for (const p of d.properties) {
    lines.push(`  ${p.holds ? 'holds   ' : 'VIOLATED'} ${p.claim ? `${p.claim} ` : ''}${p.name}${p.run === 'storm' ? ' (storm)' : ''}`);
    if (p.counterexample) lines.push(formatTrace(p.counterexample).replace(/^/gm, '    '));
  }
  return lines.join('\n');
}

/** A property's verdict in a report: its counterexample as an array of steps (and where a lasso's cycle starts). */
function propertyJson(p: PropertyResult) {
  return {
    holds: p.holds,
    description: p.description ?? null,
    counterexample: p.counterexample ? p.counterexample.steps : null,
    ...(p.counterexample?.cycleStart !== undefined ? { cycleStart: p.counterexample.cycleStart } : {}),
  };
}

/** The machine-readable report: counterexamples as arrays of steps. */
export function checkReport(r: ExploreResult) {
  return {
    system: r.system,
    states: r.states,
    transitions: r.transitions,
    seconds: r.seconds,
    properties: r.properties.map((p) => ({ name: p.name, kind: p.kind, ...propertyJson(p) })),
    deadlocks: r.deadlocks,
    coverage: r.coverage,
    limit: r.limit,
  };
}

function formatCheck(r: ExploreResult): string {
  const lines = [formatReport(r)];
  for (const [name, c] of Object.entries(r.coverage)) {
    for (const s of c.states.missed) lines.push(`  ${name}: never reached ${s}${UNREACHED_BECAUSE[s] ? ` — ${UNREACHED_BECAUSE[s]}` : ''}`);
  }
  return lines.join('\n');
}
