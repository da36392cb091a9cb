/**
 * `migration-statecharts explore`: exhaustively explore K VFIO devices driven as QEMU drives them
 * (src/systems/vfioDevices.ts), check the invariants, print a report. Exit 0 when everything holds, 1
 * when a property is violated, 3 when a bound (--max-states, --memory-mb) stopped the search.
 */
import { parseArgs } from 'node:util';
import { explore, formatReport } from '../explorer/index.js';
import { vfioDevicesSystem } from '../systems/vfioDevices.js';
import { joinNegativeNumbers, parseCount, parseFeatures } from './args.js';
import { EXIT } from './errors.js';
import { RUN_HELP, RUN_OPTIONS, finish, parseBounds } from './output.js';

export const EXPLORE_HELP = `usage: migration-statecharts explore [--devices N] [--features p2p,pre-copy] [--max-bytes N]
                                   [--symmetry] [--max-states N] [--memory-mb N] [--json] [--no-timings] [--out FILE]
  Explore N VFIO devices (default 2) driven as QEMU's VFIO code drives them; check the invariants.
  --json prints the whole result (counterexamples as traces).
${RUN_HELP}
  Exit 0: all hold; 1: a property is violated; 2: bad arguments; 3: a bound stopped the search.`;

export function exploreCommand(argv: readonly string[], out: (s: string) => void, err: (s: string) => void): number {
  const { values } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: {
      devices: { type: 'string' },
      features: { type: 'string' },
      'max-bytes': { type: 'string' },
      symmetry: { type: 'boolean', default: false },
      ...RUN_OPTIONS,
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    out(EXPLORE_HELP);
    return EXIT.ok;
  }
  const devices = parseCount(values.devices, '--devices', 2, 1, 8);
  const features = parseFeatures(values.features ?? 'p2p,pre-copy');
  const maxBytes = parseCount(values['max-bytes'], '--max-bytes', 1, 1, 4);
  const r = explore(vfioDevicesSystem({ devices, features, maxBytes, symmetry: values.symmetry }), parseBounds(values));
  return finish({ report: r, text: formatReport(r), limit: r.limit, partial: r, holds: r.properties.every((p) => p.holds) }, values, out, err);
}
