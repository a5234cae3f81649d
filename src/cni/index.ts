// istio-cni's node agent: in-pod capture rules (docs/capture.md), the ZDS server, and the agent that uses both.
export * from './capture.js';
export * from './agent.js';
export * from './zds.js';
