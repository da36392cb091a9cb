/**
 * A {@link Chart} as Mermaid `stateDiagram-v2` text.
 *
 * Mermaid's state ids are global across composite states (mermaid#5290: two children called `idle` in
 * different composites are one state), so every state gets an id made from its full path and shows its
 * short name as its label (`state "idle" as s_machine_parent_idle`). Each arc is written inside the
 * innermost composite that holds both its ends. Mermaid has no history pseudo-state (mermaid#5700):
 * a history state is an `H`/`H*` state with a note.
 */
import { type Chart, type ChartEdge, type ChartState, allStates } from './chart.js';
import { escapeLines, escapeText, idFactory, wrapText } from './mermaidText.js';

/** A note line, escaped; a line reading `end note` would close the note, so its `e` is an entity. */
function escapeNoteLine(line: string): string {
  const text = escapeText(line);
  return /^\s*end\s+note\b/i.test(text) ? text.replace(/e/i, (c) => `#${c.charCodeAt(0)};`) : text;
}

export interface StateDiagramOptions {
  /** Layout direction; Mermaid's default is top to bottom. */
  readonly direction?: 'TB' | 'LR';
  /**
   * Wrap note lines at this many characters. Default: no wrapping of our own — Mermaid wraps notes to
   * its 200px note width itself, and a second wrap at a guessed width only makes ragged lines.
   */
  readonly noteWidth?: number;
  /** An arc label line longer than this puts its `/ actions` on a line of its own (default 24). */
  readonly labelWidth?: number;
}

/** Styles of the pseudo-states Mermaid has no shape for. */
const CLASS_DEFS: Readonly<Record<string, string>> = {
  anyChild: 'fill:#ffffff,stroke:#888888,stroke-dasharray:4 4,color:#555555,font-style:italic',
  history: 'fill:#ffffff,stroke:#333333,font-weight:bold',
};

/** Mermaid text of a chart (the body, without front matter). */
export function stateDiagramText(chart: Chart, opts: StateDiagramOptions = {}): string {
  return new StateDiagramWriter(chart, opts).text();
}

class StateDiagramWriter {
  private readonly idOf = idFactory('s_');
  private readonly out: string[] = [];
  private readonly parentOf = new Map<string, string>();
  private readonly edgesByBlock = new Map<string, ChartEdge[]>();
  private readonly noteWidth: number;
  private readonly labelWidth: number;

  constructor(
    private readonly chart: Chart,
    private readonly opts: StateDiagramOptions,
  ) {
    this.noteWidth = opts.noteWidth ?? Infinity;
    this.labelWidth = opts.labelWidth ?? 24;
    for (const s of allStates(chart.root)) for (const c of s.children) this.parentOf.set(c.key, s.key);
    for (const e of chart.edges) {
      const block = this.blockOf(e);
      const list = this.edgesByBlock.get(block) ?? [];
      list.push(e);
      this.edgesByBlock.set(block, list);
    }
  }

  text(): string {
    this.out.push('stateDiagram-v2');
    if (this.opts.direction) this.out.push(`  direction ${this.opts.direction}`);
    const root = this.chart.root;
    if (root.kind === 'compound') {
      this.writeChildren(root, '  ');
    } else {
      this.writeState(root, '  ');
      this.out.push(`  [*] --> ${this.idOf(root.key)}`);
      this.writeEdges(root.key, '  ');
    }
    this.writeClasses();
    return this.out.join('\n') + '\n';
  }

  /** The key of the composite whose block an arc is written in: the innermost one holding both ends. */
  private blockOf(e: ChartEdge): string {
    const chain = (k: string) => {
      const keys: string[] = [];
      for (let p = this.parentOf.get(k); p !== undefined; p = this.parentOf.get(p)) keys.push(p);
      return keys;
    };
    const up = new Set(chain(e.from));
    const shared = chain(e.to).find((k) => up.has(k));
    return shared ?? this.chart.root.key;
  }

  private writeChildren(s: ChartState, indent: string): void {
    const sections = s.kind === 'parallel' ? regions(s) : [s.children];
    sections.forEach((section, i) => {
      if (i > 0) this.out.push(`${indent}--`);
      for (const c of section) this.writeState(c, indent);
    });
    if (s.initial !== undefined) this.out.push(`${indent}[*] --> ${this.idOf(s.initial)}`);
    for (const c of s.children) if (c.kind === 'final') this.out.push(`${indent}${this.idOf(c.key)} --> [*]`);
    this.writeEdges(s.key, indent);
  }

  private writeState(s: ChartState, indent: string): void {
    const id = this.idOf(s.key);
    this.out.push(`${indent}state "${escapeText(s.label)}" as ${id}`);
    if (s.children.length > 0) {
      this.out.push(`${indent}state ${id} {`);
      this.writeChildren(s, indent + '  ');
      this.out.push(`${indent}}`);
    }
    for (const line of s.internal) this.out.push(`${indent}${id} : ${escapeText(line)}`);
    for (const note of s.notes) {
      // The multi-line form: in `note right of X : text` a second colon ends the parse.
      this.out.push(`${indent}note right of ${id}`);
      const lines = note.split('\n').flatMap((l) => (Number.isFinite(this.noteWidth) ? wrapText(l, this.noteWidth) : [l]));
      for (const line of lines.filter((l) => l.trim() !== '')) this.out.push(`${indent}  ${escapeNoteLine(line.trim())}`);
      this.out.push(`${indent}end note`);
    }
  }

  private writeEdges(blockKey: string, indent: string): void {
    for (const e of this.edgesByBlock.get(blockKey) ?? []) {
      const label = e.labels.filter((l) => l !== '').flatMap((l) => stackActions(l, this.labelWidth));
      this.out.push(`${indent}${this.idOf(e.from)} --> ${this.idOf(e.to)}${label.length > 0 ? ` : ${escapeLines(label)}` : ''}`);
    }
  }

  private writeClasses(): void {
    const members = new Map<string, string[]>();
    for (const s of allStates(this.chart.root)) {
      const cls = s.kind === 'anyChild' ? 'anyChild' : s.kind === 'history' ? 'history' : undefined;
      if (cls) members.set(cls, [...(members.get(cls) ?? []), this.idOf(s.key)]);
    }
    for (const [cls, ids] of members) {
      this.out.push(`  classDef ${cls} ${CLASS_DEFS[cls]}`);
      this.out.push(`  class ${ids.join(',')} ${cls}`);
    }
  }
}

/** `EVENT [guard] / action` as two lines, `EVENT [guard]` and `/ action`, when longer than `width`. */
function stackActions(line: string, width: number): string[] {
  const at = line.indexOf(' / ');
  return line.length > width && at > 0 ? [line.slice(0, at), line.slice(at + 1)] : [line];
}

/**
 * The `--`-separated sections of a parallel state: one per region, the "any state" pseudo-state (if
 * any) going with the first.
 */
function regions(s: ChartState): ChartState[][] {
  const pseudo = s.children.filter((c) => c.kind === 'anyChild');
  const real = s.children.filter((c) => c.kind !== 'anyChild');
  if (real.length === 0) return [pseudo];
  return real.map((r, i) => (i === 0 ? [...pseudo, r] : [r]));
}
