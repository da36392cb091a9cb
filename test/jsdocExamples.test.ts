/**
 * The @example blocks of the exported modules run, and say what is true. A line `EXPR; // => VALUE`
 * is a claim: the test evaluates EXPR and compares it with VALUE (objects as a subset, so an example may
 * show only the fields it is about). Imports of `migration-statecharts/…` resolve through package.json's
 * exports (so an example cannot import what the package does not export); relative imports resolve from
 * the file the example is in.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, { default: string } | string> };

/** The files whose examples are checked. */
const CHECKED = [
  'src/explorer/index.ts',
  'src/phases/index.ts',
  'src/qemu/conform.ts',
  'src/testgen/index.ts',
  'src/systems/virtioNet.ts',
  'machines/vfioArcs.ts',
  'machines/vfioPath.ts',
  'machines/vfioDevice.ts',
  'machines/vfioProfiles.ts',
  'machines/virtioNetSource.ts',
  'machines/virtioNetDestination.ts',
  'machines/virtioNetVariants.ts',
  'machines/multifdLoad.ts',
  'machines/qemuSource.ts',
  'machines/qemuDestination.ts',
  'src/systems/migration.ts',
];

/** Files with examples that this test cannot run here, and why. */
const NOT_CHECKED: Record<string, string> = {
  'src/kernel/index.ts': 'boots the real-kernel VM',
  'src/kernel/vm.ts': 'boots the real-kernel VM',
  'src/kernel/adapter.ts': 'boots the real-kernel VM',
  'src/qemu/index.ts': 'starts real QEMU processes',
  'src/qemu/qmp.ts': 'talks to a real QEMU',
  'src/qemu/harness.ts': 'starts real QEMU processes',
  'src/qemu/monitor.ts': 'attaches to two running QEMUs',
  'src/qemu-vfio/nested.ts': 'boots the nested VFIO VM with two real QEMUs inside',
};

interface Example {
  readonly file: string;
  readonly code: string;
}

function examplesOf(file: string): Example[] {
  const text = readFileSync(join(root, file), 'utf8');
  const out: Example[] = [];
  for (const block of text.matchAll(/\/\*\*([\s\S]*?)\*\//g)) {
    const lines = block[1]!.split('\n').map((l) => l.replace(/^\s*\* ?/, ''));
    const at = lines.findIndex((l) => l.trim() === '@example');
    if (at < 0) continue;
    const body: string[] = [];
    for (const l of lines.slice(at + 1)) {
      if (/^\s*@\w/.test(l)) break;
      body.push(l);
    }
    out.push({ file, code: body.join('\n').trim() });
  }
  return out;
}

function resolveImport(spec: string, file: string): string {
  if (spec.startsWith('.')) return join(dirname(join(root, file)), spec).replace(/\.js$/, '.ts');
  if (spec === 'xstate') return 'xstate';
  const sub = spec === 'migration-statecharts' ? '.' : `./${spec.replace(/^migration-statecharts\//, '')}`;
  const e = pkg.exports[sub];
  if (e === undefined) throw new Error(`${file}: the example imports ${spec}, which package.json does not export`);
  const target = typeof e === 'string' ? e : e.default;
  return join(root, target.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts'));
}

/** The example as the body of an async function: imports become destructured modules, claims become checks. */
function compile(ex: Example): { imports: { names: string; spec: string }[]; js: string; claims: number } {
  const imports: { names: string; spec: string }[] = [];
  const body: string[] = [];
  let claims = 0;
  for (const line of ex.code.split('\n')) {
    const imp = /^\s*import\s+(type\s+)?\{([^}]*)\}\s+from\s+'([^']+)';?\s*$/.exec(line);
    if (imp) {
      if (!imp[1]) imports.push({ names: imp[2]!.split(',').map((n) => n.trim()).filter((n) => n && !n.startsWith('type ')).join(', '), spec: imp[3]! });
      continue;
    }
    const claim = /^(\s*)(.+?);\s*\/\/\s*=>\s*(.+?)\s*$/.exec(line);
    if (claim) {
      claims++;
      body.push(`${claim[1]}await __check(${claims}, ${JSON.stringify(claim[2])}, () => (${claim[2]}), () => (${claim[3]}));`);
    } else {
      body.push(line);
    }
  }
  const js = ts.transpileModule(`${body.join('\n')}\nexport {};`, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText.replace(/export \{\};\s*$/, '');
  return { imports, js, claims };
}

type Check = (n: number, text: string, actual: () => unknown, expected: () => unknown) => Promise<void>;
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<void>;

async function runExample(ex: Example): Promise<number> {
  const { imports, js, claims } = compile(ex);
  const names: string[] = [];
  const values: unknown[] = [];
  for (const { names: list, spec } of imports) {
    const mod = (await import(/* @vite-ignore */ resolveImport(spec, ex.file))) as Record<string, unknown>;
    for (const n of list.split(',').map((x) => x.trim()).filter(Boolean)) {
      if (!(n in mod)) throw new Error(`${ex.file}: ${spec} has no export ${n}`);
      names.push(n);
      values.push(mod[n]);
    }
  }
  const check: Check = async (n, text, actual, expected) => {
    const a = await actual();
    const e = expected();
    if (e !== null && typeof e === 'object' && !Array.isArray(e)) expect(a, `${ex.file} claim ${n}: ${text}`).toMatchObject(e as object);
    else expect(a, `${ex.file} claim ${n}: ${text}`).toEqual(e);
  };
  await new AsyncFunction(...names, '__check', js)(...values, check);
  return claims;
}

describe('JSDoc @example blocks', () => {
  it('every file with an example is either checked here or listed with the reason it is not', () => {
    const withExamples = [...ts.sys.readDirectory(join(root, 'src'), ['.ts']), ...ts.sys.readDirectory(join(root, 'machines'), ['.ts'])]
      .map((f) => f.slice(root.length).replace(/^\//, ''))
      .filter((f) => examplesOf(f).length > 0)
      .sort();
    expect(withExamples).toEqual([...CHECKED, ...Object.keys(NOT_CHECKED)].sort());
  });

  for (const file of CHECKED) {
    it(`${file}: its example runs and every claim in it is true`, async () => {
      const exs = examplesOf(file);
      expect(exs.length).toBeGreaterThan(0);
      let claims = 0;
      for (const ex of exs) claims += await runExample(ex);
      expect(claims, `${file} makes no checkable claim (write one as EXPR; // => VALUE)`).toBeGreaterThan(0);
    });
  }
});
