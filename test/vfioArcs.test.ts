/**
 * The kernel's SET resolution, pinned to what drivers/vfio/vfio_main.c says about itself: the arc lists a
 * driver must implement and the multi-step paths listed in the comment above vfio_from_fsm_table (both
 * transcribed here independently of machines/vfioArcs.ts), and the counts of the reference fact sheet.
 */
import { describe, expect, it } from 'vitest';
import {
  BLOCKED_ARCS,
  FEATURE_SETS,
  type FeatureSet,
  VFIO_STATES,
  type VfioState,
  arcsOf,
  inSavingGroup,
  isSupported,
  stateValue,
} from '../machines/vfioArcs.js';
import { resolveVfioPath } from '../machines/vfioPath.js';
import { vfioTable } from '../machines/vfioTable.js';

const ALL: FeatureSet = 'STOP_COPY|P2P|PRE_COPY';

/** vfio_main.c: "If all optional features are supported, this means the following ones:" (25 paths). */
const KERNEL_MULTI_STEP_PATHS = `
PRE_COPY -> PRE_COPY_P2P -> STOP_COPY
PRE_COPY -> RUNNING -> RUNNING_P2P
PRE_COPY -> RUNNING -> RUNNING_P2P -> STOP
PRE_COPY -> RUNNING -> RUNNING_P2P -> STOP -> RESUMING
PRE_COPY_P2P -> RUNNING_P2P -> RUNNING
PRE_COPY_P2P -> RUNNING_P2P -> STOP
PRE_COPY_P2P -> RUNNING_P2P -> STOP -> RESUMING
RESUMING -> STOP -> RUNNING_P2P
RESUMING -> STOP -> RUNNING_P2P -> PRE_COPY_P2P
RESUMING -> STOP -> RUNNING_P2P -> RUNNING
RESUMING -> STOP -> RUNNING_P2P -> RUNNING -> PRE_COPY
RESUMING -> STOP -> STOP_COPY
RUNNING -> RUNNING_P2P -> PRE_COPY_P2P
RUNNING -> RUNNING_P2P -> STOP
RUNNING -> RUNNING_P2P -> STOP -> RESUMING
RUNNING -> RUNNING_P2P -> STOP -> STOP_COPY
RUNNING_P2P -> RUNNING -> PRE_COPY
RUNNING_P2P -> STOP -> RESUMING
RUNNING_P2P -> STOP -> STOP_COPY
STOP -> RUNNING_P2P -> PRE_COPY_P2P
STOP -> RUNNING_P2P -> RUNNING
STOP -> RUNNING_P2P -> RUNNING -> PRE_COPY
STOP_COPY -> STOP -> RESUMING
STOP_COPY -> STOP -> RUNNING_P2P
STOP_COPY -> STOP -> RUNNING_P2P -> RUNNING`
  .trim()
  .split('\n')
  .map((l) => l.split(' -> ') as VfioState[]);

/** vfio_main.c: the FSM arcs a driver must implement, per feature set. */
const DRIVER_ARCS: Record<FeatureSet, string[]> = {
  STOP_COPY: ['RESUMING>STOP', 'STOP>RESUMING', 'STOP>STOP_COPY', 'STOP_COPY>STOP', 'RUNNING>STOP', 'STOP>RUNNING'],
  'STOP_COPY|P2P': [
    'RESUMING>STOP', 'STOP>RESUMING', 'STOP>STOP_COPY', 'STOP_COPY>STOP',
    'RUNNING>RUNNING_P2P', 'RUNNING_P2P>RUNNING', 'RUNNING_P2P>STOP', 'STOP>RUNNING_P2P',
  ],
  'STOP_COPY|PRE_COPY': [
    'RESUMING>STOP', 'STOP>RESUMING', 'STOP>STOP_COPY', 'STOP_COPY>STOP', 'RUNNING>STOP', 'STOP>RUNNING',
    'RUNNING>PRE_COPY', 'PRE_COPY>RUNNING', 'PRE_COPY>STOP_COPY',
  ],
  'STOP_COPY|P2P|PRE_COPY': [
    'RESUMING>STOP', 'STOP>RESUMING', 'STOP>STOP_COPY', 'STOP_COPY>STOP',
    'RUNNING>RUNNING_P2P', 'RUNNING_P2P>RUNNING', 'RUNNING_P2P>STOP', 'STOP>RUNNING_P2P',
    'PRE_COPY>RUNNING', 'PRE_COPY>PRE_COPY_P2P', 'PRE_COPY_P2P>PRE_COPY', 'PRE_COPY_P2P>RUNNING_P2P',
    'PRE_COPY_P2P>STOP_COPY', 'RUNNING>PRE_COPY', 'RUNNING_P2P>PRE_COPY_P2P',
  ],
};

