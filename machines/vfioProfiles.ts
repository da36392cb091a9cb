/**
 * Driver profiles: what a particular VFIO migration driver does where the uAPI leaves it free — data
 * sizes, what a read returns at the end of precopy data, which errno a disabled fd gives, how resuming
 * data is checked, whether dirty data is ever tracked. The device machine (./vfioDevice.ts) takes a
 * profile as input; the state set, the arcs and the path resolution (./vfioArcs.ts) are the same for
 * every driver, because `vfio_mig_get_next_state()` in drivers/vfio/vfio_main.c decides them.
 *
 *  - `generic`: the uAPI as include/uapi/linux/vfio.h states it, in abstract units (one unit a chunk):
 *    ENOMSG at the temporary end of precopy data, EBADF on any fd the driver does not serve, no checks
 *    on resuming data, faults injectable on every arc. What `vfio table` and the QEMU models use.
 *  - `mtty`: samples/vfio-mdev/mtty.c (Linux 6.7+, read at v6.12), the sample mdev the real-kernel
 *    suite runs (src/kernel/). Its numbers are bytes.
 *
 * @example
 *   import { GENERIC_PROFILE, mttyProfile } from 'migration-statecharts/machines/vfio-profiles';
 *   // the 24-byte header and 36 bytes for each of the two ports
 *   mttyProfile(2).resuming?.imageBytes; // => 96
 */

/** What a read of a live saving fd returns once the precopy data currently available is drained. */
export type PrecopyDrained = 'ENOMSG' | 'EOF';

export interface VfioResumingRules {
  /** Bytes of a complete saved image; RESUMING → STOP with fewer written fails. */
  readonly imageBytes: number;
  /** Bytes of the image's header; the write that completes it checks it. */
  readonly headerBytes: number;
  /** errno of a write whose end would pass `imageBytes` (nothing is taken in). */
  readonly overflowErrno: 'ENOMEM';
  /** errno of the write that completes a header which fails the check. */
  readonly badHeaderErrno: 'EFAULT';
  /**
   * The bytes of a write that failed the header check still count as written (mtty_resume_write adds
   * `len` to `filled_size` after setting -EFAULT), and the load (mtty_load_state) checks only the size,
   * so a zeroed image of the right size loads. A driver quirk, pinned by the real-kernel suite.
   */
  readonly countsRejectedBytes: boolean;
  /** errno of RESUMING → STOP with too few bytes written (mtty_load_state); the device stays in RESUMING. */
  readonly shortLoadErrno: 'EINVAL';
}

export interface VfioProfile {
  readonly id: 'generic' | 'mtty';
  readonly description: string;
  /** Where its behaviour comes from (upstream file and functions). */
  readonly source: string;
  /** PRECOPY_INFO initial_bytes of a new saving session; null: the device input's `maxBytes`. */
  readonly initialBytes: number | null;
  /** What the stopped device adds to the saving stream when it enters STOP_COPY. */
  readonly finalBytes: number;
  /** Bytes one DATA_FD_READ asks for (the read(2) length). */
  readonly readChunk: number;
  /** Bytes one DATA_FD_WRITE writes. */
  readonly writeChunk: number;
  readonly precopyDrained: PrecopyDrained;
  /** The driver tracks device changes made by the running guest (dirty_bytes ever rises). */
  readonly tracksDirty: boolean;
  /**
   * The model follows the user's own fd: the last data_fd a SET returned stays open, and is disabled
   * (not closed) when its session ends, until DATA_FD_CLOSE. Without it the model answers every data_fd
   * call from the session the driver serves, as QEMU uses the fds.
   */
  readonly userFds: boolean;
  /** errno of read/write/PRECOPY_INFO on an fd whose session the driver ended ('disabled'). */
  readonly disabledFdErrno: 'EBADF' | 'ENODEV';
  /** Resuming data checks, or null for none (every write is taken in). */
  readonly resuming: VfioResumingRules | null;
  /** VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: a fixed figure, or null for "what STOP_COPY would stream now". */
  readonly stopCopyLength: number | null;
  /** Driver failures can be injected into SET arcs (the model's `fault`); a real driver fails only for real. */
  readonly injectableFaults: boolean;
  /** The driver implements the PRECOPY_INFOv2 opt-in and REINIT (Linux 7.1, d7140b5dde45). */
  readonly supportsPrecopyInfoV2: boolean;
}

