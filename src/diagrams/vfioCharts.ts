/**
 * The VFIO device per feature set, as a {@link Chart} read off the device machine itself
 * (machines/vfioDevice.ts): the states the set supports plus ERROR, and the machine's `ARC` transitions
 * whose kernel arc that set uses (their `meta.usedIn`; the arc lists of drivers/vfio/vfio_main.c above
 * vfio_mig_get_next_state()), each labelled with what it does to the data_fd session (`meta.session`,
 * the effects include/uapi/linux/vfio.h gives the arc). With PRE_COPY, the arcs vfio.h blocks get a note
 * on STOP_COPY. ERROR is drawn without arcs (a failing arc falls into it, VFIO_DEVICE_RESET leaves it:
 * diagrams/vfio-device.svg has those) and without a note, which would widen the drawing by a third.
 */
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { BLOCKED_ARCS, type FeatureSet, type SessionEffect, isSupported, statesOf } from '../../machines/vfioArcs.js';
import { vfioDeviceMachine } from '../../machines/vfioDevice.js';
import type { Chart, ChartEdge, ChartState } from './chart.js';

/** How an arc's effect on the data session reads on the diagram. */
export const SESSION_LABEL: Readonly<Record<SessionEffect, string>> = {
  'opens-saving': 'opens saving data_fd',
  'opens-resuming': 'opens resuming data_fd',
  keeps: 'keeps saving data_fd',
  closes: 'closes data_fd',
  none: '',
};

/** The blocked arcs whose two ends this feature set supports. */
export function blockedArcsOf(set: FeatureSet): (readonly [string, string])[] {
  return BLOCKED_ARCS.filter(([from, to]) => isSupported(from, set) && isSupported(to, set));
}

interface ArcMeta {
  readonly session: SessionEffect;
  readonly usedIn: readonly FeatureSet[];
}

/** The kernel arcs the machine's `ARC` transitions carry, for one feature set, in state order. */
export function machineArcsOf(set: FeatureSet, machine: AnyStateMachine = vfioDeviceMachine): { from: string; to: string; session: SessionEffect }[] {
  return (Object.values(machine.root.states) as AnyStateNode[]).flatMap((node) =>
    (node.transitions.get('ARC') ?? []).flatMap((t) => {
      const meta = t.meta as ArcMeta | undefined;
      const to = t.target?.[0];
      return meta?.usedIn?.includes(set) && to ? [{ from: node.key, to: to.key, session: meta.session }] : [];
    }),
  );
}

/** The arc diagram of one feature set. */
export function vfioFeatureSetChart(set: FeatureSet, machine: AnyStateMachine = vfioDeviceMachine): Chart {
  const keyOf = (s: string) => `vfio.${s}`;
  const blocked = blockedArcsOf(set);
  const children: ChartState[] = statesOf(set).map((s) => {
    const notes: string[] = [];
    const from = blocked.filter(([a]) => a === s);
    if (from.length > 0) {
      notes.push(
        `Blocked (vfio.h): ${from.map(([a, b]) => `${a} → ${b}`).join(', ')}. The kernel refuses such a SET with -EINVAL.`,
      );
    }
    return { key: keyOf(s), label: s, kind: 'atomic', children: [], internal: [], notes };
  });
  const edges: ChartEdge[] = machineArcsOf(set, machine).map((a) => ({ from: keyOf(a.from), to: keyOf(a.to), labels: [SESSION_LABEL[a.session]] }));
  return {
    title: `VFIO device arcs: ${set}`,
    root: { key: 'vfio', label: 'vfio', kind: 'compound', initial: keyOf('RUNNING'), children, internal: [], notes: [] },
    edges,
  };
}
