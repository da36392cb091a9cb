/**
 * What a system is, for the explorer. The semantics, in one place:
 *
 *  - A **system** is a set of named components (plain XState v5 machines, each with its input), bounded
 *    FIFO **channels** between them, and an **environment**: for each component, the finite list of
 *    events (payload samples included) the outside world may send it at any time.
 *  - A **global state** is every component's snapshot (value + context) plus every channel's contents.
 *  - A **step** is either an environment event delivered to one component, or the head message of a
 *    channel delivered to the channel's receiver. XState's own pure `transition()` computes the
 *    component's next snapshot; every event the component `emit`s in that step is appended to the channel
 *    wired to it (by sender and event type).
 *  - A step is **enabled** when the receiving component's snapshot `can()` take the event and every
 *    message it emits fits in its channel. A message its receiver cannot take stays at the head of the
 *    channel (it blocks that channel; `unhandled: 'drop'` discards it instead).
 *  - Components must be plain machines: no invoked or spawned actors, no delayed (`after`) transitions.
 */
import type { AnyStateMachine, EventObject, MachineSnapshot } from 'xstate';
import type { DataSymmetry } from './dataSymmetry.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySnapshot = MachineSnapshot<any, any, any, any, any, any, any, any>;

/**
 * What a system under test shows of a component after a step (test generation records it as the expected
 * observation; the explorer itself never calls it). `event` is the event the component took in the step,
 * null when another component stepped. Returns a flat JSON record.
 */
export type ComponentObserver = (after: AnySnapshot, before: AnySnapshot, event: EventObject | null) => Readonly<Record<string, unknown>>;

export interface ComponentSpec {
  readonly name: string;
  readonly machine: AnyStateMachine;
  readonly input?: unknown;
  readonly observe?: ComponentObserver;
}

export interface ChannelSpec {
  readonly name: string;
  readonly from: string;
  readonly to: string;
  /** Bounded capacity (messages). */
  readonly capacity: number;
  /** Event types this channel carries from `from`; omitted: every event `from` emits not claimed by another channel. */
  readonly messages?: readonly string[];
}

/** A read-only view of one global state, given to invariants, terminal and goal predicates. */
export interface GlobalView {
  snapshot(component: string): AnySnapshot;
  /** Shorthand for `snapshot(component).value`. */
  value(component: string): unknown;
  /** Shorthand for `snapshot(component).context`. */
  context<T = unknown>(component: string): T;
  channel(name: string): readonly EventObject[];
}

export interface Invariant {
  readonly name: string;
  readonly description?: string;
  readonly holds: (s: GlobalView) => boolean;
  /**
   * The parts of the claim, each named: `holds` must be their conjunction (`allClauses` builds both), and
   * a violation then names the clauses its state breaks.
   */
  readonly clauses?: readonly InvariantClause[];
}

export interface InvariantClause {
  readonly name: string;
  readonly holds: (s: GlobalView) => boolean;
}

/** An invariant that is the conjunction of named clauses. */
export function allClauses(name: string, description: string, clauses: readonly InvariantClause[]): Invariant {
  return { name, description, clauses, holds: (s) => clauses.every((c) => c.holds(s)) };
}

/** The label of one step: who took which event, and from where it came. */
export interface StepLabel {
  readonly kind: 'env' | 'deliver';
  readonly component: string;
  readonly event: EventObject;
  /** The channel delivered from (kind 'deliver'). */
  readonly channel?: string;
}

export interface SymmetryGroup {
  /** Interchangeable components: the same machine with equal inputs. */
  readonly components: readonly string[];
  /** Channels that move with each member, one list per member in the same order (optional). */
  readonly channels?: readonly (readonly string[])[];
}

