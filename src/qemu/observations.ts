/**
 * What each line of a recorded run tells the conformance check: a status a side reported (MIGRATION
 * event, query-migrate), its guest stopping or resuming (STOP/RESUME events, query-status), a fact only
 * a QEMU trace event shows (mapped to a predicate on the model's context), or a controllable action
 * taken (a migration command or stop/cont with QEMU's answer, an injected fault, or a new destination
 * process — NEW_PROCESS, from a process record with incarnation ≥ 1). Also the model configuration the
 * log asks for: the capabilities, autostart from the destination's process records (-S), management
 * stop/cont when the log has such a command, and the retries its new processes and migrate commands need.
 * A VFIO_MIGRATION event is the new state QEMU tracks for one of its devices (QapiVfioMigrationState,
 * qapi/vfio.json), and the devices each side has (logDevices) are part of the configuration.
 */
import type { QemuDestinationContext } from '../../machines/qemuDestination.js';
import type { QemuSourceContext } from '../../machines/qemuSource.js';
import { MAX_MULTIFD_CHANNELS } from '../../machines/migrationMessages.js';
import { type CommandRecord, type LogRecord, type Side, isCommand, isEvent, isFault, isProcess, isTrace, LogFormatError } from './log.js';
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
  /** A VFIO_MIGRATION event: device `device` (its index on its side, -1 if the log does not list it) now is in `state`. */
  | (Base & { readonly kind: 'device'; readonly device: number; readonly id: string; readonly state: string })
  | (Base & {
      readonly kind: 'action';
      readonly event: ControllableEvent;
      readonly refused: string | null;
      /** migrate-continue: its `state` argument (null when the command had none). */
      readonly continueState?: string | null;
      /** The fault killed this side's QEMU: it reports nothing from here on. */
      readonly kills?: Side;
      /** NEW_PROCESS: this side has a fresh QEMU from here on (it reports again, from its initial state). */
      readonly revives?: Side;
    })
  /**
   * migrate-set-capabilities with QEMU's answer. `invalid` names the rule of migrate_caps_check the
   * resulting set breaks (QEMU must refuse it); `covered` is false when the command touches a
   * capability outside MODELLED_CAPABILITIES (a refusal may then follow a rule the checker lacks).
   */
  | (Base & { readonly kind: 'capabilities'; readonly refused: string | null; readonly invalid: string | null; readonly covered: boolean });

/** The capabilities the checked model's configuration is made of (plus `events`, which changes nothing modelled). */
export const MODELLED_CAPABILITIES: readonly string[] = ['events', 'return-path', 'switchover-ack', 'pause-before-switchover', 'multifd'];

/** QEMU's default multifd-channels (migration/options.c DEFAULT_MIGRATE_MULTIFD_CHANNELS). */
export const DEFAULT_MULTIFD_CHANNELS = 2;

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
  // QMP stop / cont: qmp_stop → vm_stop(RUN_STATE_PAUSED), qmp_cont → vm_start, or only autostart = true
  // while an incoming migration runs (monitor/qmp-cmds.c); the model's STOP (source) and CONT (either side)
  stop: 'STOP',
  cont: 'CONT',
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
    // multifd device-state transfer (hw/vfio/migration-multifd.c; enabled by the nested harness)
    case 'vfio_save_complete_precopy_thread_start':
      return { name: "a device's multifd save thread runs", holds: (s) => (s.multifd?.threads ?? []).some((t) => t.state !== 'idle') };
    case 'vfio_save_complete_precopy_thread_end':
      return { name: "a device's multifd save thread returned", holds: (s) => (s.multifd?.threads ?? []).some((t) => t.state === 'done' || t.state === 'failed') };
    case 'vfio_load_state_device_buffer_incoming': {
      const idx = Number(/idx (\d+)/.exec(args)?.[1] ?? NaN);
      if (Number.isNaN(idx)) return null;
      return {
        // traced as the receive thread takes the packet: stored, and not yet written by the load thread
        name: `the destination stored device-state buffer ${idx}, not yet written`,
        holds: (_s, d) => (d.multifd?.loads ?? []).some((l) => typeof l.context.bufs[idx] === 'number' || l.state === 'failed'),
      };
    }
    case 'vfio_load_bufs_thread_start':
      return { name: "a device's multifd load thread runs", holds: (_s, d) => (d.multifd?.loads ?? []).some((l) => l.state !== 'queuing') };
    case 'vfio_load_state_device_buffer_load_end': {
      const idx = Number(/idx (\d+)/.exec(args)?.[1] ?? NaN);
      if (Number.isNaN(idx)) return null;
      return { name: `the destination wrote device-state buffer ${idx} into the device`, holds: (_s, d) => (d.multifd?.loads ?? []).some((l) => l.context.loadIdx > idx) };
    }
    case 'vfio_load_bufs_thread_end':
      return { name: "a device's multifd load thread exited", holds: (_s, d) => (d.multifd?.loads ?? []).some((l) => l.state !== 'queuing' && l.state !== 'loading') };
    default:
      return null;
  }
}

