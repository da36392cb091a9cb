/**
 * Conformance of an observed QEMU run to the model. The model is walked as a set of possible global
 * states while the observations are read in log order:
 *
 *  - a controllable action (migrate, migrate-incoming, migrate-continue, migrate_cancel, stop, cont, an
 *    injected fault, a new destination process) is the matching environment step; QEMU accepting it needs that step, QEMU refusing it
 *    needs a state where the model does not take it (or takes it without any visible effect);
 *  - every other step (THREAD_STEP, PENDING_FITS_THRESHOLD, deliveries on the stream and the return path) is
 *    internal and may happen any number of times in between (closure);
 *  - the observable variables are each side's status and whether its guest runs, and (a model with
 *    devices) the state QEMU tracks for each device, which its VFIO_MIGRATION events report. An internal or
 *    controllable step that changes one is a change QEMU must report: a state may be at most one
 *    such step ahead of what QEMU has reported (the changes of that one step may be reported in any
 *    order), so a skipped status, a status the model never has there, or reports in an order the
 *    model's causality forbids are divergences. A report equal to the last one is an unobservable
 *    repeat and ignored. A step that emits several device events is a chain of links (model.ts): its
 *    events must come in the step's order, its other changes in any order against them;
 *  - a trace fact and a query-status runstate (running, paused, inmigrate, postmigrate, finish-migrate)
 *    narrow the set to the states where they hold;
 *  - a killed QEMU reports nothing: its variables are not waited for (the model may move them freely)
 *    until a new process for that side starts (NEW_PROCESS), whose variables are then its initial ones;
 *  - migrate-continue names the status it continues from, and QEMU refuses it unless that is the
 *    current one; migrate-set-capabilities is accepted on the source only while no migration runs,
 *    and only for a valid set (see the rules by Walk.action and Walk.capabilities).
 *
 * The check is incremental (Checker): observations are fed one at a time and the verdict so far can
 * be asked at any point, so the live monitor (monitor.ts) runs the very same check as it follows a
 * migration; checkLog feeds it a whole log. An observer that does not see the commands (a second QMP
 * client) names them `unseen`: the walk then takes those controllable steps as it takes internal ones.
 *
 * The first observation no state can match is the divergence: its step, what QEMU did, and what the
 * model allowed there. A log that matches to its end but stops while the migration is still under
 * way (no consistent state has both sides at an end) is incomplete: it shows no divergence, but it does
 * not show a run that conforms either.
 */
import type { RunDivergence } from '../explorer/divergence.js';
import { bfs } from '../explorer/graph.js';
import { type KnownDisagreement, type Rewrite, KNOWN_DISAGREEMENTS } from './exceptions.js';
import { type LogRecord, type Side } from './log.js';
import { type ControllableEvent, type Edge, type ModelConfig, type StatusGraph, describeConfig, statusGraph, runningVar, statusVar } from './model.js';
import { type Observation, configOf, observationsOf } from './observations.js';

/** Where a QEMU run left the model: `step` is the 1-based position among the checked observations, `allowed` the model's steps there. */
export interface Divergence extends RunDivergence<string> {
  /** The log line. */
  readonly line: number;
  /** What QEMU (or the harness) did. */
  readonly did: string;
  /** What QEMU had reported up to then. */
  readonly reported: string;
}

export interface ConformResult {
  readonly config: ModelConfig;
  readonly modelStates: number;
  /** Observations checked (repeats included) and actions among them. */
  readonly steps: number;
  readonly actions: number;
  /** Among them: the VFIO_MIGRATION events and the status reports (MIGRATION events, query-migrate) checked. */
  readonly deviceEvents: number;
  readonly statusObservations: number;
  /** Where a documented disagreement was applied. */
  readonly exceptions: readonly { readonly name: string; readonly line: number }[];
  readonly divergence: Divergence | null;
  /**
   * No divergence, but the log stops mid-migration: in every state consistent with it the source is not
   * completed/failed/cancelled or the destination has not ended. null when the run ended (or diverged).
   */
  readonly incomplete: Incomplete | null;
}

export interface Incomplete {
  /** What QEMU had reported when the log stopped. */
  readonly reported: string;
  /** What the model would still do: the changes it could report next. */
  readonly next: readonly string[];
}

