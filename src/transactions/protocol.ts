import { describeError, HandlerContractError, QueryParamsError } from '../errors.js';
import { isThenable, MP_TABLE, queryContext, type CompiledProcedure } from '../procedures/index.js';
import { deepFreeze, partitionForKey, type Key } from '../state/index.js';
import type { BatchProtocol, LogRecord, ProtocolHost } from '../streams/index.js';
import { TxnContext } from './context.js';
import {
  decodeMessage,
  encodeMessage,
  type Decision,
  type MpMessage,
  type Prepare,
  type QueryRequest,
  type ShippedRow,
  type TxnRequest,
  type Vote,
} from './messages.js';
import { RoundRows, tableKeyFor } from './rows.js';

const COORDINATOR_ROW = 'coordinator';
const PARTICIPANT_ROW = 'participant';
/** Most transactions and queries decided in one round (a round's cost is mostly fixed: bigger rounds, more throughput). */
export const MAX_ROUND = 1024;

interface OpenRound {
  readonly round: number;
  readonly txns: TxnRequest[];
  readonly queries: QueryRequest[];
  readonly participants: number[];
  readonly holds: number[];
  readonly allRows: boolean;
  /** Sequence numbers of the round's requests (rows `q/<seq>` until it is decided). */
  readonly first: number;
  readonly last: number;
  readonly votes: Record<string, Vote>;
}

/**
 * The coordinator. Its own row stays small: queued requests are rows `q/<seq>` (written once when
 * they arrive) and votes rows `v/<round>/<partition>`, deleted when their round is decided, so a
 * backlog costs one row per request rather than a row that grows with it.
 */
interface CoordinatorState {
  nextRound: number;
  /** Requests waiting for a round are `q/<head>` … `q/<tail - 1>`. */
  head: number;
  tail: number;
  /** In memory: the waiting requests, in order. */
  queue: Array<TxnRequest | QueryRequest>;
  open: OpenRound | null;
}

interface StoredCoordinator {
  nextRound: number;
  head: number;
  tail: number;
  open: Omit<OpenRound, 'txns' | 'queries' | 'votes'> | null;
}

/**
 * Multi-partition transactions as VoltDB runs them, on the log. Partition 0's owner coordinates:
 * requests queue in its state; a round prepares every participant (each reads the rows the
 * round's transactions declared, at its own position, and holds all other work while the round
 * may write there); once every vote is in, the coordinator runs the round's handlers in order over
 * those rows and sends each participant its writes. Every step is a record committed in a
 * partition's batch, and the protocol's state is a row of that partition: crashes and failovers
 * resume it exactly where the committed log left it.
 */
export class MultiPartitionProtocol implements BatchProtocol {
  readonly topic: string;
  private coordinator: CoordinatorState | undefined;
  private heldRound: number | null = null;
  private dirty = false;
  /** Protocol messages handled or sent by the open batch: it should commit at once. */
  urgent = false;

  constructor(private readonly host: ProtocolHost) {
    this.topic = host.app.protocolTopic!;
    this.load();
  }

  /** True while this partition takes part in an undecided round that may write here. */
  get held(): boolean {
    return this.heldRound !== null;
  }

  /** Re-reads the protocol's state from the partition (after restore or an aborted batch). */
  load(): void {
    const store = this.host.state.store(MP_TABLE);
    const participant = parse<{ held: number | null }>(store.get(PARTICIPANT_ROW));
    this.heldRound = participant?.held ?? null;
    this.coordinator = this.host.state.partition === 0 ? this.loadCoordinator() : undefined;
    this.dirty = false;
    this.urgent = false;
  }

  /** Writes the protocol's state into the open batch (once per batch, however much changed). */
  flush(): void {
    if (!this.dirty) return;
    const { state } = this.host;
    state.write(MP_TABLE, PARTICIPANT_ROW, { json: JSON.stringify({ held: this.heldRound }) });
    const c = this.coordinator;
    if (c) {
      const open = c.open && { round: c.open.round, participants: c.open.participants, holds: c.open.holds, allRows: c.open.allRows, first: c.open.first, last: c.open.last };
      const stored: StoredCoordinator = { nextRound: c.nextRound, head: c.head, tail: c.tail, open };
      state.write(MP_TABLE, COORDINATOR_ROW, { json: JSON.stringify(stored) });
    }
    this.dirty = false;
  }

