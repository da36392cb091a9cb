/**
 * The composed migration system: the source QEMU and the destination QEMU (each driving its VFIO
 * devices through the device machine), the main stream and the return path between them, and the
 * environment: the migration thread's scheduling (a pass whose pending data fits the threshold or not),
 * the guest (device dirtying or reconfiguration), management (migrate, migrate-incoming,
 * migrate-continue, migrate_cancel, and optionally stop/cont, a paused destination, retries to a new
 * destination process) and faults (the stream breaks).
 *
 * @example
 *   import { explore } from '../explorer/index.js';
 *   import { migrationSystem } from './migration.js';
 *   const r = explore(migrationSystem({ devices: ['STOP_COPY|P2P|PRE_COPY'], ack: 'legacy' }), { progress: false });
 *   r.properties.every((p) => p.holds); // => true
 */
import type { AnyStateMachine, EventObject } from 'xstate';
import { type AckMode, MAIN_STREAM_MESSAGES, MAX_MULTIFD_CHANNELS, multifdChannelType } from '../../machines/migrationMessages.js';
import { type QemuDestinationContext, qemuDestinationMachine } from '../../machines/qemuDestination.js';
import { qemuSourceMachine } from '../../machines/qemuSource.js';
import { hasP2P, hasPreCopy } from '../../machines/qemuVfio.js';
import type { FeatureSet } from '../../machines/vfioArcs.js';
import { type AnySnapshot, type StepLabel, type SystemSpec, SystemError } from '../explorer/system.js';
import type { DataSymmetry } from '../explorer/dataSymmetry.js';
import { NoStaleStop, NoStaleSwitchover, isReinitLoopStep, reinitLivelockScope } from '../properties/reinit.js';
import type { QemuRelease, ReinitDesign } from '../../machines/qemuSource.js';
import { DESTINATION, MIGRATION_INVARIANTS, SOURCE, isInterventionOrFault, migrationEnded } from '../properties/migration.js';
import { withObservers } from '../properties/ghosts.js';
import { MULTIFD_INVARIANTS, multifdQueueBounded } from '../properties/multifd.js';

export interface MigrationOptions {
  /** Feature set of each device (the same on both hosts unless `destinationDevices` says otherwise). */
  readonly devices: readonly FeatureSet[];
  readonly destinationDevices?: readonly FeatureSet[];
  readonly ack: AckMode;
  /** switchover-ack enabled on one host only (a misconfiguration QEMU does not catch). */
  readonly oneSide?: 'source' | 'destination';
  readonly pauseBeforeSwitchover?: boolean;
  /** Let management cancel (default true) and the stream break (default true). */
  readonly cancel?: boolean;
  /**
   * With a return path, let migrate_cancel also end 'failed' (QEMU 10.0: the return-path shutdown lets the
   * migration thread fail first). Default true; false leaves only the cancelled outcome.
   */
  readonly cancelRace?: boolean;
  readonly faults?: boolean;
  readonly maxBytes?: number;
  /** A REINIT design (issue #5): adds guest reconfiguration of precopy devices while the vCPUs run. */
  readonly design?: ReinitDesign;
  readonly reinitBudget?: number;
  /** How often the guest may reconfigure a device: a number (default 1) or 'unbounded' (a storm). */
  readonly guestReinits?: number | 'unbounded';
  /**
   * Reduce by devices alike on both hosts, as if interchangeable: approximate, since QEMU handles them in
   * order (DEVICES_NOT_INTERCHANGEABLE); with multifd, by the channels instead, which is exact.
   */
  readonly symmetry?: boolean;
  /**
   * Ask only L2, the REINIT livelock question (needs `design`): the system then checks nothing but
   * non-progress cycles, and explores only what that needs (`livelockReduction`): the machines run
   * without the properties' ghost state, counters kept only for properties are forgotten, and a
   * migration that has ended for good is not followed.
   */
  readonly livelockOnly?: boolean;
  /** How often the guest may dirty device state (default 1; 'unbounded': dirty bytes that never reach 0). */
  readonly guestDirties?: number | 'unbounded';
  /** Management `stop` and `cont` on the source, and `cont` on the destination (default false). */
  readonly management?: boolean;
  /** Start the destination with autostart on (default true; libvirt uses -S: false). */
  readonly autostart?: boolean;
  /** New migrations after a failed or cancelled one, each to a new destination process (default 0). */
  readonly retries?: number;
  /**
   * Driver failures the environment may inject on each host (default 0): DRIVER_FAULT arms a failure of
   * the first arc of a device's next SET, leaving it where it was or in ERROR; QEMU then recovers, resets,
   * and fails the migration or — on the destination, which has no outgoing stream — carries on.
   */
  readonly deviceFaults?: number;
  /** The QEMU release on both hosts: which VFIO_MIGRATION events the source shows (see QemuSourceInput.release). */
  readonly release?: QemuRelease;
  /**
   * The multifd capability on both hosts, and its device-state transfer (machines/multifdSave.ts,
   * machines/multifdLoad.ts). Absent: multifd off.
   */
  readonly multifd?: MultifdOptions;
  /** Units a stopped device adds to its STOP_COPY stream: with multifd, data packets per device (default 1). */
  readonly finalBytes?: number;
  /** Replace the source machine (e.g. one with your own actions via `provide()`); default qemuSourceMachine. */
  readonly sourceMachine?: AnyStateMachine;
  readonly destinationMachine?: AnyStateMachine;
}

