/**
 * The kernel's path resolution for a `VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE` SET, as a pure function.
 *
 * Every in-tree driver runs `while (new != cur) { vfio_mig_get_next_state(cur, new, &next); step(next); }`
 * (drivers/vfio/pci/mlx5/main.c, hisilicon, virtio, ...), and `vfio_mig_get_next_state()`
 * (drivers/vfio/vfio_main.c) does:
 *   1. cur out of range or unsupported → -EINVAL (with WARN_ON; always so for cur = ERROR);
 *   2. new out of range, unsupported or ERROR → -EINVAL;
 *   3. next = table[cur][new]; while next is unsupported, next = table[next][new] (stopping at ERROR
 *      since a26b499b757c);
 *   4. next = ERROR → -EINVAL, else 0.
 * A SET to the current state never calls the helper, so it is a no-op success — even ERROR → ERROR.
 * (Issue #2 words this as "any request from ERROR: -EINVAL"; the driver loop is what runs, so the model
 * follows the loop for the one case where the two differ, ERROR → ERROR.)
 *
 * @example
 *   import { resolveVfioPath } from 'migration-statecharts';
 *   resolveVfioPath('RUNNING', 'STOP_COPY', 'STOP_COPY|P2P|PRE_COPY'); // => { ok: true, path: ['RUNNING', 'RUNNING_P2P', 'STOP', 'STOP_COPY'], dataFd: 'saving' }
 */
import {
  type DataFdKind,
  type FeatureSet,
  type VfioState,
  dataFdOf,
  isSupported,
  skipUnsupported,
} from './vfioArcs.js';

export type VfioPathResult =
  | { readonly ok: true; readonly path: readonly VfioState[]; readonly dataFd: DataFdKind | null }
  | { readonly ok: false; readonly errno: 'EINVAL'; readonly reason: string };

/** One call of `vfio_mig_get_next_state()`: the next step, or why the kernel refuses. */
export function vfioMigGetNextState(
  cur: VfioState,
  target: VfioState,
  set: FeatureSet,
): { ok: true; next: VfioState } | { ok: false; reason: string } {
  if (!isSupported(cur, set)) {
    return { ok: false, reason: cur === 'ERROR' ? 'device is in ERROR' : `current state ${cur} not supported` };
  }
  if (target === 'ERROR') return { ok: false, reason: 'ERROR cannot be requested' };
  if (!isSupported(target, set)) return { ok: false, reason: `${target} needs a feature the device lacks` };
  const next = skipUnsupported(cur, target, set);
  if (next === 'ERROR') return { ok: false, reason: `arc ${cur} -> ${target} is blocked` };
  return { ok: true, next };
}

/**
 * The full path the kernel takes from `cur` to `target` for a device with feature set `set`, and the
 * kind of data_fd the SET returns (the last arc's; interior arcs never open one), or -EINVAL.
 */
export function resolveVfioPath(cur: VfioState, target: VfioState, set: FeatureSet): VfioPathResult {
  if (cur !== 'ERROR' && !isSupported(cur, set)) {
    return { ok: false, errno: 'EINVAL', reason: `current state ${cur} not supported` };
  }
  const path: VfioState[] = [cur];
  let at = cur;
  while (at !== target) {
    const step = vfioMigGetNextState(at, target, set);
    if (!step.ok) return { ok: false, errno: 'EINVAL', reason: step.reason };
    path.push(step.next);
    at = step.next;
    if (path.length > 8) throw new Error(`vfio table loops between ${cur} and ${target}`); // table bug guard
  }
  const last = path.length > 1 ? dataFdOf(path[path.length - 2]!, target) : null;
  return { ok: true, path, dataFd: last };
}
