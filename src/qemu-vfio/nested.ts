/**
 * Real QEMU migrating a real VFIO device: two QEMU 10 processes, a source and a destination
 * (`-incoming defer`), run INSIDE the nested VM that scripts/qemu-vfio-vm.sh builds (a Debian 6.12
 * kernel with vfio, mdev and the kernel's sample mdev driver samples/vfio-mdev/mtty.c, four mtty-2
 * mdevs). Each inner QEMU has one or two mtty devices as
 * `-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/<uuid>,x-device-dirty-page-tracking=off,enable-migration=on,migration-events=on,romfile=`
 * (without dirty tracking off, DMA_LOGGING_REPORT fails with EOPNOTSUPP on this kernel; without
 * enable-migration=on QEMU then blocks the migration; migration-events=on makes QEMU send the
 * VFIO_MIGRATION event from vfio_migration_send_event on every state change vfio_migration_set_state
 * makes, hw/vfio/migration.c).
 *
 * The inner QMP listeners (tcp 4441/4442 in the VM) reach the host through the outer VM's user-mode
 * network (virtio-net, hostfwd to free loopback ports); the host drives them with the same QMP client
 * as src/qemu/harness.ts and records every event and command in the log format of src/qemu/log.ts.
 * The migration stream runs over a unix socket inside the VM.
 *
 * Clocks: QEMU stamps its events with the VM's wall clock. The VM prints its clock on the console every
 * 500 ms (clock-beacon.c); the host keeps max(guest clock - arrival time) over the samples, a lower
 * bound of the offset, and stamps its commands with Date.now() plus that offset — so a command is never
 * stamped later than the VM's clock at the time it was sent, as in harness.ts. Trace lines (-trace, -msg
 * timestamp=on) come over the console too, stamped by the inner QEMU.
 *
 * @example
 *   const pair = await startNestedPair({ devices: { source: 1, destination: 1 } });
 *   try { await pair.execute('destination', 'migrate-incoming', { uri: pair.incomingUri }); … }
 *   finally { const records = await pair.close(); }
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newcArchive } from '../kernel/vm.js';
import { type FaultKind, type LogRecord, type Pin, type Side, SIDES, isFault, isProcess, micros, parseTraceLog, pinAccepts, timestampOf } from '../qemu/log.js';
import { MULTIFD_TRACE_EVENTS, TRACE_EVENTS } from '../qemu/observations.js';
import { executeRecorded, faultRecord } from '../qemu/record.js';
import { freePort, makeScratch, removeScratch } from '../qemu/processes.js';
import { type QmpEvent, type QmpObject, type QmpValue, QmpClient, eventMicros } from '../qemu/qmp.js';
import { groupWatchdog, killGroup } from '../os/watchdog.js';

export const QEMU_BINARY = 'qemu-system-x86_64';
export const BUILD_COMMAND = 'bash scripts/qemu-vfio-vm.sh';
/** The QMP port of each inner QEMU inside the VM. */
const INNER_PORT: Readonly<Record<Side, number>> = { source: 4441, destination: 4442 };
/** Where the destination listens for the migration stream, inside the VM. */
export const NESTED_INCOMING_URI = 'unix:/tmp/migration.sock';

/**
 * The trace events enabled in the inner QEMUs and kept in the log: the harness's own (TRACE_EVENTS)
 * plus the device side: vfio_migration_set_state (every state vfio_migration_set_state sets, with the
 * recover state), loadvm_approve_switchover (the destination's approval of one device's switchover-ack,
 * qemu_loadvm_approve_switchover), savevm_send_switchover_start and migrate_set_state, and the multifd
 * device-state threads' (MULTIFD_TRACE_EVENTS: save thread start/end, buffers received and written,
 * load thread start/end).
 */
export const NESTED_TRACE_EVENTS: Readonly<Record<Side, readonly string[]>> = {
  source: [...TRACE_EVENTS.source, 'vfio_migration_set_state', 'savevm_send_switchover_start', 'migrate_set_state', ...MULTIFD_TRACE_EVENTS.source],
  destination: [...TRACE_EVENTS.destination, 'vfio_migration_set_state', 'loadvm_approve_switchover', 'migrate_set_state', ...MULTIFD_TRACE_EVENTS.destination],
};

/** The statuses after which a side's migration cannot move any more. */
export const TERMINAL: Readonly<Record<Side, readonly string[]>> = {
  source: ['completed', 'failed', 'cancelled'],
  destination: ['completed', 'failed'],
};

export class NestedError extends Error {
  override readonly name = 'NestedError';
}

export interface NestedArtifacts {
  readonly dir: string;
  readonly kernel: string;
  readonly initrd: string;
  /** Four mdev UUIDs: the source takes the first two, the destination the last two. */
  readonly uuids: readonly string[];
  readonly qemu: string;
  readonly stamp: string;
}