export interface MultifdOptions {
  /** multifd-channels (1..MAX_MULTIFD_CHANNELS). */
  readonly channels: number;
  /** x-migration-multifd-transfer on each device (default auto), on both hosts unless `destinationTransfer`. */
  readonly transfer?: 'auto' | 'on' | 'off';
  readonly destinationTransfer?: 'auto' | 'on' | 'off';
  /** The migration property send-switchover-start (default on; off for machine types up to 9.2). */
  readonly sendSwitchoverStart?: boolean;
  /** x-migration-max-queued-buffers-size on the destination, in units (QEMU 10.1); default: no limit. */
  readonly maxQueued?: number | null;
  /** x-migration-load-config-after-iter (QEMU 10.1) on both hosts. */
  readonly loadConfigAfterIter?: boolean;
  /** The environment may reset a multifd channel's connection on the destination (default: with `faults`). */
  readonly recvResets?: boolean;
  /**
   * A malicious source (the environment): packets for device 0 with indices 1..N, never index 0, so the
   * load thread never writes and every one stays queued. Default 0 (an honest source).
   */
  readonly maliciousPackets?: number;
}

/** The environment's driver failures for `n` devices: each may fail its next SET, staying or in ERROR. */
function driverFaults(n: number, faults: number | undefined): EventObject[] {
  if (!faults) return [];
  return Array.from({ length: n }, (_, device) => [
    { type: 'DRIVER_FAULT', device, leaves: 'reached' },
    { type: 'DRIVER_FAULT', device, leaves: 'ERROR' },
  ]).flat();
}

