/**
 * Suites with every expected observation (fixture schema @2): for every feature set × PRECOPY_INFOv2
 * opt-in and both driver profiles, the "every command in every state" suite replays green against the
 * model itself, and red against a planted mutant — the device machine with one action replaced through
 * `provide()`, as an orchestrator would — with the divergence naming the step and the field.
 */
import { assign } from 'xstate';
import { describe, expect, it } from 'vitest';
import { FEATURE_SETS, hasFeature } from '../machines/vfioArcs.js';
import { type VfioDeviceContext, vfioDeviceMachine } from '../machines/vfioDevice.js';
import type { SystemSpec } from '../src/explorer/system.js';
import { type DevicePreset, devicePreset, deviceSystem, generateSuite, modelAdapter, replaySuite, runSuite } from '../src/testgen/index.js';

const CONFIGS: DevicePreset[] = [
  ...FEATURE_SETS.flatMap((features) => (hasFeature(features, 'PRE_COPY') ? [false, true] : [false]).map((precopyInfoV2) => devicePreset({ features, precopyInfoV2 }))),
  devicePreset({ profile: 'mtty' }),
];

/** MIG_DATA_SIZE as the model answers it (machines/vfioDevice.ts, stopCopyLength). */
function dataSize(c: VfioDeviceContext, state: string): number {
  if (c.profile.stopCopyLength !== null) return c.profile.stopCopyLength;
  if (state === 'STOP_COPY') return c.stopCopyBytes;
  if (state === 'PRE_COPY' || state === 'PRE_COPY_P2P') return c.initialBytes + c.dirtyBytes + c.profile.finalBytes;
  return (c.profile.initialBytes ?? c.maxBytes) + c.profile.finalBytes;
}

/** The same system with the device machine's MIG_DATA_SIZE answer off by one unit in RESUMING. */
function withMutant(spec: SystemSpec): SystemSpec {
  const broken = vfioDeviceMachine.provide({
    actions: {
      reportDataSize: assign(({ context }: { context: VfioDeviceContext }, params: { state: string }) => ({
        last: { op: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE' as const, ok: true as const, stopCopyLength: params.state === 'RESUMING' ? 7 : dataSize(context, params.state) },
      })),
    },
  });
  return { ...spec, components: spec.components.map((c) => ({ ...c, machine: broken })) };
}

describe('every command in every state, with every observation', () => {
  for (const p of CONFIGS) {
    const label = `${p.features}${p.precopyInfoV2 ? ' + PRECOPY_INFOv2' : ''}, ${p.profile}`;
    it(`${label}: green against the model, red against a planted mutant naming the field`, async () => {
      const spec = deviceSystem(p);
      const suite = generateSuite(spec, { criterion: 'commands', preset: p });
      expect(suite.coverage.covered).toBe(suite.coverage.reachable);
      expect(suite.stats.steps).toBeGreaterThanOrEqual(suite.stats.lowerBound!);
      const green = replaySuite(suite, spec);
      expect(green.failed + green.errors).toBe(0);
      const red = await runSuite(suite, modelAdapter(withMutant(spec), 'mutant'), { stopOnFailure: true });
      expect(red.failed).toBe(1);
      const d = red.cases.at(-1)!.failure!;
      expect(d.action!.event).toEqual({ type: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE' });
      expect(d.fields).toEqual([{ component: 'dev', field: 'stopCopyLength', expected: expect.any(Number), observed: 7 }]);
      expect(d.message).toMatch(/^step \d+ \(env → dev: VFIO_DEVICE_FEATURE_MIG_DATA_SIZE\): dev\.stopCopyLength: expected \d+, observed 7$/);
      expect(d.trace.at(-1)).toBe('env → dev: VFIO_DEVICE_FEATURE_MIG_DATA_SIZE');
    });
  }

  it('refusals are tested as such: every out-of-range number, ERROR, blocked arcs, targets outside the feature set', () => {
    const p = devicePreset({ features: 'STOP_COPY|PRE_COPY' });
    const suite = generateSuite(deviceSystem(p), { criterion: 'commands', preset: p });
    const refused = new Set<string>();
    for (const c of suite.cases) {
      for (const s of c.steps) {
        const o = s.observe['dev']!;
        if (s.event.type === 'SET_STATE' && o['ok'] === false && o['errno'] === 'EINVAL') refused.add(`${(o['path'] as string[])[0]}->${String(s.event['target'])}`);
      }
    }
    for (const want of ['RUNNING->8', 'RUNNING->4294967295', 'RUNNING->ERROR', 'STOP_COPY->PRE_COPY', 'RUNNING->RUNNING_P2P', 'STOP->PRE_COPY_P2P', 'ERROR->STOP']) {
      expect(refused, want).toContain(want);
    }
  });
});