export interface NestedOptions {
  /** mtty devices per side (1 or 2; default 1 each). */
  readonly devices?: Readonly<Record<Side, 1 | 2>>;
  /**
   * The mdevs of a new destination process (NEW_PROCESS): 'fresh' (default) the destination's spare
   * mdevs when it has one device (as a new destination host would bring its own), 'reused' the same
   * ones — which the killed process left in RESUMING: mtty_close (samples/vfio-mdev/mtty.c) disables
   * the files but keeps the migration state, and QEMU cannot reset an mdev without a reset mechanism.
   */
  readonly newDestinationMdevs?: 'fresh' | 'reused';
  /** Extra arguments of an inner QEMU (e.g. ['-S'] for a destination started paused). */
  readonly extraArgs?: Partial<Readonly<Record<Side, readonly string[]>>>;
  /** Outer VM memory (default 1024 MiB) and vCPUs (default 2). */
  readonly memoryMb?: number;
  readonly smp?: number;
  /** Inner guest memory (default 32 MiB). */
  readonly innerMemoryMb?: number;
  /** Per-command timeout (default 20 s). */
  readonly commandTimeoutMs?: number;
  /** From starting the VM to both QMP connections (default 120 s). */
  readonly startTimeoutMs?: number;
  /** Hard limit of the VM's lifetime (default 600 s). */
  readonly maxLifetimeMs?: number;
  readonly artifacts?: NestedArtifacts;
  readonly qemu?: string;
  /** Every console line, as it arrives. */
  readonly onConsoleLine?: (line: string) => void;
  /** Run in this already booted VM (startNestedSession) instead of booting one. */
  readonly session?: NestedSession;
}

export interface NestedTiming {
  /** From spawning the VM to its "@@ready" (modules, mdevs, network up). */
  readonly readyMs: number;
  /** From spawning the VM to both inner QMP connections. */
  readonly connectedMs: number;
}

/** The repository this module lives in (src/qemu-vfio/ or dist/src/qemu-vfio/ below it), if any. */
function repoRoot(): string | undefined {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(d, 'scripts', 'qemu-vfio-vm.sh'))) return d;
    d = dirname(d);
  }
  return undefined;
}

/** The directory the build writes: $QEMU_VFIO_VM_DIR, else .cache/qemu-vfio-vm in the repository. */
export function nestedDir(): string {
  const env = process.env['QEMU_VFIO_VM_DIR'];
  if (env) return resolve(env);
  return join(repoRoot() ?? process.cwd(), '.cache', 'qemu-vfio-vm');
}