export function migrationSystem(o: MigrationOptions): SystemSpec {
  const n = o.devices.length;
  for (const side of [o.devices, o.destinationDevices ?? o.devices]) {
    if (side.length > 1 && side.some((f) => !hasP2P(f))) {
      throw new SystemError('QEMU blocks the migration of several VFIO devices unless every one supports P2P (hw/vfio/migration.c); use one device or P2P devices');
    }
  }
  const dstDevices = o.destinationDevices ?? o.devices;
  const mf = o.multifd;
  if (mf && (!Number.isInteger(mf.channels) || mf.channels < 1 || mf.channels > MAX_MULTIFD_CHANNELS)) {
    throw new SystemError(`multifd channels must be 1..${MAX_MULTIFD_CHANNELS}, got ${mf.channels}`);
  }
  if (o.livelockOnly && o.design === undefined) throw new SystemError('livelockOnly is the REINIT livelock question: it needs a design');
  // the machines as the explorer runs them: with the properties' observers (src/properties/ghosts.ts),
  // which the livelock question does not read
  const observed = (m: AnyStateMachine, side: 'source' | 'destination') => (o.livelockOnly ? m : withObservers(m, side));
  const srcMachine = observed(o.sourceMachine ?? qemuSourceMachine, 'source');
  const dstMachine = observed(o.destinationMachine ?? qemuDestinationMachine, 'destination');
  // A design fixes the ack mode: QEMU <= 11.0 has only the legacy ack, 11.1 and the proposal per-device acks.
  const ack: AckMode = o.design === undefined ? o.ack : o.design === 'legacy' ? 'legacy' : 'per-device';
  const srcAck: AckMode = o.oneSide === 'destination' ? 'off' : ack;
  const dstAck: AckMode = o.oneSide === 'source' ? 'off' : ack;
  // The source's return-path capability goes with its switchover-ack (it is what opens the return path:
  // MIG_CMD_OPEN_RETURN_PATH); a destination with the ack alone opens none. Real QEMU 10.0 with the ack on
  // the destination only: the source completes without waiting for the destination (nested mtty run).
  const returnPath = srcAck !== 'off';
  // Without a design the guest dirties device state; with one it reconfigures devices instead (REINIT).
  const guestEvent = o.design === undefined ? 'GUEST_DIRTIES_DEVICE' : 'GUEST_REINITS_DEVICE';
  const srcEnv: EventObject[] = [
    { type: 'MIGRATE' },
    { type: 'THREAD_STEP' },
    { type: 'PENDING_FITS_THRESHOLD' },
    ...o.devices.flatMap((f, i) => (hasPreCopy(f) ? [{ type: guestEvent, device: i } as EventObject] : [])),
    ...(o.pauseBeforeSwitchover ? [{ type: 'MIGRATE_CONTINUE' }] : []),
    ...(o.cancel ?? true ? [{ type: 'MIGRATE_CANCEL' }] : []),
    // the same command's other interleaving, where the return-path shutdown lets the migration thread
    // fail first (QEMU 10.0.2 migration_cancel; machines/qemuSource.ts CANCEL_LOSES_TO_RETURN_PATH_ERROR):
    // only a source with a return path has it, and after the plain one so plans take the plain one
    ...((o.cancel ?? true) && returnPath && (o.cancelRace ?? true) ? [{ type: 'MIGRATE_CANCEL', returnPathFirst: true } as EventObject] : []),
    ...(o.faults ?? true ? [{ type: 'STREAM_BREAKS' }] : []),
    ...(o.management ? [{ type: 'STOP' }, { type: 'CONT' }] : []),
    ...driverFaults(o.devices.length, o.deviceFaults),
    ...(mf ? o.devices.flatMap((_, device) => Array.from({ length: mf.channels }, (_, channel) => ({ type: 'SAVE_THREAD_STEP', device, channel }))) : []),
  ];
  const dstEnv: EventObject[] = [
    { type: 'MIGRATE_INCOMING' },
    ...(o.management ? [{ type: 'CONT' }] : []),
    ...((o.retries ?? 0) > 0 ? [{ type: 'NEW_PROCESS' }] : []),
    ...driverFaults(dstDevices.length, o.deviceFaults),
    ...(mf ? dstDevices.map((_, device) => ({ type: 'LOAD_THREAD_STEP', device })) : []),
    ...(mf && (mf.recvResets ?? o.faults ?? true) ? Array.from({ length: mf.channels }, (_, channel) => ({ type: 'MULTIFD_RECV_RESET', channel })) : []),
    ...(mf?.maliciousPackets ? Array.from({ length: mf.maliciousPackets }, (_, i) => ({ type: 'FORGED_PACKET', device: 0, idx: i + 1, units: 1 })) : []),
  ];
  const multifdLabel = mf
    ? `multifd ${mf.channels} channel${mf.channels === 1 ? '' : 's'}${mf.transfer && mf.transfer !== 'auto' ? ` transfer ${mf.transfer}` : ''}${mf.destinationTransfer ? ` (destination ${mf.destinationTransfer})` : ''}${mf.sendSwitchoverStart === false ? ' send-switchover-start off' : ''}${mf.maxQueued != null ? ` cap ${mf.maxQueued}` : ''}${mf.loadConfigAfterIter ? ' load-config-after-iter' : ''}${o.finalBytes ? `, ${o.finalBytes} buffer${o.finalBytes === 1 ? '' : 's'} per device` : ''}`
    : '';
  const extras = [multifdLabel, o.management ? 'management stop/cont' : '', o.autostart === false ? 'destination -S' : '', o.retries ? `${o.retries} retr${o.retries === 1 ? 'y' : 'ies'}` : '', o.deviceFaults ? `${o.deviceFaults} driver fault${o.deviceFaults === 1 ? '' : 's'} per host` : '']
    .filter(Boolean)
    .join(', ');
  const design = o.design
    ? `, design ${o.design}${o.reinitBudget !== undefined ? ` (REINIT budget ${o.reinitBudget})` : ''}, guest reinits ${o.guestReinits ?? 1}`
    : '';
  const label = `${n} device${n === 1 ? '' : 's'} [${o.devices.join(', ')}], ack ${ack}${o.oneSide ? ` on the ${o.oneSide} only` : ''}${design}${extras ? `, ${extras}` : ''}`;
  return {
    name: `migration: ${label}`,
    components: [
      {
        name: SOURCE,
        machine: srcMachine,
        input: {
          devices: o.devices,
          ack: srcAck,
          returnPath,
          pauseBeforeSwitchover: o.pauseBeforeSwitchover ?? false,
          maxBytes: o.maxBytes ?? 1,
          ...(o.design ? { design: o.design, guestReinits: o.guestReinits ?? 1 } : {}),
          ...(o.reinitBudget !== undefined ? { reinitBudget: o.reinitBudget } : {}),
          ...(o.retries ? { retries: o.retries } : {}),
          ...(o.guestDirties !== undefined ? { guestDirties: o.guestDirties } : {}),
          ...(o.release ? { release: o.release } : {}),
          ...(o.deviceFaults ? { deviceFaults: o.deviceFaults } : {}),
          ...(o.finalBytes !== undefined ? { finalBytes: o.finalBytes } : {}),
          ...(mf
            ? { multifd: { channels: mf.channels, transfer: mf.transfer ?? 'auto', sendSwitchoverStart: mf.sendSwitchoverStart ?? true, loadConfigAfterIter: mf.loadConfigAfterIter ?? false } }
            : {}),
        },
      },
      {
        name: DESTINATION,
        machine: dstMachine,
        input: {
          devices: dstDevices,
          ack: dstAck,
          maxBytes: o.maxBytes ?? 1,
          ...(o.autostart === false ? { autostart: false } : {}),
          ...(o.retries ? { restarts: o.retries } : {}),
          ...(o.deviceFaults ? { deviceFaults: o.deviceFaults } : {}),
          ...(mf
            ? {
                multifd: {
                  channels: mf.channels,
                  transfer: mf.destinationTransfer ?? mf.transfer ?? 'auto',
                  sendSwitchoverStart: mf.sendSwitchoverStart ?? true,
                  cap: mf.maxQueued ?? null,
                  loadConfigAfterIter: mf.loadConfigAfterIter ?? false,
                },
              }
            : {}),
        },
      },
    ],
    channels: [
      // multifd adds the RAM sync's FLUSH and two END_OF_STATE markers (or CONFIG_LOAD_READY) per device
      { name: 'main', from: SOURCE, to: DESTINATION, capacity: 2 * n + 4 + (mf ? 2 * n + 1 : 0), messages: MAIN_STREAM_MESSAGES },
      { name: 'return', from: DESTINATION, to: SOURCE, capacity: n + 2 },
      // the destination's receive failure shuts the channels: the source's sends fail
      ...(mf ? [{ name: 'multifd-shut', from: DESTINATION, to: SOURCE, capacity: 2, messages: ['MULTIFD_CHANNELS_SHUT'] }] : []),
      // each channel may carry every device's packets (data and config), its SYNC and its EOF
      ...(mf
        ? Array.from({ length: mf.channels }, (_, k) => ({
            name: `multifd${k}`,
            from: SOURCE,
            to: DESTINATION,
            capacity: n * ((o.finalBytes ?? 1) + (o.maxBytes ?? 1) + 2) + 2,
            messages: [multifdChannelType(k)],
          }))
        : []),
    ],
    environment: { [SOURCE]: srcEnv, [DESTINATION]: dstEnv },
    // QEMU's QMP VFIO_MIGRATION events: what a real run shows of each device (conformance reads them)
    observations: ['VFIO_MIGRATION'],
    invariants: o.livelockOnly ? [] : [
      ...MIGRATION_INVARIANTS,
      ...(o.design ? [NoStaleSwitchover, NoStaleStop] : []),
      // an honest source has at most a device's whole STOP_COPY stream in flight: precopy's initial and
      // dirty bytes (each up to maxBytes) and what the stop adds
      ...(mf ? [...MULTIFD_INVARIANTS, multifdQueueBounded(2 * (o.maxBytes ?? 1) + (o.finalBytes ?? 1))] : []),
    ],
    ...(o.design
      ? {
          progress: (step: StepLabel) => !isReinitLoopStep(step),
          fair: (step: StepLabel) => step.kind === 'env' && (step.event.type === 'THREAD_STEP' || step.event.type === 'PENDING_FITS_THRESHOLD'),
          progressScope: reinitLivelockScope,
        }
      : {}),
    terminal: migrationEnded,
    ...(o.livelockOnly ? livelockReduction(srcMachine, dstMachine) : { goal: migrationEnded, goalVia: (step: StepLabel) => !isInterventionOrFault(step) }),
    // with multifd, --symmetry is over the channels (the devices' save threads and buffers are not permuted)
    ...(o.symmetry ? { dataSymmetry: mf ? channelSymmetry(mf.channels, dstMachine) : deviceSymmetry(o.devices, dstDevices, srcMachine, dstMachine) } : {}),
    goalName: 'MigrationEnds',
    goalDescription: 'from every reachable state the migration can end (completed, failed or cancelled on both sides) without a cancel or a fault',
  };
}

