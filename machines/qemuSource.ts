/**
 * QEMU's outgoing migration (`MigrationState.state`) with its VFIO devices.
 *
 * Models (QEMU master ece408818d; shared/reference/qemu-migration.md §0, §a, §b, §c):
 *  - the MigrationStatus values as chart states, keyed by their QAPI spelling;
 *  - the VM run state beside it (running → finish-migrate at the switchover stop → postmigrate);
 *  - the migration thread as the event THREAD_STEP: each one is one pass of its loop (save setup, one
 *    precopy round of migration_iteration_run, the completion, the cleanup);
 *  - the switchover decision: nothing pending on the devices (PRECOPY_INFO initial + dirty = 0), RAM
 *    converged (the environment decides, RAM_CONVERGES), and `migration_can_switchover` (the ack gate);
 *  - pause-before-switchover (pre-switchover, left by MIGRATE_CONTINUE), migrate_cancel, stream errors
 *    (acted on by the thread at its next pass, as migration_detect_error does), the return path;
 *  - postcopy: QEMU refuses `migrate` with postcopy-ram when a VFIO device is present
 *    (vfio_save_prepare), so the postcopy states exist but are unreachable in every system with a device.
 *
 * Left out: colo (out of scope), background snapshots, multifd (its own model), rate limiting and
 * bandwidth (RAM convergence is a nondeterministic choice), the QMP `stop` that also opens the ack gate.
 * Simplified, on purpose: a device counts as converged only when PRECOPY_INFO says 0 (QEMU compares
 * must-precopy bytes with a bandwidth threshold and adds the stop-copy size); QEMU's exact query (a
 * PRECOPY_INFO ioctl) runs every round, and INIT_DATA_SENT follows the kernel's counter rather than
 * QEMU's cached precopy_init_size; errors during setup fail it at once (QEMU reports them after the
 * wait-unplug step, with the same end state).
 * Cancel appends STREAM_SHUTDOWN after what is already in the stream; a real socket shutdown may also
 * drop data still in flight, which changes nothing the destination could do with it.
 *
 * @example
 *   const src = createActor(qemuSourceMachine, { input: { devices: ['STOP_COPY|P2P|PRE_COPY'], ack: 'legacy' } }).start();
 *   src.send({ type: 'MIGRATE' });
 *   src.send({ type: 'THREAD_STEP' }); // save setup: the device goes RUNNING -> PRE_COPY
 */
import { and, assign, enqueueActions, not, setup } from 'xstate';
import type { AckMode, MainStreamMessage } from './migrationMessages.js';
import { type DeviceRecord, deviceCall, hasP2P, hasPreCopy, inPreCopy, initialDevice, precopyPending, readChunk, readToEof, setState } from './qemuVfio.js';
import type { FeatureSet, VfioState } from './vfioArcs.js';

export interface QemuSourceInput {
  /** The feature set of each VFIO device on this host. */
  readonly devices: readonly FeatureSet[];
  /** switchover-ack on this host. */
  readonly ack: AckMode;
  /** The return-path capability (default: on exactly when switchover-ack is). */
  readonly returnPath?: boolean;
  readonly pauseBeforeSwitchover?: boolean;
  /** The postcopy-ram capability (refused with VFIO devices). */
  readonly postcopyRam?: boolean;
  /** A virtio-net failover primary whose unplug the source waits for (wait-unplug). */
  readonly failoverPrimary?: boolean;
  /** Byte domain of each device (units). Default 1. */
  readonly maxBytes?: number;
  /**
   * How QEMU handles a device whose initial data comes back (VFIO_PRECOPY_INFO_REINIT); see
   * ReinitDesign. Unset: the system of issue #4, with no device reconfiguration at all.
   */
  readonly design?: ReinitDesign;
  /** Fail the migration once QEMU has seen more than this many REINIT reports (a storm bound). */
  readonly reinitBudget?: number;
  /** How often the guest may reconfigure a device (the environment's bound); 'unbounded' for a storm. */
  readonly guestReinits?: number | 'unbounded';
}

