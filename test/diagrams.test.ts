/**
 * The diagrams: every generated `.mmd` parses with Mermaid's own parser and renders to an SVG that names
 * every state of its machine; the generator handles every statechart feature (compound, parallel, final,
 * history, eventless, delayed, parameterised guards and actions) and every awkward character; the
 * sequence-diagram writer reproduces a known trace exactly; rendering is byte-for-byte repeatable; and
 * the staleness check catches each way diagrams/ can go stale. One browser serves the whole file.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'puppeteer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { and, not, raise, setup, stateIn } from 'xstate';
import { FEATURE_SETS } from '../machines/vfioArcs.js';
import type { Trace } from '../src/explorer/trace.js';
import { launchBrowser } from '../src/diagrams/browser.js';
import { checkDiagrams, diagramPaths } from '../src/diagrams/check.js';
import { contextChanges, parseContextDiff } from '../src/diagrams/contextChanges.js';
import { type GeneratedDiagram, generateAll } from '../src/diagrams/generate.js';
import { machineChart } from '../src/diagrams/machineChart.js';
import { escapeText, mermaidFile, wrapText } from '../src/diagrams/mermaidText.js';
import { DIAGRAMS, stateNamesOf } from '../src/diagrams/registry.js';
import { type MermaidParser, openParser, renderAll, withStableIds } from '../src/diagrams/render.js';
import { sequenceDiagramText } from '../src/diagrams/sequenceDiagram.js';
import { stateDiagramText } from '../src/diagrams/stateDiagram.js';
import { sourceHash, stampOf, stampSvg } from '../src/diagrams/svgStamp.js';

/** A machine with one of everything the generator must draw. */
const featureMachine = setup({
  guards: { charged: () => true, tooHot: (_: unknown, _p: { limit: number }) => false },
  actions: { beep: () => {}, log: (_: unknown, _p: { msg: string }) => {} },
  delays: { slow: 1000 },
}).createMachine({
  id: 'player',
  initial: 'idle',
  on: { POWER_OFF: '.off', PING: { actions: 'beep' } },
  states: {
    idle: {
      description: 'Nothing loaded yet.',
      meta: { since: 'v1' },
      entry: ['beep'],
      after: { 500: 'off' },
      on: {
        PLAY: {
          target: 'active',
          guard: and(['charged', not({ type: 'tooHot', params: { limit: 90 } })]),
          actions: { type: 'log', params: { msg: 'go' } },
        },
      },
    },
    active: {
      description: 'A track is loaded.',
      initial: 'playing',
      on: { STOP: 'idle', RESUME: '.hist', RESTART: { target: 'active', reenter: true } },
      states: {
        playing: {
          type: 'parallel',
          description: 'Video and audio run side by side.',
          on: { PAUSE: 'paused' },
          states: {
            video: {
              initial: 'buffering',
              states: { buffering: { on: { FRAME: 'decoding' } }, decoding: { on: { DONE: 'finished' } }, finished: { type: 'final' } },
            },
            audio: { initial: 'audible', states: { audible: { on: { MUTE: 'muted' } }, muted: { on: { UNMUTE: 'audible' } } } },
          },
        },
        paused: {
          always: { guard: stateIn('#player.off'), target: 'playing' },
          on: { TICK: { actions: raise({ type: 'TOCK' }) } },
        },
        hist: { type: 'history', history: 'deep', target: 'paused' },
      },
    },
    off: { type: 'final' },
  },
});

/** A machine whose names and texts hold every character Mermaid treats specially. */
const NASTY = 'say "hi"; [x] {y} | z: #1 <b> & 50% end';
const nastyMachine = setup({}).createMachine({
  id: 'nasty',
  initial: 'start',
  states: {
    start: { description: `note: ${NASTY}`, on: { [`GO ${NASTY}`]: NASTY } },
    [NASTY]: { on: { BACK: 'start', [`STAY ${NASTY}`]: {} } },
  },
});

const CONNECT = { type: 'CONNECT', to: { host: 'a;b', port: 1 } };

