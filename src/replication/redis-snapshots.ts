import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { ConfigError, describeError, SnapshotStoreUnavailableError, TransportError } from '../errors.js';
import type { SnapshotInfo, SnapshotStore } from './interfaces.js';
import { CLIENT_CERT_REFUSED, UNTRUSTED_SERVER } from '../tls.js';

export interface RedisSnapshotOptions {
  readonly url: string;
  /** The password (AUTH); or in the URL, `redis://:<password>@host:port`. */
  readonly password?: string | undefined;
  /** TLS; a `rediss://` URL means TLS too. */
  readonly tls: boolean;
  /** PEM file of the CA that signed the server's certificate (TLS); unset: the system's CAs. */
  readonly caFile?: string | undefined;
  /** PEM client certificate and key, for a server that requires one (`tls-auth-clients yes`). */
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
  /** Snapshots kept per partition (the current one included). */
  readonly keep: number;
  readonly app: string;
  readonly logger: Logger;
}

/** How long a connection attempt may take, TLS handshake included. */
const CONNECT_TIMEOUT_MS = 5_000;

// Publish + prune in one step: the pointer moves atomically and old snapshots go with it.
const PUBLISH = `
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if excess > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess - 1)) do
    if id ~= ARGV[1] then
      redis.call('DEL', ARGV[5] .. id)
      redis.call('ZREM', KEYS[2], id)
      redis.call('HDEL', KEYS[3], id)
    end
  end
end
return 1`;

/**
 * Snapshots in Redis. Per partition (keys share a hash slot, so this works on Redis Cluster too):
 * `farad:{<app>:<p>}:data:<id>` the bytes, `…:current` the published id, `…:index` ids by time,
 * `…:info` their metadata. Commands fail fast while Redis is down (no offline queue), so a
 * snapshot attempt never stalls processing; the client reconnects by itself.
 */
export class RedisSnapshotStore implements SnapshotStore {
  private readonly redis: Redis;
  /** Redis failed since it last answered (logged once per outage). */
  private down = false;
  /** Set while {@link open} waits for Redis's first answer: hears the first failure instead of the log. */
  private firstFailure: ((err: Error) => void) | undefined;

  /**
   * Connects and waits for Redis's first answer, at most the connect timeout. A setup mistake
   * (a refused password, a server certificate the CA does not vouch for, a refused client
   * certificate) is a ConfigError naming the setting to change; Redis merely unreachable is
   * logged, start-up goes on and snapshots are skipped until Redis answers.
   */
  static async open(options: RedisSnapshotOptions): Promise<RedisSnapshotStore> {
    const store = new RedisSnapshotStore(options);
    const mistake = await new Promise<ConfigError | undefined>((resolve) => {
      const settle = (outcome: ConfigError | undefined): void => {
        clearTimeout(timer);
        store.redis.off('ready', answered);
        store.firstFailure = undefined;
        resolve(outcome);
      };
      const answered = (): void => settle(undefined);
      const timer = setTimeout(() => {
        options.logger.warn({ redis: store.address() }, `redis did not answer within ${CONNECT_TIMEOUT_MS / 1000} s; snapshots are skipped until it does`);
        settle(undefined);
      }, CONNECT_TIMEOUT_MS + 1_000);
      store.redis.once('ready', answered);
      store.firstFailure = (err) => {
        const found = store.explain(err);
        settle(found?.fatal ? found.error : undefined);
        if (!found?.fatal) store.onError(err);
      };
    });
    if (mistake) {
      store.redis.disconnect();
      throw mistake;
    }
    return store;
  }

  constructor(private readonly options: RedisSnapshotOptions) {
    const redisOptions: RedisOptions = {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: CONNECT_TIMEOUT_MS,
      retryStrategy: (times) => Math.min(times * 500, 5_000),
      ...(options.password ? { password: options.password } : {}),
      ...(usesTls(options) ? { tls: tlsOptions(options) } : {}),
    };
    this.redis = new Redis(options.url, redisOptions);
    this.redis.on('error', (err: Error) => (this.firstFailure ?? this.onError.bind(this))(err));
    this.redis.on('ready', () => {
      if (this.down) options.logger.info('redis is back; snapshots resume');
      this.down = false;
    });
  }

  private onError(err: Error): void {
    if (!this.down) {
      const meaning = this.explain(err)?.error.message ?? describeError(err);
      this.options.logger.warn({ redis: this.address(), err: meaning }, 'redis unavailable; snapshots are skipped until it returns');
    }
    this.down = true;
  }

  /** What a connection failure says about the settings (read while ioredis still has the connection's status). */
  private explain(err: Error): FailureMeaning | undefined {
    return explainFailure(err, this.options, this.address(), this.redis.status === 'connect');
  }

  /** The URL without its password, for messages. */
  private address(): string {
    return this.options.url.replace(/\/\/[^@/]*@/, '//***@');
  }