export interface SystemSpec {
  readonly name?: string;
  readonly components: readonly ComponentSpec[];
  readonly channels?: readonly ChannelSpec[];
  /**
   * Emitted event types that are the system's outputs to the world (e.g. QMP events), not messages: they
   * go on no channel and are no part of the global state. `CompiledSystem.observe` and traces show which
   * a step emits.
   */
  readonly observations?: readonly string[];
  /** For each component, the events the environment may send it. */
  readonly environment?: Readonly<Record<string, readonly EventObject[]>>;
  readonly invariants?: readonly Invariant[];
  /** States where having no enabled step is fine (not a deadlock). Default: every component is in a final state. */
  readonly terminal?: (s: GlobalView) => boolean;
  /** Liveness: every reachable state must be able to reach a state satisfying this. */
  readonly goal?: (s: GlobalView) => boolean;
  /**
   * The steps the goal must be reachable by (default: all). E.g. leave out management interventions and
   * faults to ask whether the system gets there on its own.
   */
  readonly goalVia?: (step: StepLabel) => boolean;
  /** Name and description of the goal property in reports (default GoalAlwaysReachable). */
  readonly goalName?: string;
  readonly goalDescription?: string;
  /** Non-progress cycles: a reachable cycle none of whose steps is a progress step is reported. */
  readonly progress?: (step: StepLabel) => boolean;
  /**
   * Weak fairness for non-progress cycles: report only cycles that take at least one step satisfying
   * this (e.g. the migration thread runs), not cycles that merely starve it.
   */
  readonly fair?: (step: StepLabel) => boolean;
  /** Non-progress cycles are looked for only among states satisfying this (default: all). */
  readonly progressScope?: (s: GlobalView) => boolean;
  readonly symmetry?: readonly SymmetryGroup[];
  /** Symmetry over items inside components (see dataSymmetry.ts); used instead of `symmetry` when given. */
  readonly dataSymmetry?: DataSymmetry;
  /** What happens to a delivered message its receiver cannot take: it blocks the channel (default), or is dropped. */
  readonly unhandled?: 'block' | 'drop';
  /**
   * A reduction for one question, per component: a function that resets state which no guard, action or
   * emitted message of the system reads, except right after writing it in the same step (e.g. counters
   * kept only for properties). Applied to every snapshot before it is interned, so snapshots that differ
   * only there become one. Sound when that is true of every reset field (then each state and its forgetful
   * image have the same steps to forgetful images of the same successors) and the system checks nothing
   * that reads them. Traces are replayed without it, so they show the real values.
   */
  readonly forget?: Readonly<Record<string, (s: AnySnapshot) => AnySnapshot>>;
  /**
   * Local states no question of the system needs to go into (e.g. a migration that has ended for good,
   * when the only question is a non-progress cycle inside `progressScope`): a step into one is not taken.
   * Sound for non-progress cycles when no state in scope can be reached from a cut state. A system with
   * `cut` can have no goal, and is not checked for deadlocks (a state whose steps are all cut would look
   * like one).
   */
  readonly cut?: Readonly<Record<string, (s: AnySnapshot) => boolean>>;
}

export interface ExploreOptions {
  /** Stop after this many distinct global states (exit code 3 in the CLI). Default 50,000,000. */
  readonly maxStates?: number;
  /** Stop before retained memory (heap + typed arrays) passes this many bytes. Default 8 GiB. */
  readonly memoryBudget?: number;
  /** Use the system's symmetry groups. Default true. */
  readonly symmetry?: boolean;
  /** Progress line on stderr: 'auto' (a TTY and not CI), or forced on/off. */
  readonly progress?: 'auto' | boolean;
  /** Where progress goes (default process.stderr). */
  readonly progressStream?: NodeJS.WritableStream & { isTTY?: boolean };
  /**
   * How XState is asked for a local step: one reused inert actor scope per machine (default), or XState's
   * `transition()` helper, which builds a throw-away actor per call (slower, the same results; kept for
   * comparisons and differential tests).
   */
  readonly stepWith?: 'scope' | 'helper';
}

/** Thrown for a system the explorer cannot take (bad wiring, unsupported machine feature). */
export class SystemError extends Error {
  override readonly name = 'SystemError';
}
