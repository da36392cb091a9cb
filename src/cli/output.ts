/** What every exploring command shares: the search bounds it takes and how it ends (report, file, exit code). */
import type { SearchLimit } from '../explorer/index.js';
import { checkOutputPath, parseCount, writeWhole } from './args.js';
import { EXIT } from './errors.js';

/** parseArgs options for the bounds and the output of an exploring command. */
export const RUN_OPTIONS = {
  'max-states': { type: 'string' },
  'memory-mb': { type: 'string' },
  json: { type: 'boolean', default: false },
  'no-timings': { type: 'boolean', default: false },
  out: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

/** The help lines every exploring command shares. */
export const RUN_HELP = `  --json prints the report as JSON; --out FILE writes it to FILE as well (whole or not at all; FILE's
  directory must exist); --no-timings leaves the run's timings (seconds, states per second) out of the
  JSON, so two runs compare byte for byte. A search stopped by a bound reports each property it could not
  decide as "unknown" (verdict "unknown", holds false in JSON), never as holding.`;

/** The search bounds, once `--out` is known to be writable (checked before the search starts). */
export function parseBounds(values: { 'max-states'?: string | undefined; 'memory-mb'?: string | undefined; out?: string | undefined }) {
  checkOutputPath(values.out, '--out');
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
  /** Why properties were left undecided although the search finished (an approximate reduction), if so. */
  readonly undecided?: string | null;
}

/** The keys of a report that measure the run rather than the model. */
const TIMING_KEYS: ReadonlySet<string> = new Set(['seconds', 'statesPerSecond']);

/** The report as JSON text; without the timings when `noTimings`. */
export function reportJson(report: unknown, noTimings: boolean): string {
  return JSON.stringify(report, noTimings ? (key, value: unknown) => (TIMING_KEYS.has(key) ? undefined : value) : undefined, 2);
}

/** Print the report (text or --json), write --out whole or not at all, and choose the exit code. */
export function finish(
  e: Ending,
  values: { json?: boolean | undefined; out?: string | undefined; 'no-timings'?: boolean | undefined },
  out: (s: string) => void,
  err: (s: string) => void,
): number {
  const json = reportJson(e.report, values['no-timings'] === true);
  if (values.out) writeWhole(values.out, json + '\n', '--out');
  out(values.json ? json : e.text);
  if (e.limit) {
    err(`migration-statecharts: ${e.limit.message} (partial: ${e.partial.states} states, ${e.partial.transitions} transitions)`);
    return EXIT.limit;
  }
  if (e.undecided) {
    err(`migration-statecharts: ${e.undecided}`);
    return EXIT.limit;
  }
  return e.holds ? EXIT.ok : EXIT.violated;
}