/**
 * The statuses in which QEMU's outgoing migration runs (migration_is_running, migration/migration.c),
 * among those the model has: migrate-set-capabilities is refused there ("There's a migration process
 * in progress", qmp_migrate_set_capabilities, migration/options.c). The destination's QEMU answers from
 * its own outgoing state, which an incoming migration leaves at 'none'.
 */
export const MIGRATION_RUNNING: readonly string[] = ['setup', 'active', 'pre-switchover', 'device', 'cancelling'];

/**
 * The commands that start a migration when QEMU accepts them, and why: qmp_migrate → migrate_init
 * (migration/migration.c) resets the status and moves it none → setup, after migrate_prepare refused
 * what it refuses (e.g. "Can't migrate the vm that was paused due to previous migration" in
 * postmigrate); qmp_migrate_incoming accepts one per process (its `static bool once`, else "The
 * incoming migration has already been started") and qemu_start_incoming_migration moves it to setup.
 */
const STARTS_A_MIGRATION: Partial<Record<ControllableEvent, { readonly side: Side; readonly why: string }>> = {
  MIGRATE: {
    side: 'source',
    why: "an accepted migrate moves the source to 'setup' (migrate_init) and QEMU refuses one while a migration runs or after completed (migrate_prepare)",
  },
  MIGRATE_INCOMING: {
    side: 'destination',
    why: "QEMU accepts migrate-incoming once per process (qmp_migrate_incoming), from 'none'; a retry needs a new destination process (NEW_PROCESS)",
  },
};

/** A side at the end of its migration (a destination may also have ended otherwise, see Walk.incomplete). */
const ENDED: Readonly<Record<Side, readonly string[]>> = { source: ['completed', 'failed', 'cancelled'], destination: ['completed', 'failed'] };

export interface CheckOptions {
  /** The documented disagreements to apply (default: all of KNOWN_DISAGREEMENTS; [] for none). */
  readonly exceptions?: readonly KnownDisagreement[];
  /**
   * Controllable steps the observer cannot see (a second QMP client does not see another client's
   * commands): the walk takes them as it takes internal steps, under the same reporting rule. Default none.
   */
  readonly unseen?: readonly ControllableEvent[];
}

/** Check a parsed log: its configuration from its capabilities, then its observations. */
export function checkLog(records: readonly LogRecord[], lines?: readonly number[], opts: CheckOptions = {}): ConformResult {
  return checkObservations(observationsOf(records, lines), configOf(records, lines), opts);
}

export function checkObservations(observations: readonly Observation[], config: ModelConfig, opts: CheckOptions = {}): ConformResult {
  const c = new Checker(config, opts);
  for (const o of observations) c.push(o);
  return c.end();
}

/** One observation as the checker took it: in the rewritten order, with the divergence it caused, if any. */
export interface Checked {
  readonly observation: Observation;
  /** 1-based position among the checked observations. */
  readonly step: number;
  readonly divergence: Divergence | null;
}

/**
 * The incremental check: observations are fed one at a time, in log order (`push`), and the verdict so
 * far can be asked at any point (`verdict`); `end` says the run is over. The documented disagreements
 * are applied as streaming rewrites (exceptions.ts), so an observation a rewrite may still move is held
 * back (`held`) and checked once it is final; after the first divergence nothing more is checked, but
 * the rewrites still read the rest (the report lists every place one applied, as for a whole log).
 * checkLog is this fed a whole log.
 *
 * @example
 *   import { Checker } from './conform.js';
 *   // what a second QMP client sees: no commands, so migrate and migrate-incoming are unseen steps
 *   const c = new Checker({ ack: 'off', pauseBeforeSwitchover: false }, { unseen: ['MIGRATE', 'MIGRATE_INCOMING'] });
 *   const status = (side, s, line) => ({ side, kind: 'status', status: s, index: line - 1, line, text: `${side} reported '${s}'` });
 *   c.push(status('destination', 'setup', 1)).map((x) => x.divergence); // => [null]
 *   c.push(status('source', 'active', 2))[0].divergence.allowed; // => ["source status → 'setup'"]
 *   c.end().divergence.step; // => 2
 */