/**
 * - 'legacy': QEMU ≤ 11.0 — one-shot legacy ack, no PRECOPY_INFOv2 opt-in, so a reconfigured device's
 *   new initial data can only show up as dirty bytes.
 * - 'reusable-ack': QEMU 11.1 as merged — v2 opt-in, per-device acks re-requested after REINIT, a final
 *   PRECOPY_INFO check with vCPUs stopped in the P2P prepare handler only, and a request that arrives
 *   after the switchover decision fails the migration.
 * - 'recheck-resume': the kvm-thread idea — at switchover stop the vCPUs, bring P2P devices to
 *   PRE_COPY_P2P, query every device once more; on REINIT (initial bytes back) restart the vCPUs,
 *   PRE_COPY_P2P -> PRE_COPY, revoke the decision and continue precopy until a new ack. This needs QEMU
 *   behaviour that does not exist today: a stop that runs only the "prepare" handlers, and a restart that
 *   takes PRE_COPY_P2P -> PRE_COPY instead of the "main" handler's RUNNING (which would end the session).
 * The REINIT budget (fail after K REINIT reports) is this project's proposal; QEMU has no such bound.
 * Not modelled: QEMU 11.1 running a machine type in legacy ack mode (v2 opted in, but no re-request
 * and no stop-time check), and the stop-time check's own ioctl failure (QEMU then assumes a REINIT).
 */
export type ReinitDesign = 'legacy' | 'reusable-ack' | 'recheck-resume';

export type RunState = 'running' | 'finish-migrate' | 'postmigrate';

export interface QemuSourceContext {
  readonly devices: readonly FeatureSet[];
  readonly ack: AckMode;
  readonly returnPath: boolean;
  readonly pauseBeforeSwitchover: boolean;
  readonly postcopyRam: boolean;
  readonly failoverPrimary: boolean;
  readonly runstate: RunState;
  readonly devs: readonly DeviceRecord[];
  /** vfio: initial_data_sent per device. */
  readonly initialDataSent: readonly boolean[];
  /** Units of final state sent per device (VFIO_DEVICE_STATE). */
  readonly sent: readonly number[];
  readonly setupDone: boolean;
  readonly ramConverged: boolean;
  /** legacy: MigrationState.switchover_acked */
  readonly switchoverAcked: boolean;
  /** per-device: acks requested and not yet received */
  readonly pendingAcks: number;
  /** An error on the stream or the return path, acted on by the thread's next pass. */
  readonly streamError: string | null;
  /** The first device request the kernel refused. */
  readonly vfioRefused: string | null;
  /** The thread finished and cleaned up (VM restarted or postmigrate, devices settled). */
  readonly cleanedUp: boolean;
  /** The last QMP command refused, with QEMU's reason. */
  readonly qmpError: string | null;
  readonly design: ReinitDesign | null;
  readonly reinitBudget: number | null;
  /** REINIT reports QEMU has seen (counted only under a budget). */
  readonly reinitSeen: number;
  /** Guest reconfigurations the environment still allows (null: unbounded). */
  readonly reinitsLeft: number | null;
  /** Ghost: generation of each device's initial data (mod 4), bumped by every reconfiguration. */
  readonly gen: readonly number[];
  /** The switchover decision was taken and the stop has not happened yet (designs only). */
  readonly switchoverDecided: boolean;
  /** Why QEMU fails the migration on its own (a late ack request, a REINIT budget, an ack underflow). */
  readonly failReason: string | null;
  /** The final device state and EOF are on the stream (qemu_savevm_state_complete_precopy ran). */
  readonly eofSent: boolean;
  /** The destination closed its end of the return path. */
  readonly returnPathClosed: boolean;
  /** Ghost: an ack was outstanding when the VM stopped for switchover (for NoSwitchoverWhileAckPending). */
  readonly stoppedWithAckPending: boolean;
  /** Ghost: management cancelled, or the stream broke, after the final state was sent. */
  readonly intervenedAfterEof: boolean;
  /** After a cancel: migration_iteration_finish has restarted the guest; migration_cleanup comes next. */
  readonly guestRestarted: boolean;
}

export type QemuSourceEvent =
  | { type: 'MIGRATE' }
  | { type: 'THREAD_STEP' }
  | { type: 'RAM_CONVERGES' }
  | { type: 'GUEST_DIRTIES_DEVICE'; device: number }
  | { type: 'GUEST_REINITS_DEVICE'; device: number }
  | { type: 'MIGRATE_CANCEL' }
  | { type: 'MIGRATE_CONTINUE' }
  | { type: 'MIGRATE_START_POSTCOPY' }
  | { type: 'STREAM_BREAKS' }
  | { type: 'MIG_RP_MSG_SWITCHOVER_ACK' }
  | { type: 'RP_SHUTDOWN'; error: boolean };

type Ctx = QemuSourceContext;
type Patch = Partial<Ctx>;

/** Apply `target` to device i (vfio_migration_set_state), noting a kernel refusal. */
function setDev(ctx: Ctx, devs: DeviceRecord[], i: number, target: VfioState): string | null {
  const r = setState(devs[i]!, target);
  devs[i] = r.dev;
  return r.refused ?? null;
}

