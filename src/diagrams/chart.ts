/**
 * A statechart as a drawing: the neutral model between a source (an XState machine, the VFIO arc table)
 * and the Mermaid writer. Nothing here knows about XState or about Mermaid syntax.
 */

export type ChartStateKind =
  /** A leaf state. */
  | 'atomic'
  /** Exactly one child active; `initial` names which one is entered first. */
  | 'compound'
  /** Every child (a region) active at once. */
  | 'parallel'
  /** A final state: drawn as a named state with an arc to the end pseudo-state. */
  | 'final'
  /** A history pseudo-state (Mermaid has none: drawn as a small `H`/`H*` state plus a note). */
  | 'history'
  /** "Whichever child is active": the source of arcs a composite state takes for all its children. */
  | 'anyChild';

export interface ChartState {
  /** Unique in the chart: the state's full path (`machine.parent.child`). */
  readonly key: string;
  /** What the reader sees. */
  readonly label: string;
  readonly kind: ChartStateKind;
  /** For `history`: remembers the direct children only, or the whole active subtree. */
  readonly history?: 'shallow' | 'deep';
  /** For `compound`: the key of the child entered first. */
  readonly initial?: string;
  readonly children: readonly ChartState[];
  /** Lines shown inside the state's box: its internal (targetless) transitions, UML style. */
  readonly internal: readonly string[];
  /** Notes beside the state: description, meta, history semantics. Each string is one note. */
  readonly notes: readonly string[];
}

/** An arc between two states (keys). Several transitions between the same pair share one arc. */
export interface ChartEdge {
  readonly from: string;
  readonly to: string;
  /** One line per transition. */
  readonly labels: readonly string[];
}

export interface Chart {
  readonly title: string;
  /**
   * The machine itself. A compound root is the diagram (its children are drawn at the top level);
   * a parallel root is drawn as one composite state, since regions need a box to separate.
   */
  readonly root: ChartState;
  readonly edges: readonly ChartEdge[];
}

/** Every state of the chart, depth first, the root included. */
export function allStates(root: ChartState): ChartState[] {
  return [root, ...root.children.flatMap(allStates)];
}
