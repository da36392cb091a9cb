/**
 * The destination's multifd device-state load for one VFIO device: the buffer store the multifd receive
 * threads fill, and the load thread that writes it into the device's RESUMING data_fd.
 *
 * Follows hw/vfio/migration-multifd.c (QEMU 10.0.2; the cap and load-config-after-iter are QEMU 10.1,
 * read in upstream master — 10.0.2 has neither, and shared/reference/qemu-migration.md §d lists them
 * without saying so):
 *  - `vfio_multifd_load_state_buffer` (a receive thread): a packet whose CONFIG_STATE flag is set records
 *    its index as the last one (`load_buf_idx_last`, UINT32_MAX until then — null here), *before* the
 *    insert's checks; `vfio_load_state_buffer_insert` then refuses an index already filled ("state buffer
 *    N already filled"; a written buffer stays present, so a repeat of an old index is refused too), adds
 *    the packet's size to the queued total and, 10.1, fails when that passes
 *    `x-migration-max-queued-buffers-size` ("would exceed the size max"; UINT64_MAX by default — null);
 *  - `vfio_multifd_switchover_start` (MIG_CMD_SWITCHOVER_START on the main stream) starts the load thread
 *    (`vfio_load_bufs_thread`); packets that arrive before it are only stored;
 *  - the load thread writes buffer `load_buf_idx` when it is present and is not the last one, then moves
 *    to the next (the written bytes leave the queued total); when the next one is missing it waits
 *    (starved). At the last index — the config — it (10.1, `x-migration-load-config-after-iter`) first
 *    waits for DEV_CONFIG_LOAD_READY from the main stream, then loads the config under the BQL and exits;
 *  - DEV_CONFIG_LOAD_READY a second time is an error (vfio_load_state_config_load_ready), as is one when
 *    load-config-after-iter is off (the destination checks that before it gets here);
 *  - cleanup (`vfio_load_cleanup_load_bufs_thread`) makes a running thread exit ("operation cancelled").
 *
 * Abstractions: sizes are units (a config packet is 0 units: the cap is meant for data buffers of up to
 * 1 MiB, a config space is a few KiB); a partial write(2) is one write; what the device does with the
 * bytes is the destination's call into the device machine, which reports a refused write as
 * WRITE_FAILED. The machine is driven by the destination QEMU (machines/qemuDestination.ts), as the
 * device machine is, through `loadCall`.
 *
 * @example
 *   import { initialLoad, loadCall, loadCan } from './multifdLoad.js';
 *   let l = initialLoad({ cap: null, configAfterIter: false });
 *   l = loadCall(l, { type: 'PACKET', idx: 1, units: 0, config: true }); // the config overtook the data
 *   l = loadCall(l, { type: 'START' }); // MIG_CMD_SWITCHOVER_START
 *   loadCan(l, { type: 'WROTE' }); // => false
 *   l = loadCall(l, { type: 'PACKET', idx: 0, units: 1, config: false });
 *   l = loadCall(loadCall(l, { type: 'WROTE' }), { type: 'LOAD_CONFIG' });
 *   l.state; // => 'loaded'
 */
import { type AnyActorScope, assign, initialTransition, setup } from 'xstate';
import { inertScope } from './inertScope.js';

export interface MultifdLoadInput {
  /** x-migration-max-queued-buffers-size in units (QEMU 10.1); null: no limit (UINT64_MAX, the default). */
  readonly cap: number | null;
  /** x-migration-load-config-after-iter (QEMU 10.1): the config waits for DEV_CONFIG_LOAD_READY. */
  readonly configAfterIter: boolean;
}

/** One buffer slot: units stored and not yet written, 'written', or absent. */
export type BufferSlot = number | 'written' | null;

