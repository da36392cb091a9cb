/**
 * Self-check of the reference device against the fact sheet's own figures (§4, §5): arcs per feature
 * set (6/8/9/15), helper-valid pairs (16/25/24/47), the precedence rules, the 25 multi-step paths of
 * the all-features set, and a run through sessions, counters, faults and ERROR as the contract states
 * them. `sheetProblems()` lists every mismatch (test/mutants.test.ts); run directly it prints them
 * (node dist/bench/mutants/selfcheck.js, exit 1 on a mismatch).
 */
import { fileURLToPath } from 'node:url';
import { ReferenceDevice, STATE_NAMES, stateName } from './device.js';

class Probe extends ReferenceDevice {
  helper(cur: number, n: number) {
    return this.getNextState(cur, n);
  }
  pathOf(cur: number, n: number) {
    return this.resolve(cur, n);
  }
}

/** Every disagreement between the reference device and the fact sheet's figures ([] when none). */
export function sheetProblems(): { problems: string[]; multiStepPaths: string[] } {
  const problems: string[] = [];
  const expect = (what: string, got: unknown, want: unknown) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  };
  const name = (p: number[]) => p.map(stateName).join('→');
  const S = Object.fromEntries(STATE_NAMES.map((n, i) => [n, i])) as Record<(typeof STATE_NAMES)[number], number>;

  const figures: Record<number, { arcs: number; pairs: number; pairsNoSelf: number }> = {
    1: { arcs: 6, pairs: 16, pairsNoSelf: 12 },
    3: { arcs: 8, pairs: 25, pairsNoSelf: 20 },
    5: { arcs: 9, pairs: 24, pairsNoSelf: 19 },
    7: { arcs: 15, pairs: 47, pairsNoSelf: 40 },
  };
  let multi: string[] = [];
  for (const flags of [1, 3, 5, 7]) {
    const d = new Probe({ flags, precopyInfoV2: false, maxBytes: 1 });
    const arcs = new Set<string>();
    let pairs = 0;
    let noSelf = 0;
    const m: string[] = [];
    for (let cur = 0; cur < 8; cur++) {
      for (let n = 0; n < 8; n++) {
        if (!('errno' in d.helper(cur, n))) {
          pairs++;
          if (cur !== n) noSelf++;
        }
        const r = d.pathOf(cur, n);
        if (cur === 0 || 'errno' in r) continue;
        for (let i = 0; i + 1 < r.path.length; i++) arcs.add(`${r.path[i]}>${r.path[i + 1]}`);
        if (r.path.length > 2) m.push(name(r.path));
      }
    }
    expect(`flags ${flags}: arcs`, arcs.size, figures[flags]!.arcs);
    expect(`flags ${flags}: helper-valid pairs`, pairs, figures[flags]!.pairs);
    expect(`flags ${flags}: helper-valid pairs without cur==new`, noSelf, figures[flags]!.pairsNoSelf);
    if (flags === 7) multi = m;
  }
  expect('all features: multi-step paths', multi.length, 25);

  const path = (flags: number, from: string, to: string) => {
    const r = new Probe({ flags, precopyInfoV2: false, maxBytes: 1 }).pathOf(S[from as 'STOP']!, S[to as 'STOP']!);
    return 'errno' in r ? r.errno : name(r.path);
  };
  expect('P2P RUNNING→STOP', path(3, 'RUNNING', 'STOP'), 'RUNNING→RUNNING_P2P→STOP');
  expect('P2P STOP→RUNNING', path(3, 'STOP', 'RUNNING'), 'STOP→RUNNING_P2P→RUNNING');
  expect('all PRE_COPY→STOP_COPY', path(7, 'PRE_COPY', 'STOP_COPY'), 'PRE_COPY→PRE_COPY_P2P→STOP_COPY');
  expect('all PRE_COPY_P2P→STOP', path(7, 'PRE_COPY_P2P', 'STOP'), 'PRE_COPY_P2P→RUNNING_P2P→STOP');
  expect('all STOP→PRE_COPY', path(7, 'STOP', 'PRE_COPY'), 'STOP→RUNNING_P2P→RUNNING→PRE_COPY');
  expect('SC|PC PRE_COPY→STOP_COPY', path(5, 'PRE_COPY', 'STOP_COPY'), 'PRE_COPY→STOP_COPY');
  expect('SC|PC PRE_COPY→STOP', path(5, 'PRE_COPY', 'STOP'), 'PRE_COPY→RUNNING→STOP');
  expect('SC RUNNING→STOP', path(1, 'RUNNING', 'STOP'), 'RUNNING→STOP');
  expect('SC RUNNING→RESUMING', path(1, 'RUNNING', 'RESUMING'), 'RUNNING→STOP→RESUMING');
  expect('all STOP_COPY→PRE_COPY', path(7, 'STOP_COPY', 'PRE_COPY'), 'EINVAL');
  expect('all STOP_COPY→PRE_COPY_P2P', path(7, 'STOP_COPY', 'PRE_COPY_P2P'), 'EINVAL');
  expect('SC|PC STOP_COPY→PRE_COPY', path(5, 'STOP_COPY', 'PRE_COPY'), 'EINVAL');
  expect('all RESUMING→PRE_COPY_P2P', path(7, 'RESUMING', 'PRE_COPY_P2P'), 'RESUMING→STOP→RUNNING_P2P→PRE_COPY_P2P');

  // sessions and counters
  const d = new ReferenceDevice({ flags: 7, precopyInfoV2: true, maxBytes: 1 });
  expect('SET PRE_COPY', d.setState(S.PRE_COPY), { ret: 0, dataFd: 'saving', path: [S.RUNNING, S.PRE_COPY] });
  expect('info', d.precopyInfo(), { ok: true, initialBytes: 1, dirtyBytes: 0, reinit: false });
  expect('size', d.migDataSize().stopCopyLength, 2);
  expect('read', d.read(), { ok: true, bytes: 1 });
  expect('read empty', d.read(), { ok: false, errno: 'ENOMSG' });
  d.guestDirties();
  d.guestReinits();
  expect('info after reinit', d.precopyInfo(), { ok: true, initialBytes: 1, dirtyBytes: 0, reinit: true });
  expect('info again', d.precopyInfo(), { ok: true, initialBytes: 1, dirtyBytes: 0, reinit: false });
  expect('SET STOP_COPY', d.setState(S.STOP_COPY), { ret: 0, dataFd: null, path: [S.PRE_COPY, S.PRE_COPY_P2P, S.STOP_COPY] });
  expect('size stop-copy', d.migDataSize().stopCopyLength, 2);
  expect('info in STOP_COPY', d.precopyInfo(), { ok: false, errno: 'EINVAL' });
  d.read();
  d.read();
  expect('EOF', d.read(), { ok: true, bytes: 0 });
  expect('SET STOP', d.setState(S.STOP), { ret: 0, dataFd: null, path: [S.STOP_COPY, S.STOP] });
  expect('read in STOP', d.read(), { ok: false, errno: 'EBADF' });
  expect('SET RESUMING', d.setState(S.RESUMING), { ret: 0, dataFd: 'resuming', path: [S.STOP, S.RESUMING] });
  expect('write', d.write(), { ok: true, bytes: 1 });
  expect('SET 8', d.setState(8), { ret: -1, errno: 'EINVAL', path: [S.RESUMING] });
  expect('fault', d.setState(S.RUNNING, { atArc: 1, leaves: 'reached' }), { ret: -1, errno: 'EIO', path: [S.RESUMING, S.STOP] });
  expect('state after fault', d.getState(), S.STOP);
  expect('fault ERROR', d.setState(S.STOP_COPY, { atArc: 0, leaves: 'ERROR' }), { ret: -1, errno: 'EIO', path: [S.STOP] });
  expect('ERROR→ERROR', d.setState(S.ERROR), { ret: 0, dataFd: null, path: [S.ERROR] });
  expect('ERROR→STOP', d.setState(S.STOP), { ret: -1, errno: 'EINVAL', path: [S.ERROR] });
  d.reset();
  expect('reset', d.getState(), S.RUNNING);
  expect('SET ERROR', d.setState(S.ERROR), { ret: -1, errno: 'EINVAL', path: [S.RUNNING] });

  return { problems, multiStepPaths: multi };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { problems, multiStepPaths } = sheetProblems();
  if (problems.length > 0) {
    console.log(problems.join('\n'));
    process.exit(1);
  }
  console.log('reference device: every figure of the fact sheet holds; the all-features multi-step paths:');
  console.log(multiStepPaths.join('\n'));
}
