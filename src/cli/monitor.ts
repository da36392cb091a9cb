/**
 * `migration-statecharts monitor --source QMP --destination QMP`: follow a live migration between two
 * running QEMUs with the model (src/qemu/monitor.ts) and report the first divergence. Exit 0 when it
 * conforms to its end, 1 when it diverges, 2 for bad arguments or a socket it cannot attach to (one
 * line), 4 when it stops mid-migration (timeout, a QEMU gone) without a divergence. Asynchronous; it
 * handles its own errors, so its promise never rejects.
 */
import { parseArgs } from 'node:util';
import { formatLog } from '../qemu/log.js';
import { type ConfigOverrides, type MonitorResult, MonitorError, monitorMigration } from '../qemu/monitor.js';
import { describeConfig } from '../qemu/model.js';
import { formatResult } from '../qemu/conform.js';
import { UNSEEN_COMMAND_DISAGREEMENTS } from '../qemu/exceptions.js';
import { checkOutputPath, joinNegativeNumbers, parseCount, requireValue, writeWhole } from './args.js';
import { EXIT_INCOMPLETE } from './conform.js';
import { EXIT, UsageError, exitOnError } from './errors.js';

export const MONITOR_HELP = `usage: migration-statecharts monitor --source QMP_SOCKET --destination QMP_SOCKET [--json] [--verbose]
                                   [--switchover-ack on|off|source|destination] [--pause-before-switchover on|off]
                                   [--destination-autostart on|off] [--management] [--strict]
                                   [--timeout SECONDS] [--poll-ms N] [--settle-ms N] [--log FILE]
  Attach to two running QEMUs as a second QMP client (a unix socket path or tcp:HOST:PORT each; a
  -qmp unix:PATH,server=on socket serves one client at a time, so give the monitor its own -qmp) and
  follow their migration with the model, as 'conform' checks a recorded run (the same checker).
  Attach before migrate: the source's status must still be 'none'.
  It sees QMP events (MIGRATION, STOP, RESUME) and polls query-migrate / query-status; it does not
  see the commands another client sends (migrate, migrate-continue, migrate_cancel, stop, cont) nor
  a broken connection: the model takes those as steps it cannot see, whenever the statuses QEMU
  reports imply them, and still checks every reported change one step at a time.
  The configuration comes from query-migrate-capabilities on both QEMUs, read at attach and again
  when the source reports 'setup' (switchover-ack, pause-before-switchover); --switchover-ack and
  --pause-before-switchover override it. QMP does not show a destination started with -S
  (--destination-autostart off) or management stop/cont (--management): give those as flags.
  It sends no migration command; the one change it makes is turning the events capability on where
  it is off (nothing in the model changes).
  Each step and the model state after it are printed on stderr with --verbose, or when stderr is a
  terminal outside CI. --json prints the result as JSON; --log FILE writes what it saw in conform's
  log format (a divergence's line is a line of it); --strict checks without the documented
  disagreements. --timeout (default 120) bounds the wait; --poll-ms (500) the polling;
  --settle-ms (100) how long an event waits for an earlier-stamped one from the other QEMU.
  Exit 0: the migration conforms to its end; 1: it diverges (the step, what QEMU did, what the model
  allowed); 2: bad arguments, a socket it cannot attach to, or a migration it cannot check;
  4: incomplete — no divergence, but the migration did not end in time (or the source QEMU went away).
  A destination whose QMP connection closes is taken as gone (killed, or it exited): its reports are
  no longer waited for, and the source is followed to its end.`;

const onOff = (v: string | undefined, option: string): boolean | undefined => {
  if (v === undefined) return undefined;
  if (v === 'on' || v === 'off') return v === 'on';
  throw new UsageError(`bad ${option} '${v}'; valid: on, off`);
};

export async function monitorCommand(argv: readonly string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  try {
    return await run(argv, out, err);
  } catch (e) {
    return exitOnError(e, err, [MonitorError]);
  }
}


