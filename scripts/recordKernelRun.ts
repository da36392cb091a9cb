/**
 * `npm run record:kernel-run`: boot the real-kernel VM, run the steps of docs/kernel-run.md, and write
 * what the kernel answered to test/fixtures/kernel/run.json (then `npm run docs` draws the page).
 */
import { renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mttyProfile } from '../machines/vfioProfiles.js';
import { KERNEL_RUN_STEPS, type KernelRunRecording } from '../src/docs/kernelRunDoc.js';
import { kernelObservation, scriptLine } from '../src/kernel/adapter.js';
import { runOnKernel } from '../src/kernel/vm.js';

const file = fileURLToPath(new URL('../../test/fixtures/kernel/run.json', import.meta.url));
const profile = mttyProfile(2);
const steps = ['DEVICE 1', 'SET 3', 'READ 96', 'SET 2', 'DEVICE 0', ...KERNEL_RUN_STEPS.map((e) => scriptLine({ component: 'dev', kind: 'env', event: e as never }, profile))];
try {
  const run = await runOnKernel({ cases: [{ name: 'kernel-run', steps }] });
  const rec: KernelRunRecording = {
    kernel: run.ready.kernel,
    driver: 'mtty-2',
    observations: run.cases[0]!.steps.slice(5).map((r) => kernelObservation(r)),
  };
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(rec, null, 2) + '\n');
  renameSync(tmp, file);
  process.stdout.write(`record:kernel-run: wrote test/fixtures/kernel/run.json (${rec.observations.length} steps on ${rec.kernel})\n`);
} catch (e) {
  process.stderr.write(`record:kernel-run: ${(e as Error).message.split('\n')[0]}\n`);
  process.exitCode = 2;
}
