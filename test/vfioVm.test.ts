/**
 * The real kernel's VFIO migration uAPI, one boot of the VM that scripts/vfio-vm.sh builds (a Debian
 * 6.12 kernel, samples/vfio-mdev/mtty.c, drivers/vfio/vfio_main.c): a handful of observations that pin
 * what mtty and vfio_mig_get_next_state do. Without the built VM (or QEMU) the suite is skipped with a
 * one-line reason; in CI (CI set) that is a failure instead.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { type KernelRun, type StepRecord, runOnKernel, vmUnavailable } from '../src/kernel/index.js';

// enum vfio_device_mig_state
const STOP = 1;
const RUNNING = 2;
const STOP_COPY = 3;
const RESUMING = 4;
const PRE_COPY = 6;

const unavailable = vmUnavailable();
if (unavailable && !process.env['CI']) {
  console.warn(`test/vfioVm.test.ts: the real-kernel VFIO suite was SKIPPED: ${unavailable}`);
}

if (unavailable && process.env['CI']) {
  describe('real-kernel VFIO VM (CI)', () => {
    it('is built by scripts/setup.sh', () => {
      expect.fail(`the real-kernel VFIO VM cannot run in CI: ${unavailable}`);
    });
  });
}

describe.skipIf(Boolean(unavailable))('mtty on the real 6.12 kernel (one boot)', () => {
  let run: Promise<KernelRun>;
  beforeAll(() => {
    run = runOnKernel(
      {
        cases: [
          { name: 'features', steps: ['MIGRATION_FLAGS', 'DATA_SIZE'] },
          {
            name: 'save',
            steps: [
              'SET 6', // 1 RUNNING -> PRE_COPY
              'PRECOPY_INFO', // 2
              'READ 64', // 3
              'READ 64', // 4
              'SET 3', // 5 PRE_COPY -> PRE_COPY_P2P -> STOP_COPY
              'READ 1000', // 6
              'READ 1000', // 7
              'SET 6', // 8 STOP_COPY -> PRE_COPY: blocked
              'SET 8', // 9 not a state
            ],
          },
          {
            name: 'resume',
            steps: [
              'SET 1', // 1 RUNNING -> RUNNING_P2P -> STOP
              'SET 4', // 2 STOP -> RESUMING
              'WRITE 24 zero', // 3 less than the 96-byte image of an mtty-2
              'SET 1', // 4 RESUMING -> STOP: mtty_load_state refuses
            ],
          },
        ],
      },
      { timeoutMs: 45_000 }, // a request that hangs in the kernel fails the suite here, naming the step
    );
    run.catch(() => undefined); // reported by the tests that await it
  });
  const steps = async (name: string): Promise<readonly StepRecord[]> => {
    const c = (await run).cases.find((x) => x.name === name);
    if (!c) throw new Error(`no case ${name}`);
    return c.steps;
  };

  it('booted the 6.12 kernel, reset both mdevs for every case, and hit no WARN', async () => {
    const r = await run;
    expect(r.ready.kernel).toMatch(/^6\.12\./);
    expect(r.ready.devices).toBe(2);
    for (const c of r.cases) expect(c.start, c.name).toMatchObject({ ok: true, state: RUNNING });
    expect(r.end.tainted & 512, 'TAINT_WARN: a WARN_ON fired (e.g. in mtty_step_state)').toBe(0);
    console.info(
      `vfio VM: ${r.ready.kernel}, first result after ${r.timing.firstResultMs} ms, ${r.timing.totalMs} ms in all`,
    );
  });

  it('mtty advertises STOP_COPY|P2P|PRE_COPY and a 96-byte image', async () => {
    const [flags, size] = await steps('features');
    expect(flags).toMatchObject({ op: 'MIGRATION_FLAGS', ret: 0, flags: 7 });
    expect(size).toMatchObject({ op: 'DATA_SIZE', ret: 0, stop_copy_length: 96 });
  });

  it('RUNNING -> PRE_COPY returns a read-only fd holding the 24-byte header', async () => {
    const s = await steps('save');
    expect(s[0]).toMatchObject({ op: 'SET', arg: PRE_COPY, ret: 0, data_fd: 'new', fd_mode: 'r', state: PRE_COPY });
    expect(s[1]).toMatchObject({ op: 'PRECOPY_INFO', ret: 0, initial_bytes: 24, dirty_bytes: 0 });
    expect(s[2]).toMatchObject({ op: 'READ', ret: 24 });
    expect(s[3]).toMatchObject({ op: 'READ', ret: 0 });
  });

  it('PRE_COPY -> STOP_COPY keeps the precopy fd (data_fd -1) and appends the 72 port bytes', async () => {
    const s = await steps('save');
    expect(s[4]).toMatchObject({ op: 'SET', arg: STOP_COPY, ret: 0, data_fd: -1, state: STOP_COPY });
    expect(s[5]).toMatchObject({ op: 'READ', ret: 72, saved: 96 });
    expect(s[6]).toMatchObject({ op: 'READ', ret: 0 });
  });

  it('STOP_COPY -> PRE_COPY is refused with EINVAL and the state unchanged (no loop in vfio_mig_get_next_state)', async () => {
    const s = await steps('save');
    expect(s[7]).toMatchObject({ op: 'SET', arg: PRE_COPY, ret: -1, errno: 'EINVAL', state: STOP_COPY });
  });

  it('a state number >= VFIO_DEVICE_STATE_NR is refused with EINVAL', async () => {
    const s = await steps('save');
    expect(s[8]).toMatchObject({ op: 'SET', arg: 8, ret: -1, errno: 'EINVAL', state: STOP_COPY });
  });

  it('STOP -> RESUMING returns a write-only fd; RESUMING -> STOP with too few bytes is EINVAL and stays RESUMING', async () => {
    const s = await steps('resume');
    expect(s[0]).toMatchObject({ op: 'SET', arg: STOP, ret: 0, data_fd: -1, state: STOP });
    expect(s[1]).toMatchObject({ op: 'SET', arg: RESUMING, ret: 0, data_fd: 'new', fd_mode: 'w', state: RESUMING });
    expect(s[2]).toMatchObject({ op: 'WRITE', len: 24, ret: -1, errno: 'EFAULT' }); // completes a header with a bad magic
    expect(s[3]).toMatchObject({ op: 'SET', arg: STOP, ret: -1, errno: 'EINVAL', state: RESUMING });
  });
});
