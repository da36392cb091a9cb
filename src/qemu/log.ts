/**
 * The recorded-run format: one JSON object per line, in time order (both QEMUs merged by timestamp).
 * Every line names its side and is one of five kinds:
 *
 *   event    a QMP event exactly as that QEMU sent it, plus "side":
 *            {"side":"source","event":"MIGRATION","data":{"status":"active"},"timestamp":{"seconds":…,"microseconds":…}}
 *   command  a QMP command the harness sent, with QEMU's reply ("return" or "error"); the migration
 *            commands are the model's controllable actions (migrate → MIGRATE, migrate-incoming →
 *            MIGRATE_INCOMING, migrate-continue → MIGRATE_CONTINUE, migrate_cancel → MIGRATE_CANCEL);
 *            migrate-set-capabilities fixes the model configuration; query-status / query-migrate
 *            replies are observations:
 *            {"side":"source","execute":"migrate","arguments":{"uri":"tcp:127.0.0.1:4444"},"return":{},"timestamp":…}
 *   fault    a fault the harness injected, with the model event it stands for (STREAM_BREAKS):
 *            {"side":"source","fault":"kill-destination","action":"STREAM_BREAKS","timestamp":…}
 *   trace    a QEMU trace event from that QEMU's -trace log (name, argument text):
 *            {"side":"source","trace":"source_return_path_thread_switchover_acked","args":"","timestamp":…}
 *   process  the harness started a QEMU process for that side: its incarnation (0 for the first, one
 *            more for each new process after that; only the destination gets new ones) and whether it
 *            runs with autostart (false: started with -S). A new destination process stands for the
 *            model's NEW_PROCESS: the previous destination QEMU is gone (killed, or killed by the
 *            harness first if it still ran) and a fresh one with the same command line and -incoming
 *            defer listens on a new port; every later destination line is that process's:
 *            {"side":"destination","process":"start","incarnation":1,"autostart":false,"timestamp":…}
 *            A log without an incarnation-0 record for a side had that side start with autostart on.
 *            "devices" (optional) lists the process's VFIO devices by QEMU id, in -device order — the
 *            ids its VFIO_MIGRATION events name (`device-id`) — and fixes how many the model gives it:
 *            {"side":"source","process":"start","incarnation":0,"autostart":true,"devices":["mtty0"],"timestamp":…}
 *
 * The timestamp of an event or trace line is QEMU's (wall clock); a command's or fault's is taken just
 * before it was sent (never later than QEMU's clock, so nothing it causes sorts before it).
 */
import type { QmpObject, QmpValue } from './qmp.js';

export type Side = 'source' | 'destination';

/**
 * A status a runner waits for, or several of which any one will do (an outcome QEMU decides by a
 * race, not a plan: e.g. a cancel with a return path ends 'cancelled' or 'failed').
 */
export type Pin = string | readonly string[];
/** The pin accepts this status. */
export const pinAccepts = (pin: Pin, status: string): boolean => (typeof pin === 'string' ? pin === status : pin.includes(status));
export const SIDES: readonly Side[] = ['source', 'destination'];

export interface Timestamp {
  readonly seconds: number;
  readonly microseconds: number;
}

export interface EventRecord {
  readonly side: Side;
  readonly event: string;
  readonly data: QmpObject;
  readonly timestamp: Timestamp;
}

export interface CommandRecord {
  readonly side: Side;
  readonly execute: string;
  readonly arguments?: QmpObject;
  /** QEMU's `return` value; absent when it answered with an error. */
  readonly return?: QmpValue;
  readonly error?: { readonly class: string; readonly desc: string };
  readonly timestamp: Timestamp;
}

export type FaultKind = 'kill-destination' | 'unreachable-destination';
export const FAULTS: readonly FaultKind[] = ['kill-destination', 'unreachable-destination'];

export interface FaultRecord {
  readonly side: Side;
  readonly fault: FaultKind;
  /** The model event the fault stands for. */
  readonly action: 'STREAM_BREAKS';
  readonly timestamp: Timestamp;
}

export interface TraceRecord {
  readonly side: Side;
  readonly trace: string;
  readonly args: string;
  readonly timestamp: Timestamp;
}

