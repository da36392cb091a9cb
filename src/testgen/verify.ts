/**
 * State verification for test suites (the W-method's idea, Chow 1978; Lee & Yannakakis 1994): a step is
 * checked not only by what it shows but by the state it leaves — a state that looks right now may hold a
 * wrong counter, a session kept, a flag set twice, visible only steps later. For every explored state
 * the model tells apart from others, a set of step sequences that tell it apart from each (its
 * characterizing set, built from Moore's partition refinement of the explored graph: states are equal
 * when every sequence of steps shows the same on both); a verified suite takes each covering step by a
 * shortest path and then each sequence of the characterizing set of the state it reaches.
 */
import type { ModelGraph } from './graph.js';

/** Moore refinement: levels[k][s] is the class of s among states no sequence of ≤ k steps tells apart. */
export function refine(g: ModelGraph, out: (e: number) => number): Int32Array[] {
  const n = g.stateCount;
  const levels: Int32Array[] = [new Int32Array(n)];
  let count = 1;
  for (;;) {
    const prev = levels[levels.length - 1]!;
    const ids = new Map<string, number>();
    const next = new Int32Array(n);
    for (let s = 0; s < n; s++) {
      const parts: number[] = [prev[s]!];
      for (let e = g.start[s]!; e < g.start[s + 1]!; e++) parts.push(g.stepId[e]!, out(e), prev[g.to[e]!]!);
      const key = parts.join(',');
      let id = ids.get(key);
      if (id === undefined) ids.set(key, (id = ids.size));
      next[s] = id;
    }
    levels.push(next);
    if (ids.size === count) return levels;
    count = ids.size;
  }
}

/** Edges of state s by step id. */
function edgeOf(g: ModelGraph, s: number, step: number): number {
  for (let e = g.start[s]!; e < g.start[s + 1]!; e++) if (g.stepId[e] === step) return e;
  return -1;
}

/**
 * Characterizing sets over a refined graph: `of(s)` is a set of edge paths from s, each a model run, that
 * together tell s apart from every state of another class.
 */
export class Characterizer {
  private readonly memo = new Map<number, readonly number[]>();
  private readonly sets = new Map<number, readonly (readonly number[])[]>();
  private readonly reps: number[] = [];

  constructor(
    private readonly g: ModelGraph,
    private readonly levels: readonly Int32Array[],
    private readonly out: (e: number) => number,
  ) {
    const last = levels[levels.length - 1]!;
    const seen = new Set<number>();
    for (let s = 0; s < g.stateCount; s++) {
      if (seen.has(last[s]!)) continue;
      seen.add(last[s]!);
      this.reps.push(s);
    }
  }

  /** Classes of the explored graph (states no sequence of steps tells apart form one). */
  get classes(): number {
    return this.reps.length;
  }

  /** A shortest run from s (edges) whose observations differ from those of the same steps from t. */
  distinguish(s: number, t: number): readonly number[] {
    const key = s * this.g.stateCount + t;
    const hit = this.memo.get(key);
    if (hit) return hit;
    let level = 1;
    while (this.levels[level]![s] === this.levels[level]![t]) level++;
    const prev = this.levels[level - 1]!;
    let best: readonly number[] | null = null;
    for (let e = this.g.start[s]!; e < this.g.start[s + 1]!; e++) {
      const f = edgeOf(this.g, t, this.g.stepId[e]!);
      // the step is a model step from s; from t the model has no such step, or it shows something else
      if (f < 0 || this.out(f) !== this.out(e)) {
        best = [e];
        break;
      }
      if (best === null && prev[this.g.to[e]!] !== prev[this.g.to[f]!]) best = [e, ...this.distinguish(this.g.to[e]!, this.g.to[f]!)];
    }
    if (best === null) {
      // t has a step s lacks: s and t differ in what they can do; find it from t's side one step later
      best = [];
    }
    this.memo.set(key, best);
    return best;
  }

  /** The characterizing set of s: distinct runs from s, none a prefix of another. */
  of(s: number): readonly (readonly number[])[] {
    const hit = this.sets.get(s);
    if (hit) return hit;
    const last = this.levels[this.levels.length - 1]!;
    const runs = new Map<string, readonly number[]>();
    for (const t of this.reps) {
      if (last[t] === last[s]) continue;
      const w = this.distinguish(s, t);
      if (w.length > 0) runs.set(w.join(','), w);
    }
    const all = [...runs.values()].sort((a, b) => b.length - a.length);
    const kept: (readonly number[])[] = [];
    for (const w of all) if (!kept.some((k) => w.every((x, i) => k[i] === x))) kept.push(w);
    this.sets.set(s, kept);
    return kept;
  }
}
