// Control-plane log lines in istiod's layout (`<RFC3339 time>\t<level>\t<scope>\t<message>`), so people who grep
// istiod logs find the same lines here.
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function scopedLogger(scope: string, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const line = (level: string, message: string) => write(`${new Date().toISOString()}\t${level}\t${scope}\t${message}\n`);
  return {
    info: (m) => line('info', m),
    warn: (m) => line('warn', m),
    error: (m) => line('error', m),
  };
}
