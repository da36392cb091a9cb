/**
 * Runs scripted VFIO migration steps on a real Linux kernel: a stock Debian 6.12 kernel booted in a
 * small TCG QEMU VM, with the kernel's sample mdev driver `samples/vfio-mdev/mtty.c` and the real
 * `drivers/vfio/vfio_main.c` state machine (`vfio_mig_get_next_state`). `scripts/vfio-vm.sh` builds the
 * kernel and the initramfs into `.cache/vfio-vm/`; inside the VM `src/kernel/native/vfio-steps.c`
 * executes the steps (its header documents the script language and every output field) and prints one
 * `@@ {json}` line per step on the serial console.
 *
 * One boot runs a whole batch of cases: the batch becomes one script, packed as an uncompressed cpio
 * archive that is put IN FRONT of the gzip'd initramfs (the kernel unpacks both; an archive appended
 * after the gzip'd one is not found). Every case starts with the devices reset and no data fd open.
 *
 * @example
 *   import { runOnKernel } from './src/kernel/index.js';
 *   const run = await runOnKernel({ cases: [{ name: 'precopy', steps: ['SET 6', 'PRECOPY_INFO'] }] });
 *   console.log(run.cases[0]!.steps[0]); // { op: 'SET', arg: 6, ret: 0, errno: null, data_fd: 'new', fd_mode: 'r', state: 6 }
 *   console.log(run.timing.firstResultMs); // about 3000
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { groupWatchdog, killGroup } from '../os/watchdog.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// ---- what the VM prints ------------------------------------------------------------------------

/** The fields every step line carries. `state` is a GET of the device state right after the step. */
interface StepCommon {
  /** The syscall's return: 0, a byte count, or -1. */
  readonly ret: number;
  /** The symbolic errno ("EINVAL", "ENODEV", …) when `ret` is -1, else null. */
  readonly errno: string | null;
  /** enum vfio_device_mig_state read back after the step; null if that GET failed. */
  readonly state: number | null;
  /** The selected device, present when it is not device 0. */
  readonly dev?: number;
}
export interface SetRecord extends StepCommon {
  readonly op: 'SET';
  readonly arg: number;
  readonly data_fd: -1 | 'new';
  readonly fd_mode?: 'r' | 'w' | 'rw';
}
export interface GetRecord extends StepCommon {
  readonly op: 'GET';
}
export interface ReadRecord extends StepCommon {
  readonly op: 'READ';
  readonly arg: number;
  /** Length of the device's saved image after this read. */
  readonly saved: number;
}
export interface WriteRecord extends StepCommon {
  readonly op: 'WRITE';
  /** Bytes asked for. */
  readonly arg: number;
  readonly what: 'saved' | 'zero' | 'corrupt';
  /** The device whose saved image was written, when not the selected one. */
  readonly from?: number;
  /** Bytes passed to write() (fewer than `arg` when the saved image had fewer left). */
  readonly len: number;
}
export interface PrecopyInfoRecord extends StepCommon {
  readonly op: 'PRECOPY_INFO';
  readonly initial_bytes?: number;
  readonly dirty_bytes?: number;
  readonly flags?: number;
}
export interface DataSizeRecord extends StepCommon {
  readonly op: 'DATA_SIZE';
  readonly stop_copy_length?: number;
}
/** The read-backs (vfio-steps PROBE): MIG_DATA_SIZE, and a zero-length read/write on the slot's fd. */
export interface ProbeRecord extends StepCommon {
  readonly op: 'PROBE';
  readonly stop_copy_length?: number;
  /** -1: the slot is empty (no probe made). */
  readonly data_fd?: -1;
  readonly fd_mode?: 'r' | 'w' | 'rw';
  /** The zero-length call's return (0, or -1 with probe_errno). */
  readonly probe?: number;
  readonly probe_errno?: string;
}
export interface MigrationFlagsRecord extends StepCommon {
  readonly op: 'MIGRATION_FLAGS';
  readonly flags?: number;
}
export interface PrecopyInfoV2Record extends StepCommon {
  readonly op: 'PRECOPY_INFO_V2';
  /** The feature number tried (12, upstream d7140b5dde45). */
  readonly feature: number;
  /** Whether the kernel's vfio.h defines VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2. */
  readonly hdr: boolean;
}
export interface ResetRecord extends StepCommon {
  readonly op: 'RESET';
}
export interface CloseRecord extends StepCommon {
  readonly op: 'CLOSE';
}
export interface DeviceRecord extends StepCommon {
  readonly op: 'DEVICE';
  readonly arg: number;
}
/** A step line the program could not parse; it printed `{"op": command, "error", "line"}`. */
export interface ScriptErrorRecord {
  readonly op: 'ERROR';
  /** The command word as the program saw it ("?" for an unknown one). */
  readonly command: string;
  readonly error: string;
  /** Line number in the script the VM ran. */
  readonly line: number;
  readonly state: number | null;
  readonly dev?: number;
}
export type StepRecord =
  | SetRecord
  | GetRecord
  | ReadRecord
  | WriteRecord
  | PrecopyInfoRecord
  | DataSizeRecord
  | ProbeRecord
  | MigrationFlagsRecord
  | PrecopyInfoV2Record
  | ResetRecord
  | CloseRecord
  | DeviceRecord
  | ScriptErrorRecord;
