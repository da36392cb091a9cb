/**
 * The command line as a new user meets it (issue 17, part 6): each defect found, pinned by the claim
 * that now holds. Bad input is one line naming the problem, exit 2, nothing half-written.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';

function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = main(argv, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const root = new URL('..', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string; license: string; files: string[] };

describe('--out and --junit into a missing directory', () => {
  it('is one line naming the directory, exit 2, and writes nothing, for every command that writes a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ms-out-'));
    const missing = join(dir, 'no-such-dir');
    const suite = join(dir, 'suite.json');
    expect(run('tests', 'generate', '--system', 'device', '--features', 'stop-copy', '--criterion', 'states', '--out', suite).code).toBe(0);
    const cases: string[][] = [
      ['explore', '--devices', '1', '--out', join(missing, 'r.json')],
      ['check', '--devices', '1', '--out', join(missing, 'r.json')],
      ['tests', 'generate', '--system', 'device', '--criterion', 'states', '--out', join(missing, 's.json')],
      ['tests', 'replay', suite, '--junit', join(missing, 'r.xml')],
    ];
    for (const argv of cases) {
      const r = run(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err.split('\n'), argv.join(' ')).toHaveLength(1);
      expect(r.err).toMatch(new RegExp(`^migration-statecharts: cannot write --(out|junit) .*: directory ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not exist`));
      expect(r.err).not.toContain('.tmp-');
      expect(r.err).not.toContain('internal error');
    }
    expect(readdirSync(dir)).toEqual(['suite.json']);
  });

  it('says so when the directory is a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ms-out-'));
    writeFileSync(join(dir, 'plain'), '');
    const r = run('explore', '--devices', '1', '--out', join(dir, 'plain', 'r.json'));
    expect(r).toMatchObject({ code: 2, out: '' });
    expect(r.err).toBe(`migration-statecharts: cannot write --out ${join(dir, 'plain', 'r.json')}: ${join(dir, 'plain')} is not a directory`);
  });
});

describe('a search stopped by a bound', () => {
  it('reports what it could not decide as unknown, never holds, in text and JSON; exit 3', () => {
    const text = run('explore', '--devices', '3', '--max-states', '500');
    expect(text.code).toBe(3);
    expect(text.out).toContain('unknown  SavingSessionExactlyInSavingGroup');
    expect(text.out).not.toMatch(/^ {2}holds /m);
    const j = run('explore', '--devices', '3', '--max-states', '500', '--json');
    expect(j.code).toBe(3);
    const props = JSON.parse(j.out).properties as { verdict: string; holds: boolean }[];
    expect(props.length).toBeGreaterThan(0);
    for (const p of props) {
      expect(p.verdict).toBe('unknown');
      expect(p.holds).toBe(false);
    }
  });

  it('check: the liveness claim is listed as unknown, not left out, and nothing holds', () => {
    const r = run('check', '--devices', '1', '--max-states', '300', '--json');
    expect(r.code).toBe(3);
    const props = JSON.parse(r.out).properties as { name: string; verdict: string; holds: boolean }[];
    expect(props.find((p) => p.name === 'MigrationEnds')?.verdict).toBe('unknown');
    expect(props.every((p) => p.verdict !== 'holds' && !p.holds)).toBe(true);
    expect(run('check', '--devices', '1', '--max-states', '300').out).not.toMatch(/^ {2}holds /m);
  });

  it('a complete search still says holds', () => {
    const j = JSON.parse(run('explore', '--devices', '1', '--json').out) as { properties: { verdict: string; holds: boolean }[] };
    expect(j.properties.every((p) => p.verdict === 'holds' && p.holds)).toBe(true);
  });
});

describe('negative numbers', () => {
  it('name the value and the flag in one line, exit 2', () => {
    const cases: [string[], string][] = [
      [['explore', '--devices', '-1'], "migration-statecharts: bad --devices '-1': negative; expected an integer 1..8"],
      [['check', '--devices', '-2'], "migration-statecharts: bad --devices '-2': negative; expected an integer 1..8"],
      [['check', '--max-states', '-5'], "migration-statecharts: bad --max-states '-5': negative; expected an integer 1..1000000000"],
      [['tests', 'generate', '--system', 'device', '--criterion', 'random', '--seed', '-1'], "migration-statecharts: bad --seed '-1': negative; expected an integer 0..4294967295"],
      [['explore', '--devices=-3'], "migration-statecharts: bad --devices '-3': negative; expected an integer 1..8"],
    ];
    for (const [argv, msg] of cases) {
      const r = run(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err).toBe(msg);
    }
  });
});

describe('--help and --version', () => {
  it('every command and subcommand prints its usage on --help, exit 0', () => {
    const commands = [
      ['--help'],
      ['help'],
      ['check', '--help'],
      ['explore', '--help'],
      ['vfio', '--help'],
      ['vfio', 'path', '--help'],
      ['vfio', 'table', '--help'],
      ['tests', '--help'],
      ['tests', 'generate', '--help'],
      ['tests', 'replay', '--help'],
      ['conform', '--help'],
      ['phases', '--help'],
    ];
    for (const argv of commands) {
      const r = run(...argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.out, argv.join(' ')).toMatch(/^usage:\s+migration-statecharts/);
      expect(r.err).toBe('');
    }
    expect(run('vfio', 'path', '--help').out).toContain('vfio path --from STATE --to STATE');
    expect(run('phases', '--help').out).toContain('--orchestrator libvirt|kubevirt|nova');
  });

  it('--version prints the version of package.json, from main() and from the built command', () => {
    expect(run('--version')).toEqual({ code: 0, out: pkg.version, err: '' });
    const bin = new URL('dist/src/cli.js', root);
    if (existsSync(bin)) expect(execFileSync(process.execPath, [bin.pathname, '--version'], { encoding: 'utf8' })).toBe(`${pkg.version}\n`);
  });
});

describe('--no-timings', () => {
  it('leaves the timings out of --json and --out, so two runs are byte-identical', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ms-timings-'));
    const runs = [1, 2].map((i) => run('explore', '--devices', '2', '--json', '--no-timings', '--out', join(dir, `${i}.json`)));
    for (const r of runs) expect(r.code).toBe(0);
    expect(runs[0]!.out).toBe(runs[1]!.out);
    expect(runs[0]!.out).not.toMatch(/"seconds"|"statesPerSecond"/);
    expect(readFileSync(join(dir, '1.json'))).toEqual(readFileSync(join(dir, '2.json')));
    const checks = [1, 2].map(() => run('check', '--devices', '1', '--json', '--no-timings').out);
    expect(checks[0]).toBe(checks[1]);
    expect(checks[0]).not.toContain('"seconds"');
    expect(run('explore', '--devices', '1', '--json').out).toContain('"seconds"');
  });
});

describe('vfio path', () => {
  it('exits 1 when the kernel refuses the SET (--to ERROR: -EINVAL), as its help says', () => {
    expect(run('vfio', 'path', '--from', 'RUNNING', '--to', 'ERROR')).toEqual({ code: 1, out: '-EINVAL: ERROR cannot be requested  [features STOP_COPY|P2P|PRE_COPY]', err: '' });
    expect(run('vfio', 'path', '--from', 'STOP_COPY', '--to', 'PRE_COPY', '--json').code).toBe(1);
    expect(run('vfio', 'path', '--from', 'RUNNING', '--to', 'STOP').code).toBe(0);
    expect(run('vfio', 'path', '--help').out).toContain('1: it refuses it (-EINVAL)');
  });
});

describe('the package', () => {
  it('has an MIT LICENSE matching package.json', () => {
    const text = readFileSync(new URL('LICENSE', root), 'utf8');
    expect(pkg.license).toBe('MIT');
    expect(text.split('\n')[0]).toBe('MIT License');
    expect(text).toMatch(/^Copyright \(c\) \d{4} the migration-statecharts authors$/m);
  });

  it("ships every image and page the README points at (npm pack's file list)", () => {
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    const targets = [...readme.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/.test(t) && !t.startsWith('#'));
    const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
    expect(images.length).toBeGreaterThan(0);
    const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root.pathname, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as {
      files: { path: string }[];
    }[];
    const files = new Set(packed[0]!.files.map((f) => f.path));
    for (const t of targets) expect(files.has(t.replace(/#.*$/, '')), t).toBe(true);
    expect(files.has('LICENSE')).toBe(true);
  });
});
