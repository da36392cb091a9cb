/**
 * The source's multifd device-state save thread for one VFIO device
 * (`vfio_multifd_save_complete_precopy_thread`, hw/vfio/migration-multifd.c, QEMU 10.0.2).
 *
 * qemu_savevm_state_complete_precopy_iterable spawns one per device (multifd_spawn_device_state_save_thread)
 * before it runs the iterable handlers, and joins them before the non-iterables
 * (multifd_join_device_state_save_threads; a failed thread fails the migration with -EINVAL). The thread:
 *  - asks for STOP_COPY (recover STOP) — vfio_migration_set_state; a failure ends the thread;
 *  - reads the saving data_fd in chunks of up to the buffer size; each non-empty chunk is a packet with the
 *    next index, queued on a multifd channel (multifd_queue_device_state; it waits while no channel is free);
 *    a read error ends the thread;
 *  - at EOF (read returns 0) queues the config space as one more packet with the next index and the
 *    CONFIG_STATE flag, and exits;
 *  - checks multifd_device_state_save_thread_should_exit before each read (an abort, on a migration error).
 * The device calls and the packets themselves are the source QEMU's (machines/qemuSource.ts), which drives
 * this machine through `saveCall` as it drives the device machine.
 */
import { type AnyActorScope, assign, initialTransition, setup } from 'xstate';
import { inertScope } from './inertScope.js';

export interface MultifdSaveContext {
  /** The index the next packet gets. */
  readonly idx: number;
  readonly error: string | null;
}

export type MultifdSaveEvent =
  /** The thread pool runs the thread. */
  | { type: 'SPAWN' }
  /** The device reached STOP_COPY (or was there). */
  | { type: 'STOPPED' }
  | { type: 'SET_FAILED'; reason: string }
  /** A chunk of `units` was read and queued as packet `idx`. */
  | { type: 'CHUNK_QUEUED' }
  /** read() returned 0: the config packet was queued with the next index. */
  | { type: 'CONFIG_QUEUED' }
  | { type: 'READ_FAILED'; reason: string }
  | { type: 'ABORT' };

const saveSetup = setup({
  types: { context: {} as MultifdSaveContext, events: {} as MultifdSaveEvent },
  actions: {
    nextIndex: assign(({ context }) => ({ idx: context.idx + 1 })),
    noteError: assign(({ event }) => ({ error: 'reason' in event ? event.reason : 'operation cancelled' })),
  },
});

export const multifdSaveMachine = saveSetup.createMachine({
  id: 'multifdSave',
  description: "One VFIO device's multifd save thread on the source (vfio_multifd_save_complete_precopy_thread)",
  initial: 'idle',
  context: { idx: 0, error: null },
  states: {
    idle: { description: 'Not spawned (the switchover has not come, or the device does not use multifd).', on: { SPAWN: { target: 'stopping' } } },
    stopping: {
      description: 'Spawned: the device is asked for STOP_COPY (recover STOP).',
      on: { STOPPED: { target: 'reading' }, SET_FAILED: { target: 'failed', actions: 'noteError' }, ABORT: { target: 'failed', actions: 'noteError' } },
    },
    reading: {
      description: 'Reading the STOP_COPY stream: each chunk becomes a packet with the next index.',
      on: {
        CHUNK_QUEUED: { actions: 'nextIndex' },
        CONFIG_QUEUED: { target: 'done', actions: 'nextIndex' },
        READ_FAILED: { target: 'failed', actions: 'noteError' },
        ABORT: { target: 'failed', actions: 'noteError' },
      },
    },
    done: { type: 'final', description: 'The data and then the config are queued; the thread returned true.' },
    failed: { type: 'final', description: 'The thread returned false: the join fails the migration.' },
  },
});

export interface MultifdSaveRecord {
  readonly state: 'idle' | 'stopping' | 'reading' | 'done' | 'failed';
  readonly context: MultifdSaveContext;
}

export function initialSave(): MultifdSaveRecord {
  const [snap] = initialTransition(multifdSaveMachine, undefined);
  return { state: snap.value as MultifdSaveRecord['state'], context: snap.context };
}

let scope: AnyActorScope | null = null;
const saveScope = (): AnyActorScope => (scope ??= inertScope(multifdSaveMachine, undefined));

export function saveCall(rec: MultifdSaveRecord, event: MultifdSaveEvent): MultifdSaveRecord {
  const snap = multifdSaveMachine.resolveState({ value: rec.state, context: rec.context });
  const next = multifdSaveMachine.transition(snap, event, saveScope());
  return { state: next.value as MultifdSaveRecord['state'], context: next.context };
}

export type MultifdSaveMachine = typeof multifdSaveMachine;
