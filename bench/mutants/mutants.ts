/**
 * Mutants of the reference device: each a small, named deviation from the uAPI contract that a driver or
 * orchestrator author could make, as a subclass of ReferenceDevice overriding one rule.
 *
 * `equivalent: true` marks a mutant no test can tell from the reference through the uAPI (the reason
 * says why); bench/mutants/equivalence.ts checks every claim exhaustively per configuration, and also
 * finds where a mutant is equivalent only in some configurations (a P2P bug on a device without P2P).
 */
import {
  type DeviceConfig,
  type FdKind,
  type Fault,
  type IoResult,
  type Resolved,
  ERROR,
  PRE_COPY,
  PRE_COPY_P2P,
  RESUMING,
  RUNNING,
  RUNNING_P2P,
  ReferenceDevice,
  STOP,
  STOP_COPY,
  VFIO_DEVICE_STATE_NR,
  isPrecopy,
  isSaving,
} from './device.js';

export type BugClass = 'path' | 'data_fd' | 'precopy-info' | 'reinit' | 'data-size' | 'errno' | 'error-state' | 'reset' | 'fault' | 'target-range';

export interface Mutant {
  readonly id: string;
  readonly description: string;
  readonly bugClass: BugClass;
  /** No uAPI observation can tell it from the reference (see `reason`). */
  readonly equivalent?: true;
  readonly reason?: string;
  make(cfg: DeviceConfig): ReferenceDevice;
}

type DeviceClass = new (cfg: DeviceConfig) => ReferenceDevice;
const mutant = (id: string, bugClass: BugClass, description: string, cls: DeviceClass, extra: { equivalent?: true; reason?: string } = {}): Mutant => ({
  id,
  bugClass,
  description,
  ...extra,
  make: (cfg) => new cls(cfg),
});

/** A mutant whose only change is entries of vfio_from_fsm_table. */
const table = (entries: readonly [from: number, to: number, next: number][]): DeviceClass =>
  class extends ReferenceDevice {
    protected override fsm(cur: number, n: number): number {
      return entries.find(([f, t]) => f === cur && t === n)?.[2] ?? super.fsm(cur, n);
    }
  };

