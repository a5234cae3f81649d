// Pod traffic capture (the CNI agent's in-pod rules): see docs/capture.md.
export * from './capture.js';
