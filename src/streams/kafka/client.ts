import './kafkajs-patches.js';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { Kafka, logLevel, type ISocketFactory, type KafkaConfig, type RetryOptions, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import { ConfigError, describeError } from '../../errors.js';
import { CLIENT_CERT_REFUSED, EXPIRED_SERVER, NOT_TLS, UNTRUSTED_SERVER } from '../../tls.js';

/** The Kafka connection settings farad passes through from its configuration. */
export interface KafkaConnection {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly ssl: KafkaTlsSettings;
  readonly sasl: {
    readonly mechanism?: 'plain' | 'scram-sha-256' | 'scram-sha-512' | undefined;
    readonly username?: string | undefined;
    readonly password?: string | undefined;
  };
}

/** `kafka.ssl`: TLS to the brokers, with the CA that signed their certificates and a client certificate for mutual TLS. */
export interface KafkaTlsSettings {
  readonly enabled: boolean;
  readonly caFile?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly rejectUnauthorized: boolean;
}

type TlsFile = 'caFile' | 'certFile' | 'keyFile';

/** How messages name each TLS file setting: its path and its environment variable. */
const TLS_FILE_SETTINGS: Readonly<Record<TlsFile, string>> = {
  caFile: 'kafka.ssl.caFile (FARAD_KAFKA_SSL_CA_FILE)',
  certFile: 'kafka.ssl.certFile (FARAD_KAFKA_SSL_CERT_FILE)',
  keyFile: 'kafka.ssl.keyFile (FARAD_KAFKA_SSL_KEY_FILE)',
};

const LEVEL_NAMES: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/**
 * kafkajs client options: TLS and SASL (PLAIN, SCRAM-SHA-256/512) as configured; logs into pino.
 * A TLS file that cannot be read is a ConfigError naming its setting.
 */
export function kafkaClientConfig(connection: KafkaConnection, logger: Logger): KafkaConfig {
  const { ssl, sasl } = connection;
  const config: KafkaConfig = {
    clientId: connection.clientId,
    brokers: [...connection.brokers],
    // kafkajs logs every rebalance step as an error; farad reports what matters itself.
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => {
      const { message, ...rest } = entry.log;
      // Rebalances are routine (farad logs the resulting assignment); kafkajs reports them as errors.
      const routine = /rebalanc|rejoin|concurrent.transactions/i.test(`${message} ${String(rest['error'] ?? '')}`);
      const level = routine ? 'debug' : (LEVEL_NAMES[entry.level] ?? 'info');
      logger[level === 'error' ? 'warn' : level]({ kafkajs: entry.namespace, ...rest }, message);
    },
  };
  if (ssl.enabled) {
    config.ssl = {
      rejectUnauthorized: ssl.rejectUnauthorized,
      ...(ssl.caFile ? { ca: [readTlsFile(ssl, 'caFile')] } : {}),
      ...(ssl.certFile ? { cert: readTlsFile(ssl, 'certFile') } : {}),
      ...(ssl.keyFile ? { key: readTlsFile(ssl, 'keyFile') } : {}),
    };
    config.socketFactory = explainingSocketFactory(ssl);
  }
  if (sasl.mechanism) {
    config.sasl = { mechanism: sasl.mechanism, username: sasl.username!, password: sasl.password! } as SASLOptions;
  }
  return config;
}

/** How long the group consumer keeps retrying through a broker outage before it gives up. */
export const CONSUMER_OUTAGE_BUDGET_MS = 45_000;

/**
 * Retries of the group consumer (its client's too, which its connections and metadata use).
 * kafkajs's default budget (5 retries, ~9 s) is shorter than a broker restart (15–30 s here):
 * the consumer then "crashed" and kafkajs restarted it as a new group member, and a new member
 * must drop every lease it held (its partitions may have moved meanwhile), so a routine broker
 * restart cost a re-fence and restore of every partition (fault C in RELIABILITY.md). With this
 * budget the consumer rides the restart out as the same member; a longer outage still ends in a
 * crash and a rejoin. A coordinator that reloads its groups restarts their sessions, so retries
 * stay well inside a session (a third of it, 1–5 s); that also bounds how long a stop waits.
 */
export function consumerRetry(sessionTimeoutMs: number): { retries: number; initialRetryTime: number; maxRetryTime: number } {
  const initialRetryTime = 300;
  const maxRetryTime = Math.max(1_000, Math.min(5_000, Math.floor(sessionTimeoutMs / 3)));
  let retries = 0;
  for (let waited = 0, wait = initialRetryTime; waited < CONSUMER_OUTAGE_BUDGET_MS; retries++, wait = Math.min(wait * 2, maxRetryTime)) waited += wait;
  return { retries, initialRetryTime, maxRetryTime };
}

/** Retries of farad's other consumers (changelog and topic readers): the same budget. */
export const CONSUMER_RETRY = consumerRetry(15_000);

/**
 * Retries of farad's clients (producers, admin, readers' connections): kafkajs's count, but no
 * single wait over 5 s. kafkajs's waits grow to 30 s, and a consumer that is stopped waits for
 * the connection retry it is in: a SIGTERM during a broker outage took 15 s and more. The count
 * is left unset: kafkajs warns when an idempotent producer's is limited.
 */
export const CLIENT_RETRY = { maxRetryTime: 5_000 } as const;

/**
 * A kafkajs client; its TLS files are checked first (a ConfigError names the setting of a file
 * that is not what it should be). `retry` (CLIENT_RETRY by default) applies to every client it makes.
 */
export function createKafka(connection: KafkaConnection, logger: Logger, retry?: RetryOptions): Kafka {
  const config = kafkaClientConfig(connection, logger);
  if (connection.ssl.enabled) checkTlsFiles(connection.ssl);
  return new Kafka({ ...config, retry: retry ?? CLIENT_RETRY });
}

function readTlsFile(ssl: KafkaTlsSettings, file: TlsFile): string {
  const path = ssl[file]!;
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${TLS_FILE_SETTINGS[file]}: cannot read ${path}: ${describeError(err)}`, { field: `kafka.ssl.${file}` }, { cause: err });
  }
}

/**
 * The CA file holds a certificate, the client certificate and key parse and belong together.
 * (Node ignores a CA file without a certificate in it, and the handshake would fail later for
 * a reason far from the cause.)
 */
function checkTlsFiles(ssl: KafkaTlsSettings): void {
  if (ssl.caFile) parsePem(ssl, 'caFile', 'no PEM certificate (-----BEGIN CERTIFICATE-----)', (text) => new X509Certificate(text));
  if (!ssl.certFile || !ssl.keyFile) return; // set together (the schema checks)
  const cert = parsePem(ssl, 'certFile', 'no PEM certificate (-----BEGIN CERTIFICATE-----)', (text) => new X509Certificate(text));
  const key = parsePem(ssl, 'keyFile', 'no private key farad can read (PEM, not encrypted)', (text): KeyObject => createPrivateKey(text));
  if (!cert.checkPrivateKey(key)) {
    throw new ConfigError(
      `${TLS_FILE_SETTINGS.keyFile}: ${ssl.keyFile} is not the private key of the certificate in ${TLS_FILE_SETTINGS.certFile} (${ssl.certFile}); give the key that certificate was issued for`,
      { field: 'kafka.ssl.keyFile' },
    );
  }
}

function parsePem<T>(ssl: KafkaTlsSettings, file: TlsFile, expected: string, parse: (text: string) => T): T {
  try {
    return parse(readTlsFile(ssl, file));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${TLS_FILE_SETTINGS[file]}: ${ssl[file]} holds ${expected}: ${describeError(err)}`, { field: `kafka.ssl.${file}` }, { cause: err });
  }
}