export class Checker {
  private readonly g: StatusGraph;
  private readonly walk: Walk;
  private readonly stages: { readonly ex: KnownDisagreement; readonly rewrite: Rewrite }[];
  private steps = 0;
  private actions = 0;
  private deviceEvents = 0;
  private statusObservations = 0;
  private divergence: Divergence | null = null;
  private result: ConformResult | null = null;

  constructor(
    readonly config: ModelConfig,
    opts: CheckOptions = {},
  ) {
    this.g = statusGraph(config);
    this.walk = new Walk(this.g, new Set(opts.unseen ?? []));
    this.stages = (opts.exceptions ?? KNOWN_DISAGREEMENTS).map((ex) => ({ ex, rewrite: ex.start() }));
  }

  get modelStates(): number {
    return this.g.states;
  }

  /** Feed the next observation; returns the observations checked now (none while the rewrites hold it back). */
  push(o: Observation): Checked[] {
    if (this.result) throw new Error('Checker.push after end()');
    return this.check(this.stages.reduce<Observation[]>((items, { rewrite }) => items.flatMap((x) => rewrite.push(x)), [o]));
  }

  /** The run is over: check what the rewrites still held, and give the result. Idempotent. */
  end(): ConformResult {
    if (this.result) return this.result;
    let flushed: Observation[] = [];
    for (let s = 0; s < this.stages.length; s++) {
      const r = this.stages[s]!.rewrite;
      flushed = [...flushed.flatMap((o) => r.push(o)), ...r.end()];
    }
    this.check(flushed);
    this.result = { ...this.verdict(), incomplete: this.divergence ? null : this.walk.incomplete() };
    return this.result;
  }

  /** The verdict so far: no divergence yet (null) or the first one; `incomplete` is only decided by end(). */
  verdict(): ConformResult {
    return {
      config: this.config,
      modelStates: this.g.states,
      steps: this.steps,
      actions: this.actions,
      deviceEvents: this.deviceEvents,
      statusObservations: this.statusObservations,
      exceptions: this.stages.flatMap(({ ex, rewrite }) => rewrite.applied.map((line) => ({ name: ex.name, line }))),
      divergence: this.divergence,
      incomplete: null,
    };
  }

  /**
   * A side's QEMU is gone without a fault the log shows (a monitor saw its QMP connection close): from
   * here on nothing it does is waited for, as after a kill fault (the break itself must then be an
   * unseen step). Applies after the observations checked so far.
   */
  silence(side: Side, why: string): void {
    this.walk.silence(side, why);
  }

  /** Observations fed but not checked yet: a rewrite holds them until a later report decides their place. */
  get held(): number {
    return this.stages.reduce((n, s) => n + s.rewrite.held, 0);
  }

  /** What the model can be in now: each side's status in the consistent states, and what QEMU has reported. */
  state(): { readonly where: string; readonly states: number; readonly reported: string } {
    return this.walk.state();
  }

  private check(obs: readonly Observation[]): Checked[] {
    const out: Checked[] = [];
    for (const o of obs) {
      if (this.divergence) break;
      this.steps++;
      if (o.kind === 'action') this.actions++;
      if (o.kind === 'device') this.deviceEvents++;
      if (o.kind === 'status') this.statusObservations++;
      const allowed = this.walk.take(o);
      if (allowed !== null) this.divergence = { step: this.steps, line: o.line, did: o.text, allowed, reported: this.walk.reported() };
      out.push({ observation: o, step: this.steps, divergence: this.divergence });
    }
    return out;
  }
}

/** The walk: the set of model states consistent with everything so far, and the last reported values. */
class Walk {
  private cur = new Set<number>([0]);
  private readonly seen: string[];
  /** Sides whose QEMU was killed: they report nothing more, so their variables are not waited for at the end. */
  private readonly dead = new Set<Side>();
  /** How each dead side died: the log line of the fault that killed it, or what an observer saw. */
  private readonly killedAt = new Map<Side, string>();
  private readonly stuck = new Map<number, boolean>();
  /** The source has reported 'active' since its last migrate: it had connected to the destination (see incomplete()). */
  private sourceWasActive = false;

  constructor(
    private readonly g: StatusGraph,
    /** Controllable steps taken as internal ones (CheckOptions.unseen). */
    private readonly unseen: ReadonlySet<ControllableEvent>,
  ) {
    this.seen = [...g.obs[0]!];
  }

