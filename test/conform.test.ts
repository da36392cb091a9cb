/**
 * Conformance of recorded QEMU runs to the model, without QEMU: the real logs under
 * test/fixtures/qemu/ (recorded by test/qemu.test.ts from QEMU 10.0.2) conform, the broken one is
 * rejected at the right step, the check's semantics bite (skipped statuses, impossible orders, wrong
 * refusals), each documented disagreement is needed where it applies and nowhere else, the scenarios
 * plan from the model, `conform` keeps its exit codes and one-line errors, and the QMP client works
 * against a fake QMP server.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFORM_HELP } from '../src/cli/conform.js';
import { main } from '../src/cli.js';
import { Checker, checkLog, checkObservations } from '../src/qemu/conform.js';
import { KNOWN_DISAGREEMENTS, RUNSTATE_AND_STATUS_APART, UNSEEN_COMMAND_DISAGREEMENTS, applyToLog } from '../src/qemu/exceptions.js';
import { type LogRecord, type Side, LogFormatError, parseLog, parseTraceLog } from '../src/qemu/log.js';
import { type Observation, configOf, observationsOf } from '../src/qemu/observations.js';
import { PlanError, plan } from '../src/qemu/plan.js';
import { QmpClient, QmpClosedError, QmpError, QmpTimeoutError } from '../src/qemu/qmp.js';
import { SCENARIOS } from '../src/qemu/scenarios.js';

const FIX = join('test', 'fixtures', 'qemu');
const fixture = (name: string) => readFileSync(join(FIX, name), 'utf8');
const records = (name: string) => parseLog(fixture(name)).records;
const scratch = mkdtempSync(join(tmpdir(), 'conform-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = main(['conform', ...argv], (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function fileWith(name: string, text: string): string {
  const p = join(scratch, name);
  writeFileSync(p, text);
  return p;
}

/** A synthetic run: records with increasing timestamps. */
function run(...items: ((t: number) => LogRecord)[]): LogRecord[] {
  return items.map((f, i) => f(1_000_000 + i * 100));
}
const ts = (t: number) => ({ seconds: Math.floor(t / 1_000_000), microseconds: t % 1_000_000 });
const caps = (side: Side, on: string[]) => (t: number): LogRecord => ({
  side,
  execute: 'migrate-set-capabilities',
  arguments: { capabilities: ['events', 'return-path', 'switchover-ack', 'pause-before-switchover'].map((c) => ({ capability: c, state: c === 'events' || on.includes(c) })) },
  return: {},
  timestamp: ts(t),
});
const cmd = (side: Side, execute: string, error?: string) => (t: number): LogRecord =>
  error ? { side, execute, error: { class: 'GenericError', desc: error }, timestamp: ts(t) } : { side, execute, return: {}, timestamp: ts(t) };
const status = (side: Side, s: string) => (t: number): LogRecord => ({ side, event: 'MIGRATION', data: { status: s }, timestamp: ts(t) });
const migrateContinue = (state: string, error?: string) => (t: number): LogRecord => ({
  side: 'source',
  execute: 'migrate-continue',
  arguments: { state },
  ...(error ? { error: { class: 'GenericError', desc: error } } : { return: {} }),
  timestamp: ts(t),
});
const ev = (side: Side, event: 'STOP' | 'RESUME') => (t: number): LogRecord => ({ side, event, data: {}, timestamp: ts(t) });

const ACK_PAUSE = ['return-path', 'switchover-ack', 'pause-before-switchover'];
/** Both sides set up, source paused in pre-switchover, destination active. */
const upToPreSwitchover = (on: string[]) => [
  caps('destination', on.filter((c) => c !== 'pause-before-switchover')),
  caps('source', on),
  cmd('destination', 'migrate-incoming'),
  status('destination', 'setup'),
  cmd('source', 'migrate'),
  status('source', 'setup'),
  status('destination', 'active'),
  status('source', 'active'),
  ev('source', 'STOP'),
  status('source', 'pre-switchover'),
];

describe('recorded real runs (QEMU 10.0.2)', () => {
  for (const name of ['precopy.jsonl', 'pause-continue.jsonl', 'switchover-ack.jsonl', 'migrate-continue-wrong-state.jsonl', 'return-path-destination-only.jsonl']) {
    it(`${name} conforms, with no documented disagreement needed`, () => {
      const r = checkLog(records(name), undefined, { exceptions: [] });
      expect(r.divergence).toBeNull();
      expect(r.incomplete).toBeNull();
      expect(r.steps).toBeGreaterThan(10);
      expect(r.actions).toBeGreaterThanOrEqual(2);
    });
  }

  it('reads the configuration from the capabilities', () => {
    expect(configOf(records('precopy.jsonl'))).toEqual({ ack: 'off', pauseBeforeSwitchover: false });
    expect(configOf(records('pause-continue.jsonl'))).toEqual({ ack: 'off', pauseBeforeSwitchover: true });
    expect(configOf(records('switchover-ack.jsonl'))).toEqual({ ack: 'legacy', pauseBeforeSwitchover: false });
    // return-path on the destination alone is inert: a plain precopy
    expect(configOf(records('return-path-destination-only.jsonl'))).toEqual({ ack: 'off', pauseBeforeSwitchover: false });
  });

  it('the broken log (the source reports pre-switchover without pause-before-switchover) is rejected at that step', () => {
    const { records: recs, lines } = parseLog(fixture('precopy-broken.jsonl'));
    const d = checkLog(recs, lines).divergence!;
    expect(d).not.toBeNull();
    expect(d.line).toBe(11);
    expect(d.step).toBe(10); // both capability commands, migrate-incoming, setup, migrate, setup, active, active, STOP, pre-switchover
    expect(d.did).toBe("source reported status 'pre-switchover'");
    expect(d.allowed).toEqual(["source status → 'device'"]);
  });
});

describe('recorded real runs with multifd (QEMU 10.0.2, no VFIO device: RAM over the channels)', () => {
  it('every multifd run conforms to the model with its channels', () => {
    for (const [name, channels, ack] of [
      ['multifd.jsonl', 2, 'off'],
      ['multifd-ack.jsonl', 3, 'legacy'],
      ['multifd-cancel.jsonl', 2, 'off'],
    ] as const) {
      const { records: recs, lines } = parseLog(fixture(name));
      expect(configOf(recs)).toMatchObject({ ack, multifd: channels });
      const r = checkLog(recs, lines);
      expect(r.divergence, name).toBeNull();
      expect(r.incomplete, name).toBeNull();
    }
  });
  it('broken: the destination completes before the source switched over (planted) — rejected at that report', () => {
    const { records: recs, lines } = parseLog(fixture('multifd-broken.jsonl'));
    const d = checkLog(recs, lines).divergence!;
    expect(d.did).toBe("destination reported status 'completed'");
    expect(d.allowed).toContain("source status → 'device'");
  });
  it('multifd on one side only, or different channel counts, is named as outside the model', () => {
    const base = records('multifd.jsonl');
    const dropDestinationMultifd = base.map((r) =>
      'execute' in r && r.execute === 'migrate-set-capabilities' && r.side === 'destination'
        ? { ...r, arguments: { capabilities: [{ capability: 'events', state: true }] } }
        : r,
    );
    expect(() => configOf(dropDestinationMultifd)).toThrow(/multifd is on on the source only/);
    const moreChannels = base.map((r) =>
      'execute' in r && r.execute === 'migrate-set-parameters' && r.side === 'destination' ? { ...r, arguments: { 'multifd-channels': 3 } } : r,
    );
    expect(() => configOf(moreChannels)).toThrow(/multifd-channels differ \(source 2, destination 3\)/);
  });
});

