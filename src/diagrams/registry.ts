/**
 * Every diagram the project publishes, one entry each: its file name, title, a sentence for the docs,
 * and where it comes from (a machine, a hand-built chart, or an explorer trace). Adding a machine's
 * diagram is one `machineDiagram(...)` line here; `npm run diagrams` does the rest.
 */
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { FEATURE_SETS, type FeatureSet, statesOf } from '../../machines/vfioArcs.js';
import { multifdLoadMachine } from '../../machines/multifdLoad.js';
import { multifdSaveMachine } from '../../machines/multifdSave.js';
import { qemuDestinationMachine } from '../../machines/qemuDestination.js';
import { qemuSourceMachine } from '../../machines/qemuSource.js';
import { vfioDeviceMachine } from '../../machines/vfioDevice.js';
import { virtioNetDestinationMachine } from '../../machines/virtioNetDestination.js';
import { virtioNetSourceMachine } from '../../machines/virtioNetSource.js';
import { VIRTIO_NET_PARTICIPANTS, VIRTIO_NET_SENDERS, virtioNetFastPathRun } from '../systems/virtioNet.js';
import type { Trace } from '../explorer/trace.js';
import type { Chart } from './chart.js';
import type { MachineChartOptions } from './machineChart.js';
import type { SequenceDiagramOptions } from './sequenceDiagram.js';
import type { StateDiagramOptions } from './stateDiagram.js';
import { channelSenders, exampleMigrationSystem, successfulMigrationRun } from './migrationRuns.js';
import { vfioFeatureSetChart } from './vfioCharts.js';
import { vfioStopCopyRun } from './vfioRuns.js';

export type DiagramSource =
  | {
      readonly kind: 'machine';
      readonly machine: AnyStateMachine;
      readonly chart?: MachineChartOptions;
      readonly layout?: StateDiagramOptions;
    }
  | { readonly kind: 'chart'; readonly chart: () => Chart; readonly layout?: StateDiagramOptions }
  | { readonly kind: 'trace'; readonly trace: () => Trace; readonly sequence?: SequenceDiagramOptions };

export interface DiagramEntry {
  /** File stem: `diagrams/NAME.mmd`, `diagrams/NAME.svg`. */
  readonly name: string;
  readonly title: string;
  /** One or two sentences for the docs. */
  readonly description: string;
  readonly source: DiagramSource;
  /**
   * Text the rendered SVG must contain — every state of the machine, every participant of the trace —
   * taken from the source itself, not from the generated diagram, so a state the generator drops is caught.
   */
  readonly mustShow: () => readonly string[];
}

/**
 * The name of every state of a machine — the root excluded (a compound root is the diagram itself), and
 * history pseudo-states too (they are drawn as `H`/`H*`, their name going into a note).
 */
export function stateNamesOf(machine: AnyStateMachine | AnyStateNode): string[] {
  const top = 'root' in machine ? machine.root : machine;
  const walk = (node: AnyStateNode): string[] =>
    (Object.values(node.states) as AnyStateNode[]).flatMap((c) => [...(c.type === 'history' ? [] : [c.key]), ...walk(c)]);
  return [...new Set(walk(top))];
}

/** The component names and every state value a trace passes through. */
export function traceLabelsOf(trace: Trace): string[] {
  const values = [...Object.values(trace.initial), ...trace.steps.flatMap((s) => s.changes.map((c) => c.to))];
  return [...new Set([...Object.keys(trace.initial), ...values])];
}

/** An entry for an XState machine, drawn whole. */
export function machineDiagram(
  name: string,
  title: string,
  machine: AnyStateMachine,
  description: string,
  opts: { chart?: MachineChartOptions; layout?: StateDiagramOptions } = {},
): DiagramEntry {
  return { name, title, description, source: { kind: 'machine', machine, ...opts }, mustShow: () => stateNamesOf(machine) };
}

/** An entry for an explorer trace, as a sequence diagram. */
export function traceDiagram(
  name: string,
  title: string,
  trace: () => Trace,
  description: string,
  sequence?: SequenceDiagramOptions,
): DiagramEntry {
  return {
    name,
    title,
    description,
    source: { kind: 'trace', trace, ...(sequence ? { sequence } : {}) },
    mustShow: () => traceLabelsOf(trace()),
  };
}

/** `STOP_COPY|P2P` → `stop-copy-p2p`. */
export function featureSetSlug(set: FeatureSet): string {
  return set.toLowerCase().replace(/[|_]/g, '-');
}

function vfioArcsDiagram(set: FeatureSet): DiagramEntry {
  return {
    name: `vfio-arcs-${featureSetSlug(set)}`,
    title: `VFIO device arcs: ${set}`,
    description:
      `The states a ${set} device supports and the single-step arcs the kernel hands its driver — the device ` +
      'machine’s ARC transitions whose arc this feature set uses — each labelled with what it does to the data_fd session.',
    source: { kind: 'chart', chart: () => vfioFeatureSetChart(set) },
    mustShow: () => statesOf(set),
  };
}

