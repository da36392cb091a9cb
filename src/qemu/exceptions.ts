/**
 * Documented disagreements between real QEMU 10.0 and the model, each encoded as a named, narrow
 * rewrite of the observations where it shows — never as a weaker checker. Each says what QEMU does,
 * what the model does, and what the machine should change; the conformance report lists every place
 * an exception was applied. Each is a streaming rewrite (Rewrite), so a live monitor applies it as the
 * observations arrive: an observation a rewrite may still move is held back until the later report it
 * waits for arrives (or the run ends), and what it has passed on never changes.
 */
import type { Side } from './log.js';
import type { Observation } from './observations.js';

export interface KnownDisagreement {
  readonly name: string;
  /** What real QEMU does and what the model does instead. */
  readonly qemu: string;
  /** What should change, and where. */
  readonly change: string;
  /** A fresh streaming rewrite of a run's observations where the disagreement shows (see Rewrite). */
  readonly start: () => Rewrite;
}

/**
 * A rewrite fed one observation at a time, in log order, as a live monitor sees them: `push` returns the
 * observations that are now final, in the rewritten order — none while it holds some back, waiting to
 * see whether what follows moves them — and `end` the rest once the run is over. `applied` lists the
 * lines it touched so far. Fed a whole log and ended, it gives the same order as a rewrite of the whole
 * log at once (applyToLog).
 */
export interface Rewrite {
  push(o: Observation): Observation[];
  end(): Observation[];
  readonly applied: readonly number[];
  /** How many observations it holds back now. */
  readonly held: number;
}

/** A whole log through one rewrite. */
export function applyToLog(ex: KnownDisagreement, obs: readonly Observation[]): { obs: Observation[]; applied: number[] } {
  const r = ex.start();
  const out = obs.flatMap((o) => r.push(o));
  out.push(...r.end());
  return { obs: out, applied: [...r.applied] };
}

/**
 * What a scan does with the first observation it holds: pass it on ('emit'), drop it ('drop'), look
 * again after rewriting the held ones in place ('again'), or wait for more ('wait'; only before the end).
 */
type ScanStep = 'emit' | 'drop' | 'again' | 'wait';

/**
 * A left-to-right scan that never changes what it has passed on: each rewrite below looks at the
 * first held observation and at most up to a later one it needs (the "window"), and may reorder only
 * inside that window. So everything before the head is final, and a head whose window has not
 * arrived yet is held ('wait') until it does or the run ends (`ended`: the window never comes).
 */
function scan(step: (held: Observation[], ended: boolean, applied: number[]) => ScanStep): Rewrite {
  const held: Observation[] = [];
  const applied: number[] = [];
  const drain = (ended: boolean): Observation[] => {
    const out: Observation[] = [];
    while (held.length > 0) {
      const r = step(held, ended, applied);
      if (r === 'wait') break;
      if (r === 'emit') out.push(held.shift()!);
      else if (r === 'drop') held.shift();
    }
    return out;
  };
  return {
    push: (o) => (held.push(o), drain(false)),
    end: () => drain(true),
    applied,
    get held() {
      return held.length;
    },
  };
}

interface FusedStep {
  readonly side: Side;
  /** The guest stops (false) or starts (true)… */
  readonly running: boolean;
  /** …while the side is in one of these statuses… */
  readonly from: readonly string[];
  /** …and later the status moves to one of these; the model does both on one step. */
  readonly to: readonly string[];
  readonly qemu: string;
  readonly change: string;
}

const FUSED: readonly FusedStep[] = [
  {
    side: 'source',
    running: false,
    from: ['active'],
    to: ['device', 'pre-switchover'],
    qemu: "the source stops the guest (STOP, migration_completion_precopy → migration_stop_vm) and only then moves active → device or pre-switchover (migration_switchover_prepare)",
    change:
      "optional: split stopVmForSwitchover off the active → device / pre-switchover step (a THREAD_STEP in 'active' that stops the VM when nothingPending && canSwitchover, " +
      "then a THREAD_STEP guarded by runstate 'finish-migrate' that moves on); the machine's own comment already says the two are apart in QEMU",
  },
  {
    side: 'destination',
    running: true,
    from: ['active'],
    to: ['completed'],
    qemu: "the destination starts the guest (RESUME) in process_incoming_migration_bh and only then moves active → completed",
    change:
      'none needed (the destination has no internal step to split it on; nothing the source does can depend on the moment between the two)',
  },
];

