/**
 * The VFIO migration state set, its feature flags and the kernel's next-step table: the one source of
 * truth for every device transition in this project. The device machine, the path resolver, the CLI
 * table and the diagrams are all derived from the data in this file.
 *
 * Follows (Linux mainline v7.2-rc1 and later):
 *  - include/uapi/linux/vfio.h — `enum vfio_device_mig_state` (values 0..7, VFIO_DEVICE_STATE_NR = 8),
 *    the `VFIO_MIGRATION_*` flags, the FSM comment (arc meanings, the saving group, blocked arcs).
 *  - drivers/vfio/vfio_main.c — `vfio_mig_get_next_state()`: `vfio_from_fsm_table[cur][new]` (the next
 *    step towards `new`) and `state_flags_table[state]` (the flags a state needs), with the loop fix
 *    a26b499b757c ("prevent infinite loop ... on blocked arc", v7.2-rc1, backported to stable).
 *
 * @example
 *   import { nextStep, arcsOf } from 'migration-statecharts/machines/vfio-arcs';
 *   // the kernel walks through P2P first, and a driver with PRE_COPY but not P2P implements 9 arcs
 *   nextStep('RUNNING', 'STOP_COPY'); // => 'RUNNING_P2P'
 *   arcsOf('STOP_COPY|PRE_COPY').length; // => 9
 */

/** The uAPI states, indexed by their `enum vfio_device_mig_state` value. */
export const VFIO_STATES = [
  'ERROR', // 0
  'STOP', // 1
  'RUNNING', // 2
  'STOP_COPY', // 3
  'RESUMING', // 4
  'RUNNING_P2P', // 5
  'PRE_COPY', // 6
  'PRE_COPY_P2P', // 7
] as const;
export type VfioState = (typeof VFIO_STATES)[number];

/** `VFIO_DEVICE_STATE_NR`: a count sentinel, not a state; requesting it or beyond is -EINVAL. */
export const VFIO_DEVICE_STATE_NR = 8;

/** `enum vfio_device_mig_state` value of a state. */
export function stateValue(s: VfioState): number {
  return VFIO_STATES.indexOf(s);
}

/** `struct vfio_device_feature_migration.flags` bits (vfio.h). */
export const VFIO_MIGRATION_STOP_COPY = 1 << 0;
export const VFIO_MIGRATION_P2P = 1 << 1;
export const VFIO_MIGRATION_PRE_COPY = 1 << 2;

export type VfioFeature = 'STOP_COPY' | 'P2P' | 'PRE_COPY';

/**
 * The four flag combinations vfio.h defines. STOP_COPY is mandatory
 * (vfio_pci_core_register_device() refuses mig_ops without it); every other combination is reserved.
 */
export const FEATURE_SETS = ['STOP_COPY', 'STOP_COPY|P2P', 'STOP_COPY|PRE_COPY', 'STOP_COPY|P2P|PRE_COPY'] as const;
export type FeatureSet = (typeof FEATURE_SETS)[number];

export function featureFlags(set: FeatureSet): number {
  let flags = VFIO_MIGRATION_STOP_COPY;
  if (set.includes('P2P')) flags |= VFIO_MIGRATION_P2P;
  if (set.includes('PRE_COPY')) flags |= VFIO_MIGRATION_PRE_COPY;
  return flags;
}

export function hasFeature(set: FeatureSet, feature: VfioFeature): boolean {
  return set.split('|').includes(feature);
}

/** The feature set of a flags word, or undefined when the combination is reserved. */
export function featureSetOfFlags(flags: number): FeatureSet | undefined {
  return FEATURE_SETS.find((s) => featureFlags(s) === flags);
}

/** `state_flags_table` (vfio_main.c): the flags a state needs. ERROR needs ~0U, so it is never supported. */
export const STATE_REQUIRES: Readonly<Record<VfioState, number>> = {
  ERROR: 0xffffffff,
  STOP: VFIO_MIGRATION_STOP_COPY,
  RUNNING: VFIO_MIGRATION_STOP_COPY,
  STOP_COPY: VFIO_MIGRATION_STOP_COPY,
  RESUMING: VFIO_MIGRATION_STOP_COPY,
  RUNNING_P2P: VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
  PRE_COPY: VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
  PRE_COPY_P2P: VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
};

/** True when `state_flags_table[state] & migration_flags == state_flags_table[state]`. */
export function isSupported(state: VfioState, set: FeatureSet): boolean {
  const need = STATE_REQUIRES[state];
  return ((need & featureFlags(set)) >>> 0) === need >>> 0;
}

