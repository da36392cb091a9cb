/**
 * The whole SET table: for each of the four feature sets, every (FROM, TO) pair of the 8×8 uAPI states,
 * resolved by the kernel's rules (./vfioPath.ts). This is what `migration-statecharts vfio table --json`
 * prints, in exactly this shape.
 */
import { type DataFdKind, type FeatureSet, type VfioState, FEATURE_SETS, VFIO_STATES } from './vfioArcs.js';
import { resolveVfioPath } from './vfioPath.js';

export interface VfioTableEntry {
  readonly path: readonly VfioState[];
  readonly dataFd: DataFdKind | null;
}

/** `null` where the kernel answers -EINVAL. */
export type VfioTable = Record<FeatureSet, Record<VfioState, Record<VfioState, VfioTableEntry | null>>>;

export function vfioTable(): VfioTable {
  const table = {} as VfioTable;
  for (const set of FEATURE_SETS) {
    const rows = {} as Record<VfioState, Record<VfioState, VfioTableEntry | null>>;
    for (const from of VFIO_STATES) {
      const row = {} as Record<VfioState, VfioTableEntry | null>;
      for (const to of VFIO_STATES) {
        const r = resolveVfioPath(from, to, set);
        row[to] = r.ok ? { path: r.path, dataFd: r.dataFd } : null;
      }
      rows[from] = row;
    }
    table[set] = rows;
  }
  return table;
}
