/**
 * The recorded runs of real QEMU with real VFIO devices (test/fixtures/qemu-vfio/, recorded by
 * test/qemuVfio.test.ts with QEMU_RECORD_FIXTURES=1 in the nested VM): read without a VM. They parse as
 * logs, carry each device's VFIO_MIGRATION sequence, and conform at device level: every VFIO_MIGRATION
 * event of both sides, with the statuses, checked against the composed model with the log's mtty
 * devices (conform.ts). Planted broken variants (*-broken.jsonl: one event removed or two swapped) are
 * rejected at the event.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLog, formatResult } from '../src/qemu/conform.js';
import { KNOWN_DISAGREEMENTS } from '../src/qemu/exceptions.js';
import { isEvent, parseLog } from '../src/qemu/log.js';
import { deviceStates, statusLevelRecords } from '../src/qemu-vfio/scenarios.js';

const SRC = ['pre-copy', 'pre-copy-p2p', 'stop-copy', 'stop'];
const DST = ['resuming', 'running-p2p', 'running'];
const load = (name: string) => parseLog(readFileSync(join('test', 'fixtures', 'qemu-vfio', `${name}.jsonl`), 'utf8')).records;

const CASES: readonly { name: string; source: Record<string, string[]>; destination: Record<string, string[]>; divergence: string | null }[] = [
  { name: 'vfio-precopy-ack', source: { mtty0: SRC }, destination: { mtty0: DST }, divergence: null },
  { name: 'vfio-pause-ack', source: { mtty0: SRC }, destination: { mtty0: DST }, divergence: null },
  { name: 'vfio-two-devices-ack', source: { mtty0: SRC, mtty1: SRC }, destination: { mtty0: DST, mtty1: DST }, divergence: null },
  { name: 'vfio-cancel-in-active-ack', source: { mtty0: ['pre-copy', 'running'] }, destination: { mtty0: ['resuming'] }, divergence: null },
  {
    name: 'vfio-cancel-in-pre-switchover-ack',
    source: { mtty0: ['pre-copy', 'pre-copy-p2p', 'stop-copy', 'running-p2p', 'running'] },
    destination: { mtty0: ['resuming'] },
    divergence: null,
  },
  { name: 'vfio-destination-killed-in-active-ack', source: { mtty0: ['pre-copy', 'running'] }, destination: { mtty0: ['resuming'] }, divergence: null },
  {
    name: 'vfio-destination-killed-in-pre-switchover-ack',
    source: { mtty0: ['pre-copy', 'pre-copy-p2p', 'stop-copy', 'running-p2p', 'running'] },
    destination: { mtty0: ['resuming'] },
    divergence: null,
  },
  { name: 'vfio-unreachable-destination', source: {}, destination: {}, divergence: null },
  // outcomes the device-free model does not predict (see test/qemuVfio.test.ts)
  { name: 'vfio-ack-source-only', source: { mtty0: ['pre-copy', 'running'] }, destination: { mtty0: ['resuming'] }, divergence: "destination reported status 'failed'" },
  // conforms since the model's source takes the return path from its own capabilities (it diverged before)
  { name: 'vfio-ack-destination-only', source: { mtty0: SRC }, destination: { mtty0: DST }, divergence: null },
];

describe('recorded real runs with mtty devices', () => {
  // hand-written runs: management stop/cont and a destination started with -S are outside the status-level
  // model (it diverges at the first RESUME of a stopped source, or expects the destination to run on completion)
  it('vfio-stop-cont-in-precopy: the device session ends at cont, the switchover opens a new one, the migration fails', () => {
    const records = load('vfio-stop-cont-in-precopy');
    expect(deviceStates(records, 'source').get('mtty0')).toEqual(['pre-copy', 'pre-copy-p2p', 'stop-copy', 'running-p2p', 'running', 'running-p2p', 'stop', 'stop-copy', 'running-p2p', 'running']);
    expect(records.some((r) => 'event' in r && r.side === 'source' && r.event === 'MIGRATION' && r.data['status'] === 'failed')).toBe(true);
  });
  it('vfio-stop-in-precopy-ack: switched over without the ack; the paused destination leaves its device resuming', () => {
    const records = load('vfio-stop-in-precopy-ack');
    expect(deviceStates(records, 'source').get('mtty0')).toEqual(['pre-copy', 'pre-copy-p2p', 'stop-copy', 'stop']);
    expect(deviceStates(records, 'destination').get('mtty0')).toEqual(['resuming']);
    expect(records.some((r) => 'trace' in r && r.trace === 'source_return_path_thread_switchover_acked')).toBe(false);
  });
  it('vfio-destination-paused-then-cont-ack: the destination completes paused (-S), its device leaves resuming only at cont', () => {
    const records = load('vfio-destination-paused-then-cont-ack');
    expect(deviceStates(records, 'destination').get('mtty0')).toEqual(['resuming', 'running-p2p', 'running']);
    const completed = records.findIndex((r) => 'event' in r && r.side === 'destination' && r.event === 'MIGRATION' && r.data['status'] === 'completed');
    const cont = records.findIndex((r) => 'execute' in r && r.side === 'destination' && r.execute === 'cont');
    expect(completed).toBeGreaterThan(-1);
    expect(cont).toBeGreaterThan(completed);
  });
  it('vfio-stop-cont-in-precopy-ack: no approval ever comes; cancelled', () => {
    const records = load('vfio-stop-cont-in-precopy-ack');
    expect(deviceStates(records, 'source').get('mtty0')).toEqual(['pre-copy', 'pre-copy-p2p', 'stop-copy', 'running-p2p', 'running']);
    expect(records.some((r) => 'trace' in r && r.trace === 'loadvm_approve_switchover')).toBe(false);
    expect(records.some((r) => 'event' in r && r.side === 'source' && r.event === 'MIGRATION' && r.data['status'] === 'cancelled')).toBe(true);
  });

  for (const c of CASES) {
    it(`${c.name}: device states and the status-level verdict`, () => {
      const records = load(c.name);
      expect(Object.fromEntries(deviceStates(records, 'source'))).toEqual(c.source);
      expect(Object.fromEntries(deviceStates(records, 'destination'))).toEqual(c.destination);
      const r = checkLog(statusLevelRecords(records));
      expect(r.divergence?.did ?? null).toBe(c.divergence);
      if (c.divergence === null) expect(r.incomplete).toBeNull();
    });
  }
});

/** Every fixture at device level: the verdict and what was checked (device events, status observations). */
const DEVICE_LEVEL: readonly { name: string; devices: readonly [number, number]; events: number; statuses: number; exceptions: readonly string[] }[] = [
  { name: 'vfio-precopy-ack', devices: [1, 1], events: 7, statuses: 9, exceptions: ['qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-pause-ack', devices: [1, 1], events: 7, statuses: 10, exceptions: ['qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-two-devices-ack', devices: [2, 2], events: 14, statuses: 9, exceptions: ['qemu10-header-sent-before-save-setup', 'qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-ack-source-only', devices: [1, 1], events: 3, statuses: 8, exceptions: ['qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-ack-destination-only', devices: [1, 1], events: 7, statuses: 9, exceptions: ['qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-cancel-in-setup-ack', devices: [1, 1], events: 0, statuses: 6, exceptions: [] },
  { name: 'vfio-cancel-in-active-ack', devices: [1, 1], events: 3, statuses: 9, exceptions: ['qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-cancel-in-pre-switchover-ack', devices: [1, 1], events: 6, statuses: 10, exceptions: ['qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-cancel-after-completed-ack', devices: [1, 1], events: 7, statuses: 9, exceptions: ['qemu10-cancel-without-migration-is-a-no-op', 'qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-destination-killed-in-active-ack', devices: [1, 1], events: 3, statuses: 6, exceptions: ['qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-destination-killed-in-pre-switchover-ack', devices: [1, 1], events: 6, statuses: 8, exceptions: ['qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-destination-killed-in-device-ack', devices: [1, 1], events: 6, statuses: 8, exceptions: ['qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-retry-after-destination-killed-ack', devices: [1, 1], events: 10, statuses: 14, exceptions: ['qemu10-header-sent-before-save-setup', 'qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-unreachable-destination', devices: [1, 1], events: 0, statuses: 4, exceptions: [] },
  { name: 'vfio-stop-cont-in-precopy', devices: [1, 1], events: 11, statuses: 10, exceptions: ['qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-stop-cont-in-precopy-ack', devices: [1, 1], events: 6, statuses: 10, exceptions: ['qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-stop-in-precopy-ack', devices: [1, 1], events: 5, statuses: 10, exceptions: ['qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-destination-paused-then-cont-ack', devices: [1, 1], events: 7, statuses: 9, exceptions: ['qemu10-header-sent-before-save-setup'] },
  // multifd device state (2 channels): the threads' trace lines are checked as facts too
  { name: 'vfio-multifd-ack', devices: [1, 1], events: 7, statuses: 9, exceptions: ['qemu10-header-sent-before-save-setup'] },
  { name: 'vfio-multifd-two-devices-ack', devices: [2, 2], events: 14, statuses: 9, exceptions: ['qemu10-header-sent-before-save-setup', 'qemu10-header-sent-before-save-setup'] },
];

describe('device-level conformance of the recorded runs with mtty devices', () => {
  for (const c of DEVICE_LEVEL) {
    it(`${c.name}: conforms, ${c.events} device events and ${c.statuses} status observations checked`, () => {
      const r = checkLog(load(c.name));
      if (r.divergence || r.incomplete) expect.fail(formatResult(r));
      expect(r.config.devices).toEqual({ source: c.devices[0], destination: c.devices[1] });
      expect(r.config.profile).toBe('mtty');
      expect([r.deviceEvents, r.statusObservations]).toEqual([c.events, c.statuses]);
      expect(r.exceptions.map((e) => e.name).sort()).toEqual([...c.exceptions].sort());
    });
  }

  it('multifd: the runs are checked against the model with their channels, and a buffer written before it arrived (planted) is rejected at the trace', () => {
    expect(checkLog(load('vfio-multifd-ack')).config.multifd).toBe(2);
    const d = checkLog(load('vfio-multifd-ack-broken')).divergence!;
    expect(d.did).toMatch(/vfio_load_state_device_buffer_incoming .* idx 0: the destination stored device-state buffer 0, not yet written/);
  });

  it('multifd with x-migration-multifd-transfer=off on the destination (real runs): the hang the model predicts — the destination stays active after the source is gone — and the plain failure both conform', () => {
    const last = (records: ReturnType<typeof load>, side: 'source' | 'destination') =>
      records.filter((r) => isEvent(r) && r.side === side && r.event === 'MIGRATION').map((r) => (isEvent(r) ? String(r.data['status']) : '')).pop();
    const hung = load('vfio-multifd-transfer-off-on-destination');
    const r = checkLog(hung);
    expect(r.divergence).toBeNull();
    expect(r.config.multifdTransfer).toEqual({ destination: 'off' });
    // the source ended; the destination never did (its QMP monitor stopped answering too: no query-migrate reply)
    expect(last(hung, 'source')).toMatch(/^(completed|failed)$/);
    expect(last(hung, 'destination')).toBe('active');
    expect(hung.some((x) => 'execute' in x && x.side === 'destination' && x.execute === 'query-migrate')).toBe(false);
    const fails = load('vfio-multifd-transfer-off-on-destination-fails');
    expect(checkLog(fails).divergence).toBeNull();
    expect(last(fails, 'destination')).toBe('failed');
    // the same log checked as if both devices did multifd: the model then has no such failure
    const asIfOn = fails.map((x) => ('process' in x ? { ...x, multifdTransfer: undefined } : x)) as typeof fails;
    expect(checkLog(asIfOn.map((x) => JSON.parse(JSON.stringify(x)))).divergence).not.toBeNull();
  });

  it("QEMU 10.0 overwrites a multifd send failure: the source reports 'failed', then 'completed' (migration_completion_end); named, and without the exception it diverges", () => {
    const recs = load('vfio-multifd-transfer-off-failed-then-completed');
    const statuses = recs.filter((r) => isEvent(r) && r.side === 'source' && r.event === 'MIGRATION').map((r) => (isEvent(r) ? String(r.data['status']) : ''));
    expect(statuses.slice(-2)).toEqual(['failed', 'completed']);
    const r = checkLog(recs);
    expect(r.divergence).toBeNull();
    expect(r.exceptions.map((e) => e.name)).toContain('qemu10-completion-end-overwrites-failed');
    expect(checkLog(recs, undefined, { exceptions: KNOWN_DISAGREEMENTS.filter((e) => e.name !== 'qemu10-completion-end-overwrites-failed') }).divergence?.did).toBe("source reported status 'completed'");
  });

  it('vfio-ack-source-only is explained: the destination (ack off) fails at the device\'s INIT_DATA_SENT, as the device-level model predicts', () => {
    const r = checkLog(load('vfio-ack-source-only'));
    expect(r.divergence).toBeNull();
    expect(r.incomplete).toBeNull();
    // the device-free model has no INIT_DATA_SENT and diverges at the destination's 'failed'
    expect(checkLog(statusLevelRecords(load('vfio-ack-source-only'))).divergence?.did).toBe("destination reported status 'failed'");
  });

  it('vfio-retry-on-reused-mdev: what the model does not predict — the new destination process on the mdev the killed one left in RESUMING fails its load (EBADF)', () => {
    const records = load('vfio-retry-on-reused-mdev');
    const r = checkLog(records);
    expect(r.divergence?.did).toBe("destination reported status 'failed'");
    // the model's new process opens its device in RUNNING and completes; QEMU assumes RUNNING too
    // (vfio_migration_init), asks for RESUMING, and mtty — which kept RESUMING across the close
    // (mtty_close only disables the files) — does nothing and returns no data_fd (mtty_set_state)
    expect(r.divergence?.allowed.join('; ')).toContain("source status → 'device'");
    const q = records.filter((x) => 'execute' in x && x.side === 'destination' && x.execute === 'query-migrate').pop();
    expect(JSON.stringify(q)).toMatch(/load of migration failed: Bad file descriptor/);
  });

  it('the other side\'s report may come between the events of one step: the destination fails (the cancel\'s shutdown) between running-p2p and running of the source\'s restart, as a live run showed', () => {
    const records = load('vfio-cancel-in-pre-switchover-ack');
    const failed = records.findIndex((r) => isEvent(r) && r.side === 'destination' && r.event === 'MIGRATION' && r.data['status'] === 'failed');
    const p2p = records.findIndex((r) => isEvent(r) && r.side === 'source' && r.event === 'VFIO_MIGRATION' && r.data['device-state'] === 'running-p2p');
    const moved = [...records.slice(0, p2p + 1), records[failed]!, ...records.slice(p2p + 1, failed), ...records.slice(failed + 1)];
    const r = checkLog(moved);
    if (r.divergence || r.incomplete) expect.fail(formatResult(r));
  });

  const broken: readonly [string, string, string][] = [
    ['vfio-precopy-ack-broken', "destination device mtty0 reported 'running' (VFIO_MIGRATION)", "destination device 0 → 'running-p2p'"],
    ['vfio-pause-ack-broken', "source accepted migrate-continue {state: 'pre-switchover'} (MIGRATE_CONTINUE)", "source device 0 → 'stop-copy'"],
    ['vfio-two-devices-ack-broken', "destination device mtty1 reported 'running-p2p' (VFIO_MIGRATION)", "destination device 0 → 'running-p2p'"],
  ];
  it.each(broken)('planted %s is rejected at the device event', (name, did, wanted) => {
    const d = checkLog(load(name)).divergence;
    expect(d?.did).toBe(did);
    expect(d?.allowed.join('; ')).toContain(wanted);
  });
});
