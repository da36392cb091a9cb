/**
 * The model a real QEMU run is checked against: the composed migration system — without VFIO devices
 * (what TCG gives us), or with the log's VFIO devices on each side (the nested mtty runs) — explored
 * once per configuration with every edge recorded, and each global state projected to what QEMU lets
 * us observe: each side's MigrationStatus and whether its guest runs, and the state QEMU tracks for
 * each of its devices (what its VFIO_MIGRATION events report); plus the controllable steps (management
 * commands and injected faults).
 *
 * One QEMU step can move a device through several states (the VM stop: pre-copy-p2p then stop-copy),
 * each with its own event, which no single global state shows. So an edge whose step emits k > 1
 * VFIO_MIGRATION observations (CompiledSystem.observe) is a chain of k edges through k − 1 in-between
 * nodes: the first carries the step's label and action, each later one is internal and `continues` the
 * step. An in-between node has the step's target values for every other variable (those changes may
 * be reported in any order against the events) and the device states of the events so far; the
 * checker takes the next link only once the events before it were reported (Edge.needs), so a step's
 * events are matched in their order. In-between nodes are numbered after the explored states
 * (`states` counts the explored ones, `nodes` all) and carry the target's contexts.
 */
import type { EventObject } from 'xstate';
import type { QemuDestinationContext } from '../../machines/qemuDestination.js';
import { type QemuSourceContext, sourcePhase, sourceStatus } from '../../machines/qemuSource.js';
import { CompiledSystem, ExploredGraph, type StepLabel, edgeSources } from '../explorer/index.js';
import { BoundView } from '../explorer/step.js';
import { migrationSystem } from '../systems/migration.js';
import type { Side } from './log.js';
import { type DeviceRecord, type VfioMigrationEvent, qapiState } from '../../machines/qemuVfio.js';
import type { FeatureSet } from '../../machines/vfioArcs.js';

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
  /** Each side's VFIO devices' x-migration-multifd-transfer (absent: auto). */
  readonly multifdTransfer?: Partial<Readonly<Record<Side, 'auto' | 'on' | 'off'>>>;
  /** VFIO devices on each side (QEMU's -device order; default none). */
  readonly devices?: Readonly<Record<Side, number>>;
  /** The devices' driver (see DEVICE_PROFILES); default 'mtty'. */
  readonly profile?: DeviceProfileId;
  /**
   * With a return path, migrate_cancel may also end failed/failed (QEMU 10.0's cancel shuts the return
   * path first; MigrationOptions.cancelRace). Default true; false for the model without that outcome.
   */
  readonly cancelRace?: boolean;
}

/**
 * What a driver profile means for the QEMU machines, which count device data in abstract units
 * (machines/qemuVfio.ts): its feature set and whether the running guest dirties device state.
 * `mtty` (machines/vfioProfiles.ts mttyProfile, samples/vfio-mdev/mtty.c): STOP_COPY, P2P and PRE_COPY
 * (mtty_migration_get_state's feature flags: VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
 * VFIO_MIGRATION_PRE_COPY), and no dirty tracking (`tracksDirty: false`: dirty_bytes is always 0), so
 * the environment never dirties it. Byte sizes, chunking and the fd rules of the profile stay in the
 * device-level suites (npm run test:vfio): the events QEMU reports do not depend on them.
 */
export const DEVICE_PROFILES = {
  mtty: { features: 'STOP_COPY|P2P|PRE_COPY' as FeatureSet, guestDirties: 0 },
} as const;
export type DeviceProfileId = keyof typeof DEVICE_PROFILES;

/**
 * The model events we can cause: management commands, the faults we inject, and a new destination
 * process. STOP is the source's QMP `stop`, CONT either side's `cont` (the step's component says which),
 * NEW_PROCESS a fresh destination QEMU started after the last one failed or was killed.
 */
export type ControllableEvent = 'MIGRATE' | 'MIGRATE_INCOMING' | 'MIGRATE_CANCEL' | 'MIGRATE_CONTINUE' | 'STREAM_BREAKS' | 'STOP' | 'CONT' | 'NEW_PROCESS';
export const CONTROLLABLE: readonly ControllableEvent[] = ['MIGRATE', 'MIGRATE_INCOMING', 'MIGRATE_CANCEL', 'MIGRATE_CONTINUE', 'STREAM_BREAKS', 'STOP', 'CONT', 'NEW_PROCESS'];

