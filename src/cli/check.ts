/**
 * `migration-statecharts check`: explore the composed migration system (src/systems/migration.ts) and
 * report every property, with a counterexample for each violated one, and the coverage of each machine.
 */
import { parseArgs } from 'node:util';
import { type AckMode, MAX_MULTIFD_CHANNELS } from '../../machines/migrationMessages.js';
import type { FeatureSet } from '../../machines/vfioArcs.js';
import { type QemuRelease, type ReinitDesign, QEMU_RELEASES, switchoverAckMode } from '../../machines/qemuSource.js';
import { type ExploreResult, type PropertyResult, type SystemSpec, explore, formatReport, formatTrace, verdictMark } from '../explorer/index.js';
import { DESIGNS, type DesignCheck, checkDesign } from '../systems/reinit.js';
import { type MigrationOptions, UNREACHED_BECAUSE, migrationSystem } from '../systems/migration.js';
import { VIRTIO_NET_DESIGNS, type VirtioNetDesign } from '../../machines/virtioNetMessages.js';
import type { SectionsRegistered } from '../../machines/virtioNetDestination.js';
import type { IterativeSwitch } from '../../machines/virtioNetSource.js';
import { type VirtioNetOptions, checkVirtioNet, formatVirtioNetCheck, virtioNetHolds, virtioNetReport } from '../systems/virtioNet.js';
import { joinNegativeNumbers, parseCount, parseFeatures, writeWhole } from './args.js';
import { traceToItf } from '../export/itf.js';
import { EXIT, UsageError } from './errors.js';
import { RUN_HELP, RUN_OPTIONS, finish, parseBounds } from './output.js';

export const CHECK_HELP = `usage: migration-statecharts check [--devices N] [--features SET[/SET…]] [--ack legacy|per-device|off|on]
                                 [--qemu 10.0|11.0|11.1] [--machine-type TYPE] [--device-faults K]
                                 [--one-side source|destination] [--pause-before-switchover] [--symmetry]
                                 [--design legacy|reusable-ack|recheck-resume [--reinit-budget K] [--reinits N]]
                                 [--multifd K [--buffers B] [--max-queued N] [--load-config-after-iter]
                                  [--multifd-transfer auto|on|off[/auto|on|off]] [--no-switchover-start] [--malicious-packets N]]
                                 [--no-cancel] [--no-faults] [--itf FILE] [--max-states N] [--memory-mb N] [--json] [--no-timings] [--out FILE]
       migration-statecharts check --virtio-net early-mig|iterative|legacy [--enabled-on both|source|destination]
                                 [--machine-types SRC/DST] [--no-vhost] [--guest-changes N] [--devices N [--features …]]
                                 [--vmsd-registration when-enabled|always|early-always] [--iterative-switch capability|property] …
  Explore a migration of N VFIO devices (default 2) from a source QEMU to a destination QEMU and check
  every property. SET is a comma list of p2p, pre-copy (default p2p,pre-copy); give one per device,
  separated by '/', for a mixed set. --one-side enables switchover-ack on that host only. --symmetry
  treats devices alike on both hosts as interchangeable, which they are only up to the order QEMU handles
  them in: a faster bug finder whose violations replay as real runs, but no proof (nothing is reported as
  holding; exit 3 when nothing is violated). --qemu names the release on both hosts (its
  VFIO_MIGRATION events; default 10.0, or 11.1 with the per-device ack); --ack on takes the ack mode that
  release uses with --machine-type (e.g. pc-q35-11.0: machine types up to 11.0 keep the one-shot ack).
  --device-faults K lets the environment fail K device state changes on each host (driver failures).
  --multifd K turns multifd on with K channels (1..4) and the devices' multifd device-state transfer
  (x-migration-multifd-transfer, default auto; SRC/DST for different settings): the final state goes in
  B packets per device (--buffers, default 1) over any channel in any order; --max-queued N is the
  destination's x-migration-max-queued-buffers-size in those units, --load-config-after-iter its
  x-migration-load-config-after-iter (both QEMU 10.1); --no-switchover-start is a machine type up to 9.2;
  --malicious-packets N lets a malicious source send N packets the load never drains (docs/multifd.md).
  With --multifd, --symmetry reduces by the interchangeable channels instead (not the devices), exactly.
  --itf FILE writes the first counterexample as an ITF trace (the Informal Trace Format of Apalache/Quint).
  --design adds guest device reconfiguration (REINIT) and checks S1 (no stale switchover), S2 (kernel-
  legal requests), L1 (the migration ends, with --reinits N reconfigurations, default 1) and L2 (no
  livelock under a REINIT storm); the design fixes the ack mode. --reinit-budget K fails the migration
  once QEMU has seen more than K REINIT reports. The storm run explores only what L2 needs; six devices
  need --memory-mb 16384 (about 8 GB, four minutes).
  --virtio-net checks a virtio-net device migrating early (the RFC designs; docs/virtio-net.md), beside N VFIO
  devices (default 0): no stale device state or vhost binding, clean failures, the migration ends (also under a
  storm of guest changes), the fast path reachable. --enabled-on puts early-mig (or virtio-iterative) on one host
  only; --machine-types resolves early-mig from each host's machine type (e.g. 10.2/10.1) instead.
${RUN_HELP}
  Exit 0: every property holds; 1: one is violated; 2: bad arguments; 3: a bound stopped the search, or
  --symmetry left the properties undecided.`;

