/**
 * Checking a REINIT design (issue #5): two explorations of the migration system with guest device
 * reconfiguration —
 *  - with finitely many reconfigurations (default one) for S1, S2 and L1, and every #4 claim besides;
 *  - with a REINIT storm (the guest reconfigures without bound) for L2.
 * The verdicts come out of the model; nothing here assumes them.
 */
import type { ReinitDesign } from '../../machines/qemuSource.js';
import type { FeatureSet } from '../../machines/vfioArcs.js';
import { type ExploreOptions, type ExploreResult, type PropertyResult, explore } from '../explorer/index.js';
import { REINIT_CLAIMS } from '../properties/reinit.js';
import { migrationSystem } from './migration.js';

export const DESIGNS: readonly ReinitDesign[] = ['legacy', 'reusable-ack', 'recheck-resume'];

export interface DesignCheckOptions {
  readonly devices: readonly FeatureSet[];
  readonly design: ReinitDesign;
  readonly reinitBudget?: number;
  /** Reconfigurations the guest may make in the finite run (default 1). */
  readonly reinits?: number;
  readonly cancel?: boolean;
  readonly faults?: boolean;
}

export interface ClaimResult extends PropertyResult {
  /** S1, S2, L1 or L2 where the property is one of the claims. */
  readonly claim: keyof typeof REINIT_CLAIMS | null;
  /** Which exploration decided it. */
  readonly run: 'finite' | 'storm';
}

export interface DesignCheck {
  readonly design: ReinitDesign;
  readonly devices: readonly FeatureSet[];
  readonly reinitBudget: number | null;
  readonly finite: ExploreResult;
  readonly storm: ExploreResult;
  readonly properties: readonly ClaimResult[];
}

const claimOf = (name: string): ClaimResult['claim'] =>
  (Object.entries(REINIT_CLAIMS).find(([, n]) => n === name)?.[0] as ClaimResult['claim']) ?? null;

export function checkDesign(o: DesignCheckOptions, opts: ExploreOptions = {}): DesignCheck {
  const base = {
    devices: o.devices,
    ack: 'per-device' as const,
    design: o.design,
    ...(o.reinitBudget !== undefined ? { reinitBudget: o.reinitBudget } : {}),
    cancel: o.cancel ?? true,
    faults: o.faults ?? true,
  };
  const finite = explore(migrationSystem({ ...base, guestReinits: o.reinits ?? 1 }), opts);
  // the storm run asks L2 only, so it explores only what L2 needs (MigrationOptions.livelockOnly)
  const storm = explore(migrationSystem({ ...base, guestReinits: 'unbounded', livelockOnly: true }), opts);
  const properties: ClaimResult[] = [
    ...finite.properties.filter((p) => p.name !== 'NoNonProgressCycle').map((p) => ({ ...p, claim: claimOf(p.name), run: 'finite' as const })),
    ...storm.properties.filter((p) => p.name === 'NoNonProgressCycle').map((p) => ({ ...p, claim: 'L2' as const, run: 'storm' as const })),
  ];
  return { design: o.design, devices: o.devices, reinitBudget: o.reinitBudget ?? null, finite, storm, properties };
}