/**
 * Observable variables, in this order: source status, source running, destination status, destination
 * running — then, in a model with devices, the state of each source device and of each destination
 * device (StatusGraph.variables names them all).
 */
export const OBSERVABLES = ['source status', 'source running', 'destination status', 'destination running'] as const;
export const statusVar = (side: Side): number => (side === 'source' ? 0 : 2);
export const runningVar = (side: Side): number => (side === 'source' ? 1 : 3);

export interface Edge {
  readonly to: number;
  readonly label: StepLabel;
  /** The controllable event this step is, or null for an internal step. */
  readonly action: ControllableEvent | null;
  /**
   * The variables that must have been reported before this edge is taken (default: every variable of
   * its source node). A link after the first of a multi-event step needs only the step's device events
   * so far.
   */
  readonly needs?: readonly number[];
  /** A link after the first of a multi-event step (it is part of the step before it). */
  readonly continues?: true;
  /** The VFIO_MIGRATION observations of this edge (the whole step's on its first link). */
  readonly events?: readonly VfioMigrationEvent[];
}

/**
 * The QEMU systems as QEMU shows them: the explored graph of the composed model (an `ExploredGraph`,
 * src/explorer/graph.ts, the one the test generator builds on too) seen through what QMP reports —
 * each state's observable variables, each step's VFIO_MIGRATION events, and multi-event steps as chains
 * through in-between nodes — for the planner (plan.ts) and the conformance check (conform.ts).
 */
export class StatusGraph {
  /** The explorer's graph of the composed system: the explored states, their edges and labels. */
  readonly explored: ExploredGraph;
  /** Explored global states (node 0 ..states-1); in-between nodes of multi-event steps follow. */
  readonly states: number;
  /** Every node: the explored states and the in-between ones. */
  readonly nodes: number;
  /** The observable variables' names: OBSERVABLES, then one per device (`source device 0`, …). */
  readonly variables: readonly string[];
  /** The side each variable belongs to. */
  readonly sideOfVar: readonly Side[];
  /** obs[i] = [source status, 'true'|'false', destination status, 'true'|'false', source devices…, destination devices…] */
  readonly obs: (readonly string[])[] = [];
  readonly runstate: (readonly [string, string])[] = [];
  readonly sourceContext: QemuSourceContext[] = [];
  /** The source's state below its status (e.g. 'saved' in setup once save setup ran), or null. */
  readonly sourcePhase: (string | null)[] = [];
  readonly destinationContext: QemuDestinationContext[] = [];
  readonly succ: Edge[][] = [];