/** Build the image (cached: a second call prints one line); throws NestedError with the script's last words. */
export function buildNestedImage(): { ms: number; output: string } {
  const root = repoRoot();
  if (!root) throw new NestedError('not in the repository: scripts/qemu-vfio-vm.sh not found');
  const t0 = Date.now();
  const r = spawnSync('bash', [join(root, 'scripts', 'qemu-vfio-vm.sh')], { cwd: root, encoding: 'utf8', timeout: 900_000 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  if (r.error) throw new NestedError(`${BUILD_COMMAND}: ${r.error.message}`);
  if (r.status !== 0) throw new NestedError(`${BUILD_COMMAND} exited ${r.status}: ${output.split('\n').slice(-1)[0] ?? ''}`);
  return { ms: Date.now() - t0, output };
}

/** The built image, or a NestedError naming what is missing and the command that builds it. */
export function nestedArtifacts(dir: string = nestedDir()): NestedArtifacts {
  const manifestFile = join(dir, 'manifest.json');
  if (!existsSync(manifestFile)) throw new NestedError(`no nested VFIO VM in ${dir}: run ${BUILD_COMMAND}`);
  const m = JSON.parse(readFileSync(manifestFile, 'utf8')) as { kernel?: unknown; initrd?: unknown; uuids?: unknown; qemu?: unknown; stamp?: unknown };
  if (typeof m.kernel !== 'string' || typeof m.initrd !== 'string' || !Array.isArray(m.uuids) || m.uuids.length < 4) {
    throw new NestedError(`${manifestFile} is incomplete: run ${BUILD_COMMAND}`);
  }
  const kernel = resolve(dir, m.kernel);
  const initrd = resolve(dir, m.initrd);
  for (const f of [kernel, initrd]) if (!existsSync(f)) throw new NestedError(`${f} is missing: run ${BUILD_COMMAND}`);
  return { dir, kernel, initrd, uuids: m.uuids.map(String), qemu: String(m.qemu ?? ''), stamp: String(m.stamp ?? '') };
}

/** The mdev UUIDs a side's devices use, in device order (ids mtty0, mtty1). */
export function sideUuids(a: NestedArtifacts, side: Side, n: 1 | 2): string[] {
  const first = side === 'source' ? 0 : 2;
  return a.uuids.slice(first, first + n);
}

/** The inner QEMU command line of one side. */
export function innerArgs(side: Side, uuids: readonly string[], opts: { memoryMb?: number; extra?: readonly string[] } = {}): string[] {
  return [
    '-name', side,
    '-nodefaults', '-M', 'pc', '-m', String(opts.memoryMb ?? 32), '-display', 'none',
    '-accel', 'tcg,tb-size=32', '-L', '/usr/share/qemu',
    '-msg', 'timestamp=on',
    '-qmp', `tcp:0.0.0.0:${INNER_PORT[side]},server=on,wait=off`,
    ...uuids.flatMap((u, i) => [
      '-device',
      `vfio-pci,sysfsdev=/sys/bus/mdev/devices/${u},x-device-dirty-page-tracking=off,enable-migration=on,migration-events=on,romfile=,id=mtty${i}`,
    ]),
    ...NESTED_TRACE_EVENTS[side].flatMap((t) => ['-trace', `enable=${t}`]),
    '-D', `/tmp/${side}.trace`,
    ...(side === 'destination' ? ['-incoming', 'defer'] : []),
    ...(opts.extra ?? []),
  ];
}

/**
 * /steps/run.sh: the clock beacon, then both inner QEMUs with their stderr and trace log on the
 * console (prefixed "@@err SIDE " and "@@trace SIDE "; busybox sed writes line by line to the tty) and
 * "@@exit SIDE CODE" when one ends; then it reads commands from the console ("kill SIDE"). The trace
 * log is a regular file followed by `tail -f` (which polls it once a second): QEMU's -D log written
 * into a fifo lost lines in a trial.
 */
export function runScript(args: Readonly<Record<Side, readonly string[]>>, restart: readonly string[] = args.destination): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const lines = ['# generated by src/qemu-vfio/nested.ts', 'clock-beacon 500 &'];
  const start = (side: Side, argv: readonly string[], trace: string) => [
    `touch ${trace}`,
    `tail -f ${trace} | sed 's/^/@@trace ${side} /' &`,
    `(qemu-system-x86_64 ${argv.map(q).join(' ')} 2>&1 & echo $! >/tmp/${side}.pid; wait $!; echo "@@exit ${side} $?") | sed 's/^/@@err ${side} /' &`,
  ];
  for (const side of SIDES) lines.push(...start(side, args[side], `/tmp/${side}.trace`));
  // a new destination process (NEW_PROCESS): the same command line, its trace log in a file of its own
  const again = restart.map((a) => (a === '/tmp/destination.trace' ? '/tmp/destination-1.trace' : a));
  lines.push('restart_destination() {', ...start('destination', again, '/tmp/destination-1.trace').map((l) => `  ${l}`), '}');
  // commands from the host on the console's input: "kill SIDE" SIGKILLs that inner QEMU, "stop SIDE"
  // SIGSTOPs it (it stops reading the stream), "restart destination" starts the new destination process
  lines.push(
    'echo "@@started"',
    'while read -r cmd arg; do',
    '  case "$cmd" in',
    '    kill) kill -9 "$(cat /tmp/$arg.pid)" && echo "@@killed $arg" ;;',
    '    stop) kill -STOP "$(cat /tmp/$arg.pid)" && echo "@@stopped $arg" ;;',
    '    restart) restart_destination && echo "@@restarted $arg" ;;',
    '  esac',
    'done',
    'wait',
    '',
  );
  return lines.join('\n');
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class NestedPair {
  private readonly records: LogRecord[] = [];
  private readonly traceLines: Record<Side, string[]> = { source: [], destination: [] };
  private lastStamp = 0;
  private closed = false;
  readonly dead = new Set<Side>();
  /** Sides whose QMP monitor stopped answering (a command timed out: the main loop is blocked), noted by a scenario. */
  readonly unanswered = new Set<Side>();
  /** The last status each side reported in a MIGRATION event. */
  readonly status: Record<Side, string> = { source: 'none', destination: 'none' };
  /** The last device-state of each VFIO device (by device-id) each side reported in VFIO_MIGRATION. */
  readonly deviceState: Record<Side, Map<string, string>> = { source: new Map(), destination: new Map() };
  readonly incomingUri = NESTED_INCOMING_URI;

  /** @internal use startNestedPair */
  constructor(
    readonly vm: NestedVm,
    private readonly qmp: Record<Side, QmpClient>,
    readonly timing: NestedTiming,
    /** Each side's QEMU: its device ids (-device order) and whether it runs with autostart (no -S). */
    private readonly processes: Readonly<Record<Side, { readonly devices: readonly string[]; readonly autostart: boolean; readonly multifdTransfer?: 'auto' | 'on' | 'off' }>>,
    private readonly hostPorts: Readonly<Record<Side, number>> = { source: 0, destination: 0 },
    private readonly commandTimeoutMs = 20_000,
    /** The console command that starts the new destination process (NEW_PROCESS). */
    private readonly restartCommand = 'restart destination',
    /** The session the VM belongs to: close() then stops only the inner QEMUs. */
    private readonly session: NestedSession | null = null,
  ) {
    for (const side of SIDES) qmp[side].onEvent((e) => this.onEvent(side, e));
    vm.onTrace = (side, line) => this.traceLines[side].push(line);
  }

  private onEvent(side: Side, e: QmpEvent): void {
    this.lastStamp = Math.max(this.lastStamp, eventMicros(e));
    if (e.event === 'MIGRATION' && typeof e.data['status'] === 'string') this.status[side] = e.data['status'];
    if (e.event === 'VFIO_MIGRATION' && typeof e.data['device-state'] === 'string') {
      this.deviceState[side].set(String(e.data['device-id'] ?? e.data['qom-path'] ?? '?'), e.data['device-state']);
    }
    this.records.push({ side, event: e.event, data: e.data, timestamp: e.timestamp });
  }

  /** A timestamp on the VM's clock for something the harness does now (see the header), after every event so far. */
  private stamp(): number {
    this.lastStamp = Math.max(this.lastStamp + 1, Date.now() * 1000 + this.vm.clockOffsetUs());
    return this.lastStamp;
  }

  /** Run a QMP command on one side and record it with QEMU's answer; QmpError is recorded and rethrown. */
  async execute(side: Side, command: string, args?: QmpObject, opts: { fault?: FaultKind } = {}): Promise<QmpValue> {
    return executeRecorded(this.qmp[side], this.records, () => this.stamp(), side, command, args, opts);
  }

  /** Record a fault standing for STREAM_BREAKS (the caller injects it right after). */
  recordFault(fault: FaultKind): void {
    this.records.push(faultRecord(fault, () => this.stamp()));
  }

  /** SIGKILL one inner QEMU (a fault): a command on the VM's console; waits until it has exited. */
  async kill(side: Side): Promise<void> {
    this.dead.add(side);
    await this.vm.killInner(side, 10_000);
  }

  /**
   * SIGSTOP one inner QEMU (timing, not a model action): it stops reading the stream and answering, so
   * the other side waits where it waits for it — e.g. a source in 'device' for the destination's
   * return-path close. Only a kill follows it (QMP of a stopped QEMU does not answer).
   */
  async freeze(side: Side): Promise<void> {
    this.vm.command(`stop ${side}`);
    await this.vm.waitConsole(new RegExp(`@@stopped ${side}`), 10_000);
  }

  private incarnation = 0;

  /**
   * NEW_PROCESS: a fresh destination QEMU with the same command line (the old one killed first if it
   * still runs), its own trace log, the same QMP port forwarded; recorded as a process record.
   */
  async newDestination(): Promise<void> {
    if (this.vm.exits.destination === undefined) await this.vm.killInner('destination', 10_000);
    this.qmp.destination.destroy();
    this.incarnation++;
    delete this.vm.exits.destination;
    const p = this.processes.destination;
    this.records.push({ side: 'destination', process: 'start', incarnation: this.incarnation, autostart: p.autostart, devices: p.devices, ...(p.multifdTransfer ? { multifdTransfer: p.multifdTransfer } : {}), timestamp: timestampOf(this.stamp()) });
    this.vm.command(this.restartCommand);
    this.qmp.destination = await connectForwarded(this.hostPorts.destination, Date.now() + 60_000, this.commandTimeoutMs, this.vm, 'destination');
    this.qmp.destination.onEvent((e) => this.onEvent('destination', e));
    this.dead.delete('destination');
    this.status.destination = 'none';
    this.deviceState.destination.clear();
  }

  /** A migration URI on the host as the inner QEMUs reach it (slirp's gateway is the host's loopback). */
  hostUri(port: number): string {
    return `tcp:10.0.2.2:${port}`;
  }

  /** Wait until `side` reports `status`; fails at once if it reports a terminal status instead. */
  async waitForStatus(side: Side, status: Pin, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const what = `${side} status ${typeof status === 'string' ? `'${status}'` : status.map((s) => `'${s}'`).join(' or ')}`;
    for (;;) {
      const now = this.status[side];
      if (pinAccepts(status, now)) return;
      if (TERMINAL[side].includes(now)) throw new NestedError(`waiting for ${what}: the ${side} reported '${now}' instead`);
      const left = deadline - Date.now();
      if (left <= 0) throw new NestedError(`waiting for ${what}: still '${now}' after ${timeoutMs} ms`);
      const client = this.qmp[side];
      try {
        await client.waitForEvent((e) => e.event === 'MIGRATION', { timeoutMs: left, since: client.events.length, what });
      } catch (e) {
        throw new NestedError(`waiting for ${what}: still '${now}': ${(e as Error).message}${this.vm.lastWords(side)}`);
      }
    }
  }

  /** Wait until one of `statuses` is reported by `side`; returns it. */
  async waitForAny(side: Side, statuses: readonly string[], timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = this.status[side];
      if (statuses.includes(now)) return now;
      const left = deadline - Date.now();
      if (left <= 0) throw new NestedError(`waiting for ${side} status ${statuses.join('/')}: still '${now}' after ${timeoutMs} ms${this.vm.lastWords(side)}`);
      const client = this.qmp[side];
      await client.waitForEvent((e) => e.event === 'MIGRATION', { timeoutMs: left, since: client.events.length, what: `${side} status ${statuses.join('/')}` }).catch(() => undefined);
    }
  }

  /** What an inner QEMU wrote on stderr. */
  stderr(side: Side): string {
    return this.vm.stderr[side].join('\n');
  }

  /** Close both QMP connections, stop the VM, collect the trace lines; returns every record. */
  async close(): Promise<LogRecord[]> {
    if (!this.closed) {
      this.closed = true;
      for (const side of SIDES) this.qmp[side].destroy();
      // the trace lines of the last moments are still on their way: busybox tail -f polls the trace
      // file once a second, and the serial console lags
      await this.vm.consoleCaughtUp(Math.max(this.lastStamp, Date.now() * 1000 + this.vm.clockOffsetUs()) + 1_300_000, 6000);
      if (this.session) {
        for (const side of SIDES) await this.vm.killInner(side, 10_000).catch(() => undefined);
        this.vm.onTrace = null;
        this.session.released();
      } else await this.vm.kill();
      for (const side of SIDES) {
        this.records.push(...parseTraceLog(this.traceLines[side].join('\n'), side, new Set(NESTED_TRACE_EVENTS[side])));
      }
      this.records.splice(0, this.records.length, ...killsAfterLastWords(this.records));
      // each side's process record (its devices and autostart), just before the first line of that side
      for (const side of SIDES) {
        const first = Math.min(...this.records.filter((r) => r.side === side).map((r) => micros(r.timestamp)), this.lastStamp);
        const p = this.processes[side];
        this.records.push({ side, process: 'start', incarnation: 0, autostart: p.autostart, devices: p.devices, ...(p.multifdTransfer ? { multifdTransfer: p.multifdTransfer } : {}), timestamp: timestampOf(first - 1) });
      }
    }
    return [...this.records];
  }
}

/**
 * A kill's fault record is stamped when the harness decides on it, but the SIGKILL travels through the
 * VM's console and the shell first, and the QEMU goes on meanwhile: what it reported until it died
 * carries QEMU's own, later, timestamps. So each kill-destination record is moved to just after the
 * last line the killed process wrote (before the next process record of that side, if any) — where
 * the kill took effect.
 */
export function killsAfterLastWords(records: readonly LogRecord[]): LogRecord[] {
  const out = [...records];
  out.forEach((r, i) => {
    if (!isFault(r) || r.fault !== 'kill-destination') return;
    const at = micros(r.timestamp);
    const next = out.filter((x) => isProcess(x) && x.side === 'destination' && micros(x.timestamp) > at).map((x) => micros(x.timestamp));
    const until = next.length ? Math.min(...next) : Infinity;
    const last = Math.max(at, ...out.filter((x) => x.side === 'destination' && !isFault(x) && !isProcess(x) && micros(x.timestamp) < until).map((x) => micros(x.timestamp)));
    if (last > at) out[i] = { ...r, timestamp: timestampOf(last + 1) };
  });
  return out;
}

/** The outer VM: its process, console parsing, clock samples and the inner QEMUs' stderr. */
export class NestedVm {
  readonly stderr: Record<Side, string[]> = { source: [], destination: [] };
  readonly exits: Partial<Record<Side, number>> = {};
  readonly console: string[] = [];
  onTrace: ((side: Side, line: string) => void) | null = null;
  private offsets: number[] = [];
  private readonly bufferedTrace: { side: Side; line: string }[] = [];
  private readyWaiters: (() => void)[] = [];
  private clockWaiters: (() => void)[] = [];
  /** The VM clock of the last beacon line received. */
  private lastClockUs = 0;
  ready = false;
  fatal: string | null = null;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly child: ChildProcess,
    private readonly onLine?: (line: string) => void,
  ) {
    let pending = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (s: string) => {
      pending += s;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        this.line(pending.slice(0, nl).replace(/\r$/, ''), Date.now() * 1000);
        pending = pending.slice(nl + 1);
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      if (this.console.length < 5000) this.console.push(`[vm stderr] ${s.trim()}`);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: null, signal: null }));
    });
  }

  private line(raw: string, arrivalUs: number): void {
    this.onLine?.(raw);
    this.console.push(raw);
    if (this.console.length > 5000) this.console.splice(0, 1000); // a session's console runs for minutes
    const at = raw.indexOf('@@');
    if (at < 0) return;
    const text = raw.slice(at + 2);
    const m = /^(\w+)(?: (.*))?$/.exec(text);
    if (!m) return;
    const [, kind, rest = ''] = m;
    switch (kind) {
      case 'ready':
        this.ready = true;
        for (const w of this.readyWaiters.splice(0)) w();
        break;
      case 'fatal':
        this.fatal = rest;
        for (const w of this.readyWaiters.splice(0)) w();
        break;
      case 'clock': {
        const c = /^(\d+)\.(\d{6})/.exec(rest);
        if (c) {
          this.lastClockUs = Number(c[1]) * 1_000_000 + Number(c[2]);
          this.offsets.push(this.lastClockUs - arrivalUs);
          for (const w of this.clockWaiters.splice(0)) w();
          if (this.offsets.length > 20) this.offsets.shift();
        }
        break;
      }
      case 'err':
      case 'trace':
      case 'exit': {
        const s = /^(source|destination) ?(.*)$/.exec(rest);
        if (!s) return;
        const side = s[1] as Side;
        if (kind === 'err') {
          const inner = /^@@exit (source|destination) (\d+)/.exec(s[2]!);
          if (inner) this.exits[side] = Number(inner[2]);
          else if (this.stderr[side].length < 2000) this.stderr[side].push(s[2]!);
        } else if (kind === 'trace') {
          if (this.onTrace) this.onTrace(side, s[2]!);
          else this.bufferedTrace.push({ side, line: s[2]! });
        }
        break;
      }
    }
  }

  /** Trace lines that arrived before a pair took over. */
  takeBufferedTrace(): { side: Side; line: string }[] {
    return this.bufferedTrace.splice(0);
  }

  /** max(guest clock - arrival) over the recent samples: a lower bound of the VM clock's offset (0 before any). */
  clockOffsetUs(): number {
    return this.offsets.length ? Math.max(...this.offsets) : 0;
  }

  /**
   * Wait until a beacon line stamped at or after `guestUs` has arrived: the console is one FIFO, so
   * every line written before it (trace lines, stderr) has arrived too. The serial console lags the VM
   * by up to half a second while the inner QEMUs are busy. Gives up silently after `timeoutMs`.
   */
  async consoleCaughtUp(guestUs: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.lastClockUs < guestUs) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await Promise.race([new Promise<void>((r) => this.clockWaiters.push(r)), sleep(left)]);
    }
    return true;
  }

  clockSamples(): number {
    return this.offsets.length;
  }

  waitReady(timeoutMs: number): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new NestedError(`the VM printed no @@ready within ${timeoutMs} ms${this.tail()}`)), timeoutMs);
      this.readyWaiters.push(() => {
        clearTimeout(timer);
        if (this.fatal) reject(new NestedError(`the VM failed at start: ${this.fatal}`));
        else resolve();
      });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new NestedError(`the VM exited (${signal ?? `code ${code}`}) before @@ready${this.tail()}`));
      });
    });
  }

  /** The last console lines, for error messages. */
  tail(n = 3): string {
    const t = this.console.filter((l) => !l.includes('@@clock')).slice(-n);
    return t.length ? `; console: ${t.join(' | ')}` : '';
  }

  /** The inner QEMU's exit and last stderr line, for error messages. */
  lastWords(side: Side): string {
    const parts: string[] = [];
    if (this.exits[side] !== undefined) parts.push(`the ${side} QEMU exited ${this.exits[side]}`);
    const err = this.stderr[side].filter((l) => !/kvmvapic|no available reset mechanism|dirty tracking/.test(l)).slice(-1)[0];
    if (err) parts.push(err);
    return parts.length ? ` (${parts.join(': ')})` : '';
  }

  /** A session's next pair: the inner QEMUs of the last one are gone, their exits, stderr and trace lines forgotten. */
  resetInner(): void {
    for (const side of SIDES) {
      delete this.exits[side];
      this.stderr[side].length = 0;
    }
    this.bufferedTrace.length = 0;
    this.onTrace = null;
  }

  /** A command line on the VM's console (read by /steps/run.sh). */
  command(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }

  /** Wait until a console line matches. */
  async waitConsole(re: RegExp, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.console.some((l) => re.test(l))) {
      if (Date.now() > deadline) throw new NestedError(`no console line ${re} within ${timeoutMs} ms${this.tail()}`);
      await sleep(20);
    }
  }

  /** SIGKILL an inner QEMU through the console ("kill SIDE", read by /steps/run.sh); waits for its @@exit. */
  async killInner(side: Side, timeoutMs: number): Promise<void> {
    if (this.exits[side] !== undefined) return;
    this.child.stdin?.write(`kill ${side}\n`);
    const deadline = Date.now() + timeoutMs;
    while (this.exits[side] === undefined) {
      if (Date.now() > deadline) throw new NestedError(`the ${side} QEMU did not exit within ${timeoutMs} ms of "kill ${side}"${this.tail()}`);
      await sleep(20);
    }
  }

  async kill(): Promise<void> {
    killGroup(this.child);
    await Promise.race([this.exited, sleep(5000)]);
  }
}