export interface ProcessRecord {
  readonly side: Side;
  readonly process: 'start';
  /** 0 for the side's first process; each new destination process is one more. */
  readonly incarnation: number;
  /** false: QEMU was started with -S (the guest stays paused after an incoming migration until cont). */
  readonly autostart: boolean;
  /** The process's VFIO devices by QEMU id, in -device order (absent: the log does not say). */
  readonly devices?: readonly string[];
  /** Its VFIO devices' x-migration-multifd-transfer (absent: auto, QEMU's default). */
  readonly multifdTransfer?: 'auto' | 'on' | 'off';
  readonly timestamp: Timestamp;
}

export type LogRecord = EventRecord | CommandRecord | FaultRecord | TraceRecord | ProcessRecord;

/** A line that is not a record; `line` is 1-based. */
export class LogFormatError extends Error {
  override readonly name = 'LogFormatError';
  constructor(
    readonly line: number,
    readonly problem: string,
  ) {
    super(`line ${line}: ${problem}`);
  }
}

export const micros = (t: Timestamp): number => t.seconds * 1_000_000 + t.microseconds;
export const timestampOf = (us: number): Timestamp => ({ seconds: Math.floor(us / 1_000_000), microseconds: us % 1_000_000 });

export const isEvent = (r: LogRecord): r is EventRecord => 'event' in r;
export const isCommand = (r: LogRecord): r is CommandRecord => 'execute' in r;
export const isFault = (r: LogRecord): r is FaultRecord => 'fault' in r;
export const isTrace = (r: LogRecord): r is TraceRecord => 'trace' in r;
export const isProcess = (r: LogRecord): r is ProcessRecord => 'process' in r;

/** The records as JSON lines (sorted by timestamp, stable). */
export function formatLog(records: readonly LogRecord[]): string {
  return sortRecords(records).map((r) => JSON.stringify(r)).join('\n') + '\n';
}

export function sortRecords(records: readonly LogRecord[]): LogRecord[] {
  return records
    .map((r, i) => ({ r, i }))
    .sort((a, b) => micros(a.r.timestamp) - micros(b.r.timestamp) || a.i - b.i)
    .map((x) => x.r);
}

/** Parse a log; blank lines are skipped; the first bad line throws LogFormatError. */
export function parseLog(text: string): { records: LogRecord[]; lines: number[] } {
  const records: LogRecord[] = [];
  const lines: number[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    records.push(parseRecord(line, i + 1));
    lines.push(i + 1);
  });
  return { records, lines };
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const KINDS = ['event', 'execute', 'fault', 'trace', 'process'] as const;

