/** `migration-statecharts vfio path|table`: the kernel's SET resolution, printed. */
import { parseArgs } from 'node:util';
import { FEATURE_SETS, VFIO_STATES } from '../../machines/vfioArcs.js';
import { resolveVfioPath } from '../../machines/vfioPath.js';
import { vfioTable } from '../../machines/vfioTable.js';
import { joinNegativeNumbers, parseFeatures, parseState, requireValue } from './args.js';
import { EXIT, UsageError } from './errors.js';

export const VFIO_HELP = `usage:
  migration-statecharts vfio path --from STATE --to STATE [--features p2p,pre-copy] [--json]
  migration-statecharts vfio table [--json]

  path   the arcs the kernel takes for one SET (default features: p2p,pre-copy; STOP_COPY is implied)
  table  every (FROM, TO) pair for all four feature sets; --json: {"STOP_COPY": {FROM: {TO: entry|null}}, ...}
states: ${VFIO_STATES.join(', ')}
Exit (path) 0: the kernel takes the SET; 1: it refuses it with -EINVAL (e.g. --to ERROR, or a blocked
arc), printed as the errno and the reason; 2: bad arguments.`;

export const VFIO_PATH_HELP = `usage: migration-statecharts vfio path --from STATE --to STATE [--features p2p,pre-copy] [--json]
  The arcs the kernel's vfio_mig_get_next_state() takes for one VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE SET
  from STATE to STATE (default features p2p,pre-copy; STOP_COPY is implied), and the data_fd it returns.
  A SET the kernel refuses (--to ERROR, a blocked arc, a state the features lack) prints -EINVAL and why.
  --json: {"features", "path", "dataFd"} or {"features", "errno", "reason"}.
states: ${VFIO_STATES.join(', ')}
  Exit 0: the kernel takes the SET; 1: it refuses it (-EINVAL); 2: bad arguments.`;

export const VFIO_TABLE_HELP = `usage: migration-statecharts vfio table [--json]
  Every (FROM, TO) SET for each of the four feature sets, resolved as the kernel resolves it.
  --json: {"STOP_COPY": {FROM: {TO: {path, dataFd} | null}}, ...} (null: -EINVAL).
  Exit 0; 2: bad arguments.`;

export function vfioCommand(argv: readonly string[], out: (s: string) => void): number {
  const [sub, ...rest] = argv;
  if (sub === 'path') return vfioPath(rest, out);
  if (sub === 'table') return vfioTableCmd(rest, out);
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out(VFIO_HELP);
    return sub === undefined ? 2 : 0;
  }
  throw new UsageError(`unknown vfio command '${sub}'; valid: path, table`);
}

function vfioPath(argv: readonly string[], out: (s: string) => void): number {
  const { values } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      features: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    out(VFIO_PATH_HELP);
    return EXIT.ok;
  }
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
  // The kernel refuses the SET: say so in the exit code too, as the ioctl would.
  return r.ok ? EXIT.ok : EXIT.violated;
}

function vfioTableCmd(argv: readonly string[], out: (s: string) => void): number {
  const { values } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    out(VFIO_TABLE_HELP);
    return EXIT.ok;
  }
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
