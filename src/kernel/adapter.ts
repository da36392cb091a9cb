/**
 * The real kernel as the device's system under test: device suites (src/testgen, schema @2, a device
 * preset with the `mtty` profile) compiled into vfio-steps scripts, run in one boot of the VM for a whole
 * batch of suites, and each step's JSON record turned into the observation record the model predicts
 * (src/testgen/observe.ts). `runSuite` then compares them field by field through a replaying adapter.
 *
 *   model event                          script line            what is observed
 *   SET_STATE {target}                   SET <enum value>       ret/errno, data_fd (new r → saving,
 *                                                               new w → resuming, -1 → null), GET after
 *   VFIO_DEVICE_RESET                    RESET                  ret/errno
 *   VFIO_MIG_GET_PRECOPY_INFO            PRECOPY_INFO           ret/errno, initial, dirty, flags & REINIT
 *   VFIO_DEVICE_FEATURE_MIG_DATA_SIZE    DATA_SIZE              stop_copy_length
 *   DATA_FD_READ                         READ <readChunk>       bytes read (0 = EOF) or errno
 *   DATA_FD_WRITE {data: valid}          WRITE <n> saved 1      bytes written or errno
 *   DATA_FD_WRITE {data: corrupt}        WRITE <n> corrupt 1    (the image with mtty's magic inverted)
 *   DATA_FD_CLOSE                        CLOSE                  ret/errno
 *   (after every step, and before the first)  PROBE            the read-backs: the live fd (a zero-length
 *                                                               read or write on it), MIG_DATA_SIZE
 *   (after a step's PROBE, where the suite       PRECOPY_INFO   the PRECOPY_INFO read-back: initial, dirty,
 *    predicts a PRECOPY_INFO read-back)                         flags & REINIT
 *
 * "valid" data is a genuine saved image: every case begins (after the program's CASE reset) by saving
 * device 1 once — RUNNING → STOP_COPY, read to EOF, back to RUNNING — and writes come from that image.
 * Those preamble steps are checked but are not part of the suite. The path a SET takes is not visible
 * through the uAPI (only a failure's end state is), so `path` is declared unobservable; every other field
 * is compared.
 *
 * @example
 *   const suite = generateSuite(deviceSystem(p), { criterion: 'commands', preset: p }); // p: mtty profile
 *   const [rec] = await recordOnKernel([suite]);
 *   const report = await runSuite(suite, rec.adapter);   // report.failed === 0 when the model is right
 */
import { VFIO_STATES, stateValue } from '../../machines/vfioArcs.js';
import { type VfioProfile, profileById } from '../../machines/vfioProfiles.js';
import type { JsonValue, SuiteStep, TestSuite } from '../testgen/fixture.js';
import { deviceRecord } from '../testgen/observe.js';
import type { VfioResult } from '../../machines/vfioDevice.js';
import type { Observed, SutAdapter } from '../testgen/runner.js';
import { type KernelCase, type KernelRun, type KernelRunOptions, type StepRecord, KernelVmError, runOnKernel } from './vm.js';

/** VFIO_PRECOPY_INFO_REINIT (include/uapi/linux/vfio.h since d7140b5dde45): bit 0 of the flags. */
const PRECOPY_INFO_REINIT = 1 << 0;

/** The fields of a device observation the uAPI does not show. */
export const KERNEL_UNOBSERVABLE: Readonly<Record<string, readonly string[]>> = { dev: ['path'] };

/** A suite the kernel cannot run (not a device suite of a profile the VM has). */
export class KernelSuiteError extends Error {
  override readonly name = 'KernelSuiteError';
}

/** The steps that give device 1 a genuine saved image (header and both ports) before each case. */
function preamble(profile: VfioProfile): string[] {
  const image = profile.resuming?.imageBytes ?? 0;
  return ['DEVICE 1', `SET ${stateValue('STOP_COPY')}`, `READ ${image}`, `READ ${image}`, `SET ${stateValue('RUNNING')}`, 'DEVICE 0'];
}

/**
 * The read-backs of a PROBE record and, when asked, the PRECOPY_INFO after it, as the model's observation
 * fields (observe.ts, deviceReadBack).
 */
