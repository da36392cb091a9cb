/**
 * The live monitor: attach to two running QEMU processes as a second QMP client (an orchestrator keeps
 * its own), follow their migration in real time with the model, and report the first divergence or a
 * conforming end. It shares its checker with `conform` (conform.ts `Checker`): what it sees becomes the
 * same observations a recorded run gives (observations.ts), fed one at a time.
 *
 * What a second client sees, and what the monitor does with it:
 *
 *  - QMP events go to every monitor of a QEMU, so MIGRATION, STOP and RESUME arrive as they do for the
 *    orchestrator, each with QEMU's timestamp. The two sockets are merged by those timestamps, each event
 *    held for `settleMs` so that one from the other side with an earlier stamp can still come first (as
 *    `conform` sorts a log; both QEMUs' clocks must agree to better than that: same host, or NTP).
 *  - query-migrate and query-status on both sides at attach, every `pollMs`, and at the end are
 *    observations as in a recorded run. A reply is placed in its side's event order where its value
 *    held: right after that side's latest event with the same value received while it was in flight,
 *    else at the moment it was sent when nothing has changed since, else when it arrived.
 *  - Commands another client sends (migrate, migrate-incoming, migrate-continue, migrate_cancel, stop,
 *    cont) and faults (a broken connection) are not visible to a second client. The checker takes them as
 *    unseen controllable steps (CheckOptions.unseen): as internal steps, under the same rule that a
 *    state may be at most one reported change ahead. So the statuses, their order and the run states are
 *    still checked step by step, but the monitor cannot tell a cancel from a stream break, nor blame a
 *    command QEMU should have refused. New destination processes (NEW_PROCESS, retries) are out of scope:
 *    the monitor follows one migration between the two processes it attached to.
 *  - The configuration comes from QEMU: query-migrate-capabilities on both sides at attach, and again
 *    when the source reports 'setup' (from then on QEMU refuses to change the source's capabilities, and
 *    the destination reads its switchover-ack once the stream starts), derived as `conform` derives it
 *    from migrate-set-capabilities (configOf). What QMP does not show — a destination started with -S,
 *    management stop/cont — comes from flags; flags also override what QEMU reports.
 *  - The monitor sends no migration command. The one change it makes: the `events` capability, which the
 *    model needs (it changes nothing the model has; QEMU then emits MIGRATION events), is turned on on a
 *    side where it is off and no migration runs; a side migrating without it is refused at attach.
 *  - It must attach before the source's migration starts (source status 'none'); the destination may
 *    already listen ('setup').
 *  - A destination whose QMP connection closes is gone (killed, or it exited; the monitor cannot tell):
 *    its reports are no longer waited for (Checker.silence) and the source is followed to its end. The
 *    source's connection closing ends the monitoring (incomplete, unless it diverged or had ended).
 *
 * The documented disagreements (exceptions.ts) are applied as streaming rewrites, in the form for an
 * observer without the commands (UNSEEN_COMMAND_DISAGREEMENTS): the cancel that shuts the return path
 * first is recognised by the source's 'cancelling' instead of the migrate_cancel command.
 *
 * @example
 *   const r = await monitorMigration({ source: '/run/src.qmp', destination: '/run/dst.qmp', onStep: console.log });
 *   r.result.divergence; // null: the migration conformed (r.result.incomplete null too)
 */
import { type Checked, Checker, type ConformResult } from './conform.js';
import { UNSEEN_COMMAND_DISAGREEMENTS } from './exceptions.js';
import { type CommandRecord, type LogRecord, type Side, LogFormatError, SIDES, micros, timestampOf } from './log.js';
import { type ControllableEvent, type ModelConfig, describeConfig, statusGraph } from './model.js';
import { configOf, observationsOf } from './observations.js';
import { type QmpEvent, type QmpObject, type QmpValue, QmpClient, QmpError, eventMicros } from './qmp.js';

/** Flags that override (or add to) the configuration QEMU reports. */
export interface ConfigOverrides {
  /** switchover-ack: on both sides, off, or on one side only. */
  readonly switchoverAck?: 'on' | 'off' | Side;
  readonly pauseBeforeSwitchover?: boolean;
  /** false: the destination QEMU runs with -S (QMP does not show it). */
  readonly destinationAutostart?: boolean;
  /** Someone may send QMP stop/cont (QMP does not show it). */
  readonly management?: boolean;
}

