// Access-log writer for the echo server. Under load the echo server is the benchmark's backend, and stdout to a pipe
// or file is a synchronous write on Linux, so one write per request would put a syscall on every request's critical
// path. Lines are batched and written once per event-loop turn (or when the batch grows large) instead.

const FLUSH_AT_CHARS = 64 * 1024;

export class LineLog {
  private pending = '';
  private scheduled = false;

  constructor(private readonly out: NodeJS.WritableStream) {}

  line(text: string): void {
    this.pending += text + '\n';
    if (this.pending.length >= FLUSH_AT_CHARS) {
      this.flush();
    } else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushScheduled);
    }
  }

  flush(): void {
    if (this.pending.length === 0) return;
    const chunk = this.pending;
    this.pending = '';
    this.out.write(chunk);
  }

  private readonly flushScheduled = (): void => {
    this.scheduled = false;
    this.flush();
  };
}

// ISO timestamps cost a Date and a string each; requests arriving within the same millisecond share one.
let stampMs = -1;
let stampText = '';
export function timestamp(): string {
  const now = Date.now();
  if (now !== stampMs) {
    stampMs = now;
    stampText = new Date(now).toISOString();
  }
  return stampText;
}
