/**
 * Two real QEMUs for one migration: a source (guest running) and a destination (`-incoming defer`),
 * tiny TCG VMs without disks, each with a QMP unix socket and a -trace log in a scratch directory.
 * The destination may run with -S (autostart off, as libvirt starts it), and may be replaced by a new
 * process (`newDestination`, the model's NEW_PROCESS): same command line, a new QMP socket, trace log and
 * listening port. Every process start, QMP event, command (with its answer), injected fault and enabled
 * trace event is recorded with its side and wall-clock timestamp. `close()` always kills both process groups and removes the
 * directory; so does process exit (see processes.ts).
 *
 * @example
 *   const pair = await startPair();
 *   try { await pair.execute('destination', 'migrate-incoming', { uri: pair.incomingUri }); … }
 *   finally { const records = await pair.close(); }
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type FaultKind, type LogRecord, type Pin, type Side, SIDES, parseTraceLog, pinAccepts, timestampOf } from './log.js';
import { TRACE_EVENTS } from './observations.js';
import { executeRecorded, faultRecord } from './record.js';
import { type Managed, freePort, makeScratch, removeScratch, startProcess } from './processes.js';
import { type QmpEvent, type QmpObject, type QmpValue, QmpClient, eventMicros } from './qmp.js';

export const QEMU_BINARY = 'qemu-system-x86_64';

export interface PairOptions {
  readonly binary?: string;
  /** Per-command timeout (default 10 s). */
  readonly commandTimeoutMs?: number;
  /** Run the destination with autostart (default true); false starts it with -S, as libvirt does. */
  readonly destinationAutostart?: boolean;
  /**
   * Give each QEMU a second QMP socket for a monitor (`monitorSocket(side)`): a `-qmp unix:…,server=on`
   * socket serves one client at a time, and the harness keeps the first (default false).
   */
  readonly monitorSockets?: boolean;
  /** The scratch directory's name prefix in the temporary directory (default 'qemu-conform-'; a suite that checks for leftovers looks for its own). */
  readonly scratchPrefix?: string;
}

/** The statuses after which a side's migration cannot move any more. */
export const TERMINAL: Readonly<Record<Side, readonly string[]>> = {
  source: ['completed', 'failed', 'cancelled'],
  destination: ['completed', 'failed'],
};

export class HarnessError extends Error {
  override readonly name = 'HarnessError';
}

export class QemuPair {
  private readonly records: LogRecord[] = [];
  private lastStamp = 0;
  private closed = false;
  readonly dead = new Set<Side>();
  /** The last status each side reported in a MIGRATION event. */
  readonly status: Record<Side, string> = { source: 'none', destination: 'none' };

  /** The destination process now running: 0 the first, one more for each newDestination(). */
  private incarnation = 0;
  private readonly binary: string;
  private readonly commandTimeoutMs: number;
  readonly destinationAutostart: boolean;
  private readonly monitorSockets: boolean;

  constructor(
    readonly dir: string,
    private readonly procs: Record<Side, Managed>,
    private readonly qmp: Record<Side, QmpClient>,
    /** A free loopback port for the destination to listen on (a new one for each new destination process). */
    public incomingPort: number,
    opts: PairOptions & { started: number },
  ) {
    this.binary = opts.binary ?? QEMU_BINARY;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 10_000;
    this.destinationAutostart = opts.destinationAutostart ?? true;
    this.monitorSockets = opts.monitorSockets ?? false;
    this.lastStamp = opts.started;
    for (const side of SIDES) {
      this.records.push({ side, process: 'start', incarnation: 0, autostart: side === 'source' || this.destinationAutostart, timestamp: timestampOf(opts.started) });
      qmp[side].onEvent((e) => this.onEvent(side, e));
    }
  }