/** The states a device with this feature set can be in: the supported ones, plus ERROR. */
export function statesOf(set: FeatureSet): VfioState[] {
  return VFIO_STATES.filter((s) => s === 'ERROR' || isSupported(s, set));
}

/** One line of meaning per state, paraphrasing the comment above the enum in vfio.h. */
export const STATE_MEANING: Readonly<Record<VfioState, string>> = {
  ERROR: 'A transition failed and no valid state could be restored; only VFIO_DEVICE_RESET leaves it.',
  STOP: 'Stopped: no DMA, no interrupts, no internal state change; still answers config space.',
  RUNNING: 'Fully operational.',
  STOP_COPY: 'Stopped; the saving data_fd streams the complete device state until EOF.',
  RESUMING: 'Stopped; takes in a new device state written to the resuming data_fd.',
  RUNNING_P2P: 'Running, but starts no new peer-to-peer DMA (P2P-quiesced).',
  PRE_COPY: 'Running; the saving data_fd streams precopy data (initial, then dirty).',
  PRE_COPY_P2P: 'PRE_COPY plus P2P quiescing.',
};

/**
 * `vfio_from_fsm_table[cur][new]` (vfio_main.c), written out in full: the next state on the way from
 * `cur` to `new`, assuming every optional state exists. Unsupported states on the way are skipped by
 * `vfio_mig_get_next_state()` (see ../machines/vfioPath.ts). ERROR means "no way".
 */
export const NEXT_STEP: Readonly<Record<VfioState, Readonly<Record<VfioState, VfioState>>>> = {
  STOP: {
    STOP: 'STOP',
    RUNNING: 'RUNNING_P2P',
    PRE_COPY: 'RUNNING_P2P',
    PRE_COPY_P2P: 'RUNNING_P2P',
    STOP_COPY: 'STOP_COPY',
    RESUMING: 'RESUMING',
    RUNNING_P2P: 'RUNNING_P2P',
    ERROR: 'ERROR',
  },
  RUNNING: {
    STOP: 'RUNNING_P2P',
    RUNNING: 'RUNNING',
    PRE_COPY: 'PRE_COPY',
    PRE_COPY_P2P: 'RUNNING_P2P',
    STOP_COPY: 'RUNNING_P2P',
    RESUMING: 'RUNNING_P2P',
    RUNNING_P2P: 'RUNNING_P2P',
    ERROR: 'ERROR',
  },
  PRE_COPY: {
    STOP: 'RUNNING',
    RUNNING: 'RUNNING',
    PRE_COPY: 'PRE_COPY',
    PRE_COPY_P2P: 'PRE_COPY_P2P',
    STOP_COPY: 'PRE_COPY_P2P',
    RESUMING: 'RUNNING',
    RUNNING_P2P: 'RUNNING',
    ERROR: 'ERROR',
  },
  PRE_COPY_P2P: {
    STOP: 'RUNNING_P2P',
    RUNNING: 'RUNNING_P2P',
    PRE_COPY: 'PRE_COPY',
    PRE_COPY_P2P: 'PRE_COPY_P2P',
    STOP_COPY: 'STOP_COPY',
    RESUMING: 'RUNNING_P2P',
    RUNNING_P2P: 'RUNNING_P2P',
    ERROR: 'ERROR',
  },
  STOP_COPY: {
    STOP: 'STOP',
    RUNNING: 'STOP',
    PRE_COPY: 'ERROR', // blocked arc (vfio.h: "The following transitions are blocked")
    PRE_COPY_P2P: 'ERROR', // blocked arc
    STOP_COPY: 'STOP_COPY',
    RESUMING: 'STOP',
    RUNNING_P2P: 'STOP',
    ERROR: 'ERROR',
  },
  RESUMING: {
    STOP: 'STOP',
    RUNNING: 'STOP',
    PRE_COPY: 'STOP',
    PRE_COPY_P2P: 'STOP',
    STOP_COPY: 'STOP',
    RESUMING: 'RESUMING',
    RUNNING_P2P: 'STOP',
    ERROR: 'ERROR',
  },
  RUNNING_P2P: {
    STOP: 'STOP',
    RUNNING: 'RUNNING',
    PRE_COPY: 'RUNNING',
    PRE_COPY_P2P: 'PRE_COPY_P2P',
    STOP_COPY: 'STOP',
    RESUMING: 'STOP',
    RUNNING_P2P: 'RUNNING_P2P',
    ERROR: 'ERROR',
  },
  ERROR: {
    STOP: 'ERROR',
    RUNNING: 'ERROR',
    PRE_COPY: 'ERROR',
    PRE_COPY_P2P: 'ERROR',
    STOP_COPY: 'ERROR',
    RESUMING: 'ERROR',
    RUNNING_P2P: 'ERROR',
    ERROR: 'ERROR',
  },
};