export function probeFields(rec: StepRecord, precopy?: StepRecord): Record<'liveFd' | 'dataSize' | 'precopyInitial' | 'precopyDirty' | 'precopyReinit', JsonValue> {
  if (rec.op !== 'PROBE') throw new KernelSuiteError(`expected the PROBE after a step, got ${rec.op === 'ERROR' ? `an error (${rec.error})` : rec.op}`);
  const live = rec.probe === 0 ? (rec.fd_mode === 'r' ? 'saving' : rec.fd_mode === 'w' ? 'resuming' : `live ${rec.fd_mode ?? '?'} fd`) : null;
  if (precopy !== undefined && precopy.op !== 'PRECOPY_INFO') throw new KernelSuiteError(`expected the PRECOPY_INFO read-back, got ${precopy.op}`);
  const info = precopy?.op === 'PRECOPY_INFO' && precopy.ret === 0 ? precopy : null;
  return {
    liveFd: live,
    dataSize: rec.ret === 0 ? (rec.stop_copy_length ?? null) : `MIG_DATA_SIZE ${rec.errno ?? 'failed'}`,
    precopyInitial: info?.initial_bytes ?? null,
    precopyDirty: info?.dirty_bytes ?? null,
    precopyReinit: info ? ((info.flags ?? 0) & PRECOPY_INFO_REINIT) !== 0 : null,
  };
}

/** Whether a step's expected observation asks for the PRECOPY_INFO read-back. */
const asksPrecopyInfo = (st: Pick<SuiteStep, 'observe'>): boolean => (st.observe['dev']?.['precopyInitial'] ?? null) !== null;

/** The script line of one suite step (throws KernelSuiteError for a step the kernel cannot take). */
export function scriptLine(step: Pick<SuiteStep, 'component' | 'kind' | 'event'>, profile: VfioProfile): string {
  const e = step.event;
  if (step.kind !== 'env' || step.component !== 'dev') throw new KernelSuiteError(`the kernel runs device suites (component dev); got ${step.kind} → ${step.component}`);
  switch (e.type) {
    case 'SET_STATE': {
      if (e['fault'] !== undefined) throw new KernelSuiteError('an injected fault cannot be run on the real kernel; generate the suite with --profile mtty (or --faults off)');
      const t = e['target'];
      if (typeof t === 'number') return `SET ${t}`;
      if (typeof t === 'string' && (VFIO_STATES as readonly string[]).includes(t)) return `SET ${stateValue(t as (typeof VFIO_STATES)[number])}`;
      throw new KernelSuiteError(`SET_STATE target ${JSON.stringify(t)} is not a state name or number`);
    }
    case 'VFIO_DEVICE_RESET':
      return 'RESET';
    case 'VFIO_MIG_GET_PRECOPY_INFO':
      return 'PRECOPY_INFO';
    case 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE':
      return 'DATA_SIZE';
    case 'DATA_FD_READ':
      return `READ ${profile.readChunk}`;
    case 'DATA_FD_WRITE':
      return `WRITE ${profile.writeChunk} ${e['data'] === 'corrupt' ? 'corrupt' : 'saved'} 1`;
    case 'DATA_FD_CLOSE':
      return 'CLOSE';
    default:
      throw new KernelSuiteError(`${e.type} is not something a user of the uAPI does; the real kernel cannot take it`);
  }
}

const OPS: Readonly<Record<string, VfioResult['op']>> = {
  SET: 'SET_STATE',
  RESET: 'VFIO_DEVICE_RESET',
  PRECOPY_INFO: 'VFIO_MIG_GET_PRECOPY_INFO',
  DATA_SIZE: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE',
  READ: 'DATA_FD_READ',
  WRITE: 'DATA_FD_WRITE',
  CLOSE: 'DATA_FD_CLOSE',
};

/**
 * The observation record of one kernel step record and the PROBE after it (the fields the model
 * predicts); without a probe, the call alone (the read-backs null, as deviceRecord leaves them).
 */