/**
 * What L2 — a non-progress cycle among states where the source is active and the destination loading
 * (reinitLivelockScope) — does not need, for the REINIT storm run:
 *  - forget: the units sent and received per device (QemuSourceContext.sent and the destination's
 *    `received`: each step reads them only to add to them; only the migration properties compare them),
 *    and each device's last call result (`last`: QEMU reads it right after the call that writes it, in
 *    the same step — query, readChunk, setState, the multifd save — except the destination, which looks
 *    at a failed write on the next VFIO_DEVICE_STATE (the writeFailed guard), so that one is kept);
 *  - cut: a source that has completed, failed or been cancelled with no retry left (only a retry,
 *    MIGRATE with retryAllowed, leaves those states), and a destination that has completed (it never
 *    leaves) or failed with no restart left (only NEW_PROCESS leaves): outside the scope, and no state in
 *    the scope follows them.
 * test/livelock.test.ts checks both against the unreduced storm: the same states up to the forgotten
 * fields, the same steps between them, no scope state after a cut one, and the same L2 verdicts.
 */
function livelockReduction(srcMachine: AnyStateMachine, dstMachine: AnyStateMachine): Pick<SystemSpec, 'forget' | 'cut'> {
  type Dev = { readonly context: { readonly last: { readonly op: string; readonly ok: boolean } | null } };
  const keptLast = (d: Dev) => d.context.last === null || (d.context.last.op === 'DATA_FD_WRITE' && !d.context.last.ok);
  const forgetIn = (machine: AnyStateMachine, counter: 'sent' | 'received') => (s: AnySnapshot): AnySnapshot => {
    const c = s.context as Record<string, unknown> & { readonly devs: readonly Dev[] };
    const units = c[counter] as readonly number[];
    const zeroed = units.some((u) => u !== 0);
    const lastGone = !c.devs.every(keptLast);
    if (!zeroed && !lastGone) return s;
    const devs = lastGone ? c.devs.map((d) => (keptLast(d) ? d : { ...d, context: { ...d.context, last: null } })) : c.devs;
    return machine.resolveState({ value: s.value, context: { ...c, devs, [counter]: zeroed ? units.map(() => 0) : units } }) as AnySnapshot;
  };
  const top = (s: AnySnapshot) => (typeof s.value === 'string' ? s.value : Object.keys(s.value as object)[0]!);
  return {
    forget: { [SOURCE]: forgetIn(srcMachine, 'sent'), [DESTINATION]: forgetIn(dstMachine, 'received') },
    cut: {
      [SOURCE]: (s) => ['completed', 'failed', 'cancelling', 'cancelled'].includes(top(s)) && (s.context as { retriesLeft: number }).retriesLeft === 0,
      [DESTINATION]: (s) => top(s) === 'completed' || (top(s) === 'failed' && (s.context as { restartsLeft: number }).restartsLeft === 0),
    },
  };
}