const ACKS: readonly AckMode[] = ['legacy', 'per-device', 'off'];

export function checkCommand(argv: readonly string[], out: (s: string) => void, err: (s: string) => void): number {
  const { values } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: {
      ...SYSTEM_OPTIONS,
      symmetry: { type: 'boolean', default: false },
      design: { type: 'string' },
      'reinit-budget': { type: 'string' },
      reinits: { type: 'string' },
      itf: { type: 'string' },
      'virtio-net': { type: 'string' },
      'enabled-on': { type: 'string' },
      'machine-types': { type: 'string' },
      'no-vhost': { type: 'boolean', default: false },
      'guest-changes': { type: 'string' },
      'vmsd-registration': { type: 'string' },
      'iterative-switch': { type: 'string' },
      ...RUN_OPTIONS,
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    out(CHECK_HELP);
    return EXIT.ok;
  }
  if (values.itf !== undefined && (values['virtio-net'] !== undefined || values.design !== undefined)) throw new UsageError('--itf applies to the plain check (not --virtio-net or --design)');
  if (values['virtio-net'] !== undefined) return virtioNetCheck(values, out, err);
  for (const o of VIRTIO_NET_ONLY) if (values[o] !== undefined && values[o] !== false) throw new UsageError(`--${o} needs --virtio-net`);
  const { devices, ack, release, deviceFaults, oneSide } = parseSystemFlags(values);
  const bounds = parseBounds(values);
  if (values.design !== undefined || values['reinit-budget'] !== undefined || values.reinits !== undefined) {
    const design = values.design as ReinitDesign | undefined;
    if (design === undefined) throw new UsageError('--reinit-budget and --reinits need --design');
    if (values.multifd !== undefined) throw new UsageError('--multifd does not apply to --design checks');
    if (!DESIGNS.includes(design)) throw new UsageError(`bad --design '${values.design}'; valid: ${DESIGNS.join(', ')}`);
    if (values.ack !== undefined || oneSide !== undefined) throw new UsageError('--design fixes the ack mode; drop --ack and --one-side');
    if (values.qemu !== undefined || values['device-faults'] !== undefined) throw new UsageError('--qemu and --device-faults do not apply to --design checks');
    if (values.symmetry) throw new UsageError('--symmetry does not apply to --design checks (device symmetry is approximate; the design check is a proof)');
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
  const spec = plainMigrationSpec(values, { devices, ack, release, deviceFaults, oneSide });
  const r = explore(spec, bounds);
  if (values.itf !== undefined) writeItf(r, values.itf, err);
  // under an approximate reduction only a violation (replayed as a real run) decides anything
  const undecided = r.approximation !== null && !r.properties.some((p) => p.verdict === 'violated') ? `--symmetry is approximate: ${r.approximation}; no property is concluded to hold (drop --symmetry for a proof)` : null;
  return finish({ report: checkReport(r), text: formatCheck(r), limit: r.limit, partial: r, holds: r.properties.every((p) => p.holds), undecided }, values, out, err);
}

/** The plain migration system's flags (check's, and export --promela's), parsed and cross-checked. */
export interface SystemFlags {
  readonly devices: FeatureSet[];
  readonly ack: AckMode;
  readonly release: QemuRelease | undefined;
  readonly deviceFaults: number;
  readonly oneSide: 'source' | 'destination' | undefined;
}

/** parseArgs options of the plain migration system (check's flags without --design, --virtio-net and the run's). */
export const SYSTEM_OPTIONS = {
  devices: { type: 'string' },
  features: { type: 'string' },
  ack: { type: 'string' },
  qemu: { type: 'string' },
  'machine-type': { type: 'string' },
  'device-faults': { type: 'string' },
  'one-side': { type: 'string' },
  'pause-before-switchover': { type: 'boolean', default: false },
  'no-cancel': { type: 'boolean', default: false },
  'no-faults': { type: 'boolean', default: false },
  multifd: { type: 'string' },
  buffers: { type: 'string' },
  'max-queued': { type: 'string' },
  'load-config-after-iter': { type: 'boolean', default: false },
  'multifd-transfer': { type: 'string' },
  'no-switchover-start': { type: 'boolean', default: false },
  'malicious-packets': { type: 'string' },
} as const;

export function parseSystemFlags(values: Record<string, string | boolean | undefined>): SystemFlags {
  const sets = ((values.features as string | undefined) ?? 'p2p,pre-copy').split('/').map((f) => parseFeatures(f));
  const n = parseCount(values.devices as string | undefined, '--devices', sets.length > 1 ? sets.length : 2, 1, 8);
  if (sets.length > 1 && sets.length !== n) throw new UsageError(`--features lists ${sets.length} devices but --devices is ${n}`);
  const devices: FeatureSet[] = sets.length > 1 ? sets : Array.from({ length: n }, () => sets[0]!);
  const release = values.qemu as QemuRelease | undefined;
  if (release !== undefined && !QEMU_RELEASES.includes(release)) throw new UsageError(`bad --qemu '${values.qemu}'; valid: ${QEMU_RELEASES.join(', ')}`);
  const machineType = values['machine-type'];
  if (machineType !== undefined && values.ack !== 'on') throw new UsageError('--machine-type chooses the ack mode: use it with --ack on');
  let ack: AckMode;
  if (values.ack === 'on') {
    try {
      ack = switchoverAckMode(release ?? '10.0', (machineType as string | undefined) ?? (release ?? '10.0'));
    } catch (e) {
      throw new UsageError(`bad --machine-type: ${(e as Error).message}`);
    }
  } else {
    ack = (values.ack ?? 'legacy') as AckMode;
    if (!ACKS.includes(ack)) throw new UsageError(`bad --ack '${values.ack}'; valid: ${ACKS.join(', ')}, on`);
  }
  if (ack === 'per-device' && release !== undefined && release !== '11.1') throw new UsageError(`the per-device ack needs QEMU 11.1 (--qemu ${release} has only the one-shot ack)`);
  const deviceFaults = parseCount(values['device-faults'] as string | undefined, '--device-faults', 0, 0, 4);
  const oneSide = values['one-side'];
  if (oneSide !== undefined && oneSide !== 'source' && oneSide !== 'destination') {
    throw new UsageError(`bad --one-side '${oneSide}'; valid: source, destination`);
  }
  if (oneSide && ack === 'off') throw new UsageError('--one-side needs --ack legacy or per-device');
  return { devices, ack, release, deviceFaults, oneSide: oneSide as SystemFlags['oneSide'] };
}

/** The plain migration system of the parsed flags (--symmetry included when given). */
export function plainMigrationSpec(values: Record<string, string | boolean | undefined>, f: SystemFlags): SystemSpec {
  const { devices, ack, release, deviceFaults, oneSide } = f;
  return migrationSystem({
    devices,
    ack,
    ...(oneSide ? { oneSide } : {}),
    pauseBeforeSwitchover: values['pause-before-switchover'] === true,
    symmetry: values.symmetry === true,
    cancel: !values['no-cancel'],
    faults: !values['no-faults'],
    ...(release ? { release } : {}),
    ...(deviceFaults > 0 ? { deviceFaults } : {}),
    ...multifdOptions(values),
  });
}

const TRANSFERS = ['auto', 'on', 'off'] as const;

/** --multifd and its companions, or nothing (each companion alone is a usage error). */
function multifdOptions(values: Record<string, string | boolean | undefined>): Pick<MigrationOptions, 'multifd' | 'finalBytes'> {
  const companions = ['buffers', 'max-queued', 'load-config-after-iter', 'multifd-transfer', 'no-switchover-start', 'malicious-packets'] as const;
  if (values.multifd === undefined) {
    for (const c of companions) if (values[c] !== undefined && values[c] !== false) throw new UsageError(`--${c} needs --multifd K`);
    return {};
  }
  const channels = parseCount(values.multifd as string, '--multifd', 1, 1, MAX_MULTIFD_CHANNELS);
  const buffers = parseCount(values.buffers as string | undefined, '--buffers', 1, 1, 3);
  const cap = values['max-queued'] === undefined ? null : parseCount(values['max-queued'] as string, '--max-queued', 0, 0, 16);
  const malicious = parseCount(values['malicious-packets'] as string | undefined, '--malicious-packets', 0, 0, 8);
  const [srcT, dstT, ...more] = ((values['multifd-transfer'] as string | undefined) ?? 'auto').split('/');
  for (const t of [srcT, dstT]) {
    if (t !== undefined && !(TRANSFERS as readonly string[]).includes(t)) throw new UsageError(`bad --multifd-transfer '${values['multifd-transfer']}'; valid: auto, on, off, or SRC/DST`);
  }
  if (more.length > 0) throw new UsageError(`bad --multifd-transfer '${values['multifd-transfer']}': at most SRC/DST`);
  return {
    finalBytes: buffers,
    multifd: {
      channels,
      transfer: srcT as (typeof TRANSFERS)[number],
      ...(dstT !== undefined ? { destinationTransfer: dstT as (typeof TRANSFERS)[number] } : {}),
      ...(values['no-switchover-start'] ? { sendSwitchoverStart: false } : {}),
      maxQueued: cap,
      loadConfigAfterIter: values['load-config-after-iter'] === true,
      ...(malicious > 0 ? { maliciousPackets: malicious } : {}),
    },
  };
}

/** --itf FILE: the first counterexample as an ITF trace (nothing is written when every property holds). */
function writeItf(r: ExploreResult, file: string, err: (s: string) => void): void {
  if (file === '') throw new UsageError('--itf needs a file name');
  const p = r.properties.find((x) => !x.holds && x.counterexample);
  if (!p?.counterexample) {
    err('migration-statecharts: no counterexample to write to --itf: every property holds');
    return;
  }
  const itf = traceToItf(p.counterexample, `${r.system}: counterexample to ${p.name} (${p.description})`);
  writeWhole(file, JSON.stringify(itf, null, 2) + '\n', '--itf');
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
      `REINIT storm (for L2 only: ended migrations not followed, property-only counters forgotten): ${d.storm.states.toLocaleString('en-US')} states, ${d.storm.transitions.toLocaleString('en-US')} transitions`,
  ];
  for (const p of d.properties) {
    lines.push(`  ${verdictMark(p)} ${p.claim ? `${p.claim} ` : ''}${p.name}${p.run === 'storm' ? ' (storm)' : ''}`);
    if (p.counterexample) lines.push(formatTrace(p.counterexample).replace(/^/gm, '    '));
  }
  return lines.join('\n');
}