  private key(partition: number, suffix: string): string {
    return `farad:{${this.options.app}:${partition}}:${suffix}`;
  }

  async save(partition: number, bytes: Buffer, info: Omit<SnapshotInfo, 'id' | 'current' | 'bytes'>): Promise<string> {
    const id = `${String(info.takenAt).padStart(15, '0')}-${randomUUID().slice(0, 8)}`;
    const meta = JSON.stringify({ ...info, bytes: bytes.length });
    await this.call(async () => {
      await this.redis.set(this.key(partition, `data:${id}`), bytes);
      await this.redis.eval(
        PUBLISH,
        3,
        this.key(partition, 'current'),
        this.key(partition, 'index'),
        this.key(partition, 'info'),
        id,
        String(info.takenAt),
        String(this.options.keep),
        meta,
        this.key(partition, 'data:'),
      );
    });
    return id;
  }

  async load(partition: number, id?: string): Promise<Buffer | undefined> {
    return this.call(async () => {
      const chosen = id ?? (await this.redis.get(this.key(partition, 'current')));
      if (!chosen) return undefined;
      return (await this.redis.getBuffer(this.key(partition, `data:${chosen}`))) ?? undefined;
    });
  }

  async list(partition?: number): Promise<SnapshotInfo[]> {
    return this.call(async () => {
      const partitions = partition === undefined ? await this.partitionsWithSnapshots() : [partition];
      const out: SnapshotInfo[] = [];
      for (const p of partitions) {
        const current = await this.redis.get(this.key(p, 'current'));
        const infos = await this.redis.hgetall(this.key(p, 'info'));
        for (const [id, json] of Object.entries(infos)) {
          const info = JSON.parse(json) as Omit<SnapshotInfo, 'id' | 'current'>;
          out.push({ ...info, id, partition: p, current: id === current });
        }
      }
      return out.sort((a, b) => a.partition - b.partition || b.takenAt - a.takenAt);
    });
  }

  async publish(partition: number, id: string): Promise<void> {
    await this.call(async () => {
      const exists = await this.redis.exists(this.key(partition, `data:${id}`));
      if (!exists) throw new TransportError(`no snapshot ${id} of partition ${partition}`, { partition });
      await this.redis.set(this.key(partition, 'current'), id);
    });
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  private async partitionsWithSnapshots(): Promise<number[]> {
    const found = new Set<number>();
    let cursor = '0';
    const pattern = `farad:{${this.options.app}:*}:current`;
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const match = /:(\d+)\}:current$/.exec(key);
        if (match) found.add(Number(match[1]));
      }
    } while (cursor !== '0');
    return [...found].sort((a, b) => a - b);
  }

  /** Waits briefly for the first connection; while Redis is down (reconnecting) fails at once. */
  private async connected(): Promise<void> {
    const status = this.redis.status;
    if (status === 'ready' || status === 'reconnecting' || status === 'end' || status === 'close') return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, 3_000);
      this.redis.once('ready', done);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  private async call<T>(work: () => Promise<T>): Promise<T> {
    try {
      await this.connected();
      return await work();
    } catch (err) {
      if (err instanceof TransportError) throw err;
      throw new SnapshotStoreUnavailableError(`redis ${this.address()}: ${(err as Error).message}`, {}, { cause: err });
    }
  }
}

// ---- TLS and AUTH: the files, and what a failure says about the settings --------------------------

type TlsFile = 'caFile' | 'certFile' | 'keyFile';

/** How messages name each setting: its path and its environment variable. */
const SETTING: Readonly<Record<TlsFile | 'password' | 'url', string>> = {
  caFile: 'redis.caFile (FARAD_REDIS_CA_FILE)',
  certFile: 'redis.certFile (FARAD_REDIS_CERT_FILE)',
  keyFile: 'redis.keyFile (FARAD_REDIS_KEY_FILE)',
  password: 'redis.password (FARAD_REDIS_PASSWORD)',
  url: 'redis.url (FARAD_REDIS_URL)',
};

function usesTls(options: RedisSnapshotOptions): boolean {
  return options.tls || options.url.startsWith('rediss://');
}

/** Node's TLS options from the PEM files; a file that cannot be read or is not what it should be is a ConfigError naming its setting. */
function tlsOptions(options: RedisSnapshotOptions): ConnectionOptions {
  const tls: ConnectionOptions = {};
  if (options.caFile) tls.ca = pemFile(options, 'caFile', 'no PEM certificate (-----BEGIN CERTIFICATE-----)', (text) => new X509Certificate(text));
  if (options.certFile && options.keyFile) {
    const cert = pemFile(options, 'certFile', 'no PEM certificate (-----BEGIN CERTIFICATE-----)', (text) => new X509Certificate(text));
    const key = pemFile(options, 'keyFile', 'no private key farad can read (PEM, not encrypted)', (text) => createPrivateKey(text));
    if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) {
      throw new ConfigError(`${SETTING.keyFile}: ${options.keyFile} is not the private key of the certificate in ${SETTING.certFile} (${options.certFile}); give the key that certificate was issued for`, {
        field: 'redis.keyFile',
      });
    }
    Object.assign(tls, { cert, key });
  }
  return tls;
}

