/**
 * Consumer group timings derived from `sessionTimeoutMs`. This is their one home: the compiled
 * config's `kafkaGroup` slice carries the results, and the validation message quotes the rule.
 */

/** Shortest session the kafka transport accepts. */
export const MIN_KAFKA_SESSION_TIMEOUT_MS = 3_000;

/** The heartbeat rule in words, for messages and the settings table. */
export const HEARTBEAT_RULE = 'heartbeats run every sessionTimeoutMs / 10, kept between 250 and 1000 ms';

/** Members learn of a rebalance at their next heartbeat: a short interval shortens handovers. */
export function heartbeatIntervalMs(sessionTimeoutMs: number): number {
  return Math.max(250, Math.min(1_000, Math.floor(sessionTimeoutMs / 10)));
}

/** How long the group waits for members to rejoin: three sessions, at least 30 s. */
export function rebalanceTimeoutMs(sessionTimeoutMs: number): number {
  return Math.max(sessionTimeoutMs * 3, 30_000);
}
