// Option parsers the proxy commands share, with commander's error type so a bad value is reported as a usage error.
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