/** A small lasso over two components and two channels (one sender known, one not). */
const KNOWN_TRACE: Trace = {
  initial: { client: 'idle', server: 'up' },
  steps: [
    {
      step: 1,
      kind: 'env',
      component: 'client',
      event: CONNECT,
      changes: [{ component: 'client', from: 'idle', to: 'waiting', context: 'tries: 0→1' }],
      states: { client: 'waiting', server: 'up' },
    },
    {
      step: 2,
      kind: 'deliver',
      component: 'server',
      channel: 'c2s',
      event: { type: 'HELLO' },
      changes: [{ component: 'server', from: 'up', to: 'up', context: 'peer: "none"→"client"' }],
      states: { client: 'waiting', server: 'up' },
    },
    {
      step: 3,
      kind: 'deliver',
      component: 'client',
      channel: 's2c',
      event: { type: 'WELCOME' },
      changes: [{ component: 'client', from: 'waiting', to: 'idle' }],
      states: { client: 'idle', server: 'up' },
    },
  ],
  cycleStart: 2,
};

const KNOWN_TRACE_TEXT = `sequenceDiagram
  participant p_env as Environment
  participant p_c_client as client
  participant p_c_server as server
  participant p_ch_s2c as s2c
  autonumber 1
  Note over p_c_client: idle
  Note over p_c_server: up
  p_env->>p_c_client: CONNECT(to: {host: a#59;b, port: 1})
  Note over p_c_client: idle → waiting<br/>tries: 0→1
  loop the steps from 2 on repeat forever
    p_c_client->>p_c_server: [c2s] HELLO
    Note over p_c_server: stays up<br/>peer: none→client
    p_ch_s2c->>p_c_client: WELCOME
    Note over p_c_client: waiting → idle
  end
`;

const generated = generateAll();
const featureMmd = mermaidFile('features', stateDiagramText(machineChart(featureMachine)));
const NASTY_TITLE = 'nasty: say "hi"; [x] {y} | z: #1 50% end';
const nastyMmd = mermaidFile(NASTY_TITLE, stateDiagramText(machineChart(nastyMachine)));
const traceMmd = mermaidFile('known trace', sequenceDiagramText(KNOWN_TRACE, { senders: { c2s: 'client' } }));
const extras = [
  { name: 'features', mmd: featureMmd },
  { name: 'features-again', mmd: featureMmd },
  { name: 'nasty', mmd: nastyMmd },
  { name: 'trace', mmd: traceMmd },
];

let browser: Browser;
let parser: MermaidParser;
const svgs = new Map<string, string>();

