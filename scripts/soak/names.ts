/** Names of one soak run's app and topics (a fresh suffix per run). */

/** Partitions of the soak app and of every input topic: two per instance. */
export const SOAK_PARTITIONS = 6;

export interface SoakNames {
  readonly app: string;
  readonly votes: string;
  readonly transactions: string;
  readonly voteResults: string;
  readonly rejections: string;
  readonly transferResults: string;
  readonly changelog: string;
  readonly dlq: string;
  /** farad's multi-partition protocol topic. */
  readonly protocol: string;
  readonly schemas: string;
  readonly dlqReplays: string;
}

export function soakNames(suffix: string): SoakNames {
  const app = `soak_${suffix}`;
  return {
    app,
    votes: `soak-votes_${suffix}`,
    transactions: `soak-transactions_${suffix}`,
    voteResults: `soak-vote-results_${suffix}`,
    rejections: `soak-rejections_${suffix}`,
    transferResults: `soak-transfer-results_${suffix}`,
    changelog: `${app}-changelog`,
    dlq: `${app}-dlq`,
    protocol: `${app}-mp`,
    schemas: `${app}-schemas`,
    dlqReplays: `${app}-dlq-replays`,
  };
}

/** Every topic a run creates or farad creates for it (clean-up). */
export function allTopics(names: SoakNames): string[] {
  return [names.votes, names.transactions, names.voteResults, names.rejections, names.transferResults, names.changelog, names.dlq, names.protocol, names.schemas, names.dlqReplays];
}
