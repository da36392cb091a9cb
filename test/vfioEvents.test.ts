/**
 * QEMU's VFIO_MIGRATION QMP events as outputs of the machines: one per update of the device state QEMU
 * tracks (hw/vfio/migration.c vfio_migration_set_device_state). Checked over every edge of composed
 * systems (each event names a device whose tracked state it then is), on the happy paths (the sequences
 * a real run of QEMU 10.0 shows), with QEMU 11.0's pre-copy-p2p-prepare, and through an actor's `on()`.
 */
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import type { EventObject } from 'xstate';
import { qemuDestinationMachine } from '../machines/qemuDestination.js';
import { type QemuRelease, qemuSourceMachine, sourceStatus, switchoverAckMode } from '../machines/qemuSource.js';
import { type DeviceRecord, type VfioMigrationEvent, qapiState } from '../machines/qemuVfio.js';
import type { FeatureSet } from '../machines/vfioArcs.js';
import { CompiledSystem } from '../src/explorer/index.js';
import { type MigrationOptions, migrationSystem } from '../src/systems/migration.js';
import { main } from '../src/cli.js';

const ALL: FeatureSet = 'STOP_COPY|P2P|PRE_COPY';

interface Walk {
  states: number;
  edges: number;
  events: number;
  /** The first edge that broke the rule, as text. */
  broken: string | null;
  /** Per side, the events along the first path found to a state satisfying `goal`. */
  path: Record<string, string[]> | null;
}

const devsOf = (sys: CompiledSystem, t: Uint32Array, c: number): readonly DeviceRecord[] =>
  (sys.tables[c]!.snapshots[t[c]!]!.context as { devs: readonly DeviceRecord[] }).devs;

/** Breadth-first over every state; every edge's events are checked against the device states it leaves. */
function walk(o: MigrationOptions, goal?: (sys: CompiledSystem, t: Uint32Array) => boolean): Walk {
  const sys = new CompiledSystem(migrationSystem(o));
  const start = sys.initialTuple();
  const seen = new Map<string, { parent: string | null; obs: [number, readonly EventObject[]] | null }>([[start.join(','), { parent: null, obs: null }]]);
  const queue: Uint32Array[] = [start];
  let edges = 0;
  let events = 0;
  let broken: string | null = null;
  let found: string | null = null;
  for (let q = 0; q < queue.length; q++) {
    const cur = queue[q]!;
    const key = cur.join(',');
    if (found === null && goal?.(sys, cur)) found = key;
    sys.expand(cur, (step, next) => {
      edges++;
      const obs = sys.observe(step, cur);
      events += obs.length;
      const label = sys.label(step, cur);
      const c = sys.names.indexOf(label.component);
      // a new destination process opens the device afresh (RUNNING): no event, the old process is gone
      const fresh = label.event.type === 'NEW_PROCESS';
      for (let side = 0; side < 2 && broken === null && !fresh; side++) {
        const before = devsOf(sys, cur, side);
        const after = devsOf(sys, next, side);
        after.forEach((d, i) => {
          const mine = (obs as VfioMigrationEvent[]).filter((e) => side === c && e.device === i).map((e) => e.state);
          const last = mine.at(-1);
          const changed = d.state !== before[i]!.state;
          if (side !== c && changed) broken ??= `${sys.names[side]} device ${i} changed in a step of ${label.component}`;
          else if (changed && last !== qapiState(d.state)) broken ??= `${label.component} ${label.event.type}: device ${i} ${before[i]!.state} -> ${d.state}, events [${mine}]`;
          else if (!changed && last !== undefined && last !== qapiState(d.state)) broken ??= `${label.component} ${label.event.type}: device ${i} stayed ${d.state}, events [${mine}]`;
        });
      }
      const nk = next.join(',');
      if (!seen.has(nk)) {
        seen.set(nk, { parent: key, obs: [c, obs] });
        queue.push(Uint32Array.from(next));
      }
    });
  }
  let path: Record<string, string[]> | null = null;
  if (found !== null) {
    path = Object.fromEntries(sys.names.map((n) => [n, [] as string[]]));
    const chain: [number, readonly EventObject[]][] = [];
    for (let k: string | null = found; k !== null; k = seen.get(k)!.parent) {
      const o = seen.get(k)!.obs;
      if (o) chain.unshift(o);
    }
    for (const [c, obs] of chain) for (const e of obs as VfioMigrationEvent[]) path[sys.names[c]!]!.push(`${e.device}:${e.state}`);
  }
  return { states: seen.size, edges, events, broken, path };
}