export interface MonitorOptions {
  /** QMP sockets: a unix socket path or tcp:HOST:PORT, one the monitor may use alone. */
  readonly source: string;
  readonly destination: string;
  readonly overrides?: ConfigOverrides;
  /** Give up (incomplete) after this long; default 120 s. */
  readonly timeoutMs?: number;
  /** query-migrate / query-status on both sides this often; default 500 ms. */
  readonly pollMs?: number;
  /** How long an event is held for one from the other side with an earlier stamp; default 100 ms. */
  readonly settleMs?: number;
  /** How long to try each socket; default 3 s. */
  readonly connectTimeoutMs?: number;
  /** Without the documented disagreements. */
  readonly strict?: boolean;
  /** A line for each checked step (with the model state after it), and for what the monitor does. */
  readonly onStep?: (line: string) => void;
}

export interface MonitorResult {
  readonly config: ModelConfig;
  /** Where each part of the configuration came from, in words. */
  readonly configFrom: readonly string[];
  readonly result: ConformResult;
  /** Why the monitor stopped. */
  readonly ended: 'migration-ended' | 'divergence' | 'timeout' | 'connection-closed';
  /** What it saw, in the log format of `conform` (merged order); a divergence's line is a line of this. */
  readonly records: readonly LogRecord[];
  readonly seconds: number;
  readonly qemu: Readonly<Record<Side, string>>;
}

/** The monitor cannot attach or cannot check this migration (bad socket, already migrating, a configuration outside the model). */
export class MonitorError extends Error {
  override readonly name = 'MonitorError';
}

/**
 * The steps a second QMP client cannot see (see the header). MIGRATE_CANCEL covers both of its model
 * steps, the plain one and the return-path-first interleaving that ends 'failed' (machines/qemuSource.ts
 * CANCEL_LOSES_TO_RETURN_PATH_ERROR): conformance maps steps to commands by event type.
 */
export const UNSEEN: readonly ControllableEvent[] = ['MIGRATE', 'MIGRATE_INCOMING', 'MIGRATE_CONTINUE', 'MIGRATE_CANCEL', 'STOP', 'CONT', 'STREAM_BREAKS'];

const ENDED: Readonly<Record<Side, readonly string[]>> = { source: ['completed', 'failed', 'cancelled'], destination: ['completed', 'failed'] };
/** After the source ended, how long to wait for the destination to end too. */
const LINGER_MS = 2000;

interface Seen {
  readonly ts: number;
  readonly status?: string;
  readonly running?: boolean;
}

const GONE = 'closed its QMP connection (the monitor saw it go)';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => Date.now() * 1000;

async function attach(side: Side, path: string, timeoutMs: number): Promise<QmpClient> {
  try {
    return await QmpClient.connect(path, { timeoutMs, commandTimeoutMs: 5000 });
  } catch (e) {
    const why = (e as Error).message.replace(/^QMP [^:]*: /, '');
    const busy = /greeting/.test(why) ? ' (a QEMU -qmp socket serves one client at a time: give the monitor its own -qmp socket)' : '';
    throw new MonitorError(`cannot attach to the ${side}'s QMP socket ${path}: ${why}${busy}`);
  }
}

/** Follow one migration; resolves with the verdict, rejects only with MonitorError (or a QMP failure at attach). */
export async function monitorMigration(opts: MonitorOptions): Promise<MonitorResult> {
  const t0 = performance.now();
  const say = opts.onStep ?? (() => undefined);
  const settle = (opts.settleMs ?? 100) * 1000;
  const pollMs = opts.pollMs ?? 500;
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  const qmp: Partial<Record<Side, QmpClient>> = {};
  try {
    for (const side of SIDES) qmp[side] = await attach(side, side === 'source' ? opts.source : opts.destination, opts.connectTimeoutMs ?? 3000);
    const m = new Live(qmp as Record<Side, QmpClient>, opts, say, settle);
    await m.start();
    let ended: MonitorResult['ended'] = 'timeout';
    let sourceEndedAt: number | null = null;
    let nextPoll = Date.now() + pollMs;
    while (Date.now() < deadline) {
      await sleep(20);
      await new Promise<void>((r) => setImmediate(r)); // let both sockets be read before releasing
      m.watch();
      m.release(false);
      if (m.diverged) {
        ended = 'divergence';
        break;
      }
      if (m.closed) {
        ended = 'connection-closed';
        break;
      }
      if (m.ended('source')) sourceEndedAt ??= Date.now();
      if (sourceEndedAt !== null && (m.ended('destination') || Date.now() - sourceEndedAt > LINGER_MS)) {
        ended = 'migration-ended';
        break;
      }
      if (Date.now() >= nextPoll) {
        nextPoll = Date.now() + pollMs;
        await m.poll();
      }
    }
    if (ended !== 'divergence' && ended !== 'connection-closed') {
      await sleep(150); // late events
      await m.poll();
    }
    await sleep(opts.settleMs ?? 100);
    return { ...m.finish(ended), seconds: (performance.now() - t0) / 1000 };
  } finally {
    for (const side of SIDES) qmp[side]?.destroy();
  }
}