export type StepOp = StepRecord['op'];

/** The line a CASE prints: every device reset (`ok`: each reset returned 0 and reads back RUNNING). */
export interface CaseStartRecord {
  readonly case: string;
  readonly ok: boolean;
  readonly errno?: string;
  readonly state: number | null;
}
/** Printed once the devices are open. */
export interface ReadyRecord {
  readonly ready: true;
  readonly devices: number;
  readonly uuids: readonly string[];
  /** `uname -r` in the VM. */
  readonly kernel: string;
  /** CLOCK_BOOTTIME in the VM when the devices were open. */
  readonly uptime_ms: number;
}
/** Printed after the script; `tainted` is /proc/sys/kernel/tainted (a WARN sets bit 9, 512). */
export interface EndRecord {
  readonly end: true;
  readonly cases: number;
  readonly steps: number;
  readonly tainted: number;
}

// ---- what goes in, what comes out ------------------------------------------------------------------

export interface KernelCase {
  readonly name: string;
  /** Script lines (see the header of src/kernel/native/vfio-steps.c), e.g. "SET 6", "READ 64". */
  readonly steps: readonly string[];
}
export interface KernelBatch {
  readonly cases: readonly KernelCase[];
}
export interface KernelCaseResult {
  readonly name: string;
  readonly start: CaseStartRecord;
  /** One record per step, in order. */
  readonly steps: readonly StepRecord[];
}
export interface KernelTiming {
  /** From starting QEMU to its first byte on the console, to the ready line, to the first case line. */
  readonly firstOutputMs: number;
  readonly readyMs: number;
  readonly firstResultMs: number;
  /** From starting QEMU until it exited. */
  readonly totalMs: number;
  /** Case and step lines per second, from the first to the end line. */
  readonly linesPerSecond: number;
}
export interface KernelRun {
  readonly cases: readonly KernelCaseResult[];
  readonly ready: ReadyRecord;
  readonly end: EndRecord;
  readonly timing: KernelTiming;
  /** Console lines that were not `@@` lines (kernel messages, firmware), for diagnostics. */
  readonly console: readonly string[];
}

export interface KernelRunOptions {
  /** Kill the VM after this long; default 60 s plus 5 ms per step. */
  readonly timeoutMs?: number;
  /** Artifacts to boot; default `vmArtifacts()`. */
  readonly artifacts?: VmArtifacts;
  /** Boot the bzImage even when the PVH-bootable vmlinux is there. */
  readonly bzImage?: boolean;
  /** The QEMU binary; default qemu-system-x86_64. */
  readonly qemu?: string;
  /** Kernel command line; default "console=ttyS0 quiet panic=-1". */
  readonly append?: string;
  /** Guest memory; default 512. */
  readonly memoryMb?: number;
  /** For several batches: how many VMs at once; default the number of CPUs. */
  readonly concurrency?: number;
  /** Every console line as it arrives (`@@` lines included). */
  readonly onConsoleLine?: (line: string) => void;
}

