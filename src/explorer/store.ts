/**
 * The set of visited global states, built for one memory access per lookup.
 *
 * States are stored bit-packed (see pack.ts), `lanes` 31-bit words each, *inside* an open-addressing
 * hash table (linear probing, a power of two in size, doubled at load 0.75; the slot is the top bits of
 * the hash), so checking whether a successor was seen touches one place in memory — for four VFIO devices
 * one 4-byte word. Beside the table, in discovery order: each state's lanes again (that list *is* the BFS
 * queue, read front to back) and its parent (a shortest trace is a walk up the parent pointers; no path
 * is ever copied). The state index of each slot is kept only when asked for (`indexed`: the search
 * records edges for the liveness checks).
 *
 * Lookups come in batches (all successors of one state, `insertBatch`), in one tight loop whose
 * cache misses the processor overlaps. (Touching the slots of the next batch ahead of time, tried,
 * gained nothing measurable here.)
 *
 * Retained bytes per state: (4·lanes (+4 when indexed)) / load + 4·lanes + 4 — with one lane, 17 to 26.
 */
import { Layout, hashLanes } from './pack.js';

const EMPTY = -1;
const MAX_LOAD = 0.75;
const GROWTH = 2;
/** growth of the queue and parent lists */
const LIST_GROWTH = 1.5;

export class StateStore {
  layout: Layout;
  /** lanes per state (layout.lanes) */
  private l: number;
  /** keys[slot·lanes + k]; the first lane of a free slot holds EMPTY. */
  private keys: Int32Array;
  /** state index of each slot (only when indexed) */
  private slotIdx: Int32Array;
  private cap: number;
  /** lanes of each state, in discovery order */
  private queue: Int32Array;
  parent: Int32Array;
  size = 0;
  /** Bumped whenever the packing changes (packed states computed before are stale then). */
  layoutEpoch = 0;

  constructor(
    readonly width: number,
    readonly indexed: boolean,
    initialSlots = 1 << 12,
  ) {
    this.layout = Layout.initial(width);
    this.l = this.layout.lanes;
    this.cap = initialSlots;
    this.shift = 32 - Math.log2(initialSlots);
    this.growAt = Math.floor(initialSlots * MAX_LOAD);
    this.keys = new Int32Array(initialSlots * this.l).fill(EMPTY);
    this.slotIdx = new Int32Array(indexed ? initialSlots : 0);
    const n = Math.ceil(initialSlots * MAX_LOAD) + 1;
    this.queue = new Int32Array(n * this.l);
    this.parent = new Int32Array(n);
  }

  /** Bytes the store holds now. */
  get bytes(): number {
    return this.keys.byteLength + this.slotIdx.byteLength + this.queue.byteLength + this.parent.byteLength;
  }

  /** Bytes the next growth of the table would allocate (for memory budgets). */
  get nextGrowthBytes(): number {
    const cap = this.cap * GROWTH;
    return cap * (this.l * 4 + (this.indexed ? 4 : 0));
  }

  /** Whether inserting `n` more states would pass the maximum load. */
  wouldGrow(n: number): boolean {
    return this.size + n > this.growAt;
  }
  private growAt: number;

  /** 32 - log2(cap) */
  private shift: number;

  /**
   * Insert a batch: the successors of state `from`, packed in out[k·lanes ..] with hashes[k], where
   * steps[k] ≥ 0 (steps[k] < 0 is the state itself). Writes each one's index to found[k] (when the store
   * keeps indices) and returns how many were taken — all n, or fewer when the store reached `stopAt`
   * states. The caller grows the table first when `wouldGrow(n)` says so. New states get the next
   * indices, in batch order.
   */
  insertBatch(out: Int32Array, hashes: Int32Array, steps: Int32Array, n: number, from: number, found: Int32Array, stopAt: number): number {
    if (this.l === 1) return this.insertBatch1(out, hashes, steps, n, from, found, stopAt);
    const l = this.l;
    const keys = this.keys;
    const mask = this.cap - 1;
    const shift = this.shift;
    const indexed = this.indexed;
    for (let b = 0; b < n; b++) {
      if (steps[b]! < 0) {
        found[b] = from;
        continue;
      }
      const at = b * l;
      const first = out[at]!;
      let slot = hashes[b]! >>> shift;
      let idx = -1;
      for (;;) {
        const base = slot * l;
        const k0 = keys[base]!;
        if (k0 === first) {
          let k = 1;
          while (k < l && keys[base + k] === out[at + k]) k++;
          if (k === l) {
            if (indexed) idx = this.slotIdx[slot]!;
            break;
          }
        } else if (k0 === EMPTY) {
          idx = this.place(out, at, slot, from);
          if (this.size >= stopAt) {
            found[b] = idx;
            return b + 1;
          }
          break;
        }
        slot = (slot + 1) & mask;
      }
      found[b] = idx;
    }
    return n;
  }

