// Option parsers the commands share, with commander's error type so a bad value is reported as a usage error.
import { InvalidArgumentError } from 'commander';

export function portOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`expected a port number, got "${value}"`);
  return n;
}

export function logFormatOption(value: string): 'text' | 'json' {
  if (value !== 'text' && value !== 'json') throw new InvalidArgumentError(`expected text or json, got "${value}"`);
  return value;
}

/** A Prometheus duration as its configuration file takes it, e.g. `15s`, `1m`, `500ms` (not zero). */
export function prometheusDurationOption(value: string): string {
  if (!/^(\d+(ms|s|m|h))+$/.test(value) || !/[1-9]/.test(value)) {
    throw new InvalidArgumentError(`expected a Prometheus duration such as 15s, 1m or 500ms, got "${value}"`);
  }
  return value;
}