  constructor(readonly config: ModelConfig) {
    const profile = DEVICE_PROFILES[config.profile ?? 'mtty'];
    const nSrc = config.devices?.source ?? 0;
    const nDst = config.devices?.destination ?? 0;
    const spec = migrationSystem({
      devices: Array.from({ length: nSrc }, () => profile.features),
      ...(nDst !== nSrc ? { destinationDevices: Array.from({ length: nDst }, () => profile.features) } : {}),
      ...(nSrc + nDst > 0 ? { guestDirties: profile.guestDirties } : {}),
      ack: config.ack,
      ...(config.oneSide ? { oneSide: config.oneSide } : {}),
      pauseBeforeSwitchover: config.pauseBeforeSwitchover,
      ...(config.autostart === false ? { autostart: false } : {}),
      ...(config.management ? { management: true } : {}),
      ...(config.retries ? { retries: config.retries } : {}),
      // multifd: a receive failure on the destination alone is no fault the harness injects
      ...(config.multifd
        ? {
            multifd: {
              channels: config.multifd,
              recvResets: false,
              ...(config.multifdTransfer?.source ? { transfer: config.multifdTransfer.source } : {}),
              ...(config.multifdTransfer?.destination ? { destinationTransfer: config.multifdTransfer.destination } : {}),
            },
          }
        : {}),
      cancel: true,
      ...(config.cancelRace === false ? { cancelRace: false } : {}),
      faults: true,
    });
    const sys = new CompiledSystem(spec);
    const g = new ExploredGraph(sys, { incomplete: (limit) => new Error(`the model could not be explored: ${limit?.message ?? 'no edges'}`) });
    this.explored = g;
    this.states = g.stateCount;
    this.variables = [
      ...OBSERVABLES,
      ...Array.from({ length: nSrc }, (_, i) => `source device ${i}`),
      ...Array.from({ length: nDst }, (_, i) => `destination device ${i}`),
    ];
    this.sideOfVar = this.variables.map((v) => (v.startsWith('source') ? 'source' : 'destination'));
    const view = new BoundView(sys, new Uint32Array(sys.width));
    const tracked = (devs: readonly DeviceRecord[]) => devs.map((d) => (d.state === 'ERROR' ? 'error' : qapiState(d.state)));
    const chains: { from: number; edge: number; events: readonly VfioMigrationEvent[] }[] = [];
    for (let i = 0; i < g.stateCount; i++) {
      const t = g.tuple(i);
      view.bind(t);
      const s = view.context<QemuSourceContext>('source');
      const d = view.context<QemuDestinationContext>('destination');
      this.sourceContext.push(s);
      this.sourcePhase.push(sourcePhase(view.value('source')));
      this.destinationContext.push(d);
      this.runstate.push([s.runstate, d.runstate]);
      this.obs.push([
        statusOf(view, 'source'),
        String(s.runstate === 'running'),
        statusOf(view, 'destination'),
        String(d.runstate === 'running'),
        ...tracked(s.devs),
        ...tracked(d.devs),
      ]);
      const edges: Edge[] = [];
      for (let e = g.start[i]!; e < g.start[i + 1]!; e++) {
        const label = g.label(e);
        const events = (nSrc + nDst > 0 ? sys.observe(g.stepId[e]!, t) : []) as readonly VfioMigrationEvent[];
        edges.push({ to: g.to[e]!, label, action: controllable(label), ...(events.length > 0 ? { events } : {}) });
        if (events.length > 1) chains.push({ from: i, edge: edges.length - 1, events });
      }
      this.succ.push(edges);
    }
    // multi-event steps as chains of links through in-between nodes (see the header)
    const linksOf = new Map<string, { links: number[]; target: number }>();
    for (const c of chains) {
      const first = this.succ[c.from]![c.edge]!;
      const side = first.label.component as Side;
      const varOf = (ev: VfioMigrationEvent) => (side === 'source' ? 4 : 4 + nSrc) + ev.device;
      const target = first.to;
      let values = [...this.obs[target]!];
      // the devices of the step's side as they were before it, then each event in turn
      for (const ev of c.events) values[varOf(ev)] = this.obs[c.from]![varOf(ev)]!;
      const links: number[] = [];
      for (let j = 0; j < c.events.length - 1; j++) {
        values = [...values];
        values[varOf(c.events[j]!)] = c.events[j]!.state;
        const node = this.obs.length;
        this.obs.push(values);
        this.runstate.push(this.runstate[target]!);
        this.sourceContext.push(this.sourceContext[target]!);
        this.sourcePhase.push(this.sourcePhase[target]!);
        this.destinationContext.push(this.destinationContext[target]!);
        this.succ.push([]);
        links.push(node);
      }
      const needs = [...new Set(c.events.map(varOf))];
      this.succ[c.from]![c.edge] = { ...first, to: links[0]! };
      links.forEach((node, j) => {
        this.succ[node]!.push({ to: links[j + 1] ?? target, label: first.label, action: null, needs, continues: true, events: [c.events[j + 1]!] });
      });
      linksOf.set(`${c.from} ${labelKey(first.label)} ${JSON.stringify(c.events)}`, { links, target });
    }
    // A step of the other side concurrent with a multi-event step may come between its events: from the
    // j-th in-between node of the chain m → t, the other side's step f (m → b, and t → t' by the same
    // label) leads to the j-th in-between node of the same chain from b (b → t'). It needs the other
    // side's variables and the chain's events so far reported.
    for (const c of chains) {
      const first = this.succ[c.from]![c.edge]!;
      const side = first.label.component as Side;
      const key = `${labelKey(first.label)} ${JSON.stringify(c.events)}`;
      const mine = linksOf.get(`${c.from} ${key}`)!;
      const eventVars = [...new Set(c.events.map((ev) => (side === 'source' ? 4 : 4 + nSrc) + ev.device))];
      for (const f of this.succ[c.from]!) {
        if (f.label.component === side || f.continues || f.to >= this.states) continue;
        const theirs = linksOf.get(`${f.to} ${key}`);
        if (!theirs) continue;
        const fk = labelKey(f.label);
        if (!this.succ[mine.target]!.some((g) => g.to === theirs.target && labelKey(g.label) === fk)) continue;
        const needs = [...this.variables.keys()].filter((k) => this.sideOfVar[k] !== side).concat(eventVars);
        mine.links.forEach((node, j) => this.succ[node]!.push({ to: theirs.links[j]!, label: f.label, action: f.action, needs, ...(f.events ? { events: f.events } : {}) }));
      }
    }
    this.nodes = this.obs.length;
    this.pred = Array.from({ length: this.nodes }, () => []);
    this.succ.forEach((edges, from) => edges.forEach((e) => this.pred[e.to]!.push({ from, edge: e })));
    const start = new Int32Array(this.nodes + 1);
    this.succ.forEach((edges, i) => (start[i + 1] = start[i]! + edges.length));
    this.edges = { start, to: Int32Array.from(this.succ.flat(), (e) => e.to), from: edgeSources(this.nodes, start) };
  }

