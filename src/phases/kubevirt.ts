/**
 * KubeVirt: `VirtualMachineInstanceMigration.status.phase`
 * (staging/src/kubevirt.io/api/core/v1/types.go, VirtualMachineInstanceMigrationPhase). virt-launcher
 * drives libvirt and watches the migration job's libvirt type
 * (pkg/virt-launcher/virtwrap/live-migration-source.go, the migration monitor's loop over
 * GetJobStats), records the outcome in the VMI's migrationState, and virt-controller turns that into
 * the phase (pkg/virt-controller/watch/migration/migration.go, the status update). QEMU's own status
 * reaches KubeVirt only through libvirt's job type (src/phases/libvirt.ts).
 */
import { LIBVIRT } from './libvirt.js';
import type { MigrationStatus } from './qemu.js';
import type { OrchestratorMap, PhaseOf } from './types.js';

const MONITOR = 'pkg/virt-launcher/virtwrap/live-migration-source.go:migrationMonitor.startMonitor';

/** KubeVirt's phase for each libvirt job type the migration monitor reacts to. */
const BY_JOB_TYPE: Record<string, string> = {
  UNBOUNDED: 'Running',
  FAILED: 'Failed',
  CANCELLED: 'Failed',
  COMPLETED: 'Succeeded',
};

function throughLibvirt(status: MigrationStatus): PhaseOf | null {
  const l = LIBVIRT.statuses[status];
  if (l === null) return null;
  if (status === 'none') {
    return { phase: 'TargetReady', via: 'libvirt job type NONE', cite: MONITOR, confidence: 'inferred', note: 'before migrate: the target pod is ready; after the job, the domain state decides' };
  }
  const phase = BY_JOB_TYPE[l.phase];
  if (phase === undefined) throw new Error(`kubevirt: no phase for libvirt job type ${l.phase}`);
  return {
    phase,
    via: `libvirt job type ${l.phase}`,
    cite: MONITOR,
    confidence: 'code',
    ...(status === 'cancelled' ? { note: 'an abort: Failed with abortStatus Succeeded' } : status === 'completed' ? { note: 'Running until libvirt reports the job COMPLETED, then Succeeded' } : {}),
  };
}

const statuses = Object.fromEntries(
  (Object.keys(LIBVIRT.statuses) as MigrationStatus[]).map((s) => {
    const p = throughLibvirt(s);
    // QEMU completed is still libvirt's UNBOUNDED: KubeVirt shows Running until libvirt's job ends.
    return [s, s === 'completed' && p ? { ...p, phase: 'Running' } : p];
  }),
) as Record<MigrationStatus, PhaseOf | null>;

export const KUBEVIRT: OrchestratorMap = {
  id: 'kubevirt',
  name: 'KubeVirt',
  observes: 'VirtualMachineInstanceMigration.status.phase',
  learnsFrom: "libvirt's job type, polled by virt-launcher's migration monitor (GetJobStats), reported through the VMI's migrationState",
  phases: ['Pending', 'Scheduling', 'Scheduled', 'PreparingTarget', 'TargetReady', 'Running', 'WaitingForSync', 'Synchronizing', 'Succeeded', 'Failed'],
  own: [
    { phase: 'Pending', when: 'the migration object is accepted', cite: 'staging/src/kubevirt.io/api/core/v1/types.go:MigrationPending' },
    { phase: 'Scheduling', when: 'the target pod is being scheduled', cite: 'staging/src/kubevirt.io/api/core/v1/types.go:MigrationScheduling' },
    { phase: 'Scheduled', when: 'the target pod runs', cite: 'staging/src/kubevirt.io/api/core/v1/types.go:MigrationScheduled' },
    { phase: 'PreparingTarget', when: 'virt-handler prepares the target (the destination QEMU starts with -incoming)', cite: 'staging/src/kubevirt.io/api/core/v1/types.go:MigrationPreparingTarget' },
    { phase: 'TargetReady', when: 'the target waits for the source to start migrating', cite: 'staging/src/kubevirt.io/api/core/v1/types.go:MigrationTargetReady' },
    { phase: 'WaitingForSync', when: 'cross-cluster migrations only: waiting for the other cluster', cite: 'staging/src/kubevirt.io/api/core/v1/types.go:MigrationWaitingForSync' },
    { phase: 'Synchronizing', when: 'cross-cluster migrations only: the clusters exchange state', cite: 'staging/src/kubevirt.io/api/core/v1/types.go:MigrationSynchronizing' },
  ],
  statuses,
  unknownStatus: { text: 'KubeVirt sees QEMU only through libvirt: a status libvirt does not know never reaches it', cite: MONITOR },
  consequences: {
    'one-sided-ack-stall': {
      text:
        'the migration monitor aborts a migration whose remaining data stops falling for the progress timeout (150 s by default) or that outlives completionTimeoutPerGiB: the stall ends Failed, exactly like a migration that could not converge',
      cite: `${MONITOR} (processInflightMigration: progress and completion timeouts)`,
      confidence: 'code',
    },
    'cancel-after-eof': {
      text: "libvirt's paused destination and Finish protocol apply (KubeVirt migrates through libvirt): the target domain is not resumed",
      cite: 'src/qemu/qemu_migration.c:qemuMigrationDstFinish (libvirt)',
      confidence: 'inferred',
      prevents: true,
    },
    'break-after-eof': {
      text: 'as for a cancel: libvirt does not resume the target; KubeVirt reports Failed',
      cite: 'src/qemu/qemu_migration.c:qemuMigrationDstFinish (libvirt)',
      confidence: 'inferred',
      prevents: true,
    },
    'pre-switchover-pause': {
      text: 'the phase stays Running while the vCPUs are stopped; only the guest downtime shows it',
      cite: MONITOR,
      confidence: 'inferred',
    },
  },
};
