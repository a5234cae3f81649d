// pods/exec, server side, over WebSocket: what kubectl ≥ 1.30 and @kubernetes/client-node speak. The caller (the
// local cluster) builds and starts the sandboxed process; this file negotiates the channel protocol, carries the
// streams and reports the exit as Kubernetes does.
//
// The channel protocols (k8s.io/apimachinery util/remotecommand): every binary frame starts with a channel byte,
// 0 stdin, 1 stdout, 2 stderr, 3 error (server → client), 4 resize (`{"Width":W,"Height":H}`). They differ in what
// the error channel carries and how stdin ends:
//   v1 `channel.k8s.io`, v2, v3: the error channel carries plain text and nothing on success, so a client cannot
//     tell an exit code; v3 adds the resize channel. Not served.
//   v4 `v4.channel.k8s.io`: the error channel carries a JSON `Status`, `Success` or `Failure` with reason
//     `NonZeroExitCode` and the code as cause `ExitCode`. stdin cannot be half-closed: it ends with the connection.
//   v5 `v5.channel.k8s.io`: v4 plus channel 255, CLOSE: the client sends `[255, 0]` when its stdin reaches EOF.
// kube-apiserver ≥ 1.30 serves v5 itself (its stream translator, relaying to the kubelet over SPDY); v4 over
// WebSocket came from the kubelet. The two word a non-zero exit differently (see exitStatus), and we keep each.
//
// Without a pseudo-terminal in Node, `tty=true` runs the command on pipes like `tty=false`, with stderr merged
// into stdout as a terminal would show it. The gaps: the program sees no terminal (isatty is false, so no prompt,
// line editing or job control, and output may be block-buffered), resizes (channel 4) are ignored, and no line
// discipline sits between the client's raw-mode terminal and the command: keystrokes arrive untranslated and unechoed
// (Enter is "\r", ^C is a byte, not SIGINT), and output's "\n" is not turned into "\r\n".
import type { ChildProcess } from 'node:child_process';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { constants } from 'node:os';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { ApiError, badRequest } from './errors.js';
import { queryFlag } from './query.js';

const EXEC_PROTOCOL_V5 = 'v5.channel.k8s.io';
const EXEC_PROTOCOL_V4 = 'v4.channel.k8s.io';
/** In order of preference. */
const SERVED_PROTOCOLS = [EXEC_PROTOCOL_V5, EXEC_PROTOCOL_V4] as const;
type ExecProtocol = (typeof SERVED_PROTOCOLS)[number];

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const CLOSE = 255;

/** Output waiting in the WebSocket's buffers beyond which the command's output is no longer read. */
const HIGH_WATER_BYTES = 1024 * 1024;

/** The exec request's query, as kube-apiserver decodes `PodExecOptions`. */
interface ExecOptions {
  command: string[];
  container?: string;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** What the caller needs to start the command. */
export interface ExecSpawnOptions {
  command: string[];
  container?: string;
  tty: boolean;
  stdin: boolean;
}

/** The pod an exec request names, as the API server's router resolved it. */
export interface ExecBackend {
  /**
   * kube-apiserver's checks before it upgrades the connection, thrown as an ApiError: the pod exists (404
   * `pods "p" not found`), the container is valid (400 `container c is not valid for pod p`, or without one in a
   * pod of several `a container name must be specified for pod p, choose one of: [a b]`). They are answered as an
   * HTTP error, which kubectl prints as `Error from server (…)`.
   */
  check(container: string | undefined): void | Promise<void>;
  /**
   * Starts the command with stdin, stdout and stderr as pipes, in its own process group (`detached: true`) so that
   * a client going away kills everything it started. What the kubelet refuses (the container is not running) is
   * thrown or rejected, as an ApiError or an Error: it reaches the client as the Status on the error channel, after
   * the upgrade, as it does through kube-apiserver's stream translator.
   */
  spawnExec(options: ExecSpawnOptions): ChildProcess | Promise<ChildProcess>;
}

/**
 * Handles an HTTP upgrade request (the server's 'upgrade' event) for `…/pods/NAME/exec`. Node hands every upgrade
 * here, so a SPDY attempt (kubectl ≤ 1.29, or ≥ 1.30 falling back after a refused WebSocket) arrives here too and
 * is answered with a clear refusal.
 */
export async function handleExecUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, backend: ExecBackend): Promise<void> {
  // Until the upgrade the socket is ours; a reset while we wait on the backend must not become an uncaught error.
  socket.on('error', () => undefined);
  const query = new URL(req.url ?? '/', 'http://x').searchParams;
  let protocol: ExecProtocol;
  let options: ExecOptions;
  try {
    if (req.headers.upgrade?.toLowerCase() !== 'websocket') throw await refusal(backend, query);
    options = parseExecQuery(query);
    protocol = negotiate(req.headers['sec-websocket-protocol']);
    await backend.check(options.container);
  } catch (err) {
    writeHttpError(socket, toApiError(err));
    return;
  }
  if (socket.destroyed) return;
  webSocketServer(protocol).handleUpgrade(req, socket, head, (ws) => {
    void runSession(ws, protocol, options, backend);
  });
}

