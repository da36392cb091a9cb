/** Parsing of the values the CLI takes, each with a one-line error that names the bad value and the valid ones. */
import { type FeatureSet, type VfioState, FEATURE_SETS, VFIO_STATES } from '../../machines/vfioArcs.js';
import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from './errors.js';

const FEATURE_WORDS: Record<string, 'P2P' | 'PRE_COPY' | 'STOP_COPY'> = {
  'p2p': 'P2P',
  'pre-copy': 'PRE_COPY',
  'precopy': 'PRE_COPY',
  'pre_copy': 'PRE_COPY',
  'stop-copy': 'STOP_COPY',
  'stop_copy': 'STOP_COPY',
};

/** `p2p,pre-copy` → 'STOP_COPY|P2P|PRE_COPY'. STOP_COPY is implied (the uAPI makes it mandatory). */
export function parseFeatures(text: string, option = '--features'): FeatureSet {
  const words = text.split(',').map((w) => w.trim().toLowerCase()).filter((w) => w.length > 0);
  const have = new Set<string>(['STOP_COPY']);
  for (const w of words) {
    const f = FEATURE_WORDS[w];
    if (!f) throw new UsageError(`unknown feature '${w}' in ${option}; valid: p2p, pre-copy, stop-copy (comma-separated)`);
    have.add(f);
  }
  const set = ['STOP_COPY', 'P2P', 'PRE_COPY'].filter((f) => have.has(f)).join('|');
  return FEATURE_SETS.find((s) => s === set)!;
}

/** A uAPI state name, case-insensitive, with or without the VFIO_DEVICE_STATE_ prefix. */
export function parseState(text: string, option: string): VfioState {
  const t = text.trim().toUpperCase().replace(/^VFIO_DEVICE_STATE_/, '').replace(/-/g, '_');
  const s = VFIO_STATES.find((x) => x === t);
  if (!s) throw new UsageError(`unknown state '${text}' for ${option}; valid: ${VFIO_STATES.join(', ')}`);
  return s;
}

export function requireValue(value: string | undefined, option: string, valid: string): string {
  if (value === undefined || value === '') throw new UsageError(`missing ${option}; expected ${valid}`);
  return value;
}

/**
 * parseArgs reads `--devices -1` as an option without its value ("argument is ambiguous"). Joining a
 * negative number to the option before it (`--devices=-1`) lets the option's own check name the value.
 */
export function joinNegativeNumbers(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith('--') && a.length > 2 && !a.includes('=') && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/** A positive integer option. */
export function parseCount(text: string | undefined, option: string, fallback: number, min = 1, max = 1_000_000_000): number {
  if (text === undefined) return fallback;
  if (/^\s*-\d/.test(text)) throw new UsageError(`bad ${option} '${text}': negative; expected an integer ${min}..${max}`);
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`bad ${option} '${text}'; expected an integer ${min}..${max}`);
  const n = Number(text.trim());
  if (n < min || n > max) throw new UsageError(`bad ${option} '${text}'; expected an integer ${min}..${max}`);
  return n;
}

/** The text of an input file, or a one-line error naming the file and why it cannot be read. */
export function readInputFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/**
 * Refuse an output file whose directory is missing (or not a directory) before any work is done, so a
 * typo in `--out` costs one line and exit 2, not a long search and a half-written temporary file.
 */
export function checkOutputPath(file: string | undefined, option: string): void {
  if (file === undefined) return;
  if (file === '') throw new UsageError(`missing ${option}; expected a file name`);
  const dir = dirname(resolve(file));
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (e) {
    throw new UsageError(`cannot write ${option} ${file}: directory ${dirname(file)} does not exist (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!isDir) throw new UsageError(`cannot write ${option} ${file}: ${dirname(file)} is not a directory`);
}

/** Write `text` to `file` whole or not at all (a temporary file renamed into place); a failure is one line, exit 2. */
export function writeWhole(file: string, text: string, option: string): void {
  checkOutputPath(file, option);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw new UsageError(`cannot write ${option} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
