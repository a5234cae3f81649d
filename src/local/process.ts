// A supervised process: a container of a pod or a cluster component. It runs in its own process group with its
// output appended to a log file (the file descriptor is handed to the child, so logs survive a supervisor crash),
// and is restarted with exponential back-off according to its restart policy. A container's restart begins a new
// log and keeps the one before, as the kubelet keeps the last terminated container's log for `logs --previous`.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname } from 'node:path';
import type { Ledger } from './ledger.js';
import { killGroup } from './sys.js';

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';

export interface ProcessSpec {
  /** For messages: `pod default/web-1 container app`, `component node-agent on node-1`. */
  description: string;
  argv: string[];
  env: Record<string, string>;
  cwd?: string;
  logPath: string;
  /** On restart, move the log to previousLogPath(logPath) and start a new one; else every run appends to one log. */
  keepPreviousLog?: boolean;
  restartPolicy: RestartPolicy;
}

/** Where a restarted process's previous log is kept: `app.log` → `app.previous.log`. */
export function previousLogPath(logPath: string): string {
  return logPath.replace(/(\.log)?$/, '.previous.log');
}

export type ProcessState =
  | { state: 'waiting'; reason: string; message?: string }
  | { state: 'running'; startedAt: string }
  | { state: 'terminated'; exitCode: number; signal?: string; reason: string; finishedAt: string };

// Kubernetes starts at 10 s and caps at 5 min; a local cluster is interactive, so retry sooner.
const BACKOFF_INITIAL_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
/** A run this long counts as healthy: the next crash starts the back-off from the beginning again. */
const BACKOFF_RESET_MS = 60_000;

export class SupervisedProcess {
  state: ProcessState = { state: 'waiting', reason: 'ContainerCreating' };
  restarts = 0;
  lastTermination: Extract<ProcessState, { state: 'terminated' }> | undefined;
  private child: ChildProcess | undefined;
  private failuresInARow = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly spec: ProcessSpec,
    private readonly ledger: Ledger,
    private readonly onStateChange: () => void,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    this.stopping = false;
    this.launch();
  }

  private launch(): void {
    this.timer = undefined;
    if (this.stopping) return;
    mkdirSync(dirname(this.spec.logPath), { recursive: true });
    const fd = openSync(this.spec.logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.spec.argv[0]!, this.spec.argv.slice(1), {
        env: this.spec.env,
        cwd: this.spec.cwd,
        stdio: ['ignore', fd, fd],
        detached: true, // own process group: stop() and `ambit down` kill the program and everything it started
      });
    } finally {
      closeSync(fd);
    }
    const startedAt = Date.now();
    let resolveExit!: () => void;
    this.exited = new Promise((r) => (resolveExit = r));
    this.child = child;
    child.on('error', (err) => {
      // spawn() itself failed (no such program, bad cwd): report it in the log like a crash.
      this.appendLog(`ambit: cannot start ${this.spec.description}: ${err.message}\n`);
    });
    if (child.pid !== undefined) {
      this.ledger.processStarted(child.pid, this.spec.description);
      this.state = { state: 'running', startedAt: new Date(startedAt).toISOString() };
      this.onStateChange();
    }
    child.on('close', (code, signal) => {
      if (child.pid !== undefined) this.ledger.processExited(child.pid);
      this.child = undefined;
      const ranMs = Date.now() - startedAt;
      const exitCode = code ?? 128 + signalNumber(signal);
      this.lastTermination = {
        state: 'terminated',
        exitCode,
        ...(signal ? { signal } : {}),
        reason: exitCode === 0 ? 'Completed' : 'Error',
        finishedAt: new Date().toISOString(),
      };
      resolveExit();
      if (this.stopping) {
        this.state = this.lastTermination;
        this.onStateChange();
        return;
      }
      const restart = this.spec.restartPolicy === 'Always' || (this.spec.restartPolicy === 'OnFailure' && exitCode !== 0);
      if (!restart) {
        this.state = this.lastTermination;
        this.onStateChange();
        return;
      }
      this.failuresInARow = ranMs >= BACKOFF_RESET_MS ? 1 : this.failuresInARow + 1;
      const delay = Math.min(BACKOFF_INITIAL_MS * 2 ** (this.failuresInARow - 1), BACKOFF_MAX_MS);
      this.state = {
        state: 'waiting',
        reason: 'CrashLoopBackOff',
        message: `back-off ${Math.round(delay / 1000)}s restarting failed ${this.spec.description} (exit code ${exitCode})`,
      };
      this.onStateChange();
      this.timer = setTimeout(() => {
        this.restarts++;
        if (this.spec.keepPreviousLog) this.keepPreviousLog();
        this.launch();
      }, delay);
    });
  }

  /** Only at the restart itself: until then the log of the run that ended is the current one, as in kube. */
  private keepPreviousLog(): void {
    try {
      renameSync(this.spec.logPath, previousLogPath(this.spec.logPath));
    } catch {
      // The pod's directory is going away: the new run appends to whatever log is there.
    }
  }

  private appendLog(text: string): void {
    try {
      const fd = openSync(this.spec.logPath, 'a');
      writeSync(fd, text);
      closeSync(fd);
    } catch {
      // The log directory is gone (cluster being removed): nothing to report to.
    }
  }

  /** Settles when the current instance exits (at once when none runs). */
  whenExited(): Promise<void> {
    return this.exited;
  }

  /** Stops for good: SIGTERM to the process group, SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const child = this.child;
    if (!child?.pid) return;
    killGroup(child.pid, 'SIGTERM');
    const killer = setTimeout(() => killGroup(child.pid!, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(killer);
    // Children that outlived the group leader still belong to the group.
    killGroup(child.pid, 'SIGKILL');
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (constants.signals[signal] ?? 0) : 0;
}