export const MUTANTS: readonly Mutant[] = [
  // ------------------------------------------------------------------ path resolution / the arc table
  mutant(
    'stopcopy-to-precopy-allowed',
    'path',
    'STOP_COPY→PRE_COPY and STOP_COPY→PRE_COPY_P2P accepted as arcs (the blocked arcs of §4; "resume precopy after a failed switchover")',
    table([
      [STOP_COPY, PRE_COPY, PRE_COPY],
      [STOP_COPY, PRE_COPY_P2P, PRE_COPY_P2P],
    ]),
  ),
  mutant('running-stopcopy-skips-p2p', 'path', 'RUNNING→STOP_COPY goes RUNNING→STOP→STOP_COPY on a P2P device (no quiesce before stopping)', table([[RUNNING, STOP_COPY, STOP]])),
  mutant('running-stop-skips-p2p', 'path', 'RUNNING→STOP is a direct arc on a P2P device (RUNNING_P2P skipped)', table([[RUNNING, STOP, STOP]])),
  mutant(
    'resuming-running-skips-p2p',
    'path',
    "RESUMING→RUNNING resolved as RESUMING→STOP→RUNNING on a P2P device (an orchestrator's hand-written path)",
    class extends ReferenceDevice {
      protected override resolve(cur: number, n: number): Resolved {
        if (cur === RESUMING && n === RUNNING) return { path: [RESUMING, STOP, RUNNING] };
        return super.resolve(cur, n);
      }
    },
  ),
  mutant('precopy-stopcopy-direct-p2p', 'path', 'PRE_COPY→STOP_COPY is direct even with P2P (PRE_COPY_P2P skipped)', table([[PRE_COPY, STOP_COPY, STOP_COPY]])),
  mutant(
    'stop-precopy-skips-running',
    'path',
    'STOP→PRE_COPY goes RUNNING_P2P→PRE_COPY (or STOP→PRE_COPY without P2P), never through RUNNING',
    table([[RUNNING_P2P, PRE_COPY, PRE_COPY]]),
  ),
  mutant('precopy-p2p-running-direct', 'path', 'PRE_COPY_P2P→RUNNING is a direct arc (RUNNING_P2P skipped)', table([[PRE_COPY_P2P, RUNNING, RUNNING]])),

  // ------------------------------------------------------------------ data_fd sessions
  mutant(
    'stopcopy-stop-keeps-fd',
    'data_fd',
    'STOP_COPY→STOP does not end the saving session: the fd still reads in STOP',
    class extends ReferenceDevice {
      protected override endsSession(from: number, to: number): boolean {
        return from === STOP_COPY && to === STOP ? false : super.endsSession(from, to);
      }
    },
  ),
  mutant(
    'p2p-stopcopy-new-fd',
    'data_fd',
    'PRE_COPY_P2P→STOP_COPY returns a new saving fd (the same fd must continue)',
    class extends ReferenceDevice {
      protected override arcFd(from: number, to: number): FdKind | null {
        return from === PRE_COPY_P2P && to === STOP_COPY ? 'saving' : super.arcFd(from, to);
      }
    },
  ),
  mutant(
    'stopcopy-resuming-fd',
    'data_fd',
    'STOP→STOP_COPY returns the fd as a resuming fd (wrong fd kind)',
    class extends ReferenceDevice {
      protected override arcFd(from: number, to: number): FdKind | null {
        return from === STOP && to === STOP_COPY ? 'resuming' : super.arcFd(from, to);
      }
    },
  ),
  mutant(
    'reset-keeps-session',
    'data_fd',
    'VFIO_DEVICE_RESET clears the counters but leaves the open data_fd enabled (fd leak)',
    class extends ReferenceDevice {
      protected override resetSessions(): void {
        const s = this.session;
        super.resetSessions();
        this.session = s;
      }
    },
  ),
  mutant(
    'precopy-running-keeps-session',
    'data_fd',
    'PRE_COPY→RUNNING does not end the saving session (fd leak: it still reads in RUNNING)',
    class extends ReferenceDevice {
      protected override endsSession(from: number, to: number): boolean {
        return from === PRE_COPY && to === RUNNING ? false : super.endsSession(from, to);
      }
    },
  ),
  mutant(
    'resuming-stop-keeps-fd',
    'data_fd',
    'RESUMING→STOP does not end the resuming session: the fd still takes writes in STOP',
    class extends ReferenceDevice {
      protected override endsSession(from: number, to: number): boolean {
        return from === RESUMING && to === STOP ? false : super.endsSession(from, to);
      }
    },
  ),
  mutant(
    'noop-set-returns-fd',
    'data_fd',
    'SET to the current state returns the open session again as a new fd (data_fd must be -1)',
    class extends ReferenceDevice {
      protected override noopFd(cur: number): FdKind | null {
        return isSaving(cur) ? 'saving' : cur === RESUMING ? 'resuming' : null;
      }
    },
  ),
  mutant(
    'error-keeps-session',
    'data_fd',
    'A failure into ERROR does not disable the open data_fd (it still reads/writes in ERROR)',
    class extends ReferenceDevice {
      protected override enterError(): void {
        this.state = ERROR;
      }
    },
  ),

  // ------------------------------------------------------------------ PRECOPY_INFO
  mutant(
    'precopy-info-in-stop',
    'precopy-info',
    'VFIO_MIG_GET_PRECOPY_INFO accepted in STOP (reports 0/0) instead of EINVAL',
    class extends ReferenceDevice {
      protected override precopyInfoAllowed(): boolean {
        return this.state === STOP || super.precopyInfoAllowed();
      }
    },
  ),
  mutant(
    'initial-rises-on-dirty',
    'precopy-info',
    'Guest writes are counted into initial_bytes (which must only fall) instead of dirty_bytes',
    class extends ReferenceDevice {
      override guestDirties(): void {
        if (this.tracksDirty()) this.initial = Math.min(this.initial + 1, this.maxBytes);
      }
    },
  ),
  mutant(
    'dirty-not-drained',
    'precopy-info',
    'Reading dirty data does not decrease dirty_bytes (precopy never reaches its temporary EOF)',
    class extends ReferenceDevice {
      protected override readPrecopy(): IoResult {
        if (this.initial === 0 && this.dirty > 0) return { ok: true, bytes: 1 };
        return super.readPrecopy();
      }
    },
  ),

  // ------------------------------------------------------------------ REINIT (§10)
  mutant(
    'reinit-reported-twice',
    'reinit',
    'VFIO_PRECOPY_INFO_REINIT is not cleared once reported: every later PRECOPY_INFO reports it again',
    class extends ReferenceDevice {
      protected override afterPrecopyInfo(): void {}
    },
  ),
  mutant(
    'reinit-without-opt-in',
    'reinit',
    'REINIT reported without the VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 opt-in',
    class extends ReferenceDevice {
      protected override reportsReinit(): boolean {
        return this.reinitPending;
      }
    },
  ),
  mutant(
    'reinit-no-optin-raises-initial',
    'reinit',
    'Without the opt-in a reconfiguration still resets initial_bytes (a legacy user sees initial_bytes rise)',
    class extends ReferenceDevice {
      override guestReinits(): void {
        if (!isPrecopy(this.state)) return;
        this.reinitPending = true;
        this.initial = this.maxBytes;
        this.dirty = 0;
      }
    },
  ),
  mutant(
    'reinit-keeps-dirty',
    'reinit',
    'REINIT (with the opt-in) leaves dirty_bytes as it was (it must restart from 0)',
    class extends ReferenceDevice {
      override guestReinits(): void {
        const d = this.dirty;
        super.guestReinits();
        if (this.v2()) this.dirty = d;
      }
    },
  ),

  // ------------------------------------------------------------------ MIG_DATA_SIZE
  mutant(
    'data-size-precopy-static',
    'data-size',
    'MIG_DATA_SIZE in PRE_COPY(_P2P) reports the whole state (maxBytes+1), not what is left (initial+dirty+1)',
    class extends ReferenceDevice {
      protected override dataSize(): number {
        return isPrecopy(this.state) ? this.maxBytes + 1 : super.dataSize();
      }
    },
  ),
  mutant(
    'data-size-stopcopy-static',
    'data-size',
    'MIG_DATA_SIZE in STOP_COPY reports the length at entry, not what is left to read',
    class extends ReferenceDevice {
      protected atEntry = 0;
      protected override enterStopCopy(): void {
        super.enterStopCopy();
        this.atEntry = this.stopCopy;
      }
      protected override dataSize(): number {
        return this.state === STOP_COPY ? this.atEntry : super.dataSize();
      }
    },
  ),
  mutant(
    'stopcopy-forgets-precopy',
    'data-size',
    'Entering STOP_COPY restarts the whole state (maxBytes+1) instead of what precopy has not sent',
    class extends ReferenceDevice {
      protected override stopCopyLengthAtEntry(): number {
        return this.maxBytes + 1;
      }
    },
  ),
  mutant(
    'data-size-zero-outside-saving',
    'data-size',
    'MIG_DATA_SIZE reports 0 outside the saving group (it must estimate maxBytes+1 in every other state)',
    class extends ReferenceDevice {
      protected override dataSize(): number {
        return isSaving(this.state) ? super.dataSize() : 0;
      }
    },
  ),

  // ------------------------------------------------------------------ errno
  mutant(
    'bad-target-eio',
    'errno',
    'SET to a state number ≥ 8 fails with EIO instead of EINVAL',
    class extends ReferenceDevice {
      protected override checkTarget(n: number): string | null {
        return n >= VFIO_DEVICE_STATE_NR ? 'EIO' : super.checkTarget(n);
      }
    },
  ),
  mutant(
    'unsupported-target-eopnotsupp',
    'errno',
    'SET to a state the device lacks fails with EOPNOTSUPP instead of EINVAL',
    class extends ReferenceDevice {
      protected override checkTarget(n: number): string | null {
        return n > ERROR && n < VFIO_DEVICE_STATE_NR && !this.supported(n) ? 'EOPNOTSUPP' : super.checkTarget(n);
      }
    },
  ),
  mutant(
    'stopcopy-eof-enomsg',
    'errno',
    'The end of the STOP_COPY stream is reported as ENOMSG (the precopy temporary EOF) instead of read() = 0',
    class extends ReferenceDevice {
      protected override readStopCopy(): IoResult {
        const r = super.readStopCopy();
        return r.ok && r.bytes === 0 ? { ok: false, errno: 'ENOMSG' } : r;
      }
    },
  ),
  mutant(
    'precopy-enomsg-eof',
    'errno',
    'The temporary end of precopy data is reported as read() = 0 (permanent EOF) instead of ENOMSG',
    class extends ReferenceDevice {
      protected override readPrecopy(): IoResult {
        const r = super.readPrecopy();
        return !r.ok && r.errno === 'ENOMSG' ? { ok: true, bytes: 0 } : r;
      }
    },
  ),
  mutant(
    'read-no-session-einval',
    'errno',
    'read()/write() on a disabled or wrong-kind data_fd fail with EINVAL instead of EBADF',
    class extends ReferenceDevice {
      override read(len = 1): IoResult {
        const r = super.read(len);
        return !r.ok && r.errno === 'EBADF' ? { ok: false, errno: 'EINVAL' } : r;
      }
      override write(len = 1): IoResult {
        const r = super.write(len);
        return !r.ok && r.errno === 'EBADF' ? { ok: false, errno: 'EINVAL' } : r;
      }
    },
  ),

  // ------------------------------------------------------------------ ERROR and the target range
  mutant(
    'error-target-accepted',
    'error-state',
    'SET ERROR accepted as a target (the device goes to ERROR) instead of EINVAL',
    class extends ReferenceDevice {
      protected override resolve(cur: number, n: number): Resolved {
        return n === ERROR && cur !== ERROR ? { path: [cur, ERROR] } : super.resolve(cur, n);
      }
    },
  ),
  mutant(
    'error-requests-accepted',
    'error-state',
    'Requests from ERROR are served as if the device were in STOP (only VFIO_DEVICE_RESET may leave ERROR)',
    class extends ReferenceDevice {
      protected override resolve(cur: number, n: number): Resolved {
        if (cur !== ERROR || n === ERROR) return super.resolve(cur, n);
        const r = super.resolve(STOP, n);
        return 'errno' in r ? r : { path: [ERROR, ...r.path] };
      }
    },
  ),
  mutant(
    'error-error-refused',
    'error-state',
    'SET ERROR while in ERROR fails with EINVAL (the driver calls the helper even for new == cur)',
    class extends ReferenceDevice {
      protected override loopContinues(at: number, n: number): boolean {
        return at === ERROR || super.loopContinues(at, n);
      }
    },
  ),
  mutant(
    'state-ge-8-accepted',
    'target-range',
    'SET to a state number ≥ 8 succeeds as a no-op (bounds check missing; the value is ignored)',
    class extends ReferenceDevice {
      protected override resolve(cur: number, n: number): Resolved {
        return n >= VFIO_DEVICE_STATE_NR ? { path: [cur] } : super.resolve(cur, n);
      }
    },
  ),

  // ------------------------------------------------------------------ VFIO_DEVICE_RESET
  mutant(
    'reset-to-stop',
    'reset',
    'VFIO_DEVICE_RESET leaves the device in STOP instead of RUNNING',
    class extends ReferenceDevice {
      protected override resetState(): number {
        return STOP;
      }
    },
  ),

  // ------------------------------------------------------------------ fault handling
  mutant(
    'fault-left-in-target',
    'fault',
    'A failed arc is committed: the device is left in the arc\'s target state instead of the state before it',
    class extends ReferenceDevice {
      protected override leaveFailedArc(path: readonly number[], k: number, leaves: Fault['leaves']): void {
        if (leaves === 'ERROR') return super.leaveFailedArc(path, k, leaves);
        this.applyArc(path[k]!, path[k + 1]!);
        this.state = path[k + 1]!;
      }
    },
  ),
  mutant(
    'fault-path-includes-failed',
    'fault',
    'A failed SET reports the failed arc\'s target among the states it went through',
    class extends ReferenceDevice {
      protected override faultPath(path: readonly number[], k: number): number[] {
        return path.slice(0, k + 2);
      }
    },
  ),
  mutant(
    'fault-errno-einval',
    'fault',
    'A failed arc is reported with EINVAL (a refused request) instead of EIO',
    class extends ReferenceDevice {
      protected override faultErrno(): string {
        return 'EINVAL';
      }
    },
  ),

  // ------------------------------------------------------------------ equivalent mutants
  mutant(
    'reset-keeps-counters',
    'reset',
    'VFIO_DEVICE_RESET ends the sessions but leaves initial/dirty/stopCopy/loaded/reinitPending as they were',
    class extends ReferenceDevice {
      protected override resetSessions(): void {
        this.session = null;
      }
    },
    {
      equivalent: true,
      reason:
        'after a reset the device is in RUNNING without a session; the counters are read only in PRE_COPY(_P2P) and STOP_COPY (PRECOPY_INFO, MIG_DATA_SIZE, read), which are reachable only by an arc that enters the saving group from outside, and that arc sets initial, dirty and reinitPending (and STOP_COPY entry sets stopCopy) before any read; loaded is never observed',
    },
  ),
  mutant(
    'loaded-cap-too-high',
    'data_fd',
    'The resuming side caps the units it has loaded at 4·maxBytes+3 instead of 2·maxBytes+1',
    class extends ReferenceDevice {
      protected override loadedCap(): number {
        return 4 * this.maxBytes + 3;
      }
    },
    {
      equivalent: true,
      reason: 'no uAPI call reports the loaded count (write() always moves one unit; MIG_DATA_SIZE outside saving is maxBytes+1), so no observation depends on the cap',
    },
  ),
  mutant(
    'v2-without-precopy-flag',
    'reinit',
    'The PRECOPY_INFOv2 opt-in is honoured on a device without VFIO_MIGRATION_PRE_COPY (the core must refuse it)',
    class extends ReferenceDevice {
      protected override v2(): boolean {
        return this.precopyInfoV2;
      }
    },
    {
      equivalent: true,
      reason:
        'the opt-in is consulted only by PRECOPY_INFO (accepted only in PRE_COPY(_P2P)) and by a guest reconfiguration (no effect outside PRE_COPY(_P2P)); without the PRE_COPY flag those states are unreachable, and with it the two rules agree (the benchmark also never sets the opt-in without PRE_COPY)',
    },
  ),
  mutant(
    'stopcopy-keeps-reinit-pending',
    'reinit',
    'Entering STOP_COPY does not clear a pending REINIT',
    class extends ReferenceDevice {
      protected override enterStopCopy(): void {
        const p = this.reinitPending;
        super.enterStopCopy();
        this.reinitPending = p;
      }
    },
    {
      equivalent: true,
      reason:
        'reinitPending is read only by PRECOPY_INFO in PRE_COPY(_P2P); STOP_COPY\'s only exits are to STOP (which ends the session and clears it), a failure into ERROR (which ends it too) and a reset (which ends it), since STOP_COPY→PRE_COPY(_P2P) is blocked',
    },
  ),
];
