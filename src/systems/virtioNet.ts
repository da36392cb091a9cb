/**
 * virtio-net early migration, composed and checked: the QEMU source and destination of
 * src/systems/migration.ts (with zero or more VFIO devices), and a virtio-net device on each side sitting
 * on the main stream — the source's device adds its sections to what QEMU sends, the destination's takes
 * them out before QEMU's load sees the rest:
 *
 *   source ─main→ virtioNetSource ─wire→ virtioNetDestination ─load→ destination ─return→ source
 *
 * The environment adds the guest (it changes tracked field groups during precopy, a bounded number of
 * times or without bound — a storm), the migration thread's save_live_iterate pass, and, with vhost-net,
 * an early vhost failure on the destination. The return path is always on: without it QEMU learns of a
 * failed destination only when its writes fail, which the model does not include.
 *
 * `checkVirtioNet` explores a scenario twice: with a bounded guest (every safety claim, MigrationEnds, the
 * outcome witnesses) and under a storm without cancel or faults (MigrationEnds again, BoundedResends).
 *
 * @example
 *   import { checkVirtioNet } from './virtioNet.js';
 *   const c = checkVirtioNet({ design: 'early-mig', source: { enabled: true }, destination: { enabled: false } });
 *   c.verdict; // => 'clean failure at setup'
 */
import type { AnyStateMachine, EventObject } from 'xstate';
import type { AckMode } from '../../machines/migrationMessages.js';
import type { FeatureSet } from '../../machines/vfioArcs.js';
import { type SectionsRegistered, virtioNetDestinationMachine } from '../../machines/virtioNetDestination.js';
import { type VirtioNetDesign, type VirtioNetSide, GROUP_NAMES, resolveEnabled } from '../../machines/virtioNetMessages.js';
import { type IterativeSwitch, virtioNetSourceMachine } from '../../machines/virtioNetSource.js';
import type { VirtioNetVariant } from '../../machines/virtioNetVariants.js';
import { type ExploreOptions, type ExploreResult, type PropertyResult, type Trace, explore, formatTrace, verdictMark } from '../explorer/index.js';
import type { SystemSpec } from '../explorer/system.js';
import { DESTINATION, SOURCE } from '../properties/migration.js';
import { NET_DESTINATION, NET_SOURCE, OUTCOMES, type Outcome, VIRTIO_NET_INVARIANTS, isResend, isResendLoopStep, outcomeWitnesses } from '../properties/virtioNet.js';
import { migrationSystem } from './migration.js';

export interface VirtioNetOptions {
  readonly design: VirtioNetDesign;
  /** The source host: machine type and an explicit property (or capability) value. */
  readonly source?: VirtioNetSide;
  readonly destination?: VirtioNetSide;
  /** iterative: the RFC's validated capability (default) or a device property. */
  readonly iterativeSwitch?: IterativeSwitch;
  /** early-mig: when the destination registers the early and delta VMSDs (default 'when-enabled'). */
  readonly sectionsRegistered?: SectionsRegistered;
  /** The destination's backend is vhost-net (early-mig starts it early). Default: true for early-mig. */
  readonly vhost?: boolean;
  /** Let an early vhost start or quickstart fail (default true with vhost). */
  readonly vhostFaults?: boolean;
  /** How often the guest may change a tracked field group during precopy; 'unbounded' for a storm. Default 2. */
  readonly guestChanges?: number | 'unbounded';
  /** VFIO devices beside the virtio-net device (default none). */
  readonly vfioDevices?: readonly FeatureSet[];
  /** switchover-ack (default: legacy with VFIO devices, off without). */
  readonly ack?: AckMode;
  readonly cancel?: boolean;
  readonly faults?: boolean;
  /** Replace a virtio-net machine, e.g. a broken design made with `provide()`. */
  readonly sourceMachine?: AnyStateMachine;
  readonly destinationMachine?: AnyStateMachine;
}

const onOff = (b: boolean) => (b ? 'on' : 'off');

/** Where the design's feature is on, as resolved from machine types and explicit values. */
export function enablement(o: VirtioNetOptions): { source: boolean; destination: boolean } {
  return { source: resolveEnabled(o.design, o.source), destination: resolveEnabled(o.design, o.destination) };
}

