/** A bad command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Exit codes shared by every command. */
export const EXIT = { ok: 0, violated: 1, usage: 2, limit: 3 } as const;

/**
 * What a command's error prints and returns: one line and exit 2 for a bad command line (a UsageError,
 * one of `usage`'s classes, or node:util parseArgs' own errors); "internal error" and exit 1 otherwise.
 * Never a stack trace.
 */
export function exitOnError(e: unknown, err: (s: string) => void, usage: readonly (abstract new (...a: never[]) => Error)[] = []): number {
  if (e instanceof UsageError || usage.some((c) => e instanceof c)) {
    err(`migration-statecharts: ${(e as Error).message}`);
    return EXIT.usage;
  }
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
    err(`migration-statecharts: ${(e as Error).message.split('\n')[0]}`);
    return EXIT.usage;
  }
  err(`migration-statecharts: internal error: ${(e as Error).message ?? String(e)}`);
  return 1;
}