  /** Variable k belongs to a QEMU that was killed (and not replaced yet): nothing it does is reported. */
  private silent(k: number): boolean {
    return this.dead.has(this.g.sideOfVar[k]!);
  }

  /** m has nothing unreported (among `vars`, default all). */
  private settled(m: number, vars?: readonly number[]): boolean {
    const o = this.g.obs[m]!;
    for (const k of vars ?? o.keys()) if (o[k] !== this.seen[k] && !this.silent(k)) return false;
    return true;
  }

  /**
   * A step m → e.to may be taken when it changes nothing observable, or when m has nothing unreported
   * (the link of a multi-event step: nothing unreported among what it needs, Edge.needs), or when what
   * m has unreported is the other side's and came from a step concurrent with this one (concurrent()).
   */
  private mayStep(m: number, e: Edge): boolean {
    return this.g.changed(m, e.to).every((k) => this.silent(k)) || this.settled(m, e.needs) || this.concurrent(m, e);
  }

  /**
   * The reports of two concurrent steps may interleave: QEMU's two processes report each change when
   * it happens, and a step of the model is not atomic on the real host. So e (a step of one side) may
   * be taken from m while m still has unreported changes, when all of them are the other side's and m
   * was reached from a settled state p by a step that commutes with e (StatusGraph.commutes: from p,
   * either may go first to the same state). Reports the two steps cause in each other — one needs the
   * other's message — never commute, so causality still binds.
   */
  private concurrent(m: number, e: Edge): boolean {
    const side = e.label.component as Side;
    const o = this.g.obs[m]!;
    for (let k = 0; k < o.length; k++) if (o[k] !== this.seen[k] && !this.silent(k) && this.g.sideOfVar[k] === side) return false;
    return this.g.pred[m]!.some(({ from, edge }) => this.settled(from) && this.g.commutes(from, edge, m, e));
  }

  /** The current states and those their internal (and unseen) steps may lead to, in breadth-first order. */
  private closure(): number[] {
    const { edges, succ } = this.g;
    const quiet = (a: number, m: number) => {
      const e = succ[m]![a - edges.start[m]!]!;
      return (e.action === null || this.unseen.has(e.action)) && this.mayStep(m, e);
    };
    return [...bfs(this.g.nodes, edges.start, edges.to, [...this.cur], { follow: quiet }).order];
  }

  /** Apply one observation; null when it matches, else what the model allowed instead. */
  take(o: Observation): string[] | null {
    const revives = o.kind === 'action' && o.revives === o.side;
    if (this.dead.has(o.side) && !revives) {
      // a SIGKILLed QEMU has no QMP connection: nothing it reports or answers can follow until a new process starts
      return [`nothing from the ${o.side}: its QEMU ${this.killedAt.get(o.side) ?? 'was killed'} and no new ${o.side} process was started (NEW_PROCESS)`];
    }
    switch (o.kind) {
      case 'action': {
        const r =
          o.event === 'MIGRATE_CONTINUE' && o.continueState !== undefined
            ? this.migrateContinue(o.continueState, o.refused)
            : o.refused === null && STARTS_A_MIGRATION[o.event] !== undefined
              ? this.start(o.event)
              : this.action(o.side, o.event, o.refused);
        if (r === null && o.kills) {
          this.dead.add(o.kills);
          this.killedAt.set(o.kills, `was killed at line ${o.line}`);
        }
        if (r === null && o.revives) this.revive(o.revives);
        if (r === null && o.event === 'MIGRATE' && o.refused === null) this.sourceWasActive = false; // a new migration: has it connected?
        return r;
      }
      case 'capabilities':
        return this.capabilities(o.side, o.refused, o.invalid, o.covered);
      case 'status':
        return this.change(statusVar(o.side), o.status);
      case 'running':
        return this.change(runningVar(o.side), String(o.running));
      case 'device': {
        const k = this.g.deviceVar(o.side, o.device);
        if (k < 0) return [`no VFIO device ${o.id} on the ${o.side} in the model (${describeConfig(this.g.config)})`];
        return this.change(k, o.state);
      }
      case 'runstate': {
        const r = this.change(runningVar(o.side), String(o.running));
        if (r) return r;
        return this.filter(
          (m) => this.g.runstateOf(m, o.side) === o.runstate,
          (cl) => [`${o.side} runstate ${unique(cl.map((m) => `'${this.g.runstateOf(m, o.side)}'`)).join(' or ')}`],
        );
      }
      case 'fact':
        return this.filter(
          (m) => o.fact.holds(this.g.sourceContext[m]!, this.g.destinationContext[m]!),
          () => [`no state the model can be in here has: ${o.fact.name}`],
        );
    }
  }

