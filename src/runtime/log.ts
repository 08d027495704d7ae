/**
 * The one logger of a process (edge primary, each edge worker, the Console,
 * the Warpgate): pino, one JSON line per event on stderr, with the process
 * kind and the worker index on every line. Call sites stay one call:
 * `log(msg)` at info, or `log(msg, { level: 'warn', request_id: r.id })`.
 *
 * Why the message text is kept as it was: tests, the dev stack and operators'
 * greps match the human sentence (`connected for pool demo (worker 1)`); the
 * JSON adds fields beside it, never instead of it.
 *
 * `MEZU_LOG_FORMAT=text` (`--log-format text`, what `npm start` uses) prints
 * the same events as `[edge w0] msg key=value`: the same pino logger, level
 * filter and redaction, written through a formatter. The format is read from
 * the environment so a forked worker or Console inherits its primary's.
 *
 * Never logged: secrets. Call sites pass ids, never tokens, keys, cookies or
 * passwords; as a second line of defence fields with those names are
 * redacted (docs/SECURITY.md "What is never logged";
 * test/integration/log-secrets.test.ts greps every process's output).
 */
import pino, { type DestinationStream, type Logger } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Extra fields of one line. `request_id` is the id the client gets as X-Mezu-Request-Id. */
export interface LogFields {
  level?: LogLevel;
  request_id?: string;
  [field: string]: unknown;
}

/** What every part is handed: a message, and optionally a level and fields. */
export type Log = (msg: string, fields?: LogFields) => void;

export type LogFormat = 'json' | 'text';
export const ENV_LOG_FORMAT = 'MEZU_LOG_FORMAT';
export const ENV_LOG_LEVEL = 'MEZU_LOG_LEVEL';
const LEVELS: ReadonlySet<string> = new Set(['debug', 'info', 'warn', 'error']);

/** Field names whose values are censored if a call site ever passes one. */
const REDACT = ['password', 'token', 'secret', 'authorization', 'cookie', 'assertion', 'api_key', 'csrf_token'];

export function parseLogFormat(s: string | undefined): LogFormat | null {
  if (s === undefined || s === '') return 'json';
  return s === 'json' || s === 'text' ? s : null;
}

export interface LogOptions {
  format?: LogFormat;
  level?: LogLevel;
  /** Where lines go (tests); default stderr, written synchronously so nothing is lost at exit. */
  dest?: { write(line: string): void };
}

/**
 * The logger of this process: `proc` is `edge`, `console` or `warpgate`;
 * `worker` the edge worker index (absent in the primary and other processes).
 */
export function createLog(proc: string, worker?: number, o: LogOptions = {}): Log {
  const format = o.format ?? parseLogFormat(process.env[ENV_LOG_FORMAT]) ?? 'json';
  const envLevel = process.env[ENV_LOG_LEVEL];
  const level = o.level ?? (envLevel !== undefined && LEVELS.has(envLevel) ? (envLevel as LogLevel) : 'info');
  const out: DestinationStream = o.dest ?? pino.destination({ fd: 2, sync: true });
  const dest: DestinationStream = format === 'json' ? out : { write: (line: string) => out.write(textLine(line)) };
  const base: Record<string, unknown> = { pid: process.pid, proc };
  if (worker !== undefined) base.worker = worker;
  const logger: Logger = pino(
    {
      level,
      base,
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names, not pino's numbers: the lines are read by people and by `jq .level`.
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
    },
    dest,
  );
  return (msg, fields) => {
    if (fields === undefined) return logger.info(msg);
    const { level: l, ...rest } = fields;
    logger[l ?? 'info'](rest, msg);
  };
}

/** A discarding Log (benches, tests that do not look). */
export const noLog: Log = () => undefined;

const TEXT_SKIP: ReadonlySet<string> = new Set(['level', 'time', 'pid', 'proc', 'worker', 'msg']);

/** One JSON line as `[proc wN] msg key=value…` (the plain format the edge always printed; `level=` only for warn and error). */
export function textLine(json: string): string {
  const o = JSON.parse(json) as Record<string, unknown>;
  let s = `[${String(o.proc)}${o.worker === undefined ? '' : ` w${String(o.worker)}`}] `;
  s += String(o.msg);
  for (const k of Object.keys(o)) {
    if (TEXT_SKIP.has(k) && !(k === 'level' && (o.level === 'warn' || o.level === 'error'))) continue;
    const v = o[k];
    s += ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
  }
  return `${s}\n`;
}
