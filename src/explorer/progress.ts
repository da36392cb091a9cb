/**
 * A one-line progress report for long runs: states, states/s, queue. Shown only on a terminal and not
 * in CI (unless forced), redrawn at most every 500 ms, erased at the end.
 */
import type { ExploreOptions } from './system.js';

export class Progress {
  private readonly on: boolean;
  private readonly out: NodeJS.WritableStream;
  private readonly t0 = performance.now();
  private last = 0;
  private drawn = false;

  constructor(opts: Pick<ExploreOptions, 'progress' | 'progressStream'>) {
    const out = opts.progressStream ?? process.stderr;
    this.out = out;
    const mode = opts.progress ?? 'auto';
    this.on = mode === 'auto' ? Boolean((out as { isTTY?: boolean }).isTTY) && !process.env['CI'] : mode;
  }

  tick(states: number, queue: number): void {
    if (!this.on) return;
    const now = performance.now();
    if (now - this.last < 500) return;
    this.last = now;
    const secs = (now - this.t0) / 1000;
    const rate = secs > 0 ? Math.round(states / secs) : 0;
    this.out.write(`\r\x1b[K  explored ${states.toLocaleString('en-US')} states, ${rate.toLocaleString('en-US')} states/s, queue ${queue.toLocaleString('en-US')}`);
    this.drawn = true;
  }

  done(): void {
    if (this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }
}
