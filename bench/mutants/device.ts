/**
 * An independent reference implementation of a VFIO migration device (protocol v2), transcribed from the
 * uAPI fact sheet (include/uapi/linux/vfio.h, drivers/vfio/vfio_main.c) and the abstraction contract of
 * the model's "generic" profile (bytes are abstract units) — deliberately NOT derived from
 * machines/vfio*.ts, so that running the generated suites against it is a second, honest transcription.
 *
 * Every rule is a protected method, so a mutant (bench/mutants/mutants.ts) is a subclass overriding one
 * of them in a few lines. The public API is shaped like the uAPI: `setState` is the SET of
 * VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE run by a driver's `while (new != cur)` loop around
 * `vfio_mig_get_next_state()`, `getState` its GET, `reset` VFIO_DEVICE_RESET, `precopyInfo`
 * VFIO_MIG_GET_PRECOPY_INFO on the saving data_fd, `migDataSize` VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
 * `read`/`write` one unit on the data_fd, `guestDirties`/`guestReinits` what the guest does to the device.
 */

// enum vfio_device_mig_state
export const ERROR = 0;
export const STOP = 1;
export const RUNNING = 2;
export const STOP_COPY = 3;
export const RESUMING = 4;
export const RUNNING_P2P = 5;
export const PRE_COPY = 6;
export const PRE_COPY_P2P = 7;
export const VFIO_DEVICE_STATE_NR = 8;

export const STATE_NAMES = ['ERROR', 'STOP', 'RUNNING', 'STOP_COPY', 'RESUMING', 'RUNNING_P2P', 'PRE_COPY', 'PRE_COPY_P2P'] as const;
export type StateName = (typeof STATE_NAMES)[number];

// struct vfio_device_feature_migration flags
export const VFIO_MIGRATION_STOP_COPY = 1 << 0;
export const VFIO_MIGRATION_P2P = 1 << 1;
export const VFIO_MIGRATION_PRE_COPY = 1 << 2;

/** `state_flags_table`: the feature bits a state needs (ERROR needs ~0U, which no device has). */
export const STATE_FLAGS_TABLE: readonly number[] = [
  /* ERROR        */ 0xffffffff,
  /* STOP         */ VFIO_MIGRATION_STOP_COPY,
  /* RUNNING      */ VFIO_MIGRATION_STOP_COPY,
  /* STOP_COPY    */ VFIO_MIGRATION_STOP_COPY,
  /* RESUMING     */ VFIO_MIGRATION_STOP_COPY,
  /* RUNNING_P2P  */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
  /* PRE_COPY     */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
  /* PRE_COPY_P2P */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
];

/**
 * `vfio_from_fsm_table[cur][new]`: the next state on the way from cur to new. Rows are cur, columns new,
 * both in enum order ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P.
 * Transcribed from the sheet's precedence rules (§4, §5): RESUMING is entered and left only via STOP;
 * STOP_COPY is entered from STOP or PRE_COPY_P2P (PRE_COPY goes through PRE_COPY_P2P, skipped without
 * P2P), left only to STOP, and never to PRE_COPY(_P2P); RUNNING↔STOP goes through RUNNING_P2P; leaving
 * the saving group from PRE_COPY goes through RUNNING, from PRE_COPY_P2P through RUNNING_P2P; saving is
 * always opened by the last arc (RUNNING→PRE_COPY, RUNNING_P2P→PRE_COPY_P2P, STOP→STOP_COPY).
 */
const E = ERROR, S = STOP, R = RUNNING, SC = STOP_COPY, RS = RESUMING, RP = RUNNING_P2P, PC = PRE_COPY, PP = PRE_COPY_P2P;
export const VFIO_FROM_FSM_TABLE: readonly (readonly number[])[] = [
  /*                 E  S   R   SC  RS  RP  PC  PP */
  /* ERROR        */ [E, E, E, E, E, E, E, E],
  /* STOP         */ [E, S, RP, SC, RS, RP, RP, RP],
  /* RUNNING      */ [E, RP, R, RP, RP, RP, PC, RP],
  /* STOP_COPY    */ [E, S, S, SC, S, S, E, E],
  /* RESUMING     */ [E, S, S, S, RS, S, S, S],
  /* RUNNING_P2P  */ [E, S, R, S, S, RP, R, PP],
  /* PRE_COPY     */ [E, R, R, PP, R, R, PC, PP],
  /* PRE_COPY_P2P */ [E, RP, RP, SC, RP, RP, PC, PP],
];

