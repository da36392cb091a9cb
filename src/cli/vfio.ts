/** `migration-statecharts vfio path|table`: the kernel's SET resolution, printed. */
import { parseArgs } from 'node:util';
import { FEATURE_SETS, VFIO_STATES } from '../../machines/vfioArcs.js';
import { resolveVfioPath } from '../../machines/vfioPath.js';
import { vfioTable } from '../../machines/vfioTable.js';
import { parseFeatures, parseState, requireValue } from './args.js';
import { UsageError } from './errors.js';

export const VFIO_HELP = `usage:
  migration-statecharts vfio path --from STATE --to STATE [--features p2p,pre-copy] [--json]
  migration-statecharts vfio table [--json]

  path   the arcs the kernel takes for one SET (default features: p2p,pre-copy; STOP_COPY is implied)
  table  every (FROM, TO) pair for all four feature sets; --json: {"STOP_COPY": {FROM: {TO: entry|null}}, ...}
states: ${VFIO_STATES.join(', ')}`;

export function vfioCommand(argv: readonly string[], out: (s: string) => void): number {
  const [sub, ...rest] = argv;
  if (sub === 'path') return vfioPath(rest, out);
  if (sub === 'table') return vfioTableCmd(rest, out);
  if (sub === undefined || sub === '--help' || sub === 'help') {
    out(VFIO_HELP);
    return sub === undefined ? 2 : 0;
  }
  throw new UsageError(`unknown vfio command '${sub}'; valid: path, table`);
}

function vfioPath(argv: readonly string[], out: (s: string) => void): number {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      features: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const states = VFIO_STATES.join(', ');
  const from = parseState(requireValue(values.from, '--from', states), '--from');
  const to = parseState(requireValue(values.to, '--to', states), '--to');
  const set = parseFeatures(values.features ?? 'p2p,pre-copy');
  const r = resolveVfioPath(from, to, set);
  if (values.json) {
    out(JSON.stringify(r.ok ? { features: set, path: r.path, dataFd: r.dataFd } : { features: set, errno: r.errno, reason: r.reason }));
  } else if (r.ok) {
    out(`${r.path.join(' -> ')}${r.dataFd ? `  (returns a ${r.dataFd} data_fd)` : ''}`);
  } else {
    out(`-${r.errno}: ${r.reason}  [features ${set}]`);
  }
  return 0;
}

function vfioTableCmd(argv: readonly string[], out: (s: string) => void): number {
  const { values } = parseArgs({
    args: [...argv],
    options: { json: { type: 'boolean', default: false } },
    strict: true,
    allowPositionals: false,
  });
  const table = vfioTable();
  if (values.json) {
    out(JSON.stringify(table));
    return 0;
  }
  const lines: string[] = [];
  for (const set of FEATURE_SETS) {
    const rows = table[set];
    const valid = VFIO_STATES.flatMap((f) => VFIO_STATES.filter((t) => rows[f][t] !== null && f !== 'ERROR')).length;
    lines.push(`== features ${set}  (${valid} valid (FROM, TO) pairs, ERROR excluded)`);
    for (const from of VFIO_STATES) {
      const row = rows[from];
      if (VFIO_STATES.every((to) => row[to] === null)) {
        lines.push(`  ${from}: not a state of this feature set`);
        continue;
      }
      for (const to of VFIO_STATES) {
        const e = row[to];
        const text = e ? e.path.join(' -> ') + (e.dataFd ? `  [${e.dataFd} fd]` : '') : '-EINVAL';
        lines.push(`  ${from.padEnd(12)} => ${to.padEnd(12)} ${text}`);
      }
    }
  }
  out(lines.join('\n'));
  return 0;
}
