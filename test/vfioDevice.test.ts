/**
 * The device machine, driven by events, against the kernel's path resolver and the uAPI's data rules.
 */
import fc from 'fast-check';
import { type Actor, createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import { FEATURE_SETS, type FeatureSet, VFIO_STATES, type VfioState, arcsOf, inSavingGroup, sessionEffect, statesOf } from '../machines/vfioArcs.js';
import { type VfioDeviceEvent, type VfioDeviceInput, type VfioFault, setOutcome, vfioDeviceMachine } from '../machines/vfioDevice.js';
import { GENERIC_PROFILE, mttyProfile } from '../machines/vfioProfiles.js';
import { resolveVfioPath } from '../machines/vfioPath.js';

type Dev = Actor<typeof vfioDeviceMachine>;
const ALL: FeatureSet = 'STOP_COPY|P2P|PRE_COPY';

function device(input: VfioDeviceInput): Dev {
  return createActor(vfioDeviceMachine, { input }).start();
}

/** A device of feature set `set` brought to `state` (ERROR by a failing SET). */
function deviceIn(set: FeatureSet, state: VfioState, extra: Partial<VfioDeviceInput> = {}): Dev {
  const dev = device({ features: set, ...extra });
  if (state === 'ERROR') dev.send({ type: 'SET_STATE', target: 'STOP', fault: { atArc: 0, leaves: 'ERROR' } });
  else dev.send({ type: 'SET_STATE', target: state });
  expect(dev.getSnapshot().value).toBe(state);
  return dev;
}

const value = (d: Dev) => d.getSnapshot().value as VfioState;
const ctx = (d: Dev) => d.getSnapshot().context;

describe('SET_STATE agrees with vfio_mig_get_next_state on every (cur, new, features) case', () => {
  for (const set of FEATURE_SETS) {
    it(`feature set ${set}`, () => {
      let cases = 0;
      for (const from of statesOf(set)) {
        for (const to of VFIO_STATES) {
          const dev = deviceIn(set, from);
          dev.send({ type: 'SET_STATE', target: to });
          const r = resolveVfioPath(from, to, set);
          const last = ctx(dev).last;
          if (r.ok) {
            expect(value(dev), `${from}->${to}`).toBe(to);
            expect(last).toEqual({ op: 'SET_STATE', target: to, ok: true, path: r.path, dataFd: r.dataFd });
          } else {
            expect(value(dev), `${from}->${to}`).toBe(from);
            expect(last).toEqual({ op: 'SET_STATE', target: to, ok: false, errno: 'EINVAL', path: [from] });
          }
          const s = value(dev);
          expect(ctx(dev).session).toBe(inSavingGroup(s) ? 'saving' : s === 'RESUMING' ? 'resuming' : from === s ? ctx(dev).session : null);
          cases++;
        }
      }
      expect(cases).toBe(statesOf(set).length * 8);
    });
  }

  it('reports the data_fd the last arc opens', () => {
    const d = deviceIn(ALL, 'RUNNING');
    d.send({ type: 'SET_STATE', target: 'PRE_COPY_P2P' });
    expect(ctx(d).last).toMatchObject({ ok: true, path: ['RUNNING', 'RUNNING_P2P', 'PRE_COPY_P2P'], dataFd: 'saving' });
    d.send({ type: 'SET_STATE', target: 'STOP_COPY' });
    expect(ctx(d).last).toMatchObject({ ok: true, path: ['PRE_COPY_P2P', 'STOP_COPY'], dataFd: null });
    expect(ctx(d).session).toBe('saving');
    d.send({ type: 'SET_STATE', target: 'RESUMING' });
    expect(ctx(d).last).toMatchObject({ ok: true, path: ['STOP_COPY', 'STOP', 'RESUMING'], dataFd: 'resuming' });
    expect(ctx(d).session).toBe('resuming');
  });

  it('refuses a target number beyond VFIO_DEVICE_STATE_NR without moving', () => {
    const d = deviceIn(ALL, 'RUNNING');
    d.send({ type: 'SET_STATE', target: 'BOGUS' as VfioState });
    expect(value(d)).toBe('RUNNING');
    expect(ctx(d).last).toMatchObject({ ok: false, errno: 'EINVAL' });
  });
});

describe('failed arcs and VFIO_DEVICE_RESET', () => {
  it('a SET whose arc k fails stops where arc k started, or in ERROR; arcs before k are committed', () => {
    // RUNNING -> RUNNING_P2P -> STOP -> STOP_COPY on a P2P device
    const at = (k: number, leaves: 'reached' | 'ERROR') => {
      const d = deviceIn(ALL, 'RUNNING');
      d.send({ type: 'SET_STATE', target: 'STOP_COPY', fault: { atArc: k, leaves } });
      return d;
    };
    expect(value(at(0, 'reached'))).toBe('RUNNING');
    expect(value(at(1, 'reached'))).toBe('RUNNING_P2P');
    expect(value(at(2, 'reached'))).toBe('STOP');
    expect(ctx(at(2, 'reached')).last).toEqual({ op: 'SET_STATE', target: 'STOP_COPY', ok: false, errno: 'EIO', path: ['RUNNING', 'RUNNING_P2P', 'STOP'] });
    expect(ctx(at(2, 'reached')).session).toBeNull();
    const e = at(1, 'ERROR');
    expect(value(e)).toBe('ERROR');
    expect(ctx(e).session).toBeNull();
    // a fault beyond the last arc does not fire
    expect(value(at(3, 'ERROR'))).toBe('STOP_COPY');
  });

  it('a failure inside the saving group ends the session only if the device falls into ERROR', () => {
    const d = deviceIn(ALL, 'PRE_COPY');
    d.send({ type: 'SET_STATE', target: 'STOP_COPY', fault: { atArc: 1, leaves: 'reached' } });
    expect(value(d)).toBe('PRE_COPY_P2P');
    expect(ctx(d).session).toBe('saving');
    d.send({ type: 'SET_STATE', target: 'STOP_COPY', fault: { atArc: 0, leaves: 'ERROR' } });
    expect(value(d)).toBe('ERROR');
    expect(ctx(d).session).toBeNull();
  });

  it('ERROR refuses every SET but ERROR itself (a no-op); VFIO_DEVICE_RESET returns to RUNNING with no session', () => {
    for (const set of FEATURE_SETS) {
      const d = deviceIn(set, 'ERROR');
      for (const s of VFIO_STATES) {
        d.send({ type: 'SET_STATE', target: s });
        expect(value(d)).toBe('ERROR');
        expect(ctx(d).last).toMatchObject(s === 'ERROR' ? { ok: true, path: ['ERROR'] } : { ok: false, errno: 'EINVAL' });
      }
      d.send({ type: 'VFIO_DEVICE_RESET' });
      expect(value(d)).toBe('RUNNING');
      expect(ctx(d).session).toBeNull();
    }
    const d = deviceIn(ALL, 'STOP_COPY');
    d.send({ type: 'VFIO_DEVICE_RESET' });
    expect(value(d)).toBe('RUNNING');
    expect(ctx(d)).toMatchObject({ session: null, initialBytes: 0, dirtyBytes: 0, stopCopyBytes: 0 });
  });
});

describe('PRECOPY_INFO, reads and REINIT', () => {
  it('is valid only in PRE_COPY and PRE_COPY_P2P', () => {
    for (const s of statesOf(ALL)) {
      const d = deviceIn(ALL, s);
      d.send({ type: 'VFIO_MIG_GET_PRECOPY_INFO' });
      expect(ctx(d).last?.ok, s).toBe(s === 'PRE_COPY' || s === 'PRE_COPY_P2P');
    }
  });

  it('drains initial bytes first, then dirty bytes; guest activity raises dirty; both zero is a temporary end', () => {
    const d = deviceIn('STOP_COPY|PRE_COPY', 'PRE_COPY', { maxBytes: 2 });
    const info = () => {
      d.send({ type: 'VFIO_MIG_GET_PRECOPY_INFO' });
      return ctx(d).last;
    };
    expect(info()).toEqual({ op: 'VFIO_MIG_GET_PRECOPY_INFO', ok: true, initialBytes: 2, dirtyBytes: 0, reinit: false });
    d.send({ type: 'GUEST_DIRTIES_DEVICE' });
    d.send({ type: 'DATA_FD_READ' });
    expect(info()).toMatchObject({ initialBytes: 1, dirtyBytes: 1 });
    d.send({ type: 'DATA_FD_READ' });
    d.send({ type: 'DATA_FD_READ' });
    expect(info()).toMatchObject({ initialBytes: 0, dirtyBytes: 0 });
    d.send({ type: 'DATA_FD_READ' });
    expect(ctx(d).last).toEqual({ op: 'DATA_FD_READ', ok: false, errno: 'ENOMSG' });
    d.send({ type: 'GUEST_DIRTIES_DEVICE' });
    d.send({ type: 'GUEST_DIRTIES_DEVICE' });
    d.send({ type: 'GUEST_DIRTIES_DEVICE' });
    expect(info()).toMatchObject({ initialBytes: 0, dirtyBytes: 2 }); // capped at maxBytes
  });

  it('STOP_COPY streams what precopy left plus the final state, then a permanent EOF', () => {
    const d = deviceIn('STOP_COPY|PRE_COPY', 'PRE_COPY', { maxBytes: 2 });
    d.send({ type: 'DATA_FD_READ' }); // initial 2 -> 1
    d.send({ type: 'SET_STATE', target: 'STOP_COPY' });
    expect(ctx(d).stopCopyBytes).toBe(2); // 1 initial left + 1 final unit
    const reads: number[] = [];
    for (let i = 0; i < 4; i++) {
      d.send({ type: 'DATA_FD_READ' });
      const l = ctx(d).last;
      reads.push(l?.op === 'DATA_FD_READ' && l.ok ? l.bytes : -1);
    }
    expect(reads).toEqual([1, 1, 0, 0]);
  });

  it('REINIT with the v2 opt-in: initial jumps back, dirty resets, the next PRECOPY_INFO says so once', () => {
    const d = deviceIn(ALL, 'PRE_COPY', { precopyInfoV2: true, maxBytes: 2 });
    d.send({ type: 'DATA_FD_READ' });
    d.send({ type: 'DATA_FD_READ' });
    d.send({ type: 'GUEST_DIRTIES_DEVICE' });
    d.send({ type: 'GUEST_REINITS_DEVICE' });
    d.send({ type: 'VFIO_MIG_GET_PRECOPY_INFO' });
    expect(ctx(d).last).toEqual({ op: 'VFIO_MIG_GET_PRECOPY_INFO', ok: true, initialBytes: 2, dirtyBytes: 0, reinit: true });
    d.send({ type: 'VFIO_MIG_GET_PRECOPY_INFO' });
    expect(ctx(d).last).toMatchObject({ reinit: false });
  });

  it('without the opt-in the new data can only show up as dirty bytes, and REINIT is never reported', () => {
    const d = deviceIn(ALL, 'PRE_COPY', { maxBytes: 2 });
    d.send({ type: 'DATA_FD_READ' });
    d.send({ type: 'DATA_FD_READ' });
    d.send({ type: 'GUEST_REINITS_DEVICE' });
    d.send({ type: 'VFIO_MIG_GET_PRECOPY_INFO' });
    expect(ctx(d).last).toEqual({ op: 'VFIO_MIG_GET_PRECOPY_INFO', ok: true, initialBytes: 0, dirtyBytes: 2, reinit: false });
  });

  it('the opt-in is refused without PRE_COPY (the kernel answers -EINVAL), so it has no effect', () => {
    expect(device({ features: 'STOP_COPY|P2P', precopyInfoV2: true }).getSnapshot().context.precopyInfoV2).toBe(false);
  });

  it('the resuming data_fd takes writes only in RESUMING', () => {
    const d = deviceIn(ALL, 'RESUMING');
    d.send({ type: 'DATA_FD_WRITE' });
    d.send({ type: 'DATA_FD_WRITE' });
    expect(ctx(d).loadedBytes).toBe(2);
    d.send({ type: 'SET_STATE', target: 'STOP' });
    d.send({ type: 'DATA_FD_WRITE' });
    expect(ctx(d).last).toEqual({ op: 'DATA_FD_WRITE', ok: false, errno: 'EBADF' });
  });
});

describe('random event sequences (fast-check)', () => {
  const eventArb: fc.Arbitrary<VfioDeviceEvent> = fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...VFIO_STATES).map((target) => ({ type: 'SET_STATE' as const, target })) },
    {
      weight: 1,
      arbitrary: fc.record({
        target: fc.constantFrom(...VFIO_STATES),
        atArc: fc.integer({ min: 0, max: 4 }),
        leaves: fc.constantFrom('reached' as const, 'ERROR' as const),
      }).map(({ target, atArc, leaves }) => ({ type: 'SET_STATE' as const, target, fault: { atArc, leaves } })),
    },
    { weight: 1, arbitrary: fc.constant({ type: 'VFIO_DEVICE_RESET' as const }) },
    {
      weight: 6,
      arbitrary: fc.constantFrom(
        { type: 'VFIO_MIG_GET_PRECOPY_INFO' as const },
        { type: 'DATA_FD_READ' as const },
        { type: 'DATA_FD_WRITE' as const },
        { type: 'GUEST_DIRTIES_DEVICE' as const },
        { type: 'GUEST_REINITS_DEVICE' as const },
      ),
    },
  );

  it('never throw, stay inside the feature set, keep sessions and the initial-bytes rule', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...FEATURE_SETS),
        fc.boolean(),
        fc.integer({ min: 1, max: 3 }),
        fc.array(eventArb, { maxLength: 40 }),
        (set, v2, maxBytes, events) => {
          const d = device({ features: set, precopyInfoV2: v2, maxBytes });
          const allowed = statesOf(set);
          for (const e of events) {
            const before = ctx(d);
            d.send(e);
            const s = value(d);
            const c = ctx(d);
            expect(allowed).toContain(s);
            // a saving session exactly in the saving group, a resuming session exactly in RESUMING
            expect(c.session === 'saving').toBe(inSavingGroup(s));
            expect(c.session === 'resuming').toBe(s === 'RESUMING');
            expect(c.initialBytes).toBeLessThanOrEqual(maxBytes);
            expect(c.dirtyBytes).toBeLessThanOrEqual(maxBytes);
            // initial bytes never rise, except by REINIT (v2 only) or a freshly opened saving session
            if (c.initialBytes > before.initialBytes) {
              const last = c.last;
              const path = e.type === 'SET_STATE' && last?.op === 'SET_STATE' ? last.path : [];
              const opened = path.some((x, i) => i > 0 && sessionEffect(path[i - 1]!, x) === 'opens-saving');
              const reinit = e.type === 'GUEST_REINITS_DEVICE' && c.precopyInfoV2;
              expect(opened || reinit).toBe(true);
            }
            if (c.last?.op === 'VFIO_MIG_GET_PRECOPY_INFO' && c.last.ok && c.last.reinit) expect(v2 && set.includes('PRE_COPY')).toBe(true);
          }
        },
      ),
      { numRuns: 400, seed: 2026 },
    );
  });
});

