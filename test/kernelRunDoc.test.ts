/** docs/kernel-run.md is drawn from the recorded real-kernel run; this fails when the page is stale or the model no longer predicts the run. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type KernelRunRecording, KERNEL_RUN_STEPS, kernelRunDocText } from '../src/docs/kernelRunDoc.js';

describe('docs/kernel-run.md', () => {
  const rec = JSON.parse(readFileSync(new URL('./fixtures/kernel/run.json', import.meta.url), 'utf8')) as KernelRunRecording;
  it('is what the recording and the model produce now (regenerate with npm run docs)', () => {
    const committed = readFileSync(new URL('../docs/kernel-run.md', import.meta.url), 'utf8');
    expect(kernelRunDocText(rec).split('\n')).toEqual(committed.split('\n'));
  });
  it('every reply of the recorded run is the one the model predicts', () => {
    expect(kernelRunDocText(rec)).toContain(`${KERNEL_RUN_STEPS.length} of ${KERNEL_RUN_STEPS.length} replies as predicted`);
    const tampered = { ...rec, observations: rec.observations.map((o, i) => (i === 2 ? { ...o, bytes: 23 } : o)) };
    expect(kernelRunDocText(tampered)).toContain('the model said 24 bytes');
  });
});