export function virtioNetLabel(o: VirtioNetOptions): string {
  const e = enablement(o);
  const side = (name: string, s: VirtioNetSide | undefined, on: boolean) => `${name} ${onOff(on)}${s?.machine ? ` (machine ${s.machine})` : ''}`;
  const how =
    o.design === 'iterative' && o.iterativeSwitch === 'property'
      ? ' (device property)'
      : o.design === 'early-mig' && o.sectionsRegistered && o.sectionsRegistered !== 'when-enabled'
        ? ` (VMSDs registered ${o.sectionsRegistered})`
        : '';
  const feature = o.design === 'legacy' ? '' : `${how}, ${side('source', o.source, e.source)}, ${side('destination', o.destination, e.destination)}`;
  const vhost = o.design === 'early-mig' && (o.vhost ?? true) ? ', vhost-net' : '';
  const n = o.vfioDevices?.length ?? 0;
  const vfio = n > 0 ? `, ${n} VFIO device${n === 1 ? '' : 's'} [${o.vfioDevices!.join(', ')}]` : '';
  return `virtio-net ${o.design}${feature}${vhost}, guest changes ${o.guestChanges ?? 2}${vfio}`;
}

export function virtioNetSystem(o: VirtioNetOptions): SystemSpec {
  const vfio = o.vfioDevices ?? [];
  const n = vfio.length;
  const ack = o.ack ?? (n > 0 ? 'legacy' : 'off');
  const base = migrationSystem({ devices: vfio, ack, cancel: o.cancel ?? true, faults: o.faults ?? true });
  const e = enablement(o);
  const vhost = o.design === 'early-mig' && (o.vhost ?? true);
  const guestChanges = o.guestChanges ?? 2;
  const components = base.components.map((c) =>
    // the return path always on (the destination's failure must reach the source)
    c.name === SOURCE ? { ...c, input: { ...(c.input as object), returnPath: true } } : c,
  );
  const netEnv: EventObject[] = [
    ...GROUP_NAMES.map((group) => ({ type: 'GUEST_SETS_FIELD', group })),
    ...(o.design === 'iterative' ? [{ type: 'SAVE_LIVE_ITERATE' }] : []),
  ];
  return {
    ...base,
    name: virtioNetLabel(o),
    components: [
      ...components,
      {
        name: NET_SOURCE,
        machine: o.sourceMachine ?? virtioNetSourceMachine,
        input: { design: o.design, enabled: e.source, guestChanges, returnPath: true, iterativeSwitch: o.iterativeSwitch ?? 'capability' },
      },
      {
        name: NET_DESTINATION,
        machine: o.destinationMachine ?? virtioNetDestinationMachine,
        input: {
          design: o.design,
          enabled: e.destination,
          vhost,
          sectionsRegistered: o.sectionsRegistered ?? 'when-enabled',
          validatesCapability: (o.iterativeSwitch ?? 'capability') === 'capability',
        },
      },
    ],
    channels: [
      { name: 'main', from: SOURCE, to: NET_SOURCE, capacity: 2 * n + 4 },
      { name: 'wire', from: NET_SOURCE, to: NET_DESTINATION, capacity: 2 * n + 4 },
      { name: 'load', from: NET_DESTINATION, to: DESTINATION, capacity: 2 * n + 5 },
      { name: 'return', from: DESTINATION, to: SOURCE, capacity: n + 2 },
    ],
    environment: {
      ...base.environment,
      [NET_SOURCE]: netEnv,
      ...(vhost && (o.vhostFaults ?? true) ? { [NET_DESTINATION]: [{ type: 'VHOST_EARLY_FAILS' }] } : {}),
    },
    invariants: [...(base.invariants ?? []), ...VIRTIO_NET_INVARIANTS],
    ...(guestChanges === 'unbounded' ? { progress: (step) => !isResendLoopStep(step), fair: isResend } : {}),
  };
}

/** The sending component of each channel (for sequence diagrams). */
export const VIRTIO_NET_SENDERS: Readonly<Record<string, string>> = { main: SOURCE, wire: NET_SOURCE, load: NET_DESTINATION, return: DESTINATION };
export const VIRTIO_NET_PARTICIPANTS: readonly string[] = [SOURCE, NET_SOURCE, NET_DESTINATION, DESTINATION];

