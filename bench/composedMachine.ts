/**
 * A system of the explorer (components, channels, environment) as one XState machine, so that
 * xstate/graph's getAdjacencyMap can explore the same state space: the context holds every component's
 * state value and context and every channel's queue; an event `ENV` applies environment sample j to its
 * component, `DELIVER` hands channel k's head to its receiver. The semantics follow the explorer's
 * (src/explorer/system.ts): a step is enabled only if the component can take the event (`can`) and every
 * message it emits fits its channel; a message its receiver cannot take blocks the channel; emitted
 * observations (SystemSpec.observations) go nowhere. Each component steps through one reused inert scope
 * (the fast path XState's own helper does not take), so the comparison measures the searches, not the
 * helper's throw-away actors.
 */
import { type AnyStateMachine, type EventObject, assign, createMachine, initialTransition } from 'xstate';
import { inertScope } from '../machines/inertScope.js';
import type { SystemSpec } from '../src/explorer/index.js';

interface Local {
  readonly value: unknown;
  readonly context: unknown;
  readonly status: string;
}
interface Ctx {
  readonly s: readonly Local[];
  readonly q: readonly (readonly EventObject[])[];
}

export function composedMachine(spec: SystemSpec): { machine: AnyStateMachine; events: EventObject[] } {
  const comps = spec.components;
  const chans = spec.channels ?? [];
  const outputs = new Set(spec.observations ?? []);
  const sinks = comps.map(() => [] as { type: string; params?: unknown }[]);
  const scopes = comps.map((c, i) => inertScope(c.machine, c.input, sinks[i]));
  const route = (from: string, type: string) => {
    let k = chans.findIndex((c) => c.from === from && c.messages?.includes(type));
    if (k < 0) k = chans.findIndex((c) => c.from === from && c.messages === undefined);
    return k;
  };
  const initial: Ctx = {
    s: comps.map((c) => {
      const [snap] = initialTransition(c.machine, c.input as never);
      return { value: snap.value, context: snap.context, status: snap.status };
    }),
    q: chans.map(() => []),
  };
  /** Component i takes `event`; null when the step is not enabled. */
  const step = (ctx: Ctx, i: number, event: EventObject, dequeue: number): Ctx | null => {
    const c = comps[i]!;
    const local = ctx.s[i]!;
    if (local.status !== 'active') return null;
    const snap = c.machine.resolveState({ value: local.value, context: local.context } as never);
    if (!snap.can(event)) return null;
    sinks[i]!.length = 0;
    const next = c.machine.transition(snap, event, scopes[i]!);
    const q = ctx.q.map((x, k) => (k === dequeue ? x.slice(1) : x));
    for (const a of sinks[i]!) {
      if (a.type !== 'xstate.emit') continue;
      const e = (a.params as { event: EventObject }).event;
      if (outputs.has(e.type)) continue;
      const k = route(c.name, e.type);
      if (k < 0) throw new Error(`${c.name} emitted '${e.type}' but no channel carries it`);
      if (q[k]!.length >= chans[k]!.capacity) return null; // channel full: not enabled
      q[k] = [...q[k]!, e];
    }
    const s = [...ctx.s];
    s[i] = { value: next.value, context: next.context, status: next.status };
    return { s, q };
  };
  const env = spec.environment ?? {};
  const events: EventObject[] = [];
  comps.forEach((c, i) => (env[c.name] ?? []).forEach((_, j) => events.push({ type: 'ENV', c: i, j } as EventObject)));
  chans.forEach((_, k) => events.push({ type: 'DELIVER', k } as EventObject));
  const machine = createMachine({
    id: 'composed',
    context: initial,
    on: {
      ENV: {
        actions: assign(({ context, event }) => {
          const { c, j } = event as unknown as { c: number; j: number };
          const e = env[comps[c]!.name]![j]!;
          return step(context as Ctx, c, e, -1) ?? (context as Ctx);
        }),
      },
      DELIVER: {
        actions: assign(({ context, event }) => {
          const { k } = event as unknown as { k: number };
          const ctx = context as Ctx;
          const head = ctx.q[k]![0];
          if (!head) return ctx;
          const to = comps.findIndex((c) => c.name === chans[k]!.to);
          return step(ctx, to, head, k) ?? ctx;
        }),
      },
    },
  });
  return { machine: machine as unknown as AnyStateMachine, events };
}
