/**
 * Model-based tests on real QEMU (issue #7): every scenario of src/qemu/scenarios.ts — its actions
 * generated from a model path to its targets — runs on two fresh QEMU processes (TCG, 64 MiB, no disk),
 * sequentially, and the recorded run must conform to the model: a divergence fails the test with the
 * step, what QEMU did and what the model allowed. Without qemu-system-x86_64 the suite is left out, with
 * a message saying so (test/conform.test.ts still checks recorded real runs).
 *
 * QEMU_RECORD_FIXTURES=1 re-records the real logs under test/fixtures/qemu/ from these runs.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HarnessError, QEMU_BINARY, startPair } from '../src/qemu/harness.js';
import { formatLog, isCommand } from '../src/qemu/log.js';
import { commandWorks, liveProcesses } from '../src/qemu/processes.js';
import { SCENARIOS, type ScenarioRun, formatRun, runScenario } from '../src/qemu/scenarios.js';

const qemu = commandWorks(QEMU_BINARY);
if (!qemu.ok) {
  console.warn(
    `test/qemu.test.ts: the real-QEMU conformance suite was LEFT OUT because ${QEMU_BINARY} is missing or does not run` +
      `${qemu.output ? ` (${qemu.output.split('\n')[0]})` : ''}; install QEMU to run it. test/conform.test.ts still checks the recorded real runs.`,
  );
}

const FIXTURES: Readonly<Record<string, string>> = {
  'multifd-completes': 'multifd.jsonl',
  'multifd-switchover-ack-completes': 'multifd-ack.jsonl',
  'multifd-cancel-in-active': 'multifd-cancel.jsonl',
  'precopy-completes': 'precopy.jsonl',
  'pause-then-continue': 'pause-continue.jsonl',
  'switchover-ack-completes': 'switchover-ack.jsonl',
  'migrate-continue-wrong-state': 'migrate-continue-wrong-state.jsonl',
  'return-path-destination-only': 'return-path-destination-only.jsonl',
  'destination-paused-then-cont': 'destination-paused-cont.jsonl',
  'management-stop-in-active': 'management-stop.jsonl',
  'management-stop-cont-in-active': 'management-stop-cont.jsonl',
  'retry-after-destination-killed': 'retry-after-kill.jsonl',
  'retry-after-cancel': 'retry-after-cancel.jsonl',
  'retry-after-cancel-with-ack': 'retry-after-cancel-ack.jsonl',
  'destination-paused-then-cont-with-ack': 'destination-paused-cont-ack.jsonl',
};
const scratchDirs = () => readdirSync(tmpdir()).filter((d) => d.startsWith('qemu-conform-'));

describe.skipIf(!qemu.ok)(`real QEMU: ${qemu.output.split('\n')[0]}`, () => {
  const runs: ScenarioRun[] = [];
  const dirsBefore = new Set(scratchDirs());

  for (const s of SCENARIOS) {
    it(`${s.name}: ${s.description}`, async () => {
      const r = await runScenario(s);
      runs.push(r);
      const fixture = FIXTURES[s.name];
      if (process.env['QEMU_RECORD_FIXTURES'] && fixture && !r.error && !r.result.divergence && !r.result.incomplete) {
        writeFileSync(join('test', 'fixtures', 'qemu', fixture), formatLog(r.records));
      }
      if (r.error || r.result.divergence || r.result.incomplete) expect.fail(formatRun(r));
      expect(r.result.steps).toBeGreaterThan(0);
    }, 60_000);
  }

  it('the TCG guest migrates in about a second', () => {
    const r = runs.find((x) => x.scenario.name === 'precopy-completes');
    expect(r, 'precopy-completes ran').toBeDefined();
    const q = r!.records.find((x) => isCommand(x) && x.side === 'source' && x.execute === 'query-migrate');
    const ret = q && isCommand(q) ? (q.return as { status?: string; 'total-time'?: number }) : {};
    expect(ret.status).toBe('completed');
    expect(ret['total-time']).toBeLessThan(2000); // milliseconds, as QEMU reports it
    expect(r!.seconds).toBeLessThan(10); // both QEMUs started, migrated, stopped
  });

  it('leaves no QEMU process and no scratch directory behind, also when a run fails', async () => {
    const pair = await startPair();
    await expect(pair.waitForStatus('source', 'active', 200)).rejects.toBeInstanceOf(HarnessError);
    const dir = pair.dir;
    await pair.close();
    expect(existsSync(dir)).toBe(false);
    await expect(startPair({ binary: '/bin/false' })).rejects.toThrow(/exited|QMP/);
    expect(liveProcesses()).toBe(0);
    expect(scratchDirs().filter((d) => !dirsBefore.has(d))).toEqual([]);
  }, 60_000);

  afterAll(() => {
    if (runs.length === 0) return;
    const steps = runs.reduce((a, r) => a + r.result.steps, 0);
    const seconds = runs.reduce((a, r) => a + r.seconds, 0);
    console.log(`real QEMU: ${runs.length} scenarios, ${steps} observations checked against the model, ${seconds.toFixed(1)} s`);
  });
});
