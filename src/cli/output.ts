/** What every exploring command shares: the search bounds it takes and how it ends (report, file, exit code). */
import { renameSync, writeFileSync } from 'node:fs';
import type { SearchLimit } from '../explorer/index.js';
import { parseCount } from './args.js';
import { EXIT } from './errors.js';

/** parseArgs options for the bounds and the output of an exploring command. */
export const RUN_OPTIONS = {
  'max-states': { type: 'string' },
  'memory-mb': { type: 'string' },
  json: { type: 'boolean', default: false },
  out: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

export function parseBounds(values: { 'max-states'?: string | undefined; 'memory-mb'?: string | undefined }) {
  const maxStates = parseCount(values['max-states'], '--max-states', 50_000_000, 1);
  const memoryMb = parseCount(values['memory-mb'], '--memory-mb', 8192, 64, 1 << 20);
  return { maxStates, memoryBudget: memoryMb * 1024 * 1024 };
}

export interface Ending {
  readonly report: unknown;
  readonly text: string;
  readonly limit: SearchLimit | null;
  /** Counts to quote when a bound stopped the search. */
  readonly partial: { readonly states: number; readonly transitions: number };
  readonly holds: boolean;
}

/** Print the report (text or --json), write --out whole or not at all, and choose the exit code. */
export function finish(e: Ending, values: { json?: boolean | undefined; out?: string | undefined }, out: (s: string) => void, err: (s: string) => void): number {
  const json = JSON.stringify(e.report, null, 2);
  if (values.out) {
    const tmp = `${values.out}.tmp-${process.pid}`;
    writeFileSync(tmp, json + '\n');
    renameSync(tmp, values.out);
  }
  out(values.json ? json : e.text);
  if (e.limit) {
    err(`migration-statecharts: ${e.limit.message} (partial: ${e.partial.states} states, ${e.partial.transitions} transitions)`);
    return EXIT.limit;
  }
  return e.holds ? EXIT.ok : EXIT.violated;
}
