/**
 * A detached shell that kills a child's whole process group if this process dies without doing so
 * (even by SIGKILL) or once `ms` have passed — so no QEMU or VM outlives a crashed test run.
 */
import { spawn } from 'node:child_process';

export function groupWatchdog(pid: number, ms: number): void {
  const secs = Math.ceil(ms / 1000);
  const w = spawn(
    '/bin/sh',
    [
      '-c',
      `end=$(( $(date +%s) + ${secs} )); ` +
        `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${pid} 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.5; done; ` +
        `kill -0 ${pid} 2>/dev/null && kill -KILL -- -${pid} 2>/dev/null; exit 0`,
    ],
    { detached: true, stdio: 'ignore' },
  );
  w.on('error', () => undefined);
  w.unref();
}
