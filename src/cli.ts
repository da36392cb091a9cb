#!/usr/bin/env node
/**
 * The `migration-statecharts` command. Every failure is one line on stderr and an exit code:
 * 0 ok, 1 a property is violated, 2 bad arguments, 3 a limit was hit. Never a stack trace.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXIT, UsageError, exitOnError } from './cli/errors.js';
import { SystemError } from './explorer/system.js';
import { checkCommand } from './cli/check.js';
import { conformCommand } from './cli/conform.js';
import { monitorCommand } from './cli/monitor.js';
import { exploreCommand } from './cli/explore.js';
import { exportCommand } from './cli/export.js';
import { phasesCommand } from './cli/phases.js';
import { packageVersion } from './cli/version.js';
import { testsCommand } from './cli/tests.js';
import { vfioCommand } from './cli/vfio.js';

export const HELP = `usage: migration-statecharts <command> [options]

commands:
  check [--devices N] [--features …] [--ack legacy|per-device|off] …     check the migration of N devices (check --help)
  vfio path --from STATE --to STATE [--features p2p,pre-copy] [--json]   one SET, resolved as the kernel does
  vfio table [--json]                                                   the SET table for all four feature sets
  explore [--devices N] [--symmetry] [--max-states N] [--json] …        exhaustively check N devices (explore --help)
  tests generate|replay …                                              model-based test suites (tests --help)
  conform FILE [--strict] [--json]                                     check a recorded QEMU run against the model (conform --help)
  monitor --source QMP_SOCKET --destination QMP_SOCKET [--json] …      follow a live QEMU migration with the model (monitor --help)
  phases --orchestrator libvirt|kubevirt|nova [--json]                  what an orchestrator sees of QEMU's statuses (phases --help)
  export --machine NAME --format scxml|json [--out FILE]                a machine as SCXML or JSON (export --help)
  export --promela [--devices N] [--ack …] … [--out FILE]               the composed system as Promela for SPIN
  help, --help                                                          this text; every command also takes --help
  --version                                                             the package version

exit codes: 0 ok, 1 a property is violated (or the kernel refuses a SET), 2 bad arguments (one line),
3 a bound stopped the search, 4 (conform, monitor) the run stops mid-migration`;

type Out = (s: string) => void;

/**
 * Run the CLI on `argv` (without node and script); returns the exit code — a promise of it for
 * `monitor`, which follows a live migration (its promise never rejects).
 */
export function main(argv: readonly string[], out: Out = (s) => process.stdout.write(s + '\n'), err: Out = (s) => process.stderr.write(s + '\n')): number | Promise<number> {
  try {
    const [cmd, ...rest] = argv;
    switch (cmd) {
      case 'vfio':
        return vfioCommand(rest, out);
      case 'check':
        return checkCommand(rest, out, err);
      case 'explore':
        return exploreCommand(rest, out, err);
      case 'tests':
        return testsCommand(rest, out, err);
      case 'conform':
        return conformCommand(rest, out, err);
      case 'monitor':
        return monitorCommand(rest, out, err);
      case 'phases':
        return phasesCommand(rest, out);
      case 'export':
        return exportCommand(rest, out, err);
      case '--version':
      case '-V':
      case 'version':
        out(packageVersion());
        return EXIT.ok;
      case 'help':
      case '--help':
      case '-h':
        out(HELP);
        return EXIT.ok;
      case undefined:
        err(HELP);
        return EXIT.usage;
      default:
        throw new UsageError(`unknown command '${cmd}'; valid: check, vfio, explore, tests, conform, monitor, phases, export, help, --version`);
    }
  } catch (e) {
    return exitOnError(e, err, [SystemError]);
  }
}

function isEntryPoint(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return realpathSync(arg) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  void Promise.resolve(main(process.argv.slice(2))).then((code) => (process.exitCode = code));
}