class Live {
  /** Received, not yet released: merged by timestamp once older than the settle window. */
  private pending: { record: LogRecord; seq: number }[] = [];
  private seq = 0;
  private frontier = 0;
  /** Released records, in the order checked (the --log file). */
  private readonly records: LogRecord[] = [];
  /** Made at the first released record, and again when the configuration changes (then fed every record so far). */
  private checker: Checker | null = null;
  private config: ModelConfig | null = null;
  private configFrom: string[] = [];
  private readonly caps: Record<Side, QmpObject | null> = { source: null, destination: null };
  /** Per side, what its events said, in arrival order (for placing query replies). */
  private readonly seen: Record<Side, Seen[]> = { source: [], destination: [] };
  private readonly last: Record<Side, { status: string; running: boolean | null }> = { source: { status: 'none', running: null }, destination: { status: 'none', running: null } };
  /** The last status each side reported, among the released observations. */
  private readonly released: Record<Side, string> = { source: 'none', destination: 'none' };
  /** The source reported 'setup' and its capabilities are being read again: hold the release until then. */
  private configPending = false;
  private reread = false;
  failure: MonitorError | null = null;
  diverged = false;
  /** The source's connection closed: nothing more can be followed. */
  closed = false;
  /** When the destination's connection was seen closed, and after how many released records the checker was told. */
  private destinationGone: number | null = null;
  private silencedAfter: number | null = null;
  readonly qemu: Record<Side, string>;

  constructor(
    private readonly qmp: Record<Side, QmpClient>,
    private readonly opts: MonitorOptions,
    private readonly say: (line: string) => void,
    private readonly settle: number,
  ) {
    this.qemu = { source: version(qmp.source), destination: version(qmp.destination) };
    for (const side of SIDES) qmp[side].onEvent((e) => this.onEvent(side, e));
  }

