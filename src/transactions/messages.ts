/**
 * The records of the multi-partition protocol, on the farad-owned topic `<app>-mp` (one partition
 * per app partition). Partition 0 is also the coordinator's inbox: requests and votes go there;
 * prepares and decisions go to each participant's partition; results of consistent queries go to
 * partition 0, where whoever asked reads them. Values are JSON; rows inside are base64 of their
 * changelog encoding (schema-tagged, so instances of two app versions understand each other).
 */
import { CorruptDataError } from '../errors.js';

/** Where a request came from: its input record. */
export interface Origin {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/** A multi-partition procedure's event, forwarded by the partition that read it. */
export interface TxnRequest {
  readonly kind: 'request';
  readonly id: string;
  /** Full name of the event type. */
  readonly event: string;
  /** The input record's value (base64) and key. */
  readonly value: string;
  readonly key: string | null;
  readonly timestamp: number;
  readonly origin: Origin;
  /** Partition keys the procedure declared; empty for `all`. */
  readonly keys: readonly string[];
  readonly all: boolean;
  readonly headers: Readonly<Record<string, string>>;
}

/** A consistent query, asked by an HTTP request on any instance. */
export interface QueryRequest {
  readonly kind: 'query';
  readonly id: string;
  readonly name: string;
  readonly params: Readonly<Record<string, string>>;
}

/** A row read or written by a transaction: `value` is null when the row is absent or deleted. */
export interface ShippedRow {
  readonly table: string;
  readonly key: string | number;
  readonly value: string | null;
}

/** Coordinator → participant: read these keys (and run these queries) at your position; hold if asked. */
export interface Prepare {
  readonly kind: 'prepare';
  readonly round: number;
  readonly keys: readonly string[];
  /** Every row of every partitioned table (`all` procedures). */
  readonly allRows: boolean;
  readonly queries: ReadonlyArray<{ readonly id: string; readonly name: string; readonly params: Readonly<Record<string, string>> }>;
  /** Process nothing else until the decision: the round writes here. */
  readonly hold: boolean;
}

/** Participant → coordinator: the rows and query parts read at the participant's position. */
export interface Vote {
  readonly kind: 'vote';
  readonly round: number;
  readonly partition: number;
  readonly rows: readonly ShippedRow[];
  /** `badParams`: the query rejected its parameters (QueryParamsError), answered 400. */
  readonly parts: ReadonlyArray<{ readonly id: string; readonly value?: unknown; readonly error?: string; readonly badParams?: boolean }>;
}

/** Coordinator → participant: the round is decided; apply these writes (none when nothing committed here). */
export interface Decision {
  readonly kind: 'decision';
  readonly round: number;
  readonly writes: readonly ShippedRow[];
}

/** Coordinator → asker: the merged answer of a consistent query. */
export interface QueryResult {
  readonly kind: 'result';
  readonly id: string;
  readonly value?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
}

export type MpMessage = TxnRequest | QueryRequest | Prepare | Vote | Decision | QueryResult;

const KINDS = new Set(['request', 'query', 'prepare', 'vote', 'decision', 'result']);

export function encodeMessage(message: MpMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}

export function decodeMessage(value: Buffer | null, where: Origin): MpMessage {
  let parsed: unknown;
  try {
    parsed = value === null ? undefined : JSON.parse(value.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const kind = (parsed as { kind?: unknown } | undefined)?.kind;
  if (typeof kind !== 'string' || !KINDS.has(kind)) {
    throw new CorruptDataError(`record ${where.topic}/${where.partition}@${where.offset} is not a multi-partition protocol message`, { partition: where.partition, offset: where.offset });
  }
  return parsed as MpMessage;
}
