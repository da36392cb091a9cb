/**
 * `migration-statecharts explore`: exhaustively explore K VFIO devices driven as QEMU drives them
 * (src/systems/vfioDevices.ts), check the invariants, print a report. Exit 0 when everything holds, 1
 * when a property is violated, 3 when a bound (--max-states, --memory-mb) stopped the search.
 */
import { writeFileSync, renameSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { explore, formatReport } from '../explorer/index.js';
import { vfioDevicesSystem } from '../systems/vfioDevices.js';
import { parseCount, parseFeatures } from './args.js';
import { EXIT } from './errors.js';

export const EXPLORE_HELP = `usage: migration-statecharts explore [--devices N] [--features p2p,pre-copy] [--max-bytes N]
                                   [--symmetry] [--max-states N] [--memory-mb N] [--json] [--out FILE]
  Explore N VFIO devices (default 2) driven as QEMU's VFIO code drives them; check the invariants.
  --json prints the whole result (counterexamples as traces); --out FILE writes it to FILE as well.
  Exit 0: all hold; 1: a property is violated; 2: bad arguments; 3: a bound stopped the search.`;

export function exploreCommand(argv: readonly string[], out: (s: string) => void, err: (s: string) => void): number {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      devices: { type: 'string' },
      features: { type: 'string' },
      'max-bytes': { type: 'string' },
      symmetry: { type: 'boolean', default: false },
      'max-states': { type: 'string' },
      'memory-mb': { type: 'string' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
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
  const maxStates = parseCount(values['max-states'], '--max-states', 50_000_000, 1);
  const memoryMb = parseCount(values['memory-mb'], '--memory-mb', 8192, 64, 1 << 20);
  const r = explore(vfioDevicesSystem({ devices, features, maxBytes, symmetry: values.symmetry }), {
    maxStates,
    memoryBudget: memoryMb * 1024 * 1024,
  });
  const json = JSON.stringify(r, null, 2);
  if (values.out) {
    // write whole or not at all
    const tmp = `${values.out}.tmp-${process.pid}`;
    writeFileSync(tmp, json + '\n');
    renameSync(tmp, values.out);
  }
  out(values.json ? json : formatReport(r));
  if (r.limit) {
    err(`migration-statecharts: ${r.limit.message} (partial: ${r.states} states, ${r.transitions} transitions)`);
    return EXIT.limit;
  }
  return r.properties.every((p) => p.holds) ? EXIT.ok : EXIT.violated;
}
