/**
 * Exports (issue 17, part 4): every machine as SCXML and as JSON, read back with the same transitions;
 * XState's own toJSON() losing higher-order guards; counterexamples as ITF traces.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { qemuSourceMachine } from '../machines/qemuSource.js';
import { main } from '../src/cli.js';
import { EXPORTABLE } from '../src/cli/export.js';
import { type Statechart, STATECHART_FORMAT, ScxmlError, scxmlTransitions, statechartOf, toScxml, transitionsOf } from '../src/export/statechart.js';
import { itfValue } from '../src/export/itf.js';

function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = main(argv, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Transitions as comparable text, one per line. */
const lines = (ts: { source: string; transition: { event: string; targets: readonly string[]; guard: string | null; actions: readonly string[] } }[]) =>
  ts.map(({ source, transition: t }) => `${source} ${t.event || '(always)'} -> [${t.targets.join(' ')}] [${t.guard ?? ''}] / ${t.actions.join(',')}`);

/** Every transition of a machine, straight from XState's state nodes (independent of the export code). */
function machineTransitions(machine: (typeof EXPORTABLE)[string]): number {
  let n = 0;
  const walk = (node: typeof machine.root) => {
    for (const list of node.transitions.values()) n += list.length;
    n += node.always?.length ?? 0;
    for (const c of Object.values(node.states)) walk(c as typeof machine.root);
  };
  walk(machine.root);
  return n;
}

describe('export --format scxml|json', () => {
  it.each(Object.keys(EXPORTABLE))('%s: SCXML and JSON carry every transition, and read back the same', (name) => {
    const machine = EXPORTABLE[name]!;
    const chart = statechartOf(machine);
    const want = lines(transitionsOf(chart));
    expect(want).toHaveLength(machineTransitions(machine));
    const scxml = run('export', '--machine', name, '--format', 'scxml');
    expect(scxml.code).toBe(0);
    expect(scxml.out).toMatch(/^<\?xml version="1.0"/);
    expect(lines(scxmlTransitions(scxml.out))).toEqual(want);
    const json = run('export', '--machine', name, '--format', 'json');
    const back = JSON.parse(json.out) as Statechart;
    expect(back.format).toBe(STATECHART_FORMAT);
    expect(lines(transitionsOf(back))).toEqual(want);
  });

  it("keeps the and() guards that XState's toJSON drops", () => {
    // what a user who serializes XState's definition gets
    type Def = { states: Record<string, Def>; on: Record<string, { guard?: unknown }[]> };
    const def = JSON.parse(JSON.stringify(qemuSourceMachine.toJSON())) as Def;
    const iterating = def.states['migrating']!.states['active']!.states['iterating']!;
    const xstate = iterating.on['PENDING_FITS_THRESHOLD']!.map((t) => t.guard ?? null);
    expect(xstate).toEqual([null, null, null, 'switchoverPossible']); // the first three are and([...]) in the machine
    const ours = transitionsOf(statechartOf(qemuSourceMachine))
      .filter((t) => t.source === 'qemuSource.migrating.active.iterating' && t.transition.event === 'PENDING_FITS_THRESHOLD')
      .map((t) => t.transition.guard);
    expect(ours).toEqual(['switchoverPossible && designed', 'switchoverPossible && pauseBeforeSwitchover', 'switchoverPossible && multifdTransfer', 'switchoverPossible']);
  });

  it('the SCXML reader refuses what it cannot read, naming it', () => {
    expect(() => scxmlTransitions('<scxml><state><transition/></state></scxml>')).toThrow(ScxmlError);
    expect(() => scxmlTransitions('<scxml><state id="a"><onentry/></state></scxml>')).toThrow(/unexpected element <onentry>/);
    expect(() => scxmlTransitions('<scxml><state id="a">')).toThrow(/ends inside/);
  });

  it('bad arguments: one line, exit 2; --out is written whole', () => {
    for (const argv of [['export'], ['export', '--machine', 'nope', '--format', 'json'], ['export', '--machine', 'qemu-source', '--format', 'dot']]) {
      const r = run(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err.split('\n')).toHaveLength(1);
    }
    const dir = mkdtempSync(join(tmpdir(), 'ms-export-'));
    const file = join(dir, 'src.scxml');
    expect(run('export', '--machine', 'qemu-source', '--format', 'scxml', '--out', file).code).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(toScxml(statechartOf(qemuSourceMachine)));
  });
});

