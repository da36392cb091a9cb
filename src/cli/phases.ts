/** `migration-statecharts phases --orchestrator libvirt|kubevirt|nova [--json]`: what an orchestrator sees of a migration. */
import { parseArgs } from 'node:util';
import { ORCHESTRATOR_IDS, formatPhases, isOrchestratorId, phaseMap, phasesReport } from '../phases/index.js';
import { joinNegativeNumbers, requireValue } from './args.js';
import { EXIT, UsageError } from './errors.js';

export const PHASES_HELP = `usage: migration-statecharts phases --orchestrator ${ORCHESTRATOR_IDS.join('|')} [--json]
  Where each of QEMU's migration statuses (qapi MigrationStatus, the source's) lands in the orchestrator's
  own phases (libvirt: the job type of virDomainGetJobInfo; KubeVirt: VirtualMachineInstanceMigration
  phase; Nova: Migration.status), each mapping with the orchestrator function it comes from; which
  statuses collapse into one phase; and which of the model's findings (the one-sided ack stall, a cancel
  or a stream break after the final device state, the pre-switchover pause) look exactly like an
  ordinary run through those phases. docs/phases.md has all three side by side.
  --json: {"orchestrator", "statuses": [...], "collapsed": [...], "unknown": [...], "findings": [...], ...}
  Exit 0; 2: bad arguments.`;

export function phasesCommand(argv: readonly string[], out: (s: string) => void): number {
  const { values } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: {
      orchestrator: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    out(PHASES_HELP);
    return EXIT.ok;
  }
  const id = requireValue(values.orchestrator, '--orchestrator', ORCHESTRATOR_IDS.join(', '));
  if (!isOrchestratorId(id)) throw new UsageError(`bad --orchestrator '${id}'; valid: ${ORCHESTRATOR_IDS.join(', ')}`);
  const map = phaseMap(id);
  out(values.json ? JSON.stringify(phasesReport(map), null, 2) : formatPhases(map));
  return EXIT.ok;
}
