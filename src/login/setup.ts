/**
 * Builds the hosted pages of one edge worker: the CSRF key (shared by every
 * worker through the store), the hashing pool, the mailer. Called once at
 * worker start; the config getter is read per request (hot reload).
 */
import type { Log } from '../runtime/index.js';
import type { Store } from '../store/index.js';
import { defaultPasswordConfig, type CompiledConfig } from '../config/index.js';
import { LoginPages } from './http.js';
import { LoginService } from './flows/index.js';
import { PasswordHasher } from './hasher.js';
import { Csrf, CSRF_COOKIE_PLAIN, CSRF_COOKIE_SECURE } from './csrf.js';
import { Challenges } from './factors/webauthn.js';
import { DeviceCookies } from './device.js';
import { OutboxMailer, SmtpMailer, type Mailer } from './mail.js';
import { sweepExpired } from './retention.js';
import { systemClock, type Timer } from '../runtime/index.js';

/** How often each worker runs the retention sweep (src/login/retention.ts), give or take a random fifth. */
const SWEEP_MS = 10 * 60_000;

export interface LoginSetup {
  store: Store;
  scheme: 'http' | 'https';
  sessionCookie: string;
  /** The device cookie's name (src/login/device.ts). */
  deviceCookie: string;
  /** Hashing threads in this worker. */
  hashThreads: number;
  /** smtp(s):// URL, or null for the development outbox. */
  smtpUrl: string | null;
  mailFrom: string;
  config(): CompiledConfig | null;
  log: Log;
  /** Counts each login history event (metrics); optional. */
  onEvent?(project: string, type: string, reason: string | null): void;
  /** Run the retention sweep here (one worker of the edge is enough: the others would repeat its scans). */
  sweep: boolean;
}

export interface LoginRuntime {
  pages: LoginPages;
  hasher: PasswordHasher;
  mailer: Mailer;
  /** Follows a new config: the hashing queue bound, and the dummy hash for new parameters. */
  onConfig(cfg: CompiledConfig): void;
  close(): Promise<void>;
}

export async function setupLogin(s: LoginSetup): Promise<LoginRuntime> {
  const secret = await s.store.secrets.getOrCreate('csrf');
  const cfg = s.config();
  const pw = cfg?.passwords ?? defaultPasswordConfig();
  const hasher = new PasswordHasher({ threads: s.hashThreads, queue: pw.queue });
  const mailer: Mailer = s.smtpUrl === null ? new OutboxMailer(s.store.outbox) : new SmtpMailer(s.smtpUrl, s.mailFrom);
  const service = new LoginService({
    store: s.store,
    hasher,
    mailer,
    csrf: new Csrf(secret),
    scheme: s.scheme,
    sessionCookie: s.sessionCookie,
    csrfCookie: s.scheme === 'https' ? CSRF_COOKIE_SECURE : CSRF_COOKIE_PLAIN,
    clock: systemClock,
    challenges: new Challenges(await s.store.secrets.getOrCreate('webauthn')),
    devices: new DeviceCookies(await s.store.secrets.getOrCreate('device')),
    deviceCookie: s.deviceCookie,
    log: s.log,
    ...(s.onEvent === undefined ? {} : { onEvent: s.onEvent }),
  });
  const onConfig = (c: CompiledConfig) => {
    hasher.setQueueLimit(c.passwords.queue);
    hasher.warm({ memoryBytes: c.passwords.memoryBytes, iterations: c.passwords.iterations }).catch((err: Error) => s.log(`login: dummy hash failed: ${err.message}`));
  };
  if (cfg !== null) onConfig(cfg);
  // Expired sessions, stale throttle counters, old login history and dead
  // emailed tokens are deleted now and then, by one worker (`sweep`). Each
  // deletion is re-checked in its transaction, so a second sweeper (an edge
  // beside this one on the same store) is harmless; the jitter spreads them out.
  let sweep: Timer | null = null;
  let sweeping = false;
  const schedule = () => {
    sweep = systemClock.setTimeout(() => {
      if (sweeping) return schedule();
      sweeping = true;
      sweepExpired(s.store, s.config(), systemClock.now())
        .then((n) => {
          if (n.sessions + n.throttle + n.history + n.tokens + n.outbox > 0) s.log(`retention: deleted ${n.sessions} sessions, ${n.throttle} throttle counters, ${n.history} login events, ${n.tokens} emailed tokens, ${n.outbox} outbox mails`);
        })
        .catch((err: Error) => s.log(`retention: sweep failed: ${err.message}`))
        .finally(() => {
          sweeping = false;
          if (sweep !== null) schedule();
        });
    }, SWEEP_MS * (0.8 + 0.4 * systemClock.random()));
    sweep.unref();
  };
  if (s.sweep) schedule();
  return {
    pages: new LoginPages(service, s.log),
    hasher,
    mailer,
    onConfig,
    close: async () => {
      if (sweep !== null) systemClock.clearTimeout(sweep);
      sweep = null;
      await hasher.close();
      await mailer.close();
    },
  };
}
