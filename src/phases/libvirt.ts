/**
 * libvirt's QEMU driver: the migration job's type as its API reports it (`virDomainGetJobInfo`,
 * `virDomainGetJobStats`: the public `virDomainJobType`). libvirt keeps QEMU's status per job
 * (qemuProcessHandleMigrationStatus, src/qemu/qemu_process.c, on each MIGRATION event; query-migrate
 * through qemuMigrationAnyFetchStats), turns it into its internal `virDomainJobStatus`
 * (qemuMigrationUpdateJobType, src/qemu/qemu_migration.c) and that into the public type
 * (virDomainJobStatusToType, src/hypervisor/domain_job.c). KubeVirt and Nova read the public type.
 */
import type { OrchestratorMap, PhaseOf } from './types.js';

const UPDATE = 'src/qemu/qemu_migration.c:qemuMigrationUpdateJobType';
const TO_TYPE = 'src/hypervisor/domain_job.c:virDomainJobStatusToType';
const cite = `${UPDATE}; ${TO_TYPE}`;

/** A status qemuMigrationUpdateJobType maps to `status`, which virDomainJobStatusToType makes `type`. */
const job = (status: string, type: string, note?: string): PhaseOf => ({ phase: type, via: `job status ${status}`, cite, confidence: 'code', ...(note ? { note } : {}) });
/** A status qemuMigrationUpdateJobType leaves alone: the job keeps the status it had (ACTIVE from the start of the job). */
const unchanged = (note?: string): PhaseOf => ({
  phase: 'UNBOUNDED',
  via: 'job status unchanged (ACTIVE since the job began)',
  cite,
  confidence: 'code',
  ...(note ? { note } : {}),
});

export const LIBVIRT: OrchestratorMap = {
  id: 'libvirt',
  name: 'libvirt (QEMU driver)',
  observes: 'the migration job type, virDomainJobType (virDomainGetJobInfo / virDomainGetJobStats on the source domain)',
  learnsFrom: 'MIGRATION events and query-migrate on the source QEMU (src/qemu/qemu_process.c:qemuProcessHandleMigrationStatus, src/qemu/qemu_monitor_json.c:qemuMonitorJSONGetMigrationStatsReply)',
  phases: ['NONE', 'BOUNDED', 'UNBOUNDED', 'COMPLETED', 'FAILED', 'CANCELLED'],
  own: [
    { phase: 'UNBOUNDED', when: 'Begin and Perform before QEMU is asked to migrate (the MIGRATION_OUT async job exists, QEMU is still none)', cite: 'src/qemu/qemu_migration.c:qemuMigrationSrcBegin' },
    { phase: 'COMPLETED', when: 'after libvirt finished its own steps (Finish on the destination, Confirm on the source), not when QEMU reports completed', cite: 'src/qemu/qemu_migration.c:qemuMigrationSrcComplete' },
  ],
  statuses: {
    none: job('NONE', 'NONE'),
    setup: unchanged(),
    cancelling: unchanged(),
    cancelled: job('CANCELED', 'CANCELLED'),
    active: unchanged(),
    'postcopy-device': null,
    'postcopy-active': job('POSTCOPY', 'UNBOUNDED'),
    'postcopy-paused': job('POSTCOPY_PAUSED', 'UNBOUNDED'),
    'postcopy-recover-setup': null,
    'postcopy-recover': job('POSTCOPY', 'UNBOUNDED'),
    completed: job('HYPERVISOR_COMPLETED', 'UNBOUNDED', "QEMU is done, libvirt's job is not: COMPLETED comes after Finish and Confirm"),
    failing: null,
    failed: job('FAILED', 'FAILED'),
    colo: null,
    'pre-switchover': job('PAUSED', 'UNBOUNDED', 'libvirt turns the capability on itself when it needs the pause, and sends migrate-continue'),
    device: job('MIGRATING', 'UNBOUNDED'),
    'wait-unplug': unchanged(),
  },
  unknownStatus: {
    text: "libvirt's qemuMonitorMigrationStatus list has no such name: a query-migrate reply carrying it fails with 'unexpected migration status'",
    cite: 'src/qemu/qemu_monitor.c:qemuMonitorMigrationStatus (VIR_ENUM_IMPL); src/qemu/qemu_monitor_json.c:qemuMonitorJSONGetMigrationStatsReply',
  },
  consequences: {
    'one-sided-ack-stall': {
      text: 'libvirt has no progress timeout of its own: the job stays UNBOUNDED until a client aborts it (virDomainAbortJob)',
      cite: 'src/qemu/qemu_migration.c:qemuMigrationSrcWaitForCompletion',
      confidence: 'inferred',
    },
    'cancel-after-eof': {
      text:
        'the destination QEMU runs with -S and is resumed only by Finish when Perform succeeded; after a cancel Finish is told so and kills it, so the guest never runs twice',
      cite: 'src/qemu/qemu_migration.c:qemuMigrationDstFinish (cancelled), qemuMigrationDstPrepareAny (-incoming, paused)',
      confidence: 'inferred',
      prevents: true,
    },
    'break-after-eof': {
      text: 'as for a cancel: Perform fails, Finish is told the migration was cancelled and kills the paused destination',
      cite: 'src/qemu/qemu_migration.c:qemuMigrationDstFinish',
      confidence: 'inferred',
      prevents: true,
    },
    'pre-switchover-pause': {
      text: 'libvirt answers the pause itself (migrate-continue once its own pre-switchover work is done); its clients see UNBOUNDED throughout',
      cite: 'src/qemu/qemu_migration.c:qemuMigrationSrcWaitForCompletion (QEMU_MIGRATION_COMPLETED_PRE_SWITCHOVER), qemuMigrationSrcContinue',
      confidence: 'code',
    },
  },
};
