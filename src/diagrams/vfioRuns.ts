/**
 * Example runs of the VFIO device, found by the explorer: each is the counterexample to an invariant
 * that says the interesting thing never happens, so it is the shortest run that makes it happen —
 * regenerated from the machine, like every other diagram.
 */
import { type VfioDeviceContext, type VfioDeviceEvent, vfioDeviceMachine } from '../../machines/vfioDevice.js';
import { explore } from '../explorer/index.js';
import type { Trace } from '../explorer/trace.js';

/**
 * The shortest run in which a device with every feature is migrated out: it streams its final state
 * in STOP_COPY until the data_fd reads EOF.
 */
export function vfioStopCopyRun(): Trace {
  const userCalls: VfioDeviceEvent[] = [
    { type: 'SET_STATE', target: 'PRE_COPY' },
    { type: 'SET_STATE', target: 'STOP_COPY' },
    { type: 'DATA_FD_READ' },
  ];
  const result = explore(
    {
      name: 'vfio-stop-copy-run',
      components: [{ name: 'device', machine: vfioDeviceMachine, input: { features: 'STOP_COPY|P2P|PRE_COPY' } }],
      environment: { device: userCalls },
      invariants: [
        {
          name: 'NeverReadsEof',
          holds: (s) => {
            const last = s.context<VfioDeviceContext>('device').last;
            return !(s.value('device') === 'STOP_COPY' && last?.op === 'DATA_FD_READ' && last.ok && last.bytes === 0);
          },
        },
      ],
    },
    { progress: false },
  );
  const trace = result.properties.find((p) => p.name === 'NeverReadsEof')?.counterexample;
  if (!trace) throw new Error('the explorer found no run of the VFIO device that reads STOP_COPY to EOF');
  return trace;
}
