/**
 * The set of visited global states, built for one cache miss per lookup.
 *
 * A state is a tuple of `width` small integers (one per component's local id, one per channel slot).
 * Tuples live *inside* an open-addressing hash table (linear probing, any size, growth 1.5× at load
 * 0.75), as 16-bit words while every value fits (32-bit after that), so checking whether a successor was
 * seen touches one place in memory. Beside the table: the state index of each slot, and per state (in
 * discovery order) its slot and its parent. Discovery order *is* the BFS queue, and a shortest trace is a
 * walk up the parent pointers — no path is ever copied.
 *
 * Lookups come in batches (all successors of one state): `prefetch` touches every first slot before the
 * probes start, so the cache misses of a batch overlap instead of queueing.
 *
 * Retained bytes per state, 16-bit mode: (2·width + 4)/load + 8 — about 27 for four components.
 */

const EMPTY16 = 0xffff;
const EMPTY32 = 0xffffffff;
const MAX_LOAD = 0.75;
const GROWTH = 1.5;

export class StateStore {
  /** keys[slot·width + k]; the first word of a free slot holds the EMPTY marker. */
  private keys: Uint16Array | Uint32Array;
  private wide = false;
  private slotIdx: Int32Array;
  private cap: number;
  /** slot of each state, in discovery order */
  private order: Int32Array;
  parent: Int32Array;
  size = 0;
  /** After compact(): the tuples, densely, in discovery order. */
  private dense: Uint32Array | null = null;
  private readonly w: number;

  constructor(
    readonly width: number,
    initialSlots = 1 << 16,
  ) {
    this.w = width;
    this.cap = initialSlots;
    this.keys = new Uint16Array(initialSlots * width);
    this.clearKeys(this.keys, initialSlots);
    this.slotIdx = new Int32Array(initialSlots);
    this.order = new Int32Array(Math.ceil(initialSlots * MAX_LOAD) + 1);
    this.parent = new Int32Array(this.order.length);
  }

  /** Bytes the store holds now. */
  get bytes(): number {
    if (this.dense) return this.dense.byteLength + this.parent.byteLength;
    return this.keys.byteLength + this.slotIdx.byteLength + this.order.byteLength + this.parent.byteLength;
  }

  /** Bytes the next growth of the table would allocate (for memory budgets). */
  get nextGrowthBytes(): number {
    const cap = Math.ceil(this.cap * GROWTH);
    return cap * (this.w * (this.wide ? 4 : 2) + 4) + Math.ceil(cap * MAX_LOAD) * 8;
  }

  get needsGrowth(): boolean {
    return this.size + 1 > this.cap * MAX_LOAD;
  }

  /** Bumped whenever the table is laid out anew (home slots computed before are stale then). */
  epoch = 0;

  /** The hash of a tuple: the XOR of one mixed word per position (see `wordHash`). */
  hash(t: Uint32Array, off: number): number {
    let h = 0;
    for (let i = 0; i < this.w; i++) h ^= wordHash(i, t[off + i]!);
    return h >>> 0;
  }

  /** First slot of hash `h` (fast range reduction; the table size need not be a power of two). */
  home(h: number): number {
    return Math.floor((h * this.cap) / 4294967296);
  }

  /** Kept so the prefetching loads cannot be optimised away. */
  private sink = 0;

  /** Touch the first slot of each hash so that their cache misses overlap. */
  prefetch(homes: Int32Array, n: number): void {
    const keys = this.keys;
    const w = this.w;
    let sink = this.sink;
    for (let i = 0; i < n; i++) sink = (sink + keys[homes[i]! * w]!) | 0;
    this.sink = sink;
  }

