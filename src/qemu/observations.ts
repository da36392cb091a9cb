/**
 * What each line of a recorded run tells the conformance check: a status a side reported (MIGRATION
 * event, query-migrate), its guest stopping or resuming (STOP/RESUME events, query-status), a fact only
 * a QEMU trace event shows (mapped to a predicate on the model's context), or a controllable action
 * taken (a migration command with QEMU's answer, or an injected fault). Also the model configuration
 * the capabilities in the log ask for.
 */
import type { QemuDestinationContext } from '../../machines/qemuDestination.js';
import type { QemuSourceContext } from '../../machines/qemuSource.js';
import { type LogRecord, type Side, isCommand, isEvent, isFault, LogFormatError } from './log.js';
import type { ControllableEvent, ModelConfig } from './model.js';

interface Base {
  readonly side: Side;
  /** Index of the record in the log and its 1-based line number. */
  readonly index: number;
  readonly line: number;
  /** What QEMU (or the harness) did, in words. */
  readonly text: string;
}

export type Observation =
  | (Base & { readonly kind: 'status'; readonly status: string })
  | (Base & { readonly kind: 'running'; readonly running: boolean })
  | (Base & { readonly kind: 'runstate'; readonly runstate: string; readonly running: boolean })
  | (Base & { readonly kind: 'fact'; readonly fact: Fact })
  | (Base & { readonly kind: 'action'; readonly event: ControllableEvent; readonly refused: string | null });

/** A fact only a trace event shows, with the model predicate it must satisfy. */
export interface Fact {
  readonly name: string;
  readonly holds: (src: QemuSourceContext, dst: QemuDestinationContext) => boolean;
}

/** Which QMP command is which model action. */
export const COMMAND_ACTIONS: Readonly<Record<string, ControllableEvent>> = {
  migrate: 'MIGRATE',
  'migrate-incoming': 'MIGRATE_INCOMING',
  'migrate-continue': 'MIGRATE_CONTINUE',
  migrate_cancel: 'MIGRATE_CANCEL',
};

/** The trace events the harness enables on each side, and how each one reads as a fact (null: ignored). */
export const TRACE_EVENTS: Readonly<Record<Side, readonly string[]>> = {
  source: ['source_return_path_thread_switchover_acked'],
  destination: ['loadvm_process_command', 'loadvm_state_switchover_ack_needed'],
};

function traceFact(name: string, args: string): Fact | null {
  switch (name) {
    case 'source_return_path_thread_switchover_acked':
      return { name: 'the source received MIG_RP_MSG_SWITCHOVER_ACK', holds: (s) => s.switchoverAcked };
    case 'loadvm_state_switchover_ack_needed': {
      const n = Number(/num=(\d+)/.exec(args)?.[1] ?? NaN);
      return Number.isNaN(n) ? null : { name: `the destination counts ${n} switchover-ack approvals pending`, holds: (_s, d) => d.ackPendingNum === n };
    }
    case 'loadvm_process_command': {
      const com = /com=(\S+)/.exec(args)?.[1];
      if (com === 'OPEN_RETURN_PATH') return { name: 'the destination opened its return path', holds: (_s, d) => d.returnPathOpen };
      if (com === 'SWITCHOVER_START') return { name: 'the destination received MIG_CMD_SWITCHOVER_START', holds: (_s, d) => d.switchoverStarted };
      return null;
    }
    default:
      return null;
  }
}

