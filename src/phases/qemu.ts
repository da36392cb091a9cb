/**
 * QEMU's migration status (`MigrationStatus` in qapi/migration.json), the value both QEMUs report in
 * `query-migrate` and the QMP `MIGRATION` event: the source's `MigrationState.state` and the
 * destination's `MigrationIncomingState.state` (migration/migration.h). Our model's QEMU machines use
 * these strings as their state names.
 */

export type Side = 'source' | 'destination';

export interface MigrationStatusInfo {
  readonly status: string;
  /** The QEMUs that can be in it (no code writes cancelling or cancelled, or the pre-switchover stages, into the incoming state). */
  readonly sides: readonly Side[];
  readonly meaning: string;
  /** Set for statuses newer than the long-standing list. */
  readonly since?: string;
}

/** In qapi/migration.json's order. */
export const MIGRATION_STATUSES = [
  { status: 'none', sides: ['source', 'destination'], meaning: 'no migration has started (or the last one was reset by the next migrate)' },
  { status: 'setup', sides: ['source', 'destination'], meaning: 'connecting and preparing: channels, the return path, save_setup / load_setup of every device' },
  { status: 'cancelling', sides: ['source'], meaning: 'migrate_cancel was taken; the thread winds down' },
  { status: 'cancelled', sides: ['source'], meaning: 'cancelled; the guest runs on the source' },
  { status: 'active', sides: ['source', 'destination'], meaning: 'iterating: RAM and precopy device data while the guest runs' },
  { status: 'postcopy-device', sides: ['source'], meaning: 'postcopy requested; device state being sent before postcopy starts', since: 'QEMU 10.2' },
  { status: 'postcopy-active', sides: ['source', 'destination'], meaning: 'the guest runs on the destination, pages fetched on demand' },
  { status: 'postcopy-paused', sides: ['source', 'destination'], meaning: 'postcopy lost its channel; waiting for recovery' },
  { status: 'postcopy-recover-setup', sides: ['source', 'destination'], meaning: 'a postcopy recovery is connecting' },
  { status: 'postcopy-recover', sides: ['source', 'destination'], meaning: 'a postcopy recovery is resynchronising' },
  { status: 'completed', sides: ['source', 'destination'], meaning: 'every byte sent (source) or loaded (destination)' },
  { status: 'failing', sides: ['source'], meaning: 'an error was hit; cleanup still runs before failed', since: 'after QEMU 10.2; release not confirmed' },
  { status: 'failed', sides: ['source', 'destination'], meaning: 'the migration failed; on the source the guest is resumed if it ran before' },
  { status: 'colo', sides: ['source', 'destination'], meaning: 'COLO fault tolerance: continuous checkpoints after the first migration' },
  { status: 'pre-switchover', sides: ['source'], meaning: 'vCPUs stopped; waiting for migrate-continue (pause-before-switchover capability)' },
  { status: 'device', sides: ['source'], meaning: 'vCPUs stopped; the final device state is being sent (downtime)' },
  { status: 'wait-unplug', sides: ['source'], meaning: 'waiting for the guest to unplug failover devices before iterating' },
] as const satisfies readonly MigrationStatusInfo[];

export type MigrationStatus = (typeof MIGRATION_STATUSES)[number]['status'];

export const STATUS_NAMES: readonly MigrationStatus[] = MIGRATION_STATUSES.map((s) => s.status);

export function isMigrationStatus(s: string): s is MigrationStatus {
  return (STATUS_NAMES as readonly string[]).includes(s);
}