  /** See Checker.silence. */
  silence(side: Side, why: string): void {
    this.dead.add(side);
    this.killedAt.set(side, why);
  }

  /**
   * A new QEMU process for `side` (NEW_PROCESS): it reports again, starting from what the model's fresh
   * process has (every state NEW_PROCESS leads to has the same initial status and run state).
   */
  private revive(side: Side): void {
    this.dead.delete(side);
    for (let k = 0; k < this.g.variables.length; k++) {
      if (this.g.sideOfVar[k] !== side) continue;
      const values = unique([...this.cur].map((m) => this.g.obs[m]![k]!));
      if (values.length !== 1) throw new Error(`internal: a new ${side} process has ${values.join(' or ')} for ${this.g.variables[k]}`);
      this.seen[k] = values[0]!;
    }
  }

  private filter(pred: (m: number) => boolean, why: (cl: number[]) => string[]): string[] | null {
    const cl = this.closure();
    const next = cl.filter(pred);
    if (next.length === 0) return why(cl);
    this.cur = new Set(next);
    return null;
  }

  private change(k: number, value: string): string[] | null {
    if (k === statusVar('source') && value === 'active') this.sourceWasActive = true;
    if (this.seen[k] === value) return null; // an unobservable repeat
    const cl = this.closure();
    const next = cl.filter((m) => this.g.obs[m]![k] === value);
    if (next.length === 0) return this.pendingChanges(cl);
    this.seen[k] = value;
    this.cur = new Set(next);
    return null;
  }

  /** What QEMU could have reported next: every change some reachable state has not reported yet. */
  private pendingChanges(cl: readonly number[]): string[] {
    const out = new Set<string>();
    for (const m of cl) {
      const o = this.g.obs[m]!;
      for (let k = 0; k < o.length; k++) if (o[k] !== this.seen[k]) out.add(`${this.g.variables[k]} → ${fmt(k, o[k]!)}`);
    }
    return out.size > 0 ? [...out].sort() : ['no further change (the model has nothing left to report here)'];
  }

  /** A controllable action, taken (or refused) from the consistent states where `from` holds (default: all). */
  private action(
    side: Side,
    event: ControllableEvent,
    refused: string | null,
    from: (m: number) => boolean = () => true,
    keep: readonly number[] = [],
    lands: (to: number) => boolean = () => true,
  ): string[] | null {
    const all = this.closure();
    const cl = all.filter(from);
    const takes = (m: number) => this.g.succ[m]!.filter((e) => e.action === event && e.label.component === side);
    if (refused === null) {
      const next = new Set<number>();
      for (const m of cl) for (const e of takes(m)) if (lands(e.to) && this.mayStep(m, e)) next.add(e.to);
      if (next.size === 0) return [this.whereTaken(side, event, cl)];
      this.cur = next;
      return null;
    }
    // Refused: the model does not take the step here, or takes it without any visible effect (a refusal it models).
    const next = new Set<number>(keep);
    for (const m of cl) {
      const es = takes(m);
      if (es.length === 0) next.add(m);
      for (const e of es) if (this.g.changed(m, e.to).length === 0) next.add(e.to);
    }
    if (next.size === 0) return [`the model accepts ${event} in every state it can be in here (${this.where(all)})`];
    this.cur = next;
    return null;
  }

  /**
   * migrate-continue {state}: qmp_migrate_continue (migration/migration.c) refuses it ("Migration not in
   * expected state") unless `state` equals the source's current status, and otherwise lets the paused
   * migration thread go on. So an accepted one needs a state with that status where the model takes
   * MIGRATE_CONTINUE; a refused one whose argument is not the current status is QEMU's own check (no
   * model step); a refused one naming the current status must be a refusal the model has. Without a
   * `state` (only refused: QAPI rejects the missing argument) nothing happened.
   */
  private migrateContinue(state: string | null, refused: string | null): string[] | null {
    if (state === null) return null;
    const named = (m: number) => this.g.status(m, 'source') === state;
    const cl = this.closure();
    if (refused === null && !cl.some(named)) {
      return [`QEMU accepts migrate-continue only with the current status as its state argument (qmp_migrate_continue); the source is in ${this.statuses(cl, 'source')} here, not '${state}'`];
    }
    return this.action('source', 'MIGRATE_CONTINUE', refused, named, refused === null ? [] : cl.filter((m) => !named(m)));
  }

