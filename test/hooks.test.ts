/**
 * Host hooks (issue 17, part 1): an orchestrator provides `deviceRequest` / `dataFdOperation` and gets
 * every call with the model's prediction, while the model predicts exactly what it predicts without them;
 * and examples/shadow-device.ts, an orchestrator built on them, catches a device that diverges.
 */
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { type DataFdOperationHook, type DeviceRequestHook, type VfioDeviceEvent, vfioDeviceMachine } from '../machines/vfioDevice.js';
import type { VfioState } from '../machines/vfioArcs.js';
import { Divergence, ShadowDevice, type VfioBackend, sourceSequence } from '../examples/shadow-device.js';

const EVENTS: VfioDeviceEvent[] = [
  { type: 'SET_STATE', target: 'PRE_COPY' },
  { type: 'VFIO_MIG_GET_PRECOPY_INFO' },
  { type: 'DATA_FD_READ' },
  { type: 'DATA_FD_READ' },
  { type: 'SET_STATE', target: 'STOP_COPY' },
  { type: 'DATA_FD_READ' },
  { type: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE' },
  { type: 'SET_STATE', target: 9 },
  { type: 'DATA_FD_CLOSE' },
  { type: 'VFIO_DEVICE_RESET' },
  { type: 'SET_STATE', target: 'RESUMING' },
  { type: 'DATA_FD_WRITE' },
];

describe('host hooks', () => {
  it('see every call with the predicted result, and leave every snapshot as the model has it', () => {
    const calls: (DeviceRequestHook | DataFdOperationHook)[] = [];
    const hooked = vfioDeviceMachine.provide({ actions: { deviceRequest: (_, p) => calls.push(p), dataFdOperation: (_, p) => calls.push(p) } });
    const input = { features: 'STOP_COPY|P2P|PRE_COPY' as const };
    const plain = createActor(vfioDeviceMachine, { input }).start();
    const withHooks = createActor(hooked, { input }).start();
    for (const e of EVENTS) {
      plain.send(e);
      withHooks.send(e);
      expect(withHooks.getSnapshot().value).toEqual(plain.getSnapshot().value);
      expect(withHooks.getSnapshot().context).toEqual(plain.getSnapshot().context);
      expect(calls.at(-1)!.result).toEqual(plain.getSnapshot().context.last);
    }
    expect(calls).toHaveLength(EVENTS.length);
    expect(calls.map((c) => ('request' in c ? c.request.type : c.operation.type))).toEqual(EVENTS.map((e) => e.type));
    expect(calls[0]).toMatchObject({ from: 'RUNNING', result: { ok: true, path: ['RUNNING', 'PRE_COPY'], dataFd: 'saving' } });
    expect(calls[7]).toMatchObject({ from: 'STOP_COPY', result: { ok: false, errno: 'EINVAL' } });
  });
});

describe('examples/shadow-device.ts', () => {
  const backend = (bug: boolean): VfioBackend => {
    let state: VfioState = 'RUNNING';
    return {
      set(target) {
        // the bug: a new saving data_fd on PRE_COPY_P2P -> STOP_COPY (the uAPI hands out none there)
        const fd = (state === 'RUNNING' && target === 'PRE_COPY') || (bug && state === 'PRE_COPY_P2P' && target === 'STOP_COPY') ? 'saving' : null;
        state = target;
        return { ok: true, state, dataFd: fd };
      },
    };
  };
  it('drives a conforming device through the source sequence', () => {
    expect(sourceSequence(new ShadowDevice(backend(false), { features: 'STOP_COPY|P2P|PRE_COPY' }))).toEqual(['PRE_COPY', 'PRE_COPY_P2P', 'STOP_COPY', 'STOP']);
  });
  it('stops at the call where a buggy device diverges, with both answers', () => {
    expect(() => sourceSequence(new ShadowDevice(backend(true), { features: 'STOP_COPY|P2P|PRE_COPY' }))).toThrow(Divergence);
    expect(() => sourceSequence(new ShadowDevice(backend(true), { features: 'STOP_COPY|P2P|PRE_COPY' }))).toThrow(/SET STOP_COPY: the device says .*"dataFd":"saving".*the model .*"dataFd":null/);
  });
});