async function run(argv: readonly string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: {
      source: { type: 'string' },
      destination: { type: 'string' },
      'switchover-ack': { type: 'string' },
      'pause-before-switchover': { type: 'string' },
      'destination-autostart': { type: 'string' },
      management: { type: 'boolean', default: false },
      strict: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      timeout: { type: 'string' },
      'poll-ms': { type: 'string' },
      'settle-ms': { type: 'string' },
      log: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    out(MONITOR_HELP);
    return EXIT.ok;
  }
  if (positionals.length > 0) throw new UsageError(`monitor takes no positional argument, got '${positionals[0]}'; use --source and --destination`);
  const source = requireValue(values.source, '--source', 'the source QEMU\'s QMP socket (a path or tcp:HOST:PORT)');
  const destination = requireValue(values.destination, '--destination', 'the destination QEMU\'s QMP socket (a path or tcp:HOST:PORT)');
  const ack = values['switchover-ack'];
  if (ack !== undefined && !['on', 'off', 'source', 'destination'].includes(ack)) throw new UsageError(`bad --switchover-ack '${ack}'; valid: on, off, source, destination`);
  const pause = onOff(values['pause-before-switchover'], '--pause-before-switchover');
  const autostart = onOff(values['destination-autostart'], '--destination-autostart');
  const overrides: ConfigOverrides = {
    ...(ack !== undefined ? { switchoverAck: ack as ConfigOverrides['switchoverAck'] & string } : {}),
    ...(pause !== undefined ? { pauseBeforeSwitchover: pause } : {}),
    ...(autostart !== undefined ? { destinationAutostart: autostart } : {}),
    ...(values.management ? { management: true } : {}),
  };
  const timeoutMs = parseCount(values.timeout, '--timeout', 120, 1, 86_400) * 1000;
  const pollMs = parseCount(values['poll-ms'], '--poll-ms', 500, 10, 60_000);
  const settleMs = parseCount(values['settle-ms'], '--settle-ms', 100, 0, 10_000);
  checkOutputPath(values.log, '--log');
  // steps as progress: on a terminal outside CI, or when asked
  const steps = values.verbose || (Boolean(process.stderr.isTTY) && !process.env['CI']);
  const r = await monitorMigration({
    source,
    destination,
    overrides,
    timeoutMs,
    pollMs,
    settleMs,
    strict: values.strict,
    ...(steps ? { onStep: err } : {}),
  });
  if (values.log !== undefined) writeWhole(values.log, formatLog(r.records), '--log');
  out(values.json ? JSON.stringify(asJson(r, source, destination), null, 2) : formatMonitor(r, source, destination));
  return r.result.divergence !== null ? EXIT.violated : r.result.incomplete !== null ? EXIT_INCOMPLETE : EXIT.ok;
}

const WHY: Readonly<Record<MonitorResult['ended'], string>> = {
  'migration-ended': 'the migration ended',
  divergence: 'it diverged',
  timeout: 'the timeout ran out',
  'connection-closed': "the source's QMP connection closed",
};

/** The monitor's report: where it attached, the configuration and where it came from, then conform's report. */
export function formatMonitor(r: MonitorResult, source: string, destination: string): string {
  return [
    `monitor: source ${source} (QEMU ${r.qemu.source}), destination ${destination} (QEMU ${r.qemu.destination}); stopped after ${r.seconds.toFixed(1)} s: ${WHY[r.ended]}`,
    `configuration: ${describeConfig(r.config)} (${r.configFrom.join('; ')})`,
    formatResult(r.result),
  ].join('\n');
}

function asJson(r: MonitorResult, source: string, destination: string) {
  const res = r.result;
  return {
    source,
    destination,
    qemu: r.qemu,
    ended: r.ended,
    seconds: Number(r.seconds.toFixed(3)),
    conforms: res.divergence === null && res.incomplete === null,
    incomplete: res.incomplete,
    config: r.config,
    configFrom: r.configFrom,
    modelStates: res.modelStates,
    steps: res.steps,
    records: r.records.length,
    exceptions: res.exceptions.map((x) => ({ ...x, change: UNSEEN_COMMAND_DISAGREEMENTS.find((k) => k.name === x.name)?.change ?? null })),
    divergence: res.divergence,
  };
}