/**
 * What a TLS failure means for farad's settings, or undefined when it says nothing about them.
 * `handshaken`: the client had finished its side of the handshake (a server refusing the
 * client's certificate says so only then, under TLS 1.3).
 */
function explainTlsFailure(err: NodeJS.ErrnoException, address: string, ssl: KafkaTlsSettings, handshaken: boolean): string | undefined {
  const code = err.code ?? '';
  if (UNTRUSTED_SERVER.has(code)) {
    const trusted = ssl.caFile ? `the CA in ${TLS_FILE_SETTINGS.caFile}, ${ssl.caFile}` : `a CA this system trusts, and ${TLS_FILE_SETTINGS.caFile} is not set`;
    return `the certificate of the broker at ${address} is not signed by ${trusted}; set kafka.ssl.caFile to the PEM file of the CA that signed the brokers' certificates`;
  }
  if (EXPIRED_SERVER.has(code)) return `the certificate of the broker at ${address} is expired or not valid yet; renew it on the broker (or check this machine's clock)`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the certificate of the broker at ${address} is not issued for that host name or address; list the brokers in kafka.brokers (FARAD_KAFKA_BROKERS) by a name their certificates carry (subjectAltName)`;
  }
  if (CLIENT_CERT_REFUSED.has(code)) {
    return ssl.certFile
      ? `the broker at ${address} refused the client certificate in ${TLS_FILE_SETTINGS.certFile}, ${ssl.certFile}; it must be signed by a CA in the broker's trust store and be valid now: fix kafka.ssl.certFile and kafka.ssl.keyFile`
      : `the broker at ${address} requires a client certificate (mutual TLS) and farad has none; set ${TLS_FILE_SETTINGS.certFile} and ${TLS_FILE_SETTINGS.keyFile} to a certificate signed by a CA the broker trusts and its key`;
  }
  if (NOT_TLS.has(code) || (!handshaken && (code === 'ECONNRESET' || code === 'EPIPE'))) {
    return `${address} ended the TLS handshake: it does not look like a TLS listener. kafka.ssl.enabled (FARAD_KAFKA_SSL_ENABLED) is true, so every broker in kafka.brokers must be a TLS (SSL or SASL_SSL) listener`;
  }
  return undefined;
}

/**
 * kafkajs's own socket factory (keep-alive included), whose TLS sockets add to a failure's
 * message what it means for farad's settings: kafkajs reports a connection failure only as the
 * socket error's message, and this is how the setting to change reaches the start-up error.
 */
function explainingSocketFactory(settings: KafkaTlsSettings): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
    if (!ssl) return net.connect({ host, port }, onConnect).setKeepAlive(true, 60_000);
    const socket = tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, onConnect);
    socket.setKeepAlive(true, 60_000);
    let handshaken = false;
    socket.once('secureConnect', () => (handshaken = true));
    // Registered before kafkajs's own listener (it subscribes once this returns), so kafkajs sees the message explained.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const meaning = explainTlsFailure(err, `${host}:${port}`, settings, handshaken);
      // OpenSSL's own message carries its source location; its reason is the readable part.
      if (meaning) err.message = `${(err as { reason?: string }).reason ?? err.message.trim()} (${err.code}): ${meaning}`;
    });
    return socket;
  };
}