/** Why a source or destination state is never reached in these systems (printed beside coverage). */
export const UNREACHED_BECAUSE: Readonly<Record<string, string>> = {
  'migrating.wait-unplug': 'no virtio-net failover primary in these systems',
  'migrating.active.decided': 'reached only with a REINIT --design',
  'migrating.device.saving': 'reached only with --pause-before-switchover, or a REINIT design whose stop-time check fails',
  'postcopy-device': 'QEMU refuses postcopy-ram with VFIO devices (vfio_save_prepare)',
  'postcopy-active': 'QEMU refuses postcopy-ram with VFIO devices (vfio_save_prepare)',
  'postcopy-paused': 'QEMU refuses postcopy-ram with VFIO devices (vfio_save_prepare)',
  'postcopy-recover-setup': 'QEMU refuses postcopy-ram with VFIO devices (vfio_save_prepare)',
  'postcopy-recover': 'QEMU refuses postcopy-ram with VFIO devices (vfio_save_prepare)',
  'migrating.pre-switchover': 'reached only with --pause-before-switchover',
  'migrating.device.iterables': 'reached only with --multifd (device state over the multifd channels)',
  'migrating.device.joining': 'reached only with --multifd (device state over the multifd channels)',
};

/** Every permutation of 0..n-1 that keeps each index inside its class (devices that are alike). */
function permutationsWithin(classOf: readonly string[]): number[][] {
  const n = classOf.length;
  const out: number[][] = [];
  const perm: number[] = [];
  const used = new Array<boolean>(n).fill(false);
  const go = (i: number) => {
    if (i === n) return void out.push([...perm]);
    for (let j = 0; j < n; j++) {
      if (used[j] || classOf[j] !== classOf[i]) continue;
      used[j] = true;
      perm[i] = j;
      go(i + 1);
      used[j] = false;
    }
  };
  go(0);
  return out;
}