describe('recorded real runs: paused destination, management stop, retries (QEMU 10.0.2)', () => {
  const check = (name: string) => {
    const { records: recs, lines } = parseLog(fixture(name));
    return checkLog(recs, lines);
  };
  for (const name of [
    'destination-paused-cont.jsonl',
    'destination-paused-cont-ack.jsonl',
    'management-stop.jsonl',
    'management-stop-cont.jsonl',
    'retry-after-kill.jsonl',
    'retry-after-cancel.jsonl',
    'retry-after-cancel-ack.jsonl',
  ]) {
    it(`${name} conforms, with no documented disagreement needed`, () => {
      const r = checkLog(records(name), undefined, { exceptions: [] });
      expect(r.divergence).toBeNull();
      expect(r.incomplete).toBeNull();
      expect(r.steps).toBeGreaterThan(15);
    });
  }

  it('reads -S, stop/cont and retries from the process records and commands', () => {
    expect(configOf(records('destination-paused-cont.jsonl'))).toEqual({ ack: 'off', pauseBeforeSwitchover: false, autostart: false, management: true });
    expect(configOf(records('management-stop.jsonl'))).toEqual({ ack: 'off', pauseBeforeSwitchover: false, management: true });
    expect(configOf(records('retry-after-kill.jsonl'))).toEqual({ ack: 'off', pauseBeforeSwitchover: false, retries: 1 });
    expect(configOf(records('retry-after-cancel.jsonl'))).toEqual({ ack: 'off', pauseBeforeSwitchover: false, retries: 1 });
  });

  it('the -S destination stays paused until cont: query-status says paused, cont is accepted, RESUME follows it', () => {
    const recs = records('destination-paused-cont.jsonl');
    const i = recs.findIndex((r) => 'execute' in r && r.side === 'destination' && r.execute === 'cont');
    const resume = recs.findIndex((r) => 'event' in r && r.side === 'destination' && r.event === 'RESUME');
    expect(i).toBeGreaterThan(0);
    expect(resume).toBeGreaterThan(i);
    expect(recs[i - 1]).toMatchObject({ side: 'destination', execute: 'query-status', return: { status: 'paused', running: false } });
    // without the -S record the model's destination starts the guest itself at the end of the load: RESUME after cont has no run
    const autostarted = recs.map((r) => ('process' in r ? { ...r, autostart: true } : r));
    expect(checkLog(autostarted).divergence).not.toBeNull();
  });

  it('broken: the -S destination resumes its guest before cont (planted RESUME after completed)', () => {
    const d = check('destination-paused-cont-broken.jsonl').divergence!;
    expect(d).toMatchObject({ line: 18, did: 'destination resumed its guest (RESUME)' });
    expect(d.allowed).toEqual(['no further change (the model has nothing left to report here)']);
    expect(d.reported).toMatch(/destination status 'completed', destination running false$/);
  });

  it('broken: after a management stop the destination starts its guest (planted RESUME): a paused source leaves it paused', () => {
    const d = check('management-stop-broken.jsonl').divergence!;
    expect(d).toMatchObject({ line: 21, did: 'destination resumed its guest (RESUME)' });
    expect(d.allowed).toEqual(["destination status → 'completed'"]);
    expect(d.reported).toMatch(/^source status 'completed', source running false/);
  });

  it('broken: cont on the source without its guest resuming (planted: no RESUME after cont)', () => {
    const d = check('management-stop-cont-broken.jsonl').divergence!;
    // the switchover STOP (line 19) repeats 'not running' and is ignored; the status after it is where the run has no model run
    expect(d).toMatchObject({ line: 20, did: "source reported status 'device'" });
    expect(d.allowed).toEqual(['source running → true']);
  });

  it('broken: the retry goes to the killed destination (no new process record)', () => {
    const d = check('retry-after-kill-broken.jsonl').divergence!;
    expect(d.line).toBe(16);
    expect(d.did).toMatch(/^destination accepted migrate-set-capabilities/);
    expect(d.allowed).toEqual(['nothing from the destination: its QEMU was killed at line 13 and no new destination process was started (NEW_PROCESS)']);
  });

  it('broken: QEMU refuses the new migrate after a cancel (planted refusal)', () => {
    const d = check('retry-after-cancel-broken.jsonl').divergence!;
    expect(d.line).toBe(22);
    expect(d.did).toMatch(/^source refused migrate \(MIGRATE\)/);
    expect(d.allowed).toEqual(["the model accepts MIGRATE in every state it can be in here (source 'cancelled', destination 'setup')"]);
  });

  it('a live destination is replaced only once its failure was reported: the old process\'s \'failed\' moved after the new process start is a divergence', () => {
    const recs = records('retry-after-cancel.jsonl');
    const p = recs.findIndex((r) => 'process' in r && r.incarnation === 1);
    const failed = recs.findIndex((r) => 'event' in r && r.side === 'destination' && r.data['status'] === 'failed');
    // the old (still running) process's 'failed' moved to just after the new process started
    const moved = [...recs.slice(0, failed), ...recs.slice(failed + 1, p + 1), recs[failed]!, ...recs.slice(p + 1)];
    const d = checkLog(moved).divergence!;
    expect(d.did).toBe('a new destination QEMU process (incarnation 1) was started (NEW_PROCESS)');
    expect(d.allowed).toEqual(["NEW_PROCESS only once this was reported: destination status → 'failed'"]);
  });

  it('a retry to the old, failed destination: QEMU accepts migrate-incoming once per process, so an accepted second one is a divergence', () => {
    const recs = records('retry-after-cancel.jsonl');
    const p = recs.findIndex((r) => 'process' in r && r.incarnation === 1);
    const again: LogRecord = { side: 'destination', execute: 'migrate-incoming', arguments: { uri: 'tcp:127.0.0.1:1' }, return: {}, timestamp: recs[p]!.timestamp };
    const d = checkLog([...recs.slice(0, p), again, ...recs.slice(p)]).divergence!;
    expect(d.did).toBe('destination accepted migrate-incoming (MIGRATE_INCOMING)');
    expect(d.allowed).toEqual([
      "QEMU accepts migrate-incoming once per process (qmp_migrate_incoming), from 'none'; a retry needs a new destination process (NEW_PROCESS); the destination is in 'failed' here",
    ]);
    // refused, as real QEMU does ("The incoming migration has already been started"), it conforms
    const refused: LogRecord = { side: 'destination', execute: 'migrate-incoming', error: { class: 'GenericError', desc: 'The incoming migration has already been started' }, timestamp: recs[p]!.timestamp };
    expect(checkLog([...recs.slice(0, p), refused, ...recs.slice(p)]).divergence).toBeNull();
  });

  it('after completed a new migrate is refused (postmigrate); an accepted one there is a divergence', () => {
    const recs = records('retry-after-cancel.jsonl');
    const last = recs.map((r) => 'execute' in r && r.execute === 'migrate').lastIndexOf(true);
    expect(recs[last]).toMatchObject({ error: { desc: "Can't migrate the vm that was paused due to previous migration" } });
    const accepted = recs.map((r, i): LogRecord => (i === last && 'execute' in r ? { side: r.side, execute: r.execute, arguments: r.arguments ?? {}, return: {}, timestamp: r.timestamp } : r));
    const d = checkLog(accepted).divergence!;
    expect(d.did).toBe('source accepted migrate (MIGRATE)');
    expect(d.allowed).toEqual([
      "an accepted migrate moves the source to 'setup' (migrate_init) and QEMU refuses one while a migration runs or after completed (migrate_prepare); the source is in 'completed' here",
    ]);
  });

  it('the retry bound comes from the log: without the new process record the second migrate has no second destination', () => {
    const cfg = configOf(records('retry-after-cancel.jsonl').filter((r) => !('process' in r && r.incarnation === 1)));
    expect(cfg.retries).toBe(1); // the second accepted migrate still counts
  });
});

