// ztunnel's components log through the process's one LogSink (src/telemetry/log.ts: ztunnel's text/JSON line format,
// RUST_LOG-style filter changeable at runtime via /logging). Each component gets `sink.logger('<target>')`
// (`xds`, `cert`, `inpod`, `access`, …); this module names that type for the ztunnel side.
export type { Logger as ZtunnelLogger, LogFormat, Fields } from '../telemetry/log.js';
export { LogSink, display } from '../telemetry/log.js';
