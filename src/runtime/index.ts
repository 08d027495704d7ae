/**
 * The runtime every part shares, the Warpgate included: the clock and timers
 * (`clock.ts`: one injectable object for the time, timers and randomness,
 * and a manual clock for tests), the retry backoff (`backoff.ts`), and
 * durations as operators write them (`duration.ts`: `30s`, `1h30m`), and
 * the Prometheus text format with its listener (`metrics.ts`), and the
 * process logger (`log.ts`: pino JSON lines, or text for `npm start`).
 */
export { systemClock, ManualClock, type Clock, type Timer, type Timers } from './clock.js';
export { Backoff, fullJitter, type BackoffPolicy } from './backoff.js';
export { parseDuration } from './duration.js';
export { ProcessMetrics, serveMetrics, mergeSnapshots, renderText, histogramSamples, bucketQuantile, labels, escapeLabel, METRICS_CONTENT_TYPE, DURATION_BUCKETS, type Family, type MetricType, type MetricsListener } from './metrics.js';
export { createLog, noLog, parseLogFormat, textLine, ENV_LOG_FORMAT, ENV_LOG_LEVEL, type Log, type LogFields, type LogLevel, type LogFormat, type LogOptions } from './log.js';
export { SpanExporter, parseOtlpEndpoint, otlpJson, newSpanId, newTraceId, SPAN_INTERNAL, SPAN_SERVER, SPAN_CLIENT, type Span, type OtlpOptions } from './otlp.js';