/** vfio_save_setup for every device, then the first PRECOPY_INFO query. */
function saveSetup(ctx: Ctx): { patch: Patch; out: MainStreamMessage[] } {
  const out: MainStreamMessage[] = [{ type: 'MIG_STREAM_HEADER' }];
  if (ctx.returnPath) out.push({ type: 'MIG_CMD_OPEN_RETURN_PATH' });
  const devs = [...ctx.devs];
  let refused = ctx.vfioRefused;
  let requests = 0;
  devs.forEach((d, i) => {
    if (!hasPreCopy(d.context.features) || d.state !== 'RUNNING') return;
    refused ??= setDev(ctx, devs, i, 'PRE_COPY');
    devs[i] = deviceCall(devs[i]!, { type: 'VFIO_MIG_GET_PRECOPY_INFO' });
    if (ctx.ack === 'per-device') requests++; // request_switchover_ack at setup (11.1)
  });
  return { patch: { devs, setupDone: true, vfioRefused: refused, pendingAcks: ctx.pendingAcks + requests }, out };
}

/** What QEMU's exact pending queries change: the device, the re-requested acks, the REINITs seen. */
interface QueryState {
  devs: DeviceRecord[];
  initialDataSent: boolean[];
  pendingAcks: number;
  reinitSeen: number;
  /** A query found REINIT after INIT_DATA_SENT and asked for a new ack. */
  newRequest: boolean;
  reinitFound: boolean;
}

function queryState(ctx: Ctx): QueryState {
  return {
    devs: [...ctx.devs],
    initialDataSent: [...ctx.initialDataSent],
    pendingAcks: ctx.pendingAcks,
    reinitSeen: ctx.reinitSeen,
    newRequest: false,
    reinitFound: false,
  };
}

/**
 * VFIO_MIG_GET_PRECOPY_INFO on device i. With the v2 opt-in a REINIT report after INIT_DATA_SENT resets
 * initial_data_sent and requests a new ack (11.1: the request is counted by the next pending query).
 */
function query(ctx: Ctx, q: QueryState, i: number): void {
  const dev = deviceCall(q.devs[i]!, { type: 'VFIO_MIG_GET_PRECOPY_INFO' });
  q.devs[i] = dev;
  const last = dev.context.last;
  if (!(last?.op === 'VFIO_MIG_GET_PRECOPY_INFO' && last.ok && last.reinit)) return;
  q.reinitFound = true;
  if (ctx.reinitBudget !== null) q.reinitSeen = Math.min(q.reinitSeen + 1, ctx.reinitBudget + 1);
  if (q.initialDataSent[i] && ctx.ack === 'per-device') {
    q.initialDataSent[i] = false;
    q.pendingAcks++;
    q.newRequest = true;
  }
}

function budgetExceeded(ctx: Ctx, q: QueryState): string | null {
  return ctx.reinitBudget !== null && q.reinitSeen > ctx.reinitBudget
    ? `a device kept re-initialising: REINIT budget of ${ctx.reinitBudget} exhausted`
    : null;
}

const queryPatch = (ctx: Ctx, q: QueryState): Patch => ({
  devs: q.devs,
  initialDataSent: q.initialDataSent,
  pendingAcks: q.pendingAcks,
  reinitSeen: q.reinitSeen,
  failReason: ctx.failReason ?? budgetExceeded(ctx, q),
});

/** One precopy round: each device with pending data gives one chunk; INIT_DATA_SENT once initial is drained. */
function iterate(ctx: Ctx): { patch: Patch; out: MainStreamMessage[] } {
  const out: MainStreamMessage[] = [];
  const q = queryState(ctx);
  q.devs.forEach((d, i) => {
    if (!inPreCopy(d.state)) return;
    query(ctx, q, i);
    if (precopyPending(q.devs[i]!) > 0) q.devs[i] = readChunk(q.devs[i]!);
    if (ctx.ack !== 'off' && !q.initialDataSent[i] && q.devs[i]!.context.initialBytes === 0) {
      q.initialDataSent[i] = true;
      out.push({ type: 'VFIO_MIG_FLAG_DEV_INIT_DATA_SENT', device: i, gen: ctx.gen[i] ?? 0 });
    }
  });
  return { patch: queryPatch(ctx, q), out };
}

export type CommitOutcome = 'proceed' | 'fail' | 'resume';

/**
 * The switchover stop of a design, after the decision: what happens to the devices and whether the
 * switchover goes on, fails, or (recheck-resume) is revoked and precopy resumes.
 */
