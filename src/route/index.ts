/** Routing: path normalization and the per-project route table (exact > longest prefix > default). */
export { normalizePath, routeKey, isForwardableQuery, type NormalizeResult } from './normalize.js';
export { RouteTable, type RouteRule } from './table.js';