/**
 * Handles a plain (non-upgrade) request for `…/pods/NAME/exec`: a SPDY client's POST that lost its Upgrade header
 * on the way, or a client that does not stream at all. Either way exec needs a WebSocket.
 */
export async function serveExecRequest(req: IncomingMessage, res: ServerResponse, backend: ExecBackend): Promise<void> {
  let err: ApiError;
  try {
    err = await refusal(backend, new URL(req.url ?? '/', 'http://x').searchParams);
  } catch (e) {
    err = toApiError(e);
  }
  const body = JSON.stringify(err.status());
  res.writeHead(err.code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The answer to a request that is not a WebSocket upgrade: the pod's own problem if it has one (so kubectl ≥ 1.30,
 * whose WebSocket attempt was refused for that reason and which then retries over SPDY, prints it), else that SPDY
 * is not served.
 */
async function refusal(backend: ExecBackend, query: URLSearchParams): Promise<ApiError> {
  await backend.check(query.get('container') || undefined);
  return badRequest(
    'exec over SPDY is not supported by this API server: it serves exec over WebSocket only (v5.channel.k8s.io, v4.channel.k8s.io), ' +
      'which kubectl uses from version 1.30 on; use kubectl 1.30 or newer',
  );
}

function parseExecQuery(query: URLSearchParams): ExecOptions {
  const tty = queryFlag(query, 'tty');
  const options: ExecOptions = {
    command: query.getAll('command'),
    stdin: queryFlag(query, 'stdin'),
    stdout: queryFlag(query, 'stdout'),
    // A terminal has one output stream; the kubelet drops stderr when tty is asked for.
    stderr: queryFlag(query, 'stderr') && !tty,
    tty,
  };
  const container = query.get('container');
  if (container) options.container = container;
  if (!options.stdin && !options.stdout && !options.stderr) throw badRequest('you must specify at least 1 of stdin, stdout, stderr');
  if (options.command.length === 0) throw badRequest('you must specify at least one command for the container');
  return options;
}

function negotiate(header: string | undefined): ExecProtocol {
  const offered = (header ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const chosen = SERVED_PROTOCOLS.find((p) => offered.includes(p));
  if (chosen) return chosen;
  // kube's handshake wording, plus why: older channel protocols cannot report an exit code.
  throw badRequest(
    `requested protocol(s) are not supported: [${offered.join(' ')}]; supports [${SERVED_PROTOCOLS.join(' ')}] ` +
      '(channel.k8s.io v1-v3 carry no exit status; use kubectl 1.30 or newer, or a client offering v5.channel.k8s.io)',
  );
}

const servers = new Map<ExecProtocol, WebSocketServer>();

/** One server per protocol, so the 101 reply echoes the protocol negotiate() chose. */
function webSocketServer(protocol: ExecProtocol): WebSocketServer {
  let wss = servers.get(protocol);
  if (!wss) {
    wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      // Channel frames are small and often binary: compression would cost CPU on both ends for little.
      perMessageDeflate: false,
      // client-go sends at most 32 KiB plus the channel byte per frame.
      maxPayload: 4 * 1024 * 1024,
      handleProtocols: () => protocol,
    });
    servers.set(protocol, wss);
  }
  return wss;
}