/** The observations of a log, in log order; `lines[i]` is the line number of record i. */
export function observationsOf(records: readonly LogRecord[], lines?: readonly number[]): Observation[] {
  const out: Observation[] = [];
  records.forEach((r, index) => {
    const base = { side: r.side, index, line: lines?.[index] ?? index + 1 };
    if (isEvent(r)) {
      if (r.event === 'MIGRATION') out.push({ ...base, kind: 'status', status: String(r.data['status']), text: `${r.side} reported status '${String(r.data['status'])}'` });
      else if (r.event === 'STOP') out.push({ ...base, kind: 'running', running: false, text: `${r.side} stopped its guest (STOP)` });
      else if (r.event === 'RESUME') out.push({ ...base, kind: 'running', running: true, text: `${r.side} resumed its guest (RESUME)` });
      return;
    }
    if (isFault(r)) {
      const how = r.fault === 'kill-destination' ? 'the destination QEMU was killed' : 'the migration URI points at a closed port';
      out.push({ ...base, kind: 'action', event: r.action, refused: null, text: `fault: ${how} (STREAM_BREAKS)` });
      return;
    }
    if (isCommand(r)) {
      const action = COMMAND_ACTIONS[r.execute];
      if (action) {
        const refused = r.error ? `${r.error.class}: ${r.error.desc}` : null;
        out.push({ ...base, kind: 'action', event: action, refused, text: `${r.side} ${refused ? 'refused' : 'accepted'} ${r.execute} (${action})${refused ? `: ${refused}` : ''}` });
      } else if (r.execute === 'query-migrate' && r.return !== undefined) {
        const ret = r.return as { status?: unknown };
        const status = typeof ret.status === 'string' ? ret.status : 'none';
        out.push({ ...base, kind: 'status', status, text: `${r.side} query-migrate says '${status}'` });
      } else if (r.execute === 'query-status' && r.return !== undefined) {
        const ret = r.return as { status?: unknown; running?: unknown };
        const runstate = String(ret.status);
        out.push({ ...base, kind: 'runstate', runstate, running: ret.running === true, text: `${r.side} query-status says '${runstate}'` });
      }
      return;
    }
    const fact = traceFact(r.trace, r.args);
    if (fact) out.push({ ...base, kind: 'fact', fact, text: `${r.side} trace ${r.trace}${r.args ? ` ${r.args}` : ''}: ${fact.name}` });
  });
  return out;
}

/**
 * The model configuration the log's migrate-set-capabilities commands ask for (the last setting of each
 * capability on each side wins; commands QEMU refused count for nothing). The model ties return-path
 * to switchover-ack, so a log that sets one without the other cannot be checked.
 */
export function configOf(records: readonly LogRecord[], lines?: readonly number[]): ModelConfig {
  const caps: Record<Side, Map<string, boolean>> = { source: new Map(), destination: new Map() };
  let lastLine: Record<Side, number> = { source: 0, destination: 0 };
  records.forEach((r, i) => {
    if (!isCommand(r) || r.execute !== 'migrate-set-capabilities' || r.error) return;
    const list = r.arguments?.['capabilities'];
    const line = lines?.[i] ?? i + 1;
    if (!Array.isArray(list)) throw new LogFormatError(line, 'migrate-set-capabilities needs "arguments": {"capabilities": [...]}');
    for (const c of list) {
      const cap = c as { capability?: unknown; state?: unknown } | null;
      if (typeof cap?.capability !== 'string' || typeof cap.state !== 'boolean') {
        throw new LogFormatError(line, 'each capability is {"capability": string, "state": boolean}');
      }
      caps[r.side].set(cap.capability, cap.state);
    }
    lastLine = { ...lastLine, [r.side]: line };
  });
  const on = (side: Side, cap: string) => caps[side].get(cap) === true;
  for (const side of ['source', 'destination'] as const) {
    if (on(side, 'return-path') !== on(side, 'switchover-ack')) {
      throw new LogFormatError(lastLine[side], `the ${side} sets return-path ${on(side, 'return-path') ? 'on' : 'off'} and switchover-ack ${on(side, 'switchover-ack') ? 'on' : 'off'}; the model has return-path exactly when switchover-ack is on`);
    }
    for (const cap of ['postcopy-ram', 'multifd', 'background-snapshot', 'x-colo']) {
      if (on(side, cap)) throw new LogFormatError(lastLine[side], `the ${side} enables ${cap}, which the checked model does not cover`);
    }
  }
  const ackSrc = on('source', 'switchover-ack');
  const ackDst = on('destination', 'switchover-ack');
  return {
    ack: ackSrc || ackDst ? 'legacy' : 'off',
    ...(ackSrc !== ackDst ? { oneSide: ackSrc ? ('source' as const) : ('destination' as const) } : {}),
    pauseBeforeSwitchover: on('source', 'pause-before-switchover'),
  };
}
