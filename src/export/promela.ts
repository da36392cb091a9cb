/**
 * A system as Promela for SPIN (`migration-statecharts export --promela`), written from an exploration
 * so that it is exactly the explorer's semantics (src/explorer/system.ts), not a second model of QEMU:
 *
 *  - each component's local state is one integer variable, its value the component's interned local id
 *    (LocalTable); each channel is a Promela `chan` of message ids with the channel's capacity;
 *  - one process whose `do` loop has one `d_step` option per memoised enabled local step: an environment
 *    event (component in local state L), or a delivery (receiver in L, message m at the channel's head,
 *    polled with `ch?[m]`). The option's guard also checks that every message the step emits fits; its
 *    body removes the head, sets the new local id and sends the emitted messages in order. A message its
 *    receiver cannot take is never received: it blocks its channel (or, with `unhandled: 'drop'`, a
 *    drop option removes it);
 *  - an environment step that changes nothing (the same local id, nothing sent) is left out: it is a
 *    stutter, the same global state;
 *  - invariants are tabulated over the product of the explored local states of the components they read
 *    (not over the reached global states: SPIN finds the violations itself; a read of a component not yet
 *    in the product restarts the tabulation with it) and asserted after every step
 *    that changes one of those components; steps from a component's initial local state and the deadlock
 *    option also assert them before the step, which covers the initial state. An invariant that reads a
 *    channel is left out (listed in the file's header);
 *  - deadlocks: `d_step { else -> assert(…) }` asserts that a state with no enabled option is terminal
 *    (the spec's `terminal`, tabulated the same way) or has a stutter step (which our explorer counts as
 *    enabled). So SPIN's assertion check decides NoDeadlock;
 *  - non-progress cycles: compiled with `spin -DPROGRESS`, every progress step (the spec's `progress`)
 *    and the deadlock option pass through a `progress_…` label, for `gcc -DNP` and `pan -l`.
 *
 * State counts: the process's program counter is at the loop head between steps and d_step bodies are
 * single transitions, so SPIN's "states, stored" (safety run, -DNOREDUCE, no -DPROGRESS) equals the
 * explorer's states, with no offset. With -DPROGRESS a progress step's target is stored twice (at the
 * label and back at the loop head), so the NP run's counts are larger; its verdict is what matters.
 *
 * Tables are C bit arrays in `c_decl` blocks, checked in `c_code` that reports through pan's own
 * assertion (`spin_assert`: "assertion violated invariant NAME", "assertion violated NoDeadlock: …"), so
 * the file is for pan (`spin -a`; replay a trail with `./pan -r`), not SPIN's interactive simulator.
 */
import type { EventObject } from 'xstate';
import { search } from '../explorer/search.js';
import { CompiledSystem } from '../explorer/step.js';
import { type AnySnapshot, type GlobalView, type StepLabel, type SystemSpec, SystemError } from '../explorer/system.js';

export interface PromelaOptions {
  /** Refuse (SystemError) a system with more global states than this. Default 5,000,000. */
  readonly maxStates?: number;
  /** Refuse a tabulated predicate over more local-state combinations than this. Default 20,000,000. */
  readonly maxTable?: number;
}

export interface PromelaExport {
  readonly text: string;
  /** The explorer's figures for the same system (symmetry off): SPIN must count the same states. */
  readonly states: number;
  readonly transitions: number;
  readonly seconds: number;
  /** The explorer's verdicts for what SPIN checks: invariant name → violated. */
  readonly invariants: Readonly<Record<string, boolean>>;
  readonly deadlock: boolean;
  /** Invariants left out, and why. */
  readonly leftOut: readonly { readonly name: string; readonly reason: string }[];
  /** The d_step options written (one per enabled local step). */
  readonly options: number;
  /** The C identifier of each checked invariant's table, as SPIN's assertion messages show it. */
  readonly tableNames: Readonly<Record<string, string>>;
  readonly hasProgress: boolean;
}

const DEFAULT_MAX_STATES = 5_000_000;
const DEFAULT_MAX_TABLE = 20_000_000;
/** Entries per C chunk of a table (a multiple of 4; 60,000 hex digits, under SPIN's c_decl limit). */
const CHUNK = 240_000;
/** SPIN's message for a deadlock (after "assertion violated "). */
export const DEADLOCK_MESSAGE = 'NoDeadlock: no step enabled in a state that is not terminal';
const BIT_DECL = `c_decl {
  /* entry i of a table: bit i&3 of hex digit i>>2 of chunk i/${CHUNK} */
  static int bit(const char *const *tab, long i) {
    char c = tab[i / ${CHUNK}][(i % ${CHUNK}) >> 2];
    return ((c <= '9' ? c - '0' : c - 'a' + 10) >> (i & 3)) & 1;
  }
}`;