describe('the chart carries the kernel arcs', () => {
  type Def = { eventType: string; target?: { key: string }[]; meta?: { usedIn?: FeatureSet[] } };
  const arcDefs = (Object.values(vfioDeviceMachine.root.states) as unknown as { key: string; transitions: Map<string, Def[]> }[]).flatMap((n) =>
    (n.transitions.get('ARC') ?? []).filter((t) => t.meta?.usedIn).map((t) => ({ from: n.key, to: t.target![0]!.key, usedIn: t.meta!.usedIn! })),
  );

  it('one ARC transition per single-step arc of vfio_mig_get_next_state, used in exactly the feature sets whose arc list has it', () => {
    for (const set of FEATURE_SETS) {
      const inChart = arcDefs.filter((a) => a.usedIn.includes(set)).map((a) => `${a.from}>${a.to}`);
      expect(inChart, set).toEqual(arcsOf(set).map((a) => `${a.from}>${a.to}`));
    }
    expect(arcDefs).toHaveLength(18);
  });

  it('one SET_STATE is one macrostep that ends where setOutcome says, with the same context, for every state, target and fault', () => {
    const faults: (VfioFault | undefined)[] = [undefined, ...[0, 1, 2, 3].flatMap((atArc) => (['reached', 'ERROR'] as const).map((leaves) => ({ atArc, leaves })))];
    let cases = 0;
    for (const profile of [GENERIC_PROFILE, mttyProfile(2)]) {
      for (const set of FEATURE_SETS) {
        for (const from of statesOf(set)) {
          for (const target of [...VFIO_STATES, 8] as const) {
            for (const fault of faults) {
              const d = deviceIn(set, from, { profile: { ...profile, injectableFaults: true } });
              const before = ctx(d);
              d.send({ type: 'SET_STATE', target, ...(fault ? { fault } : {}) });
              const o = setOutcome(before, from, { target, fault });
              expect(value(d), `${from} -> ${target} ${JSON.stringify(fault)}`).toBe(o.final);
              expect(ctx(d)).toEqual({ ...before, ...o.patch, last: o.result });
              cases++;
            }
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(1000);
  });
});