const permuted = <T>(xs: readonly T[], perm: readonly number[]): T[] => {
  const out = [...xs];
  xs.forEach((x, i) => (out[perm[i]!] = x));
  return out;
};

/**
 * Why device symmetry is approximate: QEMU handles its devices in order — a precopy round, the stop and
 * the final state go device by device (qemu_savevm_state_iterate, vm_state_notify, vfio_save_complete_precopy
 * in registration order) — so the order of their messages on the stream tells them apart. Measured
 * (test/migration.test.ts, symmetryDefects): with 2 per-device P2P devices, 1,954 of the 4,098 reachable
 * states have a device-swapped image that no run reaches.
 */
export const DEVICES_NOT_INTERCHANGEABLE =
  'devices are interchangeable only up to the order QEMU handles them in (their messages on the stream keep that order), so the device-symmetry quotient can miss states';

/**
 * Devices with the same feature set on both hosts, as if interchangeable: a permutation moves every
 * per-device array of both QEMUs and the device index of every message. They are not exactly
 * interchangeable (DEVICES_NOT_INTERCHANGEABLE), so the reduction is approximate: a bug finder, not a proof.
 */
function deviceSymmetry(src: readonly FeatureSet[], dst: readonly FeatureSet[], srcMachine: AnyStateMachine, dstMachine: AnyStateMachine): DataSymmetry {
  const perArray: Record<string, readonly string[]> = {
    [SOURCE]: ['devices', 'devs', 'initialDataSent', 'sent', 'gen'],
    [DESTINATION]: ['devices', 'devs', 'received', 'approvedGen'],
  };
  const machineOf: Record<string, AnyStateMachine> = { [SOURCE]: srcMachine, [DESTINATION]: dstMachine };
  return {
    perms: permutationsWithin(src.map((f, i) => `${f}/${dst[i]}`)),
    approximate: DEVICES_NOT_INTERCHANGEABLE,
    permuteSnapshot(component, s, perm) {
      const ctx = { ...(s.context as Record<string, unknown>) };
      for (const key of perArray[component] ?? []) if (ctx[key] !== undefined) ctx[key] = permuted(ctx[key] as readonly unknown[], perm);
      return machineOf[component]!.resolveState({ value: s.value, context: ctx }) as AnySnapshot;
    },
    permuteEvent(e, perm) {
      const d = (e as { device?: unknown }).device;
      return typeof d === 'number' ? { ...e, device: perm[d]! } : e;
    },
  };
}