describe('the check bites', () => {
  const precopy = () => records('precopy.jsonl');
  const without = (recs: LogRecord[], pred: (r: LogRecord) => boolean) => recs.filter((r) => !pred(r));
  const isStatus = (r: LogRecord, side: Side, s: string) => 'event' in r && r.side === side && r.data['status'] === s;

  it('a status QEMU skipped: no destination setup (the source\'s migrate is concurrent with migrate-incoming, so the destination\'s next report is where the run has no model run)', () => {
    const d = checkLog(without(precopy(), (r) => isStatus(r, 'destination', 'setup'))).divergence!;
    expect(d.did).toBe("destination reported status 'active'");
    expect(d.allowed).toContain("destination status → 'setup'");
  });

  it('a status QEMU skipped: no source active before device', () => {
    const d = checkLog(without(precopy(), (r) => isStatus(r, 'source', 'active'))).divergence!;
    expect(d.did).toBe('source stopped its guest (STOP)');
    expect(d.allowed).toEqual(["source status → 'active'"]);
  });

  it('an order the model forbids: the destination completes before the source reaches device', () => {
    const recs = precopy();
    const done = recs.findIndex((r) => isStatus(r, 'destination', 'completed'));
    const device = recs.findIndex((r) => isStatus(r, 'source', 'device'));
    const moved = [...recs.slice(0, device), recs[done]!, ...recs.slice(device, done), ...recs.slice(done + 1)];
    expect(checkLog(moved).divergence?.did).toBe("destination reported status 'completed'");
  });

  it('an action the model does not take, accepted: migrate-continue without pause-before-switchover', () => {
    const recs = precopy();
    const i = recs.findIndex((r) => isStatus(r, 'source', 'active'));
    const d = checkLog([...recs.slice(0, i + 1), migrateContinue('active')(0), ...recs.slice(i + 1)]).divergence!;
    expect(d.did).toBe("source accepted migrate-continue {state: 'active'} (MIGRATE_CONTINUE)");
    expect(d.allowed).toEqual(['the model never takes MIGRATE_CONTINUE in this configuration (switchover-ack off, pause-before-switchover off)']);
    const paused = records('pause-continue.jsonl');
    const j = paused.findIndex((r) => isStatus(r, 'source', 'active'));
    const e = checkLog([...paused.slice(0, j + 1), migrateContinue('pre-switchover')(0), ...paused.slice(j + 1)]).divergence!;
    expect(e.allowed).toEqual(["MIGRATE_CONTINUE only once this was reported: source running → false or source status → 'pre-switchover'"]);
  });

  it('a refusal the model does not allow: migrate refused while the source is in none', () => {
    const recs = precopy().map((r) => ('execute' in r && r.execute === 'migrate' ? { ...r, return: undefined, error: { class: 'GenericError', desc: 'no' } } : r));
    const d = checkLog(recs.map((r) => JSON.parse(JSON.stringify(r)) as LogRecord)).divergence!;
    expect(d.did).toBe('source refused migrate (MIGRATE): GenericError: no');
    expect(d.allowed[0]).toMatch(/the model accepts MIGRATE in every state/);
  });

  it('a refusal where the model has no step conforms (QEMU refuses a second migrate-incoming)', () => {
    const recs = precopy();
    const i = recs.findIndex((r) => isStatus(r, 'destination', 'active'));
    const refused = cmd('destination', 'migrate-incoming', 'The incoming migration has already been started')(0);
    expect(checkLog([...recs.slice(0, i + 1), refused, ...recs.slice(i + 1)]).divergence).toBeNull();
  });

  it('a trace fact the model cannot have: the switchover acked without switchover-ack', () => {
    const recs = precopy();
    const fact: LogRecord = { side: 'source', trace: 'source_return_path_thread_switchover_acked', args: '', timestamp: ts(0) };
    const d = checkLog([...recs.slice(0, 8), fact, ...recs.slice(8)]).divergence!;
    expect(d.allowed[0]).toMatch(/received MIG_RP_MSG_SWITCHOVER_ACK/);
  });

  it('a runstate the model does not have: the source running after it completed', () => {
    const recs = precopy().map((r) =>
      'execute' in r && r.side === 'source' && r.execute === 'query-status' ? { ...r, return: { status: 'running', running: true } } : r,
    );
    const d = checkLog(recs).divergence!;
    expect(d.did).toBe("source query-status says 'running'");
  });
});

/** A copy of a recorded log with the records at `at` replaced by `by` (the planted change). */
const planted = (name: string, at: (r: LogRecord) => boolean, by: (r: LogRecord) => LogRecord[]) => {
  const recs = records(name);
  const i = recs.findIndex(at);
  expect(i, `${name}: the record to change`).toBeGreaterThanOrEqual(0);
  return { recs: [...recs.slice(0, i), ...by(recs[i]!), ...recs.slice(i + 1)], line: i + 1 };
};
const isCmd = (r: LogRecord, side: Side, execute: string) => 'execute' in r && r.side === side && r.execute === execute;
const refusedAs = (r: LogRecord, desc: string): LogRecord => {
  const { return: _ret, ...rest } = r as LogRecord & { return?: unknown };
  return { ...rest, error: { class: 'GenericError', desc } } as LogRecord;
};
const acceptedAs = (r: LogRecord): LogRecord => {
  const { error: _err, ...rest } = r as LogRecord & { error?: unknown };
  return { ...rest, return: {} } as LogRecord;
};
const setCaps = (side: Side, list: [string, boolean][], error?: string) => (t: number): LogRecord => ({
  side,
  execute: 'migrate-set-capabilities',
  arguments: { capabilities: list.map(([capability, state]) => ({ capability, state })) },
  ...(error ? { error: { class: 'GenericError', desc: error } } : { return: {} }),
  timestamp: ts(t),
});

describe('a log that stops mid-migration is incomplete, not conforming', () => {
  it('a truncated copy of precopy.jsonl (it stops while the source is active): incomplete, no divergence', () => {
    const recs = records('precopy.jsonl');
    const cut = recs.findIndex((r) => 'event' in r && r.side === 'source' && r.data['status'] === 'active') + 1;
    const r = checkLog(recs.slice(0, cut));
    expect(r.divergence).toBeNull();
    expect(r.incomplete).not.toBeNull();
    expect(r.incomplete!.reported).toBe("source status 'active', source running true, destination status 'active', destination running false");
    expect(r.incomplete!.next).toEqual(['source running → false', "source status → 'device'"]);
  });

  it('paused in pre-switchover at the end: incomplete, the model waits for a command', () => {
    const recs = records('pause-continue.jsonl');
    const cut = recs.findIndex((r) => isCmd(r, 'source', 'migrate-continue'));
    const r = checkLog(recs.slice(0, cut));
    expect(r.incomplete?.next).toEqual(['nothing the model reports on its own: the next step is a command']);
  });

  it('the source completed but the destination has not: incomplete', () => {
    const recs = records('precopy.jsonl');
    const cut = recs.findIndex((r) => 'event' in r && r.side === 'destination' && r.event === 'RESUME');
    expect(checkLog(recs.slice(0, cut)).incomplete?.next).toEqual(["destination running → true", "destination status → 'completed'"]);
  });

  it('conform exits 4 for it, with its own line; --json says so', () => {
    const text = fixture('precopy.jsonl').split('\n').slice(0, 9).join('\n');
    const f = fileWith('truncated.jsonl', text);
    const r = cli(f);
    expect(r.code).toBe(4);
    expect(r.out).toMatch(/INCOMPLETE: \d+ observations checked, 2 actions, no divergence, but the log stops mid-migration/);
    expect(r.out).not.toMatch(/conforms/);
    const j = JSON.parse(cli(f, '--json').out);
    expect(j).toMatchObject({ conforms: false, divergence: null, incomplete: { reported: expect.stringContaining("source status 'active'") } });
  });
});