/**
 * QEMU changes the run state and the migration status of a side at two moments where the model has one
 * step: STOP before 'device'/'pre-switchover' on the source and RESUME before 'completed' on the
 * destination. (RESUME before 'cancelled' on the source was a third; the model now takes the restart and
 * migration_cleanup as two steps, as QEMU does.) Other reports — above all the other side's — can come
 * in between, which no model run allows. None of them can depend on the earlier moment (the
 * destination learns of the stop only from the device state sent after 'device'; nothing waits for the
 * restart after a cancel; the source waits for the destination's return-path close, after 'completed').
 *
 * The exception: such a run-state report, followed by that side's next report being the matching status,
 * is taken as reported together with it (moved to just before it).
 */
export const RUNSTATE_AND_STATUS_APART: KnownDisagreement = {
  name: 'qemu10-runstate-and-status-apart',
  qemu: FUSED.map((f) => f.qemu).join('; '),
  change: FUSED.map((f) => `${f.side} ${f.running ? 'RESUME' : 'STOP'} before ${f.to.join('/')}: ${f.change}`).join('; '),
  start() {
    const status: Record<Side, string> = { source: 'none', destination: 'none' };
    return scan((held, ended, applied) => {
      const o = held[0]!;
      if (o.kind === 'status') status[o.side] = o.status;
      if (o.kind !== 'running') return 'emit';
      const fused = FUSED.find((f) => f.side === o.side && f.running === o.running && f.from.includes(status[o.side]));
      if (!fused) return 'emit';
      const j = held.findIndex((x, k) => k > 0 && x.side === o.side); // that side's next report: the window
      if (j < 0) return ended ? 'emit' : 'wait';
      const next = held[j]!;
      if (j === 1 || next.kind !== 'status' || !fused.to.includes(next.status)) return 'emit';
      held.splice(0, 1); // the status report is now at j - 1
      held.splice(j - 1, 0, o);
      applied.push(o.line);
      return 'again'; // look at what moved to the head
    });
  },
};

/**
 * With a return path, QEMU 10.0's migration_cancel shuts the return-path file down first — on a socket
 * that is the migration connection itself, both directions — and only then moves the status to
 * 'cancelling' (and emits that event). The destination sees the connection end and fails, and its
 * 'failed' event can carry an earlier timestamp than the source's 'cancelling'. The model does the
 * shutdown (STREAM_SHUTDOWN) and → cancelling in the one MIGRATE_CANCEL step, which is a fair
 * abstraction of one QMP command: the destination cannot fail before the command, only during it.
 *
 * The exception: a destination 'failed' reported after an accepted migrate_cancel and before the
 * source's next status report is taken as reported just after that source report.
 */
export const CANCEL_SHUTS_RETURN_PATH_FIRST: KnownDisagreement = {
  name: 'qemu10-cancel-shuts-return-path-first',
  qemu:
    "with return-path on, migrate_cancel shuts the connection down (through the return-path file) before it sets 'cancelling', so the destination's 'failed' " +
    "can be reported before the source's 'cancelling'; in the model both are the one MIGRATE_CANCEL step",
  change:
    "none needed in the machine for the cancelled outcome (an atomic step for one QMP command is the right abstraction); the interleaving in which the " +
    "shutdown wins and the source ends 'failed' is modelled already (qemuSource.ts CANCEL_LOSES_TO_RETURN_PATH_ERROR: the stream shuts at the command, the " +
    "source fails at the thread's next pass, so there the destination's 'failed' may come first without this rewrite)",
  start() {
    return scan((held, ended, applied) => {
      const o = held[0]!;
      if (!(o.kind === 'action' && o.event === 'MIGRATE_CANCEL' && o.refused === null && o.side === 'source')) return 'emit';
      const j = held.findIndex((x, k) => k > 0 && x.side === 'source' && x.kind === 'status'); // the source's next status: the window
      if (j < 0) return ended ? 'emit' : 'wait';
      const early = held.slice(1, j).filter((e) => e.side === 'destination' && e.kind === 'status' && e.status === 'failed');
      if (early.length === 0) return 'emit';
      const rest = held.slice(1, j + 1).filter((e) => !early.includes(e));
      held.splice(1, j, ...rest, ...early);
      applied.push(...early.map((e) => e.line));
      return 'emit';
    });
  },
};

