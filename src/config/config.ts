import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors.js';

/**
 * farad's configuration. Sources, lowest first: these defaults, the config file (YAML or JSON),
 * then `FARAD_*` environment variables, one per field: the path in UPPER_SNAKE_CASE
 * (`http.bodyLimitBytes` → `FARAD_HTTP_BODY_LIMIT_BYTES`); app settings are
 * `FARAD_SETTINGS_<NAME>` (`maxVotesPerPhone` → `FARAD_SETTINGS_MAX_VOTES_PER_PHONE`).
 */
const configSchema = z
  .object({
    /** Where events flow: `embedded` (single node, files under dataDir) or `kafka`. Default `embedded`. */
    transport: z.enum(['embedded', 'kafka']).default('embedded'),
    /** Directory of the embedded log. Default `./data`. */
    dataDir: z.string().min(1).default('./data'),
    /** Longest time a batch stays open before it commits. Default 100 ms. */
    commitIntervalMs: z.number().int().min(1).max(60_000).default(100),
    /** Most input records per batch (per transaction). Default 10000. */
    maxBatchRecords: z.number().int().min(1).max(1_000_000).default(10_000),
    /** First delay before retrying a failed commit; doubles up to 30 s. Default 200 ms. */
    retryBackoffMs: z.number().int().min(1).default(200),
    /** Log level: fatal, error, warn, info, debug, trace or silent. Default `info`. */
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    http: z
      .object({
        /** Port of the HTTP API. Default 8080; 0 picks a free port. */
        port: z.number().int().min(0).max(65535).default(8080),
        /** Address to listen on. Default `0.0.0.0`. */
        host: z.string().min(1).default('0.0.0.0'),
        /** When set, POST /events, /tables and /queries need `Authorization: Bearer <token>`. */
        token: z.string().min(1).optional(),
        /** Largest request body; larger ones get 413. Default 1 MiB. */
        bodyLimitBytes: z.number().int().min(1024).default(1_048_576),
      })
      .strict()
      .prefault({}),
    /** Values of the app's `settings`, by name. */
    settings: z.record(z.string(), z.unknown()).default({}),
    /** Stable name of this instance (the pod name on Kubernetes). Default: the host name. */
    instanceId: z.string().min(1).default(hostname()),
    /** Warm standby copies per partition on other instances (k-safety). Default 1. */
    replicas: z.number().int().min(0).max(10).default(1),
    /** Failure domain of this instance (node or zone); standbys prefer another rack. */
    rack: z.string().min(1).optional(),
    /** How other instances reach this one's HTTP API (forwarded reads). Default http://<host name>:<http.port>. */
    advertisedUrl: z.string().url().optional(),
    /** How often each active partition writes a snapshot to Redis; 0 disables periodic snapshots. Default 60 s. */
    snapshotIntervalMs: z.number().int().min(0).default(60_000),
    redis: z
      .object({
        /** Redis for snapshots (`redis://` or `rediss://`); unset disables snapshots. */
        url: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
        /** Connect with TLS (also implied by a `rediss://` URL). Default false. */
        tls: z.boolean().default(false),
        /** Snapshots kept per partition. Default 2. */
        keep: z.number().int().min(1).max(100).default(2),
      })
      .strict()
      .prefault({}),
    /** Consumer group session timeout: how long a silent instance keeps its partitions. Default 10 s. */
    sessionTimeoutMs: z.number().int().min(1000).max(300_000).default(10_000),
    kafka: z
      .object({
        /** Bootstrap brokers, `host:port`; in the environment a comma-separated list. Default `127.0.0.1:9092`. */
        brokers: z.array(z.string().min(1)).min(1).default(['127.0.0.1:9092']),
        /** Client id sent to the brokers. Default `farad`. */
        clientId: z.string().min(1).default('farad'),
        /** Replication factor of the topics farad creates; -1 uses the broker's default. Default -1. */
        replicationFactor: z.number().int().min(-1).max(32).default(-1),
        /** Most records buffered per partition before its fetching pauses. Default 20000. */
        maxQueuedRecords: z.number().int().min(100).default(20_000),
        /** Kafka transaction timeout. Default 60 s. */
        transactionTimeoutMs: z.number().int().min(1000).default(60_000),
        ssl: z
          .object({
            /** Connect with TLS. Default false. */
            enabled: z.boolean().default(false),
            /** PEM file of the CA that signed the brokers' certificates. */
            caFile: z.string().min(1).optional(),
            /** PEM client certificate and key, for mutual TLS. */
            certFile: z.string().min(1).optional(),
            keyFile: z.string().min(1).optional(),
            /** Verify the brokers' certificates. Default true. */
            rejectUnauthorized: z.boolean().default(true),
          })
          .strict()
          .prefault({}),
        sasl: z
          .object({
            /** `plain`, `scram-sha-256` or `scram-sha-512`; unset disables SASL. */
            mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
            username: z.string().min(1).optional(),
            password: z.string().min(1).optional(),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    schemaRegistry: z
      .object({
        /** Confluent-compatible schema registry; when set, records use the Confluent wire format. */
        url: z.string().url().optional(),
        username: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
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
    if (config.sessionTimeoutMs < 3 * 1000 && config.transport === 'kafka') {
      ctx.addIssue({ code: 'custom', path: ['sessionTimeoutMs'], message: 'sessionTimeoutMs must be at least 3000 with the kafka transport (heartbeats run every sessionTimeoutMs / 3)' });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** Leaf fields that environment variables may set, with how to parse them. */
const ENV_FIELDS: ReadonlyArray<{ path: string; type: 'string' | 'number' | 'boolean' | 'list' }> = [
  { path: 'transport', type: 'string' },
  { path: 'dataDir', type: 'string' },
  { path: 'commitIntervalMs', type: 'number' },
  { path: 'maxBatchRecords', type: 'number' },
  { path: 'retryBackoffMs', type: 'number' },
  { path: 'logLevel', type: 'string' },
  { path: 'http.port', type: 'number' },
  { path: 'http.host', type: 'string' },
  { path: 'http.token', type: 'string' },
  { path: 'http.bodyLimitBytes', type: 'number' },
  { path: 'instanceId', type: 'string' },
  { path: 'replicas', type: 'number' },
  { path: 'rack', type: 'string' },
  { path: 'advertisedUrl', type: 'string' },
  { path: 'snapshotIntervalMs', type: 'number' },
  { path: 'redis.url', type: 'string' },
  { path: 'redis.password', type: 'string' },
  { path: 'redis.tls', type: 'boolean' },
  { path: 'redis.keep', type: 'number' },
  { path: 'sessionTimeoutMs', type: 'number' },
  { path: 'kafka.brokers', type: 'list' },
  { path: 'kafka.clientId', type: 'string' },
  { path: 'kafka.replicationFactor', type: 'number' },
  { path: 'kafka.maxQueuedRecords', type: 'number' },
  { path: 'kafka.transactionTimeoutMs', type: 'number' },
  { path: 'kafka.ssl.enabled', type: 'boolean' },
  { path: 'kafka.ssl.caFile', type: 'string' },
  { path: 'kafka.ssl.certFile', type: 'string' },
  { path: 'kafka.ssl.keyFile', type: 'string' },
  { path: 'kafka.ssl.rejectUnauthorized', type: 'boolean' },
  { path: 'kafka.sasl.mechanism', type: 'string' },
  { path: 'kafka.sasl.username', type: 'string' },
  { path: 'kafka.sasl.password', type: 'string' },
  { path: 'schemaRegistry.url', type: 'string' },
  { path: 'schemaRegistry.username', type: 'string' },
  { path: 'schemaRegistry.password', type: 'string' },
];

const SETTINGS_PREFIX = 'FARAD_SETTINGS_';

/** `http.bodyLimitBytes` → `FARAD_HTTP_BODY_LIMIT_BYTES`. */
export function envNameOf(path: string): string {
  return 'FARAD_' + path.replace(/\./g, '_').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** `MAX_VOTES_PER_PHONE` → `maxVotesPerPhone`. */
function camelOf(upperSnake: string): string {
  return upperSnake.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export interface LoadOptions {
  /** Path of a YAML or JSON config file. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Values that win over the file but not over the environment (CLI flags, tests). */
  overrides?: ConfigInput;
}

/** Loads, merges and validates configuration; errors name the field and where it came from. */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const sources = new Map<string, string>();
  let raw: Record<string, unknown> = {};
  if (options.file) {
    raw = readConfigFile(options.file);
    markSources(raw, '', `config file ${options.file}`, sources);
  }
  if (options.overrides) {
    raw = merge(raw, options.overrides as Record<string, unknown>);
    markSources(options.overrides as Record<string, unknown>, '', 'overrides', sources);
  }

  for (const field of ENV_FIELDS) {
    const name = envNameOf(field.path);
    const text = env[name];
    if (text === undefined || text === '') continue;
    const value = parseEnvValue(field.type, text);
    raw = setPath(raw, field.path.split('.'), value);
    sources.set(field.path, `environment variable ${name}`);
  }
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith(SETTINGS_PREFIX) || text === undefined || text === '') continue;
    const key = camelOf(name.slice(SETTINGS_PREFIX.length));
    raw = setPath(raw, ['settings', key], text);
    sources.set(`settings.${key}`, `environment variable ${name}`);
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const path = issue.path.map(String).join('.');
      const unknownKeys = issue.code === 'unrecognized_keys' ? ` (${issue.keys.join(', ')})` : '';
      // An unknown key is reported at its parent's path; its own path says where it was written.
      const ownPath = issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? (path ? `${path}.${issue.keys[0]}` : issue.keys[0]) : path;
      const source = sources.get(ownPath) ?? closestSource(path, sources) ?? 'configuration';
      return `${path || '(top level)'}${unknownKeys}: ${issue.message} [from ${source}]`;
    });
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`, { field: parsed.error.issues[0]?.path.map(String).join('.') });
  }
  return parsed.data;
}

function parseEnvValue(type: 'string' | 'number' | 'boolean' | 'list', text: string): unknown {
  const trimmed = text.trim();
  switch (type) {
    case 'number':
      return /^-?\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : text;
    case 'boolean':
      return trimmed === 'true' ? true : trimmed === 'false' ? false : text;
    case 'list':
      return trimmed.split(',').map((item) => item.trim()).filter((item) => item !== '');
    default:
      return text;
  }
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = parseYaml(text); // YAML is a superset of JSON
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid YAML/JSON: ${(err as Error).message}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(`config file ${file} must hold a mapping of settings`);
  return value as Record<string, unknown>;
}

function markSources(value: Record<string, unknown>, prefix: string, source: string, into: Map<string, string>): void {
  for (const [key, inner] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    into.set(path, source);
    if (inner && typeof inner === 'object' && !Array.isArray(inner)) markSources(inner as Record<string, unknown>, path, source, into);
  }
}

function closestSource(path: string, sources: Map<string, string>): string | undefined {
  for (let parts = path.split('.'); parts.length > 0; parts = parts.slice(0, -1)) {
    const hit = sources.get(parts.join('.'));
    if (hit) return hit;
  }
  return undefined;
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): Record<string, unknown> {
  const [head, ...rest] = path;
  if (head === undefined) return target;
  if (rest.length === 0) return { ...target, [head]: value };
  const inner = target[head];
  const base = inner && typeof inner === 'object' && !Array.isArray(inner) ? (inner as Record<string, unknown>) : {};
  return { ...target, [head]: setPath(base, rest, value) };
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  let out = base;
  for (const [key, value] of Object.entries(over)) {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const inner = out[key];
      out = { ...out, [key]: merge(inner && typeof inner === 'object' ? (inner as Record<string, unknown>) : {}, value as Record<string, unknown>) };
    } else if (value !== undefined) out = { ...out, [key]: value };
  }
  return out;
}

/** Names of all environment variables farad reads, for docs and `--help`. */
export function environmentVariables(): string[] {
  return [...ENV_FIELDS.map((f) => envNameOf(f.path)), `${SETTINGS_PREFIX}<NAME>`];
}
