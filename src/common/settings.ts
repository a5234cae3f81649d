// How the proxies read their settings, as ztunnel and pilot-agent do: a command-line flag wins, else the Istio
// environment variable, else the default; every bad value is collected so one error can name them all.

/** Go's duration units (ztunnel's settings and protobuf Durations in YAML share the syntax), in milliseconds. */
const DURATION_UNITS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Durations such as `500ms`, `10s`, `5m`, `24h`, `1h30m`, `100us`, or a bare number of seconds, in milliseconds. */
export function parseDuration(value: string, name: string): number {
  const v = value.trim();
  if (v.length === 0) throw new Error(`${name}: empty duration`);
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  let total = 0;
  let rest = v;
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/.exec(rest);
    if (!m) throw new Error(`${name}: invalid duration "${value}" (expected e.g. 500ms, 10s, 5m, 24h)`);
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** A decimal or `0x` hexadecimal integer within [min, max]. */
export function parseInteger(value: string, name: string, min: number, max: number): number {
  const n = /^0x[0-9a-f]+$/i.test(value.trim()) ? parseInt(value.trim(), 16) : Number(value.trim());
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}: expected an integer in [${min}, ${max}], got "${value}"`);
  return n;
}

/** Go's strconv.ParseBool (istiod reads annotations and labels with it); undefined for anything else. */
export function parseGoBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

export function parseBool(value: string, name: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new Error(`${name}: expected true or false, got "${value}"`);
}

export type Env = Record<string, string | undefined>;

/** Reads settings from flags and an environment; `problems` collects every value that did not parse. */
export class SettingsReader {
  readonly problems: string[] = [];

  constructor(private readonly env: Env) {}

  /** The flag when given, else the environment variable `envName` parsed, else `dflt`. */
  pick<T>(flag: T | undefined, envName: string | undefined, parse: (v: string, n: string) => T, dflt: T): T {
    if (flag !== undefined) return flag;
    const raw = envName ? this.env[envName] : undefined;
    if (raw === undefined || raw === '') return dflt;
    try {
      return parse(raw, envName!);
    } catch (e) {
      this.problems.push((e as Error).message);
      return dflt;
    }
  }
}

export const asString = (v: string): string => v;
export const asInteger =
  (min: number, max: number) =>
  (v: string, n: string): number =>
    parseInteger(v, n, min, max);
export const asPort = asInteger(0, 65535);
