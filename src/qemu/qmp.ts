/**
 * A small QMP client (QEMU Machine Protocol, docs/interop/qmp-spec.rst) over a unix socket (or a TCP
 * address written `tcp:HOST:PORT`, e.g. a QMP listener forwarded out of a VM): the
 * greeting and `qmp_capabilities`, `execute` with a result or a typed error, the asynchronous event
 * stream kept in arrival order with a wait for the first event that matches a predicate, and close.
 * Every wait is bounded: a command, an event wait and the connection each have a timeout.
 *
 * @example
 *   const qmp = await QmpClient.connect('/tmp/x/src.qmp', { timeoutMs: 5000 });
 *   await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
 *   const ev = await qmp.waitForEvent((e) => e.event === 'MIGRATION' && e.data['status'] === 'completed', { timeoutMs: 10_000 });
 *   await qmp.close();
 */
import { createConnection, type Socket } from 'node:net';

/** The JSON values QMP carries. */
export type QmpValue = string | number | boolean | null | QmpValue[] | { [key: string]: QmpValue };
export type QmpObject = { [key: string]: QmpValue };

/** An asynchronous event as QEMU sends it. */
export interface QmpEvent {
  readonly event: string;
  readonly data: QmpObject;
  readonly timestamp: { readonly seconds: number; readonly microseconds: number };
}

export interface QmpGreeting {
  readonly version: { readonly qemu: { readonly major: number; readonly minor: number; readonly micro: number }; readonly package: string };
  readonly capabilities: readonly string[];
}

/** QEMU refused a command: `{"error": {"class": …, "desc": …}}`. */
export class QmpError extends Error {
  override readonly name = 'QmpError';
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`${command}: ${errorClass}: ${desc}`);
  }
}

/** A bounded wait ran out. */
export class QmpTimeoutError extends Error {
  override readonly name = 'QmpTimeoutError';
}

/** The connection closed (or was never opened) while a reply or an event was awaited. */
export class QmpClosedError extends Error {
  override readonly name = 'QmpClosedError';
}

export interface ConnectOptions {
  /** Give up connecting (and on the greeting) after this long; QEMU may still be creating the socket. Default 10 s. */
  readonly timeoutMs?: number;
  /** Default timeout of `execute`. Default 10 s. */
  readonly commandTimeoutMs?: number;
}