export type KernelVmErrorKind =
  | 'missing-artifacts'
  | 'stale-artifacts'
  | 'no-qemu'
  | 'bad-input'
  | 'timeout'
  | 'no-output'
  | 'panic'
  | 'fatal'
  | 'mismatch';

/** Every failure, as one line; `console` holds the VM's non-`@@` console lines when it had booted. */
export class KernelVmError extends Error {
  override readonly name = 'KernelVmError';
  constructor(
    readonly kind: KernelVmErrorKind,
    message: string,
    readonly console: readonly string[] = [],
  ) {
    super(message);
  }
}

// ---- the artifacts -----------------------------------------------------------------------------

export interface VmArtifacts {
  readonly dir: string;
  /** The PVH-bootable vmlinux when the build could cut it out of the bzImage, else the bzImage. */
  readonly kernel: string;
  readonly bzImage: string;
  readonly initrd: string;
  /** `uname -r` of that kernel, e.g. "6.12.118+deb12-amd64", and its Debian package version. */
  readonly release: string;
  readonly version: string;
  /** The mdevs /init creates, device 0 first. */
  readonly uuids: readonly string[];
}

export const BUILD_COMMAND = 'npm run vm:build';
export const QEMU_BINARY = 'qemu-system-x86_64';
const MARK = '@@ ';

/** The repository this module lives in (src/kernel/ or dist/src/kernel/ below it), if any. */
function repoRoot(): string | undefined {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(d, 'scripts', 'vfio-vm.sh'))) return d;
    d = dirname(d);
  }
  return undefined;
}

/** The directory the build writes: $VFIO_VM_DIR, else .cache/vfio-vm in the repository (or cwd). */
export function vmDir(): string {
  const env = process.env['VFIO_VM_DIR'];
  if (env) return resolve(env);
  return join(repoRoot() ?? process.cwd(), '.cache', 'vfio-vm');
}

interface Manifest {
  release: string;
  version: string;
  kernel: string;
  bzImage: string;
  initrd: string;
  uuids: string[];
  stamp: string;
}

/**
 * The built kernel and initramfs, or a KernelVmError naming what is missing (or stale: built from
 * another vfio-vm.sh or vfio-steps.c than the repository's) and the command that builds it.
 */
export function vmArtifacts(dir: string = vmDir()): VmArtifacts {
  const rel = relative(process.cwd(), dir);
  const shown = rel && !rel.startsWith('..') ? rel : dir;
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) {
    throw new KernelVmError(
      'missing-artifacts',
      `the real-kernel VFIO VM is not built (${join(shown, 'manifest.json')} is missing): run \`${BUILD_COMMAND}\``,
    );
  }
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  } catch (e) {
    throw new KernelVmError('missing-artifacts', `${manifestPath} is not JSON (${(e as Error).message}): run \`${BUILD_COMMAND}\``);
  }
  for (const f of [m.kernel, m.bzImage, m.initrd]) {
    const p = join(dir, f ?? '');
    if (!f || !existsSync(p) || statSync(p).size === 0) {
      throw new KernelVmError('missing-artifacts', `the real-kernel VFIO VM is incomplete (${join(shown, f ?? '?')} is missing): run \`${BUILD_COMMAND}\``);
    }
  }
  const root = repoRoot();
  if (root && dir === join(root, '.cache', 'vfio-vm')) {
    const script = join(root, 'scripts', 'vfio-vm.sh');
    const source = join(root, 'src', 'kernel', 'native', 'vfio-steps.c');
    if (existsSync(script) && existsSync(source)) {
      const want = createHash('sha256')
        .update(readFileSync(script))
        .update(readFileSync(source))
        .update(`${m.version}\n`)
        .digest('hex')
        .slice(0, 16);
      if (want !== m.stamp) {
        throw new KernelVmError(
          'stale-artifacts',
          `the real-kernel VFIO VM in ${shown} was built from another scripts/vfio-vm.sh or vfio-steps.c: run \`${BUILD_COMMAND}\``,
        );
      }
    }
  }
  return {
    dir,
    kernel: join(dir, m.kernel),
    bzImage: join(dir, m.bzImage),
    initrd: join(dir, m.initrd),
    release: m.release,
    version: m.version,
    uuids: m.uuids,
  };
}