export function kernelObservation(rec: StepRecord, probe?: StepRecord, precopy?: StepRecord): Record<string, JsonValue> {
  if (rec.op === 'ERROR') throw new KernelSuiteError(`the step program refused script line ${rec.line} (${rec.command}): ${rec.error}`);
  const state = rec.state === null ? 'unknown' : (VFIO_STATES[rec.state] ?? `state ${rec.state}`);
  const op = OPS[rec.op];
  if (!op) throw new KernelSuiteError(`a ${rec.op} record is not a suite step`);
  const ok = rec.ret >= 0;
  const r = { ...deviceRecord(state, null), ...(probe ? probeFields(probe, precopy) : {}) };
  r.op = op;
  r.ok = ok;
  r.errno = ok ? null : rec.errno;
  switch (rec.op) {
    case 'SET':
      if (ok) r.dataFd = rec.data_fd === -1 ? null : rec.fd_mode === 'r' ? 'saving' : rec.fd_mode === 'w' ? 'resuming' : `new ${rec.fd_mode ?? '?'} fd`;
      break;
    case 'READ':
    case 'WRITE':
      if (ok) r.bytes = rec.ret;
      break;
    case 'PRECOPY_INFO':
      if (ok) {
        r.initialBytes = rec.initial_bytes ?? null;
        r.dirtyBytes = rec.dirty_bytes ?? null;
        r.reinit = ((rec.flags ?? 0) & PRECOPY_INFO_REINIT) !== 0;
      }
      break;
    case 'DATA_SIZE':
      if (ok) r.stopCopyLength = rec.stop_copy_length ?? null;
      break;
    default:
      break;
  }
  return r;
}

/**
 * A case's script lines. The step program writes image bytes from where its own write offset stands and
 * writes fewer when the image runs out; a write the model sends past the image end must still ask for a
 * whole chunk (that is what the driver refuses with ENOMEM), so those are sent as zero bytes. The offset
 * is followed from the model's own predictions (a new resuming fd restarts it, accepted bytes move it);
 * only the header's bytes are ever checked, and they are always genuine or corrupt as the step says.
 */
function caseLines(steps: readonly SuiteStep[], profile: VfioProfile): string[] {
  const image = profile.resuming?.imageBytes ?? 0;
  let offset = 0;
  return steps.map((st) => {
    const o = st.observe['dev'];
    let line = scriptLine(st, profile);
    if (st.event.type === 'DATA_FD_WRITE' && offset + profile.writeChunk > image) line = `WRITE ${profile.writeChunk} zero`;
    if (o && o['op'] === 'SET_STATE' && o['dataFd'] === 'resuming') offset = 0;
    if (o && o['op'] === 'DATA_FD_WRITE' && o['ok'] === true && typeof o['bytes'] === 'number') offset += o['bytes'];
    return asksPrecopyInfo(st) ? [line, 'PROBE', 'PRECOPY_INFO'] : [line, 'PROBE'];
  }).flat();
}

/** One suite's cases as recorded on the kernel, and an adapter that replays them to `runSuite`. */
export interface RecordedSuite {
  readonly suite: TestSuite;
  /** Per case, the observation after reset (the CASE line) and after each step. */
  readonly observations: readonly (readonly Observed[])[];
  readonly adapter: SutAdapter;
  /** Steps executed on the kernel for this suite (the preamble not counted). */
  readonly steps: number;
}

export interface RecordOptions extends KernelRunOptions {
  /** Split the batch over this many boots run side by side (default 1: one boot for everything). */
  readonly boots?: number;
}

export interface RecordedBatch {
  readonly suites: readonly RecordedSuite[];
  readonly runs: readonly KernelRun[];
}

/** The profile a suite was generated for; the kernel runs only the VM's driver. */
function profileOf(suite: TestSuite): VfioProfile {
  const p = suite.preset;
  if (p === null || p.id !== 'device') throw new KernelSuiteError(`suite "${suite.system}" is not a device suite with a preset; the kernel runs device suites`);
  if (p.profile !== 'mtty') throw new KernelSuiteError(`suite "${suite.system}" is for the ${p.profile} profile; the VM's driver is mtty (generate it with --profile mtty)`);
  return profileById(p.profile);
}

/**
 * Compile every suite into cases, run them on the kernel (one boot unless `boots` says otherwise), and
 * return, per suite, the recorded observations and a replaying adapter.
 */