export function commitSwitchover(ctx: Ctx): { outcome: CommitOutcome; patch: Patch } {
  const q = queryState(ctx);
  let refused = ctx.vfioRefused;
  const set = (i: number, target: VfioState) => {
    const r = setState(q.devs[i]!, target);
    q.devs[i] = r.dev;
    refused ??= r.refused;
  };
  const p2p = (i: number) => hasP2P(q.devs[i]!.context.features);
  const pre = (i: number) => inPreCopy(q.devs[i]!.state);
  const idx = q.devs.map((_, i) => i);
  if (ctx.design === 'recheck-resume') {
    // vCPUs stopped; P2P devices quiesced; one more query of every precopy device
    idx.forEach((i) => p2p(i) && set(i, pre(i) ? 'PRE_COPY_P2P' : 'RUNNING_P2P'));
    idx.forEach((i) => pre(i) && query(ctx, q, i));
    const fail = budgetExceeded(ctx, q);
    if (q.reinitFound || q.devs.some((d) => inPreCopy(d.state) && d.context.initialBytes > 0)) {
      // revoke: the vCPUs run again, PRE_COPY_P2P -> PRE_COPY, precopy goes on until a new ack
      idx.forEach((i) => p2p(i) && set(i, pre(i) ? 'PRE_COPY' : 'RUNNING'));
      return {
        outcome: fail ? 'fail' : 'resume',
        patch: { ...queryPatch(ctx, q), vfioRefused: refused, switchoverDecided: false, runstate: 'running' },
      };
    }
    idx.forEach((i) => set(i, pre(i) ? 'STOP_COPY' : 'STOP'));
    return {
      outcome: 'proceed',
      patch: { ...queryPatch(ctx, q), vfioRefused: refused, switchoverDecided: false, runstate: 'finish-migrate', stoppedWithAckPending: ackOutstanding(ctx) },
    };
  }
  // legacy and reusable-ack: the VM stops; the P2P "prepare" handlers run first
  idx.forEach((i) => {
    if (!p2p(i)) return;
    // vfio_final_precopy_reinit_check: v2 in use, switchover-ack on and not legacy
    if (ctx.design === 'reusable-ack' && ctx.ack === 'per-device' && pre(i)) query(ctx, q, i);
    set(i, pre(i) ? 'PRE_COPY_P2P' : 'RUNNING_P2P');
  });
  idx.forEach((i) => set(i, pre(i) ? 'STOP_COPY' : 'STOP'));
  // The final save_query_pending reports new requests; the check placed after
  // migration_switchover_prepare() fails the migration on one — after the status moved to device (or
  // pre-switchover) and the devices to STOP_COPY: there is no way back to precopy. The thread's next pass
  // fails it, before any device state is saved.
  const late = q.newRequest ? 'switchover-ack requested after the switchover decision' : null;
  const failReason = ctx.failReason ?? late ?? budgetExceeded(ctx, q);
  return {
    outcome: 'proceed',
    patch: {
      ...queryPatch(ctx, q),
      failReason,
      vfioRefused: refused,
      switchoverDecided: false,
      runstate: 'finish-migrate',
      stoppedWithAckPending: ackOutstanding(ctx),
    },
  };
}

/** migration_completion_precopy's stop: the VM stops and the VFIO state-change handlers run. */
/** Ghost for NoSwitchoverWhileAckPending: is an ack outstanding right now (whatever the gate said)? */
function ackOutstanding(ctx: Ctx): boolean {
  return ctx.ack !== 'off' && (ctx.ack === 'legacy' ? !ctx.switchoverAcked : ctx.pendingAcks > 0);
}

function stopVm(ctx: Ctx): Patch {
  const devs = [...ctx.devs];
  let refused = ctx.vfioRefused;
  devs.forEach((d, i) => {
    // "prepare" handler, registered only for P2P devices, runs before every "main" handler
    if (hasP2P(d.context.features)) refused ??= setDev(ctx, devs, i, inPreCopy(d.state) ? 'PRE_COPY_P2P' : 'RUNNING_P2P');
  });
  devs.forEach((d, i) => {
    refused ??= setDev(ctx, devs, i, inPreCopy(d.state) ? 'STOP_COPY' : 'STOP');
  });
  return { devs, runstate: 'finish-migrate', vfioRefused: refused, stoppedWithAckPending: ackOutstanding(ctx) };
}

/** migration_switchover_start + qemu_savevm_state_complete_precopy + EOF. */
function completePrecopy(ctx: Ctx): { patch: Patch; out: MainStreamMessage[] } {
  const out: MainStreamMessage[] = [{ type: 'MIG_CMD_SWITCHOVER_START' }];
  const devs = [...ctx.devs];
  const sent = [...ctx.sent];
  let refused = ctx.vfioRefused;
  devs.forEach((d, i) => {
    refused ??= setDev(ctx, devs, i, 'STOP_COPY');
    const r = readToEof(devs[i]!);
    devs[i] = r.dev;
    sent[i] = r.units;
    out.push({ type: 'VFIO_DEVICE_STATE', device: i, units: r.units });
  });
  out.push({ type: 'QEMU_VM_EOF' });
  return { patch: { devs, sent, vfioRefused: refused, eofSent: true }, out };
}

