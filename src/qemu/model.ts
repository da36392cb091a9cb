/**
 * The model a real QEMU run is checked against: the composed migration system of a VM without VFIO
 * devices (what TCG gives us), explored once per configuration with every edge recorded, and each
 * global state projected to what QEMU lets us observe — each side's MigrationStatus and whether its
 * guest runs — plus the controllable steps (management commands and injected faults).
 */
import type { EventObject } from 'xstate';
import type { QemuDestinationContext } from '../../machines/qemuDestination.js';
import { type QemuSourceContext, sourcePhase, sourceStatus } from '../../machines/qemuSource.js';
import { CompiledSystem, search, type StepLabel } from '../explorer/index.js';
import { BoundView } from '../explorer/step.js';
import { migrationSystem } from '../systems/migration.js';
import type { Side } from './log.js';

export interface ModelConfig {
  /** switchover-ack (with return-path) on both sides ('legacy', QEMU ≤ 11.0) or off. */
  readonly ack: 'off' | 'legacy';
  /** switchover-ack on one host only. */
  readonly oneSide?: Side;
  readonly pauseBeforeSwitchover: boolean;
  /** The destination QEMU runs with autostart (no -S); default true. libvirt starts it with -S (false). */
  readonly autostart?: boolean;
  /** Management may send QMP stop/cont (source stop and cont, destination cont); default false. */
  readonly management?: boolean;
  /** New migrations after a failed or cancelled one, each to a new destination process; default 0. */
  readonly retries?: number;
  /** The multifd capability on both sides with this many channels (multifd-channels); absent: off. */
  readonly multifd?: number;
}

/**
 * The model events we can cause: management commands, the faults we inject, and a new destination
 * process. STOP is the source's QMP `stop`, CONT either side's `cont` (the step's component says which),
 * NEW_PROCESS a fresh destination QEMU started after the last one failed or was killed.
 */
export type ControllableEvent = 'MIGRATE' | 'MIGRATE_INCOMING' | 'MIGRATE_CANCEL' | 'MIGRATE_CONTINUE' | 'STREAM_BREAKS' | 'STOP' | 'CONT' | 'NEW_PROCESS';
export const CONTROLLABLE: readonly ControllableEvent[] = ['MIGRATE', 'MIGRATE_INCOMING', 'MIGRATE_CANCEL', 'MIGRATE_CONTINUE', 'STREAM_BREAKS', 'STOP', 'CONT', 'NEW_PROCESS'];

/** Observable variables, in this order: source status, source running, destination status, destination running. */
export const OBSERVABLES = ['source status', 'source running', 'destination status', 'destination running'] as const;
export const statusVar = (side: Side): number => (side === 'source' ? 0 : 2);
export const runningVar = (side: Side): number => (side === 'source' ? 1 : 3);

export interface Edge {
  readonly to: number;
  readonly label: StepLabel;
  /** The controllable event this step is, or null for an internal step. */
  readonly action: ControllableEvent | null;
}

export class ModelGraph {
  readonly states: number;
  /** obs[i] = [source status, 'true'|'false', destination status, 'true'|'false'] */
  readonly obs: (readonly string[])[] = [];
  readonly runstate: (readonly [string, string])[] = [];
  readonly sourceContext: QemuSourceContext[] = [];
  /** The source's state below its status (e.g. 'saved' in setup once save setup ran), or null. */
  readonly sourcePhase: (string | null)[] = [];
  readonly destinationContext: QemuDestinationContext[] = [];
  readonly succ: Edge[][] = [];

  constructor(readonly config: ModelConfig) {
    const spec = migrationSystem({
      devices: [],
      ack: config.ack,
      ...(config.oneSide ? { oneSide: config.oneSide } : {}),
      pauseBeforeSwitchover: config.pauseBeforeSwitchover,
      ...(config.autostart === false ? { autostart: false } : {}),
      ...(config.management ? { management: true } : {}),
      ...(config.retries ? { retries: config.retries } : {}),
      // multifd: a receive failure on the destination alone is no fault the harness injects
      ...(config.multifd ? { multifd: { channels: config.multifd, recvResets: false } } : {}),
      cancel: true,
      faults: true,
    });
    const sys = new CompiledSystem(spec);
    const out = search(sys, { recordEdges: true, progress: false });
    if (!out.edges || out.limit) throw new Error(`the model could not be explored: ${out.limit?.message ?? 'no edges'}`);
    this.states = out.states;
    const t = new Uint32Array(sys.width);
    const view = new BoundView(sys, t);
    for (let i = 0; i < out.states; i++) {
      out.store.load(i, t);
      const s = view.context<QemuSourceContext>('source');
      const d = view.context<QemuDestinationContext>('destination');
      this.sourceContext.push(s);
      this.sourcePhase.push(sourcePhase(view.value('source')));
      this.destinationContext.push(d);
      this.runstate.push([s.runstate, d.runstate]);
      this.obs.push([statusOf(view, 'source'), String(s.runstate === 'running'), statusOf(view, 'destination'), String(d.runstate === 'running')]);
      const edges: Edge[] = [];
      for (let e = out.edges.start[i]!; e < out.edges.start[i + 1]!; e++) {
        const label = sys.label(out.edges.step[e]!, t);
        edges.push({ to: out.edges.to[e]!, label, action: controllable(label) });
      }
      this.succ.push(edges);
    }
  }

  status(i: number, side: Side): string {
    return this.obs[i]![side === 'source' ? 0 : 2]!;
  }

  runstateOf(i: number, side: Side): string {
    return this.runstate[i]![side === 'source' ? 0 : 1];
  }

  /** The observable variables that differ between states a and b. */
  changed(a: number, b: number): number[] {
    const oa = this.obs[a]!;
    const ob = this.obs[b]!;
    const out: number[] = [];
    for (let k = 0; k < oa.length; k++) if (oa[k] !== ob[k]) out.push(k);
    return out;
  }
}

/** A side's QAPI MigrationStatus in a global state: the one place the checker reads a machine's state value. */
function statusOf(view: BoundView, side: Side): string {
  return side === 'source' ? sourceStatus(view.value(side)) : String(view.value(side));
}

function controllable(label: StepLabel): ControllableEvent | null {
  if (label.kind !== 'env') return null;
  const t = (label.event as EventObject).type as ControllableEvent;
  return CONTROLLABLE.includes(t) ? t : null;
}

const cache = new Map<string, ModelGraph>();

/** The explored model for a configuration (explored once per process). */
export function modelGraph(config: ModelConfig): ModelGraph {
  const key = JSON.stringify([config.ack, config.oneSide ?? null, config.pauseBeforeSwitchover, config.autostart ?? true, config.management ?? false, config.retries ?? 0, config.multifd ?? 0]);
  let g = cache.get(key);
  if (!g) {
    g = new ModelGraph(config);
    cache.set(key, g);
  }
  return g;
}

export const describeConfig = (c: ModelConfig): string =>
  `switchover-ack ${c.ack === 'off' ? 'off' : c.oneSide ? `on the ${c.oneSide} only` : 'on'}, pause-before-switchover ${c.pauseBeforeSwitchover ? 'on' : 'off'}` +
  (c.autostart === false ? ', destination started with -S' : '') +
  (c.management ? ', management stop/cont' : '') +
  (c.retries ? `, ${c.retries} retr${c.retries === 1 ? 'y' : 'ies'} to a new destination process` : '') +
  (c.multifd ? `, multifd with ${c.multifd} channel${c.multifd === 1 ? '' : 's'}` : '');
