// pods/log: a container's log file streamed as kube-apiserver serves it (`kubectl logs`, client-node's Log): plain
// text, chunked, flushed as it comes with `follow`.
//
// Ambit's container logs are the raw bytes the process wrote: its stdout and stderr are the log file itself
// (src/local/process.ts), so the supervisor never sits on the data path. Nothing records when each line was
// written, so:
//   - `timestamps=true` is refused (400): there is no time to print before a line.
//   - `sinceSeconds` / `sinceTime` are answered only where the file's own times decide them: a log last written
//     before the instant has nothing newer (only what follows is sent), and a log created after it has nothing
//     older (all of it is sent). A log written on both sides of the instant is refused (400) rather than cut at a
//     guessed place.
// A restart starts a new file and keeps the one before as the previous instance's (`previous=true`), as the kubelet
// keeps the last terminated container's log.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { watch, type FSWatcher, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { ApiError, badRequest, invalid, type StatusCause } from './errors.js';
import { queryFlag } from './query.js';

/** A container's logs, as the API server's router resolved them. */
export interface ContainerLog {
  /** The container's name (a request without one gets the pod's only container). */
  container: string;
  /** The current (or, once it stopped, the last) instance's log. */
  path: string;
  /** The log of the instance before it. */
  previousPath: string;
  /** Settles once the current instance stopped writing (it exited, or the pod is gone): `follow` ends there. */
  ended: Promise<void>;
}

export interface LogsBackend {
  /**
   * The pod's container log, or what kube says instead, thrown as an ApiError: the pod does not exist (404
   * `pods "p" not found`), the container is not the pod's (400 `container c is not valid for pod p`), a pod of
   * several containers and none named (400 `a container name must be specified for pod p, choose one of: [a b]`),
   * the container never started (400 `container "c" in pod "p" is waiting to start: ContainerCreating`). `null`
   * for a pod not on a node yet, which kube-apiserver answers with an empty log.
   */
  containerLog(container: string | undefined): ContainerLog | null | Promise<ContainerLog | null>;
}

interface LogOptions {
  container?: string;
  follow: boolean;
  previous: boolean;
  timestamps: boolean;
  tailLines?: number;
  limitBytes?: number;
  /** From sinceSeconds or sinceTime: only output written at or after this instant (ms since the epoch). */
  since?: number;
}

const CHUNK_BYTES = 64 * 1024;
/** How often a followed log is looked at when no change notification came (fs.watch is best-effort). */
const POLL_MS = 1000;

/** Serves `GET …/namespaces/NS/pods/NAME/log`; `pod` is NAME, for kube's messages. */
export async function serveLogs(req: IncomingMessage, res: ServerResponse, pod: string, backend: LogsBackend): Promise<void> {
  let file: FileHandle | undefined;
  try {
    const options = parseLogQuery(new URL(req.url ?? '/', 'http://x').searchParams, pod);
    const log = await backend.containerLog(options.container);
    if (!log) {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end();
      return;
    }
    file = await openLog(options.previous ? log.previousPath : log.path, options.previous, log.container, pod);
    let start = 0;
    if (file) {
      const st = await file.stat();
      if (options.since !== undefined) start = sinceStart(st, options.since, log.container, pod);
      if (options.tailLines !== undefined) start = Math.max(start, await tailStart(file, st.size, options.tailLines));
    }
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    // A previous instance has ended: there is nothing to follow.
    if (file) await stream(file, start, res, options.limitBytes, options.follow && !options.previous ? log : undefined);
    res.end();
  } catch (err) {
    if (res.headersSent) {
      res.destroy(); // mid-stream: all a client can still be told is that the stream broke
      return;
    }
    const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`);
    const body = JSON.stringify(e.status());
    res.writeHead(e.code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  } finally {
    await file?.close();
  }
}

/** An int64 query parameter, with Go's strconv.ParseInt error as kube-apiserver returns it. */
function integer(query: URLSearchParams, name: string): number | undefined {
  const v = query.get(name);
  if (v === null) return undefined;
  if (!/^[+-]?\d+$/.test(v)) throw badRequest(`strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw badRequest(`strconv.ParseInt: parsing ${JSON.stringify(v)}: value out of range`);
  return n;
}

function parseLogQuery(query: URLSearchParams, pod: string): LogOptions {
  const options: LogOptions = { follow: queryFlag(query, 'follow'), previous: queryFlag(query, 'previous'), timestamps: queryFlag(query, 'timestamps') };
  const container = query.get('container');
  if (container) options.container = container;
  const tailLines = integer(query, 'tailLines');
  const limitBytes = integer(query, 'limitBytes');
  const sinceSeconds = integer(query, 'sinceSeconds');
  const sinceTime = query.get('sinceTime');
  let sinceTimeMs: number | undefined;
  if (sinceTime !== null) {
    // metav1.Time's query form: RFC 3339.
    sinceTimeMs = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(sinceTime) ? Date.parse(sinceTime) : NaN;
    if (Number.isNaN(sinceTimeMs)) throw badRequest(`sinceTime: ${JSON.stringify(sinceTime)} is not an RFC 3339 time (e.g. 2025-01-01T00:00:00Z)`);
  }
  // ValidatePodLogOptions, with its messages.
  const causes: StatusCause[] = [];
  if (tailLines !== undefined && tailLines < 0) causes.push({ field: 'tailLines', message: `Invalid value: ${tailLines}: must be greater than or equal to 0` });
  if (limitBytes !== undefined && limitBytes < 1) causes.push({ field: 'limitBytes', message: `Invalid value: ${limitBytes}: must be greater than 0` });
  if (sinceSeconds !== undefined && sinceTimeMs !== undefined) {
    causes.push({ reason: 'FieldValueForbidden', message: 'Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified' });
  } else if (sinceSeconds !== undefined && sinceSeconds < 1) {
    causes.push({ field: 'sinceSeconds', message: `Invalid value: ${sinceSeconds}: must be greater than 0` });
  }
  if (causes.length) throw invalid({ kind: 'PodLogOptions', group: '', plural: 'pods' }, pod, causes);
  if (options.timestamps) {
    throw badRequest("timestamps=true is not supported: Ambit writes a container's output straight to its log file, which records no time for each line");
  }
  if (tailLines !== undefined) options.tailLines = tailLines;
  if (limitBytes !== undefined) options.limitBytes = limitBytes;
  if (sinceSeconds !== undefined) options.since = Date.now() - sinceSeconds * 1000;
  else if (sinceTimeMs !== undefined) options.since = sinceTimeMs;
  return options;
}

/** Opens a log; a missing current log is an empty one (nothing written yet), a missing previous one kube's error. */
async function openLog(path: string, previous: boolean, container: string, pod: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (previous) throw badRequest(`previous terminated container "${container}" in pod "${pod}" not found`);
    return undefined;
  }
}