interface Pending {
  readonly command: string;
  readonly resolve: (v: QmpValue) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface Waiter {
  readonly pred: (e: QmpEvent) => boolean;
  readonly resolve: (e: QmpEvent) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class QmpClient {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly waiters = new Set<Waiter>();
  private readonly listeners = new Set<(e: QmpEvent) => void>();
  private closedReason: string | null = null;
  /** Every event received so far, in arrival order. */
  readonly events: QmpEvent[] = [];
  greeting: QmpGreeting | null = null;
  private greetingWaiter: { resolve: (g: QmpGreeting) => void; reject: (e: Error) => void } | null = null;

  private constructor(
    private readonly socket: Socket,
    readonly path: string,
    private readonly commandTimeoutMs: number,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (e) => this.shutdown(`socket error: ${e.message}`));
    socket.on('close', () => this.shutdown('connection closed'));
  }

  /**
   * Connect to a QMP unix socket or `tcp:HOST:PORT` (retrying while it does not exist yet or refuses), read the
   * greeting and leave capabilities negotiation mode.
   */
  static async connect(path: string, opts: ConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    let lastError = 'no attempt';
    while (Date.now() < deadline) {
      let socket: Socket;
      try {
        socket = await openSocket(path, Math.max(1, deadline - Date.now()));
      } catch (e) {
        lastError = (e as Error).message;
        await sleep(25);
        continue;
      }
      const client = new QmpClient(socket, path, opts.commandTimeoutMs ?? 10_000);
      try {
        await client.handshake(Math.max(1, deadline - Date.now()));
        return client;
      } catch (e) {
        client.destroy();
        throw e;
      }
    }
    throw new QmpTimeoutError(`QMP ${path}: could not connect within ${timeoutMs} ms (${lastError})`);
  }

  private async handshake(timeoutMs: number): Promise<void> {
    const greeting = await new Promise<QmpGreeting>((resolve, reject) => {
      const timer = setTimeout(() => reject(new QmpTimeoutError(`QMP ${this.path}: no greeting within ${timeoutMs} ms`)), timeoutMs);
      this.greetingWaiter = {
        resolve: (g) => (clearTimeout(timer), resolve(g)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      if (this.greeting) this.greetingWaiter.resolve(this.greeting);
      else if (this.closedReason) this.greetingWaiter.reject(new QmpClosedError(`QMP ${this.path}: ${this.closedReason}`));
    });
    this.greeting = greeting;
    await this.execute('qmp_capabilities', undefined, { timeoutMs });
  }

  /** Run a command; resolves with its `return` value, rejects with QmpError, QmpTimeoutError or QmpClosedError. */
  execute(command: string, args?: QmpObject, opts: { timeoutMs?: number } = {}): Promise<QmpValue> {
    if (this.closedReason) return Promise.reject(new QmpClosedError(`QMP ${this.path}: ${command}: ${this.closedReason}`));
    const id = `c${this.nextId++}`;
    const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs;
    return new Promise<QmpValue>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpTimeoutError(`QMP ${this.path}: ${command}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve, reject, timer });
      const msg: QmpObject = { execute: command, id };
      if (args !== undefined) msg['arguments'] = args;
      this.socket.write(JSON.stringify(msg) + '\n');
    });
  }

  /** Called for every event from now on (in arrival order); returns an unsubscribe function. */
  onEvent(listener: (e: QmpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The first event that matches `pred`, looking first at the events already received from index
   * `since` (default: only events arriving from now on), then waiting at most `timeoutMs`.
   */
  waitForEvent(pred: (e: QmpEvent) => boolean, opts: { timeoutMs: number; since?: number; what?: string }): Promise<QmpEvent> {
    for (let i = opts.since ?? this.events.length; i < this.events.length; i++) {
      const e = this.events[i]!;
      if (pred(e)) return Promise.resolve(e);
    }
    const what = opts.what ?? 'a matching event';
    if (this.closedReason) return Promise.reject(new QmpClosedError(`QMP ${this.path}: waiting for ${what}: ${this.closedReason}`));
    return new Promise<QmpEvent>((resolve, reject) => {
      const waiter: Waiter = {
        pred,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new QmpTimeoutError(`QMP ${this.path}: no ${what} within ${opts.timeoutMs} ms`));
        }, opts.timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  get closed(): boolean {
    return this.closedReason !== null;
  }

  /** Close the connection; every outstanding command and wait is rejected. Waits at most 1 s for the socket. */
  async close(): Promise<void> {
    if (this.socket.destroyed) return this.shutdown('closed by the client');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => (this.socket.destroy(), resolve()), 1000);
      this.socket.end(() => {
        clearTimeout(timer);
        this.socket.destroy();
        resolve();
      });
    });
    this.shutdown('closed by the client');
  }

  /** Close at once, without the orderly end. */
  destroy(): void {
    this.socket.destroy();
    this.shutdown('closed by the client');
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line.length > 0) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: QmpObject;
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      msg = parsed as QmpObject;
    } catch {
      this.shutdown(`malformed QMP message: ${line.slice(0, 120)}`);
      this.socket.destroy();
      return;
    }
    if ('QMP' in msg) {
      const g = msg['QMP'] as unknown as QmpGreeting;
      this.greeting = g;
      this.greetingWaiter?.resolve(g);
      return;
    }
    if (typeof msg['event'] === 'string') {
      const e: QmpEvent = {
        event: msg['event'],
        data: (msg['data'] as QmpObject | undefined) ?? {},
        timestamp: (msg['timestamp'] as unknown as QmpEvent['timestamp'] | undefined) ?? { seconds: 0, microseconds: 0 },
      };
      this.events.push(e);
      for (const l of this.listeners) l(e);
      for (const w of [...this.waiters]) {
        if (w.pred(e)) {
          clearTimeout(w.timer);
          this.waiters.delete(w);
          w.resolve(e);
        }
      }
      return;
    }
    const id = typeof msg['id'] === 'string' ? msg['id'] : null;
    const p = id === null ? undefined : this.pending.get(id);
    if (!p || id === null) return; // a reply nobody waits for (timed out): dropped
    this.pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in msg) {
      const err = msg['error'] as { class?: QmpValue; desc?: QmpValue } | null;
      p.reject(new QmpError(p.command, String(err?.class ?? 'GenericError'), String(err?.desc ?? 'unknown error')));
    } else {
      p.resolve(msg['return'] ?? {});
    }
  }

  private shutdown(reason: string): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    const err = (what: string) => new QmpClosedError(`QMP ${this.path}: ${what}: ${reason}`);
    this.greetingWaiter?.reject(err('greeting'));
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err(p.command));
    }
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(err('waiting for an event'));
    }
    this.waiters.clear();
  }
}

/** The wall-clock time of an event in microseconds since the epoch (QEMU stamps events with g_get_real_time). */
export function eventMicros(e: QmpEvent): number {
  return e.timestamp.seconds * 1_000_000 + e.timestamp.microseconds;
}

/** `tcp:HOST:PORT` as a TCP address; anything else is a unix socket path. */
function tcpAddress(path: string): { host: string; port: number } | null {
  const m = /^tcp:(.+):(\d+)$/.exec(path);
  return m ? { host: m[1]!, port: Number(m[2]) } : null;
}

function openSocket(path: string, timeoutMs: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const tcp = tcpAddress(path);
    const s = tcp ? createConnection(tcp) : createConnection({ path });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new QmpTimeoutError(`connect to ${path} timed out`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.on('error', () => undefined); // until the client's own handler is attached; 'close' follows an error
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    });
  });
}