  /**
   * Every node's edges as a CSR graph, for the explorer's bfs: edge a of node i (start[i] ≤ a <
   * start[i+1]) is succ[i][a − start[i]].
   */
  readonly edges: { readonly start: Int32Array; readonly to: Int32Array; readonly from: Int32Array };

  /** The edges into each node. */
  readonly pred: { readonly from: number; readonly edge: Edge }[][];

  /**
   * The step `e` from m commutes with the step `into` (p → m) of the other component: from p, e's step
   * (the same label) leads to some b from which `into`'s step leads where e does — the two steps are
   * concurrent, and either may be taken first. In-between nodes of multi-event steps take part in none.
   */
  commutes(p: number, into: Edge, m: number, e: Edge): boolean {
    if (into.continues || e.continues || into.label.component === e.label.component) return false;
    if (m >= this.states || e.to >= this.states) return false;
    const ke = labelKey(e.label);
    const ki = labelKey(into.label);
    return this.succ[p]!.some((eb) => eb.to < this.states && labelKey(eb.label) === ke && this.succ[eb.to]!.some((ec) => ec.to === e.to && labelKey(ec.label) === ki));
  }

  /** The variable of device `i` on `side`, or -1 when the model has no such device. */
  deviceVar(side: Side, i: number): number {
    const n = side === 'source' ? (this.config.devices?.source ?? 0) : (this.config.devices?.destination ?? 0);
    if (!Number.isInteger(i) || i < 0 || i >= n) return -1;
    return (side === 'source' ? 4 : 4 + (this.config.devices?.source ?? 0)) + i;
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

const labelKeys = new WeakMap<StepLabel, string>();
/** One key per step label (its kind, component, channel and event). */
function labelKey(l: StepLabel): string {
  let k = labelKeys.get(l);
  if (k === undefined) {
    k = JSON.stringify([l.kind, l.component, l.channel ?? null, l.event]);
    labelKeys.set(l, k);
  }
  return k;
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

const cache = new Map<string, StatusGraph>();

/** The explored model for a configuration (explored once per process). */
export function statusGraph(config: ModelConfig): StatusGraph {
  const key = JSON.stringify([
    config.ack,
    config.oneSide ?? null,
    config.pauseBeforeSwitchover,
    config.autostart ?? true,
    config.management ?? false,
    config.retries ?? 0,
    config.devices?.source ?? 0,
    config.devices?.destination ?? 0,
    config.profile ?? 'mtty',
    config.multifd ?? 0,
    config.multifdTransfer?.source ?? 'auto',
    config.multifdTransfer?.destination ?? 'auto',
    config.cancelRace ?? true,
  ]);
  let g = cache.get(key);
  if (!g) {
    g = new StatusGraph(config);
    cache.set(key, g);
  }
  return g;
}

export const describeConfig = (c: ModelConfig): string =>
  `switchover-ack ${c.ack === 'off' ? 'off' : c.oneSide ? `on the ${c.oneSide} only` : 'on'}, pause-before-switchover ${c.pauseBeforeSwitchover ? 'on' : 'off'}` +
  (c.autostart === false ? ', destination started with -S' : '') +
  (c.management ? ', management stop/cont' : '') +
  (c.retries ? `, ${c.retries} retr${c.retries === 1 ? 'y' : 'ies'} to a new destination process` : '') +
  (c.devices && c.devices.source + c.devices.destination > 0
    ? `, ${c.devices.source} + ${c.devices.destination} VFIO device${c.devices.source + c.devices.destination === 1 ? '' : 's'} (${c.profile ?? 'mtty'})`
    : '') +
  (c.multifd ? `, multifd with ${c.multifd} channel${c.multifd === 1 ? '' : 's'}` : '') +
  (c.multifdTransfer ? `, x-migration-multifd-transfer ${Object.entries(c.multifdTransfer).map(([s, v]) => `${v} on the ${s}`).join(', ')}` : '');