/** The uAPI itself, in units: today's model, what `vfio table` and the QEMU machines use. */
export const GENERIC_PROFILE: VfioProfile = {
  id: 'generic',
  description: 'The uAPI as include/uapi/linux/vfio.h defines it, in abstract units',
  source: 'include/uapi/linux/vfio.h: the migration FSM comment, struct vfio_precopy_info',
  initialBytes: null,
  finalBytes: 1,
  readChunk: 1,
  writeChunk: 1,
  precopyDrained: 'ENOMSG',
  tracksDirty: true,
  userFds: false,
  disabledFdErrno: 'EBADF',
  resuming: null,
  stopCopyLength: null,
  injectableFaults: true,
  supportsPrecopyInfoV2: true,
};

/** Bytes of `struct mtty_data` before its ports: magic (u64), major, minor, nr_ports, flags (u32 each). */
export const MTTY_HEADER_BYTES = 24;
/** `sizeof(struct serial_port)` on x86-64 (measured: mtty-2 saves 96 bytes, mtty-1 60). */
export const MTTY_PORT_BYTES = 36;

/**
 * samples/vfio-mdev/mtty.c with `ports` serial ports (mdev types mtty-1 and mtty-2):
 *  - mtty_save_device_data: a new saving fd (O_RDONLY) holds the header only; entering STOP_COPY appends
 *    the ports (mtty_save_state) to the same file, so PRE_COPY_P2P → STOP_COPY returns data_fd -1;
 *  - mtty_precopy_ioctl: EINVAL outside PRE_COPY(_P2P), ENODEV on a disabled file, initial_bytes =
 *    filled − read position, dirty_bytes = 0, flags never written (so 0 comes back);
 *  - mtty_save_read: ENODEV when disabled, else at most what is filled, 0 at the end (no ENOMSG);
 *  - mtty_resume_write: ENOMEM past the image size, ENODEV when disabled, EFAULT on the write that
 *    completes a bad header (its bytes still counted); mtty_load_state: EINVAL when short;
 *  - mtty_disable_files (every session-ending arc, reset, close): the fds stay open but answer ENODEV;
 *  - mtty_get_data_size: always the image size; mtty_reset: RUNNING, files disabled;
 *  - no step can fail except the load, and none leads to ERROR.
 * Reads ask for 32 bytes, writes give 32: 96 bytes are three chunks, and the header is crossed by the
 * first write (so its check is exercised) — the chunk sizes are the suite's choice, not the driver's.
 */
export function mttyProfile(ports: 1 | 2 = 2): VfioProfile {
  const image = MTTY_HEADER_BYTES + ports * MTTY_PORT_BYTES;
  return {
    id: 'mtty',
    description: `samples/vfio-mdev/mtty.c, mdev type mtty-${ports} (${image}-byte image)`,
    source: 'samples/vfio-mdev/mtty.c: mtty_step_state, mtty_save_read, mtty_precopy_ioctl, mtty_resume_write, mtty_load_state',
    initialBytes: MTTY_HEADER_BYTES,
    finalBytes: ports * MTTY_PORT_BYTES,
    readChunk: 32,
    writeChunk: 32,
    precopyDrained: 'EOF',
    tracksDirty: false,
    userFds: true,
    disabledFdErrno: 'ENODEV',
    resuming: {
      imageBytes: image,
      headerBytes: MTTY_HEADER_BYTES,
      overflowErrno: 'ENOMEM',
      badHeaderErrno: 'EFAULT',
      countsRejectedBytes: true,
      shortLoadErrno: 'EINVAL',
    },
    stopCopyLength: image,
    injectableFaults: false,
    supportsPrecopyInfoV2: false,
  };
}

export const PROFILE_IDS = ['generic', 'mtty'] as const;
export type ProfileId = (typeof PROFILE_IDS)[number];

/** The profile a name stands for (`mtty` is mtty-2, the type the real-kernel suite creates). */
export function profileById(id: ProfileId): VfioProfile {
  return id === 'mtty' ? mttyProfile(2) : GENERIC_PROFILE;
}