beforeAll(async () => {
  browser = await launchBrowser();
  parser = await openParser(browser);
  const jobs = [...generated.map((g) => ({ name: g.entry.name, mmd: g.mmd })), ...extras];
  const rendered = await renderAll(browser, jobs, 3);
  jobs.forEach((j, i) => svgs.set(j.name, rendered[i]!));
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

/**
 * The names on the state boxes and composite-state headers of a rendered state diagram: the first label
 * of each `g.node.statediagram-state` and the `.cluster-label` of each `g.statediagram-cluster` (notes,
 * arc labels and a box's internal lines are not names).
 */
function stateBoxLabels(svg: string): string[] {
  const label = String.raw`<span [^>]*?class="nodeLabel[^"]*"[^>]*>([\s\S]*?)<\/span>`;
  const nodes = new RegExp(String.raw`<g class="node [^"]*statediagram-state[^"]*"[^>]*>(?:(?!<g class="node )[\s\S])*?` + label, 'g');
  const clusters = new RegExp(
    String.raw`<g class="[^"]*statediagram-cluster[^"]*"[^>]*>(?:(?!<g class="[^"]*statediagram-cluster)[\s\S])*?<g class="cluster-label"[^>]*>[\s\S]*?` + label,
    'g',
  );
  return [...svg.matchAll(nodes), ...svg.matchAll(clusters)].map((m) => svgText(m[1]!).trim());
}

/** All text of an SVG (tags dropped, entities decoded), whitespace collapsed. */
function svgText(svg: string): string {
  return svg
    .replace(/<style[\s\S]*?<\/style>/g, '')
    .replace(/<br\s*\/?>/g, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

describe('the registry', () => {
  it('has every machine, one VFIO diagram per feature set, and example runs', () => {
    expect(DIAGRAMS.map((d) => d.name)).toEqual([
      'vfio-device',
      'vfio-arcs-stop-copy',
      'vfio-arcs-stop-copy-p2p',
      'vfio-arcs-stop-copy-pre-copy',
      'vfio-arcs-stop-copy-p2p-pre-copy',
      'vfio-run-stop-copy-to-eof',
      'qemu-source',
      'qemu-source-migrating',
      'qemu-destination',
      'migration-run-complete',
      'virtio-net-source',
      'virtio-net-destination',
      'virtio-net-run-fast-path',
      'multifd-save',
      'multifd-load',
    ]);
    expect(FEATURE_SETS.every((set) => DIAGRAMS.some((d) => d.title.endsWith(set)))).toBe(true);
  });

  it('committed diagrams/ is what the machines generate now (npm run diagrams:check)', async () => {
    expect(await checkDiagrams('diagrams', generated)).toEqual([]);
  });

  it('every diagram is shown on a docs page', async () => {
    const dir = 'docs/machines';
    const pages = await Promise.all((await readdir(dir)).filter((f) => f.endsWith('.md')).map((f) => readFile(join(dir, f), 'utf8')));
    for (const d of DIAGRAMS) expect(pages.some((p) => p.includes(`](../../diagrams/${d.name}.svg)`)), d.name).toBe(true);
  });
});

describe("Mermaid's parser", () => {
  it.each(generated.map((g) => [g.entry.name, g] as const))('parses %s.mmd', async (_name, g: GeneratedDiagram) => {
    expect(await parser.parse(g.mmd)).toEqual({ ok: true, diagramType: g.entry.source.kind === 'trace' ? 'sequence' : 'stateDiagram' });
  });

  it('parses the feature machine, the awkward characters and the known trace', async () => {
    expect(await parser.parse(featureMmd)).toMatchObject({ ok: true });
    expect(await parser.parse(nastyMmd)).toMatchObject({ ok: true });
    expect(await parser.parse(traceMmd)).toMatchObject({ ok: true });
  });

  it('rejects what it should (the test would notice a parser that accepts anything)', async () => {
    expect(await parser.parse('stateDiagram-v2\n  a --> b : x;y {')).toMatchObject({ ok: false });
    expect(await parser.parse(`sequenceDiagram\n  a->>b: ${'x;y'}`)).toMatchObject({ ok: false });
  });
});

describe('rendered SVGs', () => {
  it.each(DIAGRAMS.map((d) => [d.name, d] as const))('%s names every state of its source', async (name, d) => {
    const svg = svgs.get(name)!;
    if (d.source.kind === 'trace') {
      const text = svgText(svg);
      for (const label of d.mustShow()) expect(text).toContain(label);
    } else {
      const boxes = stateBoxLabels(svg);
      for (const label of d.mustShow()) expect(boxes).toContain(label);
    }
    expect(stampOf(svg)).toBe(sourceHash(generated.find((g) => g.entry.name === name)!.mmd));
  });

  it('draw every state of the feature machine, nested and parallel ones included', async () => {
    const boxes = stateBoxLabels(svgs.get('features')!);
    expect(stateNamesOf(featureMachine).sort()).toEqual(
      ['active', 'audible', 'audio', 'buffering', 'decoding', 'finished', 'idle', 'muted', 'off', 'paused', 'playing', 'video'],
    );
    for (const name of stateNamesOf(featureMachine)) expect(boxes).toContain(name);
    expect(boxes).toContain('H*');
    expect(svgText(svgs.get('features')!)).toContain('history state hist (deep)');
  });

  it('a dropped composite fails the label check', async () => {
    const withoutAudio = featureMmd.replace(/\n {6}--\n {6}state "audio"[\s\S]*?\n {6}\}(?=\n)/, '');
    expect(withoutAudio).not.toBe(featureMmd);
    const [svg] = await renderAll(browser, [{ name: 'dropped', mmd: withoutAudio }]);
    const boxes = stateBoxLabels(svg!);
    expect(boxes).not.toContain('audio');
    expect(boxes).not.toContain('muted');
  });

  it('keep awkward characters intact in state names, arc labels and notes', async () => {
    const boxes = stateBoxLabels(svgs.get('nasty')!);
    expect(boxes).toContain(NASTY);
    const text = svgText(svgs.get('nasty')!);
    expect(text).toContain(`GO ${NASTY}`);
    expect(text).toContain(`STAY ${NASTY}`);
    expect(text).toContain(`note: say "hi"; [x] {y} | z: #1 <b> & 50%`);
    expect(text).toContain(NASTY_TITLE);
  });

  it('are byte-for-byte repeatable (no random ids or shapes)', () => {
    expect(svgs.get('features-again')!.replace(/features-again/g, 'features')).toBe(svgs.get('features'));
  });

  it('lose the random part of the ids Mermaid gives parallel regions', () => {
    expect(withStableIds('<g id="x-state-id-k3j9x0q2mz-5"><g id="divider-id-1-1">')).toBe(
      '<g id="x-state-id-5"><g id="divider-id-1-1">',
    );
    expect(svgs.get('features')).not.toMatch(/\bid-[0-9a-z]{6,12}-\d+\b/);
  });
});

describe('the state diagram writer', () => {
  const text = stateDiagramText(machineChart(featureMachine));

  it('qualifies ids by path and labels states with their own names (mermaid#5290)', () => {
    expect(text).toContain('state "buffering" as s_player_active_playing_video_buffering');
    expect(text).toContain('state "idle" as s_player_idle');
  });

  it('writes initial and final states, composites and parallel regions', () => {
    expect(text).toMatch(/^ {2}\[\*\] --> s_player_idle$/m);
    expect(text).toMatch(/^ {4}\[\*\] --> s_player_active_playing$/m);
    expect(text).toMatch(/^ {8}s_player_active_playing_video_finished --> \[\*\]$/m);
    expect(text).toMatch(/^ {2}s_player_off --> \[\*\]$/m);
    expect(text).toMatch(/^ {4}state s_player_active_playing \{\n {6}state "video"[\s\S]*\n {6}--\n {6}state "audio"/m);
  });

  it('labels arcs EVENT [guard] / action, with built-in guards and parameters', () => {
    expect(text).toContain('s_player_idle --> s_player_active : PLAY [charged #amp;#amp; !tooHot(limit: 90)]<br/>/ log(msg: go)');
    expect(text).toContain('s_player_idle --> s_player_off : after 500ms');
    expect(text).toContain('s_player_active_paused --> s_player_active_playing : [in(#35;player.off)]');
    expect(text).toContain('s_player_active --> s_player_idle : STOP');
  });

  it('puts internal transitions and entry actions in the box, without XState’s delay plumbing', () => {
    expect(text).toContain('s_player_idle : entry / beep');
    expect(text).toContain('s_player_active_paused : TICK / raise(TOCK)');
    expect(text).not.toContain('cancel');
    expect(text).not.toContain('xstate.after');
  });

  it('draws a composite state’s own transitions from an "any state" node inside it', () => {
    expect(text).toContain('s_player_any --> s_player_off : POWER_OFF');
    expect(text).toContain('s_player_any : PING / beep');
    expect(text).toMatch(/^ {4}s_player_active_any --> s_player_active_hist : RESUME$/m);
    expect(text).toContain('s_player_active_any : RESTART → active');
  });

  it('shows a history state as H* with a note and its default target', () => {
    expect(text).toContain('state "H*" as s_player_active_hist');
    expect(text).toMatch(/note right of s_player_active_hist\n\s+history state hist \(deep\)/);
    expect(text).toContain('s_player_active_hist --> s_player_active_paused : default');
  });

  it('shows descriptions and meta as notes', () => {
    expect(text).toMatch(/note right of s_player_idle\n\s+Nothing loaded yet\.\n\s+since: v1\n\s+end note/);
  });

  it('merges guarded transitions that differ only in their guard', () => {
    const m = setup({ guards: { a: () => true, b: () => true } }).createMachine({
      id: 'x',
      initial: 'x',
      states: { x: { on: { GO: [{ guard: 'a', target: 'y' }, { guard: 'b', target: 'y' }, { target: 'y' }] } }, y: {} },
    });
    expect(stateDiagramText(machineChart(m))).toContain('s_x_x --> s_x_y : GO [a or b]<br/>GO');
  });

  it('elides guard and action parameters that repeat the arc’s ends (the VFIO device)', () => {
    const vfio = generated.find((g) => g.entry.name === 'vfio-device')!.mmd;
    expect(vfio).toContain('s_vfioDevice_RUNNING --> s_vfioDevice_STOP : ARC [pathContinuesTo #amp;#amp; !hasP2P]\n');
    expect(vfio).toContain('s_vfioDevice_STOP --> s_vfioDevice_STOP_COPY : ARC [pathContinuesTo]<br/>/ openSavingSession, streamFinalState');
    expect(vfio).toContain('s_vfioDevice_any --> s_vfioDevice_RUNNING : VFIO_DEVICE_RESET [servesSession(kind: saving | resuming)]<br/>/ resetDevice');
    // one guard with one parameter, merged: the per-target SET transitions of a state read as one line
    expect(vfio).toContain('s_vfioDevice_STOP : SET_STATE [faultRequested or targetIs(target: RUNNING | STOP_COPY | RESUMING | RUNNING_P2P | PRE_COPY | PRE_COPY_P2P)] / resolvePath\n');
  });

  it('draws the device as the kernel’s arc list: one ARC arc per single-step arc, no SET_STATE arcs', () => {
    const vfio = generated.find((g) => g.entry.name === 'vfio-device')!.mmd;
    const arcs = vfio.split('\n').filter((l) => / --> s_vfioDevice_\w+ : ARC \[pathContinuesTo/.test(l));
    expect(arcs).toHaveLength(18);
    expect(vfio).not.toMatch(/--> \S+ : SET_STATE/);
  });
});

describe('the VFIO feature-set diagrams', () => {
  const text = (set: string) => generated.find((g) => g.entry.title.endsWith(`: ${set}`))!.mmd;

  it('show only the states and arcs of the set, labelled with their session effect', () => {
    const base = text('STOP_COPY');
    expect(base).not.toContain('P2P');
    expect(base).not.toContain('PRE_COPY');
    expect(base).toContain('s_vfio_STOP --> s_vfio_STOP_COPY : opens saving data_fd');
    expect(base).toContain('s_vfio_RESUMING --> s_vfio_STOP : closes data_fd');
    expect(base).toContain('s_vfio_RUNNING --> s_vfio_STOP\n');
  });

  it('note, with PRE_COPY, the blocked arcs', () => {
    expect(text('STOP_COPY')).not.toContain('Blocked');
    expect(text('STOP_COPY|PRE_COPY')).toContain('Blocked (vfio.h): STOP_COPY → PRE_COPY.');
    expect(text('STOP_COPY|P2P|PRE_COPY')).toMatch(/Blocked \(vfio\.h\): STOP_COPY → PRE_COPY,\s+STOP_COPY → PRE_COPY_P2P\./);
    expect(text('STOP_COPY|P2P|PRE_COPY')).toContain('s_vfio_PRE_COPY_P2P --> s_vfio_STOP_COPY : keeps saving data_fd');
  });
});

describe('the sequence diagram writer', () => {
  it('reproduces a known trace exactly', () => {
    expect(sequenceDiagramText(KNOWN_TRACE, { senders: { c2s: 'client' } })).toBe(KNOWN_TRACE_TEXT);
  });

  it('numbers the messages itself when the steps are not consecutive', () => {
    const text = sequenceDiagramText({ ...KNOWN_TRACE, steps: [KNOWN_TRACE.steps[0]!, KNOWN_TRACE.steps[2]!], cycleStart: undefined });
    expect(text).not.toContain('autonumber');
    expect(text).toContain('p_ch_s2c->>p_c_client: 3. WELCOME');
  });
});

describe('context changes in trace notes', () => {
  it('read the explorer’s `key: json→json` text back', () => {
    expect(parseContextDiff('a: 1→2, b: "x, y"→null, c: {"d":[1,2]}→{"d":[1,3]}')).toEqual([
      ['a', 1, 2],
      ['b', 'x, y', null],
      ['c', { d: [1, 2] }, { d: [1, 3] }],
    ]);
    expect(parseContextDiff('not a diff')).toBeUndefined();
  });

  it('name the changed leaves, and a replaced record by its new value', () => {
    expect(
      contextChanges('devs: [{"state":"RUNNING","n":1}]→[{"state":"STOP","n":1}], last: {"op":"A"}→{"op":"B","ok":true}'),
    ).toEqual(['devs[0].state: RUNNING→STOP', 'last = {op: B, ok: true}']);
    expect(contextChanges('free "text"')).toEqual(['free text']);
  });
});

describe('text helpers', () => {
  it('escape only what breaks Mermaid', () => {
    expect(escapeText('a "b"; #c <d> & 5% | e: {f} [g]')).toBe('a #quot;b#quot;#59; #35;c #lt;d#gt; #amp; 5#37; | e: {f} [g]');
  });

  it('refuse titles Mermaid would treat as HTML', () => {
    expect(() => mermaidFile('a <b> c', 'stateDiagram-v2\n')).toThrow(/no </);
    expect(() => mermaidFile('a & b', 'stateDiagram-v2\n')).toThrow(/no </);
  });

  it('wrap notes at spaces, cutting only words longer than a line', () => {
    expect(wrapText('one two three four', 9)).toEqual(['one two', 'three', 'four']);
    expect(wrapText('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij']);
  });
});

describe('diagrams:check', () => {
  it('names each stale, missing or stray file, and passes a current directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'diagrams-'));
    try {
      const some = generated.slice(0, 3);
      for (const g of some) {
        const p = diagramPaths(dir, g.entry.name);
        await writeFile(p.mmd, g.mmd);
        await writeFile(p.svg, stampSvg('<svg xmlns="http://www.w3.org/2000/svg"></svg>', sourceHash(g.mmd)));
      }
      expect(await checkDiagrams(dir, some)).toEqual([]);

      const [a, b, c] = some.map((g) => diagramPaths(dir, g.entry.name));
      await writeFile(a!.mmd, some[0]!.mmd + '%% edited\n');
      await writeFile(b!.svg, stampSvg('<svg></svg>', sourceHash('something else')));
      await rm(c!.svg);
      await writeFile(join(dir, 'old.mmd'), 'stateDiagram-v2\n');
      expect(await checkDiagrams(dir, some)).toEqual([
        { file: a!.mmd, reason: 'differs from what the machines generate now' },
        { file: b!.svg, reason: 'older than its .mmd (rendered from a different source)' },
        { file: c!.svg, reason: 'missing' },
        { file: join(dir, 'old.mmd'), reason: 'not generated by any diagram in src/diagrams/registry.ts' },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads back the stamp it writes, replacing an old one', () => {
    const svg = stampSvg(stampSvg('<svg id="x"><g/></svg>', 'a'.repeat(64)), 'b'.repeat(64));
    expect(svg).toBe(`<svg data-mmd-sha256="${'b'.repeat(64)}" id="x"><g/></svg>`);
    expect(stampOf(svg)).toBe('b'.repeat(64));
    expect(stampOf('<svg id="x"></svg>')).toBeUndefined();
  });
});