/**
 * When QEMU starts a guest again (vm_start → vm_prepare_start), it sends RESUME first and only then runs
 * the VM-state handlers, VFIO's among them, whose state changes send the VFIO_MIGRATION events. The
 * model takes the restart as one step: run state and device states change together, and the reports
 * come as one chain (the StatusGraph's in-between nodes). The other QEMU is a separate process; its
 * reports can land inside that chain. Seen on real QEMU in CI: migrate_cancel in pre-switchover with
 * switchover-ack, and the destination's 'failed' came after the source's RESUME and before its
 * device's running-p2p. Nothing the other side reports can depend on the moment between the RESUME and
 * the handlers: they run in the same thread, under the BQL, without sending anything.
 *
 * The exception: the other side's reports that come between a side's RESUME and the last of its
 * VFIO_MIGRATION reports that directly follow it are taken as reported just after those.
 */
export const RESUME_BEFORE_DEVICE_EVENTS: KnownDisagreement = {
  name: 'qemu10-resume-before-device-events',
  qemu:
    'vm_prepare_start sends RESUME before vm_state_notify runs the VFIO handler (vfio_vmstate_change), so the other QEMU\'s reports can come between ' +
    "a side's RESUME and its devices' VFIO_MIGRATION events; the model restarts the guest and its devices in one step",
  change:
    'none needed (one step for the restart is the right abstraction: nothing crosses between the two processes in between); the checker could instead let ' +
    "the other side's steps interleave with a multi-event step's links",
  start() {
    return scan((held, ended, applied) => {
      const o = held[0]!;
      if (!(o.kind === 'running' && o.running)) return 'emit';
      // the window: this side's reports after the RESUME, up to its first one that is not a device event
      let last = 0;
      let closed = false;
      for (let k = 1; k < held.length; k++) {
        const x = held[k]!;
        if (x.side !== o.side) continue;
        if (x.kind !== 'device') {
          closed = true;
          break;
        }
        last = k;
      }
      if (!closed && !ended) return 'wait';
      const between = held.slice(1, last).filter((x) => x.side !== o.side);
      if (between.length === 0) return 'emit';
      const rest = held.slice(1, last + 1).filter((x) => x.side === o.side);
      held.splice(1, last, ...rest, ...between);
      applied.push(...between.map((x) => x.line));
      return 'emit';
    });
  },
};

/**
 * QEMU 10.0 accepts migrate_cancel when no migration runs (status none, completed, failed, cancelled)
 * and does nothing: migration_cancel finds nothing running. The model has no MIGRATE_CANCEL step in
 * those states, so an accepted one has no model run.
 *
 * The exception: an accepted migrate_cancel while the source's last reported status is one of those is
 * dropped (it changed nothing).
 */
export const CANCEL_WITHOUT_MIGRATION_IS_A_NO_OP: KnownDisagreement = {
  name: 'qemu10-cancel-without-migration-is-a-no-op',
  qemu: "QEMU accepts migrate_cancel with no migration running ('none', 'completed', 'failed', 'cancelled') and does nothing; the model has no MIGRATE_CANCEL step there",
  change:
    "machines/qemuSource.ts: add `MIGRATE_CANCEL: {}` (a targetless, action-less transition: accepted, nothing changes) to the states 'none', 'completed', " +
    "'failed' and 'cancelled' (in 'cancelling' QEMU re-sets 'cancelling' and re-sends the event — also a no-op for the model)",
  start() {
    let status = 'none';
    return scan((held, _ended, applied) => {
      const o = held[0]!;
      if (o.side === 'source' && o.kind === 'status') status = o.status;
      const noop = o.kind === 'action' && o.event === 'MIGRATE_CANCEL' && o.refused === null && ['none', 'completed', 'failed', 'cancelled'].includes(status);
      if (noop) applied.push(o.line);
      return noop ? 'drop' : 'emit';
    });
  },
};

