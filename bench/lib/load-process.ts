// Parent side of the ADS load process (ads-load.ts): forks it, sends commands, and lets a benchmark wait for the
// reports it expects.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadCommand, LoadReport, ResponseReport } from './ads-load.js';

interface Waiter {
  /** Returns true once the waiter has seen everything it needs. */
  accept(r: ResponseReport): boolean;
  resolve(): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export class LoadProcess {
  private readonly child: ChildProcess;
  private waiter: Waiter | undefined;
  private failure: Error | undefined;
  private readonly closed: Promise<number>;

  constructor() {
    // No inherited flags: --cpu-prof or --expose-gc are meant for the control plane, not the clients.
    this.child = fork(fileURLToPath(new URL('./ads-load.js', import.meta.url)), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.closed = new Promise((resolve) => {
      this.child.on('message', (m: LoadReport) => {
        if (m.type === 'closed') resolve(m.maxRssKiB);
        else if (m.type === 'error') this.fail(new Error(m.message));
        else for (const r of m.responses) if (this.waiter?.accept(r)) this.settle();
      });
      this.child.on('exit', (code, signal) => {
        resolve(0);
        this.fail(new Error(`ADS load process exited (${signal ?? `code ${code}`})`));
      });
    });
  }

  send(cmd: LoadCommand): void {
    if (this.failure) throw this.failure;
    this.child.send(cmd);
  }

  /**
   * Resolves once `accept` returns true for a report; reports arriving while nobody waits are dropped (a benchmark
   * sets up its wait before it triggers what it measures). `what` names the wait in the timeout error.
   */
  waitFor(what: string, timeoutMs: number, accept: (r: ResponseReport) => boolean): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.waiter) return Promise.reject(new Error(`already waiting for something else than ${what}`));
    return new Promise((resolve, reject) => {
      this.waiter = {
        accept,
        resolve,
        reject,
        timer: setTimeout(() => this.fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs),
      };
    });
  }

  /** Closes the clients and returns the load process's peak RSS in KiB (0 if it was already gone). */
  async close(): Promise<number> {
    if (this.child.connected) this.child.send({ type: 'close' } satisfies LoadCommand);
    const timer = setTimeout(() => this.child.kill(), 5000);
    const rss = await this.closed;
    clearTimeout(timer);
    return rss;
  }

  private settle(): void {
    const w = this.waiter!;
    this.waiter = undefined;
    clearTimeout(w.timer);
    w.resolve();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    clearTimeout(w.timer);
    w.reject(e);
  }
}
