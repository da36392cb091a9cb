/**
 * Child processes and scratch space that are always cleaned up: QEMU processes started in their own
 * process group (killed as a group with SIGKILL), temporary directories removed, both also when the
 * test process exits or is interrupted. Plus free loopback TCP ports and a "stalled" listener for
 * holding a connection attempt in flight.
 */
import { groupWatchdog, killGroup } from '../os/watchdog.js';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let hooked = false;

/** How many started processes are still running (for tests of the cleanup). */
export function liveProcesses(): number {
  return live.size;
}

/** Kill every live child group and remove every scratch directory (synchronous: safe in 'exit'). */
export function cleanupAll(): void {
  for (const c of live) killGroup(c);
  live.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanupAll();
      process.kill(process.pid, sig);
    });
  }
}


/** A fresh scratch directory, removed by `removeScratch` or at exit. */
export function makeScratch(prefix = 'qemu-conform-'): string {
  hook();
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

export function removeScratch(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** A started process in its own group; `stderr` collects what it wrote (bounded). */
export interface Managed {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly stderr: () => string;
  /** Resolves when the process has exited (with its code or signal). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL the whole group and wait (at most 5 s) until it is gone. */
  kill(): Promise<void>;
}

/**
 * Start `command` in its own process group. A detached watchdog shell kills the group if this process
 * dies without cleaning up (even by SIGKILL) or once `maxLifetimeMs` has passed.
 */
export function startProcess(command: string, args: readonly string[], opts: { maxLifetimeMs?: number } = {}): Managed {
  hook();
  const child = spawn(command, [...args], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  child.on('error', () => undefined); // e.g. ENOENT: reported below, or through `exited`
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  live.add(child);
  groupWatchdog(child.pid, opts.maxLifetimeMs ?? 300_000);
  let err = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    if (err.length < 64_000) err += s;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
    child.once('error', () => {
      live.delete(child);
      resolve({ code: null, signal: null });
    });
  });
  const pid = child.pid;
  return {
    child,
    pid,
    stderr: () => err,
    exited,
    async kill() {
      killGroup(child);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      live.delete(child);
    },
  };
}

/** Whether `command` can be run (e.g. `qemu-system-x86_64 --version`). */
export function commandWorks(command: string, args: readonly string[] = ['--version']): { ok: boolean; output: string } {
  const r = spawnSync(command, [...args], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return { ok: false, output: r.error.message };
  return { ok: r.status === 0, output: ((r.stdout ?? '') + (r.stderr ?? '')).trim() };
}

/** A TCP port on 127.0.0.1 that was free a moment ago (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0 }, () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

/**
 * A loopback listener that never answers a new connection: a child process listens with a backlog of 1
 * and is stopped (SIGSTOP) so nothing is ever accepted, and filler connections occupy its accept queue
 * until the kernel reports it full (/proc/net/tcp). Linux then drops every further SYN, so a client's
 * connect() stays in flight (for about two minutes of SYN retries). Used to hold QEMU's outgoing
 * migration in 'setup' while its asynchronous connect is pending.
 */
export interface StalledListener {
  readonly port: number;
  close(): Promise<void>;
}

const BACKLOG = 1;

export async function stalledListener(): Promise<StalledListener> {
  const script =
    `const s=require('net').createServer();s.listen({host:'127.0.0.1',port:0,backlog:${BACKLOG}},()=>process.stderr.write('PORT '+s.address().port+'\\n'))`;
  const proc = startProcess(process.execPath, ['-e', script]);
  const sockets: Socket[] = [];
  const close = async () => {
    for (const s of sockets) s.destroy();
    await proc.kill();
  };
  try {
    let port = 0;
    await waitUntil(
      () => {
        const m = /PORT (\d+)/.exec(proc.stderr());
        if (m) port = Number(m[1]);
        return port > 0;
      },
      5000,
      'stalled listener: the child did not report its port',
    );
    process.kill(proc.pid, 'SIGSTOP');
    await waitUntil(() => processState(proc.pid) === 'T', 5000, 'stalled listener: the child did not stop');
    const full = () => (acceptQueue(port) ?? 0) > BACKLOG; // Linux: full once sk_ack_backlog > sk_max_ack_backlog
    for (let i = 0; !full(); i++) {
      if (i === 8) throw new Error('stalled listener: the accept queue never filled');
      const s = createConnection({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      sockets.push(s);
      await waitUntil(() => (acceptQueue(port) ?? 0) > i, 5000, 'stalled listener: a filler connection was not queued');
    }
    return { port, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** How many connections wait in the accept queue of the socket listening on 127.0.0.1:port (Linux /proc/net/tcp), or null. */
export function acceptQueue(port: number): number | null {
  let text: string;
  try {
    text = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return null;
  }
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] !== local || f[3] !== '0A') continue; // 0A: LISTEN
    return parseInt((f[4] ?? '0:0').split(':')[1] ?? '0', 16); // rx_queue of a listener: sk_ack_backlog
  }
  return null;
}

function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return '?';
  }
}

export async function waitUntil(cond: () => boolean, timeoutMs: number, message: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(message);
    await new Promise((r) => setTimeout(r, 10));
  }
}