/** The issue's claims, each decided by one of the two runs. */
export const VIRTIO_NET_CLAIMS = [
  { name: 'NoStaleDeviceState', run: 'bounded' },
  { name: 'ProvisionalStateConfirmed', run: 'bounded' },
  { name: 'NoStaleVhostBind', run: 'bounded' },
  { name: 'EarlyVhostFailureNotFatal', run: 'bounded' },
  { name: 'VirtioNetFailureIsClean', run: 'bounded' },
  { name: 'MigrationEnds', run: 'bounded' },
  { name: 'MigrationEnds', run: 'storm' },
  { name: 'BoundedResends', run: 'storm' },
] as const;

export interface VirtioNetClaim extends PropertyResult {
  readonly run: 'bounded' | 'storm';
  /** One of the issue's claims (the rest are the migration system's own). */
  readonly claim: boolean;
}

/**
 * What a scenario does, in one phrase: the ways its runs end on the destination when nothing is
 * cancelled — the fast path, the full reload, a clean failure (and where) — joined by "or"; or
 * 'silently wrong device' when a run starts the guest with the wrong state; or 'never completes'.
 */
export type VirtioNetVerdict = string;

/** The outcomes a verdict is made of, in the order it names them. */
const ENDINGS: readonly Outcome[] = ['fast path', 'full reload', 'clean failure at setup', 'clean failure at stop-and-copy'];

export interface VirtioNetCheck {
  readonly options: VirtioNetOptions;
  readonly label: string;
  readonly enabled: { source: boolean; destination: boolean };
  readonly bounded: ExploreResult;
  readonly storm: ExploreResult;
  readonly properties: readonly VirtioNetClaim[];
  /** Which outcomes some run reaches, each with its shortest witness. */
  readonly outcomes: readonly { outcome: Outcome; reachable: boolean; witness: PropertyResult['counterexample'] }[];
  readonly verdict: VirtioNetVerdict;
  /** The fast path is a claim when both sides have the feature on (otherwise it cannot exist). */
  readonly fastPathClaimed: boolean;
}

export function checkVirtioNet(o: VirtioNetOptions, opts: ExploreOptions = {}): VirtioNetCheck {
  const options = { progress: false, ...opts } as const;
  const guestChanges = o.guestChanges === 'unbounded' ? 2 : (o.guestChanges ?? 2);
  const boundedSpec = virtioNetSystem({ ...o, guestChanges });
  const witnesses = outcomeWitnesses(guestChanges);
  const bounded = explore({ ...boundedSpec, invariants: [...(boundedSpec.invariants ?? []), ...Object.values(witnesses)] }, options);
  const storm = explore(virtioNetSystem({ ...o, guestChanges: 'unbounded', cancel: false, faults: false }), options);
  const witnessNames = new Set(Object.values(witnesses).map((w) => w.name));
  const claimNames = new Set<string>(VIRTIO_NET_CLAIMS.map((c) => c.name));
  const properties: VirtioNetClaim[] = [
    ...bounded.properties
      .filter((p) => !witnessNames.has(p.name) && p.name !== 'NoNonProgressCycle')
      .map((p) => ({ ...p, run: 'bounded' as const, claim: claimNames.has(p.name) })),
    ...storm.properties
      .filter((p) => p.name === 'MigrationEnds' || p.name === 'NoNonProgressCycle')
      .map((p) =>
        p.name === 'NoNonProgressCycle'
          ? { ...p, name: 'BoundedResends', description: 'under a storm, no reachable cycle in which the source keeps re-sending virtio-net state', run: 'storm' as const, claim: true }
          : { ...p, run: 'storm' as const, claim: true },
      ),
  ];
  const outcomes = OUTCOMES.map((outcome) => {
    const p = bounded.properties.find((q) => q.name === witnesses[outcome].name)!;
    return { outcome, reachable: p.verdict === 'violated', witness: p.counterexample };
  });
  const enabled = enablement(o);
  return {
    options: o,
    label: virtioNetLabel(o),
    enabled,
    bounded,
    storm,
    properties,
    outcomes,
    verdict: verdictOf(properties, outcomes),
    fastPathClaimed: o.design !== 'legacy' && enabled.source && enabled.destination,
  };
}

