/**
 * docs/kernel-run.md: one real run of the device on the Linux kernel's VFIO migration uAPI (mtty in the
 * VM), drawn as a Mermaid sequence diagram, each reply marked with whether the model (mtty profile)
 * predicted it. The run is recorded once by `npm run record:kernel-run` (it boots the VM) into
 * test/fixtures/kernel/run.json; the page is generated from that recording (`npm run docs`), so the docs
 * check needs no VM. The steps are a save through precopy and STOP_COPY, then a resume that meets the
 * driver's counted-rejected-bytes quirk.
 */
import { createActor } from 'xstate';
import type { VfioDeviceEvent } from '../../machines/vfioDevice.js';
import { vfioDeviceMachine } from '../../machines/vfioDevice.js';
import { mttyProfile } from '../../machines/vfioProfiles.js';
import { escapeText } from '../diagrams/mermaidText.js';
import type { JsonValue } from '../testgen/fixture.js';
import { deviceRecord } from '../testgen/observe.js';

/** The run's steps: model events. */
export const KERNEL_RUN_STEPS: readonly VfioDeviceEvent[] = [
  { type: 'SET_STATE', target: 'PRE_COPY' },
  { type: 'VFIO_MIG_GET_PRECOPY_INFO' },
  { type: 'DATA_FD_READ' },
  { type: 'DATA_FD_READ' },
  { type: 'SET_STATE', target: 'STOP_COPY' },
  { type: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE' },
  { type: 'DATA_FD_READ' },
  { type: 'DATA_FD_READ' },
  { type: 'DATA_FD_READ' },
  { type: 'DATA_FD_READ' },
  { type: 'SET_STATE', target: 'PRE_COPY' },
  { type: 'SET_STATE', target: 'STOP' },
  { type: 'DATA_FD_READ' },
  { type: 'SET_STATE', target: 'RESUMING' },
  { type: 'DATA_FD_WRITE', data: 'corrupt' },
  { type: 'SET_STATE', target: 'STOP' },
  { type: 'DATA_FD_WRITE', data: 'corrupt' },
  { type: 'DATA_FD_WRITE', data: 'corrupt' },
  { type: 'SET_STATE', target: 'RUNNING' },
];

/** A recorded run: the kernel it ran on and, per step, the observation the kernel gave. */
export interface KernelRunRecording {
  readonly kernel: string;
  readonly driver: string;
  readonly observations: readonly Readonly<Record<string, JsonValue>>[];
}

/** What the model predicts for each step (mtty profile, every feature). */
export function predictedRun(): Record<string, JsonValue>[] {
  const a = createActor(vfioDeviceMachine, { input: { features: 'STOP_COPY|P2P|PRE_COPY', profile: mttyProfile(2) } }).start();
  return KERNEL_RUN_STEPS.map((e) => {
    a.send(e);
    const s = a.getSnapshot();
    return deviceRecord(String(s.value), s.context.last);
  });
}

function call(e: VfioDeviceEvent): string {
  switch (e.type) {
    case 'SET_STATE':
      return `SET_STATE ${String(e.target)}`;
    case 'VFIO_MIG_GET_PRECOPY_INFO':
      return 'PRECOPY_INFO';
    case 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE':
      return 'MIG_DATA_SIZE';
    case 'DATA_FD_READ':
      return 'read(data_fd, 32)';
    case 'DATA_FD_WRITE':
      return `write(data_fd, 32 bytes${e.data === 'corrupt' ? ', bad magic' : ''})`;
    default:
      return e.type;
  }
}

function reply(o: Readonly<Record<string, JsonValue>>): string {
  if (o['ok'] === false) return `-${String(o['errno'])}`;
  switch (o['op']) {
    case 'SET_STATE':
      return o['dataFd'] === null ? '0, data_fd -1' : `0, new ${String(o['dataFd'])} data_fd`;
    case 'VFIO_MIG_GET_PRECOPY_INFO':
      return `initial ${String(o['initialBytes'])}, dirty ${String(o['dirtyBytes'])}`;
    case 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE':
      return `stop_copy_length ${String(o['stopCopyLength'])}`;
    case 'DATA_FD_READ':
      return o['bytes'] === 0 ? '0 (end of data)' : `${String(o['bytes'])} bytes`;
    case 'DATA_FD_WRITE':
      return `${String(o['bytes'])} bytes`;
    default:
      return 'ok';
  }
}

/** The fields the uAPI shows (everything but the path a SET took). */
const VISIBLE = ['state', 'op', 'ok', 'errno', 'dataFd', 'bytes', 'initialBytes', 'dirtyBytes', 'reinit', 'stopCopyLength'];

/** The page, from a recording. */
export function kernelRunDocText(rec: KernelRunRecording): string {
  const predicted = predictedRun();
  if (rec.observations.length !== KERNEL_RUN_STEPS.length) throw new Error(`the recording has ${rec.observations.length} steps; the run has ${KERNEL_RUN_STEPS.length}: record it again`);
  const lines = ['sequenceDiagram', '  participant U as vfio-steps (the user)', `  participant K as ${escapeText(`VFIO core + ${rec.driver}, Linux ${rec.kernel}`)}`, '  autonumber', '  Note over K: RUNNING'];
  let agree = 0;
  let prev = 'RUNNING';
  KERNEL_RUN_STEPS.forEach((e, i) => {
    const got = rec.observations[i]!;
    const want = predicted[i]!;
    const same = VISIBLE.every((f) => JSON.stringify(got[f]) === JSON.stringify(want[f]));
    if (same) agree++;
    lines.push(`  U->>K: ${escapeText(call(e))}`);
    lines.push(`  K-->>U: ${escapeText(`${reply(got)} ${same ? '(as predicted)' : `(the model said ${reply(want)})`}`)}`);
    if (got['state'] !== prev) lines.push(`  Note over K: ${escapeText(String(got['state']))}`);
    prev = String(got['state']);
  });
  return [
    '<!-- generated by npm run docs from test/fixtures/kernel/run.json (recorded with npm run record:kernel-run); do not edit -->',
    '# One run on the real kernel',
    '',
    `The device side of a migration, run by our step program on the Linux ${rec.kernel} VFIO migration uAPI with the`,
    `kernel's sample driver ${rec.driver} (samples/vfio-mdev/mtty.c) in the test VM, and checked step by step against`,
    "the device machine under the mtty profile: " + `${agree} of ${KERNEL_RUN_STEPS.length} replies as predicted.`,
    '',
    'It saves the device through precopy (only the 24-byte header is precopy data; the ports follow on the same',
    'fd once it stops), shows the blocked STOP_COPY → PRE_COPY arc refused, then resumes from bytes with a bad',
    "header: the write that completes the header is refused with EFAULT, but its bytes count, so once 96 bytes",
    'are in the load succeeds — the quirk the mtty profile predicts.',
    '',
    '```mermaid',
    ...lines,
    '```',
    '',
  ].join('\n');
}
