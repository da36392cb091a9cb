/**
 * `npm run docs`: regenerate the pages generated from the model: docs/reinit.md and docs/virtio-net.md
 * (model runs), docs/multifd.md (multifd runs), docs/phases.md (the orchestrator phase maps, src/phases/) and docs/kernel-run.md (a recorded real-kernel run, test/fixtures/kernel/run.json, against the model).
 * `--check` only compares and names each stale file (exit 1).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type KernelRunRecording, kernelRunDocText } from '../src/docs/kernelRunDoc.js';
import { multifdDocText } from '../src/docs/multifdDoc.js';
import { phasesDocText } from '../src/docs/phasesDoc.js';
import { reinitDocText } from '../src/docs/reinitDoc.js';
import { virtioNetDocText } from '../src/docs/virtioNetDoc.js';

const at = (rel: string) => fileURLToPath(new URL(`../../${rel}`, import.meta.url));
const pages: { readonly file: string; readonly text: () => string }[] = [
  { file: 'docs/reinit.md', text: reinitDocText },
  { file: 'docs/virtio-net.md', text: () => virtioNetDocText() },
  { file: 'docs/phases.md', text: phasesDocText },
  { file: 'docs/multifd.md', text: () => multifdDocText() },
  { file: 'docs/kernel-run.md', text: () => kernelRunDocText(JSON.parse(readFileSync(at('test/fixtures/kernel/run.json'), 'utf8')) as KernelRunRecording) },
];
const check = process.argv.includes('--check');
for (const p of pages) {
  const file = at(p.file);
  const text = p.text();
  if (check) {
    let old = '';
    try {
      old = readFileSync(file, 'utf8');
    } catch {
      /* missing */
    }
    if (old !== text) {
      process.stderr.write(`docs: ${p.file} is stale; run npm run docs\n`);
      process.exitCode = 1;
    }
  } else {
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, text);
    renameSync(tmp, file);
    process.stdout.write(`docs: wrote ${p.file}\n`);
  }
}
