/**
 * Variants of the virtio-net machines, each made with `provide()` — the charts stay as they are, one
 * named guard or action is swapped. One is a design alternative from the review thread (the "truly
 * iterative" route); the others are deliberately broken designs, each the smallest change that should
 * break one claim of src/properties/virtioNet.ts, so the tests can show that every claim is able to fail.
 *
 * @example
 *   import { VIRTIO_NET_VARIANTS } from './virtioNetVariants.js';
 *   const v = VIRTIO_NET_VARIANTS.find((x) => x.name === 'keeps-early-vhost')!;
 *   v.breaks; // => 'NoStaleVhostBind'
 */
import { type AnyStateMachine, assign, enqueueActions } from 'xstate';
import { MAIN_STREAM_MESSAGES, type MainStreamMessage } from './migrationMessages.js';
import { virtioNetDestinationMachine } from './virtioNetDestination.js';
import { type VirtioNetDesign, sameValues } from './virtioNetMessages.js';
import { virtioNetSourceMachine } from './virtioNetSource.js';

export interface VirtioNetVariant {
  readonly name: string;
  /** What differs, in one sentence. */
  readonly description: string;
  /** Which side's machine it replaces. */
  readonly side: 'source' | 'destination';
  readonly machine: AnyStateMachine;
  /** The claim it should break (or, for a design alternative, the one it is checked against). */
  readonly breaks: string;
  /** The scenario that shows it: the design, and where its feature is on. */
  readonly scenario: { readonly design: VirtioNetDesign; readonly enabledOn: 'both' | 'source' };
}

/** The review thread's "truly iterative" route: save_live_iterate re-sends whatever changed during precopy. */
export const trulyIterativeSource = virtioNetSourceMachine.provide({ guards: { resendsDuringPrecopy: () => true } });

export const VIRTIO_NET_VARIANTS: readonly VirtioNetVariant[] = [
  {
    name: 'truly-iterative',
    description: 'iterative: save_live_iterate re-sends the state in every precopy pass in which it may have changed',
    side: 'source',
    machine: trulyIterativeSource,
    breaks: 'BoundedResends',
    scenario: { design: 'iterative', enabledOn: 'both' },
  },
  {
    name: 'delta-misses-datapath',
    description: 'early-mig: the stop-and-copy comparison leaves out the datapath group (a tracked field forgotten)',
    side: 'source',
    machine: virtioNetSourceMachine.provide({
      guards: { earlyStateStillCurrent: ({ context }) => context.design === 'early-mig' && context.enabled && sameValues(context.values, context.sent, ['control']) },
    }),
    breaks: 'NoStaleDeviceState',
    scenario: { design: 'early-mig', enabledOn: 'both' },
  },
  {
    name: 'dirty-misses-datapath',
    description: 'iterative: a guest change of the datapath group does not set the "may have changed" flag',
    side: 'source',
    machine: virtioNetSourceMachine.provide({
      actions: {
        trackChange: assign(({ context, event }) =>
          context.design === 'iterative' && context.enabled && event.type === 'GUEST_SETS_FIELD' && event.group !== 'datapath' ? { mayHaveChanged: true } : {},
        ),
      },
    }),
    breaks: 'NoStaleDeviceState',
    scenario: { design: 'iterative', enabledOn: 'both' },
  },
  {
    name: 'never-resyncs',
    description: 'early-mig: the source always sends the full section (delta detection that never finds "no delta")',
    side: 'source',
    machine: virtioNetSourceMachine.provide({ guards: { earlyStateStillCurrent: () => false } }),
    breaks: 'FastPathReachable',
    scenario: { design: 'early-mig', enabledOn: 'both' },
  },
  {
    name: 'keeps-early-vhost',
    description: 'early-mig: a full reload does not stop the early-started vhost, which is later bound as it is',
    side: 'destination',
    machine: virtioNetDestinationMachine.provide({ actions: { stopEarlyVhost: () => {} } }),
    breaks: 'NoStaleVhostBind',
    scenario: { design: 'early-mig', enabledOn: 'both' },
  },
  {
    name: 'fatal-vhost-failure',
    description: 'early-mig: a failed early vhost start fails the load',
    side: 'destination',
    machine: virtioNetDestinationMachine.provide({ guards: { vhostFailureIsFatal: () => true } }),
    breaks: 'EarlyVhostFailureNotFatal',
    scenario: { design: 'early-mig', enabledOn: 'both' },
  },
  {
    name: 'skips-unknown-sections',
    description: 'a loader that drops a section it has no handler for instead of failing (QEMU does not)',
    side: 'destination',
    machine: virtioNetDestinationMachine.provide({ guards: { unknownSectionsFail: () => false } }),
    breaks: 'ProvisionalStateConfirmed',
    scenario: { design: 'early-mig', enabledOn: 'source' },
  },
  {
    name: 'swallows-load-error',
    description: 'a virtio-net load error that is only logged: the load goes on and the rest of the stream is passed on',
    side: 'destination',
    machine: virtioNetDestinationMachine.provide({
      actions: {
        failIncomingMigration: () => {},
        afterLoadError: enqueueActions(({ event, enqueue }) => {
          if ((MAIN_STREAM_MESSAGES as readonly string[]).includes(event.type)) enqueue.emit(event as MainStreamMessage);
        }),
      },
    }),
    breaks: 'VirtioNetFailureIsClean',
    scenario: { design: 'early-mig', enabledOn: 'source' },
  },
  {
    name: 'resync-waits-for-vhost',
    description: 'early-mig: the resync is applied only once the early vhost runs, and waits forever after it failed',
    side: 'destination',
    machine: virtioNetDestinationMachine.provide({ guards: { readyForResync: ({ context }) => !context.vhost || context.vhostPhase === 'early' } }),
    breaks: 'MigrationEnds',
    scenario: { design: 'early-mig', enabledOn: 'both' },
  },
];
