/** The edge's end of the tunnels: the listener Warpgates dial, their connections by pool, the replay rule. */
export type { TunnelConnection, TunnelRequest } from './types.js';
export { PoolRegistry } from './pools.js';
export { TunnelServer, type TunnelServerOptions, type PoolStats } from './server.js';