  private loadCoordinator(): CoordinatorState {
    const store = this.host.state.store(MP_TABLE);
    const stored = parse<StoredCoordinator>(store.get(COORDINATOR_ROW)) ?? { nextRound: 1, head: 0, tail: 0, open: null };
    const item = (seq: number) => parse<TxnRequest | QueryRequest>(store.get(`q/${seq}`))!;
    const queue = range(stored.tail - stored.head).map((i) => item(stored.head + i));
    let open: OpenRound | null = null;
    if (stored.open) {
      const items = range(stored.open.last - stored.open.first + 1).map((i) => item(stored.open!.first + i));
      const votes: Record<string, Vote> = {};
      for (const p of stored.open.participants) {
        const vote = parse<Vote>(store.get(`v/${stored.open.round}/${p}`));
        if (vote) votes[p] = vote;
      }
      open = {
        ...stored.open,
        txns: items.filter((i): i is TxnRequest => i.kind === 'request'),
        queries: items.filter((i): i is QueryRequest => i.kind === 'query'),
        votes,
      };
    }
    return { nextRound: stored.nextRound, head: stored.head, tail: stored.tail, queue, open };
  }

  /** The partition that read a multi-partition procedure's event forwards it to the coordinator. */
  forward(record: LogRecord, event: string, procedure: CompiledProcedure, value: unknown): void {
    const mp = procedure.multiPartition!;
    let keys: string[] = [];
    if (!mp.all) {
      const declared = mp.keys!(value);
      if (!Array.isArray(declared) || declared.length === 0 || declared.some((k) => typeof k !== 'string' && typeof k !== 'number')) {
        throw new HandlerContractError(`multiPartition.keys of "${event}" must return a non-empty array of partition keys (strings or numbers)`, { eventType: event });
      }
      keys = [...new Set(declared.map(String))];
    }
    const request: TxnRequest = {
      kind: 'request',
      id: `${record.topic}/${record.partition}/${record.offset}`,
      event,
      value: record.value!.toString('base64'),
      key: record.key === null ? null : record.key.toString('latin1'),
      timestamp: record.timestamp,
      origin: { topic: record.topic, partition: record.partition, offset: record.offset },
      keys,
      all: mp.all,
      headers: record.headers,
    };
    this.send(0, request, record.timestamp);
  }

  /** A record of the protocol topic, in this partition's order. */
  receive(record: LogRecord): void {
    const message = decodeMessage(record.value, record);
    switch (message.kind) {
      case 'request':
      case 'query': {
        const c = this.asCoordinator();
        this.host.state.write(MP_TABLE, `q/${c.tail++}`, { json: JSON.stringify(message) });
        c.queue.push(message);
        this.dirty = true;
        this.startRound(record.timestamp);
        return;
      }
      case 'vote':
        this.onVote(message, record.timestamp);
        return;
      case 'prepare':
        this.onPrepare(message, record.timestamp);
        return;
      case 'decision':
        this.onDecision(message);
        return;
      case 'result':
        return; // for whoever asked
    }
  }

  private asCoordinator(): CoordinatorState {
    if (!this.coordinator) throw new HandlerContractError(`partition ${this.host.state.partition} received a coordinator message; only partition 0 coordinates`, { partition: this.host.state.partition });
    return this.coordinator;
  }

  private send(partition: number, message: MpMessage, timestamp: number): void {
    this.host.out({ topic: this.topic, partition, timestamp, key: Buffer.from(message.kind), value: encodeMessage(message) });
    this.urgent = true;
  }

  // ---- coordinator ---------------------------------------------------------------------------

