/**
 * OpenStack Nova: the live migration's `Migration.status` (nova/objects/migration.py), set by the
 * compute manager (nova/compute/manager.py) around the libvirt driver's migration monitor
 * (nova/virt/libvirt/driver.py:LibvirtDriver._live_migration_monitor), which polls libvirt's job type
 * and, when libvirt says NONE, guesses the outcome from whether the domain still runs on the source
 * (nova/virt/libvirt/migration.py:find_job_type).
 */
import { LIBVIRT } from './libvirt.js';
import type { MigrationStatus } from './qemu.js';
import type { OrchestratorMap, PhaseOf } from './types.js';

const MONITOR = 'nova/virt/libvirt/driver.py:LibvirtDriver._live_migration_monitor';

const BY_JOB_TYPE: Record<string, { phase: string; cite: string }> = {
  UNBOUNDED: { phase: 'running', cite: MONITOR },
  FAILED: { phase: 'failed', cite: `${MONITOR} → nova/compute/manager.py:ComputeManager._rollback_live_migration` },
  CANCELLED: { phase: 'cancelled', cite: `${MONITOR} → nova/compute/manager.py:ComputeManager._rollback_live_migration (migration_status='cancelled')` },
};

function throughLibvirt(status: MigrationStatus): PhaseOf | null {
  const l = LIBVIRT.statuses[status];
  if (l === null) return null;
  if (status === 'none') {
    return { phase: 'preparing', via: 'libvirt job type NONE', cite: 'nova/compute/manager.py:ComputeManager._do_live_migration', confidence: 'inferred', note: 'before migrate (accepted, queued, preparing come first)' };
  }
  if (status === 'postcopy-active' || status === 'postcopy-recover' || status === 'postcopy-paused') {
    return { phase: 'running (post-copy)', via: `libvirt job type ${l.phase}`, cite: 'nova/compute/manager.py:ComputeManager.handle_lifecycle_event (EVENT_LIFECYCLE_POSTCOPY_STARTED)', confidence: 'code' };
  }
  const m = BY_JOB_TYPE[l.phase];
  if (m === undefined) throw new Error(`nova: no status for libvirt job type ${l.phase}`);
  return {
    phase: m.phase,
    via: `libvirt job type ${l.phase}`,
    cite: m.cite,
    confidence: 'code',
    ...(status === 'completed' ? { note: "running until libvirt's job ends; then _post_live_migration sets completed" } : {}),
  };
}

const statuses = Object.fromEntries((Object.keys(LIBVIRT.statuses) as MigrationStatus[]).map((s) => [s, throughLibvirt(s)])) as Record<MigrationStatus, PhaseOf | null>;

export const NOVA: OrchestratorMap = {
  id: 'nova',
  name: 'OpenStack Nova',
  observes: 'the live migration record, Migration.status (os-migrations API)',
  learnsFrom: "libvirt's job type, polled by the libvirt driver's migration monitor (guest.get_job_info)",
  phases: ['accepted', 'queued', 'preparing', 'running', 'running (post-copy)', 'post-migrating', 'completed', 'failed', 'error', 'cancelled'],
  own: [
    { phase: 'accepted', when: 'the API and conductor accepted the request', cite: 'nova/conductor/tasks/live_migrate.py:LiveMigrationTask' },
    { phase: 'queued', when: 'the source compute waits for a free live-migration slot', cite: 'nova/compute/manager.py:ComputeManager.live_migration' },
    { phase: 'preparing', when: 'pre_live_migration runs on the destination (the destination QEMU starts)', cite: 'nova/compute/manager.py:ComputeManager._do_live_migration' },
    { phase: 'completed', when: 'after libvirt ended the job and _post_live_migration cleaned up the source', cite: 'nova/compute/manager.py:ComputeManager._post_live_migration' },
    { phase: 'error', when: 'an exception before or around the driver call (e.g. pre_live_migration failed)', cite: 'nova/compute/manager.py:ComputeManager._do_live_migration' },
    { phase: 'post-migrating', when: 'the resize / cold-migration path only; a live migration does not use it', cite: 'nova/compute/manager.py:ComputeManager._resize_instance' },
  ],
  statuses,
  unknownStatus: { text: 'Nova sees QEMU only through libvirt: a status libvirt does not know never reaches it', cite: MONITOR },
  consequences: {
    'one-sided-ack-stall': {
      text:
        'live_migration_completion_timeout (scaled by the guest size) ends it: live_migration_timeout_action abort gives cancelled, force_complete pauses the guest (or switches to post-copy) — both also what a migration that cannot converge gets',
      cite: 'nova/virt/libvirt/migration.py:should_trigger_timeout_action; nova/virt/libvirt/driver.py:LibvirtDriver._live_migration_monitor',
      confidence: 'code',
    },
    'cancel-after-eof': {
      text:
        "libvirt's paused destination applies; and when libvirt's job type is NONE Nova calls the migration failed if the domain still runs on the source — here it does, so Nova rolls back",
      cite: 'nova/virt/libvirt/migration.py:find_job_type',
      confidence: 'code',
      prevents: true,
    },
    'break-after-eof': {
      text: 'as for a cancel: failed, rolled back; the paused destination is destroyed (rollback_live_migration_at_destination)',
      cite: 'nova/compute/manager.py:ComputeManager._rollback_live_migration',
      confidence: 'inferred',
      prevents: true,
    },
    'pre-switchover-pause': {
      text: 'the status stays running while the vCPUs are stopped',
      cite: MONITOR,
      confidence: 'inferred',
    },
  },
};
