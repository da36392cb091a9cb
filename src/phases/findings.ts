/**
 * What the model finds (the check command's results and docs/reinit.md) that an orchestrator would have
 * to tell apart from an ordinary run, written as the source QEMU's status sequence next to the sequence
 * of the ordinary run it resembles. Which orchestrator can tell them apart is computed from the phase
 * maps (src/phases/index.ts).
 */
import type { MigrationStatus } from './qemu.js';

export interface Finding {
  readonly id: string;
  readonly title: string;
  /** What the model shows, and the command that shows it. */
  readonly model: string;
  readonly command: string;
  /** The property or claim the model reports it under. */
  readonly property: string;
  /** The source QEMU's statuses while it happens (the last one may last forever). */
  readonly source: readonly MigrationStatus[];
  /** The destination QEMU's statuses. */
  readonly destination: readonly MigrationStatus[];
  readonly lookAlike: { readonly name: string; readonly source: readonly MigrationStatus[]; readonly destination: readonly MigrationStatus[] };
}

export const FINDINGS = [
  {
    id: 'one-sided-ack-stall',
    title: 'switchover-ack on the source only, no precopy device: the migration never ends',
    model:
      'the source waits for an ack the destination will never send; it iterates in active for good while the guest keeps running',
    command: 'migration-statecharts check --devices 1 --features stop-copy --one-side source',
    property: 'MigrationEnds (violated)',
    source: ['setup', 'active'],
    destination: ['setup', 'active'],
    lookAlike: { name: 'a slow migration that has not converged yet', source: ['setup', 'active'], destination: ['setup', 'active'] },
  },
  {
    id: 'one-sided-ack-failure',
    title: 'switchover-ack on the source only, a precopy device: the migration fails',
    model: "the destination rejects the device's INIT_DATA_SENT notification; both sides end failed and the guest stays on the source",
    command: 'migration-statecharts check --devices 1 --features pre-copy --one-side source',
    property: 'MigrationEnds (violated)',
    source: ['setup', 'active', 'failed'],
    destination: ['setup', 'active', 'failed'],
    lookAlike: { name: 'a migration failed for any other reason', source: ['setup', 'active', 'failed'], destination: ['setup', 'active', 'failed'] },
  },
  {
    id: 'cancel-after-eof',
    title: 'a cancel after the final device state was sent: the guest may run on both hosts',
    model:
      'the source still takes migrate_cancel while it waits on the return path after QEMU_VM_EOF, and resumes the guest; the destination has everything, ends completed and starts its copy',
    command: 'migration-statecharts check --devices 1',
    property: 'GuestRunsOnOneSide (the documented exception)',
    source: ['setup', 'active', 'device', 'cancelling', 'cancelled'],
    destination: ['setup', 'active', 'completed'],
    lookAlike: { name: 'a migration cancelled before switchover', source: ['setup', 'active', 'cancelling', 'cancelled'], destination: ['setup', 'active', 'failed'] },
  },
  {
    id: 'break-after-eof',
    title: 'a broken stream after the final device state was sent: the same hazard as a cancel',
    model: 'the source sees the stream error, ends failed and resumes the guest, while the destination already loaded everything',
    command: 'migration-statecharts check --devices 1',
    property: 'GuestRunsOnOneSide (the documented exception)',
    source: ['setup', 'active', 'device', 'failed'],
    destination: ['setup', 'active', 'completed'],
    lookAlike: { name: 'a migration that failed during the switchover', source: ['setup', 'active', 'device', 'failed'], destination: ['setup', 'active', 'failed'] },
  },
  {
    id: 'pre-switchover-pause',
    title: 'pause-before-switchover: the vCPUs stopped, waiting for migrate-continue',
    model: 'the source stops the guest and waits in pre-switchover until someone sends migrate-continue; without it the guest stays paused',
    command: 'migration-statecharts check --devices 1 --pause-before-switchover',
    property: 'MigrationEnds (holds only because the environment may send migrate-continue)',
    source: ['setup', 'active', 'pre-switchover'],
    destination: ['setup', 'active'],
    lookAlike: { name: 'a migration still iterating while the guest runs', source: ['setup', 'active'], destination: ['setup', 'active'] },
  },
] as const satisfies readonly Finding[];

export type FindingId = (typeof FINDINGS)[number]['id'];
