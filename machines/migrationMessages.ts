/**
 * The messages between the two QEMUs, spelled as in QEMU, each with its direction. The main stream
 * carries the source's sections and commands to the destination, in order; the return path carries the
 * destination's replies back. Payloads are abstracted: a device's data is counted in units, not bytes.
 *
 * Follows migration/savevm.c (MIG_CMD_*), migration/migration.h (enum mig_rp_message_type) and
 * hw/vfio/vfio-migration-internal.h (VFIO_MIG_FLAG_*); see shared/reference/qemu-migration.md §a–§c.
 */

/** Source → destination, main stream. */
export type MainStreamMessage =
  /**
   * The stream header and the start of `qemu_loadvm_state` (destination: setup → active, load setup).
   * `attempt` numbers the source's migrations (0 first; a retry after failed or cancelled opens a new
   * connection): not on the wire, it stands for the connection, so a new destination process can tell
   * the leftovers of a dead connection from its own stream.
   */
  | { type: 'MIG_STREAM_HEADER'; attempt: number }
  /** MIG_CMD_OPEN_RETURN_PATH: the destination opens its return path. */
  | { type: 'MIG_CMD_OPEN_RETURN_PATH' }
  /**
   * VFIO_MIG_FLAG_DEV_INIT_DATA_SENT (0xffffffffef100005): device `device` has sent its initial data.
   * `gen` is a ghost field (not on the wire): which generation of initial data it closes, for property S1.
   */
  | { type: 'VFIO_MIG_FLAG_DEV_INIT_DATA_SENT'; device: number; gen: number }
  /** MIG_CMD_SWITCHOVER_START (send-switchover-start, default on). */
  | { type: 'MIG_CMD_SWITCHOVER_START' }
  /**
   * VFIO_MIG_FLAG_DEV_DATA_STATE: `units` of device `device`'s data — a precopy chunk (vfio_save_block
   * in vfio_save_iterate) or its whole final STOP_COPY stream (vfio_save_complete_precopy). The
   * destination writes either into its RESUMING data_fd (vfio_load_state → vfio_load_buffer).
   */
  | { type: 'VFIO_DEVICE_STATE'; device: number; units: number }
  /**
   * QEMU_VM_EOF: the end of the migration stream. `guest` is what the global_state section sent just
   * before it says: the run state the source had before the switchover stop (global_state_store), which
   * decides whether the destination may start the guest (process_incoming_migration_bh).
   */
  | { type: 'QEMU_VM_EOF'; guest: 'running' | 'paused' }
  /** The source shut the stream of migration `attempt` down (cancel or error); the destination's load fails. */
  | { type: 'STREAM_SHUTDOWN'; attempt: number }
  /**
   * VFIO_MIG_FLAG_END_OF_STATE alone (vfio_multifd_emit_dummy_eos): with multifd device-state transfer the
   * device's sections on the main stream are empty — the data goes over the multifd channels.
   */
  | { type: 'VFIO_MIG_FLAG_END_OF_STATE'; device: number }
  /**
   * VFIO_MIG_FLAG_DEV_CONFIG_LOAD_READY (0xffffffffef100006, QEMU 10.1+): sent by vfio_save_state in the
   * non-iterable phase instead of the dummy END_OF_STATE when x-migration-load-config-after-iter is on; the
   * destination's load thread loads the config only after it.
   */
  | { type: 'VFIO_MIG_FLAG_DEV_CONFIG_LOAD_READY'; device: number }
  /**
   * RAM_SAVE_FLAG_MULTIFD_FLUSH (migration/multifd-nocomp.c multifd_ram_flush_and_sync): follows a SYNC
   * packet on every multifd channel; the destination's main thread waits until every channel has reached
   * its SYNC (multifd_recv_sync_main) before it reads on.
   */
  | { type: 'RAM_SAVE_FLAG_MULTIFD_FLUSH' };

/**
 * A packet on multifd channel k (its event type is `MULTIFD_k`; migration/multifd.c). A device-state
 * packet (multifd_queue_device_state, hw/vfio/migration-multifd.c VFIODeviceStatePacket) carries a chunk
 * of one device's STOP_COPY stream with its index, or — flag VFIO_DEVICE_STATE_CONFIG_STATE — the device's
 * config, always last; `units` abstracts its length. `SYNC` is MULTIFD_FLAG_SYNC; `EOF` stands for the
 * channel's connection ending (the source shut it down, or the network broke it) after what it carried.
 */
export type MultifdPacket =
  | { readonly kind: 'device-state'; readonly device: number; readonly idx: number; readonly units: number; readonly config: boolean }
  | { readonly kind: 'SYNC' }
  | { readonly kind: 'EOF' };
export interface MultifdChannelMessage {
  readonly type: MultifdChannelType;
  readonly packet: MultifdPacket;
}
/** The event type of multifd channel k's messages. */
export type MultifdChannelType = `MULTIFD_${number}`;
export const multifdChannelType = (k: number): MultifdChannelType => `MULTIFD_${k}`;
/** The most multifd channels the model takes (QEMU's multifd-channels goes to 255; the checker's bound). */
export const MAX_MULTIFD_CHANNELS = 4;

/** Destination → source, return path. */
export type ReturnPathMessage =
  /** MIG_RP_MSG_SWITCHOVER_ACK (type 7, no payload), on the return path of migration `attempt`. */
  | { type: 'MIG_RP_MSG_SWITCHOVER_ACK'; attempt: number }
  /**
   * The destination closed its end of the return path: when its load is over, or with `error` when it
   * failed. The source's completion waits for it (close_return_path_on_source; an error fails the
   * migration).
   */
  | { type: 'RP_SHUTDOWN'; error: boolean; attempt: number };

export const MAIN_STREAM_MESSAGES: readonly MainStreamMessage['type'][] = [
  'MIG_STREAM_HEADER',
  'MIG_CMD_OPEN_RETURN_PATH',
  'VFIO_MIG_FLAG_DEV_INIT_DATA_SENT',
  'MIG_CMD_SWITCHOVER_START',
  'VFIO_DEVICE_STATE',
  'QEMU_VM_EOF',
  'STREAM_SHUTDOWN',
  'VFIO_MIG_FLAG_END_OF_STATE',
  'VFIO_MIG_FLAG_DEV_CONFIG_LOAD_READY',
  'RAM_SAVE_FLAG_MULTIFD_FLUSH',
];

/**
 * The destination's receive threads failed and shut every multifd channel down
 * (multifd_recv_terminate_threads → qio_channel_shutdown): a source still sending on them gets an error
 * and fails (migrate_set_error). Not a message QEMU sends: it stands for the shut sockets, on the
 * connection of migration `attempt`.
 */
export interface MultifdChannelsShut {
  readonly type: 'MULTIFD_CHANNELS_SHUT';
  readonly attempt: number;
}

export const RETURN_PATH_MESSAGES: readonly ReturnPathMessage['type'][] = ['MIG_RP_MSG_SWITCHOVER_ACK', 'RP_SHUTDOWN'];

/**
 * switchover-ack on one host: off, the one-shot ack of QEMU ≤ 11.0 ('legacy': the destination counts
 * the devices that need it and sends a single ack), or QEMU 11.1's per-device ack ('per-device': the
 * source counts outstanding requests, the destination acks each approved device).
 */
export type AckMode = 'off' | 'legacy' | 'per-device';