/** Connect to a forwarded QMP port: slirp accepts at once and closes while nothing listens in the VM, so retry. */
async function connectForwarded(port: number, deadline: number, commandTimeoutMs: number, vm: NestedVm, side: Side): Promise<QmpClient> {
  let last = 'no attempt';
  while (Date.now() < deadline) {
    if (vm.exits[side] !== undefined) throw new NestedError(`the ${side} QEMU exited at start${vm.lastWords(side)}`);
    try {
      return await QmpClient.connect(`tcp:127.0.0.1:${port}`, { timeoutMs: Math.min(5000, Math.max(1, deadline - Date.now())), commandTimeoutMs });
    } catch (e) {
      last = (e as Error).message;
      await sleep(250);
    }
  }
  throw new NestedError(`the ${side} QEMU's QMP (VM port ${INNER_PORT[side]}, host ${port}) did not answer: ${last}${vm.lastWords(side)}`);
}

/** The inner command lines of a pair: source, destination, and a new destination process. */
function pairArgs(artifacts: NestedArtifacts, opts: NestedOptions): { args: Record<Side, string[]>; restart: string[] } {
  const devices = opts.devices ?? { source: 1, destination: 1 };
  const args: Record<Side, string[]> = {
    source: innerArgs('source', sideUuids(artifacts, 'source', devices.source), { memoryMb: opts.innerMemoryMb, extra: opts.extraArgs?.source }),
    destination: innerArgs('destination', sideUuids(artifacts, 'destination', devices.destination), { memoryMb: opts.innerMemoryMb, extra: opts.extraArgs?.destination }),
  };
  const spare = devices.destination === 1 && (opts.newDestinationMdevs ?? 'fresh') === 'fresh';
  const restart = spare
    ? innerArgs('destination', [artifacts.uuids[3]!], { memoryMb: opts.innerMemoryMb, extra: opts.extraArgs?.destination })
    : args.destination;
  return { args, restart };
}

