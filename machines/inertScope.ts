/**
 * An inert actor scope for `machine`, as XState's transition() helper builds one, but made once: its
 * actor is created with the given input (so the context factory runs once, and succeeds) and never
 * started; executed actions go to `sink`. `machine.transition(snapshot, event, scope)` with it is a pure
 * step — the explorer steps every component this way, and QEMU's device calls (./qemuVfio.ts) too.
 * `onMicrostep`, when given, receives the transitions each microstep takes (XState's `@xstate.microstep`
 * inspection event), raised events' included.
 */
import { type AnyActorScope, type AnyStateMachine, createActor } from 'xstate';

export function inertScope(
  machine: AnyStateMachine,
  input: unknown,
  sink?: { type: string }[],
  onMicrostep?: (transitions: readonly unknown[]) => void,
): AnyActorScope {
  const self = createActor(machine, { input } as never);
  let system: unknown = self.system;
  if (onMicrostep) {
    const wrapped = Object.create(self.system) as { _sendInspectionEvent: (e: unknown) => void };
    wrapped._sendInspectionEvent = (e: unknown) => {
      const ev = e as { type?: string; _transitions?: readonly unknown[] };
      if (ev.type === '@xstate.microstep' && ev._transitions) onMicrostep(ev._transitions);
    };
    system = wrapped;
  }
  return {
    self,
    defer: () => {},
    id: '',
    logger: () => {},
    sessionId: '',
    stopChild: () => {},
    system,
    emit: () => {},
    actionExecutor: (a: { type: string }) => void sink?.push(a),
  } as unknown as AnyActorScope;
}
