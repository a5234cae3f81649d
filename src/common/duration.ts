// Ages as kubectl and kube-apiserver print them (k8s.io/apimachinery/pkg/util/duration.HumanDuration): two or three
// significant figures, coarser as the duration grows, so an AGE column stays narrow. Users compare these strings with
// what kubectl shows for a real cluster, so the thresholds are kube's to the second.

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** `45s`, `3m20s`, `25m`, `5h10m`, `20h`, `3d4h`, `45d`, `2y10d`, `9y`; `<invalid>` below -1s (clock skew up to that is `0s`). */
export function humanDuration(ms: number): string {
  // Go converts with truncation toward zero at every step; Math.trunc keeps negative sub-second skew at 0.
  const seconds = Math.trunc(ms / SECOND);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 2 * 60) return `${seconds}s`;
  const minutes = Math.trunc(ms / MINUTE);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 3 * 60) return `${minutes}m`;
  const hours = Math.trunc(ms / HOUR);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.trunc(days / 365);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${years}y` : `${years}y${days % 365}d`;
  return `${years}y`;
}

/** The age of an RFC 3339 timestamp at `now`; `<unknown>` without one (kube's zero time). */
export function age(timestamp: string | undefined, now = Date.now()): string {
  const t = timestamp ? Date.parse(timestamp) : NaN;
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}
