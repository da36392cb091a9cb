/**
 * The live monitor (`migration-statecharts monitor`) on real QEMU: each run starts two QEMUs with a
 * second QMP socket each (harness.ts `monitorSockets`), attaches the monitor through the CLI before
 * anything is configured, and then drives a migration from the harness's own QMP sockets as an
 * orchestrator would (a scenario's model-planned actions, adapter.ts) — commands the monitor cannot see.
 * The monitor must reach the verdict on its own: a plain precopy and one with switchover-ack conform
 * (exit 0), with the configuration read from QEMU; the same pause-before-switchover run conforms when
 * the monitor reads the configuration and diverges at 'pre-switchover' when it is told
 * pause-before-switchover is off (exit 1). Each verdict is also the one `conform` gives the harness's full
 * recorded log (commands included). And the CLI's one-line errors (exit 2). Without
 * qemu-system-x86_64 the real-QEMU part is left out with a message, as in test/qemu.test.ts.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { MONITOR_HELP } from '../src/cli/monitor.js';
import { runPlan } from '../src/qemu/adapter.js';
import { checkLog } from '../src/qemu/conform.js';
import { QEMU_BINARY, startPair } from '../src/qemu/harness.js';
import { parseLog, sortRecords } from '../src/qemu/log.js';
import { plan } from '../src/qemu/plan.js';
import { commandWorks, liveProcesses, waitUntil } from '../src/qemu/processes.js';
import { SCENARIOS } from '../src/qemu/scenarios.js';

const scratch = mkdtempSync(join(tmpdir(), 'monitor-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['monitor', ...argv], (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('monitor: bad arguments and sockets are one line, exit 2', () => {
  it('--help documents what it sees, what it cannot see, and where the configuration comes from', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    expect(r.out).toBe(MONITOR_HELP);
    expect(r.out).toMatch(/^usage:\s+migration-statecharts monitor --source QMP_SOCKET --destination QMP_SOCKET/);
    expect(r.err).toBe('');
    for (const s of ['query-migrate-capabilities', "reports 'setup'", 'does not', 'migrate_cancel', '--destination-autostart', 'Exit 0', '4: incomplete']) expect(r.out).toContain(s);
    const top: string[] = [];
    expect(main(['help'], (s) => top.push(s))).toBe(0);
    expect(top.join('\n')).toContain('monitor --source QMP_SOCKET --destination QMP_SOCKET');
  });

  it('a missing --source or --destination names the option', async () => {
    const a = await cli('--destination', '/tmp/x.qmp');
    expect(a.code).toBe(2);
    expect(a.err).toBe("migration-statecharts: missing --source; expected the source QEMU's QMP socket (a path or tcp:HOST:PORT)");
    const b = await cli('--source', '/tmp/x.qmp');
    expect(b.code).toBe(2);
    expect(b.err.split('\n')).toHaveLength(1);
    expect(b.err).toContain('missing --destination');
    expect(a.out + b.out).toBe('');
  });

  it('bad values name the value', async () => {
    const r = await cli('--source', 'a', '--destination', 'b', '--switchover-ack', 'maybe');
    expect([r.code, r.err]).toEqual([2, "migration-statecharts: bad --switchover-ack 'maybe'; valid: on, off, source, destination"]);
    const t = await cli('--source', 'a', '--destination', 'b', '--timeout', '-3');
    expect(t.code).toBe(2);
    expect(t.err).toContain("bad --timeout '-3': negative");
    const p = await cli('--source', 'a', '--destination', 'b', '--pause-before-switchover', 'yes');
    expect(p.err).toBe("migration-statecharts: bad --pause-before-switchover 'yes'; valid: on, off");
  });

  it('a socket nobody serves: one line naming the side and the path, exit 2, no stack trace', async () => {
    const missing = join(scratch, 'nobody.qmp');
    const t0 = performance.now();
    const r = await cli('--source', missing, '--destination', missing);
    expect(r.code).toBe(2);
    expect(r.err.split('\n')).toHaveLength(1);
    expect(r.err).toMatch(new RegExp(`^migration-statecharts: cannot attach to the source's QMP socket ${missing}: could not connect within 3000 ms \\(.*ENOENT`));
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(performance.now() - t0).toBeLessThan(6000);
    expect(r.out).toBe('');
  });

  it('a socket that accepts but never greets (a QMP socket with its one client taken): says so', async () => {
    const path = join(scratch, 'silent.qmp');
    const srv = createServer(() => undefined);
    await new Promise<void>((r) => srv.listen(path, r));
    try {
      const r = await cli('--source', path, '--destination', path);
      expect(r.code).toBe(2);
      expect(r.err.split('\n')).toHaveLength(1);
      expect(r.err).toContain(`cannot attach to the source's QMP socket ${path}: no greeting within`);
      expect(r.err).toContain('serves one client at a time');
    } finally {
      srv.close();
    }
  });

  it('--log into a missing directory is refused before attaching', async () => {
    const r = await cli('--source', 'a', '--destination', 'b', '--log', join(scratch, 'no', 'such', 'dir', 'x.jsonl'));
    expect(r.code).toBe(2);
    expect(r.err).toContain('cannot write --log');
  });
});

const qemu = commandWorks(QEMU_BINARY);
if (!qemu.ok) {
  console.warn(`test/monitor.test.ts: the live-monitor runs on real QEMU were LEFT OUT because ${QEMU_BINARY} is missing or does not run; install QEMU to run them.`);
}

/** Each QEMU with a second QMP socket for the monitor; scratch directories apart from test/qemu.test.ts's, which checks for its own leftovers. */
const PAIR = { monitorSockets: true, scratchPrefix: 'qemu-monitor-' } as const;
const scratchDirs = () => readdirSync(tmpdir()).filter((d) => d.startsWith(PAIR.scratchPrefix));
const dirsBefore = new Set(scratchDirs());