function verdictOf(properties: readonly VirtioNetClaim[], outcomes: VirtioNetCheck['outcomes']): VirtioNetVerdict {
  const holds = (name: string) => properties.find((p) => p.name === name && p.run === 'bounded')?.verdict !== 'violated';
  if (!holds('NoStaleDeviceState') || !holds('ProvisionalStateConfirmed') || !holds('NoStaleVhostBind')) return 'silently wrong device';
  const reached = ENDINGS.filter((x) => outcomes.find((r) => r.outcome === x)!.reachable);
  if (reached.length === 0) return 'never completes';
  return reached.length === 1 && reached[0] === 'full reload' ? 'full reload only' : reached.join(' or ');
}

/** Does the check hold: every claim, the fast path where claimed. */
export function virtioNetHolds(c: VirtioNetCheck): boolean {
  const fast = c.outcomes.find((x) => x.outcome === 'fast path')!.reachable;
  return c.properties.every((p) => p.holds) && (!c.fastPathClaimed || fast);
}

/** A named scenario: one configuration of the two hosts, checked by checkVirtioNet. */
export interface VirtioNetScenario {
  readonly id: string;
  readonly label: string;
  readonly options: VirtioNetOptions;
}

const only = (side: 'source' | 'destination') =>
  side === 'source' ? { source: { enabled: true }, destination: { enabled: false } } : { source: { enabled: false }, destination: { enabled: true } };

/** The scenarios of docs/virtio-net.md: each design on both sides, then each way of disagreeing. */
export const VIRTIO_NET_SCENARIOS: readonly VirtioNetScenario[] = [
  { id: 'early-mig', label: 'early-mig on both sides, vhost-net', options: { design: 'early-mig' } },
  { id: 'early-mig-userspace', label: 'early-mig on both sides, userspace datapath', options: { design: 'early-mig', vhost: false } },
  { id: 'early-mig-source-only', label: 'early-mig=on on the source only', options: { design: 'early-mig', ...only('source') } },
  { id: 'early-mig-destination-only', label: 'early-mig=on on the destination only', options: { design: 'early-mig', ...only('destination') } },
  {
    id: 'early-mig-machines-new-old',
    label: 'machine types 10.2 → 10.1, property defaults',
    options: { design: 'early-mig', source: { machine: '10.2' }, destination: { machine: '10.1' } },
  },
  {
    id: 'early-mig-machines-old-new',
    label: 'machine types 10.1 → 10.2, property defaults',
    options: { design: 'early-mig', source: { machine: '10.1' }, destination: { machine: '10.2' } },
  },
  {
    id: 'early-mig-machines-old',
    label: 'machine type 10.1 on both sides, property defaults',
    options: { design: 'early-mig', source: { machine: '10.1' }, destination: { machine: '10.1' } },
  },
  {
    id: 'early-mig-source-only-registered-always',
    label: 'source only; the destination registers both VMSDs whatever its property',
    options: { design: 'early-mig', sectionsRegistered: 'always', ...only('source') },
  },
  {
    id: 'early-mig-source-only-early-registered-always',
    label: 'source only; the early VMSD registered always, the delta VMSD with the property',
    options: { design: 'early-mig', sectionsRegistered: 'early-always', ...only('source') },
  },
  { id: 'iterative', label: 'virtio-iterative on both sides', options: { design: 'iterative' } },
  { id: 'iterative-source-only', label: 'virtio-iterative capability on the source only', options: { design: 'iterative', ...only('source') } },
  { id: 'iterative-destination-only', label: 'virtio-iterative capability on the destination only', options: { design: 'iterative', ...only('destination') } },
  {
    id: 'iterative-property-source-only',
    label: 'iterative as a device property, on the source only',
    options: { design: 'iterative', iterativeSwitch: 'property', ...only('source') },
  },
  {
    id: 'iterative-property-destination-only',
    label: 'iterative as a device property, on the destination only',
    options: { design: 'iterative', iterativeSwitch: 'property', ...only('destination') },
  },
  { id: 'legacy', label: 'legacy (QEMU today)', options: { design: 'legacy' } },
];