  /**
   * NEW_PROCESS: replace the destination QEMU by a fresh one with the same command line (-incoming defer,
   * -S when the first had it) listening on a new port; the old one is killed first if it still runs
   * (QEMU started with exit-on-error would have exited by itself after a failed load).
   */
  async newDestination(): Promise<void> {
    if (this.closed) throw new HarnessError('newDestination: the pair is closed');
    this.qmp.destination.destroy();
    await this.procs.destination.kill();
    const incarnation = ++this.incarnation;
    this.records.push({ side: 'destination', process: 'start', incarnation, autostart: this.destinationAutostart, timestamp: timestampOf(this.stamp()) });
    const proc = startProcess(this.binary, qemuArgs(this.dir, 'destination', incarnation, this.destinationAutostart, this.monitorSockets));
    this.procs.destination = proc;
    const client = await connectTo(this.dir, 'destination', incarnation, proc, this.commandTimeoutMs);
    this.qmp.destination = client;
    client.onEvent((e) => this.onEvent('destination', e));
    this.incomingPort = await freePort();
    this.status.destination = 'none';
    this.dead.delete('destination');
  }

  /** The second QMP socket of a side's current process, for a monitor (PairOptions.monitorSockets). */
  monitorSocket(side: Side): string {
    if (!this.monitorSockets) throw new HarnessError('monitorSocket: the pair was started without monitorSockets');
    return join(this.dir, `${fileBase(side, side === 'destination' ? this.incarnation : 0)}.monitor.qmp`);
  }

  get incomingUri(): string {
    return `tcp:127.0.0.1:${this.incomingPort}`;
  }

  private onEvent(side: Side, e: QmpEvent): void {
    this.lastStamp = Math.max(this.lastStamp, eventMicros(e));
    if (e.event === 'MIGRATION' && typeof e.data['status'] === 'string') this.status[side] = e.data['status'];
    this.records.push({ side, event: e.event, data: e.data, timestamp: e.timestamp });
  }

  /**
   * A timestamp for something the harness does now: never later than QEMU's clock (Date.now() is
   * rounded down to the millisecond) and after every event received so far.
   */
  private stamp(): number {
    this.lastStamp = Math.max(this.lastStamp + 1, Date.now() * 1000);
    return this.lastStamp;
  }

  /**
   * Run a QMP command on one side and record it with QEMU's answer; QmpError is recorded and rethrown.
   * `fault`: the command itself injects that fault (e.g. a migrate URI nobody listens on): the fault is
   * recorded as happening right after the command was sent, before anything QEMU reports about it.
   */
  async execute(side: Side, command: string, args?: QmpObject, opts: { fault?: FaultKind } = {}): Promise<QmpValue> {
    return executeRecorded(this.qmp[side], this.records, () => this.stamp(), side, command, args, opts);
  }

  /** Record a fault standing for STREAM_BREAKS (the caller injects it right after). */
  recordFault(fault: FaultKind): void {
    this.records.push(faultRecord(fault, () => this.stamp()));
  }

  /** SIGKILL one QEMU (a fault); its QMP connection closes. */
  async kill(side: Side): Promise<void> {
    this.dead.add(side);
    await this.procs[side].kill();
  }

  /** Wait until `side` reports `status`; fails at once if it reports a terminal status instead. */
  async waitForStatus(side: Side, status: Pin, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const what = `${side} status ${typeof status === 'string' ? `'${status}'` : status.map((s) => `'${s}'`).join(' or ')}`;
    for (;;) {
      const now = this.status[side];
      if (pinAccepts(status, now)) return;
      if (TERMINAL[side].includes(now)) throw new HarnessError(`waiting for ${what}: the ${side} reported '${now}' instead`);
      const left = deadline - Date.now();
      if (left <= 0) throw new HarnessError(`waiting for ${what}: still '${now}' after ${timeoutMs} ms`);
      const client = this.qmp[side];
      try {
        await client.waitForEvent((e) => e.event === 'MIGRATION', { timeoutMs: left, since: client.events.length, what });
      } catch (e) {
        throw new HarnessError(`waiting for ${what}: still '${now}': ${(e as Error).message}`);
      }
    }
  }