describe('migrate-continue names the status it continues from (qmp_migrate_continue)', () => {
  const wrong = (r: LogRecord) => isCmd(r, 'source', 'migrate-continue') && (r as { arguments?: { state?: string } }).arguments?.state === 'active';

  it('the recorded run: a wrong state refused in pre-switchover, the right one accepted', () => {
    const obs = checkLog(records('migrate-continue-wrong-state.jsonl'));
    expect(obs.divergence).toBeNull();
    expect(obs.actions).toBe(4);
  });

  it('planted: QEMU accepting the wrong state is a divergence', () => {
    const { recs, line } = planted('migrate-continue-wrong-state.jsonl', wrong, (r) => [acceptedAs(r)]);
    const d = checkLog(recs).divergence!;
    expect(d.line).toBe(line);
    expect(d.did).toBe("source accepted migrate-continue {state: 'active'} (MIGRATE_CONTINUE)");
    expect(d.allowed).toEqual(["QEMU accepts migrate-continue only with the current status as its state argument (qmp_migrate_continue); the source is in 'pre-switchover' here, not 'active'"]);
  });

  it('planted: QEMU refusing the right state where the model continues is a divergence', () => {
    const { recs, line } = planted('migrate-continue-wrong-state.jsonl', wrong, (r) => [{ ...r, arguments: { state: 'pre-switchover' } } as LogRecord]);
    const d = checkLog(recs).divergence!;
    expect(d.line).toBe(line);
    expect(d.allowed[0]).toMatch(/^the model accepts MIGRATE_CONTINUE in every state/);
  });

  it('an accepted migrate-continue without its state argument is bad input', () => {
    const { recs } = planted('pause-continue.jsonl', (r) => isCmd(r, 'source', 'migrate-continue'), (r) => [{ ...r, arguments: {} } as LogRecord]);
    expect(() => checkLog(recs)).toThrow(/an accepted migrate-continue needs "arguments": \{"state": string\}/);
  });
});

describe('a refused migrate-set-capabilities is an observation (qmp_migrate_set_capabilities)', () => {
  const srcCaps = (r: LogRecord) => isCmd(r, 'source', 'migrate-set-capabilities');

  it('QEMU applies a command whole or not at all: the refused set leaves pause-before-switchover off', () => {
    // the command also asks for switchover-ack without return-path, which migrate_caps_check refuses
    const { recs } = planted('pause-continue.jsonl', srcCaps, (r) => [
      refusedAs(
        { ...r, arguments: { capabilities: [{ capability: 'pause-before-switchover', state: true }, { capability: 'switchover-ack', state: true }] } } as LogRecord,
        "Capability 'switchover-ack' requires capability 'return-path'",
      ),
    ]);
    expect(configOf(recs)).toEqual({ ack: 'off', pauseBeforeSwitchover: false });
    // planted: the run still pauses in pre-switchover, which needs the capability QEMU refused — no vacuous pass
    const d = checkLog(recs).divergence!;
    expect(d.did).toBe("source reported status 'pre-switchover'");
    expect(d.allowed).toEqual(["source status → 'device'"]);
  });

  it('planted: QEMU refusing a valid set before any migration is a divergence at that line', () => {
    const { recs, line } = planted('precopy.jsonl', srcCaps, (r) => [refusedAs(r, 'no')]);
    const d = checkLog(recs).divergence!;
    expect(d.line).toBe(line);
    expect(d.did).toMatch(/^source refused migrate-set-capabilities \(events on, return-path off, .*\): GenericError: no$/);
    expect(d.allowed).toEqual(["QEMU accepts a valid set of capabilities when no migration runs (the source is in 'none' here)"]);
    // the destination answers from its outgoing status, which an incoming migration leaves at 'none'
    const dst = planted('precopy.jsonl', (r) => isCmd(r, 'destination', 'migrate-set-capabilities'), (r) => [refusedAs(r, 'no')]);
    expect(checkLog(dst.recs).divergence?.line).toBe(dst.line);
  });

  it('while a migration runs the source refuses (conforms) and may not accept (divergence)', () => {
    const recs = records('precopy.jsonl');
    const i = recs.findIndex((r) => 'event' in r && r.side === 'source' && r.data['status'] === 'active');
    const during = (c: LogRecord) => [...recs.slice(0, i + 1), c, ...recs.slice(i + 1)];
    const pause: [string, boolean][] = [['pause-before-switchover', true]];
    expect(checkLog(during(setCaps('source', pause, "There's a migration process in progress")(0))).divergence).toBeNull();
    const d = checkLog(during(setCaps('source', pause)(0))).divergence!;
    expect(d.did).toBe('source accepted migrate-set-capabilities (pause-before-switchover on)');
    expect(d.allowed).toEqual(["QEMU refuses migrate-set-capabilities while a migration runs (the source is in 'active' or 'device' here)"]);
    // after the end it accepts again
    expect(checkLog([...recs, setCaps('source', [['events', true]])(1_900_000_000_000_000)]).divergence).toBeNull();
  });

  it('QEMU never accepts switchover-ack without return-path', () => {
    const { recs, line } = planted('precopy.jsonl', (r) => isCmd(r, 'destination', 'migrate-set-capabilities'), (r) => [
      { ...r, arguments: { capabilities: [{ capability: 'switchover-ack', state: true }] } } as LogRecord,
    ]);
    const d = checkLog(recs).divergence!;
    expect(d.line).toBe(line);
    expect(d.allowed).toEqual(['QEMU refuses this set of capabilities: switchover-ack requires return-path (migrate_caps_check)']);
  });
});

describe('return-path on the destination alone (only the source opens the return path)', () => {
  it('planted: the destination opening its return path although the source never asked is a divergence', () => {
    const at = (r: LogRecord) => 'event' in r && r.side === 'destination' && r.data['status'] === 'active';
    const { recs, line } = planted('return-path-destination-only.jsonl', at, (r) => [
      r,
      { side: 'destination', trace: 'loadvm_process_command', args: 'com=OPEN_RETURN_PATH len=0', timestamp: r.timestamp },
    ]);
    const d = checkLog(recs).divergence!;
    expect(d.line).toBe(line + 1);
    expect(d.allowed).toEqual(['no state the model can be in here has: the destination opened its return path']);
  });

  it('a later change of the destination\'s return-path is inert, of its switchover-ack outside the model', () => {
    const recs = records('return-path-destination-only.jsonl');
    const i = recs.findIndex((r) => 'event' in r && r.side === 'destination' && r.data['status'] === 'active');
    const during = (c: LogRecord) => [...recs.slice(0, i + 1), c, ...recs.slice(i + 1)];
    expect(checkLog(during(setCaps('destination', [['return-path', false]])(0))).divergence).toBeNull();
    expect(() => configOf(during(setCaps('destination', [['return-path', true], ['switchover-ack', true]])(0)))).toThrow(
      /the destination turns switchover-ack on after migrate-incoming; the checked model fixes each side's capabilities when its migration starts/,
    );
  });
});