/** A property's verdict in a report: its counterexample as an array of steps (and where a lasso's cycle starts). */
function propertyJson(p: PropertyResult) {
  return {
    verdict: p.verdict,
    holds: p.holds,
    description: p.description ?? null,
    counterexample: p.counterexample ? p.counterexample.steps : null,
    ...(p.counterexample?.cycleStart !== undefined ? { cycleStart: p.counterexample.cycleStart } : {}),
    ...(p.broken ? { broken: p.broken } : {}),
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
    ...(r.approximation ? { approximation: r.approximation } : {}),
  };
}

function formatCheck(r: ExploreResult): string {
  const lines = [formatReport(r)];
  for (const [name, c] of Object.entries(r.coverage)) {
    for (const s of c.states.missed) lines.push(`  ${name}: never reached ${s}${UNREACHED_BECAUSE[s] ? ` — ${UNREACHED_BECAUSE[s]}` : ''}`);
  }
  return lines.join('\n');
}

const VIRTIO_NET_ONLY = ['enabled-on', 'machine-types', 'no-vhost', 'guest-changes', 'vmsd-registration', 'iterative-switch'] as const;

/** `check --virtio-net DESIGN …`: the virtio-net early-migration check (src/systems/virtioNet.ts). */
function virtioNetCheck(values: Record<string, string | boolean | undefined>, out: (s: string) => void, err: (s: string) => void): number {
  const str = (k: string) => values[k] as string | undefined;
  const design = str('virtio-net') as VirtioNetDesign;
  if (!VIRTIO_NET_DESIGNS.includes(design)) throw new UsageError(`bad --virtio-net '${design}'; valid: ${VIRTIO_NET_DESIGNS.join(', ')}`);
  for (const o of ['design', 'reinit-budget', 'reinits', 'one-side'] as const) {
    if (str(o) !== undefined) throw new UsageError(`--virtio-net cannot be combined with --${o}`);
  }
  for (const o of ['symmetry', 'pause-before-switchover'] as const) if (values[o]) throw new UsageError(`--virtio-net cannot be combined with --${o}`);
  const enabledOn = str('enabled-on');
  if (enabledOn !== undefined && !['both', 'source', 'destination'].includes(enabledOn)) {
    throw new UsageError(`bad --enabled-on '${enabledOn}'; valid: both, source, destination`);
  }
  if (enabledOn !== undefined && design === 'legacy') throw new UsageError('--enabled-on needs --virtio-net early-mig or iterative');
  const machines = str('machine-types');
  if (machines !== undefined && design !== 'early-mig') throw new UsageError('--machine-types needs --virtio-net early-mig (the only design with a machine-type default)');
  if (machines !== undefined && enabledOn !== undefined) throw new UsageError('--enabled-on and --machine-types both say where early-mig is on; give one');
  const m = machines === undefined ? null : /^\s*([\w.-]*\d+\.\d+)\s*\/\s*([\w.-]*\d+\.\d+)\s*$/.exec(machines);
  if (machines !== undefined && !m) throw new UsageError(`bad --machine-types '${machines}'; expected SOURCE/DESTINATION machine versions, e.g. 10.2/10.1`);
  const registration = str('vmsd-registration') as SectionsRegistered | undefined;
  if (registration !== undefined && design !== 'early-mig') throw new UsageError('--vmsd-registration needs --virtio-net early-mig');
  if (registration !== undefined && !['when-enabled', 'always', 'early-always'].includes(registration)) {
    throw new UsageError(`bad --vmsd-registration '${registration}'; valid: when-enabled, always, early-always`);
  }
  const iterativeSwitch = str('iterative-switch') as IterativeSwitch | undefined;
  if (iterativeSwitch !== undefined && design !== 'iterative') throw new UsageError('--iterative-switch needs --virtio-net iterative');
  if (iterativeSwitch !== undefined && !['capability', 'property'].includes(iterativeSwitch)) {
    throw new UsageError(`bad --iterative-switch '${iterativeSwitch}'; valid: capability, property`);
  }
  if (values['no-vhost'] && design !== 'early-mig') throw new UsageError('--no-vhost needs --virtio-net early-mig (only early-mig starts vhost early)');
  const sets = str('features') === undefined ? null : str('features')!.split('/').map((f) => parseFeatures(f));
  const n = parseCount(str('devices'), '--devices', sets && sets.length > 1 ? sets.length : sets ? 1 : 0, 0, 2);
  if (sets && sets.length > 1 && sets.length !== n) throw new UsageError(`--features lists ${sets.length} devices but --devices is ${n}`);
  const vfioDevices: FeatureSet[] = sets && sets.length > 1 ? sets : Array.from({ length: n }, () => sets?.[0] ?? 'STOP_COPY|P2P|PRE_COPY');
  const ack = str('ack') as AckMode | undefined;
  if (ack !== undefined && !ACKS.includes(ack)) throw new UsageError(`bad --ack '${ack}'; valid: ${ACKS.join(', ')}`);
  const o: VirtioNetOptions = {
    design,
    ...(enabledOn === 'source' ? { source: { enabled: true }, destination: { enabled: false } } : {}),
    ...(enabledOn === 'destination' ? { source: { enabled: false }, destination: { enabled: true } } : {}),
    ...(m ? { source: { machine: m[1]! }, destination: { machine: m[2]! } } : {}),
    ...(registration ? { sectionsRegistered: registration } : {}),
    ...(iterativeSwitch ? { iterativeSwitch } : {}),
    ...(values['no-vhost'] ? { vhost: false } : {}),
    guestChanges: parseCount(str('guest-changes'), '--guest-changes', 2, 0, 4),
    vfioDevices,
    ...(ack ? { ack } : {}),
    cancel: !values['no-cancel'],
    faults: !values['no-faults'],
  };
  const c = checkVirtioNet(o, parseBounds(values as { 'max-states'?: string; 'memory-mb'?: string }));
  const limit = c.bounded.limit ?? c.storm.limit;
  const partial = c.bounded.limit ? c.bounded : c.storm;
  return finish({ report: virtioNetReport(c), text: formatVirtioNetCheck(c), limit, partial, holds: virtioNetHolds(c) }, values as { json?: boolean; out?: string }, out, err);
}
