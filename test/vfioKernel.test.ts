/**
 * The device suites on the real Linux VFIO migration uAPI (`npm run test:vfio`): every criterion —
 * states, transitions, pairs, every command in every state, a target for every state the driver can
 * reach, seeded random walks of 10,000 steps — generated from the model under the mtty profile, run in
 * ONE boot of the VM (scripts/vfio-vm.sh; samples/vfio-mdev/mtty.c on a Debian 6.12 kernel), and every
 * observation compared with the model's prediction. A model broken through `provide()` is run in the
 * same boot and must be caught, naming the step and the field.
 *
 * Without the VM this file fails in CI (one line naming what is missing) and is skipped elsewhere.
 */
import { assign } from 'xstate';
import { beforeAll, describe, expect, it } from 'vitest';
import { type VfioDeviceContext, vfioDeviceMachine } from '../machines/vfioDevice.js';
import type { SystemSpec } from '../src/explorer/system.js';
import { type RecordedBatch, recordOnKernel } from '../src/kernel/adapter.js';
import { vmArtifacts, vmUnavailable } from '../src/kernel/vm.js';
import { type RunReport, type TestSuite, ModelGraph, devicePreset, deviceSystem, generateSuite, runSuite } from '../src/testgen/index.js';

const unavailable = (() => {
  const q = vmUnavailable();
  if (q) return q;
  try {
    vmArtifacts();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
})();
if (unavailable && process.env['CI']) throw new Error(`the real-kernel suite cannot run: ${unavailable}`);
if (unavailable) console.warn(`test/vfioKernel.test.ts skipped outside CI: ${unavailable}`);

const PRESET = devicePreset({ profile: 'mtty' });
/** The states mtty can be in (it never fails into ERROR). */
const TARGETS = ['STOP', 'RUNNING', 'STOP_COPY', 'RESUMING', 'RUNNING_P2P', 'PRE_COPY', 'PRE_COPY_P2P'];

/** An orchestrator-style provide() of a broken action: MIG_DATA_SIZE one byte short. */
function brokenModel(): SystemSpec {
  const broken = vfioDeviceMachine.provide({
    actions: {
      reportDataSize: assign(({ context }: { context: VfioDeviceContext }) => ({
        last: { op: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE' as const, ok: true as const, stopCopyLength: (context.profile.stopCopyLength ?? 0) - 1 },
      })),
    },
  });
  const spec = deviceSystem(PRESET);
  return { ...spec, components: spec.components.map((c) => ({ ...c, machine: broken })) };
}

describe.skipIf(unavailable !== null)('the device suites on the real kernel (mtty)', () => {
  const suites: Record<string, TestSuite> = {};
  let recorded: RecordedBatch;
  let broken: TestSuite;
  const reports: Record<string, RunReport> = {};

  beforeAll(async () => {
    const g = new ModelGraph(deviceSystem(PRESET));
    for (const criterion of ['states', 'transitions', 'pairs', 'commands'] as const) suites[criterion] = generateSuite(g, { criterion, preset: PRESET });
    for (const t of TARGETS) suites[`target ${t}`] = generateSuite(g, { criterion: 'target', target: `dev:${t}`, preset: PRESET });
    suites['random'] = generateSuite(g, { criterion: 'random', seed: 7, walks: 20, length: 500, preset: PRESET });
    broken = generateSuite(brokenModel(), { criterion: 'commands', preset: PRESET });
    const all = [...Object.values(suites), broken];
    recorded = await recordOnKernel(all, { timeoutMs: 170_000 });
    const names = Object.keys(suites);
    for (let i = 0; i < names.length; i++) reports[names[i]!] = await runSuite(recorded.suites[i]!.suite, recorded.suites[i]!.adapter);
    const t = recorded.runs[0]!.timing;
    const steps = all.reduce((n, s) => n + s.stats.steps, 0);
    console.log(
      `real kernel ${recorded.runs[0]!.ready.kernel}: ${all.length} suites, ${steps} steps in one boot; first result after ${t.firstResultMs} ms, ` +
        `${t.totalMs} ms in all, ${Math.round(t.linesPerSecond)} lines/s\n` +
        names.map((n) => `  ${n}: ${reports[n]!.steps} steps, ${reports[n]!.compared} observations compared, ${reports[n]!.failed} failed`).join('\n'),
    );
  }, 240_000);

  for (const criterion of ['states', 'transitions', 'pairs', 'commands', 'random']) {
    it(`${criterion}: every observation on the kernel is the model's prediction`, () => {
      const r = reports[criterion]!;
      const failures = r.cases.filter((c) => c.status !== 'passed').map((c) => `${c.name}: ${c.failure!.message}`);
      expect(failures).toEqual([]);
      expect(r.steps).toBe(suites[criterion]!.stats.steps);
      expect(r.compared).toBeGreaterThan(r.steps * 10); // the state value and 10 of 11 fields (path is not visible)
    });
  }

  it('random walks: at least 10,000 steps', () => {
    expect(suites['random']!.stats.steps).toBeGreaterThanOrEqual(10_000);
  });

  it('targeted to every state mtty can reach: each shortest run ends there on the kernel too', () => {
    for (const t of TARGETS) {
      const r = reports[`target ${t}`]!;
      expect(r.failed + r.errors, t).toBe(0);
      const suite = suites[`target ${t}`]!;
      expect(suite.cases[0]!.steps.at(-1)?.expect['dev'] ?? suite.initial['dev'], t).toBe(t);
    }
  });

  it('the counted-rejected-bytes quirk is predicted, and the commands suite finds it unprompted', () => {
    // a corrupt write that completes the header fails with EFAULT, its bytes still count, and once the
    // image size is reached RESUMING → STOP loads it (mtty_resume_write, mtty_load_state)
    const s = suites['commands']!;
    const hits = s.cases.filter((c) => {
      const efault = c.steps.findIndex((st) => st.event.type === 'DATA_FD_WRITE' && st.observe['dev']!['errno'] === 'EFAULT');
      return efault >= 0 && c.steps.slice(efault + 1).some((st) => st.event.type === 'SET_STATE' && st.event['target'] === 'STOP' && st.observe['dev']!['ok'] === true && (st.observe['dev']!['path'] as string[])[0] === 'RESUMING');
    });
    expect(hits.length).toBeGreaterThan(0);
    expect(reports['commands']!.failed).toBe(0);
  });

  it('a planted wrong prediction (provide() of a broken action) is a divergence naming the step and the field', async () => {
    const rec = recorded.suites.at(-1)!;
    const r = await runSuite(rec.suite, rec.adapter, { stopOnFailure: true });
    expect(r.failed).toBe(1);
    const d = r.cases.at(-1)!.failure!;
    expect(d.action!.event).toEqual({ type: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE' });
    expect(d.fields).toEqual([{ component: 'dev', field: 'stopCopyLength', expected: 95, observed: 96 }]);
    expect(d.message).toMatch(/^step \d+ \(env → dev: VFIO_DEVICE_FEATURE_MIG_DATA_SIZE\): dev\.stopCopyLength: expected 95, observed 96$/);
  });
});
