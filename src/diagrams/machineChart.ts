/**
 * Any XState v5 machine as a {@link Chart}: every state node (compound, parallel, final, history), its
 * description, meta and tags as a note, its targetless transitions and entry/exit actions inside its box,
 * and every transition with a target as an arc labelled `EVENT [guard] / action`.
 *
 * Drawing choices (so that big machines stay readable):
 *  - transitions between the same two states share one arc, a line per transition; guarded transitions
 *    with the same event and actions merge into one line, `EVENT [g1 or g2] / a`;
 *  - a composite state's own transitions (the root's included) start from a dashed "any state" node
 *    inside it — they apply in whichever child is active — except that an arc to a state outside the
 *    composite starts at the composite's border; its targetless transitions, and those re-entering the
 *    composite itself (`EVENT → name`), are lines in the "any state" box;
 *  - a history state is an `H` (shallow) or `H*` (deep) node with a note, and an arc to its default target.
 */
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import type { Chart, ChartEdge, ChartState, ChartStateKind } from './chart.js';
import { type ArcEnds, actionLabel, actionsLabel, eventLabel, guardLabel } from './labels.js';

export interface MachineChartOptions {
  /** Diagram title; default: the machine's id. */
  readonly title?: string;
  /** Show descriptions, meta and tags as notes (default true). */
  readonly notes?: boolean;
  /**
   * Draw only this region (a state path, e.g. 'migrating'): its subtree as the diagram, and every arc
   * that leaves it ending at a stub named after its target. For machines too big to read whole.
   */
  readonly region?: string;
  /**
   * Draw these composite states (state paths) as single boxes: arcs that leave their inside start at
   * the box, arcs into their inside end at it, what stays inside is left out. `collapsedNote` is added
   * to each such box's note (e.g. where its inside is drawn).
   */
  readonly collapse?: readonly string[];
  readonly collapsedNote?: string;
}

/** Label shown on the pseudo-state that stands for "whichever child is active". */
export const ANY_CHILD_LABEL = 'any state';

/** One line of an arc or box label: an event, the guards it may carry, and `/ actions`. */
interface Line {
  readonly event: string;
  readonly guards: string[];
  readonly rest: string;
}

/** A transition's label split in parts, so that lines differing only in their guard can merge. */
interface LabelParts {
  readonly event: string;
  readonly guard: string | null;
  readonly rest: string;
}

/** Accumulates label lines per key: per (from, to) arc, or per state for internal transitions. */
class LineGroups {
  private readonly groups = new Map<string, Line[]>();

  add(key: string, part: LabelParts): void {
    const lines = this.groups.get(key) ?? [];
    this.groups.set(key, lines);
    const guarded = part.guard !== null;
    const same = lines.find((l) => l.event === part.event && l.rest === part.rest && l.guards.length > 0 === guarded);
    if (!same) lines.push({ event: part.event, guards: part.guard === null ? [] : [part.guard], rest: part.rest });
    else if (part.guard !== null && !same.guards.includes(part.guard)) same.guards.push(part.guard);
  }

  keys(): string[] {
    return [...this.groups.keys()];
  }

  text(key: string): string[] {
    return (this.groups.get(key) ?? []).map((l) =>
      [l.event, l.guards.length > 0 ? `[${compactGuards(l.guards).join(' or ')}]` : '', l.rest].filter((s) => s !== '').join(' '),
    );
  }
}

/** `g(p: A) or g(p: B)` reads as `g(p: A | B)`: one guard with one parameter, alternatives merged in place. */
function compactGuards(guards: readonly string[]): string[] {
  const out: string[] = [];
  const at = new Map<string, number>();
  const values: string[][] = [];
  for (const g of guards) {
    const m = /^(\w+\(\w+: )([^,()]+)\)$/.exec(g);
    if (!m) {
      out.push(g);
      values.push([]);
      continue;
    }
    const i = at.get(m[1]!);
    if (i === undefined) {
      at.set(m[1]!, out.length);
      out.push(m[1]!);
      values.push([m[2]!]);
    } else values[i]!.push(m[2]!);
  }
  return out.map((g, i) => (values[i]!.length > 0 ? `${g}${values[i]!.join(' | ')})` : g));
}

/** The chart of a machine. */
export function machineChart(machine: AnyStateMachine, opts: MachineChartOptions = {}): Chart {
  const nodeAt = (path: string): AnyStateNode => {
    let at: AnyStateNode = machine.root;
    for (const seg of path.split('.')) {
      const next = at.states[seg] as AnyStateNode | undefined;
      if (!next) throw new Error(`${machine.id} has no state '${path}'`);
      at = next;
    }
    return at;
  };
  const top = opts.region === undefined ? machine.root : nodeAt(opts.region);
  const collapsed = new Set((opts.collapse ?? []).map((p) => nodeAt(p)));
  const builder = new ChartBuilder(machine, opts.notes ?? true, top, collapsed, opts.collapsedNote ?? '');
  const root = builder.state(top);
  const withStubs = { ...root, children: [...root.children, ...builder.stubs()] };
  return { title: opts.title ?? machine.id, root: withStubs, edges: builder.edges() };
}