export function nextStep(cur: VfioState, target: VfioState): VfioState {
  return NEXT_STEP[cur][target];
}

/**
 * The saving group (vfio.h): PRE_COPY, PRE_COPY_P2P and STOP_COPY share one saving data_fd. Moving
 * inside the group keeps the fd; a path never passes *through* a group state, it only starts or ends there.
 */
export const SAVING_GROUP: readonly VfioState[] = ['PRE_COPY', 'PRE_COPY_P2P', 'STOP_COPY'];

export function inSavingGroup(s: VfioState): boolean {
  return s === 'PRE_COPY' || s === 'PRE_COPY_P2P' || s === 'STOP_COPY';
}

/** The kind of data_fd a session uses. */
export type DataFdKind = 'saving' | 'resuming';

/** What one arc does to the data session (vfio.h FSM comment). */
export type SessionEffect = 'opens-saving' | 'opens-resuming' | 'keeps' | 'closes' | 'none';

/**
 * The session effect of an arc, from the two session rules of vfio.h: the saving group shares one
 * saving fd (entering it opens one, leaving it ends it, moving inside keeps it), and RESUMING owns a
 * resuming fd (entered only from STOP, left only to STOP).
 */
export function sessionEffect(from: VfioState, to: VfioState): SessionEffect {
  const a = inSavingGroup(from);
  const b = inSavingGroup(to);
  if (!a && b) return 'opens-saving';
  if (a && b) return 'keeps';
  if (a && !b) return 'closes';
  if (to === 'RESUMING') return 'opens-resuming';
  if (from === 'RESUMING') return 'closes';
  return 'none';
}

/** The data_fd kind an arc returns to the user when it is the last step of a SET (null: data_fd = -1). */
export function dataFdOf(from: VfioState, to: VfioState): DataFdKind | null {
  const e = sessionEffect(from, to);
  return e === 'opens-saving' ? 'saving' : e === 'opens-resuming' ? 'resuming' : null;
}

/** A single-step arc of the FSM. */
export interface VfioArc {
  readonly from: VfioState;
  readonly to: VfioState;
  /** Flags a device needs for the kernel to ever use this arc as a step (union of both ends). */
  readonly requires: number;
  readonly session: SessionEffect;
}

/**
 * The arcs a driver with this feature set must implement: every single step that
 * `vfio_mig_get_next_state()` can hand to the driver, i.e. (cur, next) for all supported cur and new.
 * (Computed by walking the table, so it can never disagree with it.)
 */
export function arcsOf(set: FeatureSet): VfioArc[] {
  const seen = new Set<string>();
  const arcs: VfioArc[] = [];
  for (const cur of VFIO_STATES) {
    if (!isSupported(cur, set)) continue;
    for (const target of VFIO_STATES) {
      if (target === cur || !isSupported(target, set)) continue;
      const next = skipUnsupported(cur, target, set);
      if (next === 'ERROR') continue;
      const key = `${cur}>${next}`;
      if (seen.has(key)) continue;
      seen.add(key);
      arcs.push({
        from: cur,
        to: next,
        requires: (STATE_REQUIRES[cur] | STATE_REQUIRES[next]) >>> 0,
        session: sessionEffect(cur, next),
      });
    }
  }
  return arcs.sort((x, y) => stateValue(x.from) - stateValue(y.from) || stateValue(x.to) - stateValue(y.to));
}

/**
 * One call of the kernel's inner loop: `next = table[cur][new]`, then while `next` is unsupported,
 * `next = table[next][new]` — stopping at ERROR (the a26b499b757c fix; before it, the blocked arcs
 * STOP_COPY→PRE_COPY(_P2P) spun here forever because ERROR is never supported).
 */
export function skipUnsupported(cur: VfioState, target: VfioState, set: FeatureSet): VfioState {
  let next = NEXT_STEP[cur][target];
  while (next !== 'ERROR' && !isSupported(next, set)) next = NEXT_STEP[next][target];
  return next;
}

/** Arcs the kernel refuses although both ends exist: the table answers ERROR for them (vfio.h "blocked"). */
export const BLOCKED_ARCS: ReadonlyArray<readonly [VfioState, VfioState]> = VFIO_STATES.flatMap((from) =>
  VFIO_STATES.filter((to) => from !== 'ERROR' && to !== 'ERROR' && NEXT_STEP[from][to] === 'ERROR').map(
    (to) => [from, to] as const,
  ),
);