export const DIAGRAMS: readonly DiagramEntry[] = [
  machineDiagram(
    'vfio-device',
    'VFIO device (machines/vfioDevice.ts)',
    vfioDeviceMachine,
    'The whole device machine: every state, the kernel’s single-step arcs as ARC transitions (guarded by where the ' +
      'path goes next and the arc’s feature condition, doing what vfio.h says to the data session), the arcs a failing ' +
      'driver takes into ERROR, the per-state SET_STATE, ioctl and data_fd handling, and VFIO_DEVICE_RESET.',
  ),
  ...FEATURE_SETS.map(vfioArcsDiagram),
  traceDiagram(
    'vfio-run-stop-copy-to-eof',
    'VFIO device: shortest run to the end of the saved state',
    vfioStopCopyRun,
    'The explorer’s shortest run in which a device with every feature streams its final state in ' +
      'STOP_COPY until the data_fd reads EOF.',
  ),
  // The source is drawn in two parts, each readable at page width: its statuses with `migrating` as one
  // box, and the inside of `migrating` (the statuses a migration passes through).
  {
    ...machineDiagram(
      'qemu-source',
      'QEMU migration source (machines/qemuSource.ts)',
      qemuSourceMachine,
      'The outgoing migration at the top level: none, the migrating region as one box, the end statuses and ' +
        'their cleanup, retries, the (unreachable with VFIO) postcopy states.',
      { chart: { collapse: ['migrating'], collapsedNote: 'inside: diagrams/qemu-source-migrating.svg', notes: false } },
    ),
    mustShow: () => Object.keys(qemuSourceMachine.root.states),
  },
  {
    ...machineDiagram(
      'qemu-source-migrating',
      'QEMU migration source: the migrating region',
      qemuSourceMachine,
      'The statuses a migration passes through (setup, wait-unplug, active, pre-switchover, device), the ' +
        'migration thread as THREAD_STEP, the switchover as PENDING_FITS_THRESHOLD, cancel and stream errors.',
      { chart: { region: 'migrating', notes: false } },
    ),
    mustShow: () => stateNamesOf(qemuSourceMachine.root.states['migrating']!),
  },
  machineDiagram(
    'qemu-destination',
    'QEMU migration destination (machines/qemuDestination.ts)',
    qemuDestinationMachine,
    'The incoming migration: load setup, switchover-ack approvals, the devices’ final state, the guest start.',
  ),
  traceDiagram(
    'migration-run-complete',
    'Migration: a shortest complete run',
    () => successfulMigrationRun(),
    'The explorer’s shortest run of the composed migration system (one STOP_COPY|P2P|PRE_COPY device on each ' +
      'side, legacy switchover-ack, no cancel, no faults) in which both QEMUs reach completed.',
    { senders: channelSenders(exampleMigrationSystem()) },
  ),
  machineDiagram(
    'virtio-net-source',
    'virtio-net device, outgoing side (machines/virtioNetSource.ts)',
    virtioNetSourceMachine,
    'The virtio-net device on the source as it migrates early: the setup-phase sections, guest changes during precopy, ' +
      'and the stop-and-copy choice between the delta resync and the full section.',
  ),
  machineDiagram(
    'virtio-net-destination',
    'virtio-net device, incoming side (machines/virtioNetDestination.ts)',
    virtioNetDestinationMachine,
    'The virtio-net device on the destination: the sections it knows, provisional state, the early vhost start and its ' +
      'fallbacks, and the state the guest starts with.',
  ),
  traceDiagram(
    'virtio-net-run-fast-path',
    'virtio-net early-mig: a shortest run on the fast path',
    virtioNetFastPathRun,
    'The explorer’s shortest run (early-mig on both sides, vhost-net, no cancel, no faults) in which the destination ' +
      'starts the guest after the delta resync alone.',
    { participants: VIRTIO_NET_PARTICIPANTS, senders: VIRTIO_NET_SENDERS },
  ),
  machineDiagram(
    'multifd-save',
    'Multifd save thread, one per VFIO device (machines/multifdSave.ts)',
    multifdSaveMachine,
    'The source’s device-state save thread (vfio_multifd_save_complete_precopy_thread): STOP_COPY, one packet per chunk ' +
      'with the next index, the config last; a failure or an abort fails the join.',
  ),
  machineDiagram(
    'multifd-load',
    'Multifd buffer store and load thread, one per VFIO device (machines/multifdLoad.ts)',
    multifdLoadMachine,
    'The destination’s buffer store (any order, a repeated index refused, the cap) and its load thread, started by ' +
      'MIG_CMD_SWITCHOVER_START: buffers written strictly in index order, the config loaded last.',
  ),
];