/** Both sides completed, the source's cleanup done, the destination's guest running. */
const finished = (sys: CompiledSystem, t: Uint32Array) => {
  const src = sys.tables[0]!.snapshots[t[0]!]!;
  const dst = sys.tables[1]!.snapshots[t[1]!]!;
  return sourceStatus(src.value) === 'completed' && JSON.stringify(src.value).includes('done') && dst.value === 'completed' && (dst.context as { runstate: string }).runstate === 'running';
};

describe('VFIO_MIGRATION events (machine outputs)', () => {
  const configs: [string, MigrationOptions][] = [
    ['1 device, legacy ack, cancels and faults', { devices: [ALL], ack: 'legacy' }],
    ['2 devices, per-device ack, pause-before-switchover', { devices: [ALL, ALL], ack: 'per-device', pauseBeforeSwitchover: true }],
    ['1 device, management stop/cont, retries', { devices: [ALL], ack: 'legacy', management: true, retries: 1, faults: false }],
    ['STOP_COPY only and P2P without precopy', { devices: ['STOP_COPY|P2P'], destinationDevices: ['STOP_COPY|P2P'], ack: 'off' }],
    ['1 device, QEMU 11.0 events', { devices: [ALL], ack: 'legacy', release: '11.0' }],
    ['REINIT design reusable-ack', { devices: [ALL], ack: 'per-device', design: 'reusable-ack' }],
    ['1 device, a driver failure per host (recover, reset)', { devices: [ALL], ack: 'legacy', deviceFaults: 1 }],
  ];
  it.each(configs)('every edge: an event for each tracked-state change, the last one naming the new state (%s)', (_, o) => {
    const w = walk(o);
    expect(w.broken).toBeNull();
    expect(w.events).toBeGreaterThan(w.states / 10);
  });

  it('QEMU 10.0, one P2P precopy device: the sequences of a completed migration', () => {
    const w = walk({ devices: [ALL], ack: 'legacy', cancel: false, faults: false }, finished);
    // vfio_save_setup; the prepare and main VM state handlers at the stop; vfio_save_cleanup
    expect(w.path!.source).toEqual(['0:pre-copy', '0:pre-copy-p2p', '0:stop-copy', '0:stop']);
    // vfio_load_setup (QEMU asks RUNNING -> RESUMING); vm_start: prepare, then main
    expect(w.path!.destination).toEqual(['0:resuming', '0:running-p2p', '0:running']);
  });

  it('QEMU 11.0 announces the PRE_COPY_P2P request before making it', () => {
    const w = walk({ devices: [ALL], ack: 'legacy', cancel: false, faults: false, release: '11.0' }, finished);
    expect(w.path!.source).toEqual(['0:pre-copy', '0:pre-copy-p2p-prepare', '0:pre-copy-p2p', '0:stop-copy', '0:stop']);
  });

  it('an actor emits them to on() listeners, as an orchestrator sees them', () => {
    const src = createActor(qemuSourceMachine, { input: { devices: [ALL], ack: 'off' } });
    const seen: string[] = [];
    src.on('VFIO_MIGRATION', (e) => seen.push(e.state));
    src.start();
    src.send({ type: 'MIGRATE' });
    src.send({ type: 'THREAD_STEP' });
    src.send({ type: 'STOP' }); // QMP stop during setup: PRE_COPY goes to STOP_COPY (via PRE_COPY_P2P)
    src.send({ type: 'CONT' }); // cont: the devices run again (the saving session ends)
    expect(seen).toEqual(['pre-copy', 'pre-copy-p2p', 'stop-copy', 'running-p2p', 'running']);
    const dst = createActor(qemuDestinationMachine, { input: { devices: [ALL], ack: 'off', autostart: false } });
    const dseen: string[] = [];
    dst.on('VFIO_MIGRATION', (e) => dseen.push(e.state));
    dst.start();
    dst.send({ type: 'MIGRATE_INCOMING' });
    dst.send({ type: 'MIG_STREAM_HEADER', attempt: 0 });
    dst.send({ type: 'QEMU_VM_EOF', guest: 'running' });
    expect(dseen).toEqual(['resuming']); // -S: the device stays in RESUMING until cont
    dst.send({ type: 'CONT' });
    expect(dseen).toEqual(['resuming', 'running-p2p', 'running']);
  });
});