/** The multifd trace events (the nested harness enables them on its QEMUs with VFIO devices). */
export const MULTIFD_TRACE_EVENTS: Readonly<Record<Side, readonly string[]>> = {
  source: ['vfio_save_complete_precopy_thread_start', 'vfio_save_complete_precopy_thread_end'],
  destination: ['vfio_load_state_device_buffer_incoming', 'vfio_load_bufs_thread_start', 'vfio_load_state_device_buffer_load_end', 'vfio_load_bufs_thread_end'],
};

/** The capability list of a migrate-set-capabilities record, checked; `line` names it in errors. */
function capabilityList(r: CommandRecord, line: number): [string, boolean][] {
  const list = r.arguments?.['capabilities'];
  if (!Array.isArray(list)) throw new LogFormatError(line, 'migrate-set-capabilities needs "arguments": {"capabilities": [...]}');
  return list.map((c) => {
    const cap = c as { capability?: unknown; state?: unknown } | null;
    if (typeof cap?.capability !== 'string' || typeof cap.state !== 'boolean') {
      throw new LogFormatError(line, 'each capability is {"capability": string, "state": boolean}');
    }
    return [cap.capability, cap.state];
  });
}

/**
 * The rule of migrate_caps_check (migration/options.c) a capability set breaks, among those the model's
 * capabilities touch: switchover-ack needs return-path ("Capability 'switchover-ack' requires capability
 * 'return-path'"). null when the set is valid.
 */
function capsRuleBroken(caps: ReadonlyMap<string, boolean>): string | null {
  return caps.get('switchover-ack') === true && caps.get('return-path') !== true ? 'switchover-ack requires return-path (migrate_caps_check)' : null;
}

/** The QEMU id a VFIO_MIGRATION event names (device-id, else its QOM path). */
const deviceIdOf = (data: Readonly<Record<string, unknown>>): string => String(data['device-id'] ?? data['qom-path'] ?? '?');

/**
 * Each side's VFIO devices, in QEMU's order: the `devices` of its first process record that lists them;
 * else (logs recorded before process records said so) the ids its VFIO_MIGRATION events name, in natural
 * order (mtty0 < mtty1 < mtty10; the nested harness gives ids in -device order), and at least as many
 * devices as distinct mdev UUIDs its `vfio_migration_set_state` trace lines name (a device QEMU set to
 * RUNNING at start but never migrated sends no event the harness receives).
 */
export function logDevices(records: readonly LogRecord[]): Record<Side, string[]> {
  const out: Record<Side, string[]> = { source: [], destination: [] };
  for (const side of ['source', 'destination'] as const) {
    const listed = records.find((r) => isProcess(r) && r.side === side && r.devices !== undefined);
    if (listed && isProcess(listed)) {
      out[side] = [...listed.devices!];
      continue;
    }
    const ids = new Set<string>();
    const uuids = new Set<string>();
    for (const r of records) {
      if (r.side !== side) continue;
      if (isEvent(r) && r.event === 'VFIO_MIGRATION') ids.add(deviceIdOf(r.data));
      if (isTrace(r) && r.trace === 'vfio_migration_set_state') {
        const u = /^\(([^)]+)\)/.exec(r.args)?.[1];
        if (u) uuids.add(u);
      }
    }
    const list = [...ids].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    for (let i = list.length; i < uuids.size; i++) list.push(`unnamed device ${i}`);
    out[side] = list;
  }
  return out;
}