describe('documented disagreements: needed exactly where QEMU 10.0 shows them', () => {
  const strict = (recs: LogRecord[]) => checkLog(recs, undefined, { exceptions: [] });

  it('RESUME while cancelling, the destination fails, then cancelled: the model agrees now, no exception needed', () => {
    const recs = run(...upToPreSwitchover(ACK_PAUSE), cmd('source', 'migrate_cancel'), status('source', 'cancelling'), ev('source', 'RESUME'), status('destination', 'failed'), status('source', 'cancelled'));
    expect(strict(recs).divergence).toBeNull();
    const r = checkLog(recs);
    expect(r.divergence).toBeNull();
    expect(r.exceptions).toEqual([]);
  });

  it('reports of concurrent steps interleave: STOP, the destination becomes active (its header step is concurrent with the switchover), then pre-switchover: no exception needed', () => {
    const base = upToPreSwitchover(['pause-before-switchover']);
    const recs = run(...base.slice(0, 6), status('source', 'active'), ev('source', 'STOP'), status('destination', 'active'), status('source', 'pre-switchover'));
    expect(strict(recs).divergence).toBeNull();
    expect(checkLog(recs).divergence).toBeNull();
  });

  it('qemu10-cancel-shuts-return-path-first: the destination fails before the source says cancelling', () => {
    const recs = run(...upToPreSwitchover(ACK_PAUSE), cmd('source', 'migrate_cancel'), status('destination', 'failed'), status('source', 'cancelling'), ev('source', 'RESUME'), status('source', 'cancelled'));
    expect(strict(recs).divergence?.did).toBe("destination reported status 'failed'");
    const r = checkLog(recs);
    expect(r.divergence).toBeNull();
    expect(r.exceptions.map((e) => e.name)).toEqual(['qemu10-cancel-shuts-return-path-first']);
  });

  it("migrate_cancel with a return path may end failed/failed (QEMU 10.0.2 migration_cancel shuts the return path before it sets 'cancelling'): conforms, and diverges without the race or without a return path", () => {
    // synthetic: the recorded retry-after-cancel-ack run up to its migrate_cancel, then the ending the race gives
    const recs = records('synthetic-cancel-ack-failed.jsonl');
    const r = checkLog(recs);
    expect(r.divergence).toBeNull();
    expect(r.incomplete).toBeNull();
    // the destination's early 'failed' matches the known reordering of the return-path shutdown, which
    // the rewrite applies; the model now has that order itself (the race shuts the stream before the
    // source fails), so the run conforms without any exception too
    expect(r.exceptions.map((e) => e.name)).toEqual(['qemu10-cancel-shuts-return-path-first']);
    expect(checkLog(recs, undefined, { exceptions: [] }).divergence).toBeNull();
    // the model without the race has only the cancelled outcome
    const noRace = checkObservations(observationsOf(recs), { ...configOf(recs), cancelRace: false });
    expect(noRace.divergence?.did).toBe("source reported status 'failed'");
    // without a return path there is no race: the same ending diverges (a cancel there always ends cancelled)
    const plain = checkLog(records('synthetic-cancel-failed-without-return-path.jsonl'));
    expect(configOf(records('synthetic-cancel-failed-without-return-path.jsonl')).ack).toBe('off');
    expect(plain.divergence).not.toBeNull();
  });

  it("qemu10-resume-before-device-events: the destination's 'failed' between the source's RESUME and its device's running-p2p (seen in CI) conforms, and diverges without the rewrite", () => {
    // synthetic: the recorded vfio-cancel-in-pre-switchover-ack run with the destination's 'failed' moved where CI saw it
    const recs = records('synthetic-failed-between-resume-and-device-events.jsonl');
    const r = checkLog(recs);
    expect(r.divergence).toBeNull();
    expect(r.exceptions.map((e) => e.name)).toContain('qemu10-resume-before-device-events');
    const without = checkLog(recs, undefined, { exceptions: KNOWN_DISAGREEMENTS.filter((e) => e.name !== 'qemu10-resume-before-device-events') });
    expect(without.divergence?.did).toBe("destination reported status 'failed'");
    // the rewrite moves only the other side's reports, and only past the device events right after a RESUME
    const obs = observationsOf(recs);
    const ex = KNOWN_DISAGREEMENTS.find((e) => e.name === 'qemu10-resume-before-device-events')!;
    const fromResume = (list: readonly Observation[]) => {
      const at = list.map((o) => o.kind === 'running' && o.running && o.side === 'source').lastIndexOf(true);
      return list.slice(at, at + 4).map((o) => `${o.side} ${o.kind}`);
    };
    expect(fromResume(applyToLog(ex, obs).obs)).toEqual(['source running', 'source device', 'source device', 'destination status']);
    expect(fromResume(obs)).toEqual([
      'source running',
      'destination status',
      'source device',
      'source device',
    ]);
  });

  it('scenarios that cancel with a return path drive the plain migrate_cancel and wait for either outcome (cancelled/failed or failed/failed)', () => {
    const one = SCENARIOS.find((s) => s.name === 'cancel-in-active-with-ack')!;
    const p = plan(one.config, one.waypoints);
    expect(p.final).toEqual({ source: 'cancelled', destination: 'failed' }); // the planned path takes the plain cancel
    expect(p.finalWait).toEqual({ source: ['cancelled', 'failed'], destination: 'failed' });
    // a retry after such a cancel: the new process and the new migrate wait for either source outcome
    const retry = SCENARIOS.find((s) => s.name === 'retry-after-cancel-with-ack')!;
    const acts = plan(retry.config, retry.waypoints).actions;
    expect(acts.find((a) => a.event === 'NEW_PROCESS')!.waitFor).toEqual({ source: ['cancelled', 'failed'], destination: 'failed' });
    expect(acts.filter((a) => a.event === 'MIGRATE')[1]!.waitFor).toEqual({ source: ['cancelled', 'failed'], destination: 'setup' });
  });

  it('the monitor (migrate_cancel unseen) accepts the race: the same failed/failed ending without the command conforms', () => {
    const recs = records('synthetic-cancel-ack-failed.jsonl').filter((x) => !('execute' in x));
    const config = configOf(records('synthetic-cancel-ack-failed.jsonl'));
    const r = checkObservations(observationsOf(recs), config, { unseen: ['MIGRATE', 'MIGRATE_INCOMING', 'MIGRATE_CANCEL', 'MIGRATE_CONTINUE', 'STREAM_BREAKS'], exceptions: UNSEEN_COMMAND_DISAGREEMENTS });
    expect(r.divergence).toBeNull();
    expect(r.incomplete).toBeNull();
  });

  it('qemu10-cancel-without-migration-is-a-no-op: migrate_cancel accepted after the migration ended', () => {
    const recs = [...records('precopy.jsonl'), cmd('source', 'migrate_cancel')(1_900_000_000_000_000)];
    expect(strict(recs).divergence?.did).toBe('source accepted migrate_cancel (MIGRATE_CANCEL)');
    expect(checkLog(recs).divergence).toBeNull();
  });

  it('no exception rescues a real divergence', () => {
    // the destination fails with no cancel at all
    const recs = run(...upToPreSwitchover(ACK_PAUSE), status('destination', 'failed'));
    expect(checkLog(recs).divergence?.did).toBe("destination reported status 'failed'");
  });

  it('each disagreement says what QEMU does and what should change', () => {
    for (const k of KNOWN_DISAGREEMENTS) {
      expect(k.name).toMatch(/^qemu10-/);
      expect(k.qemu.length).toBeGreaterThan(40);
      expect(k.change.length).toBeGreaterThan(20);
    }
  });
});