/** vfio_save_cleanup after a completed migration: STOP_COPY → STOP. */
function saveCleanup(ctx: Ctx): Patch {
  const devs = [...ctx.devs];
  let refused = ctx.vfioRefused;
  devs.forEach((_, i) => (refused ??= setDev(ctx, devs, i, 'STOP')));
  return { devs, cleanedUp: true, vfioRefused: refused };
}

/**
 * migration_iteration_finish on failure or cancel: if the guest was stopped it starts again (the VM state
 * handlers run: "prepare" → RUNNING_P2P for P2P devices, "main" → RUNNING); then the
 * MIG_EVENT_PRECOPY_FAILED notifier moves every device to RUNNING — the only request when the guest never
 * stopped (PRE_COPY → RUNNING is one arc).
 */
function recover(ctx: Ctx): Patch {
  return precopyFailedNotifier({ ...ctx, ...restartGuest(ctx) });
}

/** migration_iteration_finish: the guest starts again if it was stopped (the VM state handlers run). */
function restartGuest(ctx: Ctx): Patch {
  const devs = [...ctx.devs];
  let refused = ctx.vfioRefused;
  if (ctx.runstate !== 'running') {
    devs.forEach((d, i) => hasP2P(d.context.features) && (refused ??= setDev(ctx, devs, i, 'RUNNING_P2P')));
    devs.forEach((_, i) => (refused ??= setDev(ctx, devs, i, 'RUNNING')));
  }
  return { devs, runstate: 'running', vfioRefused: refused };
}

/** migration_cleanup's MIG_EVENT_PRECOPY_FAILED notifier: every device back to RUNNING. */
function precopyFailedNotifier(ctx: Ctx): Patch {
  const devs = [...ctx.devs];
  let refused = ctx.vfioRefused;
  devs.forEach((_, i) => (refused ??= setDev(ctx, devs, i, 'RUNNING')));
  return { devs, runstate: ctx.runstate, cleanedUp: true, vfioRefused: refused };
}