export const SAVING_GROUP: readonly number[] = [PRE_COPY, PRE_COPY_P2P, STOP_COPY];
export const isSaving = (s: number): boolean => SAVING_GROUP.includes(s);
export const isPrecopy = (s: number): boolean => s === PRE_COPY || s === PRE_COPY_P2P;

export type FdKind = 'saving' | 'resuming';
export interface Fault {
  /** Index of the arc of the path that fails (0 = the first). */
  readonly atArc: number;
  /** Where the failed arc leaves the device: in the state before it ('reached'), or in ERROR. */
  readonly leaves: 'reached' | 'ERROR';
}
export type SetResult = { ret: 0; dataFd: FdKind | null; path: number[] } | { ret: -1; errno: string; path: number[] };
export type IoResult = { ok: true; bytes: number } | { ok: false; errno: string };
export type PrecopyInfoResult = { ok: true; initialBytes: number; dirtyBytes: number; reinit: boolean } | { ok: false; errno: string };
export interface DataSizeResult {
  ok: true;
  stopCopyLength: number;
}

export interface DeviceConfig {
  /** VFIO_MIGRATION_* bits; STOP_COPY is mandatory (1, 3, 5 or 7). */
  readonly flags: number;
  /** VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 set by the user (honoured only with PRE_COPY). */
  readonly precopyInfoV2: boolean;
  /** The abstract size of the device state, in units. */
  readonly maxBytes: number;
}

/** The result of the kernel helper: the next state, or an errno. */
export type NextState = { next: number } | { errno: string };
/** The result of resolving a whole request: the states visited (start included), or an errno. */
export type Resolved = { path: number[] } | { errno: string };

const fail = (errno: string) => ({ ok: false as const, errno });

export class ReferenceDevice {
  readonly flags: number;
  readonly precopyInfoV2: boolean;
  readonly maxBytes: number;

  protected state = RUNNING;
  /** The open data_fd session the driver serves (null: none, or every fd the user holds is disabled). */
  protected session: FdKind | null = null;
  protected initial = 0;
  protected dirty = 0;
  protected stopCopy = 0;
  protected loaded = 0;
  /** New initial data is on the stream and not yet reported (what firmware tells the driver). */
  protected reinitPending = false;

  constructor(cfg: DeviceConfig) {
    if ((cfg.flags & VFIO_MIGRATION_STOP_COPY) === 0 || cfg.flags < 0 || cfg.flags > 7) {
      throw new Error(`flags ${cfg.flags}: STOP_COPY is mandatory (vfio_pci_core_register_device)`);
    }
    this.flags = cfg.flags;
    this.precopyInfoV2 = cfg.precopyInfoV2;
    this.maxBytes = cfg.maxBytes;
  }

  // ---------------------------------------------------------------- state transitions (SET / GET)

  /** VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, GET. */
  getState(): number {
    return this.state;
  }

  /** VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, SET: the whole transition, arc by arc; `fault` fails one arc. */
  setState(n: number, fault?: Fault): SetResult {
    const cur = this.state;
    const bad = this.checkTarget(n);
    if (bad !== null) return { ret: -1, errno: bad, path: [cur] };
    const r = this.resolve(cur, n);
    if ('errno' in r) return { ret: -1, errno: r.errno, path: [cur] };
    const path = r.path;
    const arcs = path.length - 1;
    if (fault && fault.atArc >= 0 && fault.atArc < arcs) return this.failAt(path, fault);
    for (let i = 0; i < arcs; i++) this.applyArc(path[i]!, path[i + 1]!);
    this.state = path[arcs]!;
    return { ret: 0, dataFd: arcs === 0 ? this.noopFd(cur) : this.arcFd(path[arcs - 1]!, path[arcs]!), path };
  }

  /** Targets rejected before the driver loop runs (none in the reference: the helper rejects them). */
  protected checkTarget(n: number): string | null {
    return Number.isInteger(n) && n >= 0 ? null : 'EINVAL';
  }

  /** The driver's loop: `while (new != cur) { next = helper(cur, new); commit(next); }`. */
  protected resolve(cur: number, n: number): Resolved {
    const path = [cur];
    let at = cur;
    while (this.loopContinues(at, n)) {
      const r = this.getNextState(at, n);
      if ('errno' in r) return { errno: r.errno };
      at = r.next;
      path.push(at);
      if (path.length > 2 * VFIO_DEVICE_STATE_NR) return { errno: 'EINVAL' }; // a table bug would loop
    }
    return { path };
  }

