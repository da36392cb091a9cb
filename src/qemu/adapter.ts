/**
 * The adapter between model actions and real QEMU: each planned controllable action becomes a QMP
 * command or an injected fault, issued once both QEMUs report the statuses the model path has at that
 * point; THREAD_STEP and PENDING_FITS_THRESHOLD are QEMU-internal and never issued.
 *
 *   MIGRATE_INCOMING  migrate-incoming {uri: tcp:127.0.0.1:PORT, exit-on-error: false} on the destination
 *   MIGRATE           migrate {uri} on the source
 *   MIGRATE_CONTINUE  migrate-continue {state: 'pre-switchover'} on the source (a probe may name another
 *                     state, which QEMU refuses: qmp_migrate_continue wants the current status)
 *   MIGRATE_CANCEL    migrate_cancel on the source
 *   STOP              stop on the source (a management stop, not the switchover's)
 *   CONT              cont on the side the model step is on
 *   NEW_PROCESS       a fresh destination QEMU (QemuPair.newDestination), then the same capabilities as
 *                     the first (migrate-incoming runs with exit-on-error off, so a failed destination
 *                     still runs: the harness kills it first)
 *   STREAM_BREAKS     right after MIGRATE, in setup: the migrate URI is a loopback port nobody listens
 *                     on (an unreachable destination, the connect is refused); later: SIGKILL of the
 *                     destination QEMU
 *
 * Timing, where a scenario needs a status to last (not part of the model, which leaves timing free):
 * `throttle` sets max-bandwidth on the source so that precopy of the 64 MiB guest stays in 'active'
 * for seconds (and `releaseAfter` lifts it after the action that needed it, so a retry or the rest of a
 * stopped guest's precopy runs at full speed); `stallConnect` points migrate at a listener whose accept queue is full, so QEMU's
 * asynchronous connect stays pending and the source stays in 'setup'.
 */
import type { FaultKind, Pin, Side } from './log.js';
import type { ControllableEvent } from './model.js';
import type { Plan, PlannedAction } from './plan.js';
import { freePort, type StalledListener, stalledListener } from './processes.js';
import { QmpError, type QmpObject, type QmpValue } from './qmp.js';

export interface Timing {
  /** max-bandwidth on the source, bytes per second (holds the source in 'active'). */
  readonly throttle?: number;
  /** Route the source's connection to a listener that never answers (holds the source in 'setup'). */
  readonly stallConnect?: boolean;
  /** Lift the throttle (max-bandwidth RELEASED) right after the first action of this kind, so what follows runs at full speed. */
  readonly releaseAfter?: ControllableEvent;
}

/** max-bandwidth once the throttle is lifted: 1 GB/s, far more than loopback TCG precopy needs. */
export const RELEASED = 1_000_000_000;

/** Capabilities set on one side beyond those the model configuration implies (e.g. return-path alone on the destination). */
export type ExtraCapabilities = Partial<Record<Side, Readonly<Record<string, boolean>>>>;

export interface RunOptions {
  readonly timing?: Timing;
  readonly capabilities?: ExtraCapabilities;
  /** How long to wait for each status the plan needs (default 15 s). */
  readonly statusTimeoutMs?: number;
  /** Called with a line for each thing done (for verbose runs). */
  readonly log?: (line: string) => void;
  /** query-migrate and query-status on both sides after the final wait (default true). */
  readonly finalQueries?: boolean;
  /** Called before each planned action is issued (timing a scenario needs, e.g. freezing a process). */
  readonly before?: (a: PlannedAction) => Promise<void>;
}

/**
 * What runPlan needs of a pair of QEMUs: QemuPair (harness.ts) or the nested pair with VFIO devices
 * (src/qemu-vfio/nested.ts).
 */
export interface PlanPair {
  readonly dead: ReadonlySet<Side>;
  readonly status: Readonly<Record<Side, string>>;
  readonly incomingUri: string;
  execute(side: Side, command: string, args?: QmpObject, opts?: { fault?: FaultKind }): Promise<QmpValue>;
  /** Wait until `side` reports `status` (or, given several, any of them). */
  waitForStatus(side: Side, status: Pin, timeoutMs: number): Promise<void>;
  recordFault(fault: FaultKind): void;
  kill(side: Side): Promise<void>;
  /** A fresh destination process in place of the old one (NEW_PROCESS); pairs that cannot leave it out. */
  newDestination?(): Promise<void>;
  /** The migrate URI of a listener on this host's loopback port as the QEMUs reach it (default tcp:127.0.0.1:PORT). */
  hostUri?(port: number): string;
}

export class AdapterError extends Error {
  override readonly name = 'AdapterError';
}

/** Capabilities of each side for the plan's model configuration, with `extra` overriding them. */
export function capabilitiesFor(plan: Plan, side: Side, extra: ExtraCapabilities = {}): QmpObject {
  const c = plan.config;
  const ack = c.ack !== 'off' && (c.oneSide === undefined || c.oneSide === side);
  const caps = new Map<string, boolean>([
    ['events', true],
    ['return-path', ack],
    ['switchover-ack', ack],
    ['pause-before-switchover', side === 'source' && c.pauseBeforeSwitchover],
    ...(c.multifd ? ([['multifd', true]] as const) : []),
  ]);
  for (const [capability, state] of Object.entries(extra[side] ?? {})) caps.set(capability, state);
  return { capabilities: [...caps].map(([capability, state]) => ({ capability, state })) };
}