/** Why the VM cannot run here (artifacts or QEMU missing), or null when it can. */
export function vmUnavailable(qemu: string = QEMU_BINARY): string | null {
  try {
    vmArtifacts();
  } catch (e) {
    return (e as Error).message;
  }
  const r = spawnSync(qemu, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error || r.status !== 0) return `${qemu} does not run (${r.error?.message ?? r.stderr.trim().split('\n')[0]})`;
  return null;
}

// ---- the script and its archive ------------------------------------------------------------------

/** The script one boot runs: `CASE <name>` then the case's steps, for every case. */
export function batchScript(batch: KernelBatch): string {
  if (batch.cases.length === 0) throw new KernelVmError('bad-input', 'a batch needs at least one case');
  const lines: string[] = [];
  for (const c of batch.cases) {
    if (!/^[\x21-\x7e][\x20-\x7e]{0,199}$/.test(c.name) || c.name.trim() !== c.name) {
      throw new KernelVmError('bad-input', `case name ${JSON.stringify(c.name)}: 1-200 printable ASCII characters, no leading or trailing blank`);
    }
    lines.push(`CASE ${c.name}`);
    c.steps.forEach((s, i) => {
      const t = s.trim();
      if (/[\r\n]/.test(s) || t === '' || t.length > 200 || t.startsWith('#') || /^CASE(\s|$)/.test(t)) {
        throw new KernelVmError('bad-input', `case ${c.name}, step ${i + 1}: ${JSON.stringify(s)} is not one step line`);
      }
      lines.push(t);
    });
  }
  return `${lines.join('\n')}\n`;
}

/** A cpio "newc" archive of the given files (paths without a leading '/', directories first). */
export function newcArchive(entries: readonly { path: string; data?: Buffer; dir?: boolean }[]): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    size += b.length;
  };
  const pad = () => {
    if (size % 4) push(Buffer.alloc(4 - (size % 4)));
  };
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  let ino = 1;
  const entry = (path: string, mode: number, data: Buffer) => {
    const name = Buffer.from(`${path}\0`);
    const fields = [ino++, mode, 0, 0, mode & 0o040000 ? 2 : 1, 0, data.length, 0, 0, 0, 0, name.length, 0];
    push(Buffer.from(`070701${fields.map(hex).join('')}`, 'ascii'));
    push(name);
    pad();
    push(data);
    pad();
  };
  for (const e of entries) entry(e.path, e.dir ? 0o040755 : 0o100644, e.dir ? Buffer.alloc(0) : (e.data ?? Buffer.alloc(0)));
  entry('TRAILER!!!', 0, Buffer.alloc(0));
  if (size % 512) push(Buffer.alloc(512 - (size % 512)));
  return Buffer.concat(parts);
}

// ---- the VM ----------------------------------------------------------------------------------------

const live = new Set<ChildProcess>();
let hooked = false;
const killVm = killGroup;
function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const c of live) killVm(c);
  });
}

