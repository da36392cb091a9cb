/** The orchestrator phase maps (src/phases/), `phases`, and docs/phases.md. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { qemuDestinationMachine } from '../machines/qemuDestination.js';
import { qemuSourceMachine } from '../machines/qemuSource.js';
import { main } from '../src/cli.js';
import { phasesDocText } from '../src/docs/phasesDoc.js';
import {
  FINDINGS,
  MIGRATION_STATUSES,
  ORCHESTRATOR_IDS,
  STATUS_NAMES,
  collapsedStatuses,
  findingViews,
  isMigrationStatus,
  phaseMap,
  seenAs,
  unknownStatuses,
} from '../src/phases/index.js';

function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = main(argv, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('the phase maps', () => {
  it("cover QEMU's MigrationStatus list (qapi/migration.json, with the newer failing), each status once", () => {
    expect(STATUS_NAMES).toHaveLength(17);
    expect(new Set(STATUS_NAMES).size).toBe(17);
    for (const id of ORCHESTRATOR_IDS) expect(Object.keys(phaseMap(id).statuses).sort(), id).toEqual([...STATUS_NAMES].sort());
  });

  it("cover every state of the model's source and destination QEMU machines", () => {
    // the source tags each status region with its QAPI name (a state like `migrating` holds several);
    // the destination's top-level states are its statuses
    type Node = { tags?: readonly string[]; states?: Record<string, Node> };
    const tags = (n: Node): string[] => [...(n.tags ?? []), ...Object.values(n.states ?? {}).flatMap(tags)];
    const sourceStatuses = tags(qemuSourceMachine.config as Node);
    expect(new Set(sourceStatuses).size).toBe(sourceStatuses.length);
    for (const states of [sourceStatuses, Object.keys(qemuDestinationMachine.config.states ?? {})]) {
      for (const state of states) {
        expect(isMigrationStatus(state), state).toBe(true);
        for (const id of ORCHESTRATOR_IDS) expect(phaseMap(id).statuses, `${id} ${state}`).toHaveProperty([state]);
      }
    }
    expect(sourceStatuses).toContain('pre-switchover');
  });

  it('name a phase the orchestrator has, and cite a file and function, for every mapped status', () => {
    for (const id of ORCHESTRATOR_IDS) {
      const m = phaseMap(id);
      for (const s of STATUS_NAMES) {
        const p = m.statuses[s];
        if (!p) continue;
        expect(m.phases, `${id} ${s}`).toContain(p.phase);
        expect(p.cite, `${id} ${s}`).toMatch(/^[\w./-]+\.(c|go|py):\w/);
      }
      for (const o of m.own) expect(m.phases).toContain(o.phase);
    }
  });

  it("libvirt folds every running status into UNBOUNDED and keeps pre-switchover's PAUSED internal (qemuMigrationUpdateJobType, virDomainJobStatusToType)", () => {
    const l = phaseMap('libvirt');
    expect(l.statuses['pre-switchover']).toMatchObject({ phase: 'UNBOUNDED', via: 'job status PAUSED' });
    expect(l.statuses.completed).toMatchObject({ phase: 'UNBOUNDED', via: 'job status HYPERVISOR_COMPLETED' });
    expect(l.statuses.cancelled?.phase).toBe('CANCELLED');
    expect(collapsedStatuses(l).find((c) => c.phase === 'UNBOUNDED')?.statuses).toEqual([
      'setup',
      'cancelling',
      'active',
      'postcopy-active',
      'postcopy-paused',
      'postcopy-recover',
      'completed',
      'pre-switchover',
      'device',
      'wait-unplug',
    ]);
    expect(unknownStatuses(l)).toEqual(['postcopy-device', 'postcopy-recover-setup', 'failing', 'colo']);
  });

  it('KubeVirt and Nova see no more than libvirt shows them: two statuses libvirt merges stay merged', () => {
    const l = phaseMap('libvirt');
    for (const id of ['kubevirt', 'nova'] as const) {
      const m = phaseMap(id);
      for (const a of STATUS_NAMES) {
        for (const b of STATUS_NAMES) {
          if (a === 'none' || b === 'none' || a === 'completed' || b === 'completed') continue;
          if (l.statuses[a] && l.statuses[b] && l.statuses[a]!.phase === l.statuses[b]!.phase && !a.startsWith('postcopy') && !b.startsWith('postcopy')) {
            expect(m.statuses[a]?.phase, `${id}: ${a} vs ${b}`).toBe(m.statuses[b]?.phase);
          }
        }
      }
      expect(unknownStatuses(m)).toEqual(unknownStatuses(l));
    }
  });

  it('the one-sided ack stall and the pre-switchover pause look like an ordinary running migration to all three', () => {
    for (const id of ORCHESTRATOR_IDS) {
      const v = findingViews(phaseMap(id));
      for (const f of ['one-sided-ack-stall', 'pre-switchover-pause']) expect(v.find((x) => x.finding.id === f)?.distinguishable, `${id} ${f}`).toBe(false);
      expect(v.map((x) => x.finding.id)).toEqual(FINDINGS.map((f) => f.id));
    }
    expect(seenAs(phaseMap('kubevirt'), ['setup', 'active', 'device', 'cancelling', 'cancelled'])).toEqual(['Running', 'Failed']);
  });

  it('every finding names statuses QEMU has on the side it is listed for', () => {
    const sides = Object.fromEntries(MIGRATION_STATUSES.map((s) => [s.status, s.sides as readonly string[]]));
    for (const f of FINDINGS) {
      for (const s of [...f.source, ...f.lookAlike.source]) expect(sides[s], `${f.id} ${s}`).toContain('source');
      for (const s of [...f.destination, ...f.lookAlike.destination]) expect(sides[s], `${f.id} ${s}`).toContain('destination');
    }
  });
});

describe('phases', () => {
  it('prints one orchestrator, as text and as JSON', () => {
    const t = run('phases', '--orchestrator', 'libvirt');
    expect(t.code).toBe(0);
    expect(t.out).toContain('  pre-switchover          UNBOUNDED  (job status PAUSED)');
    expect(t.out).toContain('INVISIBLE one-sided-ack-stall');
    const j = JSON.parse(run('phases', '--orchestrator', 'nova', '--json').out);
    expect(Object.keys(j)).toEqual(expect.arrayContaining(['orchestrator', 'statuses', 'collapsed', 'unknown', 'findings']));
    expect(j.orchestrator).toBe('nova');
    expect(j.statuses).toHaveLength(17);
  });

  it('refuses a bad or missing orchestrator in one line, exit 2', () => {
    expect(run('phases', '--orchestrator', 'openshift')).toEqual({ code: 2, out: '', err: "migration-statecharts: bad --orchestrator 'openshift'; valid: libvirt, kubevirt, nova" });
    expect(run('phases')).toEqual({ code: 2, out: '', err: 'migration-statecharts: missing --orchestrator; expected libvirt, kubevirt, nova' });
    expect(run('phases', '--orchestrator', 'nova', '--colour').err).toBe("migration-statecharts: Unknown option '--colour'");
  });
});

describe('docs/phases.md', () => {
  it('is what the phase maps produce now (regenerate with npm run docs)', () => {
    const committed = readFileSync(new URL('../docs/phases.md', import.meta.url), 'utf8');
    expect(phasesDocText().split('\n')).toEqual(committed.split('\n'));
    expect(committed).toContain('## The model\'s findings, at a glance');
  });
});
