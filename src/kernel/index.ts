/**
 * The real Linux VFIO migration uAPI, run in a small TCG QEMU VM: a stock Debian 6.12 kernel with the
 * kernel's sample mdev driver mtty (scripts/vfio-vm.sh builds it; src/kernel/native/vfio-steps.c runs
 * the steps inside).
 *
 * @example
 *   import { runOnKernel } from './src/kernel/index.js';
 *   const run = await runOnKernel({ cases: [{ name: 'flags', steps: ['MIGRATION_FLAGS'] }] });
 *   console.log(run.cases[0]!.steps[0]); // { op: 'MIGRATION_FLAGS', ret: 0, errno: null, flags: 7, state: 2 }
 */
export {
  runOnKernel,
  vmArtifacts,
  vmUnavailable,
  vmDir,
  batchScript,
  newcArchive,
  parseVmLine,
  type VmLine,
  KernelVmError,
  BUILD_COMMAND,
  QEMU_BINARY,
  type VmArtifacts,
  type KernelBatch,
  type KernelCase,
  type KernelCaseResult,
  type KernelRun,
  type KernelRunOptions,
  type KernelTiming,
  type KernelVmErrorKind,
  type StepRecord,
  type StepOp,
  type SetRecord,
  type GetRecord,
  type ReadRecord,
  type WriteRecord,
  type PrecopyInfoRecord,
  type DataSizeRecord,
  type MigrationFlagsRecord,
  type PrecopyInfoV2Record,
  type ResetRecord,
  type CloseRecord,
  type DeviceRecord,
  type ScriptErrorRecord,
  type CaseStartRecord,
  type ReadyRecord,
  type EndRecord,
} from './vm.js';
export {
  KERNEL_UNOBSERVABLE,
  KernelSuiteError,
  type RecordOptions,
  type RecordedBatch,
  type RecordedSuite,
  kernelObservation,
  recordOnKernel,
  scriptLine,
} from './adapter.js';
