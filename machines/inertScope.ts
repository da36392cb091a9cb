/**
 * An inert actor scope for `machine`, as XState's transition() helper builds one, but made once: its
 * actor is created with the given input (so the context factory runs once, and succeeds) and never
 * started; executed actions go to `sink`. `machine.transition(snapshot, event, scope)` with it is a pure
 * step — the explorer steps every component this way, and QEMU's device calls (./qemuVfio.ts) too.
 */
import { type AnyActorScope, type AnyStateMachine, createActor } from 'xstate';

export function inertScope(machine: AnyStateMachine, input: unknown, sink?: { type: string }[]): AnyActorScope {
  const self = createActor(machine, { input } as never);
  return {
    self,
    defer: () => {},
    id: '',
    logger: () => {},
    sessionId: '',
    stopChild: () => {},
    system: self.system,
    emit: () => {},
    actionExecutor: (a: { type: string }) => void sink?.push(a),
  } as unknown as AnyActorScope;
}
