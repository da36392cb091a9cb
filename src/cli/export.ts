/** `migration-statecharts export --machine NAME --format scxml|json [--out FILE]`: a machine as data. */
import { parseArgs } from 'node:util';
import type { AnyStateMachine } from 'xstate';
import { qemuDestinationMachine } from '../../machines/qemuDestination.js';
import { qemuSourceMachine } from '../../machines/qemuSource.js';
import { vfioDeviceMachine } from '../../machines/vfioDevice.js';
import { virtioNetDestinationMachine } from '../../machines/virtioNetDestination.js';
import { virtioNetSourceMachine } from '../../machines/virtioNetSource.js';
import { statechartOf, toScxml } from '../export/statechart.js';
import { joinNegativeNumbers, requireValue, writeWhole } from './args.js';
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
  A machine as data for other tools: every state (type, initial child, tags, description) and every
  transition (event, targets, guard, actions). scxml: W3C SCXML, guards as cond="name" (the machine's guard
  names, composed with &&, ||, !), actions as <ms:action name="…"/> elements of our own namespace. json:
  the same statechart as JSON (format migration-statecharts/statechart@1). XState's own toJSON() drops
  and()/or()/not() guards; this export keeps them. Printed, or written whole to --out FILE.
  Counterexamples as ITF traces (Apalache/Quint): check … --itf FILE.
  Exit 0; 2: bad arguments.`;

export function exportCommand(argv: readonly string[], out: (s: string) => void): number {
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