describe('switchoverAckMode: the machine-type switch (hw_compat_11_0 switchover-ack-legacy)', () => {
  const cases: [QemuRelease, string, 'legacy' | 'per-device'][] = [
    ['10.0', 'pc-q35-10.0', 'legacy'],
    ['11.0', 'pc-q35-11.0', 'legacy'],
    ['11.1', 'pc-q35-11.0', 'legacy'],
    ['11.1', 'pc-i440fx-9.2', 'legacy'],
    ['11.1', 'pc-q35-11.1', 'per-device'],
    ['11.1', '11.1', 'per-device'],
  ];
  it.each(cases)('QEMU %s, machine type %s: %s', (release, machine, mode) => {
    expect(switchoverAckMode(release, machine)).toBe(mode);
  });
  it('refuses a machine type the release does not have, and one with no version', () => {
    expect(() => switchoverAckMode('10.0', 'pc-q35-11.1')).toThrow(/QEMU 10.0 has no machine type 11.1/);
    expect(() => switchoverAckMode('11.1', 'q35')).toThrow(/names no version/);
  });
});

describe('check: --qemu, --ack on --machine-type, --device-faults', () => {
  function run(...argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = main(argv, (s) => out.push(s), (s) => err.push(s));
    return { code, out: out.join('\n'), err: err.join('\n') };
  }
  it('a driver failure on the destination is reset and still completes: the property names it (exit 1)', () => {
    const r = run('check', '--devices', '1', '--device-faults', '1', '--json', '--no-timings');
    expect(r.code).toBe(1);
    const report = JSON.parse(r.out) as { properties: { name: string; holds: boolean }[] };
    const violated = report.properties.filter((p) => !p.holds).map((p) => p.name);
    expect(violated).toContain('CompletedDestinationKeptDeviceState');
    // the clause that broke is named: the reset device took nothing into a resuming data_fd
    const loaded = (report.properties as { name: string; broken?: string[] }[]).find((p) => p.name === 'DestinationCompleteMeansLoaded');
    expect(loaded?.broken).toEqual(['every device took data into its resuming data_fd']);
    expect(violated).not.toContain('MigrationEnds');
    expect(violated).not.toContain('NoDeviceInError');
  });
  it('--ack on resolves the mode from the release and machine type', () => {
    const legacy = run('check', '--devices', '1', '--ack', 'on', '--qemu', '11.1', '--machine-type', 'pc-q35-11.0', '--no-timings');
    const perDevice = run('check', '--devices', '1', '--ack', 'on', '--qemu', '11.1', '--machine-type', 'pc-q35-11.1', '--no-timings');
    expect(legacy.out.split('\n')[0]).toContain('ack legacy');
    expect(perDevice.out.split('\n')[0]).toContain('ack per-device');
  });
  it.each([
    [['--qemu', '9.2'], /bad --qemu '9.2'/],
    [['--ack', 'on', '--qemu', '10.0', '--machine-type', 'pc-q35-11.1'], /QEMU 10.0 has no machine type 11.1/],
    [['--ack', 'per-device', '--qemu', '11.0'], /per-device ack needs QEMU 11.1/],
    [['--machine-type', '11.0'], /use it with --ack on/],
    [['--device-faults', '9'], /--device-faults/],
  ])('bad input %j: one line, exit 2', (args, message) => {
    const r = run('check', ...args);
    expect(r.code).toBe(2);
    expect(r.err.split('\n')).toHaveLength(1);
    expect(r.err).toMatch(message);
  });
});