const sourceSetup = setup({
  types: {
    context: {} as QemuSourceContext,
    events: {} as QemuSourceEvent,
    input: {} as QemuSourceInput,
    emitted: {} as MainStreamMessage,
  },
  guards: {
    /** vfio_save_prepare refuses postcopy-ram when a VFIO device is present. */
    postcopyWithVfio: ({ context }) => context.postcopyRam && context.devs.length > 0,
    /** hw/vfio/migration.c: several VFIO devices migrate only if every one supports P2P (else a blocker). */
    multipleDevicesWithoutP2P: ({ context }) => context.devs.length > 1 && context.devs.some((d) => !hasP2P(d.context.features)),
    /** migrate_caps_check: switchover-ack needs return-path. */
    ackWithoutReturnPath: ({ context }) => context.ack !== 'off' && !context.returnPath,
    setupDone: ({ context }) => context.setupDone,
    failoverPrimary: ({ context }) => context.failoverPrimary,
    /** An error on the stream, the return path or a device request: migration_detect_error fails the migration. */
    streamFailed: ({ context }) => context.streamError !== null || context.vfioRefused !== null || context.failReason !== null,
    eofSent: ({ context }) => context.eofSent,
    /** close_return_path_on_source can return: the destination closed it, or there is none. */
    returnPathDone: ({ context }) => !context.returnPath || context.returnPathClosed,
    /** A REINIT design is in use (the switchover decision and the stop are two steps). */
    designed: ({ context }) => context.design !== null,
    switchoverDecided: ({ context }) => context.switchoverDecided,
    commitOutcome: ({ context }, params: { is: CommitOutcome }) => commitSwitchover(context).outcome === params.is,
    /** The guest reconfigures a precopying device while its vCPUs run, as often as the environment allows. */
    guestMayReconfigure: ({ context, event }) =>
      event.type === 'GUEST_REINITS_DEVICE' &&
      context.design !== null &&
      context.runstate === 'running' &&
      context.reinitsLeft !== 0 &&
      inPreCopy(context.devs[event.device]?.state ?? 'STOP'),
    /** Nothing pending: every device's PRECOPY_INFO says 0 and RAM is below the threshold. */
    nothingPending: ({ context }) => context.ramConverged && context.devs.every((d) => precopyPending(d) === 0),
    /** migration_can_switchover: ack off, or the guest not running, or acked. */
    canSwitchover: ({ context }) =>
      context.ack === 'off' ||
      context.runstate !== 'running' ||
      (context.ack === 'legacy' ? context.switchoverAcked : context.pendingAcks === 0),
    pauseBeforeSwitchover: ({ context }) => context.pauseBeforeSwitchover,
    postcopyAllowed: ({ context }) => context.postcopyRam && context.devs.length === 0,
    cleanedUp: ({ context }) => context.cleanedUp,
    guestRestarted: ({ context }) => context.guestRestarted,
    ramNotConverged: ({ context }) => !context.ramConverged,
    /** The guest runs and the device tracks what it dirties (it is precopying). */
    deviceTracksDirt: ({ context, event }) =>
      context.runstate === 'running' && event.type === 'GUEST_DIRTIES_DEVICE' && inPreCopy(context.devs[event.device]?.state ?? 'STOP'),
  },
  actions: {
    refusePostcopy: assign({ qmpError: 'postcopy-ram is not supported with VFIO devices (vfio_save_prepare)' }),
    refuseCaps: assign({ qmpError: 'switchover-ack requires the return-path capability' }),
    refuseMultipleWithoutP2P: assign({ qmpError: 'migration blocked: several VFIO devices need P2P support (hw/vfio/migration.c)' }),
    enterPostmigrate: assign({ runstate: 'postmigrate' as const }),
    /** migrate_init: none → setup, switchover_acked = false. */
    migrateInit: assign({ switchoverAcked: false, pendingAcks: 0, qmpError: null }),
    saveSetup: enqueueActions(({ context, enqueue }) => {
      const r = saveSetup(context);
      enqueue.assign(r.patch);
      for (const m of r.out) enqueue.emit(m);
    }),
    iterate: enqueueActions(({ context, enqueue }) => {
      const r = iterate(context);
      enqueue.assign(r.patch);
      for (const m of r.out) enqueue.emit(m);
    }),
    stopVmForSwitchover: assign(({ context }) => stopVm(context)),
    completePrecopy: enqueueActions(({ context, enqueue }) => {
      const r = completePrecopy(context);
      enqueue.assign(r.patch);
      for (const m of r.out) enqueue.emit(m);
    }),
    saveCleanup: assign(({ context }) => saveCleanup(context)),
    recoverAfterFailure: assign(({ context }) => recover(context)),
    restartGuest: assign(({ context }) => ({ ...restartGuest(context), guestRestarted: true })),
    notifyPrecopyFailed: assign(({ context }) => precopyFailedNotifier(context)),
    /** migration_cancel / a failure: shut the stream down. */
    shutdownStream: enqueueActions(({ enqueue }) => enqueue.emit({ type: 'STREAM_SHUTDOWN' })),
    noteStreamError: assign(({ context }) => ({ streamError: 'stream broken', intervenedAfterEof: context.intervenedAfterEof || context.eofSent })),
    noteCancelAfterEof: assign(({ context }) => ({ intervenedAfterEof: context.intervenedAfterEof || context.eofSent })),
    /** The destination closed the return path; with an error (its load failed) the migration fails. */
    noteReturnPathClosed: assign(({ context, event }) => ({
      returnPathClosed: true,
      streamError: event.type === 'RP_SHUTDOWN' && event.error ? (context.streamError ?? 'the destination failed (return path closed with an error)') : context.streamError,
    })),
    /** source_return_path_thread: the ack arrived (per-device: one more than requested is an error). */
    receiveSwitchoverAck: assign(({ context }) => {
      if (context.ack === 'legacy') return { switchoverAcked: true };
      if (context.pendingAcks === 0) return { failReason: context.failReason ?? 'switchover ack pending num underflowed' };
      return { pendingAcks: context.pendingAcks - 1 };
    }),
    ramConverges: assign({ ramConverged: true }),
    decideSwitchover: assign({ switchoverDecided: true }),
    commitSwitchover: assign(({ context }) => commitSwitchover(context).patch),
    guestReconfiguresDevice: assign(({ context, event }) => {
      if (event.type !== 'GUEST_REINITS_DEVICE') return {};
      const devs = [...context.devs];
      const before = devs[event.device]!;
      devs[event.device] = deviceCall(before, { type: 'GUEST_REINITS_DEVICE' });
      // A new generation of initial data — unless the previous one was never touched (nothing read of
      // it, nothing reported): then the new data simply replaces it and nobody could tell them apart.
      const untouched = before.context.reinitPending && before.context.initialBytes === before.context.maxBytes;
      const gen = [...context.gen];
      if (!untouched) gen[event.device] = ((gen[event.device] ?? 0) + 1) % 4;
      return { devs, gen, reinitsLeft: context.reinitsLeft === null ? null : context.reinitsLeft - 1 };
    }),
    guestDirtiesDevice: assign(({ context, event }) => {
      if (event.type !== 'GUEST_DIRTIES_DEVICE') return {};
      const devs = [...context.devs];
      const d = devs[event.device];
      if (!d) return {};
      devs[event.device] = deviceCall(d, { type: 'GUEST_DIRTIES_DEVICE' });
      return { devs };
    }),
  },
});

