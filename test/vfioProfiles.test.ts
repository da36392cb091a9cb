/**
 * Driver profiles (machines/vfioProfiles.ts): the mtty profile predicts what samples/vfio-mdev/mtty.c
 * does (each figure below was measured on the real driver; test/vfioKernel.test.ts checks them all
 * again against the kernel), and the generic profile keeps the uAPI's own behaviour.
 */
import { createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import { type VfioDeviceEvent, vfioDeviceMachine } from '../machines/vfioDevice.js';
import { GENERIC_PROFILE, MTTY_HEADER_BYTES, mttyProfile } from '../machines/vfioProfiles.js';

function device(profile = mttyProfile(2)) {
  const a = createActor(vfioDeviceMachine, { input: { features: 'STOP_COPY|P2P|PRE_COPY', profile } }).start();
  return (e: VfioDeviceEvent) => {
    a.send(e);
    const s = a.getSnapshot();
    return { state: s.value, ...s.context.last };
  };
}

describe('the mtty profile', () => {
  it('image sizes per port count: a 24-byte header and 36 bytes per port', () => {
    expect(mttyProfile(2).resuming!.imageBytes).toBe(96);
    expect(mttyProfile(1).resuming!.imageBytes).toBe(60);
    expect(MTTY_HEADER_BYTES).toBe(24);
  });

  it('precopy holds only the header, drained by reads to 0 (no ENOMSG); the ports follow on the same fd', () => {
    const d = device();
    expect(d({ type: 'SET_STATE', target: 'PRE_COPY' })).toMatchObject({ ok: true, dataFd: 'saving', path: ['RUNNING', 'PRE_COPY'] });
    expect(d({ type: 'VFIO_MIG_GET_PRECOPY_INFO' })).toMatchObject({ ok: true, initialBytes: 24, dirtyBytes: 0, reinit: false });
    expect(d({ type: 'DATA_FD_READ' })).toMatchObject({ ok: true, bytes: 24 });
    expect(d({ type: 'DATA_FD_READ' })).toMatchObject({ ok: true, bytes: 0 });
    expect(d({ type: 'VFIO_MIG_GET_PRECOPY_INFO' })).toMatchObject({ ok: true, initialBytes: 0 });
    expect(d({ type: 'GUEST_DIRTIES_DEVICE' }).state).toBe('PRE_COPY'); // dirty bytes stay 0
    expect(d({ type: 'VFIO_MIG_GET_PRECOPY_INFO' })).toMatchObject({ dirtyBytes: 0 });
    expect(d({ type: 'SET_STATE', target: 'STOP_COPY' })).toMatchObject({ ok: true, dataFd: null, path: ['PRE_COPY', 'PRE_COPY_P2P', 'STOP_COPY'] });
    expect([1, 2, 3, 4].map(() => d({ type: 'DATA_FD_READ' }))).toMatchObject([{ bytes: 32 }, { bytes: 32 }, { bytes: 8 }, { bytes: 0 }]);
    expect(d({ type: 'VFIO_MIG_GET_PRECOPY_INFO' })).toMatchObject({ ok: false, errno: 'EINVAL' });
    expect(d({ type: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE' })).toMatchObject({ ok: true, stopCopyLength: 96 });
    // STOP_COPY -> STOP disables the fd: reads answer ENODEV, not EBADF; after close(2), EBADF
    expect(d({ type: 'SET_STATE', target: 'STOP' })).toMatchObject({ ok: true, dataFd: null });
    expect(d({ type: 'DATA_FD_READ' })).toMatchObject({ ok: false, errno: 'ENODEV' });
    expect(d({ type: 'DATA_FD_CLOSE' })).toMatchObject({ ok: true });
    expect(d({ type: 'DATA_FD_READ' })).toMatchObject({ ok: false, errno: 'EBADF' });
    expect(d({ type: 'DATA_FD_CLOSE' })).toMatchObject({ ok: false, errno: 'EBADF' });
  });

  it('resuming: ENOMEM past the image, EFAULT on a bad header whose bytes still count, EINVAL when short', () => {
    const d = device();
    d({ type: 'SET_STATE', target: 'STOP' });
    expect(d({ type: 'SET_STATE', target: 'RESUMING' })).toMatchObject({ ok: true, dataFd: 'resuming' });
    expect(d({ type: 'DATA_FD_READ' })).toMatchObject({ ok: false, errno: 'EBADF' }); // a write-only fd
    expect(d({ type: 'VFIO_MIG_GET_PRECOPY_INFO' })).toMatchObject({ ok: false, errno: 'ENOTTY' });
    expect(d({ type: 'DATA_FD_WRITE', data: 'valid' })).toMatchObject({ ok: true, bytes: 32 });
    // too few bytes: the load fails and the device stays in RESUMING, also on a longer path
    expect(d({ type: 'SET_STATE', target: 'RUNNING' })).toMatchObject({ state: 'RESUMING', ok: false, errno: 'EINVAL', path: ['RESUMING'] });
    expect(d({ type: 'SET_STATE', target: 'RESUMING' })).toMatchObject({ ok: true, dataFd: null, path: ['RESUMING'] });
    d({ type: 'DATA_FD_WRITE', data: 'valid' });
    d({ type: 'DATA_FD_WRITE', data: 'valid' });
    expect(d({ type: 'DATA_FD_WRITE', data: 'valid' })).toMatchObject({ ok: false, errno: 'ENOMEM' });
    expect(d({ type: 'SET_STATE', target: 'STOP' })).toMatchObject({ state: 'STOP', ok: true });
    expect(d({ type: 'DATA_FD_WRITE', data: 'valid' })).toMatchObject({ ok: false, errno: 'ENODEV' });
    // the quirk: a corrupt header is refused with EFAULT, its bytes count, and the image then loads
    d({ type: 'SET_STATE', target: 'RESUMING' });
    expect(d({ type: 'DATA_FD_WRITE', data: 'corrupt' })).toMatchObject({ ok: false, errno: 'EFAULT' });
    expect(d({ type: 'DATA_FD_WRITE', data: 'corrupt' })).toMatchObject({ ok: true, bytes: 32 });
    expect(d({ type: 'DATA_FD_WRITE', data: 'corrupt' })).toMatchObject({ ok: true, bytes: 32 });
    expect(d({ type: 'SET_STATE', target: 'STOP' })).toMatchObject({ state: 'STOP', ok: true });
  });

  it('reset: RUNNING, its fds disabled (ENODEV), and the opt-in has no effect on a 6.12 driver', () => {
    const d = device();
    d({ type: 'SET_STATE', target: 'PRE_COPY' });
    expect(d({ type: 'VFIO_DEVICE_RESET' })).toMatchObject({ state: 'RUNNING', ok: true });
    expect(d({ type: 'DATA_FD_READ' })).toMatchObject({ ok: false, errno: 'ENODEV' });
    const v2 = createActor(vfioDeviceMachine, { input: { features: 'STOP_COPY|P2P|PRE_COPY', profile: mttyProfile(), precopyInfoV2: true } }).start();
    expect(v2.getSnapshot().context.precopyInfoV2).toBe(false);
  });

  it('faults cannot be injected into a real driver: the SET runs as asked', () => {
    const d = device();
    expect(d({ type: 'SET_STATE', target: 'STOP', fault: { atArc: 0, leaves: 'ERROR' } })).toMatchObject({ state: 'STOP', ok: true });
  });
});

describe('the generic profile', () => {
  it('keeps the uAPI behaviour: ENOMSG at the end of precopy data, EBADF without a session, no resuming checks', () => {
    const d = device(GENERIC_PROFILE);
    d({ type: 'SET_STATE', target: 'PRE_COPY' });
    expect(d({ type: 'DATA_FD_READ' })).toMatchObject({ ok: true, bytes: 1 });
    expect(d({ type: 'DATA_FD_READ' })).toMatchObject({ ok: false, errno: 'ENOMSG' });
    d({ type: 'SET_STATE', target: 'RUNNING' });
    expect(d({ type: 'DATA_FD_READ' })).toMatchObject({ ok: false, errno: 'EBADF' });
    d({ type: 'SET_STATE', target: 'RESUMING' });
    expect(d({ type: 'SET_STATE', target: 'RUNNING' })).toMatchObject({ state: 'RUNNING', ok: true });
    expect(d({ type: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE' })).toMatchObject({ stopCopyLength: 2 });
  });
});