  /** insertBatch for one-lane states: the same, without the loops over lanes. */
  private insertBatch1(out: Int32Array, hashes: Int32Array, steps: Int32Array, n: number, from: number, found: Int32Array, stopAt: number): number {
    const keys = this.keys;
    const mask = this.cap - 1;
    const shift = this.shift;
    const indexed = this.indexed;
    for (let b = 0; b < n; b++) {
      if (steps[b]! < 0) {
        found[b] = from;
        continue;
      }
      const key = out[b]!;
      let slot = hashes[b]! >>> shift;
      let k0 = keys[slot]!;
      while (k0 !== key && k0 !== EMPTY) {
        slot = (slot + 1) & mask;
        k0 = keys[slot]!;
      }
      if (k0 === key) {
        found[b] = indexed ? this.slotIdx[slot]! : -1;
      } else {
        found[b] = this.place(out, b, slot, from);
        if (this.size >= stopAt) return b + 1;
      }
    }
    return n;
  }

  /** Put a new state in free slot `slot`: the next index, in discovery order. */
  private place(src: Int32Array, at: number, slot: number, from: number): number {
    const l = this.l;
    const idx = this.size++;
    const base = slot * l;
    for (let k = 0; k < l; k++) this.keys[base + k] = src[at + k]!;
    if (this.indexed) this.slotIdx[slot] = idx;
    if (idx === this.parent.length) this.growLists();
    const q = idx * l;
    for (let k = 0; k < l; k++) this.queue[q + k] = src[at + k]!;
    this.parent[idx] = from;
    return idx;
  }

  /** Grow the table by the growth factor (streamed in slot order: home slots are monotone in the hash). */
  grow(): void {
    this.rebuild(this.cap * GROWTH, false);
  }

  /** Insert an unpacked tuple (widening the packing first when it does not fit): as `insertBatch`. */
  insertWords(t: Uint32Array, from: number): number {
    let buf = new Int32Array(this.l);
    for (let bad = this.layout.pack(t, 0, buf, 0); bad >= 0; bad = this.layout.pack(t, 0, buf, 0)) {
      this.widen(bad, t[bad]!);
      buf = new Int32Array(this.l);
    }
    if (this.wouldGrow(1)) this.grow();
    const found = new Int32Array(1);
    const before = this.size;
    this.insertBatch(buf, Int32Array.of(hashLanes(buf, 0, this.l)), Int32Array.of(0), 1, from, found, Infinity);
    return this.size > before ? found[0]! : this.indexed ? -1 - found[0]! : -1;
  }

  /** Widen position `pos` to hold `value`: every stored state is repacked and the table rebuilt. */
  widen(pos: number, value: number): void {
    const old = this.layout;
    const next = old.widened(pos, value);
    const l = next.lanes;
    const t = new Uint32Array(this.width);
    const queue = new Int32Array(this.parent.length * l);
    for (let i = 0; i < this.size; i++) {
      old.unpack(this.queue, i * old.lanes, t);
      next.pack(t, 0, queue, i * l);
    }
    this.layout = next;
    this.l = l;
    this.queue = queue;
    this.layoutEpoch++;
    this.rebuild(this.cap, true);
  }

  /** Copy the words of state `idx` into `out`. */
  load(idx: number, out: Uint32Array): void {
    this.layout.unpack(this.queue, idx * this.l, out);
  }

  /** Copy the lanes of state `idx` into out[at ..]. */
  loadLanes(idx: number, out: Int32Array, at = 0): void {
    const l = this.l;
    const q = idx * l;
    for (let k = 0; k < l; k++) out[at + k] = this.queue[q + k]!;
  }

  private growLists(): void {
    const n = Math.ceil(this.parent.length * LIST_GROWTH) + 16;
    const queue = new Int32Array(n * this.l);
    queue.set(this.queue);
    this.queue = queue;
    const parent = new Int32Array(n);
    parent.set(this.parent);
    this.parent = parent;
  }

  /**
   * Lay the table out anew with `cap` slots. From the old table in slot order when the packing is
   * unchanged (home slots are monotone in the hash, so both sides stream through memory), else from the
   * queue.
   */
  private rebuild(cap: number, fromQueue: boolean): void {
    const l = this.l;
    const keys = new Int32Array(cap * l).fill(EMPTY);
    const slotIdx = new Int32Array(this.indexed ? cap : 0);
    const shift = 32 - Math.log2(cap);
    const src = fromQueue ? this.queue : this.keys;
    const n = fromQueue ? this.size : this.cap;
    layOut(src, n, l, keys, shift, this.indexed ? (fromQueue ? null : this.slotIdx) : undefined, slotIdx);
    this.keys = keys;
    this.slotIdx = slotIdx;
    this.cap = cap;
    this.shift = shift;
    this.growAt = Math.floor(cap * MAX_LOAD);
  }
}

/**
 * Put the n packed states of `src` (a queue, or an old table whose free slots start with EMPTY) into
 * the empty table `keys`. Indices: from `oldIdx` (an old table's), the position in `src` (a queue:
 * oldIdx null), or none (undefined).
 */
function layOut(src: Int32Array, n: number, l: number, keys: Int32Array, shift: number, oldIdx: Int32Array | null | undefined, slotIdx: Int32Array): void {
  const mask = (keys.length / l) - 1;
  for (let i = 0; i < n; i++) {
    const at = i * l;
    if (src[at] === EMPTY) continue;
    let slot = hashLanes(src, at, l) >>> shift;
    while (keys[slot * l] !== EMPTY) slot = (slot + 1) & mask;
    for (let k = 0; k < l; k++) keys[slot * l + k] = src[at + k]!;
    if (oldIdx !== undefined) slotIdx[slot] = oldIdx === null ? i : oldIdx[i]!;
  }
}