/**
 * /steps/run.sh of a session VM: no QEMU at boot; each command line it may start is a shell function
 * `start_vN GEN` whose trace log is /tmp/SIDE-GEN.trace, and the console commands are "start vN GEN",
 * "reset GEN" (the trace followers of the last pair stopped, the four mdevs removed and created again:
 * mtty keeps a device's migration state across a close, e.g. RESUMING after a killed destination),
 * "kill SIDE" and "stop SIDE".
 */
export function sessionScript(uuids: readonly string[], variants: readonly { name: string; side: Side; args: readonly string[] }[]): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const lines = ['# generated by src/qemu-vfio/nested.ts (a session)', 'clock-beacon 500 &', ': >/tmp/tails'];
  for (const v of variants) {
    const trace = `/tmp/${v.side}-$1.trace`;
    const argv = v.args.map((a) => (a === `/tmp/${v.side}.trace` || a === '/tmp/destination-1.trace' ? `"${trace}"` : q(a))).join(' ');
    lines.push(
      `start_${v.name}() {`,
      `  touch "${trace}"`,
      `  tail -f "${trace}" | sed 's/^/@@trace ${v.side} /' &`,
      '  echo $! >>/tmp/tails',
      `  (qemu-system-x86_64 ${argv} 2>&1 & echo $! >/tmp/${v.side}.pid; wait $!; echo "@@exit ${v.side} $?") | sed 's/^/@@err ${v.side} /' &`,
      '}',
    );
  }
  lines.push(
    'types=/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2',
    `reset_mdevs() { for u in ${uuids.join(' ')}; do echo 1 >/sys/bus/mdev/devices/$u/remove && echo $u >$types/create || return 1; done; }`,
    'echo "@@started"',
    'while read -r cmd arg gen; do',
    '  case "$cmd" in',
    '    kill) kill -9 "$(cat /tmp/$arg.pid)" && echo "@@killed $arg" ;;',
    '    stop) kill -STOP "$(cat /tmp/$arg.pid)" && echo "@@stopped $arg" ;;',
    '    start) start_$arg "$gen" && echo "@@launched $arg $gen" ;;',
    '    reset) kill $(cat /tmp/tails) 2>/dev/null; : >/tmp/tails; reset_mdevs && echo "@@reset $arg" || echo "@@resetfailed $arg" ;;',
    '  esac',
    'done',
    'wait',
    '',
  );
  return lines.join('\n');
}

