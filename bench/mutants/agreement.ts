/**
 * Exhaustive agreement of the model and the reference device: a breadth-first search over the pairs
 * (model snapshot, reference device state) reachable by the same sequence of the model's events,
 * comparing after every event the model's observation (src/testgen's observeDevice on the machine's
 * snapshots — the machine used as a black box, as xstate/graph uses it) with the reference's. Stronger
 * than running generated suites: it covers every event in every reachable data state.
 */
import { type AnyStateMachine, type EventObject, initialTransition, transition } from 'xstate';
import { DEVICE_FIELDS, matches, observeDevice } from '../../src/testgen/index.js';
import type { JsonValue } from '../../src/testgen/index.js';
import { type DeviceEvent, applyEvent } from './adapter.js';
import { ReferenceDevice } from './device.js';
import { describeEvents } from './equivalence.js';
import type { ConfigModel } from './run.js';

export interface Agreement {
  /** Pairs of states explored. */
  readonly explored: number;
  /** Up to `max` disagreements: a shortest event sequence and the differing fields. */
  readonly disagreements: readonly { readonly events: string; readonly fields: string }[];
}

type Snap = ReturnType<typeof initialTransition>[0];
const clone = <T extends object>(d: T): T => Object.assign(Object.create(Object.getPrototypeOf(d) as object) as T, d);
const snapKey = (s: Snap) => JSON.stringify([s.value, s.context]);

export function modelAgreement(machine: AnyStateMachine, m: ConfigModel, max = 5): Agreement {
  type Node = { snap: Snap; dev: ReferenceDevice; parent: number; event: number };
  const [first] = initialTransition(machine, m.input);
  const nodes: Node[] = [{ snap: first, dev: new ReferenceDevice(m.cfg), parent: -1, event: -1 }];
  const seen = new Set([snapKey(first) + '|' + JSON.stringify(nodes[0]!.dev)]);
  const out: { events: string; fields: string }[] = [];
  const trail = (i: number, last: number) => {
    const evs: DeviceEvent[] = [m.events[last]!];
    for (let n = nodes[i]!; n.parent >= 0; n = nodes[n.parent]!) evs.push(m.events[n.event]!);
    return describeEvents(evs.reverse());
  };
  for (let i = 0; i < nodes.length && out.length < max; i++) {
    const { snap, dev } = nodes[i]!;
    for (let e = 0; e < m.events.length && out.length < max; e++) {
      const ev = m.events[e]!;
      const [next] = transition(machine, snap, ev as EventObject);
      const want = observeDevice(next, snap, ev as EventObject);
      const d = clone(dev);
      const got = applyEvent(d, ev, (want['precopyInitial'] ?? null) !== null) as unknown as Record<string, JsonValue>;
      const bad = DEVICE_FIELDS.filter((f) => !matches(want[f] ?? null, got[f] ?? null));
      if (bad.length > 0) {
        out.push({ events: trail(i, e), fields: bad.map((f) => `${f}: model ${JSON.stringify(want[f])}, reference ${JSON.stringify(got[f])}`).join('; ') });
        continue;
      }
      const k = snapKey(next) + '|' + JSON.stringify(d);
      if (seen.has(k)) continue;
      seen.add(k);
      nodes.push({ snap: next, dev: d, parent: i, event: e });
    }
  }
  return { explored: nodes.length, disagreements: out };
}