describe('check --itf', () => {
  it('writes the first counterexample as an ITF trace: vars, one state per step, the actions', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ms-itf-'));
    const file = join(dir, 'cex.itf.json');
    const r = run('check', '--devices', '1', '--device-faults', '1', '--itf', file, '--no-timings');
    expect(r.code).toBe(1);
    const itf = JSON.parse(readFileSync(file, 'utf8')) as { '#meta': { format: string }; vars: string[]; states: Record<string, unknown>[] };
    expect(itf['#meta'].format).toBe('ITF');
    expect(itf.vars).toEqual(['action', 'source', 'destination']);
    expect(itf.states[0]).toEqual({ action: 'init', source: 'none', destination: 'none' });
    expect(itf.states.length).toBeGreaterThan(3);
    expect(itf.states[1]!['action']).toEqual({ component: 'source', event: { type: 'MIGRATE' } });
  });
  it('writes nothing when every property holds, and says so', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ms-itf-')), 'none.json');
    const r = run('check', '--devices', '1', '--itf', file);
    expect(r.code).toBe(0);
    expect(existsSync(file)).toBe(false);
    expect(r.err).toMatch(/no counterexample to write/);
  });
  it('ITF values: big integers and nulls in their ITF forms', () => {
    expect(itfValue({ a: 2 ** 60, b: null, c: [1, 'x'] })).toEqual({ a: { '#bigint': String(2n ** 60n) }, b: { '#unserializable': 'null' }, c: [1, 'x'] });
  });
});

describe('tests itf: suites as ITF traces', () => {
  it('writes one trace per case: the expected states and observations after every step, a set prediction as #set', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ms-suite-itf-'));
    const suiteFile = join(dir, 'suite.json');
    expect(run('tests', 'generate', '--system', 'device', '--features', 'pre-copy', '--faults', 'on', '--criterion', 'transitions', '--out', suiteFile).code).toBe(0);
    const suite = JSON.parse(readFileSync(suiteFile, 'utf8')) as { cases: { steps: { expect: Record<string, string>; observe: Record<string, Record<string, unknown>> }[] }[] };
    const out = join(dir, 'itf');
    mkdirSync(out);
    const r = run('tests', 'itf', suiteFile, '--out-dir', out);
    expect(r.code).toBe(0);
    const files = readdirSync(out).sort();
    expect(files.length).toBe(suite.cases.length);
    const itf = JSON.parse(readFileSync(join(out, files[0]!), 'utf8')) as { vars: string[]; states: Record<string, unknown>[] };
    expect(itf.vars).toEqual(['action', 'dev', 'dev.observed']);
    const steps = suite.cases[0]!.steps;
    expect(itf.states.length).toBe(steps.length + 1);
    steps.forEach((s, i) => expect(itf.states[i + 1]!['dev']).toBe(s.expect['dev']));
    // faults on: some step predicts a set of outcomes, and it is an ITF set
    const anyOf = suite.cases.flatMap((c) => c.steps).some((s) => Object.values(s.observe['dev'] ?? {}).some((v) => typeof v === 'object' && v !== null && 'anyOf' in v));
    const texts = files.map((f) => readFileSync(join(out, f), 'utf8')).join('');
    expect(texts.includes('"#set"')).toBe(anyOf);
    expect(texts.includes('anyOf')).toBe(false);
  });
  it('writes nothing when a file would be overwritten, or without an existing --out-dir (exit 2, one line)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ms-suite-itf-'));
    const suiteFile = join(dir, 'suite.json');
    run('tests', 'generate', '--system', 'device', '--features', 'pre-copy', '--faults', 'off', '--out', suiteFile);
    const missing = run('tests', 'itf', suiteFile, '--out-dir', join(dir, 'nope'));
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/is not an existing directory/);
    writeFileSync(join(dir, '001.itf.json'), 'mine');
    const taken = run('tests', 'itf', suiteFile, '--out-dir', dir);
    expect(taken.code).toBe(2);
    expect(readFileSync(join(dir, '001.itf.json'), 'utf8')).toBe('mine');
  });
});