class ChartBuilder {
  private readonly arcs = new LineGroups();
  private readonly arcEnds = new Map<string, { from: string; to: string }>();

  private readonly stubKeys = new Map<string, string>();

  constructor(
    private readonly machine: AnyStateMachine,
    private readonly withNotes: boolean,
    /** The node drawn as the diagram: the machine's root, or a region of it. */
    private readonly top: AnyStateNode = machine.root,
    private readonly collapsed: ReadonlySet<AnyStateNode> = new Set(),
    private readonly collapsedNote = '',
  ) {}

  keyOf(node: AnyStateNode): string {
    return [this.machine.id, ...node.path].join('.');
  }

  /** Where an arc to `node` ends in this drawing: the node, its collapsed ancestor, or a stub outside the region. */
  private endOf(node: AnyStateNode): string {
    if (!within(node, this.top)) {
      const key = `${this.keyOf(this.top)}.*outside.${node.path.join('.')}`;
      this.stubKeys.set(key, `→ ${node.path.join('.')}`);
      return key;
    }
    for (let at: AnyStateNode | undefined = node; at; at = at.parent) if (this.collapsed.has(at)) return this.keyOf(at);
    return this.keyOf(node);
  }

  /** The stub states that stand for targets outside the region. */
  stubs(): ChartState[] {
    return [...this.stubKeys].map(([key, label]) => ({ key, label, kind: 'atomic' as const, children: [], internal: [], notes: [] }));
  }

  edges(): ChartEdge[] {
    return this.arcs.keys().map((k) => ({ ...this.arcEnds.get(k)!, labels: this.arcs.text(k) }));
  }

  state(node: AnyStateNode): ChartState {
    if (this.collapsed.has(node) && node !== this.top) return this.collapsedState(node);
    const key = this.keyOf(node);
    const kind = node.type as ChartStateKind;
    const isTop = node === this.top;
    const internal = new LineGroups();
    const anyChild = new LineGroups();
    let anyChildNeeded = false;
    const isComposite = kind === 'compound' || kind === 'parallel';

    const own: ArcEnds = { source: node.key, targets: [] };
    for (const action of node.entry) {
      if (!isDelayRaise(action)) internal.add('', { event: 'entry', guard: null, rest: `/ ${actionLabel(action, own)}` });
    }
    for (const action of node.exit) {
      if (!isDelayCancel(action)) internal.add('', { event: 'exit', guard: null, rest: `/ ${actionLabel(action, own)}` });
    }
    for (const inv of node.invoke) internal.add('', { event: 'do', guard: null, rest: `/ invoke(${String(inv.id)})` });

    const transitions = [...node.transitions.values()].flat().concat(node.always ?? []);
    for (const t of transitions) {
      const targets: readonly AnyStateNode[] = t.target ?? [];
      const ends: ArcEnds = { source: node.key, targets: targets.map((n) => n.key) };
      const label = labelParts(t, ends);
      if (targets.length === 0) {
        if (isComposite) {
          anyChild.add('', label);
          anyChildNeeded = true;
        } else internal.add('', label);
        continue;
      }
      for (const target of targets) {
        const targetKey = this.endOf(target);
        if (isComposite && targetKey === key) {
          // Mermaid cannot loop an arc on a composite's border: a composite re-entering itself is a line.
          anyChild.add('', { ...label, rest: [label.rest, `→ ${node.key}`].filter((x) => x !== '').join(' ') });
          anyChildNeeded = true;
          continue;
        }
        const inside = targetKey.startsWith(`${key}.`);
        let from = key;
        if (isComposite && (isTop || inside)) {
          from = anyChildKey(key);
          anyChildNeeded = true;
        }
        this.addArc(from, targetKey, label);
      }
    }

    const children: ChartState[] = [];
    if (anyChildNeeded) {
      children.push({ key: anyChildKey(key), label: ANY_CHILD_LABEL, kind: 'anyChild', children: [], internal: anyChild.text(''), notes: [] });
    }
    for (const child of Object.values(node.states) as AnyStateNode[]) children.push(this.state(child));

    const notes: string[] = [];
    if (this.withNotes) {
      const about = noteOf(node);
      if (about !== '') notes.push(about);
    }
    let label = node.parent === undefined ? this.machine.id : node.key;
    if (isTop && node.parent !== undefined) label = `${this.machine.id}: ${node.path.join('.')}`;
    let history: 'shallow' | 'deep' | undefined;
    if (kind === 'history') {
      history = node.history === 'deep' ? 'deep' : 'shallow';
      label = history === 'deep' ? 'H*' : 'H';
      const parent = node.parent?.key ?? '';
      notes.unshift(
        `history state ${node.key} (${history}): re-enters the ${history === 'deep' ? 'last active descendants' : 'last active child'} of ${parent}. Mermaid has no history pseudo-state.`,
      );
      const fallback = this.historyDefault(node);
      if (fallback) this.addArc(key, this.keyOf(fallback), { event: 'default', guard: null, rest: '' });
    }
    const initialTarget = kind === 'compound' ? node.initial?.target?.[0] : undefined;
    return {
      key,
      label,
      kind,
      ...(history ? { history } : {}),
      ...(initialTarget ? { initial: this.keyOf(initialTarget) } : {}),
      children,
      internal: internal.text(''),
      notes,
    };
  }