  /**
   * An accepted migrate or migrate-incoming starts a migration: its side goes to 'setup' (see
   * STARTS_A_MIGRATION). So it must be the model's step to 'setup' — not a command the model answers
   * with a refusal it records (MIGRATE in 'completed': refusePostmigrate) or a message a finished
   * destination drops (its catch-all discard), either of which would otherwise match it.
   */
  private start(event: ControllableEvent): string[] | null {
    const rule = STARTS_A_MIGRATION[event]!;
    const side = rule.side;
    const cl = this.closure();
    const starts = (m: number) => this.g.succ[m]!.some((e) => e.action === event && e.label.component === side && this.g.status(e.to, side) === 'setup');
    if (!cl.some(starts)) return [`${rule.why}; the ${side} is in ${this.statuses(cl, side)} here`];
    return this.action(side, event, null, starts, [], (to) => this.g.status(to, side) === 'setup');
  }

  /**
   * migrate-set-capabilities: qmp_migrate_set_capabilities (migration/options.c) refuses it while the
   * side's outgoing migration runs (MIGRATION_RUNNING; never on the destination, whose outgoing status
   * stays 'none') and when the resulting set breaks migrate_caps_check; otherwise it applies the whole
   * list. So an accepted one needs a valid set and a state where no migration runs; a refused one needs
   * a broken rule or a running migration — or a capability outside the model, whose rules the checker
   * does not know. (Which capabilities it set is configOf's business.)
   */
  private capabilities(side: Side, refused: string | null, invalid: string | null, covered: boolean): string[] | null {
    const running = (m: number) => side === 'source' && MIGRATION_RUNNING.includes(this.g.status(m, 'source'));
    if (refused === null) {
      if (invalid) return [`QEMU refuses this set of capabilities: ${invalid}`];
      return this.filter(
        (m) => !running(m),
        (cl) => [`QEMU refuses migrate-set-capabilities while a migration runs (the source is in ${this.statuses(cl, 'source')} here)`],
      );
    }
    if (invalid || !covered) return null;
    return this.filter(
      running,
      (cl) => [
        `QEMU accepts a valid set of capabilities when no migration runs (the ${side === 'source' ? `source is in ${this.statuses(cl, 'source')}` : 'destination answers from its outgoing status, \'none\''} here)`,
      ],
    );
  }

  private statuses(cl: readonly number[], side: Side): string {
    return unique(cl.map((m) => `'${this.g.status(m, side)}'`)).join(' or ');
  }

  /** The destination can no longer change its status on its own (it waits for a source that is gone). */
  private destinationStuck(m: number): boolean {
    let r = this.stuck.get(m);
    if (r !== undefined) return r;
    const k = statusVar('destination');
    const want = this.g.obs[m]![k];
    const { edges, succ, obs } = this.g;
    const internal = (a: number, x: number) => succ[x]![a - edges.start[x]!]!.action === null;
    r = bfs(this.g.nodes, edges.start, edges.to, [m], { follow: internal, until: (x) => obs[x]![k] !== want }).found < 0;
    this.stuck.set(m, r);
    return r;
  }