/** Where output written at or after `since` begins, judged by the file's times alone (see the header). */
function sinceStart(st: Stats, since: number, container: string, pod: string): number {
  if (st.mtimeMs < since) return st.size;
  // Where the birth time is unknown, 0 or the change time stands in for it; a real one is older than the last write.
  if (st.birthtimeMs > 0 && st.birthtimeMs < st.ctimeMs && st.birthtimeMs >= since) return 0;
  throw badRequest(
    `sinceSeconds and sinceTime cannot be honoured for container "${container}" in pod "${pod}": its log records no time for each line ` +
      `and holds output from both before and after ${new Date(since).toISOString()}; use tailLines or limitBytes instead`,
  );
}

/**
 * The offset of the last `lines` lines, read backwards from the end in chunks (logs can be large). An unfinished
 * last line counts as a line, as the kubelet's log records count it.
 */
async function tailStart(file: FileHandle, size: number, lines: number): Promise<number> {
  if (lines === 0 || size === 0) return size;
  const buf = Buffer.allocUnsafe(CHUNK_BYTES);
  // A newline that ends the file closes the last line; it does not start another.
  let end = size;
  await file.read(buf, 0, 1, size - 1);
  if (buf[0] === 0x0a) end--;
  let seen = 0;
  while (end > 0) {
    const from = Math.max(0, end - CHUNK_BYTES);
    const { bytesRead } = await file.read(buf, 0, end - from, from);
    for (let i = bytesRead - 1; i >= 0; i--) {
      if (buf[i] === 0x0a && ++seen === lines) return from + i + 1;
    }
    end = from;
  }
  return 0;
}

/**
 * Copies the file from `start` to the response, at most `limit` bytes, with the response's back-pressure. With
 * `follow`, keeps copying what is appended until the instance ends (then what it wrote last), the limit is reached or
 * the client goes away. Reading through the open handle keeps to this instance's file even after a restart renames it.
 */
async function stream(file: FileHandle, start: number, res: ServerResponse, limit: number | undefined, follow: ContainerLog | undefined): Promise<void> {
  let pos = start;
  let left = limit ?? Infinity;
  let gone = false;
  let ended = false;
  let changed = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    changed = true;
    wake?.();
  };
  const onClose = () => {
    gone = true;
    poke();
  };
  res.on('close', onClose);
  let watcher: FSWatcher | undefined;
  let poll: NodeJS.Timeout | undefined;

  /** Copies up to the current end of the file; false once nothing more may be sent. */
  const copy = async (): Promise<boolean> => {
    for (;;) {
      if (gone) return false;
      if (left <= 0) return false;
      const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, left));
      const { bytesRead } = await file.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return true;
      pos += bytesRead;
      left -= bytesRead;
      if (!res.write(buf.subarray(0, bytesRead))) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
  };

  try {
    if (!(await copy()) || !follow) return;
    const onEnded = () => {
      ended = true;
      poke();
    };
    void follow.ended.then(onEnded, onEnded);
    try {
      watcher = watch(follow.path, { persistent: false }, poke);
      watcher.on('error', () => undefined); // the poll still runs
    } catch {
      // No change notifications here (the file went away, or watching is unsupported): the poll is enough.
    }
    poll = setInterval(poke, POLL_MS);
    for (;;) {
      if (!changed) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      changed = false;
      // Read `ended` before copying: whatever the instance wrote before it ended is in the file by then.
      const last = ended;
      if (!(await copy()) || last) return;
    }
  } finally {
    res.off('close', onClose);
    watcher?.close();
    if (poll) clearInterval(poll);
  }
}
