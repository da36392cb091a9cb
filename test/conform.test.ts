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
import { afterAll, describe, expect, it } from 'vitest';
import { CONFORM_HELP } from '../src/cli/conform.js';
import { main } from '../src/cli.js';
import { checkLog } from '../src/qemu/conform.js';
import { KNOWN_DISAGREEMENTS } from '../src/qemu/exceptions.js';
import { type LogRecord, type Side, LogFormatError, parseLog, parseTraceLog } from '../src/qemu/log.js';
import { configOf } from '../src/qemu/observations.js';
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
  for (const name of ['precopy.jsonl', 'pause-continue.jsonl', 'switchover-ack.jsonl']) {
    it(`${name} conforms, with no documented disagreement needed`, () => {
      const r = checkLog(records(name), undefined, { exceptions: [] });
      expect(r.divergence).toBeNull();
      expect(r.steps).toBeGreaterThan(10);
      expect(r.actions).toBeGreaterThanOrEqual(2);
    });
  }

  it('reads the configuration from the capabilities', () => {
    expect(configOf(records('precopy.jsonl'))).toEqual({ ack: 'off', pauseBeforeSwitchover: false });
    expect(configOf(records('pause-continue.jsonl'))).toEqual({ ack: 'off', pauseBeforeSwitchover: true });
    expect(configOf(records('switchover-ack.jsonl'))).toEqual({ ack: 'legacy', pauseBeforeSwitchover: false });
  });

  it('the broken log (the source reports pre-switchover without pause-before-switchover) is rejected at that step', () => {
    const { records: recs, lines } = parseLog(fixture('precopy-broken.jsonl'));
    const d = checkLog(recs, lines).divergence!;
    expect(d).not.toBeNull();
    expect(d.line).toBe(11);
    expect(d.step).toBe(8); // migrate-incoming, setup, migrate, setup, active, active, STOP, pre-switchover
    expect(d.did).toBe("source reported status 'pre-switchover'");
    expect(d.allowed).toEqual(["source status → 'device'"]);
  });
});

describe('the check bites', () => {
  const precopy = () => records('precopy.jsonl');
  const without = (recs: LogRecord[], pred: (r: LogRecord) => boolean) => recs.filter((r) => !pred(r));
  const isStatus = (r: LogRecord, side: Side, s: string) => 'event' in r && r.side === side && r.data['status'] === s;

  it('a status QEMU skipped: no destination setup (the migrate after it is where the run has no model run)', () => {
    const d = checkLog(without(precopy(), (r) => isStatus(r, 'destination', 'setup'))).divergence!;
    expect(d.did).toBe('source accepted migrate (MIGRATE)');
    expect(d.allowed).toEqual(["MIGRATE only once this was reported: destination status → 'setup'"]);
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
    const d = checkLog([...recs.slice(0, i + 1), cmd('source', 'migrate-continue')(0), ...recs.slice(i + 1)]).divergence!;
    expect(d.did).toBe('source accepted migrate-continue (MIGRATE_CONTINUE)');
    expect(d.allowed).toEqual(['the model never takes MIGRATE_CONTINUE in this configuration (switchover-ack off, pause-before-switchover off)']);
    const paused = records('pause-continue.jsonl');
    const j = paused.findIndex((r) => isStatus(r, 'source', 'active'));
    const e = checkLog([...paused.slice(0, j + 1), cmd('source', 'migrate-continue')(0), ...paused.slice(j + 1)]).divergence!;
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

describe('documented disagreements: needed exactly where QEMU 10.0 shows them', () => {
  const strict = (recs: LogRecord[]) => checkLog(recs, undefined, { exceptions: [] });

  it('RESUME while cancelling, the destination fails, then cancelled: the model agrees now, no exception needed', () => {
    const recs = run(...upToPreSwitchover(ACK_PAUSE), cmd('source', 'migrate_cancel'), status('source', 'cancelling'), ev('source', 'RESUME'), status('destination', 'failed'), status('source', 'cancelled'));
    expect(strict(recs).divergence).toBeNull();
    const r = checkLog(recs);
    expect(r.divergence).toBeNull();
    expect(r.exceptions).toEqual([]);
  });

  it('qemu10-runstate-and-status-apart: STOP, the destination becomes active, then pre-switchover', () => {
    const base = upToPreSwitchover(['pause-before-switchover']);
    const recs = run(...base.slice(0, 6), status('source', 'active'), ev('source', 'STOP'), status('destination', 'active'), status('source', 'pre-switchover'));
    expect(strict(recs).divergence?.did).toBe("destination reported status 'active'");
    expect(checkLog(recs).divergence).toBeNull();
  });

  it('qemu10-cancel-shuts-return-path-first: the destination fails before the source says cancelling', () => {
    const recs = run(...upToPreSwitchover(ACK_PAUSE), cmd('source', 'migrate_cancel'), status('destination', 'failed'), status('source', 'cancelling'), ev('source', 'RESUME'), status('source', 'cancelled'));
    expect(strict(recs).divergence?.did).toBe("destination reported status 'failed'");
    const r = checkLog(recs);
    expect(r.divergence).toBeNull();
    expect(r.exceptions.map((e) => e.name)).toEqual(['qemu10-cancel-shuts-return-path-first']);
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
  });

  it('a migrate waits for a listening destination; a probe must be a step the model refuses', () => {
    const s = SCENARIOS.find((x) => x.name === 'precopy-completes')!;
    expect(plan(s.config, s.waypoints).actions[1]!.waitFor).toEqual({ source: 'none', destination: 'setup' });
    expect(() => plan(s.config, [{ kind: 'probe', name: 'at start', events: ['MIGRATE'] }])).toThrow(PlanError);
    expect(() => plan(s.config, [{ kind: 'state', name: 'pre-switchover', holds: (m) => m.source === 'pre-switchover' }])).toThrow(/unreachable/);
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
    expect(r.out).toContain("DIVERGES at step 8 (line 11): source reported status 'pre-switchover'");
    expect(r.out).toContain("the model allowed: source status → 'device'");
    const j = JSON.parse(cli(join(FIX, 'precopy-broken.jsonl'), '--json').out);
    expect(j).toMatchObject({ conforms: false, divergence: { step: 8, line: 11 } });
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
  });
});

describe('log format', () => {
  it('LogFormatError names the line', () => {
    expect(() => parseLog('\n\n[1]\n')).toThrow(new LogFormatError(3, 'not a JSON object'));
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