/**
 * QEMU 10.0's migration_thread (migration/migration.c) sends the stream header, and with a return path
 * MIG_CMD_OPEN_RETURN_PATH and a PING — each command flushed (qemu_savevm_command_send → qemu_fflush,
 * migration/savevm.c) — before qemu_savevm_state_setup runs vfio_save_setup (RUNNING → PRE_COPY). So
 * the destination can read the header, go 'active' and put its device into RESUMING (vfio_load_setup)
 * before the source's device reports pre-copy. The model's source does both in its one save-setup step
 * (saveSetup in machines/qemuSource.ts: MIG_STREAM_HEADER on the stream and the devices' SETs), so the
 * destination can only follow it. Nothing the source does depends on the moment between the two (the
 * destination never answers the header; its PING reply is not modelled).
 *
 * The exception: the source's device events of save setup (pre-copy, reported while its last status is
 * 'setup') are taken as reported just after its 'setup' report, before the destination's reports in
 * between.
 */
export const HEADER_BEFORE_SAVE_SETUP: KnownDisagreement = {
  name: 'qemu10-header-sent-before-save-setup',
  qemu:
    "the source flushes the stream header (and OPEN_RETURN_PATH, PING) before vfio_save_setup, so the destination's 'active' and its device's 'resuming' can be reported " +
    "before the source device's 'pre-copy'; the model's save-setup step sends the header and sets PRE_COPY together",
  change:
    "machines/qemuSource.ts: split setup.connecting's THREAD_STEP into one that sends MIG_STREAM_HEADER (and MIG_CMD_OPEN_RETURN_PATH) to a new 'header-sent' state " +
    "and one that runs vfio_save_setup (RUNNING → PRE_COPY) to 'saved' (the pinned state counts of every migration system grow)",
  start() {
    // the window: from the source's 'setup' report to its next status report
    return scan((held, ended, applied) => {
      const o = held[0]!;
      if (!(o.side === 'source' && o.kind === 'status' && o.status === 'setup')) return 'emit';
      const j = held.findIndex((x, k) => k > 0 && x.side === 'source' && x.kind === 'status');
      if (j < 0 && !ended) return 'wait';
      const end = j < 0 ? held.length : j;
      const early: Observation[] = [];
      let other = false;
      for (let k = 1; k < end; k++) {
        const e = held[k]!;
        if (e.side === 'source' && e.kind === 'device' && e.state === 'pre-copy') {
          if (other) early.push(e);
        } else if (e.side === 'destination') other = true;
      }
      if (early.length > 0) {
        const rest = held.filter((e) => !early.includes(e));
        rest.splice(1, 0, ...early);
        held.splice(0, held.length, ...rest);
        applied.push(...early.map((e) => e.line));
      }
      return 'emit';
    });
  },
};


/**
 * QEMU 10.0's migration_completion_end (migration/migration.c) sets COMPLETED with
 * `migrate_set_state(&s->state, s->state, MIGRATION_STATUS_COMPLETED)`: from whatever the state is now. A
 * multifd send thread that fails after migration_completion's error checks (the checks read the main
 * stream's file, not migrate_set_error) has already set FAILED (multifd_send_set_error), and that FAILED
 * is then overwritten: the source reports 'failed' and then 'completed'. Seen on real QEMU 10.0.2 with
 * mtty and multifd, when the destination refused the device state and shut the channels. The model's
 * source ends in one of the two; here it completes (the send error came too late to matter to it).
 *
 * The exception: a source 'failed' report directly followed by the source's 'completed' is dropped.
 */
export const COMPLETION_END_OVERWRITES_FAILED: KnownDisagreement = {
  name: 'qemu10-completion-end-overwrites-failed',
  qemu: "migration_completion_end sets COMPLETED from the current state, so a FAILED set meanwhile by a multifd send thread is overwritten: 'failed' then 'completed'",
  change:
    "none in the model (QEMU's bug: migration_completion_end should set COMPLETED only from the active state it expects, or check migrate_has_error first); the model's source completes in that run",
  start() {
    return scan((held, ended, applied) => {
      const o = held[0]!;
      if (!(o.side === 'source' && o.kind === 'status' && o.status === 'failed')) return 'emit';
      const j = held.findIndex((x, k) => k > 0 && x.side === 'source' && x.kind === 'status');
      if (j < 0) return ended ? 'emit' : 'wait';
      const next = held[j]!;
      if (next.kind !== 'status' || next.status !== 'completed') return 'emit';
      applied.push(o.line);
      return 'drop';
    });
  },
};