  /** A collapsed composite: one box, with the arcs that leave its inside. */
  private collapsedState(node: AnyStateNode): ChartState {
    const key = this.keyOf(node);
    const internal = new LineGroups();
    const walk = (n: AnyStateNode): void => {
      const transitions = [...n.transitions.values()].flat().concat(n.always ?? []);
      for (const t of transitions) {
        const targets: readonly AnyStateNode[] = t.target ?? [];
        const label = labelParts(t, { source: n.key, targets: targets.map((x) => x.key) });
        if (targets.length === 0) {
          if (n === node) internal.add('', label);
          continue;
        }
        for (const target of targets) {
          const to = this.endOf(target);
          if (to !== key) this.addArc(key, to, label);
        }
      }
      for (const child of Object.values(n.states) as AnyStateNode[]) walk(child);
    };
    walk(node);
    const notes: string[] = [];
    if (this.withNotes) {
      const about = [noteOf(node), this.collapsedNote].filter((x) => x !== '').join('\n');
      if (about !== '') notes.push(about);
    }
    return { key, label: node.key, kind: 'atomic', children: [], internal: internal.text(''), notes };
  }

  private addArc(from: string, to: string, label: LabelParts): void {
    const k = `${from}\u0000${to}`;
    this.arcEnds.set(k, { from, to });
    this.arcs.add(k, label);
  }

  /** The default target of a history state (its config's `target`, relative to its parent or `#id`). */
  private historyDefault(node: AnyStateNode): AnyStateNode | undefined {
    const raw: unknown = (node.config as { target?: unknown }).target;
    const target = Array.isArray(raw) ? raw[0] : raw;
    if (typeof target !== 'string' || node.parent === undefined) return undefined;
    if (target.startsWith('#')) {
      try {
        return this.machine.getStateNodeById(target.slice(1));
      } catch {
        return undefined;
      }
    }
    let at: AnyStateNode | undefined = node.parent;
    for (const seg of target.split('.')) at = at?.states[seg] as AnyStateNode | undefined;
    return at;
  }
}

/** `node` is `top` or inside it. */
function within(node: AnyStateNode, top: AnyStateNode): boolean {
  for (let at: AnyStateNode | undefined = node; at; at = at.parent) if (at === top) return true;
  return false;
}

function anyChildKey(compositeKey: string): string {
  return `${compositeKey}.*any`;
}

/** XState implements `after` with raise actions on entry; they are shown as the `after` arcs instead. */
function isDelayRaise(action: unknown): boolean {
  const ev = (action as { event?: { type?: unknown } } | null)?.event;
  return typeof action === 'function' && typeof ev?.type === 'string' && ev.type.startsWith('xstate.after.');
}

/** …and cancels them with cancel actions on exit. */
function isDelayCancel(action: unknown): boolean {
  const id = (action as { sendId?: unknown } | null)?.sendId;
  return typeof action === 'function' && typeof id === 'string' && id.startsWith('xstate.after.');
}

/** A transition's label in parts: `EVENT`, `guard`, `/ actions`. */
function labelParts(t: { eventType: string; guard?: unknown; actions: readonly unknown[] }, ends: ArcEnds): LabelParts {
  const actions = actionsLabel(t.actions, ends);
  return {
    event: eventLabel(t.eventType),
    guard: t.guard === undefined ? null : guardLabel(t.guard, ends),
    rest: actions === '' ? '' : `/ ${actions}`,
  };
}

/** Description, then `key: value` per meta entry, then tags; '' when the state has none. */
function noteOf(node: AnyStateNode): string {
  const lines: string[] = [];
  if (node.description) lines.push(node.description);
  const meta: unknown = node.meta;
  if (meta && typeof meta === 'object') {
    for (const [k, v] of Object.entries(meta as Record<string, unknown>)) {
      lines.push(`${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
    }
  }
  if (node.tags.length > 0) lines.push(`tags: ${node.tags.join(', ')}`);
  return lines.join('\n');
}
