/**
 * The explorer asks XState for each local step through one reused inert actor scope per machine
 * (src/explorer/local.ts) instead of XState's transition() helper, which builds a throw-away actor per
 * call. The two must explore the same systems to the same states, transitions and verdicts.
 */
import { describe, expect, it } from 'vitest';
import { explore } from '../src/explorer/index.js';
import { migrationSystem } from '../src/systems/migration.js';
import { deviceSystem, devicePreset } from '../src/testgen/index.js';

const ALL = 'STOP_COPY|P2P|PRE_COPY' as const;

describe('stepping through a reused actor scope', () => {
  for (const [name, build] of [
    ['migration N=2 per-device', () => migrationSystem({ devices: [ALL, ALL], ack: 'per-device' })],
    ['REINIT recheck-resume N=1, budget 2', () => migrationSystem({ devices: [ALL], ack: 'per-device', design: 'recheck-resume', reinitBudget: 2 })],
    ['one-sided ack (a violated claim)', () => migrationSystem({ devices: [ALL], ack: 'legacy', oneSide: 'source' })],
    ['device, mtty profile', () => deviceSystem(devicePreset({ profile: 'mtty' }))],
  ] as const) {
    it(`${name}: the same states, transitions and verdicts as XState's transition() helper`, () => {
      const a = explore(build(), { progress: false, stepWith: 'scope' });
      const b = explore(build(), { progress: false, stepWith: 'helper' });
      expect([a.states, a.transitions]).toEqual([b.states, b.transitions]);
      expect(a.properties.map((p) => [p.name, p.holds])).toEqual(b.properties.map((p) => [p.name, p.holds]));
    });
  }
});