/** Every exception the checker applies by default. */
export const KNOWN_DISAGREEMENTS: readonly KnownDisagreement[] = [
  CANCEL_SHUTS_RETURN_PATH_FIRST,
  RUNSTATE_AND_STATUS_APART,
  RESUME_BEFORE_DEVICE_EVENTS,
  CANCEL_WITHOUT_MIGRATION_IS_A_NO_OP,
  HEADER_BEFORE_SAVE_SETUP,
  COMPLETION_END_OVERWRITES_FAILED,
];

/**
 * CANCEL_SHUTS_RETURN_PATH_FIRST as an observer without the commands sees it (the live monitor: the
 * migrate_cancel came from another QMP client): the destination reports 'failed' while the source
 * still reports a status a cancel is taken in, and the source's next status is 'cancelling'. A
 * destination that fails on its own (a broken stream) makes the source fail, not cancel, so the
 * source's 'cancelling' is what tells the two apart.
 *
 * The exception: such a destination 'failed' is taken as reported just after the source's 'cancelling'.
 */
export const CANCEL_SHUTS_RETURN_PATH_FIRST_UNSEEN: KnownDisagreement = {
  name: 'qemu10-cancel-shuts-return-path-first-unseen',
  qemu: CANCEL_SHUTS_RETURN_PATH_FIRST.qemu + ' (seen without the migrate_cancel command: the source reports cancelling next)',
  change: CANCEL_SHUTS_RETURN_PATH_FIRST.change,
  start() {
    let source = 'none';
    return scan((held, ended, applied) => {
      const o = held[0]!;
      if (o.side === 'source' && o.kind === 'status') source = o.status;
      if (!(o.side === 'destination' && o.kind === 'status' && o.status === 'failed' && ['setup', 'active', 'pre-switchover', 'device'].includes(source))) return 'emit';
      const j = held.findIndex((x, k) => k > 0 && x.side === 'source' && x.kind === 'status'); // the source's next status: the window
      if (j < 0) return ended ? 'emit' : 'wait';
      const next = held[j]!;
      if (next.kind !== 'status' || next.status !== 'cancelling') return 'emit';
      held.splice(0, 1); // the source's cancelling is now at j - 1
      held.splice(j, 0, o);
      applied.push(o.line);
      return 'again';
    });
  },
};

/**
 * The exceptions for an observer that does not see the commands (the live monitor): the cancel ones
 * key on migrate_cancel, so the first is replaced by its unseen form and the no-op one cannot apply.
 */
export const UNSEEN_COMMAND_DISAGREEMENTS: readonly KnownDisagreement[] = [
  CANCEL_SHUTS_RETURN_PATH_FIRST_UNSEEN,
  RUNSTATE_AND_STATUS_APART,
  RESUME_BEFORE_DEVICE_EVENTS,
  HEADER_BEFORE_SAVE_SETUP,
  COMPLETION_END_OVERWRITES_FAILED,
];

/**
 * Not an exception to the check but a rule for planning: the model lets the source connect, send and
 * even complete before the destination was given migrate-incoming (the main channel just buffers). A
 * real `migrate` to a destination that does not listen yet fails at once (setup → failed, "Connection
 * refused"), which the check already treats as a divergence unless the run records that fault
 * (STREAM_BREAKS). So plans take MIGRATE only once the destination is in 'setup' (plan.ts).
 */
export const MIGRATE_NEEDS_A_LISTENER = {
  name: 'migrate-needs-a-listener',
  qemu: "a real migrate to a destination that is not listening (no migrate-incoming yet) fails in setup with 'Connection refused'; the model's source runs the whole migration into the buffered main channel whatever the destination does",
  change:
    "model the connection: MIGRATE emits a new main-stream message MIG_CONNECT; the destination takes it in 'setup' by replying CONNECTED on the return channel " +
    "and in 'none' by replying CONNECT_REFUSED (treat both as transport, not the return-path capability); the source's first THREAD_STEP in 'setup' (saveSetup) is " +
    'guarded by `connected`, and CONNECT_REFUSED sets streamError (so the next THREAD_STEP fails the migration, as migration_connect_error_propagate does)',
} as const;
