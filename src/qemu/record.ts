/**
 * Recording what a harness does, in the log format (log.ts), shared by the two harnesses (harness.ts on
 * the host, src/qemu-vfio/nested.ts in the nested VM). `stamp()` is the harness's clock for its own
 * records: never later than QEMU's, and after every event received so far.
 */
import { type FaultKind, type LogRecord, type Side, timestampOf } from './log.js';
import { type QmpClient, type QmpObject, type QmpValue, QmpError } from './qmp.js';

/**
 * Run a QMP command and record it with QEMU's answer; a QmpError is recorded and rethrown. `fault`: the
 * command itself injects that fault (e.g. a migrate URI nobody listens on), recorded right after it.
 */
export async function executeRecorded(
  client: QmpClient,
  records: LogRecord[],
  stamp: () => number,
  side: Side,
  command: string,
  args?: QmpObject,
  opts: { fault?: FaultKind } = {},
): Promise<QmpValue> {
  const timestamp = timestampOf(stamp());
  if (opts.fault) records.push(faultRecord(opts.fault, stamp));
  try {
    const ret = await client.execute(command, args);
    records.push({ side, execute: command, ...(args ? { arguments: args } : {}), return: ret, timestamp });
    return ret;
  } catch (e) {
    if (e instanceof QmpError) records.push({ side, execute: command, ...(args ? { arguments: args } : {}), error: { class: e.errorClass, desc: e.desc }, timestamp });
    throw e;
  }
}

/** The record of an injected fault standing for STREAM_BREAKS. */
export const faultRecord = (fault: FaultKind, stamp: () => number): LogRecord => ({ side: 'source', fault, action: 'STREAM_BREAKS', timestamp: timestampOf(stamp()) });
