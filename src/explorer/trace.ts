/**
 * Counterexamples: a path of stored (canonical) states turned back into a concrete, numbered run —
 * which component took which event, from the environment or from which channel, and how each
 * component's state changed — as text and as JSON.
 */
import type { EventObject } from 'xstate';
import type { CompiledSystem } from './step.js';
import type { StateStore } from './store.js';

export interface TraceStep {
  readonly step: number;
  readonly kind: 'env' | 'deliver';
  readonly component: string;
  readonly event: EventObject;
  readonly channel?: string;
  /** The components whose state changed, with their value after the step (and before it). */
  readonly changes: readonly { component: string; from: string; to: string; context?: string }[];
  /** Every component's state value after the step. */
  readonly states: Readonly<Record<string, string>>;
  /** The observations the step emitted (SystemSpec.observations), when any. */
  readonly observed?: readonly EventObject[];
}

export interface Trace {
  readonly initial: Readonly<Record<string, string>>;
  readonly steps: readonly TraceStep[];
  /** For a lasso: the step number at which the repeated cycle starts. */
  readonly cycleStart?: number;
}

/** State indices from the initial state to `idx`, following parent pointers. */
export function pathTo(store: StateStore, idx: number): number[] {
  const path: number[] = [];
  for (let i = idx; i >= 0; i = store.parent[i]!) path.push(i);
  return path.reverse();
}

/**
 * Turn a path of stored states (each a successor of the previous one) into a concrete trace. `real`: the
 * same system without its reductions (SystemSpec.forget and cut); each step found in `sys` is then taken
 * again there — the same step id — and the trace shows that system's states.
 */
export function buildTrace(sys: CompiledSystem, store: StateStore, path: readonly number[], cycleStart?: number, real?: CompiledSystem): Trace {
  const w = sys.width;
  const canon = sys.canon;
  const raw = new Uint32Array(w);
  const target = new Uint32Array(w);
  const tmp = new Uint32Array(w);
  const shown = real ?? sys;
  const rawShown = new Uint32Array(shown.width);
  sys.canon = null;
  try {
    sys.tables.forEach((t, i) => (raw[i] = t.initial()));
    shown.tables.forEach((t, i) => (rawShown[i] = t.initial()));
    const steps: TraceStep[] = [];
    const initial = statesOf(shown, rawShown);
    for (let p = 1; p < path.length; p++) {
      store.load(path[p]!, target);
      let found: { step: number; next: Uint32Array } | null = null;
      sys.expand(raw, (step, next) => {
        if (found) return;
        tmp.set(next);
        canon?.(tmp, 0);
        if (equal(tmp, target, w)) found = { step, next: Uint32Array.from(next) };
      });
      if (!found) throw new Error(`trace reconstruction failed at step ${p}`);
      const { step, next } = found as { step: number; next: Uint32Array };
      raw.set(next);
      let nextShown = next;
      if (real) {
        let again: Uint32Array | null = null;
        real.expand(rawShown, (s, n) => {
          if (s === step && again === null) again = Uint32Array.from(n);
        });
        if (again === null) throw new Error(`trace replay failed at step ${p}: the step is not enabled without the reductions`);
        nextShown = again;
      }
      const label = shown.label(step, rawShown);
      const changes = shown.names.flatMap((name, i) => {
        if (rawShown[i] === nextShown[i]) return [];
        const a = shown.tables[i]!.snapshots[rawShown[i]!]!;
        const b = shown.tables[i]!.snapshots[nextShown[i]!]!;
        const ctx = contextDiff(a.context, b.context);
        return [{ component: name, from: formatValue(a.value), to: formatValue(b.value), ...(ctx ? { context: ctx } : {}) }];
      });
      const observed = shown.observe(step, rawShown);
      steps.push({ step: p, ...label, changes, states: statesOf(shown, nextShown), ...(observed.length > 0 ? { observed } : {}) });
      rawShown.set(nextShown);
    }
    return { initial, steps, ...(cycleStart !== undefined ? { cycleStart } : {}) };
  } finally {
    sys.canon = canon;
  }
}

function equal(a: Uint32Array, b: Uint32Array, w: number): boolean {
  for (let i = 0; i < w; i++) if (a[i] !== b[i]) return false;
  return true;
}

function statesOf(sys: CompiledSystem, t: Uint32Array): Record<string, string> {
  const out: Record<string, string> = {};
  sys.names.forEach((n, i) => (out[n] = formatValue(sys.tables[i]!.snapshots[t[i]!]!.value)));
  return out;
}

/** `{a: 'x', b: {c: 'y'}}` → `a.x|b.c.y`; a string value stays as it is. */
export function formatValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    return Object.entries(v as Record<string, unknown>)
      .map(([k, sub]) => {
        const s = formatValue(sub);
        return s.includes('|') ? s.split('|').map((x) => `${k}.${x}`).join('|') : `${k}.${s}`;
      })
      .join('|');
  }
  return String(v);
}

/**
 * What changed in the context, as leaf paths: `devs[0].state: "RUNNING"→"PRE_COPY", pendingAcks: 1→0`.
 * Paths through a `context` object are shortened (`devs[0].initialBytes`), and the record of the last
 * call (`last`) is left out: it repeats what the step already says.
 */
function contextDiff(a: unknown, b: unknown): string | undefined {
  const parts: string[] = [];
  const walk = (x: unknown, y: unknown, path: string) => {
    if (parts.length > 8) return;
    if (x === y) return;
    const ox = x !== null && typeof x === 'object';
    const oy = y !== null && typeof y === 'object';
    if (ox && oy && Array.isArray(x) === Array.isArray(y)) {
      const keys = new Set([...Object.keys(x as object), ...Object.keys(y as object)]);
      for (const k of keys) {
        if (k === 'last') continue;
        const sub = Array.isArray(y) ? `${path}[${k}]` : k === 'context' ? path : path ? `${path}.${k}` : k;
        walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], sub);
      }
      return;
    }
    const sx = JSON.stringify(x);
    const sy = JSON.stringify(y);
    if (sx !== sy) parts.push(`${path}: ${sx}→${sy}`);
  };
  walk(a, b, '');
  return parts.length > 0 ? parts.join(', ') : undefined;
}

function formatEvent(e: EventObject): string {
  const { type, ...rest } = e as EventObject & Record<string, unknown>;
  return Object.keys(rest).length > 0 ? `${type} ${JSON.stringify(rest)}` : type;
}

/** A numbered, readable trace. */
export function formatTrace(t: Trace): string {
  const lines = [`  0. initial: ${Object.entries(t.initial).map(([k, v]) => `${k}=${v}`).join(', ')}`];
  for (const s of t.steps) {
    if (t.cycleStart !== undefined && s.step === t.cycleStart) lines.push('     -- cycle: the steps below repeat forever --');
    const src = s.kind === 'env' ? 'env' : `${s.channel}`;
    const changes = s.changes
      .map((c) => (c.from !== c.to ? `${c.component}: ${c.from} → ${c.to}` : `${c.component}: ${c.to}`) + (c.context ? ` (${truncate(c.context, 160)})` : ''))
      .join('; ');
    lines.push(`${String(s.step).padStart(3)}. ${src} → ${s.component}: ${formatEvent(s.event)}${changes ? `   ⇒ ${changes}` : ''}`);
    if (s.observed) lines.push(`       shows: ${s.observed.map(formatEvent).join(', ')}`);
  }
  return lines.join('\n');
}

function truncate(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}