/** The observations of a log, in log order; `lines[i]` is the line number of record i. */
export function observationsOf(records: readonly LogRecord[], lines?: readonly number[]): Observation[] {
  const out: Observation[] = [];
  const devices = logDevices(records);
  // what each side has accepted so far (QEMU applies a migrate-set-capabilities command whole or not at all)
  const caps: Record<Side, Map<string, boolean>> = { source: new Map(), destination: new Map() };
  const incarnation: Record<Side, number> = { source: 0, destination: 0 };
  records.forEach((r, index) => {
    const base = { side: r.side, index, line: lines?.[index] ?? index + 1 };
    if (isProcess(r)) {
      const want = incarnation[r.side] + (r.incarnation === 0 ? 0 : 1);
      if (r.incarnation !== want || (r.incarnation === 0 && index !== records.findIndex((x) => x.side === r.side))) {
        throw new LogFormatError(base.line, `the ${r.side}'s process incarnation ${r.incarnation} is out of order: 0 comes before any other ${r.side} line, then each new process is one more (expected ${incarnation[r.side] + 1})`);
      }
      incarnation[r.side] = r.incarnation;
      if (r.incarnation === 0) return;
      caps[r.side] = new Map(); // a fresh QEMU starts with every capability off
      out.push({
        ...base,
        kind: 'action',
        event: 'NEW_PROCESS',
        refused: null,
        revives: r.side,
        text: `a new ${r.side} QEMU process (incarnation ${r.incarnation}${r.autostart ? '' : ', -S'}) was started (NEW_PROCESS)`,
      });
      return;
    }
    if (isEvent(r)) {
      if (r.event === 'MIGRATION') out.push({ ...base, kind: 'status', status: String(r.data['status']), text: `${r.side} reported status '${String(r.data['status'])}'` });
      else if (r.event === 'STOP') out.push({ ...base, kind: 'running', running: false, text: `${r.side} stopped its guest (STOP)` });
      else if (r.event === 'RESUME') out.push({ ...base, kind: 'running', running: true, text: `${r.side} resumed its guest (RESUME)` });
      else if (r.event === 'VFIO_MIGRATION') {
        const id = deviceIdOf(r.data);
        const state = String(r.data['device-state']);
        out.push({ ...base, kind: 'device', device: devices[r.side].indexOf(id), id, state, text: `${r.side} device ${id} reported '${state}' (VFIO_MIGRATION)` });
      }
      return;
    }
    if (isFault(r)) {
      const kill = r.fault === 'kill-destination';
      const how = kill ? 'the destination QEMU was killed' : 'the migration URI points at a closed port';
      out.push({ ...base, kind: 'action', event: r.action, refused: null, ...(kill ? { kills: 'destination' as const } : {}), text: `fault: ${how} (STREAM_BREAKS)` });
      return;
    }
    if (isCommand(r)) {
      const action = COMMAND_ACTIONS[r.execute];
      const refused = r.error ? `${r.error.class}: ${r.error.desc}` : null;
      if (r.execute === 'migrate-set-capabilities') {
        const list = capabilityList(r, base.line);
        const next = new Map([...caps[r.side], ...list]);
        if (!refused) caps[r.side] = next;
        const names = list.map(([c, on]) => `${c} ${on ? 'on' : 'off'}`).join(', ');
        out.push({
          ...base,
          kind: 'capabilities',
          refused,
          invalid: capsRuleBroken(next),
          covered: list.every(([c]) => MODELLED_CAPABILITIES.includes(c)),
          text: `${r.side} ${refused ? 'refused' : 'accepted'} migrate-set-capabilities (${names})${refused ? `: ${refused}` : ''}`,
        });
      } else if (action) {
        let continueState: string | null | undefined;
        let shown = r.execute;
        if (action === 'MIGRATE_CONTINUE') {
          const st = r.arguments?.['state'];
          continueState = typeof st === 'string' ? st : null;
          // QAPI makes `state` mandatory: QEMU cannot have accepted the command without it
          if (continueState === null && !refused) throw new LogFormatError(base.line, 'an accepted migrate-continue needs "arguments": {"state": string}');
          if (continueState !== null) shown = `${r.execute} {state: '${continueState}'}`;
        }
        out.push({
          ...base,
          kind: 'action',
          event: action,
          refused,
          ...(continueState !== undefined ? { continueState } : {}),
          text: `${r.side} ${refused ? 'refused' : 'accepted'} ${shown} (${action})${refused ? `: ${refused}` : ''}`,
        });
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

/** The QMP command that starts each side's migration: its capabilities then are the ones that count. */
const STARTS: Readonly<Record<Side, string>> = { source: 'migrate', destination: 'migrate-incoming' };
/**
 * Capabilities whose change after a side's migration started the model cannot follow: the destination
 * accepts changes during an incoming migration (QEMU's check looks at the outgoing status) and reads
 * switchover-ack once the stream has begun (qemu_loadvm_state, migration/savevm.c); its return-path and
 * pause-before-switchover do nothing there. The source refuses changes while it migrates (the check
 * judges that) and a change after its end does not touch this migration.
 */
const CHANGES_AFTER_START: Readonly<Record<Side, readonly string[]>> = { source: [], destination: ['switchover-ack'] };

/**
 * The model configuration from what QEMU accepted: each side's capabilities when its migration started
 * (its first accepted migrate / migrate-incoming). A refused migrate-set-capabilities sets nothing — QEMU
 * applies a command whole or not at all (qmp_migrate_set_capabilities, migration/options.c) — and the
 * check judges the refusal itself (conform.ts).
 *
 * Return path: only the source's capability opens it. The source connects its return path when
 * return-path is on (migration_connect → open_return_path_on_source, migration/migration.c) and then
 * sends MIG_CMD_OPEN_RETURN_PATH from migration_thread; the destination opens its end only on that
 * command (loadvm_process_command, migration/savevm.c) and never reads its own return-path
 * capability in precopy. So return-path on the destination alone changes nothing, and the destination's
 * switchover-ack (which QEMU accepts only with return-path) is its side of the ack. The model's source
 * opens the return path exactly when it has switchover-ack, so a source with return-path but without
 * switchover-ack cannot be checked.
 */
export function configOf(records: readonly LogRecord[], lines?: readonly number[]): ModelConfig {
  const caps: Record<Side, Map<string, boolean>> = { source: new Map(), destination: new Map() };
  const started: Record<Side, boolean> = { source: false, destination: false };
  let lastLine: Record<Side, number> = { source: 0, destination: 0 };
  // a new destination process: the capabilities it is given before its migrate-incoming (null: none yet)
  let renewed: Map<string, boolean> | null = null;
  let autostart: boolean | null = null;
  let management = false;
  const transfer: Partial<Record<Side, 'on' | 'off'>> = {};
  const channels: Record<Side, number> = { source: DEFAULT_MULTIFD_CHANNELS, destination: DEFAULT_MULTIFD_CHANNELS };
  let migrations = 0;
  let restarts = 0;
  records.forEach((r, i) => {
    const line = lines?.[i] ?? i + 1;
    if (isProcess(r)) {
      if (r.multifdTransfer !== undefined && r.multifdTransfer !== 'auto') transfer[r.side] = r.multifdTransfer;
      if (r.side !== 'destination') return;
      if (autostart !== null && autostart !== r.autostart) {
        throw new LogFormatError(line, `the new destination process runs with autostart ${r.autostart ? 'on' : 'off (-S)'}, the first with it ${autostart ? 'on' : 'off (-S)'}; the model's NEW_PROCESS keeps the configuration`);
      }
      autostart = r.autostart;
      if (r.incarnation > 0) {
        restarts = r.incarnation;
        renewed = new Map();
      }
      return;
    }
    if (!isCommand(r)) return;
    if (r.execute === 'stop' || r.execute === 'cont') management = true;
    if (r.error) return;
    if (r.execute === 'migrate' && r.side === 'source') migrations++;
    if (renewed && r.side === 'destination' && r.execute === STARTS.destination) {
      for (const cap of MODELLED_CAPABILITIES) {
        if ((renewed.get(cap) === true) !== (caps.destination.get(cap) === true)) {
          throw new LogFormatError(line, `the new destination process starts its migration with ${cap} ${renewed.get(cap) === true ? 'on' : 'off'}, the first had it ${caps.destination.get(cap) === true ? 'on' : 'off'}; the model's NEW_PROCESS keeps the configuration`);
        }
      }
      renewed = null;
      return;
    }
    if (r.execute === STARTS[r.side]) started[r.side] = true;
    if (r.execute === 'migrate-set-parameters' && !started[r.side]) {
      const n = r.arguments?.['multifd-channels'];
      if (n !== undefined) {
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new LogFormatError(line, 'multifd-channels must be a positive integer');
        channels[r.side] = n;
      }
      return;
    }
    if (r.execute !== 'migrate-set-capabilities') return;
    if (renewed && r.side === 'destination') {
      for (const [cap, on] of capabilityList(r, line)) renewed.set(cap, on);
      return;
    }
    for (const [cap, on] of capabilityList(r, line)) {
      if (started[r.side] && CHANGES_AFTER_START[r.side].includes(cap) && (caps[r.side].get(cap) === true) !== on) {
        throw new LogFormatError(line, `the ${r.side} turns ${cap} ${on ? 'on' : 'off'} after ${STARTS[r.side]}; the checked model fixes each side's capabilities when its migration starts`);
      }
      if (!started[r.side]) caps[r.side].set(cap, on);
    }
    if (!started[r.side]) lastLine = { ...lastLine, [r.side]: line };
  });
  const on = (side: Side, cap: string) => caps[side].get(cap) === true;
  if (on('source', 'return-path') && !on('source', 'switchover-ack')) {
    throw new LogFormatError(lastLine.source, 'the source sets return-path on and switchover-ack off; the model\'s source opens the return path exactly when switchover-ack is on');
  }
  for (const side of ['source', 'destination'] as const) {
    for (const cap of ['postcopy-ram', 'background-snapshot', 'x-colo']) {
      if (on(side, cap)) throw new LogFormatError(lastLine[side], `the ${side} enables ${cap}, which the checked model does not cover`);
    }
  }
  if (on('source', 'multifd') !== on('destination', 'multifd')) {
    const side = on('source', 'multifd') ? 'source' : 'destination';
    throw new LogFormatError(lastLine[side], `multifd is on on the ${side} only, which the checked model does not cover`);
  }
  if (on('source', 'multifd') && channels.source !== channels.destination) {
    throw new LogFormatError(lastLine.source, `multifd-channels differ (source ${channels.source}, destination ${channels.destination}), which the checked model does not cover`);
  }
  if (on('source', 'multifd') && channels.source > MAX_MULTIFD_CHANNELS) {
    throw new LogFormatError(lastLine.source, `multifd-channels ${channels.source}: the checked model covers 1..${MAX_MULTIFD_CHANNELS}`);
  }
  const ackSrc = on('source', 'switchover-ack');
  const ackDst = on('destination', 'switchover-ack');
  const devices = logDevices(records);
  const withDevices = devices.source.length + devices.destination.length > 0;
  return {
    ack: ackSrc || ackDst ? 'legacy' : 'off',
    ...(ackSrc !== ackDst ? { oneSide: ackSrc ? ('source' as const) : ('destination' as const) } : {}),
    pauseBeforeSwitchover: on('source', 'pause-before-switchover'),
    ...(autostart === false ? { autostart: false } : {}),
    ...(management ? { management: true } : {}),
    ...(Math.max(restarts, migrations - 1) > 0 ? { retries: Math.max(restarts, migrations - 1) } : {}),
    ...(on('source', 'multifd') ? { multifd: channels.source } : {}),
    ...(on('source', 'multifd') && Object.keys(transfer).length > 0 ? { multifdTransfer: transfer } : {}),
    // the only harness with VFIO devices (src/qemu-vfio/nested.ts) gives each QEMU mtty-2 mdevs
    ...(withDevices ? { devices: { source: devices.source.length, destination: devices.destination.length }, profile: 'mtty' as const } : {}),
  };
}
