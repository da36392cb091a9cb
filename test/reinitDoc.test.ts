/** docs/reinit.md is generated from the model; this fails when the committed page is stale. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { reinitDocText } from '../src/docs/reinitDoc.js';

describe('docs/reinit.md', () => {
  it('is what the model produces now (regenerate with npm run docs)', () => {
    const committed = readFileSync(new URL('../docs/reinit.md', import.meta.url), 'utf8');
    const now = reinitDocText();
    expect(now.split('\n')).toEqual(committed.split('\n'));
    expect(now).toContain('## Conclusion');
  });
});
