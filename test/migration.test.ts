/**
 * The composed migration: every property on every configuration the issue names, the misconfigurations
 * with their counterexamples, and orchestrators broken on purpose so that each property is seen to bite.
 */
import { assign, createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { AckMode } from '../machines/migrationMessages.js';
import type { QemuDestinationContext } from '../machines/qemuDestination.js';
import { type QemuSourceContext, qemuSourceMachine } from '../machines/qemuSource.js';
import { setState } from '../machines/qemuVfio.js';
import { FEATURE_SETS, type FeatureSet } from '../machines/vfioArcs.js';
import { CompiledSystem, type ExploreResult, type GlobalView, explore, search, symmetryDefects } from '../src/explorer/index.js';
import { UNREACHED_BECAUSE, migrationSystem } from '../src/systems/migration.js';

const ACKS: AckMode[] = ['legacy', 'per-device', 'off'];
const ALL: FeatureSet = 'STOP_COPY|P2P|PRE_COPY';

const failing = (r: ExploreResult) => r.properties.filter((p) => !p.holds).map((p) => p.name);
const prop = (r: ExploreResult, name: string) => r.properties.find((p) => p.name === name)!;

describe('every property holds', () => {
  for (const n of [1, 2, 3]) {
    for (const set of FEATURE_SETS) {
      it(`N=${n}, ${set}, all three ack modes`, () => {
        if (n > 1 && !set.includes('P2P')) {
          // QEMU puts a migration blocker on several devices unless all of them support P2P
          expect(() => migrationSystem({ devices: Array(n).fill(set), ack: 'legacy' })).toThrow(/unless every one supports P2P/);
          const a = createActor(qemuSourceMachine, { input: { devices: Array(n).fill(set), ack: 'off' } }).start();
          a.send({ type: 'MIGRATE' });
          expect(a.getSnapshot().value).toBe('none');
          expect(a.getSnapshot().context.qmpError).toMatch(/several VFIO devices need P2P/);
          return;
        }
        for (const ack of ACKS) {
          const r = explore(migrationSystem({ devices: Array(n).fill(set), ack }), { progress: false });
          expect(failing(r), `${n} ${set} ${ack}`).toEqual([]);
          expect(r.limit).toBeNull();
        }
      });
    }
  }

  it('mixed feature sets (precopy and not, all with P2P), pause-before-switchover, every ack mode', () => {
    for (const ack of ACKS) {
      const r = explore(migrationSystem({ devices: [ALL, 'STOP_COPY|P2P', ALL], ack, pauseBeforeSwitchover: true }), { progress: false });
      expect(failing(r), ack).toEqual([]);
      expect(r.coverage['source']!.states.missed).not.toContain('pre-switchover');
    }
  });
});

describe('symmetry of interchangeable devices', () => {
  it('is not exact: QEMU handles its devices in order, so a device-swapped reachable state may be unreachable', () => {
    const spec = migrationSystem({ devices: [ALL, ALL], ack: 'per-device', symmetry: true });
    const sys = new CompiledSystem({ ...spec, dataSymmetry: undefined });
    const plain = search(sys, { progress: false });
    const d = symmetryDefects(sys, plain.store, spec.dataSymmetry!);
    expect(d.states).toBe(4098);
    expect(d.missing).toBe(1954);
    // e.g. both devices' first chunks on the stream in device order: the other order is never sent
    const t = new Uint32Array(sys.width);
    plain.store.load(d.example!.state, t);
    const stream = sys.view(t).channel('main').map((e) => `${e.type}${'device' in e ? e.device : ''}`);
    expect(stream.filter((m) => m.startsWith('VFIO_DEVICE_STATE'))).toEqual(['VFIO_DEVICE_STATE0', 'VFIO_DEVICE_STATE1']);
    // and the quotient reaches fewer classes than the reachable states have orbits: it misses some
    const reduced = explore(spec, { progress: false });
    expect(reduced.states).toBeLessThan(d.orbits);
  });

  it('so under it nothing holds: violations are reported only when they replay as real runs', () => {
    for (const [devices, ack] of [
      [[ALL, ALL], 'legacy'],
      [[ALL, ALL, ALL], 'per-device'],
      [[ALL, 'STOP_COPY|P2P', ALL], 'legacy'],
    ] as const) {
      const plain = explore(migrationSystem({ devices, ack }), { progress: false });
      const sym = explore(migrationSystem({ devices, ack, symmetry: true }), { progress: false });
      expect(plain.properties.every((p) => p.verdict === 'holds')).toBe(true);
      expect(sym.properties.map((p) => p.verdict)).toEqual(plain.properties.map(() => 'unknown'));
      expect(sym.approximation).toMatch(/order QEMU handles them in/);
      expect(sym.states).toBeLessThan(plain.states);
    }
    // a violated property under symmetry: the eager source's counterexample is a real run of the system
    const eager = qemuSourceMachine.provide({ guards: { canSwitchover: () => true } });
    const r = explore(migrationSystem({ devices: [ALL, ALL], ack: 'per-device', sourceMachine: eager, symmetry: true }), { progress: false });
    expect(prop(r, 'NoSwitchoverWhileAckPending').verdict).toBe('violated');
    const t = prop(r, 'NoSwitchoverWhileAckPending').counterexample!;
    expect(t.steps.at(-1)!.states['source']).toMatch(/^migrating\.device\./);
  });
});

describe('the switchover-ack misconfigurations', () => {
  it('ack on the source only, with no precopy device: the source waits for an ack forever (a stall, shown as a trace)', () => {
    const r = explore(migrationSystem({ devices: ['STOP_COPY'], ack: 'legacy', oneSide: 'source' }), { progress: false });
    expect(failing(r)).toEqual(['MigrationEnds']);
    const stall = prop(r, 'MigrationEnds').counterexample!;
    const last = stall.steps.at(-1)!.states;
    expect(last['source']).toMatch(/^migrating\.active\./);
    expect(stall.steps.map((s) => s.event.type)).toContain('MIG_CMD_OPEN_RETURN_PATH');
    expect(stall.steps.map((s) => s.event.type)).not.toContain('MIG_RP_MSG_SWITCHOVER_ACK');
  });

  it('ack on the source only, with a precopy device: the destination rejects INIT_DATA_SENT and the migration fails', () => {
    const r = explore(migrationSystem({ devices: ['STOP_COPY|PRE_COPY'], ack: 'per-device', oneSide: 'source', cancel: false, faults: false }), {
      progress: false,
    });
    expect(failing(r)).toEqual([]);
    // with no cancel and no fault, the only way the destination fails is the marker it cannot approve
    expect(r.coverage['destination']!.transitions.missed).not.toContain('active --VFIO_MIG_FLAG_DEV_INIT_DATA_SENT [initDataUnexpected]--> failed');
    expect(r.coverage['destination']!.states.missed).not.toContain('failed');
    expect(r.coverage['destination']!.states.missed).toContain('completed');
  });

  it('ack on the destination only: the source neither sends markers nor waits, and the migration completes', () => {
    const r = explore(migrationSystem({ devices: [ALL, ALL], ack: 'legacy', oneSide: 'destination', cancel: false, faults: false }), { progress: false });
    expect(failing(r)).toEqual([]);
    expect(r.coverage['destination']!.states.missed).toEqual(['failed']);
  });

  it('a device with precopy only on the destination: legacy counts an approval that never comes, and the migration stalls', () => {
    const r = explore(migrationSystem({ devices: ['STOP_COPY|P2P'], destinationDevices: [ALL], ack: 'legacy' }), { progress: false });
    expect(failing(r)).toEqual(['MigrationEnds']);
  });
});

describe('coverage', () => {
  it('reaches every destination state and every source state but the ones with a stated reason', () => {
    const reached = new Set<string>();
    const dst = new Set<string>();
    for (const ack of ACKS) {
      for (const pause of [false, true]) {
        const r = explore(migrationSystem({ devices: [ALL, 'STOP_COPY|P2P'], ack, pauseBeforeSwitchover: pause }), { progress: false });
        const c = r.coverage['source']!;
        const all = new Set([...c.states.missed]);
        ['none', 'setup', 'active', 'pre-switchover', 'device', 'completed', 'failed', 'cancelling', 'cancelled'].forEach((s) => !all.has(s) && reached.add(s));
        r.coverage['destination']!.states.missed.forEach(() => {});
        ['none', 'setup', 'active', 'completed', 'failed'].forEach((s) => !r.coverage['destination']!.states.missed.includes(s) && dst.add(s));
        for (const missed of c.states.missed) {
          if (missed !== 'pre-switchover') expect(UNREACHED_BECAUSE[missed], missed).toBeDefined();
        }
      }
    }
    expect([...reached].sort()).toEqual(['active', 'cancelled', 'cancelling', 'completed', 'device', 'failed', 'none', 'pre-switchover', 'setup']);
    expect([...dst].sort()).toEqual(['active', 'completed', 'failed', 'none', 'setup']);
  });

  it('postcopy is refused with a VFIO device, so its states are unreachable', () => {
    const a = createActor(qemuSourceMachine, { input: { devices: [ALL], ack: 'off', postcopyRam: true } }).start();
    a.send({ type: 'MIGRATE' });
    expect(a.getSnapshot().value).toBe('none');
    expect(a.getSnapshot().context.qmpError).toBe('postcopy-ram is not supported with VFIO devices (vfio_save_prepare)');
  });

  it('switchover-ack without the return path is refused (migrate_caps_check)', () => {
    const a = createActor(qemuSourceMachine, { input: { devices: [ALL], ack: 'legacy', returnPath: false } }).start();
    a.send({ type: 'MIGRATE' });
    expect(a.getSnapshot().value).toBe('none');
    expect(a.getSnapshot().context.qmpError).toBe('switchover-ack requires the return-path capability');
  });
});

describe('a hazard of QEMU itself', () => {
  it('a cancel after the final state was sent can leave the guest running on both hosts', () => {
    const strict = { name: 'GuestRunsOnOneSideEvenAfterACancel', holds: (s: GlobalView) => !(s.context<QemuSourceContext>('source').runstate === 'running' && s.context<QemuDestinationContext>('destination').runstate === 'running') };
    const spec = migrationSystem({ devices: [ALL], ack: 'legacy', faults: false });
    const r = explore({ ...spec, invariants: [strict] }, { progress: false });
    const t = prop(r, strict.name).counterexample!;
    const events = t.steps.map((s) => s.event.type);
    // the destination loads EOF and starts the guest; the source, still in device waiting for the
    // return path to close, takes the cancel and restarts its guest too
    expect(events.indexOf('QEMU_VM_EOF')).toBeGreaterThan(-1);
    expect(events.indexOf('MIGRATE_CANCEL')).toBeGreaterThan(events.lastIndexOf('THREAD_STEP') - 3);
    expect(t.steps.at(-1)!.states).toEqual({ source: 'cancelling.guest-restored', destination: 'completed' }); // the guest restarts before cleanup
    // and with the exception the project's invariant states, everything holds
    expect(failing(explore(spec, { progress: false }))).toEqual([]);
  });
});

describe("migrate_cancel's return-path-first interleaving (QEMU 10.0.2 migration_cancel)", () => {
  const started = (ack: AckMode, returnPath?: boolean) => {
    const a = createActor(qemuSourceMachine, { input: { devices: [ALL], ack, ...(returnPath === undefined ? {} : { returnPath }) } });
    const out: string[] = [];
    a.on('*', (e) => out.push(e.type));
    a.start();
    a.send({ type: 'MIGRATE' });
    a.send({ type: 'THREAD_STEP' }); // save setup: setup.saved
    return { a, out };
  };
  it('with a return path, in setup after save setup: the connection shuts at the command and the next pass fails the migration', () => {
    const { a, out } = started('legacy');
    a.send({ type: 'MIGRATE_CANCEL', returnPathFirst: true });
    expect(a.getSnapshot().value).toEqual({ migrating: { setup: 'saved' } });
    expect(a.getSnapshot().context.streamShut).toBe(true);
    expect(out.filter((t) => t === 'STREAM_SHUTDOWN')).toHaveLength(1);
    a.send({ type: 'MIGRATE_CANCEL', returnPathFirst: true }); // shut already: nothing more to do
    a.send({ type: 'THREAD_STEP' });
    expect(a.getSnapshot().value).toEqual({ failed: 'recovering' });
    expect(out.filter((t) => t === 'STREAM_SHUTDOWN')).toHaveLength(1); // a second shutdown(2) sends nothing
  });
  it('the plain cancel still ends cancelling; without a return path and in pre-switchover the interleaving does not exist; after EOF it fails the run', () => {
    const plain = started('legacy');
    plain.a.send({ type: 'MIGRATE_CANCEL' });
    expect(plain.a.getSnapshot().value).toEqual({ cancelling: 'winding-down' });
    const none = started('off');
    none.a.send({ type: 'MIGRATE_CANCEL', returnPathFirst: true });
    expect(none.a.getSnapshot().value).toEqual({ migrating: { setup: 'saved' } });
    expect(none.a.getSnapshot().context.streamShut).toBe(false);
    // pre-switchover (the thread waits on pause_sem): the CAS wins
    const p = createActor(qemuSourceMachine, { input: { devices: [ALL], ack: 'legacy', pauseBeforeSwitchover: true } }).start();
    for (const e of [{ type: 'MIGRATE' }, { type: 'THREAD_STEP' }, { type: 'THREAD_STEP' }, { type: 'MIG_RP_MSG_SWITCHOVER_ACK', attempt: 0 }, { type: 'PENDING_FITS_THRESHOLD' }] as const) p.send(e);
    expect(p.getSnapshot().value).toEqual({ migrating: 'pre-switchover' });
    p.send({ type: 'MIGRATE_CANCEL', returnPathFirst: true });
    expect(p.getSnapshot().value).toEqual({ migrating: 'pre-switchover' });
    p.send({ type: 'MIGRATE_CONTINUE' });
    p.send({ type: 'THREAD_STEP' });
    expect(p.getSnapshot().value).toEqual({ migrating: { device: 'closing' } });
    // after EOF, waiting for the return path: close_return_path_on_source fails on the shut return path and
    // migration_completion sets 'failed' (no BQL on that path), unless the CAS came first
    p.send({ type: 'MIGRATE_CANCEL', returnPathFirst: true });
    expect(p.getSnapshot().value).toEqual({ migrating: { device: 'closing' } });
    expect(p.getSnapshot().context.streamShut).toBe(true);
    p.send({ type: 'THREAD_STEP' });
    expect(p.getSnapshot().matches('failed')).toBe(true);
    const explored = (o: Parameters<typeof migrationSystem>[0]) => {
      const r = explore(migrationSystem(o), { progress: false });
      expect(failing(r)).toEqual([]);
      return r.states;
    };
    // the environment offers the interleaving only with a return path: no-ack counts do not move
    expect(explored({ devices: [ALL], ack: 'off' })).toBe(explored({ devices: [ALL], ack: 'off', cancelRace: false }));
    expect(explored({ devices: [ALL], ack: 'legacy' })).toBeGreaterThan(explored({ devices: [ALL], ack: 'legacy', cancelRace: false }));
  });
});

describe('each property bites an orchestrator that breaks it', () => {
  it('a source that ignores the ack gate violates NoSwitchoverWhileAckPending', () => {
    const eager = qemuSourceMachine.provide({ guards: { canSwitchover: () => true } });
    for (const ack of ['legacy', 'per-device'] as const) {
      const r = explore(migrationSystem({ devices: [ALL], ack, sourceMachine: eager }), { progress: false });
      expect(failing(r)).toContain('NoSwitchoverWhileAckPending');
      const t = prop(r, 'NoSwitchoverWhileAckPending').counterexample!;
      expect(t.steps.at(-1)!.states['source']).toMatch(/^migrating\.device\./);
    }
  });

  it('a source that asks STOP_COPY -> PRE_COPY after a failure violates KernelAcceptsEveryRequest', () => {
    const wrong = qemuSourceMachine.provide({
      actions: {
        recoverAfterFailure: assign(({ context }) => {
          const devs = context.devs.map((d) => setState(d, 'PRE_COPY'));
          const refused = devs.find((r) => r.refused)?.refused ?? null;
          return { devs: devs.map((r) => r.dev), runstate: 'running' as const, vfioRefused: context.vfioRefused ?? refused };
        }),
      },
    });
    const r = explore(migrationSystem({ devices: [ALL], ack: 'off', sourceMachine: wrong }), { progress: false });
    expect(failing(r)).toEqual(expect.arrayContaining(['KernelAcceptsEveryRequest', 'FailureRestoresSource']));
  });

  it('a source that forgets to restart the guest after a cancel violates FailureRestoresSource', () => {
    const lazy = qemuSourceMachine.provide({ actions: { recoverAfterFailure: assign({}) } });
    const r = explore(migrationSystem({ devices: ['STOP_COPY'], ack: 'off', sourceMachine: lazy }), { progress: false });
    expect(failing(r)).toContain('FailureRestoresSource');
  });

  it('a destination that starts the guest before loading violates GuestRunsOnOneSide or DestinationCompleteMeansLoaded', async () => {
    const { qemuDestinationMachine } = await import('../machines/qemuDestination.js');
    const hasty = qemuDestinationMachine.provide({ actions: { loadSetup: assign({ runstate: 'running' as const }) } });
    const r = explore(migrationSystem({ devices: ['STOP_COPY'], ack: 'off', destinationMachine: hasty }), { progress: false });
    expect(failing(r)).toEqual(expect.arrayContaining(['GuestRunsOnOneSide']));
  });
});
