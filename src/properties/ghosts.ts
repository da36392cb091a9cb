/**
 * The observers of the checked migration systems: the ghost state properties need — which generation of
 * initial data each device is on and which one the destination approved, whether an ack was outstanding
 * at the switchover stop, whether management cancelled (or the stream broke) after the final state — kept
 * out of the machines an orchestrator imports. Each is the implementation of one of the machines' hook
 * actions (no-ops there), provided into the machines the explorer runs (`withObservers`). A ghost at its
 * initial value is left absent, so the checked machines have exactly the states of the ghost-carrying
 * machines they replace (the scenario manifest pins the counts).
 */
import { type AnyStateMachine, assign } from 'xstate';
import { type CheckedDestinationContext, type QemuDestinationEvent } from '../../machines/qemuDestination.js';
import { type CheckedSourceContext, type QemuSourceEvent, ackOutstanding } from '../../machines/qemuSource.js';

/** All-equal-to-`none` arrays are absent. */
const normal = (xs: readonly number[], none: number): readonly number[] | undefined => (xs.every((x) => x === none) ? undefined : xs);

type SrcArgs = { context: CheckedSourceContext; event: QemuSourceEvent };
type DstArgs = { context: CheckedDestinationContext; event: QemuDestinationEvent };

const sourceObservers = {
  ghostSwitchoverStop: assign(({ context }: SrcArgs) => ({ stoppedWithAckPending: ackOutstanding(context) ? (true as const) : undefined })),
  ghostNewAttempt: assign(() => ({ stoppedWithAckPending: undefined })),
  noteInterventionAfterEof: assign(() => ({ intervenedAfterEof: true as const })),
  /**
   * A new generation of initial data — unless the previous one was never touched (nothing read of it,
   * nothing reported): then the new data simply replaces it and nobody could tell them apart.
   */
  ghostReconfigure: assign(({ context, event }: SrcArgs) => {
    if (event.type !== 'GUEST_REINITS_DEVICE') return {};
    const before = context.devs[event.device]!;
    const untouched = before.context.reinitPending && before.context.initialBytes === before.context.maxBytes;
    if (untouched) return {};
    const gen = [...(context.gen ?? context.devs.map(() => 0))];
    gen[event.device] = ((gen[event.device] ?? 0) + 1) % 4;
    return { gen: normal(gen, 0) };
  }),
};

const destinationObservers = {
  ghostApprove: assign(({ context, event }: DstArgs) => {
    if (event.type !== 'VFIO_MIG_FLAG_DEV_INIT_DATA_SENT') return {};
    const approved = [...(context.approvedGen ?? context.devs.map(() => -1))];
    approved[event.device] = event.gen;
    return { approvedGen: normal(approved, -1) };
  }),
  ghostNewProcess: assign(() => ({ approvedGen: undefined })),
};

/** A source or destination machine (or a provide() of one) with the observers in place. */
export function withObservers(machine: AnyStateMachine, side: 'source' | 'destination'): AnyStateMachine {
  const actions = side === 'source' ? sourceObservers : destinationObservers;
  return machine.provide({ actions } as never) as AnyStateMachine;
}

/** Ghost readers with their initial values. */
export const genOf = (c: CheckedSourceContext, i: number): number => c.gen?.[i] ?? 0;
export const approvedGenOf = (d: CheckedDestinationContext, i: number): number => d.approvedGen?.[i] ?? -1;
