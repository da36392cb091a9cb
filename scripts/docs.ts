/**
 * `npm run docs`: regenerate docs/reinit.md from the model. `--check` only compares and names a stale
 * file (exit 1).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { reinitDocText } from '../src/docs/reinitDoc.js';

const file = fileURLToPath(new URL('../../docs/reinit.md', import.meta.url));
const text = reinitDocText();
if (process.argv.includes('--check')) {
  let old = '';
  try {
    old = readFileSync(file, 'utf8');
  } catch {
    /* missing */
  }
  if (old !== text) {
    process.stderr.write('docs: docs/reinit.md is stale; run npm run docs\n');
    process.exitCode = 1;
  }
} else {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
  process.stdout.write(`docs: wrote docs/reinit.md\n`);
}
