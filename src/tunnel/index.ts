export type { RequestHead, ResponseSink, TunnelStream, TunnelConnection } from './types.js';
export { PoolRegistry } from './pools.js';
export { TunnelServer, type TunnelServerOptions } from './server.js';