/** What a tabulated predicate reads: its components (indices, ascending) and its value per combination. */
interface Table {
  readonly comps: number[];
  readonly values: Uint8Array;
}

class NeedComponent {
  constructor(readonly index: number) {}
}
class ReadsChannel {
  constructor(readonly name: string) {}
}

/**
 * Tabulate `pred` over the product of the explored local states of the components it reads, found by
 * evaluation: a read of a component not yet in the set restarts with it added. A channel read is refused.
 */
function tabulate(sys: CompiledSystem, pred: (v: GlobalView) => boolean, maxTable: number, what: string): Table | ReadsChannel {
  const index = new Map(sys.names.map((n, i) => [n, i]));
  let comps: number[] = [];
  for (;;) {
    const sizes = comps.map((c) => sys.tables[c]!.size);
    const total = sizes.reduce((a, b) => a * b, 1);
    if (total > maxTable) throw new SystemError(`${what} reads ${comps.map((c) => sys.names[c]).join(', ')}: ${total} local-state combinations, over the table bound of ${maxTable}`);
    const locals = new Int32Array(sys.names.length);
    const snap = (name: string): AnySnapshot => {
      const i = index.get(name);
      if (i === undefined) throw new SystemError(`no component '${name}'`);
      if (!comps.includes(i)) throw new NeedComponent(i);
      return sys.tables[i]!.snapshots[locals[i]!]!;
    };
    const view: GlobalView = {
      snapshot: snap,
      value: (n) => snap(n).value,
      context: <T>(n: string) => snap(n).context as T,
      channel: (n) => {
        throw new ReadsChannel(n);
      },
    };
    const values = new Uint8Array(total);
    let grown: number | null = null;
    for (let k = 0; k < total && grown === null; k++) {
      // combination k, the last component varying fastest (row-major, as the C index expression reads it)
      let r = k;
      for (let j = comps.length - 1; j >= 0; j--) {
        locals[comps[j]!] = r % sizes[j]!;
        r = Math.floor(r / sizes[j]!);
      }
      try {
        values[k] = pred(view) ? 1 : 0;
      } catch (e) {
        if (e instanceof NeedComponent) grown = e.index;
        else if (e instanceof ReadsChannel) return e;
        else values[k] = 0; // a combination the predicate cannot read is never reached (the search would have thrown)
      }
    }
    if (grown === null) return { comps, values };
    comps = [...comps, grown].sort((a, b) => a - b);
  }
}

