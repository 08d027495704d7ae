/**
 * Hosted pages under `/_mezu/` (login, signup, logout, forgot/reset/change
 * password): flows, CSRF, throttling, return-path validation, password
 * hashing in a piscina pool, mail. The edge handler dispatches reserved paths
 * to `LoginPages`; the CLI reads history and the outbox through the store.
 */
export { LoginPages, MAX_FORM_BYTES } from './http.js';
export { LoginService, PAGES, type PageRequest, type PageResponse, type LoginDeps } from './flows/index.js';
export { PasswordHasher, type HasherOptions } from './hasher.js';
export { Csrf, CSRF_COOKIE_PLAIN, CSRF_COOKIE_SECURE, CSRF_FIELD, sameOrigin } from './csrf.js';
export { safeReturnPath, DEFAULT_RETURN_PATH } from './redirect.js';
export { Throttle, countAttempt, releaseAttempt, accountKey, ipKey } from './throttle.js';
export { checkNewPassword, describeVerdict, commonListSize, MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS, type PasswordVerdict } from './password-policy.js';
export { OutboxMailer, SmtpMailer, type Mailer, type Mail } from './mail.js';
export { setupLogin, type LoginSetup, type LoginRuntime } from './setup.js';
