/**
 * Bit-packed global states.
 *
 * A global state is a tuple of small integers (local ids, message ids). Each position gets just as many
 * bits as its largest value so far needs, and positions are packed in order into 31-bit lanes (a lane
 * is a non-negative int32, so -1 is free to mark an empty hash slot). Four VFIO devices with 31 local
 * states each pack into one lane: a hash lookup compares one word, and a successor that changes one
 * component is its parent's lanes with one field patched.
 *
 * When a value outgrows its field the layout is widened (the store repacks every state): fields start at
 * 4 bits and grow to what the value needs plus one spare bit, so a field widens a handful of times at most.
 */

export const LANE_BITS = 31;
const INITIAL_BITS = 4;

export class Layout {
  readonly lanes: number;
  /** per position: its lane, its shift inside the lane, its width and its mask */
  readonly lane: Int32Array;
  readonly shift: Int32Array;
  readonly bits: Int32Array;
  readonly mask: Int32Array;

  constructor(bits: Int32Array) {
    const w = bits.length;
    this.bits = bits;
    this.lane = new Int32Array(w);
    this.shift = new Int32Array(w);
    this.mask = new Int32Array(w);
    let lane = 0;
    let used = 0;
    for (let i = 0; i < w; i++) {
      const b = bits[i]!;
      if (used + b > LANE_BITS) {
        lane++;
        used = 0;
      }
      this.lane[i] = lane;
      this.shift[i] = used;
      this.mask[i] = b >= 31 ? 0x7fffffff : (1 << b) - 1;
      used += b;
    }
    this.lanes = w === 0 ? 1 : lane + 1;
  }

  /** The narrowest layout for a tuple of `width` positions. */
  static initial(width: number): Layout {
    return new Layout(new Int32Array(width).fill(INITIAL_BITS));
  }

  /** One position per lane: packing is a copy (for tools that want plain tuples). */
  static plain(width: number): Layout {
    return new Layout(new Int32Array(width).fill(LANE_BITS));
  }

  /** This layout with position `pos` wide enough for `value`. */
  widened(pos: number, value: number): Layout {
    const bits = Int32Array.from(this.bits);
    bits[pos] = Math.min(LANE_BITS, Math.max(bitsFor(value) + 1, bits[pos]! + 1));
    return new Layout(bits);
  }

  /**
   * Pack words t[off .. off+width) into lanes out[at .. at+lanes). Returns -1, or the first position
   * whose value does not fit (nothing useful is written then).
   */
  pack(t: Uint32Array, off: number, out: Int32Array, at: number): number {
    const n = this.lanes;
    for (let k = 0; k < n; k++) out[at + k] = 0;
    const w = this.bits.length;
    for (let i = 0; i < w; i++) {
      const v = t[off + i]!;
      if (v > this.mask[i]!) return i;
      const j = at + this.lane[i]!;
      out[j] = out[j]! | (v << this.shift[i]!);
    }
    return -1;
  }

  /** Unpack lanes src[at ..] into words out[0 .. width). */
  unpack(src: Int32Array, at: number, out: Uint32Array): void {
    const w = this.bits.length;
    for (let i = 0; i < w; i++) out[i] = (src[at + this.lane[i]!]! >>> this.shift[i]!) & this.mask[i]!;
  }
}

export function bitsFor(v: number): number {
  return v === 0 ? 1 : 32 - Math.clz32(v);
}

/**
 * A hash of lanes src[at .. at+n) (FxHash's rotate-xor-multiply per lane). Its *high* bits are the well
 * mixed ones: the store takes a slot from them (Fibonacci hashing).
 */
export function hashLanes(src: Int32Array, at: number, n: number): number {
  if (n === 1) return hashLane(src[at]!);
  let h = 0;
  for (let k = 0; k < n; k++) h = Math.imul(((h << 5) | (h >>> 27)) ^ src[at + k]!, 0x9e3779b1);
  return h;
}

/** hashLanes of a single lane `v`. */
export function hashLane(v: number): number {
  return Math.imul(v, 0x9e3779b1);
}
