/**
 * The benchmark system: K VFIO devices with every feature and a one-unit byte domain, driven as in
 * src/systems/vfioDevices.ts; and the same devices built as one XState parallel machine, for xstate/graph.
 */
import { type AnyStateMachine, type EventObject, assign, initialTransition, setup, transition } from 'xstate';
import { VFIO_STATES, type VfioState } from '../machines/vfioArcs.js';
import { type VfioDeviceContext, type VfioDeviceInput, vfioDeviceMachine } from '../machines/vfioDevice.js';
import type { SystemSpec } from '../src/explorer/index.js';
import { driverEvents, vfioDevicesSystem } from '../src/systems/vfioDevices.js';

export const BENCH_INPUT: VfioDeviceInput = { features: 'STOP_COPY|P2P|PRE_COPY', maxBytes: 1 };
export const BENCH_EVENTS = driverEvents(BENCH_INPUT.features);

export function deviceSystem(k: number, symmetry = false): SystemSpec {
  const { invariants: _unused, ...spec } = vfioDevicesSystem({ devices: k, features: BENCH_INPUT.features, symmetry });
  return spec; // the benchmark measures the search itself, without invariants
}

/**
 * The same K devices as one XState machine with K parallel regions. Region i has the device's eight
 * states; its context slot holds device i's context; an event `d{i}.{j}` applies environment sample j to
 * device i through the device machine's own transition(), and the region follows to the resulting state.
 */
export function parallelDevices(k: number): { machine: AnyStateMachine; events: EventObject[] } {
  type Ctx = { devs: VfioDeviceContext[] };
  const stepCache = new WeakMap<object, Map<string, { value: VfioState; context: VfioDeviceContext }>>();
  const next = (ctx: Ctx, i: number, from: VfioState, j: number) => {
    let m = stepCache.get(ctx);
    if (!m) stepCache.set(ctx, (m = new Map()));
    const key = `${i}.${j}.${from}`;
    let r = m.get(key);
    if (!r) {
      const snap = vfioDeviceMachine.resolveState({ value: from, context: ctx.devs[i]! });
      const [n] = transition(vfioDeviceMachine, snap, BENCH_EVENTS[j] as never);
      r = { value: n.value as VfioState, context: n.context };
      m.set(key, r);
    }
    return r;
  };
  const s = setup({ types: { context: {} as Ctx } });
  const [first] = initialTransition(vfioDeviceMachine, BENCH_INPUT);
  const regions: Record<string, unknown> = {};
  for (let i = 0; i < k; i++) {
    const states: Record<string, unknown> = {};
    for (const from of VFIO_STATES) {
      const on: Record<string, unknown> = {};
      BENCH_EVENTS.forEach((_, j) => {
        on[`d${i}.${j}`] = VFIO_STATES.map((to) => ({
          guard: ({ context }: { context: Ctx }) => next(context, i, from, j).value === to,
          target: to,
          actions: assign(({ context }: { context: Ctx }) => {
            const devs = context.devs.slice();
            devs[i] = next(context, i, from, j).context;
            return { devs };
          }),
        }));
      });
      states[from] = { on };
    }
    regions[`dev${i}`] = { initial: 'RUNNING', states };
  }
  const machine = s.createMachine({
    id: 'parallelDevices',
    type: 'parallel',
    context: { devs: Array.from({ length: k }, () => first.context as VfioDeviceContext) },
    states: regions as never,
  });
  const events = Array.from({ length: k }, (_, i) => BENCH_EVENTS.map((_, j) => ({ type: `d${i}.${j}` }))).flat();
  return { machine: machine as unknown as AnyStateMachine, events };
}
