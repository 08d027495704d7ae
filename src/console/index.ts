/**
 * The Console: admin REST API, server-rendered pages and the Console's own
 * hosted login, on a listener of its own (server.ts).
 */
export { ConsoleServer, runConsole, consoleProject, type ConsoleOptions, CONSOLE_SESSION_COOKIE_PLAIN, CONSOLE_SESSION_COOKIE_SECURE, MAX_API_BODY } from './server.js';
export { API_ROUTES, matchRoute, runApi, listWarpgates, TUNNEL_REPORT_FRESH_MS, type ApiRoute, type ApiDeps, type ApiRequest, type ApiReply } from './api.js';
export { API_PERMISSIONS, allows, authenticate, checkKey, consoleSession, roleOf, type ApiPermission, type Caller, type Scope } from './access.js';