const scenario = (name: string) => {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) throw new Error(`no scenario ${name}`);
  return s;
};

/**
 * Start a pair, attach the monitor (through the CLI, --verbose) before any capability is set, run the
 * scenario's plan from the harness's sockets, and wait for the monitor's own verdict.
 */
async function monitored(name: string, flags: string[] = []) {
  const s = scenario(name);
  const pair = await startPair({ ...PAIR, destinationAutostart: s.config.autostart ?? true });
  const out: string[] = [];
  const err: string[] = [];
  const log = join(scratch, `${name}-${flags.length}.jsonl`);
  try {
    const code = main(
      ['monitor', '--source', pair.monitorSocket('source'), '--destination', pair.monitorSocket('destination'), '--verbose', '--timeout', '30', '--log', log, ...flags],
      (x) => out.push(x),
      (x) => err.push(x),
    );
    await waitUntil(() => err.some((l) => l.includes('attached:')) || err.some((l) => l.startsWith('migration-statecharts:')), 15_000, `the monitor did not attach: ${err.join('\n')}`);
    await runPlan(pair, plan(s.config, s.waypoints, s.plan), { ...(s.timing ? { timing: s.timing } : {}), ...(s.capabilities ? { capabilities: s.capabilities } : {}) });
    const exit = await code;
    if (process.env['MONITOR_DEBUG']) console.log(`${name} ${flags.join(' ')}\n${out.join('\n')}\n${err.join('\n')}`);
    if (process.env['MONITOR_DEBUG'] && existsSync(log)) console.log(readFileSync(log, 'utf8'));
    const records = sortRecords(await pair.close());
    return { exit, out: out.join('\n'), err: err.join('\n'), conform: checkLog(records), log: existsSync(log) ? readFileSync(log, 'utf8') : '' };
  } finally {
    await pair.close();
  }
}