/** The machine. State keys are QEMU's MigrationStatus strings. */
export const qemuSourceMachine = sourceSetup.createMachine({
  id: 'qemuSource',
  description: "QEMU's outgoing migration (MigrationState.state) and the VFIO devices it drives",
  initial: 'none',
  context: ({ input }) => ({
    devices: [...input.devices],
    ack: input.ack,
    returnPath: input.returnPath ?? input.ack !== 'off',
    pauseBeforeSwitchover: input.pauseBeforeSwitchover ?? false,
    postcopyRam: input.postcopyRam ?? false,
    failoverPrimary: input.failoverPrimary ?? false,
    runstate: 'running',
    devs: input.devices.map((features) =>
      initialDevice({ features, maxBytes: input.maxBytes ?? 1, precopyInfoV2: input.design === 'reusable-ack' || input.design === 'recheck-resume' }),
    ),
    initialDataSent: input.devices.map(() => false),
    sent: input.devices.map(() => 0),
    setupDone: false,
    ramConverged: false,
    switchoverAcked: false,
    pendingAcks: 0,
    streamError: null,
    vfioRefused: null,
    cleanedUp: false,
    qmpError: null,
    design: input.design ?? null,
    reinitBudget: input.reinitBudget ?? null,
    reinitSeen: 0,
    reinitsLeft: input.design === undefined ? 0 : input.guestReinits === 'unbounded' ? null : (input.guestReinits ?? 1),
    gen: input.devices.map(() => 0),
    switchoverDecided: false,
    failReason: null,
    eofSent: false,
    returnPathClosed: false,
    stoppedWithAckPending: false,
    intervenedAfterEof: false,
    guestRestarted: false,
  }),
  on: {
    // The return path thread runs in any state; after the migration ends its messages change nothing.
    MIG_RP_MSG_SWITCHOVER_ACK: { actions: 'receiveSwitchoverAck' },
    RP_SHUTDOWN: { actions: 'noteReturnPathClosed' },
    GUEST_DIRTIES_DEVICE: { guard: 'deviceTracksDirt', actions: 'guestDirtiesDevice' },
    GUEST_REINITS_DEVICE: { guard: 'guestMayReconfigure', actions: 'guestReconfiguresDevice' },
  },
  states: {
    none: {
      description: 'No migration has been started.',
      on: {
        MIGRATE_CANCEL: {}, // QEMU accepts migrate_cancel with no migration running and does nothing
        MIGRATE: [
          { guard: 'postcopyWithVfio', actions: 'refusePostcopy' },
          { guard: 'ackWithoutReturnPath', actions: 'refuseCaps' },
          { guard: 'multipleDevicesWithoutP2P', actions: 'refuseMultipleWithoutP2P' },
          { target: 'setup', actions: 'migrateInit' },
        ],
      },
    },
    setup: {
      description: 'Connected; the migration thread runs save setup (VFIO: RUNNING -> PRE_COPY).',
      on: {
        THREAD_STEP: [
          { guard: 'streamFailed', target: 'failed', actions: 'shutdownStream' },
          { guard: and(['setupDone', 'failoverPrimary']), target: 'wait-unplug' },
          { guard: 'setupDone', target: 'active' },
          { actions: 'saveSetup' },
        ],
        MIGRATE_CANCEL: { target: 'cancelling', actions: 'shutdownStream' },
        STREAM_BREAKS: { actions: 'noteStreamError' },
      },
    },
    'wait-unplug': {
      description: 'Waiting for the guest to unplug a failover primary (virtio-net dev_unplug_pending).',
      on: {
        THREAD_STEP: [{ guard: 'streamFailed', target: 'failed', actions: 'shutdownStream' }, { target: 'active' }],
        MIGRATE_CANCEL: { target: 'cancelling', actions: 'shutdownStream' },
        STREAM_BREAKS: { actions: 'noteStreamError' },
      },
    },
    active: {
      description: 'Precopy: each pass of the thread sends a round, or decides to switch over.',
      on: {
        THREAD_STEP: [
          { guard: 'streamFailed', target: 'failed', actions: 'shutdownStream' },
          // a REINIT design: the stop after the decision, with what the design does at that moment
          { guard: and(['switchoverDecided', { type: 'commitOutcome', params: { is: 'fail' as const } }]), target: 'failed', actions: ['commitSwitchover', 'shutdownStream'] },
          { guard: and(['switchoverDecided', { type: 'commitOutcome', params: { is: 'resume' as const } }]), actions: 'commitSwitchover' },
          { guard: and(['switchoverDecided', 'pauseBeforeSwitchover']), target: 'pre-switchover', actions: 'commitSwitchover' },
          { guard: 'switchoverDecided', target: 'device', actions: 'commitSwitchover' },
          // a REINIT design: the decision, taken while the vCPUs still run
          { guard: and(['designed', 'nothingPending', 'canSwitchover']), actions: 'decideSwitchover' },
          // issue #4's system: decision and stop in one step. QEMU takes them apart (they are not atomic);
          // without REINIT nothing that matters can happen in between, so the model keeps them together.
          { guard: and(['nothingPending', 'canSwitchover', 'pauseBeforeSwitchover']), target: 'pre-switchover', actions: 'stopVmForSwitchover' },
          { guard: and(['nothingPending', 'canSwitchover']), target: 'device', actions: 'stopVmForSwitchover' },
          { guard: not('nothingPending'), actions: 'iterate' },
        ],
        MIGRATE_CANCEL: { target: 'cancelling', actions: 'shutdownStream' },
        MIGRATE_START_POSTCOPY: { guard: 'postcopyAllowed', target: 'postcopy-device' },
        RAM_CONVERGES: { guard: 'ramNotConverged', actions: 'ramConverges' },
        STREAM_BREAKS: { actions: 'noteStreamError' },
      },
    },
    'pre-switchover': {
      description: 'pause-before-switchover: the VM is stopped, devices in STOP_COPY; waiting for migrate-continue.',
      on: {
        MIGRATE_CONTINUE: { target: 'device' },
        MIGRATE_CANCEL: { target: 'cancelling', actions: 'shutdownStream' },
        STREAM_BREAKS: { actions: 'noteStreamError' },
      },
    },
    device: {
      description: 'Switchover: the final device state, MIG_CMD_SWITCHOVER_START and EOF are sent; then the return path closes.',
      on: {
        THREAD_STEP: [
          { guard: 'streamFailed', target: 'failed', actions: 'shutdownStream' },
          { guard: not('eofSent'), actions: 'completePrecopy' },
          // the return path is closed (an error there fails the migration), then completed
          { guard: 'returnPathDone', target: 'completed', actions: 'enterPostmigrate' },
        ],
        MIGRATE_CANCEL: { target: 'cancelling', actions: ['noteCancelAfterEof', 'shutdownStream'] },
        STREAM_BREAKS: { actions: 'noteStreamError' },
      },
    },
    completed: {
      description: 'Done; the VM is in postmigrate. vfio_save_cleanup moves the devices STOP_COPY -> STOP.',
      on: { THREAD_STEP: { guard: not('cleanedUp'), actions: 'saveCleanup' }, MIGRATE_CANCEL: {} },
    },
    failed: {
      description: 'Failed; the thread restarts the guest and the devices go back to RUNNING.',
      on: { THREAD_STEP: { guard: not('cleanedUp'), actions: 'recoverAfterFailure' }, MIGRATE_CANCEL: {} },
    },
    cancelling: {
      description: 'migrate_cancel was issued; the thread winds down: the guest restarts, then cleanup.',
      on: {
        THREAD_STEP: [
          // migration_iteration_finish restarts the guest; migration_cleanup then moves to cancelled and
          // runs the MIG_EVENT_PRECOPY_FAILED notifier (QEMU 10.0 shows RESUME before 'cancelled')
          { guard: not('guestRestarted'), actions: 'restartGuest' },
          { target: 'cancelled', actions: 'notifyPrecopyFailed' },
        ],
      },
    },
    cancelled: {
      description: 'Cancelled; the guest runs on the source again.',
      on: { MIGRATE_CANCEL: {} }, // accepted, and nothing to do
    },
    'postcopy-device': {
      description: 'Unreachable with VFIO devices: QEMU refuses postcopy-ram for them.',
      on: { THREAD_STEP: { target: 'postcopy-active' } },
    },
    'postcopy-active': {
      description: 'Unreachable with VFIO devices (postcopy).',
      on: { THREAD_STEP: { target: 'completed' }, STREAM_BREAKS: { target: 'postcopy-paused' } },
    },
    'postcopy-paused': {
      description: 'Unreachable with VFIO devices (postcopy).',
      on: { MIGRATE: { target: 'postcopy-recover-setup' } },
    },
    'postcopy-recover-setup': {
      description: 'Unreachable with VFIO devices (postcopy).',
      on: { THREAD_STEP: { target: 'postcopy-recover' } },
    },
    'postcopy-recover': {
      description: 'Unreachable with VFIO devices (postcopy).',
      on: { THREAD_STEP: { target: 'postcopy-active' } },
    },
  },
});

export type QemuSourceMachine = typeof qemuSourceMachine;