const ident = (s: string) => s.replace(/[^A-Za-z0-9_]/g, '_');
const intType = (n: number) => (n <= 256 ? 'byte' : n <= 32768 ? 'short' : 'int');
const comment = (s: string) => s.replace(/\*\//g, '* /').slice(0, 160);

/** The system as Promela, from an exploration of it; a SystemError when it is too big or cannot be written. */
export function exportPromela(spec: SystemSpec, opts: PromelaOptions = {}): PromelaExport {
  const maxStates = opts.maxStates ?? DEFAULT_MAX_STATES;
  const maxTable = opts.maxTable ?? DEFAULT_MAX_TABLE;
  const sys = new CompiledSystem(spec);
  const out = search(sys, { maxStates: maxStates + 1, progress: false });
  if (out.limit) {
    throw new SystemError(
      out.limit.kind === 'maxStates'
        ? `the system has more than ${maxStates} states: too big to export (a smaller --devices, or raise the bound)`
        : `the exploration stopped: ${out.limit.message}`,
    );
  }
  const n = sys.names.length;
  const init = sys.initialTuple();
  const compVar = sys.names.map((c) => `s_${ident(c)}`);
  const chanVar = sys.chanNames.map((c) => `ch_${ident(c)}`);
  const msgType = intType(sys.messages.events.length);
  const decls: string[] = [];
  /**
   * A table as C: hex digits of 4 entries each (entry i is bit i&3 of digit i>>2), in chunks of
   * CHUNK entries, each chunk its own c_decl (SPIN refuses a c_decl of more than about 64 KB), and an
   * array of the chunks read by `bit()`.
   */
  const cTable = (name: string, values: Uint8Array) => {
    const chunks: string[] = [];
    for (let base = 0; base < Math.max(1, values.length); base += CHUNK) {
      let hex = '';
      for (let i = base; i < Math.min(values.length, base + CHUNK); i += 4) {
        let d = 0;
        for (let j = 0; j < 4 && i + j < values.length; j++) d |= values[i + j]! << j;
        hex += d.toString(16);
      }
      const rows = hex.match(/.{1,100}/g) ?? [''];
      decls.push(`c_decl {\n  static const char ${name}_${chunks.length}[] =\n${rows.map((r) => `    "${r}"`).join('\n')};\n}`);
      chunks.push(`${name}_${chunks.length}`);
    }
    decls.push(`c_decl {\n  static const char *const ${name}[] = { ${chunks.join(', ')} };\n}`);
  };
  /** The C index of a table's entry from the array v_ of local ids (all components, in order). */
  const vIndex = (t: Table) => {
    if (t.comps.length === 0) return '0';
    let expr = `(long) v[${t.comps[0]}]`;
    for (let j = 1; j < t.comps.length; j++) expr = `(${expr}) * ${sys.tables[t.comps[j]!]!.size} + v[${t.comps[j]}]`;
    return expr;
  };

  // Invariants: tabulated, or left out with the reason.
  const checked: { name: string; table: Table; cname: string }[] = [];
  const leftOut: { name: string; reason: string }[] = [];
  const tableNames: Record<string, string> = {};
  const used = new Set<string>();
  for (const inv of spec.invariants ?? []) {
    const t = tabulate(sys, inv.holds, maxTable, `invariant ${inv.name}`);
    if (t instanceof ReadsChannel) {
      leftOut.push({ name: inv.name, reason: `reads channel '${t.name}' (the tables are over local states only)` });
      continue;
    }
    let cname = `inv_${ident(inv.name)}`;
    for (let k = 2; used.has(cname); k++) cname = `inv_${ident(inv.name)}_${k}`;
    used.add(cname);
    tableNames[inv.name] = cname;
    if (t.values.every((v) => v === 1)) {
      // holds in every combination of local states: nothing for SPIN to find, no assertion
      decls.push(`/* ${comment(inv.name)}: holds for every combination of explored local states */`);
      continue;
    }
    checked.push({ name: inv.name, table: t, cname });
    decls.push(`/* ${comment(inv.name)} over ${t.comps.map((c) => sys.names[c]).join(' × ') || 'nothing'} */`);
    cTable(cname, t.values);
  }
  const terminalPred = spec.terminal ?? ((v: GlobalView) => sys.names.every((c) => v.snapshot(c).status === 'done'));
  const term = tabulate(sys, terminalPred, maxTable, 'the terminal predicate');
  if (term instanceof ReadsChannel) throw new SystemError(`the terminal predicate reads channel '${term.name}': the export tabulates it over local states only`);
  decls.push(`/* terminal states, over ${term.comps.map((c) => sys.names[c]).join(' × ') || 'nothing'} */`);
  cTable('NoDeadlock_terminal', term.values);

  // Each table's memoised cells, by (local, message id).
  const cells = new Map<unknown, Map<number, { to: number; emits: Uint32Array }>>();
  const cellsOf = (c: number) => {
    const table = sys.tables[c]!;
    let m = cells.get(table);
    if (!m) {
      m = new Map();
      for (const x of table.memoised()) m.set(x.from * 65536 + x.message, { to: x.to, emits: x.emits });
      cells.set(table, m);
    }
    return m;
  };

  // Stutters (environment steps that change nothing): left out of the loop, counted as enabled.
  const stutter = sys.names.map((_, c) => new Uint8Array(sys.tables[c]!.size));
  for (let s = 0; s < sys.envComp.length; s++) {
    const c = sys.envComp[s]!;
    const m = cellsOf(c);
    for (let l = 0; l < sys.tables[c]!.size; l++) {
      const x = m.get(l * 65536 + sys.envMsg[s]!);
      if (x && x.to === l && x.emits.length === 0) stutter[c]![l] = 1;
    }
  }
  const stutterTerms: string[] = [];
  stutter.forEach((t, c) => {
    if (!t.some((v) => v === 1)) return;
    const name = `NoDeadlock_stutter_${ident(sys.names[c]!)}`;
    decls.push(`/* ${comment(sys.names[c]!)} has an environment step that changes nothing (a stutter) */`);
    cTable(name, t);
    stutterTerms.push(`bit(${name}, v[${c}])`);
  });

  // The checks, as C: fail_X(v, from) is the index of the first invariant at or after `from` of those
  // X checks that is false in the state whose local ids are v, or -1. CHECK_X reports each one with
  // pan's own assertion (its message: "assertion violated invariant NAME").
  const checkFn = (name: string, which: typeof checked) => {
    const tests = which.map((x) => `    if (from <= ${checked.indexOf(x)} && !bit(${x.cname}, ${vIndex(x.table)})) return ${checked.indexOf(x)};`);
    decls.push(`c_decl {\n  static int fail_${name}(const int *v, int from) {\n${tests.join('\n')}\n    return -1;\n  }\n}`);
    macros.push(
      `#define CHECK_${name} c_code { ${loadV} int f_ = -1; while ((f_ = fail_${name}(v_, f_ + 1)) >= 0) spin_assert(0, (char *) inv_name[f_], II, tt, t); }`,
    );
  };
  const macros: string[] = [];
  const loadV = `int v_[${n}] = { ${compVar.map((v) => `now.${v}`).join(', ')} };`;
  decls.push(`c_decl {\n  static const char *const inv_name[] = { ${checked.map((x) => JSON.stringify(`invariant ${x.name}`)).join(', ') || '""'} };\n}`);
  const invsReading = sys.names.map((_, c) => checked.filter((x) => x.table.comps.includes(c)));
  checkFn('ALL', checked);
  sys.names.forEach((_, c) => {
    if (invsReading[c]!.length > 0) checkFn(ident(sys.names[c]!), invsReading[c]!);
  });
  const deadlockOk = ['bit(NoDeadlock_terminal, ' + vIndex(term) + ')', ...stutterTerms].join(' || ');
  decls.push(`c_decl {\n  static int deadlock_ok(const int *v) { return ${deadlockOk}; }\n}`);

  // The messages each channel can carry: every memoised emit of its sender routed to it.
  const carries = sys.chanNames.map(() => new Set<number>());
  for (let c = 0; c < n; c++) {
    for (const x of cellsOf(c).values()) for (const msg of x.emits) carries[sys.channelOf(c, msg)]!.add(msg);
  }
  const chanCount = sys.chanNames.length;
  const chanOfName = new Map(sys.chanNames.map((k, i) => [k, i]));
  const spec_chans = spec.channels ?? [];

  const progress = spec.progress;
  const lines: string[] = [];
  let options = 0;
  let progressLabels = 0;
  const eventText = (e: EventObject) => comment(JSON.stringify(e));
  /** One option: component c at local l takes message msg (from channel `from`, or the environment). */
  const option = (c: number, l: number, msg: number, x: { to: number; emits: Uint32Array }, from: number | null) => {
    const guard = [`${compVar[c]} == ${l}`];
    if (from !== null) guard.push(`${chanVar[from]}?[${msg}]`);
    const body: string[] = [];
    if (from !== null) body.push(`${chanVar[from]}?_`);
    if (x.to >= 0) {
      const perChan = new Int32Array(chanCount);
      for (const e of x.emits) perChan[sys.channelOf(c, e)]!++;
      for (let k = 0; k < chanCount; k++) {
        if (perChan[k] === 0) continue;
        const room = sys.chanCap[k]! - perChan[k]! + (k === from ? 1 : 0);
        if (room < 0) return; // never fits: never enabled
        if (room < sys.chanCap[k]!) guard.push(`len(${chanVar[k]}) <= ${room}`);
      }
      if (l === init[c] && checked.length > 0) body.unshift('CHECK_ALL'); // the state before: covers the initial state
      if (x.to !== l) body.push(`${compVar[c]} = ${x.to}`);
      for (const e of x.emits) body.push(`${chanVar[sys.channelOf(c, e)]}!${e}`);
      if (x.to !== l && invsReading[c]!.length > 0) body.push(`CHECK_${ident(sys.names[c]!)}`);
    }
    const event = sys.messages.events[msg]!;
    const label: StepLabel =
      from === null ? { kind: 'env', component: sys.names[c]!, event } : { kind: 'deliver', component: sys.names[c]!, event, channel: sys.chanNames[from]! };
    const what = `${sys.names[c]} ${from === null ? 'env' : x.to < 0 ? `drops from ${sys.chanNames[from]}` : `from ${sys.chanNames[from]}`} ${eventText(event)}`;
    const prog = progress?.(label) ? `\n#ifdef PROGRESS\n     ; progress_${progressLabels++}: skip\n#endif` : '';
    lines.push(`  /* ${comment(what)} */`, `  :: d_step { ${guard.join(' && ')} -> ${body.join('; ')} }${prog}`);
    options++;
  };
  for (let c = 0; c < n; c++) {
    const m = cellsOf(c);
    const size = sys.tables[c]!.size;
    for (let s = 0; s < sys.envComp.length; s++) {
      if (sys.envComp[s] !== c) continue;
      for (let l = 0; l < size; l++) {
        const x = m.get(l * 65536 + sys.envMsg[s]!);
        if (!x || x.to < 0 || (x.to === l && x.emits.length === 0)) continue;
        option(c, l, sys.envMsg[s]!, x, null);
      }
    }
    spec_chans.forEach((ch) => {
      const k = chanOfName.get(ch.name)!;
      if (sys.chanTo[k] !== c) return;
      for (const msg of [...carries[k]!].sort((a, b) => a - b)) {
        for (let l = 0; l < size; l++) {
          const x = m.get(l * 65536 + msg);
          if (!x) continue;
          if (x.to < 0 && spec.unhandled !== 'drop') continue;
          option(c, l, msg, x, k);
        }
      }
    });
  }
  lines.push(
    '  /* no option enabled: the state must be terminal (or have a stutter step); the invariants hold in it */',
    `  :: d_step { else -> ${checked.length > 0 ? 'CHECK_ALL; ' : ''}c_code { ${loadV} if (!deadlock_ok(v_)) spin_assert(0, "${DEADLOCK_MESSAGE}", II, tt, t); } }` +
      (progress ? '\n#ifdef PROGRESS\n     ; progress_end: skip\n#endif' : ''),
  );

  const depth = Math.max(10_000, out.states + 1);
  const header = [
    `/*`,
    ` * ${comment(spec.name ?? 'system')}`,
    ` * Written by migration-statecharts export --promela from the explored local tables (src/export/promela.ts).`,
    ` * Our explorer: ${out.states} states, ${out.transitions} transitions; SPIN's safety run must store ${out.states} states.`,
    ` * Safety (invariants as assertions, deadlocks as the else option's assertion):`,
    ` *   spin -a FILE && gcc -O2 -DNOREDUCE -DSAFETY -o pan pan.c && ./pan -m${depth} -c0`,
    ` * Non-progress cycles${progress ? '' : ' (this system declares no progress steps: every cycle is one)'}:`,
    ` *   spin -DPROGRESS -a FILE && gcc -O2 -DNOREDUCE -DNP -o pan pan.c && ./pan -l -A -m${2 * depth}`,
    ...(progress && (spec.fair || spec.progressScope)
      ? [` * NOT encoded: the spec's ${[spec.fair ? 'fairness (fair)' : '', spec.progressScope ? 'progressScope' : ''].filter(Boolean).join(' and ')}; SPIN's NP check reports cycles our check excludes.`]
      : []),
    ` * Not checkable here: ${spec.goal ? `${spec.goalName ?? 'GoalAlwaysReachable'} (AG EF goal, a branching-time claim: run our explorer)` : 'nothing else declared'}.`,
    ` * Invariants checked: ${checked.map((x) => x.name).join(', ') || 'none'}.`,
    ...leftOut.map((x) => ` * Invariant left out: ${x.name}: ${x.reason}.`),
    ` * Components: ${sys.names.map((c, i) => `${c} (${sys.tables[i]!.size} local states)`).join(', ')}; messages: ${sys.messages.events.length - 1}.`,
    ` */`,
  ];
  const msgs = sys.messages.events.slice(1).map((e, i) => ` *   ${i + 1} ${eventText(e)}`);
  const text = [
    ...header,
    '/* message ids:',
    ...msgs,
    ' */',
    BIT_DECL,
    ...decls,
    ...macros,
    ...sys.names.map((c, i) => `${intType(sys.tables[i]!.size)} ${compVar[i]} = ${init[i]};   /* ${comment(c)} */`),
    ...sys.chanNames.map((k, i) => `chan ${chanVar[i]} = [${sys.chanCap[i]}] of { ${msgType} };   /* ${comment(k)}: ${spec_chans[i]!.from} -> ${spec_chans[i]!.to} */`),
    '',
    'active proctype system() {',
    '  do',
    ...lines,
    '  od',
    '}',
    '',
  ].join('\n');
  return {
    text,
    states: out.states,
    transitions: out.transitions,
    seconds: out.seconds,
    invariants: Object.fromEntries((spec.invariants ?? []).map((inv) => [inv.name, out.violations.has(inv.name)])),
    deadlock: out.deadlockCount > 0,
    leftOut,
    options,
    tableNames,
    hasProgress: progress !== undefined,
  };
}