/**
 * One booted VM for many pairs, one after the other (the suite's scenarios): each pair resets the mdevs
 * and starts its two QEMUs by console command; closing a pair kills its QEMUs, not the VM. The command
 * lines every pair may need are fixed at boot (`plans`).
 */
export class NestedSession {
  private gen = 0;
  private busy = false;
  /** @internal use startNestedSession */
  constructor(
    readonly vm: NestedVm,
    readonly ports: Readonly<Record<Side, number>>,
    readonly artifacts: NestedArtifacts,
    private readonly variants: ReadonlyMap<string, string>,
    readonly bootMs: number,
  ) {}

  private name(args: readonly string[]): string {
    const n = this.variants.get(JSON.stringify(args));
    if (!n) throw new NestedError(`this session was not booted for the command line ${args.join(' ')}`);
    return n;
  }

  /** A fresh pair in this VM (the previous one must be closed). */
  async pair(opts: NestedOptions): Promise<NestedPair> {
    if (this.busy) throw new NestedError('a session runs one pair at a time: close the last one first');
    this.busy = true;
    const t0 = Date.now();
    const { args, restart } = pairArgs(this.artifacts, opts);
    const gen = ++this.gen;
    this.vm.command(`reset ${gen}`);
    await this.vm.waitConsole(new RegExp(`@@reset(failed)? ${gen}$`), 20_000);
    if (this.vm.console.some((l) => l.endsWith(`@@resetfailed ${gen}`))) throw new NestedError(`the mdevs could not be created again${this.vm.tail()}`);
    this.vm.resetInner();
    const qmp: Partial<Record<Side, QmpClient>> = {};
    try {
      for (const side of SIDES) this.vm.command(`start ${this.name(args[side])} ${gen}`);
      const deadline = Date.now() + (opts.startTimeoutMs ?? 120_000);
      for (const side of SIDES) qmp[side] = await connectForwarded(this.ports[side], deadline, opts.commandTimeoutMs ?? 20_000, this.vm, side);
      const pair = new NestedPair(
        this.vm,
        qmp as Record<Side, QmpClient>,
        { readyMs: 0, connectedMs: Date.now() - t0 },
        processesOf(opts),
        this.ports,
        opts.commandTimeoutMs ?? 20_000,
        `start ${this.name(restart)} ${gen}b`,
        this,
      );
      for (const { side, line } of this.vm.takeBufferedTrace()) this.vm.onTrace?.(side, line);
      return pair;
    } catch (e) {
      for (const side of SIDES) qmp[side]?.destroy();
      for (const side of SIDES) await this.vm.killInner(side, 10_000).catch(() => undefined);
      this.busy = false;
      throw e;
    }
  }