  /**
   * Insert tuple `t` (words t[off .. off+width)) with parent `from`, probing from `home`. Returns its
   * new index, or `-1 - existing` when it was already there — or just -1 when `needIndex` is false, which
   * spares a second memory access on the common path (a state seen before).
   */
  insertAt(t: Uint32Array, off: number, home: number, from: number, needIndex = true): number {
    const w = this.w;
    const keys = this.keys;
    const empty = this.wide ? EMPTY32 : EMPTY16;
    const cap = this.cap;
    let slot = home;
    for (;;) {
      const base = slot * w;
      const first = keys[base]!;
      if (first === empty) break;
      if (first === t[off]) {
        let k = 1;
        while (k < w && keys[base + k] === t[off + k]) k++;
        if (k === w) return needIndex ? -1 - this.slotIdx[slot]! : -1;
      }
      if (++slot === cap) slot = 0;
    }
    // new state
    if (!this.wide) {
      for (let k = 0; k < w; k++) {
        if (t[off + k]! >= EMPTY16) {
          this.widen();
          return this.insert(t.subarray(off, off + w) as Uint32Array, from);
        }
      }
    }
    if (this.needsGrowth) {
      this.rehash(Math.ceil(this.cap * GROWTH));
      return this.insert(t.subarray(off, off + w) as Uint32Array, from);
    }
    const idx = this.size++;
    const base = slot * w;
    for (let k = 0; k < w; k++) keys[base + k] = t[off + k]!;
    this.slotIdx[slot] = idx;
    if (idx >= this.order.length) this.growLists();
    this.order[idx] = slot;
    this.parent[idx] = from;
    return idx;
  }

  insert(t: Uint32Array, from: number): number {
    return this.insertAt(t, 0, this.home(this.hash(t, 0)), from);
  }

  /** Copy state `idx` into `out`. */
  load(idx: number, out: Uint32Array): void {
    const w = this.w;
    if (this.dense) {
      const base = idx * w;
      for (let k = 0; k < w; k++) out[k] = this.dense[base + k]!;
      return;
    }
    const keys = this.keys;
    const base = this.order[idx]! * w;
    for (let k = 0; k < w; k++) out[k] = keys[base + k]!;
  }

  /** Drop the hash table once the search is over; traces need only the tuples and parents. */
  compact(): void {
    if (this.dense) return;
    const dense = new Uint32Array(this.size * this.w);
    const t = new Uint32Array(this.w);
    for (let i = 0; i < this.size; i++) {
      this.load(i, t);
      dense.set(t, i * this.w);
    }
    this.dense = dense;
    this.keys = new Uint16Array(0);
    this.slotIdx = new Int32Array(0);
    this.order = new Int32Array(0);
    this.parent = this.parent.slice(0, this.size);
  }

  private clearKeys(keys: Uint16Array | Uint32Array, slots: number): void {
    const empty = keys instanceof Uint16Array ? EMPTY16 : EMPTY32;
    for (let s = 0; s < slots; s++) keys[s * this.w] = empty;
  }

  private growLists(): void {
    const n = Math.ceil(this.order.length * GROWTH) + 16;
    const order = new Int32Array(n);
    order.set(this.order);
    this.order = order;
    const parent = new Int32Array(n);
    parent.set(this.parent);
    this.parent = parent;
  }

  private widen(): void {
    this.rehash(this.cap, true);
  }

  /**
   * Lay the table out anew with `cap` slots. Old slots are read in order and, since the home slot is
   * monotone in the hash, land roughly in order in the new table: both sides stream through memory.
   */
  private rehash(cap: number, toWide = this.wide): void {
    const w = this.w;
    const old = this.keys;
    const oldIdx = this.slotIdx;
    const oldCap = this.cap;
    const oldEmpty = this.wide ? EMPTY32 : EMPTY16;
    const keys = toWide ? new Uint32Array(cap * w) : new Uint16Array(cap * w);
    this.clearKeys(keys, cap);
    const slotIdx = new Int32Array(cap);
    const order = this.order;
    this.cap = cap;
    const empty = toWide ? EMPTY32 : EMPTY16;
    const t = new Uint32Array(w);
    for (let os = 0; os < oldCap; os++) {
      const ob = os * w;
      if (old[ob] === oldEmpty) continue;
      for (let k = 0; k < w; k++) t[k] = old[ob + k]!;
      let slot = this.home(this.hash(t, 0));
      while (keys[slot * w] !== empty) if (++slot === cap) slot = 0;
      for (let k = 0; k < w; k++) keys[slot * w + k] = t[k]!;
      const idx = oldIdx[os]!;
      slotIdx[slot] = idx;
      order[idx] = slot;
    }
    this.keys = keys;
    this.wide = toWide;
    this.slotIdx = slotIdx;
    this.epoch++;
  }
}

/**
 * Tabulation-style hashing: a tuple's hash is the XOR of `wordHash(position, value)` over its words, so a
 * successor that differs from its parent in one word is hashed in two calls instead of `width`.
 */
export function wordHash(i: number, v: number): number {
  let h = Math.imul(v ^ Math.imul(i + 1, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
