// The ztunnel process's logger. Lines keep the shape ztunnel (1.2x) prints, because people grep ztunnel logs and
// feed them to log pipelines unchanged:
//
//   text: 2026-01-02T03:04:05.678901Z<TAB>info<TAB>access<TAB>connection complete<TAB>src.addr=10.0.0.1:4000 direction="outbound"
//   json: {"level":"info","time":"2026-01-02T03:04:05.678901Z","scope":"access","message":"connection complete","src.addr":"10.0.0.1:4000","direction":"outbound"}
//
// Field values follow ztunnel's rules: strings are quoted, numbers and booleans are bare, and values wrapped with
// `display()` (addresses, ztunnel's `%addr` fields) are bare in text and strings in JSON.
import { performance } from 'node:perf_hooks';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';
export type LogFormat = 'text' | 'json';

/** LOG_FORMAT's values. */
export function parseLogFormat(value: string, name: string): LogFormat {
  if (value === 'text' || value === 'json') return value;
  throw new Error(`${name}: expected text or json, got "${value}"`);
}

const SEVERITY: Record<LogLevel | 'off', number> = { off: 0, error: 1, warn: 2, info: 3, debug: 4, trace: 5 };

/** A value rendered without quotes in text logs (tracing's `%value`). */
export class Display {
  constructor(readonly value: string) {}
}
export function display(value: { toString(): string }): Display {
  return new Display(value.toString());
}

export type FieldValue = string | number | boolean | Display | undefined;
/** Ordered fields; undefined values are left out, as tracing leaves out `None`. */
export type Fields = Record<string, FieldValue>;

export interface Logger {
  readonly target: string;
  error(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  /** Cheap check before building expensive fields. */
  enabled(level: LogLevel): boolean;
}

export interface LogSinkOptions {
  format?: LogFormat;
  /** RUST_LOG-style filter: `info`, `info,access=debug`, `warn,xds=off`. Default `info`. */
  level?: string;
  write?: (line: string) => void;
}

/** A log filter directive that is not `<level>` or `<target>=<level>`. */
export class LogLevelError extends Error {}

interface Filter {
  defaultSeverity: number;
  byTarget: Map<string, number>;
}

function parseFilter(spec: string): Filter {
  const filter: Filter = { defaultSeverity: SEVERITY.info, byTarget: new Map() };
  for (const raw of spec.split(',')) {
    const directive = raw.trim();
    if (directive === '') continue;
    const eq = directive.indexOf('=');
    const target = eq < 0 ? undefined : directive.slice(0, eq).trim();
    const level = (eq < 0 ? directive : directive.slice(eq + 1)).trim().toLowerCase();
    if (!(level in SEVERITY)) {
      throw new LogLevelError(`invalid log level '${level}' in '${directive}': expected one of off, error, warn, info, debug, trace`);
    }
    if (target === '') throw new LogLevelError(`invalid log directive '${directive}': empty target before '='`);
    const severity = SEVERITY[level as LogLevel | 'off'];
    if (target === undefined) filter.defaultSeverity = severity;
    else filter.byTarget.set(target, severity);
  }
  return filter;
}

/** As tracing prints a filter: the most specific (longest) targets first, the default level last. */
function filterToString(filter: Filter): string {
  const name = (s: number) => (Object.keys(SEVERITY) as (LogLevel | 'off')[]).find((k) => SEVERITY[k] === s)!;
  const targets = [...filter.byTarget].sort(([a], [b]) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0));
  return [...targets.map(([t, s]) => `${t}=${name(s)}`), name(filter.defaultSeverity)].join(',');
}