export function parseRecord(text: string, line: number): LogRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new LogFormatError(line, `not JSON (${(e as Error).message})`);
  }
  if (!isObject(v)) throw new LogFormatError(line, 'not a JSON object');
  const side = v['side'];
  if (side !== 'source' && side !== 'destination') throw new LogFormatError(line, `"side" must be "source" or "destination", got ${JSON.stringify(side)}`);
  const ts = v['timestamp'];
  if (!isObject(ts) || !Number.isInteger(ts['seconds']) || !Number.isInteger(ts['microseconds'])) {
    throw new LogFormatError(line, '"timestamp" must be {"seconds": integer, "microseconds": integer}');
  }
  const timestamp: Timestamp = { seconds: ts['seconds'] as number, microseconds: ts['microseconds'] as number };
  const kinds = KINDS.filter((k) => k in v);
  if (kinds.length !== 1) {
    throw new LogFormatError(line, `a record has exactly one of "event", "execute", "fault", "trace", "process"${kinds.length > 1 ? `, got ${kinds.join(' and ')}` : ''}`);
  }
  switch (kinds[0]!) {
    case 'event': {
      if (typeof v['event'] !== 'string') throw new LogFormatError(line, '"event" must be a string');
      const data = v['data'] ?? {};
      if (!isObject(data)) throw new LogFormatError(line, '"data" must be an object');
      if (v['event'] === 'MIGRATION' && typeof data['status'] !== 'string') throw new LogFormatError(line, 'a MIGRATION event needs "data": {"status": string}');
      return { side, event: v['event'], data: data as QmpObject, timestamp };
    }
    case 'execute': {
      if (typeof v['execute'] !== 'string') throw new LogFormatError(line, '"execute" must be a string');
      const args = v['arguments'];
      if (args !== undefined && !isObject(args)) throw new LogFormatError(line, '"arguments" must be an object');
      const hasReturn = 'return' in v;
      const err = v['error'];
      if (hasReturn === (err !== undefined)) throw new LogFormatError(line, 'a command has exactly one of "return" and "error"');
      if (err !== undefined && (!isObject(err) || typeof err['class'] !== 'string' || typeof err['desc'] !== 'string')) {
        throw new LogFormatError(line, '"error" must be {"class": string, "desc": string}');
      }
      return {
        side,
        execute: v['execute'],
        ...(args !== undefined ? { arguments: args as QmpObject } : {}),
        ...(hasReturn ? { return: v['return'] as QmpValue } : {}),
        ...(err !== undefined ? { error: err as { class: string; desc: string } } : {}),
        timestamp,
      };
    }
    case 'fault': {
      const fault = v['fault'];
      if (!FAULTS.includes(fault as FaultKind)) throw new LogFormatError(line, `unknown fault ${JSON.stringify(fault)}; valid: ${FAULTS.join(', ')}`);
      if (v['action'] !== 'STREAM_BREAKS') throw new LogFormatError(line, 'a fault needs "action": "STREAM_BREAKS"');
      if (side !== 'source') throw new LogFormatError(line, 'a fault breaks the source\'s stream: "side" must be "source"');
      return { side, fault: fault as FaultKind, action: 'STREAM_BREAKS', timestamp };
    }
    case 'process': {
      if (v['process'] !== 'start') throw new LogFormatError(line, `a process record needs "process": "start", got ${JSON.stringify(v['process'])}`);
      const inc = v['incarnation'];
      if (!Number.isInteger(inc) || (inc as number) < 0) throw new LogFormatError(line, `a process record needs "incarnation": a non-negative integer, got ${JSON.stringify(inc)}`);
      if (typeof v['autostart'] !== 'boolean') throw new LogFormatError(line, `a process record needs "autostart": true or false, got ${JSON.stringify(v['autostart'])}`);
      if (side === 'source' && inc !== 0) throw new LogFormatError(line, 'only the destination gets new processes: a source process record has "incarnation": 0');
      const devices = v['devices'];
      if (devices !== undefined && !(Array.isArray(devices) && devices.every((d) => typeof d === 'string'))) {
        throw new LogFormatError(line, `a process record's "devices" is a list of QEMU device ids, got ${JSON.stringify(devices)}`);
      }
      const transfer = v['multifdTransfer'];
      if (transfer !== undefined && transfer !== 'auto' && transfer !== 'on' && transfer !== 'off') {
        throw new LogFormatError(line, `a process record's "multifdTransfer" is "auto", "on" or "off", got ${JSON.stringify(transfer)}`);
      }
      return {
        side,
        process: 'start',
        incarnation: inc as number,
        autostart: v['autostart'],
        ...(devices !== undefined ? { devices: devices as string[] } : {}),
        ...(transfer !== undefined ? { multifdTransfer: transfer } : {}),
        timestamp,
      };
    }
    case 'trace': {
      if (typeof v['trace'] !== 'string' || typeof (v['args'] ?? '') !== 'string') throw new LogFormatError(line, '"trace" and "args" must be strings');
      return { side, trace: v['trace'], args: (v['args'] as string | undefined) ?? '', timestamp };
    }
  }
}

/**
 * Lines of a QEMU `-trace` log written with `-msg timestamp=on`: `PID@SECONDS.MICROS:name args`.
 * Only the names in `wanted` are kept.
 */
export function parseTraceLog(text: string, side: Side, wanted: ReadonlySet<string>): TraceRecord[] {
  const out: TraceRecord[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+@(\d+)\.(\d{6}):(\S+)\s?(.*)$/.exec(line.trim());
    if (!m || !wanted.has(m[3]!)) continue;
    out.push({ side, trace: m[3]!, args: m[4]!.trim(), timestamp: { seconds: Number(m[1]), microseconds: Number(m[2]) } });
  }
  return out;
}
