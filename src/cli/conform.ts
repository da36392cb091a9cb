/**
 * `migration-statecharts conform FILE`: check a recorded QEMU migration run (JSON lines, see
 * src/qemu/log.ts) against the model and report the first divergence. Exit 0 when the run conforms,
 * 1 when it diverges, 2 for bad arguments or a malformed file (one line naming the line and the
 * problem), 4 when it matches but stops mid-migration (incomplete). Handles its own errors, so it
 * never throws.
 */

import { parseArgs } from 'node:util';
import { type ConformResult, checkLog, formatResult } from '../qemu/conform.js';
import { KNOWN_DISAGREEMENTS } from '../qemu/exceptions.js';
import { LogFormatError, parseLog } from '../qemu/log.js';
import { joinNegativeNumbers, readInputFile } from './args.js';
import { EXIT, UsageError } from './errors.js';

export const CONFORM_HELP = `usage: migration-statecharts conform FILE [--strict] [--json]
  Check a recorded QEMU migration run against the model (the composed migration system with the
  log's VFIO devices on each side, mtty profile, or none; the
  configuration — switchover-ack, pause-before-switchover — comes from the log's
  migrate-set-capabilities commands; a destination with -S, stop/cont and retries from its process
  records and commands). FILE has one JSON object per line, in time order, each with
  "side": "source" or "destination" and a "timestamp" {"seconds", "microseconds"}, and one of:
    "event"    a QMP event as QEMU sent it (MIGRATION, STOP, RESUME, VFIO_MIGRATION; others are ignored)
    "execute"  a QMP command with its "arguments" and QEMU's "return" or "error" (migrate,
               migrate-incoming, migrate-continue, migrate_cancel, stop, cont are model actions;
               query-migrate and query-status replies are observations)
    "fault"    "kill-destination" or "unreachable-destination", with "action": "STREAM_BREAKS"
    "trace"    a QEMU trace event name with its "args" text
    "process"  "start": a QEMU process began, with its "incarnation" (0 first; a new destination
               process is one more: the model's NEW_PROCESS) and "autostart" (false: run with -S),
               optionally "devices": its VFIO device ids in -device order (else they are read from
               the VFIO_MIGRATION events and vfio_migration_set_state traces)
  The documented disagreements between QEMU 10.0 and the model are applied and listed; --strict
  checks without them. --json prints the result as JSON.
  Exit 0: the run conforms; 1: it diverges (the step, what QEMU did, what the model allowed);
  2: bad arguments or a malformed file; 4: incomplete — no divergence, but the log stops while the
  migration is under way (the source not completed, failed or cancelled, or the destination not ended).`;

/** The exit code of an incomplete run (3 is the explorer's "a bound stopped the search"). */
export const EXIT_INCOMPLETE = 4;

/** `main()` turns a UsageError or a parseArgs error into one line and exit 2. */
export function conformCommand(argv: readonly string[], out: (s: string) => void, _err: (s: string) => void): number {
  return run(argv, out);
}

function run(argv: readonly string[], out: (s: string) => void): number {
  const { values, positionals } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: {
      strict: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    out(CONFORM_HELP);
    return EXIT.ok;
  }
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? 'conform needs a FILE (a recorded run, one JSON object per line)' : `conform takes one FILE, got ${positionals.length}`);
  }
  const file = positionals[0]!;
  const text = readInputFile(file);
  let result: ConformResult;
  try {
    const { records, lines } = parseLog(text);
    if (records.length === 0) throw new UsageError(`${file}: no records`);
    result = checkLog(records, lines, values.strict ? { exceptions: [] } : {});
  } catch (e) {
    if (e instanceof LogFormatError) throw new UsageError(`${file}: line ${e.line}: ${e.problem}`);
    throw e;
  }
  if (values.json) {
    out(
      JSON.stringify(
        {
          file,
          conforms: result.divergence === null && result.incomplete === null,
          incomplete: result.incomplete,
          config: result.config,
          modelStates: result.modelStates,
          steps: result.steps,
          actions: result.actions,
          deviceEvents: result.deviceEvents,
          statusObservations: result.statusObservations,
          exceptions: result.exceptions.map((x) => ({ ...x, change: KNOWN_DISAGREEMENTS.find((k) => k.name === x.name)?.change ?? null })),
          divergence: result.divergence,
        },
        null,
        2,
      ),
    );
  } else {
    out(`${file}\n${formatResult(result)}`);
  }
  return result.divergence !== null ? EXIT.violated : result.incomplete !== null ? EXIT_INCOMPLETE : EXIT.ok;
}
