/**
 * Process groups of the QEMUs and VMs the tests start (src/qemu/processes.ts, src/kernel/vm.ts): killing
 * one, and a detached watchdog that kills it if this process dies without doing so (even by SIGKILL) or
 * once its lifetime has passed — so no QEMU or VM outlives a crashed test run.
 */
import { spawn } from 'node:child_process';

/** Start a detached shell that kills process group `pid` if this process dies first, or after `ms`. */
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

/** SIGKILL a child's whole process group (it was started detached), or the child alone if that fails. */
export function killGroup(c: { readonly pid?: number | undefined; readonly exitCode: number | null; readonly signalCode: NodeJS.Signals | null; kill(signal: NodeJS.Signals): boolean }): void {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
  try {
    process.kill(-c.pid, 'SIGKILL');
  } catch {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
