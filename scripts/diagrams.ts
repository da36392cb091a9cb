/**
 * `npm run diagrams` / `npm run diagrams:check`.
 *
 *   node dist/scripts/diagrams.js            write diagrams/*.mmd, render the SVGs that are missing or stale
 *   node dist/scripts/diagrams.js --force    … and re-render every SVG
 *   node dist/scripts/diagrams.js --check    exit 1, naming the files, if diagrams/ is not current (no browser)
 *
 * Options: --dir DIR (default: diagrams, relative to the working directory), --jobs N (pages at once).
 * The browser: PUPPETEER_EXECUTABLE_PATH, CHROMIUM_PATH or CHROME_PATH, else /usr/bin/chromium.
 */
import { checkDiagrams } from '../src/diagrams/check.js';
import { generateAll } from '../src/diagrams/generate.js';
import { writeDiagrams } from '../src/diagrams/write.js';

interface Args {
  readonly check: boolean;
  readonly force: boolean;
  readonly dir: string;
  readonly jobs: number;
}

const USAGE = 'usage: diagrams [--check] [--force] [--dir DIR] [--jobs N]';

function parseArgs(argv: readonly string[]): Args {
  let check = false;
  let force = false;
  let dir = 'diagrams';
  let jobs = 2;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--check') check = true;
    else if (a === '--force') force = true;
    else if (a === '--dir' && argv[i + 1] !== undefined) dir = argv[++i]!;
    else if (a === '--jobs' && /^[1-9]\d*$/.test(argv[i + 1] ?? '')) jobs = Number(argv[++i]);
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  return { check, force, dir, jobs };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const generated = generateAll();
  if (args.check) {
    const problems = await checkDiagrams(args.dir, generated);
    const seconds = ((performance.now() - t0) / 1000).toFixed(2);
    if (problems.length === 0) {
      console.log(`diagrams: ${generated.length} diagrams in ${args.dir}/ are up to date (${seconds} s)`);
      return 0;
    }
    console.error(`diagrams: ${problems.length} file(s) in ${args.dir}/ are stale — run \`npm run diagrams\` and commit the result:`);
    for (const p of problems) console.error(`  ${p.file}: ${p.reason}`);
    return 1;
  }
  const r = await writeDiagrams(args.dir, generated, { force: args.force, parallel: args.jobs });
  for (const f of r.mmdWritten) console.log(`wrote ${f}`);
  for (const f of r.removed) console.log(`removed ${f}`);
  if (r.svgRendered.length > 0) {
    console.log(
      `rendered ${r.svgRendered.length} SVG(s) in ${r.renderSeconds.toFixed(2)} s ` +
        `(one browser; start-up ${r.launchSeconds.toFixed(2)} s, ${args.jobs} page(s) at a time)`,
    );
  } else {
    console.log('all SVGs are current (use --force to re-render them anyway)');
  }
  console.log(`diagrams: ${generated.length} diagrams in ${args.dir}/ (${((performance.now() - t0) / 1000).toFixed(2)} s)`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(2);
  },
);