  async start(): Promise<void> {
    for (const side of SIDES) {
      const list = await this.exec(side, 'query-migrate-capabilities');
      const events = Array.isArray(list) && list.some((c) => (c as QmpObject)['capability'] === 'events' && (c as QmpObject)['state'] === true);
      const status = String(((await this.exec(side, 'query-migrate')) as QmpObject)['status'] ?? 'none');
      if (side === 'source' && status !== 'none') {
        throw new MonitorError(`the source's migration has already started (status '${status}'): attach the monitor before migrate`);
      }
      if (!events) {
        if (['setup', 'active', 'pre-switchover', 'device', 'cancelling'].includes(status)) {
          throw new MonitorError(`the ${side} migrates without the events capability (status '${status}'): the monitor needs MIGRATION events`);
        }
        await this.exec(side, 'migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
        this.say(`  the ${side} had the events capability off: turned it on (it changes nothing in the model)`);
      }
      this.caps[side] = { capabilities: (await this.exec(side, 'query-migrate-capabilities')) as QmpValue[] };
    }
    this.configure('at attach');
    statusGraph(this.config!); // explore now, not while the migration runs
    await this.poll();
    this.say(`  attached: source ${this.opts.source} (QEMU ${this.qemu.source}), destination ${this.opts.destination} (QEMU ${this.qemu.destination}); ${describeConfig(this.config!)}`);
  }

  private exec(side: Side, command: string, args?: QmpObject): Promise<QmpValue> {
    return this.qmp[side].execute(command, args).catch((e: unknown) => {
      if (e instanceof QmpError) throw new MonitorError(`the ${side} refused ${command}: ${e.desc}`);
      throw new MonitorError(`the ${side}: ${command}: ${(e as Error).message}`);
    });
  }

  /** The configuration from the capabilities read last, with the flags over it. */
  private configure(when: string): void {
    const recs: LogRecord[] = SIDES.map((side) => ({ side, execute: 'migrate-set-capabilities', arguments: this.caps[side]!, return: {}, timestamp: timestampOf(0) }) as CommandRecord);
    let read: ModelConfig;
    try {
      read = configOf(recs);
    } catch (e) {
      if (e instanceof LogFormatError) throw new MonitorError(`the capabilities QEMU reports ${when}: ${e.problem}`);
      throw e;
    }
    const o = this.opts.overrides ?? {};
    const from: string[] = [];
    let ack: Pick<ModelConfig, 'ack' | 'oneSide'> = { ack: read.ack, ...(read.oneSide ? { oneSide: read.oneSide } : {}) };
    if (o.switchoverAck !== undefined) {
      ack = o.switchoverAck === 'off' ? { ack: 'off' } : o.switchoverAck === 'on' ? { ack: 'legacy' } : { ack: 'legacy', oneSide: o.switchoverAck };
      from.push('switchover-ack from --switchover-ack');
    } else from.push(`switchover-ack from query-migrate-capabilities ${when}`);
    const pause = o.pauseBeforeSwitchover ?? read.pauseBeforeSwitchover;
    from.push(o.pauseBeforeSwitchover !== undefined ? 'pause-before-switchover from --pause-before-switchover' : `pause-before-switchover from the source's capabilities ${when}`);
    if (o.destinationAutostart === false) from.push('the destination runs with -S (--destination-autostart off)');
    if (o.management) from.push('management stop/cont (--management)');
    this.config = {
      ...ack,
      pauseBeforeSwitchover: pause,
      ...(o.destinationAutostart === false ? { autostart: false } : {}),
      ...(o.management ? { management: true } : {}),
    };
    this.configFrom = from;
  }

  private onEvent(side: Side, e: QmpEvent): void {
    const ts = eventMicros(e);
    if (e.event === 'MIGRATION' && typeof e.data['status'] === 'string') {
      this.seen[side].push({ ts, status: e.data['status'] });
      this.last[side].status = e.data['status'];
      if (side === 'source' && e.data['status'] === 'setup' && !this.reread) {
        this.reread = true;
        this.configPending = true;
        void this.rereadCapabilities().finally(() => (this.configPending = false));
      }
    } else if (e.event === 'STOP' || e.event === 'RESUME') {
      this.seen[side].push({ ts, running: e.event === 'RESUME' });
      this.last[side].running = e.event === 'RESUME';
    } else return;
    this.add({ side, event: e.event, data: e.data, timestamp: e.timestamp });
  }

  /** The source's migration started: its capabilities are fixed now; read both sides' again. */
  private async rereadCapabilities(): Promise<void> {
    try {
      for (const side of SIDES) this.caps[side] = { capabilities: (await this.qmp[side].execute('query-migrate-capabilities')) as QmpValue[] };
      const before = JSON.stringify(this.config);
      this.configure("when the source's migration started");
      if (JSON.stringify(this.config) !== before) {
        this.say(`  the configuration changed before migrate: ${describeConfig(this.config!)}; checking again from the first record`);
        statusGraph(this.config!);
        this.checker = null; // feed() starts a new one and gives it every record so far
      }
    } catch (e) {
      if (e instanceof MonitorError) this.failure = e;
      // a closed connection shows in `closed`
    }
  }

  private add(record: LogRecord): void {
    let r = record;
    if (micros(r.timestamp) <= this.frontier) r = { ...r, timestamp: timestampOf(this.frontier + 1) }; // late: after what was released
    this.pending.push({ record: r, seq: this.seq++ });
  }

  /** query-migrate and query-status on each live side, each reply placed where its value held. */
  async poll(): Promise<void> {
    for (const side of SIDES) {
      if (this.qmp[side].closed) {
        this.watch();
        continue;
      }
      for (const command of ['query-migrate', 'query-status'] as const) {
        const before = this.seen[side].length;
        const atSend = { ...this.last[side] };
        const sent = now();
        let ret: QmpValue;
        try {
          ret = await this.qmp[side].execute(command);
        } catch {
          this.watch();
          continue;
        }
        const got = now();
        const reply = ret as QmpObject;
        const during = this.seen[side].slice(before);
        const matches =
          command === 'query-migrate'
            ? (s: Seen) => s.status !== undefined && s.status === String(reply['status'] ?? 'none')
            : (s: Seen) => s.running !== undefined && s.running === (reply['running'] === true);
        const same = command === 'query-migrate' ? atSend.status === String(reply['status'] ?? 'none') : atSend.running === null || atSend.running === (reply['running'] === true);
        const latest = [...during].reverse().find(matches);
        const ts = latest ? latest.ts + 1 : same ? Math.max(sent, before > 0 ? this.seen[side][before - 1]!.ts + 1 : 0) : got;
        this.add({ side, execute: command, return: ret, timestamp: timestampOf(ts) });
      }
    }
  }

  ended(side: Side): boolean {
    return ENDED[side].includes(this.released[side]) || (side === 'destination' && this.silencedAfter !== null);
  }

  /**
   * A closed connection: the source's ends the monitoring; the destination's means its QEMU is gone
   * (killed, or it exited), so the checker stops waiting for its reports (Checker.silence) from that
   * moment on, and the source is followed to its end (a broken stream fails it: an unseen step).
   */
  watch(): void {
    if (this.qmp.source.closed) this.closed = true;
    if (this.qmp.destination.closed && this.destinationGone === null) {
      this.destinationGone = now();
      this.say("  the destination's QMP connection closed: its QEMU is gone (killed, or it exited); its reports are no longer waited for");
    }
  }

  /** Release what is older than the settle window (everything at the end) to the checker, in timestamp order. */
  release(all: boolean): void {
    if (this.failure) throw this.failure;
    if (!all && this.configPending) return; // until the configuration of this migration is known
    const limit = all ? Infinity : now() - this.settle;
    const ready = this.pending.filter((p) => micros(p.record.timestamp) <= limit);
    if (ready.length === 0) return;
    this.pending = this.pending.filter((p) => micros(p.record.timestamp) > limit);
    ready.sort((a, b) => micros(a.record.timestamp) - micros(b.record.timestamp) || a.seq - b.seq);
    this.frontier = Math.max(this.frontier, micros(ready.at(-1)!.record.timestamp));
    for (const { record } of ready) {
      this.silenceBefore(micros(record.timestamp));
      this.feed(record);
    }
    if (all || (this.destinationGone !== null && this.destinationGone <= limit)) this.silenceBefore(Infinity);
  }

  private silenceBefore(ts: number): void {
    if (this.destinationGone === null || this.silencedAfter !== null || ts <= this.destinationGone) return;
    this.silencedAfter = this.records.length;
    this.checker?.silence('destination', GONE);
  }

  private feed(record: LogRecord): void {
    this.records.push(record);
    if (this.diverged) return;
    const checker = this.checker ?? this.rebuild(this.records.length - 1);
    for (const o of observationsOf([record], [this.records.length])) {
      if (o.kind === 'status') this.released[o.side] = o.status;
      for (const c of checker.push(o)) this.report(checker, c);
    }
  }

  /** A new checker (at the first record, or after a configuration change), given the first n records. */
  private rebuild(n: number): Checker {
    const checker = (this.checker = this.makeChecker());
    this.records.slice(0, n).forEach((r, i) => {
      if (this.silencedAfter === i) checker.silence('destination', GONE);
      for (const o of observationsOf([r], [i + 1])) for (const c of checker.push(o)) this.report(checker, c);
    });
    if (this.silencedAfter !== null && this.silencedAfter >= n) checker.silence('destination', GONE);
    return checker;
  }

  private makeChecker(): Checker {
    return new Checker(this.config!, { unseen: UNSEEN, exceptions: this.opts.strict ? [] : UNSEEN_COMMAND_DISAGREEMENTS });
  }

  private report(checker: Checker, c: Checked): void {
    if (c.divergence) {
      this.diverged = true;
      this.say(`${String(c.step).padStart(4)}  ${c.observation.text}  DIVERGES: the model allowed ${c.divergence.allowed.join('; ')}`);
      return;
    }
    const s = checker.state();
    this.say(`${String(c.step).padStart(4)}  ${c.observation.text}  → model: ${s.where} (${s.states} state${s.states === 1 ? '' : 's'})`);
  }

  finish(ended: MonitorResult['ended']): Omit<MonitorResult, 'seconds'> {
    this.release(true);
    const checker = this.checker ?? this.rebuild(this.records.length);
    const before = checker.verdict().steps;
    const result = checker.end();
    if (result.steps > before) this.say(`  (${result.steps - before} held observation${result.steps - before === 1 ? '' : 's'} checked at the end)`);
    return { config: this.config!, configFrom: this.configFrom, result, ended: result.divergence ? 'divergence' : ended, records: this.records, qemu: this.qemu };
  }
}

function version(c: QmpClient): string {
  const v = c.greeting?.version.qemu;
  return v ? `${v.major}.${v.minor}.${v.micro}` : '?';
}