  /**
   * At the end of the log: null when some consistent state has everything reported (the variables of a
   * killed side aside) with the source completed, failed or cancelled and the destination completed,
   * failed, unable to move on its own (e.g. never given migrate-incoming) or killed; else what is missing.
   *
   * Also ended: a destination still listening in 'setup' when the source ended without ever reporting
   * 'active'. The source moves to 'active' only after its connection is up and the setup sent
   * (migration_thread, migration/migration.c), so before that it may never have connected — a stalled
   * connect, a cancel in setup — and then QEMU's destination waits for a connection for as long as it
   * lives; the model does not model the connection (MIGRATE_NEEDS_A_LISTENER in exceptions.ts) and
   * would still deliver what the source sent. Once the source was 'active', the destination has the
   * connection and must still report.
   */
  incomplete(): Incomplete | null {
    const cl = this.closure();
    const live = this.g.variables.map((_, k) => !this.silent(k));
    const reported = (m: number) => this.g.obs[m]!.every((v, k) => !live[k] || v === this.seen[k]);
    const ended = (m: number) =>
      ENDED.source.includes(this.g.status(m, 'source')) &&
      (this.dead.has('destination') ||
        ENDED.destination.includes(this.g.status(m, 'destination')) ||
        (this.g.status(m, 'destination') === 'setup' && !this.sourceWasActive) ||
        this.destinationStuck(m));
    if (cl.some((m) => reported(m) && ended(m))) return null;
    const pending = this.pendingChanges(cl.filter((m) => !reported(m)));
    return { reported: this.reported(), next: cl.some((m) => !reported(m)) ? pending : ['nothing the model reports on its own: the next step is a command'] };
  }

  private whereTaken(side: Side, event: ControllableEvent, cl: readonly number[]): string {
    const statuses = new Set<string>();
    for (let m = 0; m < this.g.states; m++) if (this.g.succ[m]!.some((e) => e.action === event && e.label.component === side)) statuses.add(this.g.status(m, side));
    if (statuses.size === 0) {
      const other: Side = side === 'source' ? 'destination' : 'source';
      const elsewhere = this.g.succ.some((es) => es.some((e) => e.action === event && e.label.component === other));
      return elsewhere ? `the model takes ${event} only on the ${other}` : `the model never takes ${event} in this configuration (${describeConfig(this.g.config)})`;
    }
    const blocked = cl.filter((m) => !this.settled(m) && this.g.succ[m]!.some((e) => e.action === event && e.label.component === side));
    if (blocked.length > 0) return `${event} only once this was reported: ${this.pendingChanges(blocked).join(' or ')}`;
    return (
      `no ${event} step from any state the model can be in here (${this.where(cl)}); ` +
      `the model takes ${event} only with the ${side} in ${[...statuses].map((s) => `'${s}'`).join(', ')}`
    );
  }

  private where(cl: readonly number[]): string {
    return unique(cl.map((m) => `source '${this.g.status(m, 'source')}', destination '${this.g.status(m, 'destination')}'`)).join(' | ');
  }

  /** The consistent states by status (as where() lists them), their number, and what QEMU reported. */
  state(): { where: string; states: number; reported: string } {
    return { where: this.where([...this.cur]), states: this.cur.size, reported: this.reported() };
  }

  reported(): string {
    return this.g.variables.map((name, k) => `${name} ${fmt(k, this.seen[k]!)}`).join(', ');
  }
}

/** The running variables (1, 3) read true/false; the others are quoted names. */
const fmt = (k: number, v: string) => (k === 1 || k === 3 ? v : `'${v}'`);
const unique = (xs: readonly string[]) => [...new Set(xs)];

/** A readable report of a check. */
export function formatResult(r: ConformResult): string {
  const d = r.config.devices;
  const head = `model: migration ${d && d.source + d.destination > 0 ? 'with VFIO devices' : 'without VFIO devices'}, ${describeConfig(r.config)} (${r.modelStates} states)`;
  const counted = `${r.deviceEvents} device events, ${r.statusObservations} status observations`;
  const ex = r.exceptions.map((e) => `  known disagreement ${e.name} applied at line ${e.line}`);
  if (r.incomplete) {
    return [
      head,
      `INCOMPLETE: ${r.steps} observations checked, ${r.actions} actions, no divergence, but the log stops mid-migration (${counted})`,
      `  reported so far: ${r.incomplete.reported}`,
      `  the model would go on with: ${r.incomplete.next.join('; ')}`,
      ...ex,
    ].join('\n');
  }
  if (!r.divergence) return [head, `conforms: ${r.steps} observations checked, ${r.actions} actions (${counted})`, ...ex].join('\n');
  const div = r.divergence;
  return [
    head,
    `DIVERGES at step ${div.step} (line ${div.line}): ${div.did}`,
    `  the model allowed: ${div.allowed.join('; ')}`,
    `  reported so far: ${div.reported}`,
    ...ex,
  ].join('\n');
}
