/**
 * Symmetry reduction over data: interchangeable *items inside* components (e.g. the VFIO devices that
 * each QEMU holds in its context, and the messages naming them by index). The system supplies the
 * permutations of item indices under which nothing is told apart, and how a permutation acts on a
 * component's snapshot and on a message; a global state is stored as the least (word by word) of its
 * images under every permutation.
 *
 * The work per permutation is a table lookup per word: a component's local id and a channel's message id
 * are each mapped once through the system's functions and memoised.
 */
import type { EventObject } from 'xstate';
import type { CompiledSystem } from './step.js';
import type { AnySnapshot } from './system.js';

export interface DataSymmetry {
  /** Permutations of item indices (perm[i] = where item i goes); the identity may be left out. */
  readonly perms: readonly (readonly number[])[];
  /** The snapshot of `component` with its items permuted. */
  permuteSnapshot(component: string, s: AnySnapshot, perm: readonly number[]): AnySnapshot;
  /** A message with the item it names permuted (return it unchanged when it names none). */
  permuteEvent(e: EventObject, perm: readonly number[]): EventObject;
  /**
   * When the items are channels themselves (e.g. interchangeable multifd channels): the channel each
   * named channel's contents move to under `perm` (channels not named stay). Moved channels must have
   * the same capacity.
   */
  channelMoves?(perm: readonly number[]): Readonly<Record<string, string>>;
  /**
   * Set when the permutations are not exact symmetries of the system (some reachable state's image is not
   * reachable — `symmetryDefects` measures it): why. The quotient may then miss states, so `explore` does
   * not conclude that a property holds, and a violation counts only when its trace replays as a real run.
   */
  readonly approximate?: string;
}

/** What `symmetryDefects` found: reachable states whose image under a permutation is not reachable. */
export interface SymmetryDefects {
  /** Reachable states of the system without symmetry. */
  readonly states: number;
  /** (state, permutation) pairs whose image is not a reachable state. */
  readonly missing: number;
  /** Orbits of the reachable states (classes under the permutations). */
  readonly orbits: number;
  /** The first state (in breadth-first order) with an unreachable image, and under which permutation. */
  readonly example: { readonly state: number; readonly perm: readonly number[] } | null;
}

/**
 * Whether `sym`'s permutations are symmetries of the reachable states of `sys` (explored without
 * symmetry, in `store`): each reachable state's image under each permutation must be reachable too.
 * A small system is enough to find a defect.
 */
export function symmetryDefects(sys: CompiledSystem, store: { readonly size: number; load(idx: number, out: Uint32Array): void }, sym: DataSymmetry): SymmetryDefects {
  const perms = sym.perms.filter((p) => p.some((x, i) => x !== i));
  const n = sys.names.length;
  const w = sys.width;
  const key = (t: Uint32Array) => t.join(',');
  const t = new Uint32Array(w);
  const img = new Uint32Array(w);
  const reachable = new Set<string>();
  for (let i = 0; i < store.size; i++) {
    store.load(i, t);
    reachable.add(key(t));
  }
  const chanWord = new Uint8Array(w);
  for (let k = 0; k < sys.chanNames.length; k++) for (let s = 0; s < sys.chanCap[k]!; s++) chanWord[sys.chanOff[k]! + s] = 1;
  const from = perms.map((perm) => {
    const src = Int32Array.from({ length: w }, (_, i) => i);
    for (const [a, b] of Object.entries(sym.channelMoves?.(perm) ?? {})) {
      const ka = sys.chanNames.indexOf(a);
      const kb = sys.chanNames.indexOf(b);
      for (let s = 0; s < sys.chanCap[ka]!; s++) src[sys.chanOff[kb]! + s] = sys.chanOff[ka]! + s;
    }
    return src;
  });
  let missing = 0;
  let example: SymmetryDefects['example'] = null;
  const orbit = new Set<string>();
  for (let i = 0; i < store.size; i++) {
    store.load(i, t);
    let least = key(t);
    perms.forEach((perm, p) => {
      const src = from[p]!;
      for (let k = 0; k < w; k++) {
        const v = t[src[k]!]!;
        if (k < n) img[k] = sys.tables[k]!.intern(sym.permuteSnapshot(sys.names[k]!, sys.tables[k]!.snapshots[v]!, perm));
        else img[k] = chanWord[k] && v !== 0 ? sys.messages.intern(sym.permuteEvent(sys.messages.events[v]!, perm)) : v;
      }
      const k = key(img);
      if (!reachable.has(k)) {
        missing++;
        example ??= { state: i, perm };
      }
      if (k < least) least = k;
    });
    orbit.add(least);
  }
  return { states: store.size, missing, orbits: orbit.size, example };
}