/** RFC 3339 UTC with microseconds, as ztunnel prints it; Date alone only has milliseconds. */
export function timestamp(epochMs: number = performance.timeOrigin + performance.now()): string {
  const ms = Math.floor(epochMs);
  const micros = Math.floor((epochMs - ms) * 1000);
  return `${new Date(ms).toISOString().slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}

/** Renders one event as a line (with trailing newline). Exported for tests and for callers that buffer. */
export function formatEvent(format: LogFormat, time: string, level: LogLevel, target: string, message: string, fields: Fields = {}): string {
  if (format === 'json') {
    const out: Record<string, unknown> = { level, time, scope: target, message };
    for (const key in fields) {
      const v = fields[key];
      if (v !== undefined) out[key] = v instanceof Display ? v.value : v;
    }
    return `${JSON.stringify(out)}\n`;
  }
  let line = `${time}\t${level}\t${target}\t${message}`;
  // The fields follow the message after a tab, separated from each other by spaces.
  let sep = '\t';
  for (const key in fields) {
    const v = fields[key];
    if (v === undefined) continue;
    line += `${sep}${key}=${typeof v === 'string' ? JSON.stringify(v) : v instanceof Display ? v.value : String(v)}`;
    sep = ' ';
  }
  return `${line}\n`;
}

// Lines written in one event-loop turn leave in one write: a busy proxy logs a line per connection, and a write
// system call per line cost more than formatting it. Pending lines are written before the process exits.
let pendingStdout: string[] = [];
let stdoutHooked = false;

function flushStdout(): void {
  if (pendingStdout.length === 0) return;
  const text = pendingStdout.length === 1 ? pendingStdout[0]! : pendingStdout.join('');
  pendingStdout = [];
  process.stdout.write(text);
}

/** Writes a finished line (newline included) to stdout, batched per event-loop turn; also used for Envoy-format access logs. */
export function writeStdout(line: string): void {
  if (!stdoutHooked) {
    stdoutHooked = true;
    // A reader that went away (EPIPE) is reported asynchronously as an 'error' event, which would otherwise end
    // the process; losing log lines is the lesser harm for a proxy carrying traffic.
    process.stdout.on('error', () => undefined);
    process.on('exit', flushStdout);
  }
  if (pendingStdout.push(line) === 1) setImmediate(flushStdout);
}

/** One output (stdout by default, as ztunnel) with a level filter that the admin `/logging` endpoint can change at runtime. */
export class LogSink {
  readonly format: LogFormat;
  private filter: Filter;
  /** The filter the process started with, which a reset returns to. */
  private readonly initialLevel: string;
  private readonly write: (line: string) => void;

  constructor(opts: LogSinkOptions = {}) {
    this.format = opts.format ?? 'text';
    this.initialLevel = opts.level ?? 'info';
    this.filter = parseFilter(this.initialLevel);
    this.write = opts.write ?? writeStdout;
  }

  /** Replaces the filter; returns it normalised. Throws (and keeps the old filter) on a bad directive. */
  setLevel(spec: string): string {
    this.filter = parseFilter(spec);
    return this.level;
  }

  get level(): string {
    return filterToString(this.filter);
  }

  /**
   * ztunnel's `/logging?level=…[&reset]`: adds the directives to the current filter (a later directive for the same
   * target wins), or with `reset` to the filter the process started with. Each comma-separated clause must be a bare
   * level or `<target>=<level>`; anything else throws LogLevelError and changes nothing. Returns the new filter.
   */
  changeLevel(directives: string, reset: boolean): string {
    for (const clause of directives === '' ? [] : directives.split(',')) {
      if (!(clause in SEVERITY) && !clause.includes('=')) throw new LogLevelError(`level ${clause} is invalid`);
    }
    const base = reset ? this.initialLevel : this.level;
    return this.setLevel(directives === '' ? base : `${base},${directives}`);
  }

  enabled(level: LogLevel, target: string): boolean {
    return SEVERITY[level] <= (this.filter.byTarget.get(target) ?? this.filter.defaultSeverity);
  }

  event(level: LogLevel, target: string, message: string, fields?: Fields): void {
    if (!this.enabled(level, target)) return;
    try {
      this.write(formatEvent(this.format, timestamp(), level, target, message, fields));
    } catch {
      // A closed stdout (EPIPE) must not take the proxy down; the line is lost either way.
    }
  }

  logger(target: string): Logger {
    return {
      target,
      error: (m, f) => this.event('error', target, m, f),
      warn: (m, f) => this.event('warn', target, m, f),
      info: (m, f) => this.event('info', target, m, f),
      debug: (m, f) => this.event('debug', target, m, f),
      enabled: (level) => this.enabled(level, target),
    };
  }
}