  /** The loop condition; the reference never calls the helper for new == cur (so ERROR→ERROR is 0). */
  protected loopContinues(at: number, n: number): boolean {
    return at !== n;
  }

  /** `mig_get_next_state` flags test: the device has every feature bit the state needs. */
  protected supported(s: number): boolean {
    const need = STATE_FLAGS_TABLE[s];
    return need !== undefined && (this.flags & need) === need;
  }

  /** `vfio_from_fsm_table[cur][n]`. */
  protected fsm(cur: number, n: number): number {
    return VFIO_FROM_FSM_TABLE[cur]![n]!;
  }

  /** `vfio_mig_get_next_state()` (with the loop fix a26b499b757c), §7 of the sheet. */
  protected getNextState(cur: number, n: number): NextState {
    if (cur >= VFIO_DEVICE_STATE_NR || !this.supported(cur)) return { errno: 'EINVAL' }; // WARN_ON
    if (n >= VFIO_DEVICE_STATE_NR || !this.supported(n) || n === ERROR) return { errno: 'EINVAL' };
    let next = this.fsm(cur, n);
    while (next !== ERROR && !this.supported(next)) next = this.fsm(next, n);
    return next === ERROR ? { errno: 'EINVAL' } : { next };
  }

  /** The data_fd a SET returns when `from→to` is its last arc. */
  protected arcFd(from: number, to: number): FdKind | null {
    if (this.opensSaving(from, to)) return 'saving';
    if (this.opensResuming(from, to)) return 'resuming';
    return null;
  }

  /** The data_fd of a SET to the current state (no arc: -1). */
  protected noopFd(_cur: number): FdKind | null {
    return null;
  }

  protected opensSaving(from: number, to: number): boolean {
    return isSaving(to) && !isSaving(from);
  }

  protected opensResuming(from: number, to: number): boolean {
    return from === STOP && to === RESUMING;
  }

  protected endsSession(from: number, to: number): boolean {
    return (isSaving(from) && !isSaving(to)) || (from === RESUMING && to !== RESUMING);
  }

  protected entersStopCopy(from: number, to: number): boolean {
    return to === STOP_COPY && from !== STOP_COPY;
  }

  /** One arc's effect on the sessions and counters. */
  protected applyArc(from: number, to: number): void {
    if (this.endsSession(from, to)) this.endSession();
    if (this.opensSaving(from, to)) this.openSaving();
    if (this.opensResuming(from, to)) this.openResuming();
    if (this.entersStopCopy(from, to)) this.enterStopCopy();
  }

  protected openSaving(): void {
    this.session = 'saving';
    this.initial = this.maxBytes;
    this.dirty = 0;
    this.reinitPending = false;
  }

  protected openResuming(): void {
    this.session = 'resuming';
    this.loaded = 0;
  }

  protected endSession(): void {
    this.session = null;
    this.initial = 0;
    this.dirty = 0;
    this.stopCopy = 0;
    this.reinitPending = false;
  }

  /** The device stops: what is left of the precopy data plus the final state (one unit) is streamed. */
  protected enterStopCopy(): void {
    this.stopCopy = this.stopCopyLengthAtEntry();
    this.initial = 0;
    this.dirty = 0;
    this.reinitPending = false;
  }

  protected stopCopyLengthAtEntry(): number {
    return this.initial + this.dirty + 1;
  }

  // ---------------------------------------------------------------- failures

  /** A SET whose arc `fault.atArc` fails: the arcs before it are committed, then the failure. */
  protected failAt(path: readonly number[], fault: Fault): SetResult {
    const k = fault.atArc;
    for (let i = 0; i < k; i++) this.applyArc(path[i]!, path[i + 1]!);
    this.state = path[k]!;
    this.leaveFailedArc(path, k, fault.leaves);
    return { ret: -1, errno: this.faultErrno(), path: this.faultPath(path, k) };
  }

  /** Where the device is after arc k failed: still in path[k], or in ERROR (sessions ended). */
  protected leaveFailedArc(_path: readonly number[], _k: number, leaves: Fault['leaves']): void {
    if (leaves === 'ERROR') this.enterError();
  }

  protected enterError(): void {
    this.state = ERROR;
    this.endSession();
  }

  protected faultErrno(): string {
    return 'EIO';
  }

  /** The states the failed SET went through: the start and every committed arc's end. */
  protected faultPath(path: readonly number[], k: number): number[] {
    return path.slice(0, k + 1);
  }