/** Run one batch in one boot. */
export function runOnKernel(batch: KernelBatch, opts?: KernelRunOptions): Promise<KernelRun>;
/** Run several batches, one boot each, `concurrency` VMs at a time; results in the batches' order. */
export function runOnKernel(batches: readonly KernelBatch[], opts?: KernelRunOptions): Promise<KernelRun[]>;
export async function runOnKernel(
  input: KernelBatch | readonly KernelBatch[],
  opts: KernelRunOptions = {},
): Promise<KernelRun | KernelRun[]> {
  if (!isBatchList(input)) return bootOnce(input, opts);
  const artifacts = opts.artifacts ?? vmArtifacts();
  const results: KernelRun[] = new Array<KernelRun>(input.length);
  let next = 0;
  let failed = false;
  const width = Math.max(1, Math.min(input.length, opts.concurrency ?? availableParallelism()));
  const worker = async () => {
    for (let i = next++; i < input.length && !failed; i = next++) {
      try {
        results[i] = await bootOnce(input[i]!, { ...opts, artifacts });
      } catch (e) {
        failed = true; // no further boots; the first error is the one reported
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

function isBatchList(x: KernelBatch | readonly KernelBatch[]): x is readonly KernelBatch[] {
  return Array.isArray(x);
}

export type VmLine =
  | { kind: 'ready'; rec: ReadyRecord }
  | { kind: 'case'; rec: CaseStartRecord }
  | { kind: 'step'; rec: StepRecord }
  | { kind: 'end'; rec: EndRecord }
  | { kind: 'fatal'; what: string; errno: string | null };

const STEP_OPS: ReadonlySet<string> = new Set([
  'SET', 'GET', 'READ', 'WRITE', 'PRECOPY_INFO', 'DATA_SIZE', 'PROBE', 'MIGRATION_FLAGS', 'PRECOPY_INFO_V2', 'RESET', 'CLOSE', 'DEVICE',
]);

/** One `@@` line's JSON, typed; throws on anything else. */
export function parseVmLine(json: string): VmLine {
  const o = JSON.parse(json) as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) throw new Error('not an object');
  if (typeof o['fatal'] === 'string') return { kind: 'fatal', what: o['fatal'], errno: typeof o['errno'] === 'string' ? o['errno'] : null };
  if (o['ready'] === true) return { kind: 'ready', rec: o as unknown as ReadyRecord };
  if (o['end'] === true) return { kind: 'end', rec: o as unknown as EndRecord };
  if (typeof o['case'] === 'string') return { kind: 'case', rec: o as unknown as CaseStartRecord };
  const op = o['op'];
  if (typeof op !== 'string') throw new Error('no "op"');
  const state = o['state'];
  if (state !== null && typeof state !== 'number') throw new Error('no "state"');
  if (typeof o['error'] === 'string') {
    const { op: command, ...rest } = o;
    return { kind: 'step', rec: { ...(rest as object), op: 'ERROR', command } as unknown as ScriptErrorRecord };
  }
  if (!STEP_OPS.has(op)) throw new Error(`unknown op ${op}`);
  if (typeof o['ret'] !== 'number') throw new Error('no "ret"');
  return { kind: 'step', rec: o as unknown as StepRecord };
}

async function bootOnce(batch: KernelBatch, opts: KernelRunOptions): Promise<KernelRun> {
  const script = batchScript(batch);
  const artifacts = opts.artifacts ?? vmArtifacts();
  const qemu = opts.qemu ?? QEMU_BINARY;
  const stepCount = batch.cases.reduce((n, c) => n + c.steps.length, 0);
  const timeoutMs = opts.timeoutMs ?? 60_000 + 5 * stepCount;

  hook();
  const scratch = mkdtempSync(join(tmpdir(), 'vfio-vm-'));
  let child: ChildProcess | undefined;
  const consoleLines: string[] = [];
  const parsed: { p: VmLine; at: number }[] = [];
  let badLine: string | undefined;
  let callbackError: unknown;
  try {
    const initrd = join(scratch, 'initrd');
    writeFileSync(
      initrd,
      Buffer.concat([
        newcArchive([{ path: 'steps', dir: true }, { path: 'steps/0.txt', data: Buffer.from(script) }]),
        readFileSync(artifacts.initrd),
      ]),
    );
    const args = [
      '-M', 'pc', '-accel', 'tcg', '-m', String(opts.memoryMb ?? 512),
      '-kernel', opts.bzImage ? artifacts.bzImage : artifacts.kernel,
      '-initrd', initrd,
      '-append', opts.append ?? 'console=ttyS0 quiet panic=-1',
      '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio', '-display', 'none',
    ];
    const started = Date.now();
    let firstOutput = 0;
    let stderr = '';
    let pending = '';
    let fragment: string | undefined;
    const proc = spawn(qemu, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    live.add(proc);
    watchdog(proc, timeoutMs + 10_000);
    const onLine = (raw: string) => {
      const line = raw.replace(/\r$/, '');
      try {
        opts.onConsoleLine?.(line);
      } catch (e) {
        callbackError ??= e;
        killVm(proc);
      }
      const keep = (text: string) => {
        const t = text.replace(/\x1b\[[0-9;?]*[a-zA-Z]|\x1bc/g, '').trim();
        if (t) consoleLines.push(t);
      };
      const take = (json: string): boolean => {
        try {
          parsed.push({ p: parseVmLine(json), at: Date.now() });
          return true;
        } catch (e) {
          badLine ??= `${MARK}${json} (${(e as Error).message})`;
          return false;
        }
      };
      if (fragment !== undefined) {
        // the rest of an @@ line that a kernel message broke in two (see below)
        const json = fragment + line;
        fragment = undefined;
        take(json);
        return;
      }
      const at = line.indexOf(`${MARK}{`);
      if (at < 0) return keep(line);
      keep(line.slice(0, at)); // e.g. the firmware's "Booting from ROM.." before the first line
      const json = line.slice(at + MARK.length);
      try {
        parsed.push({ p: parseVmLine(json), at: Date.now() });
      } catch (e) {
        // printk writes to the UART directly, so a kernel message can land inside a line the tty is
        // still sending: "@@ {...,[   11.9] reboot: Power down" + newline + "rest...}". Keep the
        // message, join the fragment with the next line.
        const k = json.search(/\[\s*\d+\.\d+\] /);
        if (k > 0) {
          keep(json.slice(k));
          fragment = json.slice(0, k);
        } else {
          badLine ??= `${line.slice(at)} (${(e as Error).message})`;
        }
      }
    };
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (s: string) => {
      if (!firstOutput) firstOutput = Date.now();
      pending += s;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (s: string) => {
      if (stderr.length < 16_000) stderr += s;
    });
    const outcome = await new Promise<{ code: number | null; error?: Error; timedOut?: boolean }>((resolveExit) => {
      const timer = setTimeout(() => resolveExit({ code: null, timedOut: true }), timeoutMs);
      proc.once('error', (error) => {
        clearTimeout(timer);
        resolveExit({ code: null, error });
      });
      proc.once('close', (code) => {
        clearTimeout(timer);
        resolveExit({ code });
      });
    });
    const ended = Date.now();
    if (pending) onLine(pending);
    if (fragment !== undefined) badLine ??= `${MARK}${fragment} (cut off)`;
    killVm(proc);

    if (callbackError !== undefined) throw callbackError;
    if (outcome.error) {
      const missing = (outcome.error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new KernelVmError(missing ? 'no-qemu' : 'fatal', `could not start ${qemu}: ${outcome.error.message}`);
    }
    const tail = consoleLines.slice(-40);
    const panic = consoleLines.find((l) => /Kernel panic|BUG:|Oops:|soft lockup|hung_task|rcu_sched self-detected|RCU stall/i.test(l));
    const fatal = parsed.find((x) => x.p.kind === 'fatal')?.p;
    if (fatal && fatal.kind === 'fatal') {
      throw new KernelVmError('fatal', `the VM could not set up the devices: ${fatal.what}${fatal.errno ? ` (${fatal.errno})` : ''}`, tail);
    }
    const where = () => position(batch, parsed.filter((x) => x.p.kind === 'case' || x.p.kind === 'step').length);
    if (outcome.timedOut) {
      const secs = `${+(timeoutMs / 1000).toFixed(1)} s`;
      if (!parsed.some((x) => x.p.kind === 'ready')) {
        throw new KernelVmError('timeout', `the VM did not get ready within ${secs}${panic ? `; the kernel said: ${panic}` : ''}`, tail);
      }
      throw new KernelVmError(
        'timeout',
        `the VM timed out after ${secs} with no output for ${where()}` +
          `${panic ? `; the kernel said: ${panic}` : ' (a request that never returns?)'}`,
        tail,
      );
    }
    if (panic && !parsed.some((x) => x.p.kind === 'end')) {
      throw new KernelVmError('panic', `the VM kernel failed at ${where()}: ${panic}`, tail);
    }
    if (parsed.length === 0) {
      const said = stderr.trim().split('\n')[0] ?? '';
      throw new KernelVmError(
        'no-output',
        `the VM printed no @@ line (exit code ${outcome.code}${said ? `, ${qemu}: ${said}` : ''}${tail.length ? `; last console line: ${tail[tail.length - 1]}` : ''})`,
        tail,
      );
    }
    if (badLine) throw new KernelVmError('mismatch', `the VM printed an unreadable @@ line: ${badLine}`, tail);
    return assemble(batch, parsed, { started, firstOutput, ended }, consoleLines, tail);
  } finally {
    if (child) {
      killVm(child);
      live.delete(child);
    }
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** "case <name>, step k (<line>)" for the n-th case/step output that is missing. */
function position(batch: KernelBatch, n: number): string {
  let i = 0;
  for (const c of batch.cases) {
    if (i++ === n) return `the start of case ${c.name}`;
    for (let k = 0; k < c.steps.length; k++) if (i++ === n) return `case ${c.name}, step ${k + 1} (${c.steps[k]})`;
  }
  return 'the end of the script';
}

function assemble(
  batch: KernelBatch,
  parsed: readonly { p: VmLine; at: number }[],
  t: { started: number; firstOutput: number; ended: number },
  consoleLines: readonly string[],
  tail: readonly string[],
): KernelRun {
  const fail = (msg: string): never => {
    throw new KernelVmError('mismatch', msg, tail);
  };
  let i = 0;
  const readyAt = parsed[0];
  if (!readyAt || readyAt.p.kind !== 'ready') return fail('the VM did not print its ready line first');
  const ready = readyAt.p.rec;
  i = 1;
  const cases: KernelCaseResult[] = [];
  let firstResult = 0;
  for (const c of batch.cases) {
    const head = parsed[i];
    if (!head) return fail(`the VM stopped before ${position(batch, i - 1)}`);
    if (head.p.kind !== 'case' || head.p.rec.case !== c.name) {
      return fail(`expected the start of case ${c.name}, the VM printed ${JSON.stringify(head.p.kind === 'step' || head.p.kind === 'case' ? head.p.rec : head.p.kind)}`);
    }
    firstResult ||= head.at;
    const start = head.p.rec;
    i++;
    const steps: StepRecord[] = [];
    for (const s of c.steps) {
      const r = parsed[i];
      if (!r || r.p.kind !== 'step') {
        return fail(`case ${c.name}: ${steps.length} outputs for ${c.steps.length} steps (none for ${JSON.stringify(s)})`);
      }
      steps.push(r.p.rec);
      i++;
    }
    cases.push({ name: c.name, start, steps });
  }
  const endAt = parsed[i];
  if (!endAt || endAt.p.kind !== 'end') return fail(`the VM printed ${endAt ? 'more output than steps' : 'no end line'} after case ${batch.cases[batch.cases.length - 1]!.name}`);
  const end = endAt.p.rec;
  const lines = i - 1;
  const span = (endAt.at - firstResult) / 1000;
  return {
    cases,
    ready,
    end,
    timing: {
      firstOutputMs: t.firstOutput - t.started,
      readyMs: readyAt.at - t.started,
      firstResultMs: firstResult - t.started,
      totalMs: t.ended - t.started,
      linesPerSecond: span > 0 ? Math.round(lines / span) : lines,
    },
    console: consoleLines,
  };
}

/** Kill the VM's process group if this process dies without doing so, or at `ms`. */
function watchdog(c: ChildProcess, ms: number): void {
  if (c.pid !== undefined) groupWatchdog(c.pid, ms);
}