async function runSession(ws: WebSocket, protocol: ExecProtocol, options: ExecOptions, backend: ExecBackend): Promise<void> {
  const send = (channel: number, data: Buffer, cb?: (err?: Error) => void) => {
    if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.of(channel), data]), { binary: true }, cb);
  };
  let finished = false;
  const finish = (status: object) => {
    if (finished) return;
    finished = true;
    if (ws.readyState !== ws.OPEN) return;
    ws.resume(); // to read the client's reply to our close frame
    send(ERROR, Buffer.from(JSON.stringify(status)));
    // 1000 is what client-go reads as a normal end; anything else surfaces as an error after the status.
    ws.close(1000);
  };

  // kube announces the connection with an empty frame on the lowest output channel it will write.
  send(options.stdout ? STDOUT : options.stderr ? STDERR : ERROR, Buffer.alloc(0));

  // Frames that arrive while the command is being started wait in the socket.
  ws.pause();
  let child: ChildProcess;
  try {
    child = await backend.spawnExec({ command: options.command, ...(options.container ? { container: options.container } : {}), tty: options.tty, stdin: options.stdin });
  } catch (err) {
    finish(internalOrApiStatus(err));
    return;
  }
  let exited = false;
  child.on('error', (err) => {
    // spawn() itself failed (the program could not be started).
    exited = true;
    finish(internalStatus(err.message));
  });
  child.on('close', (code, signal) => {
    exited = true;
    // As containerd reports a command killed by a signal.
    const exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
    finish(exitCode === 0 ? { metadata: {}, status: 'Success' } : exitStatus(protocol, options.command, exitCode));
  });
  const abandon = () => {
    // The client went away: nothing may keep running unseen, and pipes paused for it would stay open forever.
    killProcessGroup(child);
    for (const s of [child.stdin, child.stdout, child.stderr]) s?.destroy();
  };
  ws.on('close', () => {
    if (!exited) abandon();
  });
  ws.on('error', () => undefined); // 'close' follows.
  if (ws.readyState !== ws.OPEN) {
    abandon();
    return;
  }

  const stdin = child.stdin;
  stdin?.on('error', () => undefined); // EPIPE once the command has exited or closed its stdin.
  if (stdin && !options.stdin) stdin.end();
  ws.on('message', (raw: RawData) => {
    const data = Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw);
    if (data.length === 0) return;
    const channel = data[0];
    if (channel === STDIN && options.stdin && stdin && !stdin.writableEnded) {
      if (data.length > 1 && !stdin.write(data.subarray(1))) {
        // The command reads slower than the client sends: stop reading the socket until it catches up.
        ws.pause();
        stdin.once('drain', () => ws.resume());
      }
    } else if (channel === CLOSE && protocol === EXEC_PROTOCOL_V5 && data[1] === STDIN) {
      stdin?.end();
    }
    // Resize (4) needs a terminal we do not have; other channels are not the client's to write.
  });
  ws.resume();

  const outputs = [child.stdout, child.stderr].filter((s) => s !== null);
  let paused = false;
  const forward = (channel: number, wanted: boolean) => (chunk: Buffer) => {
    if (!wanted) return; // Not asked for: read and dropped, so the command never blocks on a full pipe.
    send(channel, chunk, () => {
      if (paused && ws.bufferedAmount < HIGH_WATER_BYTES) {
        paused = false;
        for (const s of outputs) s.resume();
      }
    });
    if (!paused && ws.bufferedAmount >= HIGH_WATER_BYTES) {
      // A slow client: leave the output in the pipe, so the command blocks instead of the server buffering it.
      paused = true;
      for (const s of outputs) s.pause();
    }
  };
  child.stdout?.on('data', forward(STDOUT, options.stdout));
  child.stderr?.on('data', options.tty ? forward(STDOUT, options.stdout) : forward(STDERR, options.stderr));
}

/**
 * A non-zero exit. The kubelet's message wraps the runtime's error (containerd and CRI-O: `error executing command
 * [sh -c exit 3], exit code 3`, Go's %v of the argv); kube-apiserver's v5 translator instead wraps the error its SPDY
 * client made of that Status (`command terminated with exit code 3`). Clients act on the cause, not the text.
 */
function exitStatus(protocol: ExecProtocol, command: string[], exitCode: number): object {
  const inner = protocol === EXEC_PROTOCOL_V4 ? `error executing command [${command.join(' ')}], exit code ${exitCode}` : `command terminated with exit code ${exitCode}`;
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: ${inner}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** apierrors.NewInternalError over the kubelet's `error executing command in container: …`. */
function internalStatus(message: string): object {
  const err = `error executing command in container: ${message}`;
  return { metadata: {}, status: 'Failure', message: `Internal error occurred: ${err}`, reason: 'InternalError', details: { causes: [{ message: err }] }, code: 500 };
}

function internalOrApiStatus(err: unknown): object {
  return err instanceof ApiError ? err.status() : internalStatus(err instanceof Error ? err.message : String(err));
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ApiError(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] });
}

/** An HTTP error on a socket that was offered an upgrade: client-go decodes the Status from the body. */
function writeHttpError(socket: Duplex, err: ApiError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(err.status());
  socket.end(
    `HTTP/1.1 ${err.code} ${STATUS_CODES[err.code] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}

/** SIGKILL: the pod sandbox's unshare ignores SIGTERM, and a session whose client is gone has no one to stop it. */
function killProcessGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Not a group leader (spawned without `detached`): the process alone.
    child.kill('SIGKILL');
  }
}