const cases = FEATURE_SETS.flatMap((set) => VFIO_STATES.flatMap((from) => VFIO_STATES.map((to) => ({ set, from, to }))));

describe('vfio_mig_get_next_state, all 256 (current, target, feature set) cases', () => {
  it('covers exactly 4 × 8 × 8 cases and the enum values match vfio.h', () => {
    expect(cases).toHaveLength(256);
    expect(VFIO_STATES.map(stateValue)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('counts valid (cur, new) pairs 16/25/24/47 with identity and 12/20/19/40 without', () => {
    const valid = (set: FeatureSet, withIdentity: boolean) =>
      cases.filter((c) => c.set === set && c.from !== 'ERROR' && (withIdentity || c.from !== c.to) && resolveVfioPath(c.from, c.to, c.set).ok).length;
    expect(FEATURE_SETS.map((s) => valid(s, true))).toEqual([16, 25, 24, 47]);
    expect(FEATURE_SETS.map((s) => valid(s, false))).toEqual([12, 20, 19, 40]);
  });

  it('uses 6/8/9/15 arcs, exactly the lists vfio_main.c tells drivers to implement', () => {
    expect(FEATURE_SETS.map((s) => arcsOf(s).length)).toEqual([6, 8, 9, 15]);
    for (const set of FEATURE_SETS) {
      expect(arcsOf(set).map((a) => `${a.from}>${a.to}`).sort()).toEqual([...DRIVER_ARCS[set]].sort());
    }
  });

  it('takes every multi-step path the kernel comment lists, and no other', () => {
    const multi = cases
      .filter((c) => c.set === ALL)
      .map((c) => resolveVfioPath(c.from, c.to, c.set))
      .flatMap((r) => (r.ok && r.path.length > 2 ? [r.path.join(' -> ')] : []));
    expect(multi.sort()).toEqual(KERNEL_MULTI_STEP_PATHS.map((p) => p.join(' -> ')).sort());
    expect(multi).toHaveLength(25);
  });

  it('every path step is an arc the feature set has, and never passes through a saving-group state', () => {
    for (const { set, from, to } of cases) {
      const r = resolveVfioPath(from, to, set);
      if (!r.ok) continue;
      const arcs = new Set(arcsOf(set).map((a) => `${a.from}>${a.to}`));
      for (let i = 1; i < r.path.length; i++) expect(arcs.has(`${r.path[i - 1]}>${r.path[i]}`)).toBe(true);
      for (const mid of r.path.slice(1, -1)) {
        // The one interior saving state allowed: PRE_COPY -> PRE_COPY_P2P -> STOP_COPY stays inside the group.
        if (inSavingGroup(mid)) expect(r.path).toEqual(['PRE_COPY', 'PRE_COPY_P2P', 'STOP_COPY']);
      }
      for (const s of r.path) expect(isSupported(s, set) || s === 'ERROR').toBe(true);
    }
  });

  it('refuses the blocked arcs STOP_COPY -> PRE_COPY and STOP_COPY -> PRE_COPY_P2P with -EINVAL (a26b499b757c)', () => {
    expect(BLOCKED_ARCS).toEqual([
      ['STOP_COPY', 'PRE_COPY'],
      ['STOP_COPY', 'PRE_COPY_P2P'],
    ]);
    expect(resolveVfioPath('STOP_COPY', 'PRE_COPY', 'STOP_COPY|PRE_COPY')).toMatchObject({ ok: false, errno: 'EINVAL' });
    expect(resolveVfioPath('STOP_COPY', 'PRE_COPY', ALL)).toMatchObject({ ok: false, errno: 'EINVAL' });
    expect(resolveVfioPath('STOP_COPY', 'PRE_COPY_P2P', ALL)).toMatchObject({ ok: false, errno: 'EINVAL' });
    expect(resolveVfioPath('STOP_COPY', 'PRE_COPY', ALL)).toMatchObject({ reason: 'arc STOP_COPY -> PRE_COPY is blocked' });
  });

  it('treats ERROR as the uAPI says: never a target, never left by SET, and ERROR -> ERROR a no-op (driver loop)', () => {
    for (const set of FEATURE_SETS) {
      for (const s of VFIO_STATES) {
        if (s !== 'ERROR') {
          expect(resolveVfioPath('ERROR', s, set).ok).toBe(false);
          expect(resolveVfioPath(s, 'ERROR', set).ok).toBe(false);
        }
      }
      expect(resolveVfioPath('ERROR', 'ERROR', set)).toEqual({ ok: true, path: ['ERROR'], dataFd: null });
    }
  });

  it('refuses targets and current states the feature set lacks', () => {
    expect(resolveVfioPath('RUNNING', 'RUNNING_P2P', 'STOP_COPY')).toMatchObject({ ok: false, reason: 'RUNNING_P2P needs a feature the device lacks' });
    expect(resolveVfioPath('RUNNING', 'PRE_COPY', 'STOP_COPY|P2P').ok).toBe(false);
    expect(resolveVfioPath('PRE_COPY', 'PRE_COPY', 'STOP_COPY').ok).toBe(false);
  });

  it('returns the data_fd kind of the last arc: saving into the group from outside, resuming into RESUMING', () => {
    for (const { set, from, to } of cases) {
      const r = resolveVfioPath(from, to, set);
      if (!r.ok) continue;
      const before = r.path.length > 1 ? r.path[r.path.length - 2]! : to;
      const expected = r.path.length === 1 ? null
        : inSavingGroup(to) && !inSavingGroup(before) ? 'saving'
        : to === 'RESUMING' ? 'resuming' : null;
      expect(r.dataFd, `${set} ${from}->${to}`).toBe(expected);
    }
    expect(resolveVfioPath('RUNNING', 'PRE_COPY', ALL)).toEqual({ ok: true, path: ['RUNNING', 'PRE_COPY'], dataFd: 'saving' });
    expect(resolveVfioPath('PRE_COPY', 'STOP_COPY', ALL)).toEqual({ ok: true, path: ['PRE_COPY', 'PRE_COPY_P2P', 'STOP_COPY'], dataFd: null });
    expect(resolveVfioPath('RUNNING', 'RESUMING', 'STOP_COPY')).toEqual({ ok: true, path: ['RUNNING', 'STOP', 'RESUMING'], dataFd: 'resuming' });
  });

  it('skips optional states the device lacks (RUNNING -> STOP is direct without P2P)', () => {
    expect(resolveVfioPath('RUNNING', 'STOP', 'STOP_COPY|PRE_COPY')).toMatchObject({ path: ['RUNNING', 'STOP'] });
    expect(resolveVfioPath('PRE_COPY', 'STOP_COPY', 'STOP_COPY|PRE_COPY')).toMatchObject({ path: ['PRE_COPY', 'STOP_COPY'] });
    expect(resolveVfioPath('STOP', 'PRE_COPY', 'STOP_COPY|PRE_COPY')).toMatchObject({ path: ['STOP', 'RUNNING', 'PRE_COPY'] });
  });

  it('the table has every 8 × 8 pair under each of the four keys, null exactly where the kernel says -EINVAL', () => {
    const t = vfioTable();
    expect(Object.keys(t)).toEqual(['STOP_COPY', 'STOP_COPY|P2P', 'STOP_COPY|PRE_COPY', 'STOP_COPY|P2P|PRE_COPY']);
    for (const { set, from, to } of cases) {
      const r = resolveVfioPath(from, to, set);
      expect(t[set][from][to]).toEqual(r.ok ? { path: r.path, dataFd: r.dataFd } : null);
    }
    expect(t['STOP_COPY']['STOP']['STOP']).toEqual({ path: ['STOP'], dataFd: null });
  });
});
