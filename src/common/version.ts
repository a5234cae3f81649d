// Which Ambit this is, and which Istio's behaviour it follows: what `ambit version` prints, what proxies send as
// ISTIO_VERSION in their xDS node metadata (istioctl proxy-status's VERSION column) and the control plane reports.
import { readFileSync } from 'node:fs';

/**
 * The Istio release whose APIs, wire formats, log lines and CLI output Ambit follows: istio/istio and istio/ztunnel
 * master during the 1.32 development cycle (the facts in docs and tests were taken from there).
 */
export const ISTIO_RELEASE = '1.32';

function packageVersion(): string {
  try {
    // dist/src/common/version.js → package.json at the package root.
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** This build's version (package.json). */
export const AMBIT_VERSION = packageVersion();