  /** @internal a pair of this session was closed */
  released(): void {
    this.busy = false;
  }

  async close(): Promise<void> {
    await this.vm.kill();
  }
}

type ProcessInfo = { devices: string[]; autostart: boolean; multifdTransfer?: 'auto' | 'on' | 'off' };

function processesOf(opts: NestedOptions): Record<Side, ProcessInfo> {
  const devices = opts.devices ?? { source: 1, destination: 1 };
  return Object.fromEntries(
    SIDES.map((side) => {
      const extra = opts.extraArgs?.[side] ?? [];
      // -global vfio-pci.x-migration-multifd-transfer=X (the property of every VFIO device of the process)
      const transfer = extra.map((a) => /^vfio-pci\.x-migration-multifd-transfer=(auto|on|off)$/.exec(a)?.[1]).find((x) => x !== undefined) as ProcessInfo['multifdTransfer'];
      const info: ProcessInfo = { devices: Array.from({ length: devices[side] }, (_, i) => `mtty${i}`), autostart: !extra.includes('-S'), ...(transfer ? { multifdTransfer: transfer } : {}) };
      return [side, info];
    }),
  ) as Record<Side, ProcessInfo>;
}

/** Spawn the outer VM with /steps/run.sh = `script` and wait for its @@ready; the VM and when it was spawned. */
async function bootVm(opts: NestedOptions, artifacts: NestedArtifacts, script: string, ports: Readonly<Record<Side, number>>): Promise<{ vm: NestedVm; t0: number }> {
  const scratch = makeScratch('qemu-vfio-');
  const initrd = join(scratch, 'initrd');
  writeFileSync(initrd, Buffer.concat([newcArchive([{ path: 'steps', dir: true }, { path: 'steps/run.sh', data: Buffer.from(script) }]), readFileSync(artifacts.initrd)]));
  const hostfwd = SIDES.map((s) => `hostfwd=tcp:127.0.0.1:${ports[s]}-:${INNER_PORT[s]}`).join(',');
  const vmArgs = [
    '-M', 'pc', '-accel', 'tcg', '-smp', String(opts.smp ?? 2), '-m', String(opts.memoryMb ?? 1024),
    '-kernel', artifacts.kernel, '-initrd', initrd,
    '-append', 'console=ttyS0 quiet panic=-1',
    '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio', '-display', 'none',
    '-netdev', `user,id=n0,${hostfwd}`, '-device', 'virtio-net-pci,netdev=n0,romfile=',
  ];
  const t0 = Date.now();
  // stdin: the VM's serial input, for the console commands
  const child = spawn(opts.qemu ?? QEMU_BINARY, vmArgs, { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin?.on('error', () => undefined);
  child.on('error', () => undefined);
  if (child.pid === undefined) {
    removeScratch(scratch);
    throw new NestedError(`could not start ${opts.qemu ?? QEMU_BINARY}`);
  }
  groupWatchdog(child.pid, opts.maxLifetimeMs ?? 600_000);
  const vm = new NestedVm(child, opts.onConsoleLine);
  try {
    await vm.waitReady(t0 + (opts.startTimeoutMs ?? 120_000) - Date.now());
    return { vm, t0 };
  } catch (e) {
    await vm.kill();
    throw e;
  } finally {
    removeScratch(scratch); // the kernel has unpacked the initrd (or the VM is gone)
  }
}

/**
 * Boot one VM for every pair in `plans` (their devices, extra arguments, new-process mdevs), to be
 * opened one after the other with `{ session }` in startNestedPair. `opts` sets the VM (memory, vCPUs,
 * lifetime: default 1800 s) and the inner guests' memory.
 */
export async function startNestedSession(plans: readonly NestedOptions[], opts: NestedOptions = {}): Promise<NestedSession> {
  const artifacts = opts.artifacts ?? nestedArtifacts();
  const variants = new Map<string, string>();
  const list: { name: string; side: Side; args: readonly string[] }[] = [];
  const add = (side: Side, args: readonly string[]) => {
    const key = JSON.stringify(args);
    if (variants.has(key)) return;
    const name = `v${variants.size}`;
    variants.set(key, name);
    list.push({ name, side, args });
  };
  for (const p of plans) {
    const { args, restart } = pairArgs(artifacts, { ...p, innerMemoryMb: opts.innerMemoryMb });
    add('source', args.source);
    add('destination', args.destination);
    add('destination', restart);
  }
  const ports: Record<Side, number> = { source: await freePort(), destination: await freePort() };
  const { vm, t0 } = await bootVm({ ...opts, maxLifetimeMs: opts.maxLifetimeMs ?? 1_800_000 }, artifacts, sessionScript(artifacts.uuids, list), ports);
  await vm.waitConsole(/@@started/, 30_000);
  return new NestedSession(vm, ports, artifacts, variants, Date.now() - t0);
}

/** Boot the nested VM with a source and a destination QEMU and connect to both (or open the next pair of a session); on any failure everything is stopped. */
export async function startNestedPair(opts: NestedOptions = {}): Promise<NestedPair> {
  if (opts.session) return opts.session.pair(opts);
  const artifacts = opts.artifacts ?? nestedArtifacts();
  const { args, restart } = pairArgs(artifacts, opts);
  const ports: Record<Side, number> = { source: await freePort(), destination: await freePort() };
  const { vm, t0 } = await bootVm(opts, artifacts, runScript(args, restart), ports);
  const qmp: Partial<Record<Side, QmpClient>> = {};
  try {
    const deadline = t0 + (opts.startTimeoutMs ?? 120_000);
    const readyMs = Date.now() - t0;
    for (const side of SIDES) qmp[side] = await connectForwarded(ports[side], deadline, opts.commandTimeoutMs ?? 20_000, vm, side);
    const pair = new NestedPair(vm, qmp as Record<Side, QmpClient>, { readyMs, connectedMs: Date.now() - t0 }, processesOf(opts), ports, opts.commandTimeoutMs ?? 20_000);
    for (const { side, line } of vm.takeBufferedTrace()) vm.onTrace?.(side, line);
    return pair;
  } catch (e) {
    for (const side of SIDES) qmp[side]?.destroy();
    await vm.kill();
    throw e;
  }
}
