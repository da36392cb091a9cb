/**
 * `migration-statecharts export --machine NAME --format scxml|json [--out FILE]`: a machine as data;
 * `export --promela [check's system flags] [--out FILE]`: the composed system as Promela for SPIN.
 */
import { parseArgs } from 'node:util';
import type { AnyStateMachine } from 'xstate';
import { qemuDestinationMachine } from '../../machines/qemuDestination.js';
import { qemuSourceMachine } from '../../machines/qemuSource.js';
import { vfioDeviceMachine } from '../../machines/vfioDevice.js';
import { virtioNetDestinationMachine } from '../../machines/virtioNetDestination.js';
import { virtioNetSourceMachine } from '../../machines/virtioNetSource.js';
import { exportPromela } from '../export/promela.js';
import { statechartOf, toScxml } from '../export/statechart.js';
import { checkOutputPath, joinNegativeNumbers, parseCount, requireValue, writeWhole } from './args.js';
import { SYSTEM_OPTIONS, parseSystemFlags, plainMigrationSpec } from './check.js';
import { EXIT, UsageError } from './errors.js';

/** The exported machines, by the names the package's subpaths and diagrams use. */
export const EXPORTABLE: Readonly<Record<string, AnyStateMachine>> = {
  'vfio-device': vfioDeviceMachine,
  'qemu-source': qemuSourceMachine,
  'qemu-destination': qemuDestinationMachine,
  'virtio-net-source': virtioNetSourceMachine,
  'virtio-net-destination': virtioNetDestinationMachine,
};
const FORMATS = ['scxml', 'json'] as const;

export const EXPORT_HELP = `usage: migration-statecharts export --machine ${Object.keys(EXPORTABLE).join('|')} --format scxml|json [--out FILE]
       migration-statecharts export --promela [--devices N] [--features …] [--ack …] [check's other system flags]
                                  [--max-states N] [--out FILE]
  A machine as data for other tools: every state (type, initial child, tags, description) and every
  transition (event, targets, guard, actions). scxml: W3C SCXML, guards as cond="name" (the machine's guard
  names, composed with &&, ||, !), actions as <ms:action name="…"/> elements of our own namespace. json:
  the same statechart as JSON (format migration-statecharts/statechart@1). XState's own toJSON() drops
  and()/or()/not() guards; this export keeps them. Printed, or written whole to --out FILE.
  Counterexamples as ITF traces (Apalache/Quint): check … --itf FILE.
  --promela: the composed migration system check would explore (the same system flags; not --design,
  --virtio-net or --symmetry) as Promela for SPIN, written from our explorer's local tables: invariants
  as assertions, deadlocks as the deadlock option's assertion, non-progress cycles with progress labels
  (spin -DPROGRESS). SPIN stores exactly our explorer's states. A system over --max-states (default
  5,000,000) is refused. How to run SPIN: the file's header and the README.
  Exit 0; 2: bad arguments or a system too big.`;

export function exportCommand(argv: readonly string[], out: (s: string) => void, err: (s: string) => void = () => {}): number {
  if (argv.includes('--promela')) return promelaCommand(argv.filter((a) => a !== '--promela'), out, err);
  const { values } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: { machine: { type: 'string' }, format: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', default: false } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    out(EXPORT_HELP);
    return EXIT.ok;
  }
  const name = requireValue(values.machine, '--machine', Object.keys(EXPORTABLE).join(', '));
  const machine = EXPORTABLE[name];
  if (!machine) throw new UsageError(`bad --machine '${name}'; valid: ${Object.keys(EXPORTABLE).join(', ')}`);
  const format = requireValue(values.format, '--format', FORMATS.join(', '));
  if (!(FORMATS as readonly string[]).includes(format)) throw new UsageError(`bad --format '${format}'; valid: ${FORMATS.join(', ')}`);
  const chart = statechartOf(machine);
  const text = format === 'scxml' ? toScxml(chart) : JSON.stringify(chart, null, 2) + '\n';
  if (values.out) writeWhole(values.out, text, '--out');
  else out(text.trimEnd());
  return EXIT.ok;
}

/** `export --promela …`: the plain migration system as Promela (src/export/promela.ts). */
function promelaCommand(argv: readonly string[], out: (s: string) => void, err: (s: string) => void): number {
  const { values } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: { ...SYSTEM_OPTIONS, 'max-states': { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', default: false } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    out(EXPORT_HELP);
    return EXIT.ok;
  }
  checkOutputPath(values.out, '--out');
  const maxStates = parseCount(values['max-states'], '--max-states', 5_000_000, 1);
  const spec = plainMigrationSpec(values, parseSystemFlags(values));
  const e = exportPromela(spec, { maxStates });
  if (values.out) writeWhole(values.out, e.text, '--out');
  else out(e.text.trimEnd());
  const left = e.leftOut.length > 0 ? `; left out: ${e.leftOut.map((x) => `${x.name} (${x.reason})`).join(', ')}` : '';
  err(`migration-statecharts: ${spec.name}: ${e.states} states, ${e.options} options${left}`);
  return EXIT.ok;
}
