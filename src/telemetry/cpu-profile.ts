// On-demand CPU profiles of the running process, for the admin port's `/debug/pprof/profile` (ztunnel serves the
// same path). V8's sampling profiler is used through node:inspector, in-process: no flag at start-up, nothing to
// restart, and no cost while no profile is being taken. The result is V8's `.cpuprofile` JSON (Chrome DevTools,
// speedscope and `bench/profile-top.ts` read it), not pprof's protobuf.
import type { Session } from 'node:inspector';

// A minute of samples is already several MB of JSON, serialised on the event loop the proxy shares.
export const MAX_PROFILE_SECONDS = 60;
// 100 µs: fine enough to see per-request work at a few thousand requests/s, cheap enough not to distort it.
const SAMPLING_INTERVAL_US = 100;

let running = false;

/** A profile is already being taken. */
export class ProfileBusyError extends Error {
  override name = 'ProfileBusyError';
}

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) =>
    session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result as T))),
  );
}

/** Samples this process's CPU for `seconds` and returns the profile as JSON text. One profile at a time. */
export async function captureCpuProfile(seconds: number): Promise<string> {
  if (!(seconds > 0 && seconds <= MAX_PROFILE_SECONDS)) {
    throw new RangeError(`seconds must be a number in (0, ${MAX_PROFILE_SECONDS}], got ${seconds}`);
  }
  if (running) throw new ProfileBusyError('a CPU profile is already being taken; try again when it is done');
  running = true;
  let session: Session | undefined;
  try {
    // Loaded on use: a Node built without the inspector still runs the proxy, and only this endpoint fails.
    const { Session: InspectorSession } = await import('node:inspector');
    session = new InspectorSession();
    session.connect();
    await post(session, 'Profiler.enable');
    await post(session, 'Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
    await post(session, 'Profiler.start');
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const { profile } = await post<{ profile: object }>(session, 'Profiler.stop');
    return JSON.stringify(profile);
  } finally {
    session?.disconnect();
    running = false;
  }
}