export function dataSymmetryCanon(sys: CompiledSystem, sym: DataSymmetry): ((t: Uint32Array, base: number) => void) | null {
  const perms = sym.perms.filter((p) => p.some((x, i) => x !== i));
  if (perms.length === 0) return null;
  const P = perms.length;
  const n = sys.names.length;
  const w = sys.width;
  // memo: per component, (local id * P + perm) -> permuted local id; per message, (id * P + perm) -> id
  const localMemo = sys.names.map(() => new Map<number, number>());
  const msgMemo = new Map<number, number>();
  const isChanWord = new Uint8Array(w);
  for (let k = 0; k < sys.chanNames.length; k++) for (let s = 0; s < sys.chanCap[k]!; s++) isChanWord[sys.chanOff[k]! + s] = 1;
  const local = (c: number, id: number, p: number): number => {
    const key = id * P + p;
    let r = localMemo[c]!.get(key);
    if (r === undefined) {
      const table = sys.tables[c]!;
      r = table.intern(sym.permuteSnapshot(sys.names[c]!, table.snapshots[id]!, perms[p]!));
      localMemo[c]!.set(key, r);
    }
    return r;
  };
  const message = (id: number, p: number): number => {
    if (id === 0) return 0;
    const key = id * P + p;
    let r = msgMemo.get(key);
    if (r === undefined) {
      r = sys.messages.intern(sym.permuteEvent(sys.messages.events[id]!, perms[p]!));
      msgMemo.set(key, r);
    }
    return r;
  };
  // for each permutation and word: the word of the original state it is the image of (channels that move)
  const from = perms.map((perm) => {
    const src = Int32Array.from({ length: w }, (_, i) => i);
    const moves = sym.channelMoves?.(perm) ?? {};
    for (const [a, b] of Object.entries(moves)) {
      const ka = sys.chanNames.indexOf(a);
      const kb = sys.chanNames.indexOf(b);
      if (ka < 0 || kb < 0 || sys.chanCap[ka] !== sys.chanCap[kb]) throw new Error(`channel symmetry: cannot move channel '${a}' to '${b}'`);
      for (let s = 0; s < sys.chanCap[ka]!; s++) src[sys.chanOff[kb]! + s] = sys.chanOff[ka]! + s;
    }
    return src;
  });
  const cand = new Uint32Array(w);
  const best = new Uint32Array(w);
  return (t: Uint32Array, base: number) => {
    for (let i = 0; i < w; i++) best[i] = t[base + i]!;
    let improved = false;
    for (let p = 0; p < P; p++) {
      // build the image word by word, stopping as soon as it is known not to be smaller
      let cmp = 0;
      const src = from[p]!;
      for (let i = 0; i < w; i++) {
        const v = t[base + src[i]!]!;
        const m = i < n ? local(i, v, p) : isChanWord[i] ? message(v, p) : v;
        cand[i] = m;
        if (cmp === 0) {
          if (m < best[i]!) cmp = -1;
          else if (m > best[i]!) {
            cmp = 1;
            break;
          }
        }
      }
      if (cmp < 0) {
        best.set(cand);
        improved = true;
      }
    }
    if (improved) for (let i = 0; i < w; i++) t[base + i] = best[i]!;
  };
}
