/**
 * Config validation, one file per schema: the document and its organizations
 * (`document.ts`), projects and their hosts and sessions (`project.ts`),
 * route rules (`routes.ts`), hosted login (`login.ts`), password hashing
 * (`passwords.ts`), trusted proxies (`proxies.ts`), and the field checks they
 * share (`fields.ts`).
 */
export { validateConfig, parseConfigYaml } from './document.js';
