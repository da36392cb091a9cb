/**
 * The scenario manifest (src/systems/manifest.ts): every scenario explores to exactly the state and
 * transition counts recorded beside it.
 */
import { describe, expect, it } from 'vitest';
import { explore } from '../src/explorer/index.js';
import { SCENARIOS } from '../src/systems/manifest.js';

describe('the scenario manifest', () => {
  for (const s of SCENARIOS) {
    it(`${s.name}: ${s.states} states, ${s.transitions} transitions, ${s.violated?.length ? `violates ${s.violated.join(', ')}` : 'every claim holds'}`, () => {
      const r = explore(s.build(), { progress: false });
      expect(r.limit).toBeNull();
      expect({ states: r.states, transitions: r.transitions }).toEqual({ states: s.states, transitions: s.transitions });
      expect(r.properties.filter((p) => !p.holds).map((p) => p.name)).toEqual(s.violated ?? []);
    });
  }
});