  // ---------------------------------------------------------------- VFIO_DEVICE_RESET

  reset(): void {
    this.state = this.resetState();
    this.resetSessions();
  }

  protected resetState(): number {
    return RUNNING;
  }

  protected resetSessions(): void {
    this.endSession();
    this.loaded = 0;
  }

  // ---------------------------------------------------------------- VFIO_MIG_GET_PRECOPY_INFO

  precopyInfo(): PrecopyInfoResult {
    if (!this.precopyInfoAllowed()) return fail('EINVAL');
    const r = { ok: true as const, initialBytes: this.initial, dirtyBytes: this.dirty, reinit: this.reportsReinit() };
    this.afterPrecopyInfo();
    return r;
  }

  protected precopyInfoAllowed(): boolean {
    return isPrecopy(this.state) && this.session === 'saving';
  }

  /** The user's opt-in counts only on a PRE_COPY device (the core refuses it otherwise). */
  protected v2(): boolean {
    return this.precopyInfoV2 && (this.flags & VFIO_MIGRATION_PRE_COPY) !== 0;
  }

  protected reportsReinit(): boolean {
    return this.v2() && this.reinitPending;
  }

  protected afterPrecopyInfo(): void {
    this.reinitPending = false;
  }

  // ---------------------------------------------------------------- VFIO_DEVICE_FEATURE_MIG_DATA_SIZE

  migDataSize(): DataSizeResult {
    return { ok: true, stopCopyLength: this.dataSize() };
  }

  protected dataSize(): number {
    if (isPrecopy(this.state)) return this.initial + this.dirty + 1;
    if (this.state === STOP_COPY) return this.stopCopy;
    return this.maxBytes + 1;
  }

  // ---------------------------------------------------------------- data_fd read / write

  /** read(2) of `len` units; a zero-length read moves nothing and answers whether the session is served. */
  read(len = 1): IoResult {
    if (this.session !== 'saving') return fail('EBADF');
    if (len === 0) return { ok: true, bytes: 0 };
    if (isPrecopy(this.state)) return this.readPrecopy();
    if (this.state === STOP_COPY) return this.readStopCopy();
    return this.readStale();
  }

  /** Initial data first, then dirty data; both 0: a temporary end of stream (ENOMSG). */
  protected readPrecopy(): IoResult {
    if (this.initial > 0) {
      this.initial--;
      return { ok: true, bytes: 1 };
    }
    if (this.dirty > 0) {
      this.dirty--;
      return { ok: true, bytes: 1 };
    }
    return fail('ENOMSG');
  }

  /** The final state; read() returning 0 is the permanent EOF. */
  protected readStopCopy(): IoResult {
    if (this.stopCopy > 0) {
      this.stopCopy--;
      return { ok: true, bytes: 1 };
    }
    return { ok: true, bytes: 0 };
  }

  /**
   * A saving session the driver failed to end (only mutants get here): the fd still serves whatever
   * the driver buffered, then EOF.
   */
  protected readStale(): IoResult {
    for (const k of ['initial', 'dirty', 'stopCopy'] as const) {
      if (this[k] > 0) {
        this[k]--;
        return { ok: true, bytes: 1 };
      }
    }
    return { ok: true, bytes: 0 };
  }

  /** write(2) of `len` units of a saved image; zero-length: as read(0). */
  write(len = 1): IoResult {
    if (this.session !== 'resuming') return fail('EBADF');
    if (len === 0) return { ok: true, bytes: 0 };
    this.loaded = Math.min(this.loaded + 1, this.loadedCap());
    return { ok: true, bytes: 1 };
  }

  protected loadedCap(): number {
    return 2 * this.maxBytes + 1;
  }

  // ---------------------------------------------------------------- the guest

  guestDirties(): void {
    if (this.tracksDirty()) this.dirty = Math.min(this.dirty + 1, this.maxBytes);
  }

  /** Dirty tracking runs in precopy only. */
  protected tracksDirty(): boolean {
    return isPrecopy(this.state);
  }

  /** The guest reconfigures the device: with the v2 opt-in new initial data (REINIT), else all dirty. */
  guestReinits(): void {
    if (!isPrecopy(this.state)) return;
    this.reinitPending = true;
    if (this.v2()) {
      this.initial = this.maxBytes;
      this.dirty = 0;
    } else {
      this.dirty = this.maxBytes;
    }
  }
}

export const stateName = (s: number): string => STATE_NAMES[s] ?? String(s);
