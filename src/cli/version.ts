/** The package's version, read from its package.json (two levels up from dist/src/cli/, one from src/cli/ under vitest). */
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'migration-statecharts' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      /* not this one */
    }
  }
  throw new Error('package.json of migration-statecharts not found');
}