  private startRound(timestamp: number): void {
    const c = this.asCoordinator();
    if (c.open || c.queue.length === 0) return;
    // A transaction over every partition reads every row: it gets a round of its own.
    const first = c.queue[0]!;
    const take = first.kind === 'request' && first.all ? 1 : Math.min(MAX_ROUND, indexOfAll(c.queue));
    const items = c.queue.splice(0, Math.max(1, take));
    const txns = items.filter((i): i is TxnRequest => i.kind === 'request');
    const queries = items.filter((i): i is QueryRequest => i.kind === 'query');
    const partitions = this.host.app.partitions;
    const allRows = txns.some((t) => t.all);
    const keysOf = new Map<number, Set<string>>();
    const holds = new Set<number>();
    for (const txn of txns) {
      if (txn.all) for (let p = 0; p < partitions; p++) holds.add(p);
      for (const key of txn.keys) {
        const p = partitionForKey(key, partitions);
        holds.add(p);
        let set = keysOf.get(p);
        if (!set) keysOf.set(p, (set = new Set()));
        set.add(key);
      }
    }
    const participants = queries.length > 0 || allRows ? range(partitions) : [...holds].sort((a, b) => a - b);
    const round = c.nextRound++;
    c.open = { round, txns, queries, participants, holds: [...holds].sort((a, b) => a - b), allRows, first: c.head, last: c.head + items.length - 1, votes: {} };
    c.head += items.length;
    this.dirty = true;
    for (const p of participants) {
      const prepare: Prepare = {
        kind: 'prepare',
        round,
        keys: [...(keysOf.get(p) ?? [])],
        allRows,
        queries: queries.map(({ id, name, params }) => ({ id, name, params })),
        hold: holds.has(p),
      };
      this.send(p, prepare, timestamp);
    }
  }

  private onVote(vote: Vote, timestamp: number): void {
    const c = this.asCoordinator();
    const open = c.open;
    // Votes are exactly-once and ordered: one for another round cannot happen; ignore it if it does.
    if (!open || vote.round !== open.round || !open.participants.includes(vote.partition)) return;
    open.votes[vote.partition] = vote;
    this.host.state.write(MP_TABLE, `v/${vote.round}/${vote.partition}`, { json: JSON.stringify(vote) });
    this.dirty = true;
    if (open.participants.every((p) => open.votes[p] !== undefined)) this.decide(open, timestamp);
  }

  private decide(open: OpenRound, timestamp: number): void {
    const { app, rows: codec, catalog, globals } = this.host;
    const rows = new RoundRows(app, open.allRows);
    for (const vote of Object.values(open.votes)) {
      for (const row of vote.rows) rows.addRead(row.table, row.key, row.value === null ? undefined : codec.decodeRow(row.table, Buffer.from(row.value, 'base64')));
    }
    const ctx = new TxnContext(app, rows, globals);
    for (const txn of open.txns) {
      const event = app.eventsByFullName.get(txn.event);
      const procedure = event?.procedure;
      const savepoint = rows.savepoint();
      try {
        if (!procedure?.multiPartition) throw new HandlerContractError(`no multi-partition procedure handles "${txn.event}" in this version of the app`, { eventType: txn.event });
        const value = catalog.decode(Buffer.from(txn.value, 'base64')).value;
        ctx.moveTo(txn.event, txn.origin, txn.timestamp, txn.all ? undefined : new Set(txn.keys));
        const result = procedure.handle(ctx, value);
        if (isThenable(result)) {
          void Promise.resolve(result).catch(() => undefined);
          throw new HandlerContractError(`handler of "${txn.event}" returned a Promise; handlers must be synchronous`, { eventType: txn.event });
        }
        const emitted = ctx.takeEmitted();
        const out = emitted.length === 0 ? [] : this.host.encodeEmitted(emitted, () => String(procedure.partitionKey(value)), { partition: txn.origin.partition, offset: txn.origin.offset, timestamp: txn.timestamp });
        for (const record of out) this.host.out(record);
        this.host.handled(txn.event, true);
      } catch (err) {
        rows.rollbackTo(savepoint);
        this.host.deadLetter(originalRecord(txn), txn.event, err);
        this.host.handled(txn.event, false);
      }
    }
    const writesOf = new Map<number, ShippedRow[]>();
    for (const { table, key, value } of rows.writes()) {
      const p = partitionForKey(String(key), app.partitions);
      let list = writesOf.get(p);
      if (!list) writesOf.set(p, (list = []));
      list.push({ table, key, value: value === undefined ? null : codec.encodeValue(table, value).toString('base64') });
    }
    for (const p of open.holds) {
      const decision: Decision = { kind: 'decision', round: open.round, writes: writesOf.get(p) ?? [] };
      this.send(p, decision, timestamp);
    }
    for (const query of open.queries) this.answer(query, open, timestamp);
    const { state } = this.host;
    for (let seq = open.first; seq <= open.last; seq++) state.write(MP_TABLE, `q/${seq}`, undefined);
    for (const p of open.participants) state.write(MP_TABLE, `v/${open.round}/${p}`, undefined);
    this.coordinator!.open = null;
    this.dirty = true;
    this.startRound(timestamp);
  }

