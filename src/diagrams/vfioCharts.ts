/**
 * The VFIO device per feature set, as a {@link Chart}: the states the set supports plus ERROR, and the
 * kernel's single-step arcs for that set (`arcsOf`, i.e. every step `vfio_mig_get_next_state()` can hand
 * the driver), each labelled with what it does to the data_fd session. ERROR gets a note (only
 * VFIO_DEVICE_RESET leaves it); with PRE_COPY, the arcs vfio.h blocks get a note on STOP_COPY.
 */
import { BLOCKED_ARCS, type FeatureSet, type SessionEffect, arcsOf, isSupported, statesOf } from '../../machines/vfioArcs.js';
import type { Chart, ChartState } from './chart.js';

/** How an arc's effect on the data session reads on the diagram. */
export const SESSION_LABEL: Readonly<Record<SessionEffect, string>> = {
  'opens-saving': 'opens saving data_fd',
  'opens-resuming': 'opens resuming data_fd',
  keeps: 'keeps saving data_fd',
  closes: 'closes data_fd',
  none: '',
};

export const ERROR_NOTE =
  'Reached only when a driver fails an arc and cannot restore a valid state; only VFIO_DEVICE_RESET leaves ERROR (to RUNNING).';

/** The blocked arcs whose two ends this feature set supports. */
export function blockedArcsOf(set: FeatureSet): (readonly [string, string])[] {
  return BLOCKED_ARCS.filter(([from, to]) => isSupported(from, set) && isSupported(to, set));
}

/** The arc diagram of one feature set. */
export function vfioFeatureSetChart(set: FeatureSet): Chart {
  const keyOf = (s: string) => `vfio.${s}`;
  const blocked = blockedArcsOf(set);
  const children: ChartState[] = statesOf(set).map((s) => {
    const notes: string[] = [];
    if (s === 'ERROR') notes.push(ERROR_NOTE);
    const from = blocked.filter(([a]) => a === s);
    if (from.length > 0) {
      notes.push(
        `Blocked (vfio.h): ${from.map(([a, b]) => `${a} → ${b}`).join(', ')}. The kernel refuses such a SET with -EINVAL.`,
      );
    }
    return { key: keyOf(s), label: s, kind: 'atomic', children: [], internal: [], notes };
  });
  return {
    title: `VFIO device arcs: ${set}`,
    root: { key: 'vfio', label: 'vfio', kind: 'compound', initial: keyOf('RUNNING'), children, internal: [], notes: [] },
    edges: arcsOf(set).map((a) => ({ from: keyOf(a.from), to: keyOf(a.to), labels: [SESSION_LABEL[a.session]] })),
  };
}