describe('the incremental checker (what checkLog and the live monitor share)', () => {
  const FIXTURES = ['precopy.jsonl', 'precopy-broken.jsonl', 'switchover-ack.jsonl', 'retry-after-cancel-ack.jsonl', 'management-stop-broken.jsonl', 'destination-paused-cont.jsonl'];

  it('fed one observation at a time it ends where checkLog does, and a divergence once reported never changes', () => {
    for (const name of FIXTURES) {
      const { records: recs, lines } = parseLog(fixture(name));
      const c = new Checker(configOf(recs, lines));
      let first: unknown = null;
      for (const o of observationsOf(recs, lines)) {
        c.push(o);
        const d = c.verdict().divergence;
        if (first === null && d !== null) first = d;
        if (first !== null) expect(c.verdict().divergence, name).toBe(first);
      }
      expect(c.end(), name).toEqual(checkLog(recs, lines));
    }
  });

  it('holds back what a documented disagreement may still move: a source STOP waits for the source\'s next report', () => {
    const base = upToPreSwitchover(['pause-before-switchover']);
    const recs = run(...base.slice(0, 6), status('source', 'active'), ev('source', 'STOP'), status('destination', 'active'), status('source', 'pre-switchover'));
    const obs = observationsOf(recs);
    // (qemu10-header-sent-before-save-setup would hold the source's setup until its next status: left out here)
    const c = new Checker(configOf(recs), { exceptions: [RUNSTATE_AND_STATUS_APART] });
    const push = (i: number) => c.push(obs[i]!).map((x) => x.observation.text);
    for (let i = 0; i < 7; i++) expect(push(i)).toHaveLength(1);
    expect(push(7)).toEqual([]); // the STOP: held
    expect(c.held).toBe(1);
    expect(push(8)).toEqual([]); // the destination's active: held behind it
    expect(c.held).toBe(2);
    expect(push(9)).toEqual(["destination reported status 'active'", 'source stopped its guest (STOP)', "source reported status 'pre-switchover'"]);
    expect(c.held).toBe(0);
    expect(c.end().exceptions.map((e) => e.name)).toEqual(['qemu10-runstate-and-status-apart']);
  });

  it('qemu10-cancel-shuts-return-path-first without the command: recognised by the source\'s cancelling (the monitor\'s form)', () => {
    const unseen = ['MIGRATE', 'MIGRATE_INCOMING', 'MIGRATE_CANCEL', 'MIGRATE_CONTINUE', 'STREAM_BREAKS'] as const;
    const seen = (recs: LogRecord[]) => recs.filter((r) => !('execute' in r));
    const config = configOf(run(...upToPreSwitchover(ACK_PAUSE)));
    const cancelled = seen(run(...upToPreSwitchover(ACK_PAUSE), cmd('source', 'migrate_cancel'), status('destination', 'failed'), status('source', 'cancelling'), ev('source', 'RESUME'), status('source', 'cancelled')));
    expect(checkObservations(observationsOf(cancelled), config, { unseen }).divergence?.did).toBe("destination reported status 'failed'");
    const r = checkObservations(observationsOf(cancelled), config, { unseen, exceptions: UNSEEN_COMMAND_DISAGREEMENTS });
    expect(r.divergence).toBeNull();
    expect(r.incomplete).toBeNull();
    expect(r.exceptions.map((e) => e.name)).toEqual(['qemu10-cancel-shuts-return-path-first-unseen']);
    // a destination that fails on its own makes the source fail, not cancel: no rewrite, and the order stands
    const broken = seen(run(...upToPreSwitchover(ACK_PAUSE), status('destination', 'failed'), status('source', 'failed')));
    const b = checkObservations(observationsOf(broken), config, { unseen, exceptions: UNSEEN_COMMAND_DISAGREEMENTS });
    expect(b.exceptions).toEqual([]);
  });

  it('what a documented disagreement has passed on is final: the observations checked after a prefix start every longer run', () => {
    const sides = ['source', 'destination'] as const;
    const obs = fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant('status' as const), side: fc.constantFrom(...sides), status: fc.constantFrom('setup', 'active', 'device', 'pre-switchover', 'completed', 'failed', 'cancelling', 'cancelled') }),
        fc.record({ kind: fc.constant('running' as const), side: fc.constantFrom(...sides), running: fc.boolean() }),
        fc.record({ kind: fc.constant('action' as const), side: fc.constantFrom(...sides), event: fc.constantFrom('MIGRATE_CANCEL' as const, 'MIGRATE' as const), refused: fc.constantFrom(null, 'GenericError: no') }),
      ),
      { maxLength: 12 },
    );
    fc.assert(
      fc.property(obs, fc.nat(12), (raw, cut) => {
        const all = raw.map((o, i) => ({ ...o, index: i, line: i + 1, text: `${i}` }) as Observation);
        for (const ex of [...KNOWN_DISAGREEMENTS, ...UNSEEN_COMMAND_DISAGREEMENTS]) {
          const r = ex.start();
          const passed = all.slice(0, cut).flatMap((o) => r.push(o)).map((o) => o.line);
          const whole = applyToLog(ex, all).obs.map((o) => o.line);
          expect(whole.slice(0, passed.length), ex.name).toEqual(passed);
          expect(passed.length + r.held, ex.name).toBeGreaterThanOrEqual(Math.min(cut, all.length) - r.applied.length);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('commands it cannot see are taken as internal steps (unseen), under the same reporting rule', () => {
    // what a second QMP client sees of precopy.jsonl: the events and query replies, no commands
    const recs = records('precopy.jsonl').filter((r) => !('execute' in r) || r.execute.startsWith('query-'));
    const config = { ack: 'off', pauseBeforeSwitchover: false } as const;
    expect(checkObservations(observationsOf(recs), config).divergence?.did).toBe("destination reported status 'setup'");
    const unseen = ['MIGRATE', 'MIGRATE_INCOMING', 'MIGRATE_CANCEL', 'MIGRATE_CONTINUE', 'STREAM_BREAKS'] as const;
    const r = checkObservations(observationsOf(recs), config, { unseen });
    expect(r.divergence).toBeNull();
    expect(r.incomplete).toBeNull();
    // still one step at a time: without the source's 'active' its guest stops while it is in 'setup'
    const skipped = recs.filter((x) => !('event' in x && x.event === 'MIGRATION' && x.side === 'source' && x.data['status'] === 'active'));
    const d = checkObservations(observationsOf(skipped), config, { unseen }).divergence;
    expect(d?.did).toBe('source stopped its guest (STOP)');
    // (an unseen migrate_cancel or stream break could have come instead)
    expect(d?.allowed).toEqual(["source status → 'active'", "source status → 'cancelling'", "source status → 'failed'"]);
  });
});

describe('scenarios are generated from the model', () => {
  it('every scenario plans, and has at least 10 of them', () => {
    expect(SCENARIOS.length).toBeGreaterThanOrEqual(10);
    for (const s of SCENARIOS) expect(plan(s.config, s.waypoints, s.plan).actions.length, s.name).toBeGreaterThan(0);
  });

  it('projects a path to its controllable actions, each with where the model takes it', () => {
    const project = (name: string) => {
      const s = SCENARIOS.find((x) => x.name === name)!;
      return plan(s.config, s.waypoints, s.plan).actions.map((a) => `${a.event}@${a.before.source}`);
    };
    expect(project('precopy-completes')).toEqual(['MIGRATE_INCOMING@none', 'MIGRATE@none']);
    expect(project('pause-then-continue')).toEqual(['MIGRATE_INCOMING@none', 'MIGRATE@none', 'MIGRATE_CONTINUE@pre-switchover']);
    expect(project('cancel-in-setup')).toEqual(['MIGRATE_INCOMING@none', 'MIGRATE@none', 'MIGRATE_CANCEL@setup']);
    expect(project('unreachable-destination')).toEqual(['MIGRATE@none', 'STREAM_BREAKS@setup']);
    expect(project('destination-killed-in-pre-switchover')).toEqual([
      'MIGRATE_INCOMING@none',
      'MIGRATE@none',
      'STREAM_BREAKS@pre-switchover',
      'MIGRATE_CONTINUE@pre-switchover',
    ]);
    expect(project('migrate-continue-wrong-state')).toEqual(['MIGRATE_INCOMING@none', 'MIGRATE@none', 'MIGRATE_CONTINUE@pre-switchover', 'MIGRATE_CONTINUE@pre-switchover']);
    const wrong = SCENARIOS.find((x) => x.name === 'migrate-continue-wrong-state')!;
    expect(plan(wrong.config, wrong.waypoints).actions.map((a) => a.continueState ?? null)).toEqual([null, null, 'active', null]);
  });

  it('a migrate waits for a listening destination; a probe must be a step the model refuses', () => {
    const s = SCENARIOS.find((x) => x.name === 'precopy-completes')!;
    expect(plan(s.config, s.waypoints).actions[1]!.waitFor).toEqual({ source: 'none', destination: 'setup' });
    expect(() => plan(s.config, [{ kind: 'probe', name: 'at start', events: ['MIGRATE'] }])).toThrow(PlanError);
    expect(() => plan(s.config, [{ kind: 'state', name: 'pre-switchover', holds: (m) => m.source === 'pre-switchover' }])).toThrow(/unreachable/);
    const paused = SCENARIOS.find((x) => x.name === 'pause-then-continue')!;
    const at = paused.waypoints[0]!;
    expect(() => plan(paused.config, [at, { kind: 'probe', name: 'right state', events: ['MIGRATE_CONTINUE'], continueState: 'pre-switchover' }])).toThrow(/only a wrong state is refused/);
  });
});

describe('migration-statecharts conform', () => {
  it('exit 0 for a conforming run, with the model configuration', () => {
    const r = cli(join(FIX, 'pause-continue.jsonl'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/switchover-ack off, pause-before-switchover on/);
    expect(r.out).toMatch(/conforms: \d+ observations checked, 3 actions/);
    expect(r.err).toBe('');
  });

  it('exit 1 for a divergent run: the step, what QEMU did, what the model allowed', () => {
    const r = cli(join(FIX, 'precopy-broken.jsonl'));
    expect(r.code).toBe(1);
    expect(r.out).toContain("DIVERGES at step 10 (line 11): source reported status 'pre-switchover'");
    expect(r.out).toContain("the model allowed: source status → 'device'");
    const j = JSON.parse(cli(join(FIX, 'precopy-broken.jsonl'), '--json').out);
    expect(j).toMatchObject({ conforms: false, divergence: { step: 10, line: 11 } });
  });

  it('--strict checks without the documented disagreements', () => {
    const recs = [...records('precopy.jsonl'), cmd('source', 'migrate_cancel')(1_900_000_000_000_000)];
    const f = fileWith('noop-cancel.jsonl', recs.map((r) => JSON.stringify(r)).join('\n'));
    expect(cli(f).code).toBe(0);
    expect(cli(f).out).toMatch(/known disagreement qemu10-cancel-without-migration-is-a-no-op applied at line 21/);
    expect(cli(f, '--strict').code).toBe(1);
  });

  it('exit 2 with one line for bad arguments and malformed files', () => {
    const cases: [string[], RegExp][] = [
      [[], /^migration-statecharts: conform needs a FILE/],
      [['a', 'b'], /^migration-statecharts: conform takes one FILE, got 2$/],
      [[join(scratch, 'nope.jsonl')], /^migration-statecharts: cannot read .*nope\.jsonl: ENOENT$/],
      [['--colour', 'x'], /^migration-statecharts: Unknown option '--colour'/],
      [[fileWith('empty.jsonl', '\n\n')], /: no records$/],
      [[fileWith('notjson.jsonl', `${fixture('precopy.jsonl').split('\n')[0]}\n{oops\n`)], /notjson\.jsonl: line 2: not JSON/],
      [[fileWith('side.jsonl', '{"side":"left","event":"STOP","timestamp":{"seconds":1,"microseconds":0}}\n')], /side\.jsonl: line 1: "side" must be "source" or "destination", got "left"$/],
      [[fileWith('two.jsonl', '\n{"side":"source","event":"STOP","trace":"x","timestamp":{"seconds":1,"microseconds":0}}\n')], /two\.jsonl: line 2: a record has exactly one of .*, got event and trace$/],
      [[fileWith('status.jsonl', '{"side":"source","event":"MIGRATION","data":{},"timestamp":{"seconds":1,"microseconds":0}}\n')], /line 1: a MIGRATION event needs "data": \{"status": string\}$/],
      [[fileWith('ts.jsonl', '{"side":"source","event":"STOP"}\n')], /line 1: "timestamp" must be/],
      [[fileWith('rp.jsonl', '{"side":"source","execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"return-path","state":true}]},"return":{},"timestamp":{"seconds":1,"microseconds":0}}\n')], /line 1: the source sets return-path on and switchover-ack off/],
      [[fileWith('fault.jsonl', '{"side":"destination","fault":"kill-destination","action":"STREAM_BREAKS","timestamp":{"seconds":1,"microseconds":0}}\n')], /line 1: a fault breaks the source's stream/],
    ];
    for (const [argv, re] of cases) {
      const r = cli(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err.split('\n'), argv.join(' ')).toHaveLength(1);
      expect(r.err, argv.join(' ')).toMatch(re);
    }
  });

  it('--help documents the line format', () => {
    expect(cli('--help')).toEqual({ code: 0, out: CONFORM_HELP, err: '' });
    expect(CONFORM_HELP).toMatch(/"side": "source" or "destination"/);
    expect(CONFORM_HELP).toMatch(/Exit 0: the run conforms; 1: it diverges .*\n.*2: bad arguments or a malformed file; 4: incomplete/);
  });
});

describe('log format', () => {
  it('LogFormatError names the line', () => {
    expect(() => parseLog('\n\n[1]\n')).toThrow(new LogFormatError(3, 'not a JSON object'));
  });

  it('process records: malformed ones are one-line errors', () => {
    const t = '"timestamp":{"seconds":1,"microseconds":0}';
    const bad: [string, string][] = [
      [`{"side":"destination","process":"stop","incarnation":1,"autostart":true,${t}}`, 'a process record needs "process": "start", got "stop"'],
      [`{"side":"destination","process":"start","incarnation":-1,"autostart":true,${t}}`, 'a process record needs "incarnation": a non-negative integer, got -1'],
      [`{"side":"destination","process":"start","incarnation":1,${t}}`, 'a process record needs "autostart": true or false, got undefined'],
      [`{"side":"source","process":"start","incarnation":1,"autostart":true,${t}}`, 'only the destination gets new processes: a source process record has "incarnation": 0'],
      [`{"side":"destination","process":"start","fault":"kill-destination","incarnation":1,"autostart":true,${t}}`, 'a record has exactly one of "event", "execute", "fault", "trace", "process", got fault and process'],
    ];
    for (const [line, problem] of bad) expect(() => parseLog(line)).toThrow(new LogFormatError(1, problem));
  });

  it('process records: incarnations out of order, and a new process with another configuration, are one-line errors', () => {
    const lines = fixture('retry-after-cancel.jsonl').trimEnd().split('\n');
    const p = lines.findIndex((l) => l.includes('"incarnation":1'));
    const skip = lines.map((l, i) => (i === p ? l.replace('"incarnation":1', '"incarnation":2') : l)).join('\n');
    expect(() => checkLog(parseLog(skip).records, parseLog(skip).lines)).toThrow(
      new LogFormatError(p + 1, "the destination's process incarnation 2 is out of order: 0 comes before any other destination line, then each new process is one more (expected 1)"),
    );
    const minusS = lines.map((l, i) => (i === p ? l.replace('"autostart":true', '"autostart":false') : l)).join('\n');
    expect(() => configOf(parseLog(minusS).records, parseLog(minusS).lines)).toThrow(
      new LogFormatError(p + 1, "the new destination process runs with autostart off (-S), the first with it on; the model's NEW_PROCESS keeps the configuration"),
    );
    const c = lines.findIndex((l, i) => i > p && l.includes('migrate-set-capabilities'));
    const m = lines.findIndex((l, i) => i > p && l.includes('"execute":"migrate-incoming"'));
    const ack = lines.map((l, i) => (i === c ? l.replace('{"capability":"switchover-ack","state":false}', '{"capability":"switchover-ack","state":true}').replace('{"capability":"return-path","state":false}', '{"capability":"return-path","state":true}') : l)).join('\n');
    expect(() => configOf(parseLog(ack).records, parseLog(ack).lines)).toThrow(
      new LogFormatError(m + 1, "the new destination process starts its migration with return-path on, the first had it off; the model's NEW_PROCESS keeps the configuration"),
    );
  });

  it('reads QEMU -trace lines with -msg timestamp=on, keeping only the wanted events', () => {
    const text = '4242@1795317176.430457:source_return_path_thread_switchover_acked \n4242@1795317176.430636:migrate_set_state new state active\n';
    expect(parseTraceLog(text, 'source', new Set(['source_return_path_thread_switchover_acked']))).toEqual([
      { side: 'source', trace: 'source_return_path_thread_switchover_acked', args: '', timestamp: { seconds: 1795317176, microseconds: 430457 } },
    ]);
  });
});

/** A fake QMP server: greeting, qmp_capabilities, scripted replies and events. */
function fakeQmp(path: string, onCommand: (cmd: string, id: unknown, send: (o: unknown) => void, sock: Socket) => void): Promise<Server> {
  return new Promise((resolve) => {
    const srv = createServer((sock) => {
      const send = (o: unknown) => sock.write(JSON.stringify(o) + '\r\n');
      send({ QMP: { version: { qemu: { major: 10, minor: 0, micro: 2 }, package: 'fake' }, capabilities: [] } });
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; id: unknown };
          buf = buf.slice(nl + 1);
          if (msg.execute === 'qmp_capabilities') send({ return: {}, id: msg.id });
          else onCommand(msg.execute, msg.id, send, sock);
        }
      });
      sock.on('error', () => undefined);
    });
    srv.listen(path, () => resolve(srv));
  });
}

