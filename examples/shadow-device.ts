/**
 * An orchestrator's shadow of a real VFIO device: every call goes to the device (the `VfioBackend` you
 * implement with the real ioctls) and, through the model's host hooks, the model predicts what it must
 * return; the first difference stops the migration step with both answers. This is how an orchestrator
 * catches a driver that leaves its state machine (or its own bug) at the call that shows it.
 *
 *   npx tsx examples/shadow-device.ts   (or build and run dist/examples/shadow-device.js)
 */
import { type Actor, createActor } from 'xstate';
import { type DeviceRequestHook, type VfioDeviceInput, type VfioResult, vfioDeviceMachine } from 'migration-statecharts/machines/vfio-device';
import type { VfioState } from 'migration-statecharts/machines/vfio-arcs';

/** What the real device answered to a SET: the state it is in now, ok or errno, a data_fd kind if one came back. */
export interface BackendSetResult {
  readonly ok: boolean;
  readonly errno?: string;
  readonly state: VfioState;
  readonly dataFd: 'saving' | 'resuming' | null;
}

/** The real device: implement this with VFIO_DEVICE_FEATURE ioctls (here: an in-memory stand-in). */
export interface VfioBackend {
  set(target: VfioState): BackendSetResult;
}

export class Divergence extends Error {
  override readonly name = 'Divergence';
}

/** Drives `backend` and a model of it side by side; `set` throws Divergence when they disagree. */
export class ShadowDevice {
  private predicted: VfioResult | null = null;
  private readonly model: Actor<typeof vfioDeviceMachine>;

  constructor(
    private readonly backend: VfioBackend,
    input: VfioDeviceInput,
  ) {
    const machine = vfioDeviceMachine.provide({
      actions: {
        // the host hook: the model's prediction for the call just made (bookkeeping already done)
        deviceRequest: (_, params: DeviceRequestHook) => {
          this.predicted = params.result;
        },
      },
    });
    this.model = createActor(machine, { input }).start();
  }

  /** One SET on the device and in the model; returns the device's answer when they agree. */
  set(target: VfioState): BackendSetResult {
    const real = this.backend.set(target);
    this.model.send({ type: 'SET_STATE', target });
    const want = this.predicted;
    const state = this.model.getSnapshot().value as VfioState;
    if (!want || want.op !== 'SET_STATE') throw new Divergence('the model made no prediction for SET_STATE');
    const wantErrno = want.ok ? undefined : want.errno;
    const wantFd = want.ok ? want.dataFd : null;
    if (real.ok !== want.ok || real.errno !== wantErrno || real.state !== state || real.dataFd !== wantFd) {
      throw new Divergence(
        `SET ${target}: the device says ${JSON.stringify(real)}, the model ${JSON.stringify({ ok: want.ok, errno: wantErrno, state, dataFd: wantFd })}`,
      );
    }
    return real;
  }
}

/** A migration's source side, device by device: precopy, the stop, the final state, and the stop after. */
export function sourceSequence(dev: ShadowDevice): VfioState[] {
  const seen: VfioState[] = [];
  for (const target of ['PRE_COPY', 'PRE_COPY_P2P', 'STOP_COPY', 'STOP'] as const) seen.push(dev.set(target).state);
  return seen;
}

// Run directly: an in-memory backend that follows the uAPI for these four SETs.
if (import.meta.url === `file://${process.argv[1]}`) {
  let state: VfioState = 'RUNNING';
  const fake: VfioBackend = {
    set(target) {
      const dataFd = (state === 'RUNNING' && target === 'PRE_COPY') || (state === 'STOP' && target === 'STOP_COPY') ? 'saving' : null;
      state = target;
      return { ok: true, state, dataFd };
    },
  };
  console.log(sourceSequence(new ShadowDevice(fake, { features: 'STOP_COPY|P2P|PRE_COPY' })).join(' -> '));
}