  private answer(query: QueryRequest, open: OpenRound, timestamp: number): void {
    const def = this.host.app.queries.get(query.name);
    let message: MpMessage;
    try {
      if (!def) throw new HandlerContractError(`no query named "${query.name}"`, {});
      const parts: unknown[] = [];
      for (const p of open.participants) {
        const part = open.votes[p]!.parts.find((x) => x.id === query.id);
        if (part?.badParams) throw new QueryParamsError(part.error ?? 'bad query parameters');
        if (!part || part.error !== undefined) throw new HandlerContractError(`query "${query.name}" failed on partition ${p}: ${part?.error ?? 'no answer'}`, { partition: p });
        parts.push(part.value);
      }
      message = { kind: 'result', id: query.id, value: asJson(def.merge(parts, query.params), `the merge of query "${query.name}"`) };
    } catch (err) {
      const badParams = QueryParamsError.of(err);
      message = { kind: 'result', id: query.id, error: badParams ? { code: badParams.code, message: badParams.message } : { code: 'query_failed', message: describeError(err) } };
    }
    this.send(0, message, timestamp);
  }

  // ---- participant ---------------------------------------------------------------------------

  private onPrepare(prepare: Prepare, timestamp: number): void {
    const { app, state, rows: codec, globals } = this.host;
    const shipped: ShippedRow[] = [];
    const tables = [...app.tables.values()].filter((t) => !t.system && t.scope === 'partitioned');
    const ship = (table: string, key: Key, value: unknown): void => {
      shipped.push({ table, key, value: codec.encodeValue(table, value).toString('base64') });
    };
    for (const table of tables) {
      const store = state.store(table.name);
      if (prepare.allRows) {
        for (const [key, value] of store.entries()) ship(table.name, key, value);
        continue;
      }
      for (const declared of prepare.keys) {
        const key = tableKeyFor(table.keyType, declared);
        const value = key === undefined ? undefined : store.get(key);
        if (value !== undefined) ship(table.name, key!, value);
      }
    }
    const parts = prepare.queries.map(({ id, name, params }) => {
      const def = app.queries.get(name);
      try {
        if (!def) throw new Error(`no query named "${name}"`);
        return { id, value: asJson(def.partition(queryContext(app, state, globals, 'live'), params), `the partial answer of query "${name}"`) };
      } catch (err) {
        const badParams = QueryParamsError.of(err);
        return badParams ? { id, error: badParams.message, badParams: true } : { id, error: describeError(err) };
      }
    });
    const vote: Vote = { kind: 'vote', round: prepare.round, partition: state.partition, rows: shipped, parts };
    this.send(0, vote, timestamp);
    if (prepare.hold) {
      this.heldRound = prepare.round;
      this.dirty = true;
    }
  }

  private onDecision(decision: Decision): void {
    const { state, rows: codec } = this.host;
    for (const write of decision.writes) {
      state.write(write.table, write.key, write.value === null ? undefined : deepFreeze(codec.decodeRow(write.table, Buffer.from(write.value, 'base64'))));
    }
    this.heldRound = null;
    this.dirty = true;
    this.urgent = true;
  }
}

/** The input record a request was forwarded from (for its dead letter). */
function originalRecord(request: TxnRequest): LogRecord {
  return {
    ...request.origin,
    timestamp: request.timestamp,
    key: request.key === null ? null : Buffer.from(request.key, 'latin1'),
    value: Buffer.from(request.value, 'base64'),
    headers: request.headers,
  };
}

/** A value as JSON gives it back (answers cross the log as JSON); throws naming what was not JSON. */
function asJson(value: unknown, what: string): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new HandlerContractError(`${what} is not JSON (${describeError(err)}); consistent queries answer with JSON values`, {});
  }
  return text === undefined ? null : JSON.parse(text);
}

function parse<T>(row: unknown): T | undefined {
  const json = (row as { json?: string } | undefined)?.json;
  return json === undefined ? undefined : (JSON.parse(json) as T);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Queue items before the first transaction over every partition (which needs a round of its own). */
function indexOfAll(queue: ReadonlyArray<TxnRequest | QueryRequest>): number {
  const i = queue.findIndex((item) => item.kind === 'request' && item.all);
  return i < 0 ? queue.length : i;
}