/** Run a plan on a started pair: capabilities, timing, each action at its point, then wait for the final statuses. */
export async function runPlan(pair: PlanPair, plan: Plan, opts: RunOptions = {}): Promise<void> {
  const timeout = opts.statusTimeoutMs ?? 15_000;
  const say = opts.log ?? (() => undefined);
  let stalled: StalledListener | null = null;
  let released = false;
  try {
    const caps: Record<Side, QmpObject> = { source: capabilitiesFor(plan, 'source', opts.capabilities), destination: capabilitiesFor(plan, 'destination', opts.capabilities) };
    for (const side of ['destination', 'source'] as const) await pair.execute(side, 'migrate-set-capabilities', caps[side]);
    if (plan.config.multifd) for (const side of ['destination', 'source'] as const) await pair.execute(side, 'migrate-set-parameters', { 'multifd-channels': plan.config.multifd });
    if (opts.timing?.throttle !== undefined) await pair.execute('source', 'migrate-set-parameters', { 'max-bandwidth': opts.timing.throttle });
    if (opts.timing?.stallConnect) stalled = await stalledListener();
    const acts = plan.actions;
    for (let i = 0; i < acts.length; i++) {
      const a = acts[i]!;
      await waitFor(pair, a.waitFor, timeout);
      const next = acts[i + 1];
      if (a.event === 'MIGRATE' && next?.event === 'STREAM_BREAKS' && !next.probe && next.before.source === 'setup') {
        // an unreachable destination: the connect is refused
        const uri = `tcp:127.0.0.1:${await freePort()}`;
        say(`MIGRATE + STREAM_BREAKS: migrate to ${uri}, where nobody listens`);
        await pair.execute('source', 'migrate', { uri }, { fault: 'unreachable-destination' }).catch(ignoreRefusal);
        i++;
        continue;
      }
      say(`${a.probe ? 'probe ' : ''}${a.event} (source '${pair.status.source}', destination '${pair.status.destination}')`);
      await opts.before?.(a);
      await act(pair, a, stalled, caps);
      if (opts.timing?.releaseAfter === a.event && !a.probe && !released) {
        released = true;
        await pair.execute('source', 'migrate-set-parameters', { 'max-bandwidth': RELEASED });
      }
    }
    await waitFor(pair, plan.finalWait, timeout);
    await new Promise((r) => setTimeout(r, 150)); // let late events (RESUME, cleanup) arrive
    for (const side of ['source', 'destination'] as const) {
      if (opts.finalQueries === false) break;
      if (pair.dead.has(side)) continue;
      await pair.execute(side, 'query-migrate');
      await pair.execute(side, 'query-status');
    }
  } finally {
    await stalled?.close();
  }
}

async function waitFor(pair: PlanPair, want: Partial<Record<Side, Pin>>, timeoutMs: number): Promise<void> {
  for (const side of ['source', 'destination'] as const) {
    const status = want[side];
    if (status === undefined || pair.dead.has(side)) continue;
    await pair.waitForStatus(side, status, timeoutMs);
  }
}

function ignoreRefusal(e: unknown): void {
  if (!(e instanceof QmpError)) throw e;
}

async function act(pair: PlanPair, a: PlannedAction, stalled: StalledListener | null, caps: Record<Side, QmpObject>): Promise<void> {
  try {
    switch (a.event) {
      case 'MIGRATE_INCOMING':
        await pair.execute('destination', 'migrate-incoming', { uri: pair.incomingUri, 'exit-on-error': false });
        return;
      case 'MIGRATE':
        await pair.execute('source', 'migrate', { uri: stalled && !a.probe ? (pair.hostUri?.(stalled.port) ?? `tcp:127.0.0.1:${stalled.port}`) : pair.incomingUri });
        return;
      case 'MIGRATE_CONTINUE':
        await pair.execute('source', 'migrate-continue', { state: a.continueState ?? 'pre-switchover' });
        return;
      case 'MIGRATE_CANCEL':
        await pair.execute('source', 'migrate_cancel');
        return;
      case 'STOP':
        await pair.execute(a.side, 'stop');
        return;
      case 'CONT':
        // what the guest is doing just before: query-status is an observation the check narrows on
        await new Promise((r) => setTimeout(r, 200));
        await pair.execute(a.side, 'query-status');
        await pair.execute(a.side, 'cont');
        return;
      case 'NEW_PROCESS':
        if (!pair.newDestination) throw new AdapterError('NEW_PROCESS: this pair cannot start a new destination process');
        await pair.newDestination();
        await pair.execute('destination', 'migrate-set-capabilities', caps.destination);
        return;
      case 'STREAM_BREAKS':
        if (pair.dead.has('destination')) throw new AdapterError('STREAM_BREAKS: the destination is already gone');
        pair.recordFault('kill-destination');
        await pair.kill('destination');
        return;
    }
  } catch (e) {
    // a refusal is an observation like any other: the conformance check judges it
    if (e instanceof QmpError) return;
    throw e;
  }
}