/** The file's text, once `check` has parsed it. */
function pemFile(options: RedisSnapshotOptions, file: TlsFile, expected: string, check: (text: string) => unknown): string {
  const path = options[file]!;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${SETTING[file]}: cannot read ${path}: ${describeError(err)}`, { field: `redis.${file}` }, { cause: err });
  }
  try {
    check(text);
  } catch (err) {
    throw new ConfigError(`${SETTING[file]}: ${path} holds ${expected}: ${describeError(err)}`, { field: `redis.${file}` }, { cause: err });
  }
  return text;
}

/** Redis's error codes (the first word of its error replies) for a missing or wrong password. */
const AUTH_REFUSED = new Set(['WRONGPASS', 'NOAUTH']);

/** A connection failure explained in terms of the settings; `fatal`: retrying cannot mend it, so start-up stops on it. */
interface FailureMeaning {
  readonly error: ConfigError;
  readonly fatal: boolean;
}

/**
 * What a connection failure says about the settings, or undefined when nothing (Redis down, a
 * network fault). `connected`: the connection was up (TLS handshake done) and Redis had not
 * answered yet when it failed.
 */
function explainFailure(err: Error & { code?: string; reason?: string }, options: RedisSnapshotOptions, address: string, connected: boolean): FailureMeaning | undefined {
  const code = err.code ?? '';
  const where = `Redis at ${address}`;
  const fatal = (message: string, field: string): FailureMeaning => ({ error: new ConfigError(message, { field }, { cause: err }), fatal: true });
  const replyCode = err.name === 'ReplyError' ? (err.message.split(' ')[0] ?? '') : '';
  if (AUTH_REFUSED.has(replyCode) || (replyCode === 'ERR' && /invalid password/i.test(err.message))) {
    return passwordOf(options)
      ? fatal(`${where} refused the password (${replyCode}); check ${SETTING.password} or the password in ${SETTING.url}`, 'redis.password')
      : fatal(`${where} requires a password (${replyCode}) and none is set; set ${SETTING.password}, or give it in ${SETTING.url} as redis://:<password>@host:port`, 'redis.password');
  }
  const reason = err.reason ?? err.message;
  if (UNTRUSTED_SERVER.has(code)) {
    const trusted = options.caFile ? `the CA in ${SETTING.caFile}, ${options.caFile}` : `a CA this system trusts, and ${SETTING.caFile} is not set`;
    return fatal(`${where}: its TLS certificate is not signed by ${trusted} (${reason}); set redis.caFile to the PEM file of the CA that signed the Redis server's certificate`, 'redis.caFile');
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return fatal(`${where}: its TLS certificate is not issued for that host name or address (${reason}); name the server in ${SETTING.url} as its certificate does (subjectAltName)`, 'redis.url');
  }
  if (CLIENT_CERT_REFUSED.has(code)) {
    return options.certFile
      ? fatal(`${where} refused the client certificate in ${SETTING.certFile}, ${options.certFile} (${reason}); it must be signed by a CA the server trusts (tls-ca-cert-file): fix redis.certFile and redis.keyFile`, 'redis.certFile')
      : fatal(`${where} requires a client certificate (${reason}); set ${SETTING.certFile} and ${SETTING.keyFile}, or let the server accept clients without one (tls-auth-clients no)`, 'redis.certFile');
  }
  if (connected && code === 'ECONNRESET') {
    // A server refusing a client certificate under TLS 1.3 often resets the connection before its
    // alert is read; a plaintext client at a TLS port is reset too. So is a client behind a proxy
    // with no server to reach: hence a hint in the log, not a refusal.
    const hint = usesTls(options)
      ? `${where} closed the connection right after the TLS handshake (${reason}); if it requires client certificates (tls-auth-clients yes, Redis's default with TLS), set ${SETTING.certFile} and ${SETTING.keyFile} to one signed by a CA it trusts`
      : `${where} closed the connection before answering (${reason}); if it serves TLS (tls-port), use a rediss:// URL in ${SETTING.url} or set redis.tls: true (FARAD_REDIS_TLS=true)`;
    return { error: new ConfigError(hint, { field: usesTls(options) ? 'redis.certFile' : 'redis.tls' }, { cause: err }), fatal: false };
  }
  return undefined;
}

/** The password given in either place (the schema refuses both at once). */
function passwordOf(options: RedisSnapshotOptions): string | undefined {
  if (options.password) return options.password;
  try {
    return decodeURIComponent(new URL(options.url).password) || undefined;
  } catch {
    return undefined;
  }
}
