import { hostname } from 'node:os';
import { z } from 'zod';
import { HEARTBEAT_RULE, MIN_KAFKA_SESSION_TIMEOUT_MS } from './kafka-timing.js';

/**
 * What users write: every field of farad's configuration with its default. Each leaf's
 * `.describe()` text (and `shownDefault` where the default is not a constant) is the one source
 * of the README's settings table; its environment variable is derived from its path (env.ts).
 */
export const configSchema = z
  .object({
    transport: z.enum(['embedded', 'kafka']).default('embedded').describe('`embedded` (one process, a checksummed journal under dataDir) or `kafka`'),
    dataDir: z.string().min(1).default('./data').describe('embedded log directory (one process at a time); embedded transport only'),
    retention: z
      .object({
        bytes: z
          .number()
          .int()
          .min(65_536)
          .default(268_435_456)
          .describe('at most this many newest bytes are kept per topic (all partitions together) of inputs, outputs and dead letters; input the app has not processed is never deleted; embedded transport only'),
        ms: z.number().int().min(1000).default(604_800_000).describe('records older than this (record timestamp) expire, per topic; embedded transport only'),
        topics: z
          .record(
            z.string(),
            z
              .object({
                bytes: z.number().int().min(65_536).optional().describe('this topic\'s retention.bytes'),
                ms: z.number().int().min(1000).optional().describe('this topic\'s retention.ms'),
              })
              .strict(),
          )
          .default({})
          .meta({ description: 'per-topic `bytes` and `ms`, e.g. `retention.topics.votes: { bytes: 67108864 }`; embedded transport only', shownDefault: 'none' }),
        segmentBytes: z
          .number()
          .int()
          .min(65_536)
          .max(1_073_741_824)
          .default(8_388_608)
          .describe('the journal rolls to a new segment at this size; retention deletes and compaction rewrites sealed segments; embedded transport only'),
        tombstoneMs: z.number().int().min(0).default(86_400_000).describe('the compacted changelog drops a delete marker once it is this old; embedded transport only'),
      })
      .strict()
      .prefault({}),
    commitIntervalMs: z.number().int().min(1).max(60_000).default(100).describe('longest time a batch stays open before it commits'),
    commitLingerMs: z
      .number()
      .int()
      .min(0)
      .max(60_000)
      .default(20)
      .describe('a batch whose input is drained commits once it is this old (0: at once); a busy partition keeps filling its batch up to commitIntervalMs or maxBatchRecords'),
    maxBatchRecords: z.number().int().min(1).max(1_000_000).default(10_000).describe('most input records per batch (one transaction)'),
    retryBackoffMs: z.number().int().min(1).default(200).describe('first delay before retrying a failed commit; doubles up to 30 s'),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('`fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`; JSON logs on stderr'),
    http: z
      .object({
        port: z.number().int().min(0).max(65535).default(8080).describe('port of the HTTP API; 0 picks a free port'),
        host: z.string().min(1).default('0.0.0.0').describe('address the HTTP API listens on'),
        token: z.string().min(1).optional().describe('when set, POST /events, /tables and /queries need `Authorization: Bearer <token>`'),
        bodyLimitBytes: z.number().int().min(1024).default(1_048_576).describe('largest request body; larger ones get 413'),
        idempotencyWindowSeconds: z
          .number()
          .int()
          .min(1)
          .max(604_800)
          .default(86_400)
          .describe('how long a POST /events answer is kept for retries with the same `Idempotency-Key` (in the memory of the member owning the key)'),
        idempotencyMaxKeys: z
          .number()
          .int()
          .min(1)
          .max(10_000_000)
          .default(100_000)
          .describe('most idempotency keys each worker keeps; beyond it the oldest answers are forgotten first'),
      })
      .strict()
      .prefault({}),
    settings: z.record(z.string(), z.unknown()).default({}).meta({ description: "the app's own settings, by name", shownDefault: "app's" }),
    instanceId: z
      .string()
      .min(1)
      .default(hostname())
      .meta({ description: 'stable name of this instance (the pod name on Kubernetes)', shownDefault: 'host name' }),
    workers: z
      .number()
      .int()
      .min(0)
      .max(256)
      .default(0)
      .describe('worker processes `farad run` starts, each holding its own partitions (one instance, one HTTP port); 0: one per CPU core available, a container CPU limit included; kafka transport only (the embedded log runs one)'),
    replicas: z.number().int().min(0).max(10).default(1).describe('warm standby copies per partition on other instances (k-safety); kafka transport only'),
    rack: z.string().min(1).optional().describe('failure domain of this instance (node or zone); standbys prefer another rack; kafka transport only'),
    advertisedUrl: z
      .string()
      .url()
      .optional()
      .meta({ description: "how other instances reach this one's HTTP API (forwarded reads); kafka transport only", shownDefault: '`http://<host name>:<http.port>`' }),
    snapshotIntervalMs: z.number().int().min(0).default(60_000).describe('how often each active partition writes a snapshot to Redis when it changed; 0 = only on graceful stop'),
    redis: z
      .object({
        url: z.string().min(1).optional().describe('Redis for snapshots (`redis://` or `rediss://`); unset disables snapshots'),
        password: z.string().min(1).optional().describe('Redis password'),
        tls: z.boolean().default(false).describe('connect to Redis with TLS (also implied by a `rediss://` URL)'),
        caFile: z.string().min(1).optional().describe("PEM file of the CA that signed the Redis server's certificate (TLS); unset: the system's CAs"),
        certFile: z.string().min(1).optional().describe('PEM client certificate, for a Redis server that requires one (`tls-auth-clients yes`; with keyFile)'),
        keyFile: z.string().min(1).optional().describe('PEM client key, with certFile'),
        keep: z.number().int().min(1).max(100).default(2).describe('snapshots kept per partition'),
      })
      .strict()
      .prefault({}),
    sessionTimeoutMs: z
      .number()
      .int()
      .min(1000)
      .max(300_000)
      .default(10_000)
      .describe(`Kafka consumer group session timeout: how long a silent instance keeps its partitions; at least ${MIN_KAFKA_SESSION_TIMEOUT_MS} on kafka (${HEARTBEAT_RULE})`),
    kafka: z
      .object({
        brokers: z.array(z.string().min(1)).min(1).default(['127.0.0.1:9092']).describe('bootstrap brokers, `host:port`; comma-separated in the environment'),
        clientId: z.string().min(1).default('farad').describe('client id sent to the brokers'),
        replicationFactor: z.number().int().min(-1).max(32).default(-1).describe('replication factor of the topics farad creates; -1 = the broker default'),
        maxQueuedRecords: z.number().int().min(100).default(20_000).describe('records buffered per partition before its fetching pauses'),
        transactionTimeoutMs: z.number().int().min(1000).default(60_000).describe('Kafka transaction timeout'),
        ssl: z
          .object({
            enabled: z.boolean().default(false).describe('connect to the brokers with TLS'),
            caFile: z.string().min(1).optional().describe("PEM file of the CA that signed the brokers' certificates"),
            certFile: z.string().min(1).optional().describe('PEM client certificate, for mutual TLS (with keyFile)'),
            keyFile: z.string().min(1).optional().describe('PEM client key, for mutual TLS (with certFile)'),
            rejectUnauthorized: z.boolean().default(true).describe("verify the brokers' certificates"),
          })
          .strict()
          .prefault({}),
        sasl: z
          .object({
            mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional().describe('`plain`, `scram-sha-256` or `scram-sha-512`; unset disables SASL'),
            username: z.string().min(1).optional().describe('SASL user name; required with a mechanism'),
            password: z.string().min(1).optional().describe('SASL password; required with a mechanism'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    schemaRegistry: z
      .object({
        url: z.string().url().optional().describe('Confluent-compatible schema registry; when set, records use the Confluent wire format'),
        username: z.string().min(1).optional().describe('schema registry basic auth user name'),
        password: z.string().min(1).optional().describe('schema registry basic auth password'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    const { sasl, ssl } = config.kafka;
    if (sasl.mechanism && (!sasl.username || !sasl.password)) {
      ctx.addIssue({
        code: 'custom',
        path: ['kafka', 'sasl', 'mechanism'],
        message: `kafka.sasl.mechanism "${sasl.mechanism}" needs kafka.sasl.username and kafka.sasl.password`,
      });
    }
    if (!sasl.mechanism && (sasl.username || sasl.password)) {
      ctx.addIssue({ code: 'custom', path: ['kafka', 'sasl', 'username'], message: 'kafka.sasl.username/password are set but kafka.sasl.mechanism is not' });
    }
    if ((ssl.certFile === undefined) !== (ssl.keyFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['kafka', 'ssl', 'certFile'], message: 'kafka.ssl.certFile and kafka.ssl.keyFile must be set together' });
    }
    redisIssues(config.redis, ctx);
    if (config.sessionTimeoutMs < MIN_KAFKA_SESSION_TIMEOUT_MS && config.transport === 'kafka') {
      ctx.addIssue({
        code: 'custom',
        path: ['sessionTimeoutMs'],
        message: `sessionTimeoutMs must be at least ${MIN_KAFKA_SESSION_TIMEOUT_MS} with the kafka transport (${HEARTBEAT_RULE})`,
      });
    }
  });

/**
 * Redis settings that contradict each other: TLS files for a connection without TLS, half a
 * client certificate, a password both in `redis.password` and in the URL (one would be ignored).
 */
function redisIssues(
  redis: { url?: string | undefined; password?: string | undefined; tls: boolean; caFile?: string | undefined; certFile?: string | undefined; keyFile?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if ((redis.certFile === undefined) !== (redis.keyFile === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['redis', 'certFile'], message: 'redis.certFile and redis.keyFile must be set together' });
  }
  if (redis.url === undefined) return; // no Redis: every redis.* setting is reported as having no effect
  const files = (['caFile', 'certFile', 'keyFile'] as const).filter((f) => redis[f] !== undefined);
  if (files.length > 0 && !redis.tls && !redis.url.startsWith('rediss://')) {
    ctx.addIssue({
      code: 'custom',
      path: ['redis', files[0]!],
      message: `${files.map((f) => `redis.${f}`).join(', ')} ${files.length === 1 ? 'is a TLS setting' : 'are TLS settings'}, but Redis is reached without TLS; set redis.tls: true (FARAD_REDIS_TLS=true) or use a rediss:// URL`,
    });
  }
  let urlPassword = '';
  try {
    urlPassword = new URL(redis.url).password;
  } catch {
    // not a URL farad can parse; ioredis reports it
  }
  if (redis.password !== undefined && urlPassword !== '') {
    ctx.addIssue({ code: 'custom', path: ['redis', 'password'], message: 'redis.password is set and redis.url has a password too; give the password in one of them' });
  }
}

/** The validated fields, as users wrote them plus defaults (the compiled config adds slices). */
export type ConfigFields = z.output<typeof configSchema>;
/** What users write: every field optional (a config file, `overrides`). */
export type ConfigInput = z.input<typeof configSchema>;
