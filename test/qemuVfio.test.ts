/**
 * Real QEMU migrating a real VFIO device (issue #14): the nested VM of scripts/qemu-vfio-vm.sh (Debian
 * 6.12, samples/vfio-mdev/mtty.c, the host's QEMU 10 inside), a source and a destination QEMU with one
 * or two mtty devices each, driven over QMP from here. Each scenario's actions come from the model
 * (src/qemu-vfio/scenarios.ts); all run in one VM boot (startNestedSession; QEMU_VFIO_FRESH_VM=1 boots
 * a fresh VM, ~10 s, for each). The image is built (cached) first: a run that cannot build or boot it
 * FAILS, it is never skipped.
 *
 * Checked: the statuses both sides reach, each device's VFIO_MIGRATION sequence (QapiVfioMigrationState
 * names, qapi/vfio.json; sent by vfio_migration_send_event on every vfio_migration_set_state,
 * hw/vfio/migration.c), the switchover-ack traces, and the device-level conformance check (checkLog:
 * every device event and status against the composed model with the run's mtty devices).
 * QEMU_RECORD_FIXTURES=1 re-records test/fixtures/qemu-vfio/.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLog, isCommand, isTrace, type LogRecord, type Side } from '../src/qemu/log.js';
import { NestedError, type NestedSession, buildNestedImage, startNestedPair, startNestedSession } from '../src/qemu-vfio/nested.js';
import { NESTED_SCENARIOS, type NestedRun, SESSION_PLANS, deviceStates, formatNestedRun, runNestedScenario, runMultifdTransferMismatch, runPausedDestination, runStopCont } from '../src/qemu-vfio/scenarios.js';

const SOURCE_STATES = ['pre-copy', 'pre-copy-p2p', 'stop-copy', 'stop'];
const DESTINATION_STATES = ['resuming', 'running-p2p', 'running'];

const scenario = (name: string) => {
  const s = NESTED_SCENARIOS.find((x) => x.name === name);
  if (!s) throw new Error(`no nested scenario ${name}`);
  return s;
};
const lastStatus = (records: readonly LogRecord[], side: Side): string | undefined =>
  records.filter((r) => 'event' in r && r.side === side && r.event === 'MIGRATION').map((r) => ('event' in r ? String(r.data['status']) : '')).pop();
const traces = (records: readonly LogRecord[], side: Side, name: string): string[] =>
  records.filter((r) => isTrace(r) && r.side === side && r.trace === name).map((r) => (isTrace(r) ? r.args : ''));
const lastQuery = (records: readonly LogRecord[], side: Side): Record<string, unknown> => {
  const q = records.filter((r) => isCommand(r) && r.side === side && r.execute === 'query-migrate').pop();
  return q && isCommand(q) ? (q.return as Record<string, unknown>) : {};
};

describe('real QEMU + real VFIO (mtty) in the nested VM', () => {
  const runs: NestedRun[] = [];
  let buildMs = 0;
  const t0 = Date.now();
  // one VM boot for every scenario (QEMU_VFIO_FRESH_VM=1: a fresh VM each, as before)
  let session: NestedSession | undefined;
  const one = () => (session ? { session } : {});
  beforeAll(async () => {
    buildMs = buildNestedImage().ms;
    if (!process.env['QEMU_VFIO_FRESH_VM']) session = await startNestedSession(SESSION_PLANS);
  }, 900_000);

  const run = async (name: string, start: () => Promise<NestedRun> = () => runNestedScenario(scenario(name), one())): Promise<NestedRun> => {
    const r = await start();
    runs.push(r);
    console.log(formatNestedRun(r));
    if (r.error) expect.fail(formatNestedRun(r));
    if (process.env['QEMU_RECORD_FIXTURES']) writeFileSync(join('test', 'fixtures', 'qemu-vfio', `${name}.jsonl`), formatLog(r.records));
    return r;
  };
  const conforms = (r: NestedRun) => {
    if (r.result.divergence || r.result.incomplete) expect.fail(formatNestedRun(r));
    expect(r.result.steps).toBeGreaterThan(10);
  };

  it('precopy with switchover-ack, one mtty per side: both complete; the device goes pre-copy → pre-copy-p2p → stop-copy → stop and resuming → running-p2p → running', async () => {
    const r = await run('vfio-precopy-ack');
    expect([lastStatus(r.records, 'source'), lastStatus(r.records, 'destination')]).toEqual(['completed', 'completed']);
    expect(Object.fromEntries(deviceStates(r.records, 'source'))).toEqual({ mtty0: SOURCE_STATES });
    expect(Object.fromEntries(deviceStates(r.records, 'destination'))).toEqual({ mtty0: DESTINATION_STATES });
    // the device holds the switchover until its precopy data arrived: one approval pending, then given
    expect(traces(r.records, 'destination', 'loadvm_state_switchover_ack_needed')).toEqual(['Switchover ack pending num=1']);
    expect(traces(r.records, 'destination', 'loadvm_approve_switchover')).toEqual(['Switchover ack pending num=0']);
    expect(traces(r.records, 'source', 'source_return_path_thread_switchover_acked')).toHaveLength(1);
    expect((lastQuery(r.records, 'source')['vfio'] as { transferred?: number } | undefined)?.transferred).toBe(96); // mtty-2: 24-byte header + 2 × 36
    conforms(r);
  }, 120_000);

  it('pause-before-switchover with switchover-ack: pre-switchover, migrate-continue, both complete', async () => {
    const r = await run('vfio-pause-ack');
    expect(r.records.some((x) => 'event' in x && x.side === 'source' && x.event === 'MIGRATION' && x.data['status'] === 'pre-switchover')).toBe(true);
    expect([lastStatus(r.records, 'source'), lastStatus(r.records, 'destination')]).toEqual(['completed', 'completed']);
    expect(Object.fromEntries(deviceStates(r.records, 'source'))).toEqual({ mtty0: SOURCE_STATES });
    expect(Object.fromEntries(deviceStates(r.records, 'destination'))).toEqual({ mtty0: DESTINATION_STATES });
    conforms(r);
  }, 120_000);

  it('switchover-ack on the source only: the destination refuses INIT_DATA_SENT and fails, the source fails and its device runs again', async () => {
    const r = await run('vfio-ack-source-only');
    expect([lastStatus(r.records, 'source'), lastStatus(r.records, 'destination')]).toEqual(['failed', 'failed']);
    expect(r.stderr.destination).toMatch(/Received INIT_DATA_SENT but switchover ack is not used/);
    expect(String(lastQuery(r.records, 'destination')['error-desc'])).toMatch(/load of migration failed: Invalid argument/);
    expect(Object.fromEntries(deviceStates(r.records, 'source'))).toEqual({ mtty0: ['pre-copy', 'running'] });
    expect(Object.fromEntries(deviceStates(r.records, 'destination'))).toEqual({ mtty0: ['resuming'] });
    // the device-level model predicts it: the source's INIT_DATA_SENT fails the destination's load
    // (vfio_load_state, hw/vfio/migration.c); the device-free model diverged at the destination's 'failed'
    conforms(r);
  }, 120_000);

  it('switchover-ack on the destination only: no INIT_DATA_SENT, no ack awaited, both complete', async () => {
    const r = await run('vfio-ack-destination-only');
    expect([lastStatus(r.records, 'source'), lastStatus(r.records, 'destination')]).toEqual(['completed', 'completed']);
    expect(traces(r.records, 'destination', 'loadvm_state_switchover_ack_needed')).toEqual(['Switchover ack pending num=1']);
    expect(traces(r.records, 'destination', 'loadvm_approve_switchover')).toEqual([]);
    expect(Object.fromEntries(deviceStates(r.records, 'source'))).toEqual({ mtty0: SOURCE_STATES });
    expect(Object.fromEntries(deviceStates(r.records, 'destination'))).toEqual({ mtty0: DESTINATION_STATES });
    // the model's source has no return path here (its own capabilities): it completes without waiting
    // for the destination, as QEMU does (the model used to diverge at the source's 'completed')
    expect(r.result.divergence).toBeNull();
    expect(r.result.incomplete).toBeNull();
  }, 120_000);

  it('migrate_cancel in active with switchover-ack: the source is cancelled (or fails: the return-path shutdown may win), the destination fails, the source device goes back to running', async () => {
    const r = await run('vfio-cancel-in-active-ack');
    // QEMU 10.0.2's migration_cancel shuts the return path before it sets 'cancelling': the migration
    // thread may fail first (machines/qemuSource.ts CANCEL_LOSES_TO_RETURN_PATH_ERROR)
    expect([
      ['cancelled', 'failed'],
      ['failed', 'failed'],
    ]).toContainEqual([lastStatus(r.records, 'source'), lastStatus(r.records, 'destination')]);
    expect(Object.fromEntries(deviceStates(r.records, 'source'))).toEqual({ mtty0: ['pre-copy', 'running'] });
    expect(Object.fromEntries(deviceStates(r.records, 'destination'))).toEqual({ mtty0: ['resuming'] });
    conforms(r);
  }, 120_000);

  it('migrate_cancel in pre-switchover with switchover-ack: the device was already in stop-copy and comes back through running-p2p', async () => {
    const r = await run('vfio-cancel-in-pre-switchover-ack');
    expect([lastStatus(r.records, 'source'), lastStatus(r.records, 'destination')]).toEqual(['cancelled', 'failed']);
    // the guest stops at pre-switchover, so vfio_vmstate_change moves the device to stop-copy before the pause
    expect(Object.fromEntries(deviceStates(r.records, 'source'))).toEqual({ mtty0: ['pre-copy', 'pre-copy-p2p', 'stop-copy', 'running-p2p', 'running'] });
    expect(Object.fromEntries(deviceStates(r.records, 'destination'))).toEqual({ mtty0: ['resuming'] });
    conforms(r);
  }, 120_000);

  it('destination SIGKILLed in active with switchover-ack: the source fails and its device goes back to running', async () => {
    const r = await run('vfio-destination-killed-in-active-ack');
    expect(lastStatus(r.records, 'source')).toBe('failed');
    expect(Object.fromEntries(deviceStates(r.records, 'source'))).toEqual({ mtty0: ['pre-copy', 'running'] });
    conforms(r);
  }, 120_000);

  it('destination SIGKILLed at pre-switchover with switchover-ack: migrate-continue fails the migration, the device comes back from stop-copy', async () => {
    const r = await run('vfio-destination-killed-in-pre-switchover-ack');
    expect(lastStatus(r.records, 'source')).toBe('failed');
    expect(Object.fromEntries(deviceStates(r.records, 'source'))).toEqual({ mtty0: ['pre-copy', 'pre-copy-p2p', 'stop-copy', 'running-p2p', 'running'] });
    conforms(r);
  }, 120_000);

  it('migrate to a port nobody listens on: setup, then failed, and the device is never touched', async () => {
    const r = await run('vfio-unreachable-destination');
    expect(lastStatus(r.records, 'source')).toBe('failed');
    expect(deviceStates(r.records, 'source').size).toBe(0);
    if (r.result.divergence || r.result.incomplete) expect.fail(formatNestedRun(r));
  }, 120_000);

  // management stop/cont (hand-written: not actions of the status-level model; the composed model with
  // management: true predicts both outcomes, DataFdInSync and MigrationEnds)
  it('stop + cont of the source during precopy, ack off: the device session ends, the final save\'s data_fd is "out of sync", the migration fails with EBADF', async () => {
    const r = await run('vfio-stop-cont-in-precopy', () => runStopCont(false, one()));
    expect(lastStatus(r.records, 'source')).toBe('failed');
    expect(r.stderr.source).toMatch(/data_fd out of sync/);
    expect(String(lastQuery(r.records, 'source')['error-desc'])).toMatch(/Bad file descriptor/);
    expect(deviceStates(r.records, 'source').get('mtty0')).toEqual([
      'pre-copy', 'pre-copy-p2p', 'stop-copy', // stop: vfio_vmstate_change during precopy
      'running-p2p', 'running', // cont: the saving session is over
      'running-p2p', 'stop', 'stop-copy', // the switchover: a new session, a new data_fd
      'running-p2p', 'running', // the failure: the guest runs on the source again
    ]);
  }, 120_000);

  it('stop + cont of the source during precopy, ack on: INIT_DATA_SENT never comes, the source stays active until cancelled', async () => {
    const r = await run('vfio-stop-cont-in-precopy-ack', () => runStopCont(true, one()));
    const watched = r.records.filter((x) => isCommand(x) && x.side === 'source' && x.execute === 'query-migrate')[0];
    const ret = watched && isCommand(watched) ? (watched.return as { status?: string; vfio?: { transferred?: number } }) : {};
    expect(ret.status).toBe('active'); // 8 s after the limits were lifted
    expect(ret.vfio?.transferred).toBe(0);
    expect(traces(r.records, 'destination', 'loadvm_approve_switchover')).toEqual([]);
    // the closing migrate_cancel, with the return path open: 'cancelled', or 'failed' when its return-path
    // shutdown wins (QEMU 10.0.2 migration_cancel; seen in CI) — the model has both, and the run conforms
    expect(['cancelled', 'failed']).toContain(lastStatus(r.records, 'source'));
    expect(deviceStates(r.records, 'source').get('mtty0')).toEqual(['pre-copy', 'pre-copy-p2p', 'stop-copy', 'running-p2p', 'running']);
    if (r.result.divergence || r.result.incomplete) expect.fail(formatNestedRun(r));
  }, 120_000);

  it('stop alone during precopy, ack on and not yet given: QEMU switches over without the ack; the destination completes paused, its device left in resuming', async () => {
    const r = await run('vfio-stop-in-precopy-ack', () => runStopCont(true, { cont: false, ...one() }));
    expect([lastStatus(r.records, 'source'), lastStatus(r.records, 'destination')]).toEqual(['completed', 'completed']);
    expect(traces(r.records, 'destination', 'loadvm_approve_switchover')).toEqual([]);
    expect(traces(r.records, 'source', 'source_return_path_thread_switchover_acked')).toEqual([]);
    expect(deviceStates(r.records, 'source').get('mtty0')).toEqual(SOURCE_STATES);
    expect(deviceStates(r.records, 'destination').get('mtty0')).toEqual(['resuming']);
    const st = r.records.filter((x) => isCommand(x) && x.side === 'destination' && x.execute === 'query-status').pop();
    expect(st && isCommand(st) ? (st.return as { status?: string }).status : undefined).toBe('paused');
  }, 120_000);

  it('multifd with x-migration-multifd-transfer=off on the destination only: the destination refuses the device state and then fails or hangs in active (the RAM-sync hang), the source completes or fails (or, seen once, hangs in device: not in the model); conforms to the model of that configuration', async () => {
    const r = await run('vfio-multifd-transfer-off-on-destination', () => runMultifdTransferMismatch(one()));
    const dst = lastStatus(r.records, 'destination');
    const src = lastStatus(r.records, 'source');
    const hung = (side: Side) => r.unanswered.includes(side);
    console.log(`transfer mismatch: source ${hung('source') ? `still ${src}, its monitor not answering (hung)` : src}, destination ${dst === 'active' ? 'still active 20 s later (hung)' : dst}`);
    expect(['failed', 'active']).toContain(dst);
    // The model's source always ends here (completed, or failed when the channels shut). One CI run
    // (2026-12-03, under the full suite's load) saw a third outcome that the model does not have: the
    // source stayed in 'device' with its device in stop-copy and its QMP monitor stopped answering (its
    // main loop blocked: migration_completion holds the BQL), the destination failed. The cause was not
    // found (no trace lines were kept that time; 16 runs since, loaded and unloaded, did not show it):
    // accepted only in exactly that shape, reported with the source's last trace lines (formatNestedRun).
    if (hung('source')) {
      expect(src).toBe('device');
      expect(deviceStates(r.records, 'source').get('mtty0')?.at(-1)).toBe('stop-copy');
    } else expect(['completed', 'failed']).toContain(src);
    expect(r.result.config.multifdTransfer).toEqual({ destination: 'off' });
    conforms(r);
  }, 120_000);

  it('destination started paused (-S, as libvirt does), ack on: completes paused with its device in resuming; cont takes it through running-p2p to running', async () => {
    const r = await run('vfio-destination-paused-then-cont-ack', () => runPausedDestination(one()));
    expect([lastStatus(r.records, 'source'), lastStatus(r.records, 'destination')]).toEqual(['completed', 'completed']);
    expect(deviceStates(r.records, 'source').get('mtty0')).toEqual(SOURCE_STATES);
    expect(deviceStates(r.records, 'destination').get('mtty0')).toEqual(DESTINATION_STATES);
    const cont = r.records.findIndex((x) => isCommand(x) && x.side === 'destination' && x.execute === 'cont');
    const running = r.records.findIndex((x) => 'event' in x && x.side === 'destination' && x.event === 'VFIO_MIGRATION' && x.data['device-state'] === 'running-p2p');
    const completed = r.records.findIndex((x) => 'event' in x && x.side === 'destination' && x.event === 'MIGRATION' && x.data['status'] === 'completed');
    expect(completed).toBeGreaterThan(-1);
    expect(cont).toBeGreaterThan(completed); // the destination completed while paused…
    expect(running).toBeGreaterThan(cont); // …and its device left resuming only at cont
  }, 120_000);

  it('migrate_cancel in setup (the connect held pending), switchover-ack: the source is cancelled before its device was touched, the destination keeps listening', async () => {
    const r = await run('vfio-cancel-in-setup-ack');
    expect(lastStatus(r.records, 'source')).toBe('cancelled');
    expect(lastStatus(r.records, 'destination')).toBe('setup');
    expect(deviceStates(r.records, 'source').size).toBe(0);
    expect(deviceStates(r.records, 'destination').size).toBe(0);
    conforms(r);
  }, 120_000);

  it('migrate_cancel after both completed, switchover-ack: accepted, nothing changes', async () => {
    const r = await run('vfio-cancel-after-completed-ack');
    expect([lastStatus(r.records, 'source'), lastStatus(r.records, 'destination')]).toEqual(['completed', 'completed']);
    const cancel = r.records.findIndex((x) => isCommand(x) && x.side === 'source' && x.execute === 'migrate_cancel');
    expect(cancel).toBeGreaterThan(-1);
    // no status changes after it (the source device's last event, stop at vfio_save_cleanup, may still arrive)
    expect(r.records.slice(cancel + 1).filter((x) => 'event' in x && x.event === 'MIGRATION')).toEqual([]);
    expect(Object.fromEntries(deviceStates(r.records, 'source'))).toEqual({ mtty0: SOURCE_STATES });
    expect(r.result.exceptions.map((e) => e.name)).toContain('qemu10-cancel-without-migration-is-a-no-op');
    conforms(r);
  }, 120_000);

  it('destination frozen at pre-switchover and SIGKILLed while the source is in device (final state sent, waiting for the return path): the source fails, its device runs again', async () => {
    const r = await run('vfio-destination-killed-in-device-ack');
    expect(lastStatus(r.records, 'source')).toBe('failed');
    const statuses = r.records.filter((x) => 'event' in x && x.side === 'source' && x.event === 'MIGRATION').map((x) => ('event' in x ? String(x.data['status']) : ''));
    expect(statuses).toContain('device');
    expect(deviceStates(r.records, 'source').get('mtty0')?.at(-1)).toBe('running');
    conforms(r);
  }, 120_000);

  it('retry after a failure, switchover-ack: the destination is killed in active, the source fails; a new destination process, migrate again: both complete', async () => {
    const r = await run('vfio-retry-after-destination-killed-ack');
    expect([lastStatus(r.records, 'source'), lastStatus(r.records, 'destination')]).toEqual(['completed', 'completed']);
    expect(r.records.filter((x) => 'process' in x && x.side === 'destination').map((x) => ('process' in x ? x.incarnation : -1))).toEqual([0, 1]);
    expect(deviceStates(r.records, 'source').get('mtty0')).toEqual(['pre-copy', 'running', ...SOURCE_STATES]);
    conforms(r);
  }, 120_000);

  it('retry to a new destination process on the mdev the killed one left in RESUMING: the load fails with EBADF (mtty keeps the state across close; not in the model)', async () => {
    const r = await run('vfio-retry-on-reused-mdev');
    expect(lastStatus(r.records, 'destination')).toBe('failed');
    const q = r.records.filter((x) => isCommand(x) && x.side === 'destination' && x.execute === 'query-migrate').pop();
    expect(String(q && isCommand(q) ? (q.return as Record<string, unknown>)['error-desc'] : '')).toMatch(/load of migration failed: Bad file descriptor/);
    // the new process's RESUMING request finds the device already there: no data_fd, no new event from the kernel's side
    expect(deviceStates(r.records, 'destination').get('mtty0')).toEqual(['resuming', 'resuming']);
    expect(r.result.divergence?.did).toBe("destination reported status 'failed'");
  }, 120_000);

  it('two mtty devices per side with switchover-ack: two approvals, both devices through their states, both complete', async () => {
    const r = await run('vfio-two-devices-ack');
    expect([lastStatus(r.records, 'source'), lastStatus(r.records, 'destination')]).toEqual(['completed', 'completed']);
    expect(Object.fromEntries(deviceStates(r.records, 'source'))).toEqual({ mtty0: SOURCE_STATES, mtty1: SOURCE_STATES });
    expect(Object.fromEntries(deviceStates(r.records, 'destination'))).toEqual({ mtty0: DESTINATION_STATES, mtty1: DESTINATION_STATES });
    expect(traces(r.records, 'destination', 'loadvm_state_switchover_ack_needed')).toEqual(['Switchover ack pending num=2']);
    expect(traces(r.records, 'destination', 'loadvm_approve_switchover')).toEqual(['Switchover ack pending num=1', 'Switchover ack pending num=0']);
    conforms(r);
  }, 120_000);

  it('multifd device state, one mtty per side: the save thread sends it over the channels, the load thread writes it in index order, the config last; both complete and conform', async () => {
    const r = await run('vfio-multifd-ack');
    expect([lastStatus(r.records, 'source'), lastStatus(r.records, 'destination')]).toEqual(['completed', 'completed']);
    expect(Object.fromEntries(deviceStates(r.records, 'source'))).toEqual({ mtty0: SOURCE_STATES });
    expect(Object.fromEntries(deviceStates(r.records, 'destination'))).toEqual({ mtty0: DESTINATION_STATES });
    // the threads ran: one save thread, returning true; buffers 0..n with the config last, written in order
    expect(traces(r.records, 'source', 'vfio_save_complete_precopy_thread_start')).toHaveLength(1);
    expect(traces(r.records, 'source', 'vfio_save_complete_precopy_thread_end').map((a) => a.replace(/^\([^)]*\) /, ''))).toEqual(['ret 1']);
    const incoming = traces(r.records, 'destination', 'vfio_load_state_device_buffer_incoming').map((a) => Number(/idx (\d+)/.exec(a)![1]));
    expect([...incoming].sort((x, y) => x - y)).toEqual(incoming.map((_, i) => i)); // every index once
    const written = traces(r.records, 'destination', 'vfio_load_state_device_buffer_load_end').map((a) => Number(/idx (\d+)/.exec(a)![1]));
    expect(written).toEqual(written.map((_, i) => i)); // in index order…
    expect(written.length).toBe(incoming.length - 1); // …every buffer but the config
    expect(traces(r.records, 'destination', 'vfio_load_bufs_thread_end')).toHaveLength(1);
    conforms(r);
  }, 120_000);

  it('multifd device state, two mtty per side: a save thread and a load thread per device; both complete and conform', async () => {
    const r = await run('vfio-multifd-two-devices-ack');
    expect([lastStatus(r.records, 'source'), lastStatus(r.records, 'destination')]).toEqual(['completed', 'completed']);
    expect(Object.fromEntries(deviceStates(r.records, 'destination'))).toEqual({ mtty0: DESTINATION_STATES, mtty1: DESTINATION_STATES });
    expect(traces(r.records, 'source', 'vfio_save_complete_precopy_thread_start')).toHaveLength(2);
    expect(traces(r.records, 'destination', 'vfio_load_bufs_thread_start')).toHaveLength(2);
    conforms(r);
  }, 120_000);

  it('a failure at start is one line naming the cause, and leaves no VM and no scratch directory behind', async () => {
    const scratch = () => readdirSync(tmpdir()).filter((d) => d.startsWith('qemu-vfio-'));
    const before = new Set(scratch());
    await expect(startNestedPair({ qemu: '/nonexistent/qemu' })).rejects.toBeInstanceOf(NestedError);
    const e = await startNestedPair({ extraArgs: { source: ['-no-such-option'] }, startTimeoutMs: 60_000 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NestedError);
    expect((e as Error).message).toMatch(/the source QEMU exited at start.*-no-such-option/);
    expect((e as Error).message).not.toMatch(/\n/);
    expect(scratch().filter((d) => !before.has(d))).toEqual([]);
  }, 120_000);

  afterAll(async () => {
    await session?.close();
    console.log(`nested VFIO suite: ${((Date.now() - t0) / 1000).toFixed(1)} s${session ? `, one VM boot (${(session.bootMs / 1000).toFixed(1)} s)` : ', a VM per scenario'}`);
    if (runs.length === 0) return;
    const total = runs.reduce((a, r) => a + r.timing.totalMs, 0) / 1000;
    const ready = runs.map((r) => (r.timing.readyMs / 1000).toFixed(1)).join(', ');
    const devices = runs.reduce((a, r) => a + r.records.filter((x) => 'event' in x && x.event === 'VFIO_MIGRATION').length, 0);
    console.log(
      `nested VFIO: image ${(buildMs / 1000).toFixed(1)} s, ${runs.length} scenarios in ${total.toFixed(1)} s (VM ready after ${ready} s), ${devices} VFIO_MIGRATION events`,
    );
  });
});
