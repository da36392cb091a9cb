/**
 * Orchestrator phase maps: where each of QEMU's migration statuses lands in libvirt, KubeVirt and Nova,
 * and what each of them therefore cannot tell apart — statuses that collapse into one phase, and the
 * model's findings that look, through the phases, exactly like an ordinary run.
 *
 * @example
 *   import { phaseMap, collapsedStatuses, findingViews } from 'migration-statecharts/phases';
 *   phaseMap('libvirt').statuses['pre-switchover']?.phase; // => 'UNBOUNDED'
 *   collapsedStatuses(phaseMap('kubevirt')).find((c) => c.phase === 'Running')?.statuses.length; // => 10
 *   findingViews(phaseMap('nova')).find((v) => v.finding.id === 'one-sided-ack-stall')?.distinguishable; // => false
 */
import { FINDINGS, type Finding } from './findings.js';
import { KUBEVIRT } from './kubevirt.js';
import { LIBVIRT } from './libvirt.js';
import { NOVA } from './nova.js';
import { MIGRATION_STATUSES, type MigrationStatus, STATUS_NAMES } from './qemu.js';
import { type Consequence, ORCHESTRATOR_IDS, type OrchestratorId, type OrchestratorMap } from './types.js';

export * from './qemu.js';
export * from './types.js';
export { FINDINGS, type Finding, type FindingId } from './findings.js';
export { LIBVIRT } from './libvirt.js';
export { KUBEVIRT } from './kubevirt.js';
export { NOVA } from './nova.js';

export const ORCHESTRATORS: Readonly<Record<OrchestratorId, OrchestratorMap>> = { libvirt: LIBVIRT, kubevirt: KUBEVIRT, nova: NOVA };

export function phaseMap(id: OrchestratorId): OrchestratorMap {
  return ORCHESTRATORS[id];
}

export function isOrchestratorId(s: string): s is OrchestratorId {
  return (ORCHESTRATOR_IDS as readonly string[]).includes(s);
}

/** The orchestrator's phase for a status; `unknown(STATUS)` where it does not know the status. */
export function phaseOf(map: OrchestratorMap, status: MigrationStatus): string {
  return map.statuses[status]?.phase ?? `unknown(${status})`;
}

export interface Collapse {
  readonly phase: string;
  /** The QEMU statuses it stands for, in qapi order. */
  readonly statuses: readonly MigrationStatus[];
}

/** Every phase that stands for more than one QEMU status, in the order of the orchestrator's phase list. */
export function collapsedStatuses(map: OrchestratorMap): Collapse[] {
  const by = new Map<string, MigrationStatus[]>();
  for (const s of STATUS_NAMES) {
    const p = map.statuses[s];
    if (p) by.set(p.phase, [...(by.get(p.phase) ?? []), s]);
  }
  return map.phases.filter((p) => (by.get(p)?.length ?? 0) > 1).map((phase) => ({ phase, statuses: by.get(phase)! }));
}

/** The statuses the orchestrator has no name for. */
export function unknownStatuses(map: OrchestratorMap): MigrationStatus[] {
  return STATUS_NAMES.filter((s) => map.statuses[s] === null);
}

/** A status sequence as the orchestrator shows it: each status mapped, repeats merged. */
export function seenAs(map: OrchestratorMap, statuses: readonly MigrationStatus[]): string[] {
  const out: string[] = [];
  for (const s of statuses) {
    const p = phaseOf(map, s);
    if (out[out.length - 1] !== p) out.push(p);
  }
  return out;
}

export interface FindingView {
  readonly finding: Finding;
  /** The source's status sequence through the orchestrator, and the look-alike's. */
  readonly seen: readonly string[];
  readonly lookAlikeSeen: readonly string[];
  /** False when the orchestrator shows the finding exactly as it shows the ordinary run it resembles. */
  readonly distinguishable: boolean;
  readonly consequence: Consequence | null;
}

/** Each model finding through the orchestrator's phases. */
export function findingViews(map: OrchestratorMap): FindingView[] {
  return FINDINGS.map((finding) => {
    const seen = seenAs(map, finding.source);
    const lookAlikeSeen = seenAs(map, finding.lookAlike.source);
    return {
      finding,
      seen,
      lookAlikeSeen,
      distinguishable: seen.join('\u0000') !== lookAlikeSeen.join('\u0000'),
      consequence: map.consequences[finding.id as keyof typeof map.consequences] ?? null,
    };
  });
}

/** The machine-readable view of one orchestrator (what `phases --json` prints). */
export function phasesReport(map: OrchestratorMap) {
  return {
    orchestrator: map.id,
    name: map.name,
    observes: map.observes,
    learnsFrom: map.learnsFrom,
    phases: map.phases,
    own: map.own,
    statuses: MIGRATION_STATUSES.map((s) => ({ status: s.status, sides: s.sides, ...(map.statuses[s.status] ?? { phase: null }) })),
    unknownStatus: map.unknownStatus,
    collapsed: collapsedStatuses(map),
    unknown: unknownStatuses(map),
    findings: findingViews(map).map((v) => ({
      id: v.finding.id,
      title: v.finding.title,
      property: v.finding.property,
      seen: v.seen,
      lookAlike: v.finding.lookAlike.name,
      lookAlikeSeen: v.lookAlikeSeen,
      distinguishable: v.distinguishable,
      consequence: v.consequence,
    })),
  };
}

/** The text view: the map, the collapses, the findings. */
export function formatPhases(map: OrchestratorMap): string {
  const lines = [`${map.name}: ${map.observes}`, `  learns QEMU's status from ${map.learnsFrom}`, '', 'QEMU status (source) → phase'];
  const w = Math.max(...STATUS_NAMES.map((s) => s.length));
  for (const s of STATUS_NAMES) {
    const p = map.statuses[s];
    lines.push(`  ${s.padEnd(w)}  ${p ? `${p.phase}${p.via ? `  (${p.via})` : ''}` : 'not known to it'}`);
  }
  lines.push('', 'cannot tell apart:');
  for (const c of collapsedStatuses(map)) lines.push(`  ${c.phase}: ${c.statuses.join(', ')}`);
  const unknown = unknownStatuses(map);
  if (unknown.length > 0) lines.push(`  not known at all: ${unknown.join(', ')} — ${map.unknownStatus.text}`);
  lines.push('', 'model findings:');
  for (const v of findingViews(map)) {
    lines.push(
      `  ${v.distinguishable ? 'visible  ' : 'INVISIBLE'} ${v.finding.id}: seen as ${v.seen.join(' → ')}${v.distinguishable ? '' : `, the same as ${v.finding.lookAlike.name}`}`,
    );
    if (v.consequence) lines.push(`            ${v.consequence.prevents ? 'prevented: ' : ''}${v.consequence.text}`);
  }
  return lines.join('\n');
}