export interface MultifdLoadContext {
  readonly cap: number | null;
  readonly configAfterIter: boolean;
  /** The store (VFIOStateBuffers), by index. */
  readonly bufs: readonly BufferSlot[];
  /** load_buf_idx_last: the config packet's index; null until it arrives (UINT32_MAX). */
  readonly last: number | null;
  /** load_buf_idx: the next buffer the load thread writes. */
  readonly loadIdx: number;
  /** load_buf_queued_pending_buffers_size, in units. */
  readonly queued: number;
  /** load_bufs_iter_done: DEV_CONFIG_LOAD_READY arrived. */
  readonly iterDone: boolean;
  /** Units written into the device's data_fd. */
  readonly written: number;
  readonly error: string | null;
}

export type MultifdLoadEvent =
  /** A receive thread hands over a device-state packet. */
  | { type: 'PACKET'; idx: number; units: number; config: boolean }
  /** MIG_CMD_SWITCHOVER_START: the load thread starts. */
  | { type: 'START' }
  /** The load thread wrote the next buffer into the device (the caller did the write). */
  | { type: 'WROTE' }
  /** The device refused that write (vfio_load_state_buffer_write: "writing state buffer N failed"). */
  | { type: 'WRITE_FAILED' }
  /** The load thread loads the config (the last index), with the BQL. */
  | { type: 'LOAD_CONFIG' }
  /** DEV_CONFIG_LOAD_READY from the main stream. */
  | { type: 'CONFIG_LOAD_READY' }
  /** The load is being cleaned up: a running thread exits. */
  | { type: 'ABORT' };

const slot = (c: MultifdLoadContext, i: number): BufferSlot => c.bufs[i] ?? null;

const loadSetup = setup({
  types: { context: {} as MultifdLoadContext, events: {} as MultifdLoadEvent, input: {} as MultifdLoadInput },
  guards: {
    /** The index is already filled (or was written): "state buffer N already filled". */
    alreadyFilled: ({ context, event }) => event.type === 'PACKET' && slot(context, event.idx) !== null,
    /** Queuing this packet takes the total past the cap. */
    overCap: ({ context, event }) => event.type === 'PACKET' && context.cap !== null && context.queued + event.units > context.cap,
    /** The next buffer is here and is not the config. */
    nextBufferReady: ({ context }) => context.loadIdx !== context.last && typeof slot(context, context.loadIdx) === 'number',
    /** Every data buffer is written, the config is here, and (load-config-after-iter) its go-ahead came. */
    configLoadable: ({ context }) =>
      context.last !== null && context.loadIdx === context.last && slot(context, context.last) !== null && (!context.configAfterIter || context.iterDone),
    duplicateConfigReady: ({ context }) => context.iterDone,
  },
  actions: {
    /** The last index is recorded before the insert is checked (QEMU's order). */
    noteLast: assign(({ context, event }) => (event.type === 'PACKET' && event.config ? { last: event.idx } : {})),
    store: assign(({ context, event }) => {
      if (event.type !== 'PACKET') return {};
      const bufs = [...context.bufs];
      while (bufs.length <= event.idx) bufs.push(null);
      bufs[event.idx] = event.units;
      return { bufs, queued: context.queued + event.units };
    }),
    refuseFilled: assign(({ event }) => ({ error: event.type === 'PACKET' ? `state buffer ${event.idx} already filled` : 'state buffer already filled' })),
    refuseOverCap: assign(({ context, event }) => ({
      queued: event.type === 'PACKET' ? context.queued + event.units : context.queued,
      error: event.type === 'PACKET' ? `queuing state buffer ${event.idx} would exceed the size max of ${context.cap}` : 'over the cap',
    })),
    wrote: assign(({ context }) => {
      const units = slot(context, context.loadIdx) as number;
      const bufs = [...context.bufs];
      bufs[context.loadIdx] = 'written';
      return { bufs, loadIdx: context.loadIdx + 1, queued: context.queued - units, written: context.written + units };
    }),
    writeFailed: assign(({ context }) => ({ error: `writing state buffer ${context.loadIdx} failed` })),
    configReady: assign({ iterDone: true }),
    duplicateReady: assign({ error: 'duplicate DEV_CONFIG_LOAD_READY' }),
    cancelled: assign({ error: 'operation cancelled' }),
  },
});