/** The composition with VFIO: one device with every feature beside the virtio-net device (legacy ack, no cancel, no faults). */
export const VFIO_COMPOSITION: VirtioNetOptions = { design: 'early-mig', vfioDevices: ['STOP_COPY|P2P|PRE_COPY'], cancel: false, faults: false };

/** The options that check a variant of machines/virtioNetVariants.ts in the scenario it names. */
export function variantOptions(v: VirtioNetVariant): VirtioNetOptions {
  return {
    design: v.scenario.design,
    ...(v.scenario.enabledOn === 'source' ? only('source') : {}),
    ...(v.side === 'source' ? { sourceMachine: v.machine } : { destinationMachine: v.machine }),
  };
}

/** The machine-readable report of a virtio-net check (what `check --virtio-net … --json` prints). */
export function virtioNetReport(c: VirtioNetCheck) {
  const fast = c.outcomes.find((x) => x.outcome === 'fast path')!;
  return {
    design: c.options.design,
    system: c.label,
    enabled: c.enabled,
    verdict: c.verdict,
    states: c.bounded.states,
    transitions: c.bounded.transitions,
    storm: { states: c.storm.states, transitions: c.storm.transitions },
    properties: c.properties.map((p) => ({
      name: p.name,
      run: p.run,
      claim: p.claim,
      verdict: p.verdict,
      holds: p.holds,
      description: p.description ?? null,
      counterexample: p.counterexample ? p.counterexample.steps : null,
      ...(p.counterexample?.cycleStart !== undefined ? { cycleStart: p.counterexample.cycleStart } : {}),
    })),
    fastPath: { claimed: c.fastPathClaimed, reachable: fast.reachable, witness: fast.witness ? fast.witness.steps : null },
    outcomes: c.outcomes.map((o) => ({ outcome: o.outcome, reachable: o.reachable })),
    deadlocks: c.bounded.deadlocks,
    coverage: c.bounded.coverage,
  };
}

/** The text report: sizes, the verdict, each property with its trace, the fast path and the outcomes reached. */
export function formatVirtioNetCheck(c: VirtioNetCheck): string {
  const num = (x: number) => x.toLocaleString('en-US');
  const lines = [
    `${c.label}: ${num(c.bounded.states)} states, ${num(c.bounded.transitions)} transitions; ` +
      `storm: ${num(c.storm.states)} states, ${num(c.storm.transitions)} transitions`,
    `  what happens: ${c.verdict}`,
  ];
  for (const p of c.properties) {
    lines.push(`  ${verdictMark(p)} ${p.name}${p.run === 'storm' ? ' (storm)' : ''}`);
    if (p.counterexample) lines.push(formatTrace(p.counterexample).replace(/^/gm, '    '));
  }
  const fast = c.outcomes.find((x) => x.outcome === 'fast path')!;
  const mark = !c.fastPathClaimed ? 'n/a     ' : fast.reachable ? 'holds   ' : c.bounded.limit ? 'unknown ' : 'VIOLATED';
  lines.push(`  ${mark} FastPathReachable${c.fastPathClaimed ? '' : ' (not claimed: the feature is not on on both sides)'}${fast.reachable ? `, witness of ${fast.witness!.steps.length} steps` : ''}`);
  lines.push(`  outcomes reached: ${c.outcomes.filter((o) => o.reachable).map((o) => o.outcome).join('; ') || 'none'}`);
  return lines.join('\n');
}

/** The shortest fast-path run of early-mig on both sides (vhost-net, no cancel, no faults), for the diagrams. */
export function virtioNetFastPathRun(): Trace {
  const spec = virtioNetSystem({ design: 'early-mig', cancel: false, faults: false });
  const never = outcomeWitnesses(2)['fast path'];
  const r = explore({ ...spec, invariants: [never] }, { progress: false });
  const t = r.properties.find((p) => p.name === never.name)?.counterexample;
  if (!t) throw new Error('the explorer found no fast-path run of early-mig');
  return t;
}
