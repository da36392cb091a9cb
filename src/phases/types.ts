/** The shape of an orchestrator's phase map (src/phases/libvirt.ts, kubevirt.ts, nova.ts). */
import type { FindingId } from './findings.js';
import type { MigrationStatus } from './qemu.js';

export const ORCHESTRATOR_IDS = ['libvirt', 'kubevirt', 'nova'] as const;
export type OrchestratorId = (typeof ORCHESTRATOR_IDS)[number];

/** 'code': read in the orchestrator's source at the cited function; 'inferred': our reading of it, not shown by a run. */
export type Confidence = 'code' | 'inferred';

/** Where one QEMU status lands in an orchestrator. */
export interface PhaseOf {
  /** The orchestrator's phase (or status) while the source QEMU is in this status. */
  readonly phase: string;
  /** What the mapping passes through on the way (e.g. libvirt's internal job status). */
  readonly via?: string;
  /** file:function in the orchestrator's source. */
  readonly cite: string;
  readonly confidence: Confidence;
  readonly note?: string;
}

/** A phase of the orchestrator's own, outside QEMU's migration (scheduling, preparing the target, ...). */
export interface OwnPhase {
  readonly phase: string;
  readonly when: string;
  readonly cite: string;
}

/** What an orchestrator's own protocol does about a model finding, beyond what its phases show. */
export interface Consequence {
  readonly text: string;
  readonly cite: string;
  readonly confidence: Confidence;
  /** True when the orchestrator's protocol keeps the hazard from happening at all. */
  readonly prevents?: boolean;
}

export interface OrchestratorMap {
  readonly id: OrchestratorId;
  readonly name: string;
  /** The value the map is about: which object and field the orchestrator's user reads. */
  readonly observes: string;
  /** How the orchestrator learns QEMU's status. */
  readonly learnsFrom: string;
  readonly phases: readonly string[];
  readonly own: readonly OwnPhase[];
  /** The source QEMU's status → the orchestrator's phase; null: the orchestrator does not know the status. */
  readonly statuses: Readonly<Record<MigrationStatus, PhaseOf | null>>;
  /** What the orchestrator does about a status it does not know. */
  readonly unknownStatus: { readonly text: string; readonly cite: string };
  readonly consequences: Readonly<Partial<Record<FindingId, Consequence>>>;
}