/** A packet as a receive thread stores it, in every state where the store is still filled. */
const RECEIVE = {
  PACKET: [
    { guard: 'alreadyFilled', target: '#multifdLoad.failed', actions: ['noteLast', 'refuseFilled'] },
    { guard: 'overCap', target: '#multifdLoad.failed', actions: ['noteLast', 'refuseOverCap'] },
    { actions: ['noteLast', 'store'] },
  ],
  CONFIG_LOAD_READY: [{ guard: 'duplicateConfigReady', target: '#multifdLoad.failed', actions: 'duplicateReady' }, { actions: 'configReady' }],
} as const;

export const multifdLoadMachine = loadSetup.createMachine({
  id: 'multifdLoad',
  description: "One VFIO device's multifd buffer store and load thread on the destination (hw/vfio/migration-multifd.c)",
  initial: 'queuing',
  context: ({ input }) => ({
    cap: input.cap,
    configAfterIter: input.configAfterIter,
    bufs: [],
    last: null,
    loadIdx: 0,
    queued: 0,
    iterDone: false,
    written: 0,
    error: null,
  }),
  states: {
    queuing: {
      description: 'Before MIG_CMD_SWITCHOVER_START: packets are only stored.',
      on: { ...RECEIVE, START: { target: 'loading' }, ABORT: { target: 'aborted' } },
    },
    loading: {
      description: 'The load thread writes buffers in index order; it waits when the next one is missing.',
      on: {
        ...RECEIVE,
        WROTE: { guard: 'nextBufferReady', actions: 'wrote' },
        WRITE_FAILED: { guard: 'nextBufferReady', target: 'failed', actions: 'writeFailed' },
        LOAD_CONFIG: { guard: 'configLoadable', target: 'loaded' },
        ABORT: { target: 'aborted', actions: 'cancelled' },
      },
    },
    loaded: {
      description: 'Every buffer written and the config loaded: the thread exited (the store still takes packets until cleanup).',
      on: RECEIVE,
    },
    failed: { type: 'final', description: 'A receive check or a write failed: the load fails.' },
    aborted: { type: 'final', description: 'Cleaned up before it finished.' },
  },
});

/** The destination's handle on one device's multifd load: the machine's state and context. */
export interface MultifdLoadRecord {
  readonly state: 'queuing' | 'loading' | 'loaded' | 'failed' | 'aborted';
  readonly context: MultifdLoadContext;
}

export function initialLoad(input: MultifdLoadInput): MultifdLoadRecord {
  const [snap] = initialTransition(multifdLoadMachine, input);
  return { state: snap.value as MultifdLoadRecord['state'], context: snap.context };
}

let scope: AnyActorScope | null = null;
const loadScope = (): AnyActorScope => (scope ??= inertScope(multifdLoadMachine, { cap: null, configAfterIter: false }));

/** One step of the store or the load thread. */
export function loadCall(rec: MultifdLoadRecord, event: MultifdLoadEvent): MultifdLoadRecord {
  const snap = multifdLoadMachine.resolveState({ value: rec.state, context: rec.context });
  const next = multifdLoadMachine.transition(snap, event, loadScope());
  return { state: next.value as MultifdLoadRecord['state'], context: next.context };
}

/** Whether the machine takes `event` now (a load-thread step is enabled). */
export function loadCan(rec: MultifdLoadRecord, event: MultifdLoadEvent): boolean {
  return multifdLoadMachine.resolveState({ value: rec.state, context: rec.context }).can(event);
}

/** The units of the buffer the load thread writes next (it must be ready). */
export const nextBufferUnits = (rec: MultifdLoadRecord): number => rec.context.bufs[rec.context.loadIdx] as number;

export type MultifdLoadMachine = typeof multifdLoadMachine;