/**
 * The multifd channels are interchangeable (test/multifd.test.ts measures it with symmetryDefects: every
 * reachable state's channel-permuted image is reachable, on every configuration it tries): a save thread
 * may queue a packet on any of them, every one gets the RAM sync, and the destination treats them alike. A permutation moves each channel's contents
 * (its messages renamed), the destination's per-channel flags, and nothing on the source, whose state
 * names no channel. (The STOP_COPY request is labelled with channel 0 only, but its successor does not
 * depend on the channel.)
 */
function channelSymmetry(k: number, dstMachine: AnyStateMachine): DataSymmetry {
  const all: number[][] = [];
  const go = (prefix: number[]) => {
    if (prefix.length === k) return void all.push(prefix);
    for (let j = 0; j < k; j++) if (!prefix.includes(j)) go([...prefix, j]);
  };
  go([]);
  return {
    perms: all,
    permuteSnapshot(component, s, perm) {
      if (component !== DESTINATION) return s;
      const ctx = s.context as QemuDestinationContext;
      if (!ctx.multifd) return s;
      const multifd = { ...ctx.multifd, syncWaiting: permuted(ctx.multifd.syncWaiting, perm), ended: permuted(ctx.multifd.ended, perm) };
      // a failed load names the message it failed on ('load failed on MULTIFD_1'): renamed with it
      const loadError = ctx.loadError?.replace(/MULTIFD_(\d+)/, (_, k: string) => multifdChannelType(perm[Number(k)]!)) ?? null;
      return dstMachine.resolveState({ value: s.value, context: { ...ctx, multifd, loadError } }) as AnySnapshot;
    },
    permuteEvent(e, perm) {
      const m = /^MULTIFD_(\d+)$/.exec(e.type);
      return m ? { ...e, type: multifdChannelType(perm[Number(m[1])]!) } : e;
    },
    channelMoves: (perm) => Object.fromEntries(perm.map((to, from) => [`multifd${from}`, `multifd${to}`])),
  };
}
