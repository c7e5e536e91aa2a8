import './kafkajs-patches.js';
import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type KafkaConfig, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';

/** The Kafka connection settings farad passes through from its configuration. */
export interface KafkaConnection {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly ssl: {
    readonly enabled: boolean;
    readonly caFile?: string | undefined;
    readonly certFile?: string | undefined;
    readonly keyFile?: string | undefined;
    readonly rejectUnauthorized: boolean;
  };
  readonly sasl: {
    readonly mechanism?: 'plain' | 'scram-sha-256' | 'scram-sha-512' | undefined;
    readonly username?: string | undefined;
    readonly password?: string | undefined;
  };
}

const LEVEL_NAMES: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** kafkajs client options: TLS and SASL (PLAIN, SCRAM-SHA-256/512) as configured; logs into pino. */
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
      ...(ssl.caFile ? { ca: [readFileSync(ssl.caFile, 'utf8')] } : {}),
      ...(ssl.certFile ? { cert: readFileSync(ssl.certFile, 'utf8') } : {}),
      ...(ssl.keyFile ? { key: readFileSync(ssl.keyFile, 'utf8') } : {}),
    };
  }
  if (sasl.mechanism) {
    config.sasl = { mechanism: sasl.mechanism, username: sasl.username!, password: sasl.password! } as SASLOptions;
  }
  return config;
}

export function createKafka(connection: KafkaConnection, logger: Logger): Kafka {
  return new Kafka(kafkaClientConfig(connection, logger));
}
