// In-pod sockets for the per-node proxy: see docs/capture.md.
export { native } from './native.js';
export type { BindUdpOptions, ConnectOptions, IpFamily, ListenOptions, NativeAddon, NativeError, OriginalDst, SocketOptions } from './native.js';
export { NETNS_RUN_DIR, PodNetns, getSocketMark, netnsPath, originalDst, setSocketMark, socketFd } from './netns.js';
export type { PodBindUdpOptions, PodConnectOptions, PodListenOptions } from './netns.js';