describe('QMP client', () => {
  it('handshake, results, typed errors, events with a predicate, close', async () => {
    const path = join(scratch, 'a.qmp');
    const srv = await fakeQmp(path, (cmd, id, send) => {
      if (cmd === 'query-status') send({ return: { status: 'running', running: true }, id });
      else if (cmd === 'migrate') {
        send({ event: 'MIGRATION', data: { status: 'setup' }, timestamp: { seconds: 1, microseconds: 5 } });
        send({ return: {}, id });
        setTimeout(() => send({ event: 'MIGRATION', data: { status: 'active' }, timestamp: { seconds: 1, microseconds: 9 } }), 20);
      } else if (cmd === 'slow') {
        /* never answers */
      } else send({ error: { class: 'CommandNotFound', desc: `The command ${cmd} has not been found` }, id });
    });
    const qmp = await QmpClient.connect(path, { timeoutMs: 2000 });
    expect(qmp.greeting?.version.qemu.major).toBe(10);
    expect(await qmp.execute('query-status')).toEqual({ status: 'running', running: true });
    const err = await qmp.execute('frob').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect(err).toMatchObject({ command: 'frob', errorClass: 'CommandNotFound' });
    const since = qmp.events.length;
    await qmp.execute('migrate', { uri: 'tcp:127.0.0.1:1' });
    const active = await qmp.waitForEvent((e) => e.event === 'MIGRATION' && e.data['status'] === 'active', { timeoutMs: 2000, since });
    expect(active.timestamp).toEqual({ seconds: 1, microseconds: 9 });
    expect(qmp.events.map((e) => e.data['status'])).toEqual(['setup', 'active']);
    await expect(qmp.waitForEvent((e) => e.event === 'SHUTDOWN', { timeoutMs: 50 })).rejects.toBeInstanceOf(QmpTimeoutError);
    await expect(qmp.execute('slow', undefined, { timeoutMs: 50 })).rejects.toBeInstanceOf(QmpTimeoutError);
    const pending = qmp.execute('slow', undefined, { timeoutMs: 5000 });
    const waiting = qmp.waitForEvent(() => false, { timeoutMs: 5000 });
    await qmp.close();
    await expect(pending).rejects.toBeInstanceOf(QmpClosedError);
    await expect(waiting).rejects.toBeInstanceOf(QmpClosedError);
    await expect(qmp.execute('query-status')).rejects.toBeInstanceOf(QmpClosedError);
    srv.close();
  });

  it('reports the server going away, and bounds the connect', async () => {
    const path = join(scratch, 'b.qmp');
    const srv = await fakeQmp(path, (_cmd, _id, _send, sock) => sock.destroy());
    const qmp = await QmpClient.connect(path, { timeoutMs: 2000 });
    await expect(qmp.execute('query-status')).rejects.toBeInstanceOf(QmpClosedError);
    expect(qmp.closed).toBe(true);
    srv.close();
    const t0 = Date.now();
    await expect(QmpClient.connect(join(scratch, 'missing.qmp'), { timeoutMs: 200 })).rejects.toBeInstanceOf(QmpTimeoutError);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('waits for a socket that appears late (QEMU still starting)', async () => {
    const path = join(scratch, 'c.qmp');
    let srv: Server | undefined;
    setTimeout(() => void fakeQmp(path, () => undefined).then((s) => (srv = s)), 150);
    const qmp = await QmpClient.connect(path, { timeoutMs: 3000 });
    expect(qmp.greeting).not.toBeNull();
    qmp.destroy();
    srv?.close();
  });
});