  /** Stop both QEMUs, collect the trace logs, remove the scratch directory; returns every record. */
  async close(): Promise<LogRecord[]> {
    if (!this.closed) {
      this.closed = true;
      for (const side of SIDES) this.qmp[side].destroy();
      await Promise.all(SIDES.map((s) => this.procs[s].kill()));
      for (const side of SIDES) {
        for (let inc = 0; inc <= (side === 'destination' ? this.incarnation : 0); inc++) {
          const file = join(this.dir, `${fileBase(side, inc)}.trace`);
          if (existsSync(file)) this.records.push(...parseTraceLog(readFileSync(file, 'utf8'), side, new Set(TRACE_EVENTS[side])));
        }
      }
      removeScratch(this.dir);
    }
    return [...this.records];
  }

  /** What a side wrote on stderr (for error reports). */
  stderr(side: Side): string {
    return this.procs[side].stderr();
  }
}

/** The scratch file name of a side's process (a new destination process gets its own files). */
const fileBase = (side: Side, incarnation: number): string => (incarnation === 0 ? side : `${side}.${incarnation}`);

function qemuArgs(dir: string, side: Side, incarnation: number, autostart: boolean, monitorSocket = false): string[] {
  const base = fileBase(side, incarnation);
  return [
    '-name', side,
    '-nodefaults', '-machine', 'q35', '-m', '64', '-display', 'none', '-accel', 'tcg',
    '-msg', 'timestamp=on',
    '-qmp', `unix:${join(dir, `${base}.qmp`)},server=on,wait=off`,
    ...(monitorSocket ? ['-qmp', `unix:${join(dir, `${base}.monitor.qmp`)},server=on,wait=off`] : []),
    ...TRACE_EVENTS[side].flatMap((t) => ['-trace', `enable=${t}`]),
    '-D', join(dir, `${base}.trace`),
    ...(side === 'destination' ? ['-incoming', 'defer'] : []),
    // -S: autostart off (vl.c); process_incoming_migration_bh then leaves the guest paused until cont
    ...(autostart ? [] : ['-S']),
  ];
}

/** Connect to a just-started QEMU's QMP socket, or fail with its first stderr line if it exits first. */
async function connectTo(dir: string, side: Side, incarnation: number, p: Managed, commandTimeoutMs: number): Promise<QmpClient> {
  const connect = QmpClient.connect(join(dir, `${fileBase(side, incarnation)}.qmp`), { timeoutMs: 15_000, commandTimeoutMs });
  const exited = p.exited.then(({ code, signal }) => {
    throw new HarnessError(`the ${side} QEMU exited (${signal ?? `code ${code}`}) at start: ${p.stderr().trim().split('\n')[0] ?? ''}`);
  });
  exited.catch(() => undefined); // it also settles when the process is killed later on
  return Promise.race([connect, exited]);
}

/** Start a source and a destination QEMU and connect to both; on any failure everything is cleaned up. */
export async function startPair(opts: PairOptions = {}): Promise<QemuPair> {
  const binary = opts.binary ?? QEMU_BINARY;
  const dir = makeScratch(opts.scratchPrefix);
  const procs: Partial<Record<Side, Managed>> = {};
  const qmp: Partial<Record<Side, QmpClient>> = {};
  const started = Date.now() * 1000;
  try {
    for (const side of SIDES) procs[side] = startProcess(binary, qemuArgs(dir, side, 0, side === 'source' || (opts.destinationAutostart ?? true), opts.monitorSockets));
    for (const side of SIDES) qmp[side] = await connectTo(dir, side, 0, procs[side]!, opts.commandTimeoutMs ?? 10_000);
    return new QemuPair(dir, procs as Record<Side, Managed>, qmp as Record<Side, QmpClient>, await freePort(), { ...opts, started });
  } catch (e) {
    for (const side of SIDES) qmp[side]?.destroy();
    await Promise.all(SIDES.map((s) => procs[s]?.kill()));
    removeScratch(dir);
    throw e;
  }
}
