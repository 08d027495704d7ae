/**
 * The control plane (organizations, projects and routes, user directories,
 * service accounts and keys, the audit log): one implementation behind the
 * admin API, the Console pages and the CLI.
 */
export { Control, InvalidRequest, requireObject, type Authority, CONSOLE_DIRECTORY, CONSOLE_PROJECT, CONSOLE_ROLES, CONSOLE_SESSION_ABSOLUTE_MS, CONSOLE_SESSION_IDLE_MS, DEFAULT_OVERLAP_MS, MAX_OVERLAP_MS, type Actor, type ConsoleRole, type DirectoryInfo } from './control.js';
export { setRoutes, addOrganization, addProject, relativeProblems, type RouteInput, type ProjectInput } from './config-edit.js';
export * from './views.js';
export { projectStats, STATS_MINUTES, type ProjectStats, type MinuteStats } from './traffic.js';
