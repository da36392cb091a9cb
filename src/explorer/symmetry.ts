/**
 * Symmetry reduction for interchangeable components: a global state is stored in canonical form, its
 * group members sorted by (local id, contents of the member's channels). Members share one local table
 * (same machine, equal input), so equal ids mean equal snapshots.
 *
 * Sound when nothing tells the members apart: no invariant, message or other component refers to a
 * member by its name or index. The caller declares that by listing the group.
 */
import type { CompiledSystem } from './step.js';
import { type SymmetryGroup, SystemError } from './system.js';

export function symmetryCanon(sys: CompiledSystem, groups: readonly SymmetryGroup[]): ((t: Uint32Array, base: number) => void) | null {
  const plans = groups.map((g) => planGroup(sys, g)).filter((p) => p.members.length > 1);
  if (plans.length === 0) return null;
  const scratch = new Uint32Array(sys.width);
  if (plans.every((p) => p.members[0]!.length === 1)) {
    // Members without channels: sort their words in place (insertion sort; groups are small).
    const pos = plans.map((p) => Int32Array.from(p.members.map((m) => m[0]!)));
    return (t: Uint32Array, base: number) => {
      for (const ps of pos) {
        for (let i = 1; i < ps.length; i++) {
          const v = t[base + ps[i]!]!;
          let j = i - 1;
          while (j >= 0 && t[base + ps[j]!]! > v) {
            t[base + ps[j + 1]!] = t[base + ps[j]!]!;
            j--;
          }
          t[base + ps[j + 1]!] = v;
        }
      }
    };
  }
  return (t: Uint32Array, base: number) => {
    const view = base === 0 ? t : t.subarray(base, base + sys.width);
    for (const p of plans) sortMembers(view, p, scratch);
  };
}

interface Plan {
  /** positions[m]: the tuple words that belong to member m, in comparison order. */
  readonly members: Int32Array[];
  readonly order: number[];
}

function planGroup(sys: CompiledSystem, g: SymmetryGroup): Plan {
  const idx = g.components.map((n) => {
    const i = sys.names.indexOf(n);
    if (i < 0) throw new SystemError(`symmetry group names unknown component '${n}'`);
    return i;
  });
  const table = sys.tables[idx[0]!];
  for (const i of idx) {
    if (sys.tables[i] !== table) {
      throw new SystemError(`symmetry group: '${sys.names[i]}' is not interchangeable with '${sys.names[idx[0]!]}' (different machine or input)`);
    }
  }
  const chans = g.channels ?? idx.map(() => []);
  if (chans.length !== idx.length) throw new SystemError('symmetry group: give one channel list per member');
  const listed = new Set(chans.flat());
  (sys.spec.channels ?? []).forEach((c) => {
    const touches = g.components.includes(c.from) || g.components.includes(c.to);
    if (touches && !listed.has(c.name)) {
      throw new SystemError(`symmetry group: channel '${c.name}' touches a member but is not listed with it`);
    }
  });
  const members = idx.map((ci, m) => {
    const pos = [ci];
    for (const name of chans[m]!) {
      const k = sys.chanNames.indexOf(name);
      if (k < 0) throw new SystemError(`symmetry group names unknown channel '${name}'`);
      for (let s = 0; s < sys.chanCap[k]!; s++) pos.push(sys.chanOff[k]! + s);
    }
    return Int32Array.from(pos);
  });
  const len = members[0]!.length;
  if (members.some((p) => p.length !== len)) throw new SystemError('symmetry group: members have channels of different sizes');
  return { members, order: members.map((_, i) => i) };
}

function less(t: Uint32Array, a: Int32Array, b: Int32Array): number {
  for (let i = 0; i < a.length; i++) {
    const d = t[a[i]!]! - t[b[i]!]!;
    if (d !== 0) return d;
  }
  return 0;
}

function sortMembers(t: Uint32Array, p: Plan, scratch: Uint32Array): void {
  const m = p.members;
  // Fast path: already sorted.
  let sorted = true;
  for (let i = 1; i < m.length; i++) {
    if (less(t, m[i - 1]!, m[i]!) > 0) {
      sorted = false;
      break;
    }
  }
  if (sorted) return;
  const order = p.order;
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((x, y) => less(t, m[x]!, m[y]!));
  // scratch[i-th member's words] = words of member order[i]
  const len = m[0]!.length;
  for (let i = 0; i < m.length; i++) {
    const src = m[order[i]!]!;
    for (let k = 0; k < len; k++) scratch[i * len + k] = t[src[k]!]!;
  }
  for (let i = 0; i < m.length; i++) {
    const dst = m[i]!;
    for (let k = 0; k < len; k++) t[dst[k]!] = scratch[i * len + k]!;
  }
}
