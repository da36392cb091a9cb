/**
 * Issue #5's verdicts, found by the model: which REINIT design is safe (S1), kernel-legal (S2), ends (L1)
 * and survives a REINIT storm (L2), on 1..3 devices of every feature set.
 */
import { createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { CheckedDestinationContext, QemuDestinationContext } from '../machines/qemuDestination.js';
import { type CheckedSourceContext, type QemuSourceContext, type ReinitDesign, qemuSourceMachine, sourcePhase } from '../machines/qemuSource.js';
import { approvedGenOf, genOf, withObservers } from '../src/properties/ghosts.js';
import { FEATURE_SETS, type FeatureSet } from '../machines/vfioArcs.js';
import { type ExploreResult, type Invariant, explore } from '../src/explorer/index.js';
import { migrationSystem } from '../src/systems/migration.js';
import { checkDesign } from '../src/systems/reinit.js';

const P2P: FeatureSet = 'STOP_COPY|P2P|PRE_COPY';
const NO_P2P: FeatureSet = 'STOP_COPY|PRE_COPY';
const holds = (r: ExploreResult, name: string) => r.properties.find((p) => p.name === name)!.holds;
const finite = (design: ReinitDesign, devices: FeatureSet[], extra = {}) =>
  explore(migrationSystem({ devices, ack: 'per-device', design, guestReinits: 1, ...extra }), { progress: false });
const storm = (design: ReinitDesign, devices: FeatureSet[], reinitBudget?: number) =>
  explore(
    migrationSystem({ devices, ack: 'per-device', design, guestReinits: 'unbounded', cancel: false, faults: false, ...(reinitBudget !== undefined ? { reinitBudget } : {}) }),
    { progress: false },
  );

describe('S1 no stale switchover, S2 kernel-legal, L1 ends — on N = 1..3 devices of every feature set', () => {
  for (const n of [1, 2, 3]) {
    for (const set of FEATURE_SETS) {
      it(`N=${n}, ${set}`, () => {
        const devices = Array<FeatureSet>(n).fill(set);
        const precopy = set.includes('PRE_COPY');
        const p2p = set.includes('P2P');
        if (n > 1 && !p2p) {
          expect(() => finite('legacy', devices)).toThrow(/unless every one supports P2P/);
          return;
        }
        for (const design of ['legacy', 'reusable-ack', 'recheck-resume'] as const) {
          const r = finite(design, devices);
          const s1 = holds(r, 'NoStaleSwitchover');
          // legacy never re-acks; reusable-ack checks at the stop only in the P2P prepare handler
          const expected = !precopy || design === 'recheck-resume' || (design === 'reusable-ack' && p2p);
          expect(s1, `${design} ${n}×${set} S1`).toBe(expected);
          // devices leave precopy with stale data in every design but recheck-resume (11.1 then fails)
          expect(holds(r, 'NoStaleStop'), `${design} ${n}×${set} NoStaleStop`).toBe(!precopy || design === 'recheck-resume');
          expect(holds(r, 'KernelAcceptsEveryRequest'), `${design} S2`).toBe(true);
          expect(holds(r, 'MigrationEnds'), `${design} L1`).toBe(true);
          const others = r.properties.filter((p) => !p.holds && p.name !== 'NoStaleSwitchover' && p.name !== 'NoStaleStop').map((p) => p.name);
          expect(others, design).toEqual([]);
        }
      });
    }
  }

  it('mixed devices (precopy and not, all P2P, as QEMU requires for several devices): reusable-ack holds S1', () => {
    expect(holds(finite('reusable-ack', [P2P, 'STOP_COPY|P2P']), 'NoStaleSwitchover')).toBe(true);
    expect(holds(finite('legacy', [P2P, 'STOP_COPY|P2P']), 'NoStaleSwitchover')).toBe(false);
    expect(holds(finite('recheck-resume', [P2P, 'STOP_COPY|P2P']), 'NoStaleSwitchover')).toBe(true);
  });

  it('reusable-ack with P2P: a late REINIT stops the devices with stale data, then fails the migration before any state is sent', () => {
    const r = finite('reusable-ack', [P2P]);
    const t = r.properties.find((p) => p.name === 'NoStaleStop')!.counterexample!;
    const events = t.steps.map((s) => s.event.type);
    expect(events.indexOf('GUEST_REINITS_DEVICE')).toBeGreaterThan(initDataSentAt(t));
    expect(t.steps.at(-2)!.event.type).toBe('PENDING_FITS_THRESHOLD'); // the decision
    expect(t.steps.at(-1)!.changes[0]).toMatchObject({ component: 'source', from: 'migrating.active.decided', to: 'migrating.device.saving' });
    expect(t.steps.at(-1)!.changes[0]!.context).toContain('failReason: null→"switchover-ack requested after the switchover decision"');
  });
});

/** The step at which the source sent INIT_DATA_SENT for device 0. */
const initDataSentAt = (t: { steps: readonly { changes: readonly { context?: string }[] }[] }) =>
  t.steps.findIndex((s) => s.changes.some((c) => (c.context ?? '').includes('initialDataSent[0]: false→true')));

describe('the counterexamples are short and tell the story', () => {
  it('legacy: the device is reconfigured after INIT_DATA_SENT and the ack for the old data lets the switchover through', () => {
    const t = finite('legacy', [P2P]).properties.find((p) => p.name === 'NoStaleSwitchover')!.counterexample!;
    const events = t.steps.map((s) => s.event.type);
    expect(events.indexOf('GUEST_REINITS_DEVICE')).toBeGreaterThan(initDataSentAt(t));
    expect(events).toContain('MIG_RP_MSG_SWITCHOVER_ACK');
    expect(t.steps.at(-1)!.states['source']).toMatch(/^migrating\.device\./);
    expect(t.steps.length).toBeLessThanOrEqual(14);
  });

  it('reusable-ack without P2P: a reconfiguration after INIT_DATA_SENT is never queried before the stop', () => {
    const t = finite('reusable-ack', [NO_P2P]).properties.find((p) => p.name === 'NoStaleSwitchover')!.counterexample!;
    const n = t.steps.length;
    // the guest reconfigures after INIT_DATA_SENT left; the pass that fits the threshold decides (its
    // gate is read before any query), the stop has no check without P2P, and the stale state is saved
    // (the stop and the final save run under one BQL hold: one step). Issue 13 shortened this story:
    // before, the switchover waited for PRECOPY_INFO to read 0, so a REINIT had to fall after the decision.
    expect(t.steps.map((s) => s.event.type).indexOf('GUEST_REINITS_DEVICE')).toBeGreaterThan(initDataSentAt(t));
    expect(t.steps[n - 2]!.changes[0]).toMatchObject({ component: 'source', from: 'migrating.active.iterating', to: 'migrating.active.decided' });
    expect(t.steps[n - 1]!.changes[0]).toMatchObject({ component: 'source', from: 'migrating.active.decided', to: 'migrating.device.closing' });
  });
});

describe('REINIT is explored at every point of precopy', () => {
  const src = (s: Parameters<Invariant['holds']>[0]) => s.context<CheckedSourceContext>('source');
  const dst = (s: Parameters<Invariant['holds']>[0]) => s.context<CheckedDestinationContext>('destination');
  // Each witness claims a situation never happens; the model must refute every one.
  const reinitDone = (s: Parameters<Invariant['holds']>[0]) => src(s).reinitsLeft === 0 && genOf(src(s), 0) === 1;
  const decided = (s: Parameters<Invariant['holds']>[0]) => sourcePhase(s.value('source')) === 'decided';
  const witnesses: Invariant[] = [
    { name: 'before INIT_DATA_SENT', holds: (s) => !(reinitDone(s) && !src(s).initialDataSent[0] && approvedGenOf(dst(s), 0) === -1) },
    { name: 'after INIT_DATA_SENT, before the ack', holds: (s) => !(reinitDone(s) && src(s).initialDataSent[0] && src(s).pendingAcks === 1 && !decided(s)) },
    { name: 'after the ack', holds: (s) => !(reinitDone(s) && src(s).initialDataSent[0] && src(s).pendingAcks === 0 && !decided(s)) },
    { name: 'between the decision and the stop', holds: (s) => !(reinitDone(s) && decided(s)) },
  ];
  for (const design of ['reusable-ack', 'recheck-resume'] as const) {
    it(design, () => {
      const spec = migrationSystem({ devices: [P2P], ack: 'per-device', design, guestReinits: 1 });
      const r = explore({ ...spec, invariants: witnesses }, { progress: false });
      for (const w of witnesses) expect(holds(r, w.name), w.name).toBe(false);
    });
  }

  it('never after the stop: the source ignores a reconfiguration once the vCPUs are stopped (the kvm thread’s premise)', () => {
    // the generation is the observers' ghost: the checked machine keeps it
    const a = createActor(withObservers(qemuSourceMachine, 'source') as typeof qemuSourceMachine, { input: { devices: [P2P], ack: 'per-device', design: 'recheck-resume', guestReinits: 2 } }).start();
    for (const e of ['MIGRATE', 'THREAD_STEP', 'THREAD_STEP', 'THREAD_STEP'] as const) a.send({ type: e });
    a.send({ type: 'MIG_RP_MSG_SWITCHOVER_ACK', attempt: 0 });
    a.send({ type: 'PENDING_FITS_THRESHOLD' }); // the decision
    expect(sourcePhase(a.getSnapshot().value)).toBe('decided');
    a.send({ type: 'GUEST_REINITS_DEVICE', device: 0 }); // vCPUs still run: a new generation
    expect((a.getSnapshot().context as CheckedSourceContext).gen).toEqual([1]);
    a.send({ type: 'THREAD_STEP' }); // recheck: REINIT found, the decision is revoked, precopy resumes
    expect(a.getSnapshot().value).toEqual({ migrating: { active: 'iterating' } });
    expect(a.getSnapshot().context).toMatchObject({ runstate: 'running', pendingAcks: 1 });
    expect(a.getSnapshot().context.devs[0]!.state).toBe('PRE_COPY');
    a.send({ type: 'THREAD_STEP' });
    a.send({ type: 'MIG_RP_MSG_SWITCHOVER_ACK', attempt: 0 });
    a.send({ type: 'PENDING_FITS_THRESHOLD' });
    a.send({ type: 'THREAD_STEP' });
    expect(a.getSnapshot().value).toEqual({ migrating: { device: 'closing' } });
    expect(a.getSnapshot().context.runstate).toBe('finish-migrate');
    const before = a.getSnapshot().context;
    a.send({ type: 'GUEST_REINITS_DEVICE', device: 0 });
    expect(a.getSnapshot().context).toBe(before);
  });
});

describe('L2: a REINIT storm', () => {
  for (const design of ['reusable-ack', 'recheck-resume'] as const) {
    it(`${design}: an unbounded storm keeps the migration in precopy forever; a budget removes every such cycle`, () => {
      const wild = storm(design, [P2P]);
      const np = wild.properties.find((p) => p.name === 'NoNonProgressCycle')!;
      expect(np.holds).toBe(false);
      const cycle = np.counterexample!.steps.slice(np.counterexample!.cycleStart! - 1).map((s) => s.event.type);
      expect(cycle).toContain('GUEST_REINITS_DEVICE');
      expect(cycle).toContain('THREAD_STEP');
      for (const budget of [0, 1, 2]) {
        const tamed = storm(design, [P2P], budget);
        expect(holds(tamed, 'NoNonProgressCycle'), `budget ${budget}`).toBe(true);
        expect(holds(tamed, 'MigrationEnds'), `budget ${budget}`).toBe(true);
      }
    });
  }

  it('legacy cannot see REINIT, so no budget can bound the storm', () => {
    expect(holds(storm('legacy', [P2P], 2), 'NoNonProgressCycle')).toBe(false);
  });

  it('two devices under a storm with a budget: still no livelock', () => {
    expect(holds(storm('reusable-ack', [P2P, P2P], 1), 'NoNonProgressCycle')).toBe(true);
  });

  it('checkDesign reports S1, S2, L1 from the finite run and L2 from the storm', () => {
    const d = checkDesign({ devices: [NO_P2P], design: 'reusable-ack', reinitBudget: 1, cancel: false, faults: false });
    const claims = Object.fromEntries(d.properties.filter((p) => p.claim).map((p) => [p.claim, p.holds]));
    expect(claims).toEqual({ S1: false, S2: true, L1: true, L2: true });
  });
});