export async function recordOnKernel(suites: readonly TestSuite[], opts: RecordOptions = {}): Promise<RecordedBatch> {
  const cases: KernelCase[] = [];
  const owners: { suite: number; case: number }[] = [];
  suites.forEach((s, i) => {
    const profile = profileOf(s);
    s.cases.forEach((c, k) => {
      cases.push({ name: `s${i}.${c.name}`, steps: [...preamble(profile), 'PROBE', ...caseLines(c.steps, profile)] });
      owners.push({ suite: i, case: k });
    });
  });
  const boots = Math.max(1, Math.min(opts.boots ?? 1, cases.length));
  const batches = Array.from({ length: boots }, (_, b) => ({ cases: cases.filter((_, i) => i % boots === b) }));
  const runs = await runOnKernel(batches, opts);
  const byName = new Map(runs.flatMap((r) => r.cases.map((c) => [c.name, c] as const)));
  const recorded: Observed[][][] = suites.map((s) => s.cases.map(() => []));
  cases.forEach((kc, i) => {
    const got = byName.get(kc.name);
    if (!got) throw new KernelVmError('mismatch', `case ${kc.name} has no results`);
    if (!got.start.ok) throw new KernelVmError('mismatch', `case ${kc.name}: the reset before it did not bring the devices back to RUNNING`);
    const pre = preamble(profileOf(suites[owners[i]!.suite]!)).length;
    const prep = got.steps.slice(0, pre);
    const image = profileOf(suites[owners[i]!.suite]!).resuming?.imageBytes ?? 0;
    const ret = (r: StepRecord | undefined) => (r === undefined || r.op === 'ERROR' ? -1 : r.ret);
    if (prep.some((r) => r.op !== 'DEVICE' && r.op !== 'READ' && ret(r) !== 0) || ret(prep[2]) !== image) {
      throw new KernelVmError('mismatch', `case ${kc.name}: saving device 1's image failed (${JSON.stringify(prep)})`);
    }
    const values = (state: number | null) => ({ dev: state === null ? 'unknown' : (VFIO_STATES[state] ?? `state ${state}`) });
    // after the preamble: a PROBE (the read-backs before the first step), then each step and its PROBE
    const rest = got.steps.slice(pre);
    const start = rest[0];
    if (!start) throw new KernelVmError('mismatch', `case ${kc.name}: no PROBE after the preamble`);
    const initial: Observed = { values: values(got.start.state), fields: { dev: { ...deviceRecord(values(got.start.state).dev, null), ...probeFields(start) } } };
    const after: Observed[] = [];
    const steps = suites[owners[i]!.suite]!.cases[owners[i]!.case]!.steps;
    let k = 1;
    steps.forEach((st, n) => {
      const r = rest[k];
      const probe = rest[k + 1];
      const precopy = asksPrecopyInfo(st) ? rest[k + 2] : undefined;
      if (!r || !probe || (asksPrecopyInfo(st) && !precopy)) throw new KernelVmError('mismatch', `case ${kc.name}: step ${n + 1} has no record or no read-backs after it`);
      after.push({ values: values(r.state), fields: { dev: kernelObservation(r, probe, precopy) } });
      k += precopy ? 3 : 2;
    });
    recorded[owners[i]!.suite]![owners[i]!.case] = [initial, ...after];
  });
  return {
    runs,
    suites: suites.map((suite, i) => ({
      suite,
      observations: recorded[i]!,
      adapter: replayingAdapter(`kernel ${runs[0]?.ready.kernel ?? ''}`.trim(), recorded[i]!),
      steps: suite.stats.steps,
    })),
  };
}

/** An adapter that hands `runSuite` the recorded observations, case by case, step by step. */
function replayingAdapter(name: string, cases: readonly (readonly Observed[])[]): SutAdapter {
  let c = -1;
  let k = 0;
  return {
    name,
    unobservable: KERNEL_UNOBSERVABLE,
    reset: async () => {
      c++;
      k = 0;
      if (c >= cases.length) throw new Error(`only ${cases.length} cases were recorded`);
    },
    step: async () => {
      k++;
    },
    observe: async () => {
      const o = cases[c]?.[k];
      if (!o) throw new Error(`case ${c + 1} step ${k}: not recorded`);
      return o;
    },
    close: async () => {},
  };
}
