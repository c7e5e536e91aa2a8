import { ConfigError } from '../errors.js';
import { envNameOf } from './env.js';
import type { ConfigFields } from './schema.js';
import type { Sources } from './sources.js';

/**
 * Settings that were set (file, overrides or environment) but do nothing with the rest of the
 * configuration. None is silently ignored: a contradiction is refused, a harmless leftover
 * (the Helm chart sets FARAD_DATA_DIR on every transport, for one) becomes a warning.
 */
interface NoEffectRule {
  /** Whether the rule holds for this configuration. */
  readonly when: (config: ConfigFields) => boolean;
  /** The explicitly set paths it is about. */
  readonly covers: (path: string) => boolean;
  /** Why they do nothing; `it` is `it` or `them`. */
  readonly because: (it: string) => string;
  /** What to do instead of removing them. */
  readonly orElse: string;
}

const RULES: readonly NoEffectRule[] = [
  {
    when: (c) => c.transport === 'embedded',
    covers: (path) => path.startsWith('kafka.') || path === 'sessionTimeoutMs',
    because: (it) => `only the kafka transport reads ${it}`,
    orElse: `set transport: kafka (${envNameOf('transport')}=kafka)`,
  },
  {
    when: (c) => c.transport === 'embedded',
    covers: (path) => path === 'rack' || path === 'advertisedUrl' || path === 'workers',
    because: () => 'standbys, forwarded reads and worker processes exist only on the kafka transport',
    orElse: `set transport: kafka (${envNameOf('transport')}=kafka)`,
  },
  {
    when: (c) => c.transport === 'kafka',
    covers: (path) => path.startsWith('retention.'),
    because: (it) => `only the embedded log reads ${it} (set retention on the Kafka topics with the broker's tools)`,
    orElse: `set transport: embedded (${envNameOf('transport')}=embedded)`,
  },
  {
    when: (c) => c.transport === 'kafka',
    covers: (path) => path === 'dataDir',
    because: () => "the kafka transport keeps no log files (this is the embedded log's directory)",
    orElse: `set transport: embedded (${envNameOf('transport')}=embedded)`,
  },
  {
    when: (c) => !c.kafka.ssl.enabled,
    covers: (path) => path.startsWith('kafka.ssl.') && path !== 'kafka.ssl.enabled',
    because: () => 'kafka.ssl.enabled is false, so the brokers are reached without TLS',
    orElse: `set kafka.ssl.enabled: true (${envNameOf('kafka.ssl.enabled')}=true)`,
  },
  {
    when: (c) => c.redis.url === undefined,
    covers: (path) => path.startsWith('redis.'),
    because: () => 'redis.url is not set, so snapshots are off',
    orElse: `set redis.url (${envNameOf('redis.url')})`,
  },
  {
    when: (c) => c.schemaRegistry.url === undefined,
    covers: (path) => path.startsWith('schemaRegistry.'),
    because: () => 'schemaRegistry.url is not set, so no schema registry is used',
    orElse: `set schemaRegistry.url (${envNameOf('schemaRegistry.url')})`,
  },
];

/**
 * Refuses contradictory settings (throws a ConfigError naming both fields and their sources)
 * and returns a warning for each group of settings that have no effect.
 */
export function checkEffects(config: ConfigFields, sources: Sources): string[] {
  refuseContradictions(config, sources);
  const groups = new Map<string, { rule: NoEffectRule; source: string; paths: string[] }>();
  for (const path of sources.explicitPaths()) {
    const rule = RULES.find((r) => r.covers(path) && r.when(config));
    const source = sources.explicit(path);
    if (!rule || source === undefined) continue;
    const key = `${RULES.indexOf(rule)} ${source}`;
    const group = groups.get(key) ?? { rule, source, paths: [] };
    group.paths.push(path);
    groups.set(key, group);
  }
  return [...groups.values()].map(({ rule, source, paths }) => {
    const [it, has] = paths.length === 1 ? ['it', 'has'] : ['them', 'have'];
    return `${paths.join(', ')} [from ${source}] ${has} no effect: ${rule.because(it)}. Remove ${it}, or ${rule.orElse}`;
  });
}

function refuseContradictions(config: ConfigFields, sources: Sources): void {
  const replicasFrom = sources.explicit('replicas');
  if (config.transport === 'embedded' && config.replicas > 0 && replicasFrom !== undefined) {
    const transportFrom = sources.explicit('transport') ?? 'the default';
    throw new ConfigError(
      `invalid configuration: replicas: ${config.replicas} [from ${replicasFrom}] asks for standby copies, but transport: embedded [from ${transportFrom}] ` +
        `is a single node and keeps none. Set replicas: 0 (${envNameOf('replicas')}=0), or transport: kafka (${envNameOf('transport')}=kafka)`,
      { field: 'replicas' },
    );
  }
}