describe.skipIf(!qemu.ok)(`monitor on real QEMU: ${qemu.output.split('\n')[0]}`, () => {
  it('plain precopy: the monitor follows it to both completed, reading the configuration from QEMU, and it conforms (exit 0)', async () => {
    const r = await monitored('precopy-completes');
    expect(r.exit, `${r.out}\n${r.err}`).toBe(0);
    expect(r.out).toMatch(/stopped after [\d.]+ s: the migration ended/);
    expect(r.out).toContain('configuration: switchover-ack off, pause-before-switchover off (switchover-ack from query-migrate-capabilities');
    expect(r.out).toMatch(/conforms: \d+ observations checked, 0 actions/);
    // it saw every status of both sides, each step with the model state after it
    for (const st of ['setup', 'active', 'device', 'completed']) expect(r.err).toContain(`source reported status '${st}'`);
    expect(r.err).toContain("destination reported status 'completed'");
    expect(r.err).toMatch(/source reported status 'completed' {2}→ model: source 'completed', destination '(active|completed)'/);
    expect(r.err).toContain("query-migrate says 'completed'");
    // conform agrees on the harness's own log, commands and all
    expect(r.conform.divergence).toBeNull();
    expect(r.conform.incomplete).toBeNull();
    // --log is what it saw, in conform's format, and has no command but queries
    const seen = parseLog(r.log).records;
    expect(seen.length).toBeGreaterThan(8);
    expect(seen.every((x) => !('execute' in x) || x.execute.startsWith('query-'))).toBe(true);
  }, 60_000);

  it('switchover-ack: read from both QEMUs when the source starts, and the run conforms (exit 0)', async () => {
    const r = await monitored('switchover-ack-completes');
    expect(r.exit, `${r.out}\n${r.err}`).toBe(0);
    // attached before the orchestrator set the capabilities: the first reading had them off
    expect(r.err).toMatch(/attached: .*switchover-ack off/);
    expect(r.err).toContain('the configuration changed before migrate: switchover-ack on, pause-before-switchover off');
    expect(r.out).toContain("configuration: switchover-ack on, pause-before-switchover off (switchover-ack from query-migrate-capabilities when the source's migration started");
    expect(r.out).toContain('conforms:');
    expect(r.conform.divergence).toBeNull();
    expect(r.conform.config.ack).toBe('legacy');
  }, 60_000);

  it('pause-before-switchover, an unseen migrate-continue: conforms when read from QEMU; told it is off, the monitor diverges at pre-switchover (exit 1)', async () => {
    const read = await monitored('pause-then-continue');
    expect(read.exit, `${read.out}\n${read.err}`).toBe(0);
    expect(read.err).toContain("source reported status 'pre-switchover'");
    expect(read.out).toContain('pause-before-switchover on');

    // the same real run, the monitor told the configuration differs from what QEMU runs
    const told = await monitored('pause-then-continue', ['--pause-before-switchover', 'off']);
    expect(told.exit, `${told.out}\n${told.err}`).toBe(1);
    expect(told.out).toContain('stopped after');
    expect(told.out).toContain("configuration: switchover-ack off, pause-before-switchover off (switchover-ack from query-migrate-capabilities when the source's migration started; pause-before-switchover from --pause-before-switchover)");
    expect(told.out).toMatch(/DIVERGES at step \d+ \(line \d+\): source reported status 'pre-switchover'/);
    // without pause-before-switchover the source that stopped its guest goes on to 'device' (one model step stops it and moves on)
    expect(told.out).toContain("the model allowed: source status → 'device'\n");
    expect(told.out).toMatch(/reported so far: source status 'active', source running false, destination status 'active'/);
    expect(told.err).toMatch(/source reported status 'pre-switchover' {2}DIVERGES/);
    // the divergence's line is that line of the monitor's --log
    const line = Number(/\(line (\d+)\)/.exec(told.out)![1]);
    expect(JSON.parse(told.log.split('\n')[line - 1]!)).toMatchObject({ side: 'source', event: 'MIGRATION', data: { status: 'pre-switchover' } });
    // conform, reading the capabilities from the harness's log, finds the run conforming
    expect(told.conform.divergence).toBeNull();
    expect(told.conform.config.pauseBeforeSwitchover).toBe(true);
  }, 90_000);

  it('the destination QEMU killed mid-precopy: its QMP connection closes, the monitor follows the source to failed (exit 0)', async () => {
    const r = await monitored('destination-killed-in-active');
    expect(r.exit, `${r.out}\n${r.err}`).toBe(0);
    expect(r.err).toContain("the destination's QMP connection closed: its QEMU is gone");
    expect(r.err).toContain("source reported status 'failed'");
    expect(r.out).toContain('stopped after');
    expect(r.out).toContain('the migration ended');
    expect(r.out).toContain('conforms:');
    expect(r.conform.divergence).toBeNull();
  }, 60_000);

  it('migrate_cancel with switchover-ack, unseen: the monitor follows the cancel to cancelled/failed (or failed/failed) and it conforms (exit 0)', async () => {
    const r = await monitored('cancel-in-active-with-ack');
    expect(r.exit, `${r.out}\n${r.err}`).toBe(0);
    // QEMU 10.0.2's migration_cancel shuts the return path before it sets 'cancelling', so the migration
    // thread may fail first (machines/qemuSource.ts CANCEL_LOSES_TO_RETURN_PATH_ERROR): either outcome
    const cancelled = r.err.includes("source reported status 'cancelling'");
    expect(r.err).toContain(cancelled ? "source reported status 'cancelled'" : "source reported status 'failed'");
    expect(r.err).toContain("destination reported status 'failed'");
    expect(r.conform.divergence).toBeNull();
    // QEMU 10.0 may report the destination's failed first (its cancel shuts the return path down before
    // it sets cancelling): conform recognises that by the command, the monitor by the source's cancelling;
    // when the source fails instead, the model itself has the destination failing first (no exception)
    const byCommand = r.conform.exceptions.some((e) => e.name === 'qemu10-cancel-shuts-return-path-first');
    expect(r.out.includes('known disagreement qemu10-cancel-shuts-return-path-first-unseen applied'), r.out).toBe(cancelled && byCommand);
  }, 60_000);

  it('nobody migrates: after --timeout the monitor reports incomplete (exit 4), also as JSON; the harness\'s own QMP socket is busy (exit 2)', async () => {
    const pair = await startPair(PAIR);
    try {
      const r = await cli('--source', pair.monitorSocket('source'), '--destination', pair.monitorSocket('destination'), '--timeout', '1');
      expect(r.code, r.out + r.err).toBe(4);
      expect(r.out).toContain('the timeout ran out');
      expect(r.out).toMatch(/INCOMPLETE: \d+ observations checked, 0 actions, no divergence, but the log stops mid-migration/);
      expect(r.out).toContain("reported so far: source status 'none', source running true, destination status 'none', destination running false");
      expect(r.err).toBe(''); // not a terminal and no --verbose: quiet
      const j = await cli('--source', pair.monitorSocket('source'), '--destination', pair.monitorSocket('destination'), '--timeout', '1', '--json');
      expect(j.code).toBe(4);
      expect(JSON.parse(j.out)).toMatchObject({ ended: 'timeout', conforms: false, divergence: null, config: { ack: 'off', pauseBeforeSwitchover: false }, qemu: { source: expect.stringMatching(/^\d+\.\d+\.\d+$/) } });
      expect(JSON.parse(j.out).incomplete.reported).toContain("source status 'none'");
      // the harness holds each QEMU's first QMP socket: a second client is never greeted there
      const busy = await cli('--source', join(pair.dir, 'source.qmp'), '--destination', pair.monitorSocket('destination'));
      expect(busy.code).toBe(2);
      expect(busy.err).toMatch(/^migration-statecharts: cannot attach to the source's QMP socket .*source\.qmp: no greeting within \d+ ms \(a QEMU -qmp socket serves one client at a time: give the monitor its own -qmp socket\)$/);
    } finally {
      await pair.close();
    }
  }, 30_000);

  it('attached after migrate: one line, exit 2 (the walk starts where nothing has happened yet)', async () => {
    const pair = await startPair(PAIR);
    try {
      for (const side of ['destination', 'source'] as const) await pair.execute(side, 'migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
      await pair.execute('source', 'migrate-set-parameters', { 'max-bandwidth': 100_000 }); // precopy lasts minutes
      await pair.execute('destination', 'migrate-incoming', { uri: pair.incomingUri });
      await pair.execute('source', 'migrate', { uri: pair.incomingUri });
      await pair.waitForStatus('source', 'active', 10_000);
      const r = await cli('--source', pair.monitorSocket('source'), '--destination', pair.monitorSocket('destination'));
      expect([r.code, r.err]).toEqual([2, "migration-statecharts: the source's migration has already started (status 'active'): attach the monitor before migrate"]);
      expect(r.out).toBe('');
    } finally {
      await pair.close();
    }
  }, 30_000);

  it('leaves no QEMU process and no scratch directory behind', () => {
    expect(liveProcesses()).toBe(0);
    expect(scratchDirs().filter((d) => !dirsBefore.has(d))).toEqual([]);
  });
});
