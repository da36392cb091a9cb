/**
 * The scenario manifest (src/systems/manifest.ts): every scenario explores to exactly the state and
 * transition counts recorded beside it.
 */
import { describe, expect, it } from 'vitest';
import { explore } from '../src/explorer/index.js';
import { SCENARIOS } from '../src/systems/manifest.js';

describe('the scenario manifest', () => {
  for (const s of SCENARIOS) {
    const verdicts = s.violated?.length ? `violates ${s.violated.join(', ')}` : s.approximate ? 'nothing violated, nothing concluded (approximate)' : 'every claim holds';
    it(`${s.name}: ${s.states} states, ${s.transitions} transitions, ${verdicts}`, () => {
      const r = explore(s.build(), { progress: false });
      expect(r.limit).toBeNull();
      expect({ states: r.states, transitions: r.transitions }).toEqual({ states: s.states, transitions: s.transitions });
      expect(r.properties.filter((p) => p.verdict === 'violated').map((p) => p.name)).toEqual(s.violated ?? []);
      const rest = r.properties.filter((p) => p.verdict !== 'violated').map((p) => p.verdict);
      expect(rest.length).toBeGreaterThan(0);
      expect(new Set(rest)).toEqual(new Set([s.approximate ? 'unknown' : 'holds']));
      expect(r.approximation !== null).toBe(s.approximate === true);
    });
  }
});
