/**
 * Exhaustive equivalence check of a mutant against the reference: a breadth-first search over the pairs
 * (reference state, mutant state) reachable by the same event sequence, comparing the observation after
 * every event. Both are deterministic and finite (maxBytes bounds every counter), so the mutant is
 * equivalent for an event alphabet exactly when no reachable pair observes differently; otherwise the
 * search returns a shortest distinguishing sequence.
 */
import { type DeviceEvent, applyEvent } from './adapter.js';
import { type DeviceConfig, type ReferenceDevice, STATE_NAMES } from './device.js';
import type { Mutant } from './mutants.js';

/** Every uAPI call the devices take: SET to every number 0..8, with every fault up to 4 arcs deep, and the rest. */
export function fullAlphabet(): DeviceEvent[] {
  const out: DeviceEvent[] = [];
  for (const target of STATE_NAMES) {
    out.push({ type: 'SET_STATE', target });
    for (let atArc = 0; atArc < 5; atArc++) for (const leaves of ['reached', 'ERROR']) out.push({ type: 'SET_STATE', target, fault: { atArc, leaves } });
  }
  out.push({ type: 'SET_STATE', target: 8 });
  for (const type of ['VFIO_DEVICE_RESET', 'VFIO_MIG_GET_PRECOPY_INFO', 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE', 'DATA_FD_READ', 'DATA_FD_WRITE', 'GUEST_DIRTIES_DEVICE', 'GUEST_REINITS_DEVICE']) {
    out.push({ type });
  }
  return out;
}

const clone = <T extends object>(d: T): T => Object.assign(Object.create(Object.getPrototypeOf(d) as object) as T, d);
const key = (d: ReferenceDevice) => JSON.stringify(d);

export interface Distinction {
  /** A shortest event sequence after which the two observe differently (null: equivalent). */
  readonly witness: readonly DeviceEvent[] | null;
  /** Pairs of states explored. */
  readonly explored: number;
  /** False when the search stopped at `limit` pairs without a difference (the state space is larger). */
  readonly complete: boolean;
}

export function distinguish(
  make: (cfg: DeviceConfig) => ReferenceDevice,
  cfg: DeviceConfig,
  mutant: Mutant,
  alphabet: readonly DeviceEvent[],
  limit = 50_000,
): Distinction {
  type Node = { ref: ReferenceDevice; mut: ReferenceDevice; parent: number; event: number };
  const nodes: Node[] = [{ ref: make(cfg), mut: mutant.make(cfg), parent: -1, event: -1 }];
  const seen = new Set([key(nodes[0]!.ref) + '|' + key(nodes[0]!.mut)]);
  const witness = (i: number, last: number) => {
    const evs = [alphabet[last]!];
    for (let n = nodes[i]!; n.parent >= 0; n = nodes[n.parent]!) evs.push(alphabet[n.event]!);
    return evs.reverse();
  };
  for (let i = 0; i < nodes.length; i++) {
    const { ref, mut } = nodes[i]!;
    for (let e = 0; e < alphabet.length; e++) {
      const r = clone(ref);
      const m = clone(mut);
      if (JSON.stringify(applyEvent(r, alphabet[e]!)) !== JSON.stringify(applyEvent(m, alphabet[e]!))) return { witness: witness(i, e), explored: nodes.length, complete: true };
      const k = key(r) + '|' + key(m);
      if (seen.has(k)) continue;
      if (nodes.length >= limit) return { witness: null, explored: nodes.length, complete: false };
      seen.add(k);
      nodes.push({ ref: r, mut: m, parent: i, event: e });
    }
  }
  return { witness: null, explored: nodes.length, complete: true };
}

/** `SET_STATE{STOP}, DATA_FD_READ` */
export function describeEvents(evs: readonly DeviceEvent[]): string {
  return evs
    .map(({ type, ...rest }) => {
      if (type !== 'SET_STATE') return type;
      const f = rest['fault'] as { atArc: number; leaves: string } | undefined;
      return `SET ${String(rest['target'])}${f ? ` (arc ${f.atArc} fails → ${f.leaves})` : ''}`;
    })
    .join(', ');
}
