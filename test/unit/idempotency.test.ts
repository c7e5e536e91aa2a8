/**
 * Idempotent ingest and reading your writes, unit by unit: the key cache (replays, reuse,
 * concurrency, failures, window, bound), the key header, fingerprints, where a key is kept (hop
 * rules), the position token, a partition's committed input progress and the bounded wait.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IdempotencyKeyReusedError, InvalidIdempotencyKeyError, InvalidPositionError, PartitionUnavailableError, WriteNotVisibleError } from '../../src/errors.js';
import { fingerprintOf, hopOf, IdempotencyCache, idempotencyKeyOf, keyOwner, type StoredAnswer } from '../../src/ingest/index.js';
import { InputProgress, type InputWatch, type PartitionDirectory, type PartitionRole } from '../../src/partition/index.js';
import { compileApp, defineApp, record, table } from '../../src/procedures/index.js';
import { formatPosition, parsePosition, readModeOf, WAIT_FOR_LIMIT_MS } from '../../src/reads/index.js';
import { checkPosition, WriteVisibility } from '../../src/reads/wait-for.js';
import type { OutRecord } from '../../src/streams/index.js';
import { workerUrl } from '../../src/workers/index.js';

const ACCEPTED: StoredAnswer = { status: 202, body: { accepted: 1, eventType: 'bank.Deposit', topic: 'deposits', position: 'deposits:0:1' } };

/** A promise and its resolvers, to hold a request mid-way. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function rejects<E extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${type.name}, but it resolved`);
}

describe('IdempotencyCache', () => {
  const cache = (options: { windowMs?: number; maxKeys?: number; clock?: { now: number } } = {}): IdempotencyCache => {
    const clock = options.clock;
    return new IdempotencyCache({ windowMs: options.windowMs ?? 60_000, maxKeys: options.maxKeys ?? 100, now: clock ? () => clock.now : undefined });
  };

  it('answers a retry with the same key and fingerprint with the first answer, without running it again', async () => {
    const keys = cache();
    let runs = 0;
    const first = async (): Promise<StoredAnswer> => {
      runs++;
      return ACCEPTED;
    };
    assert.deepEqual(await keys.answer('k', 'f', first), { answer: ACCEPTED, replayed: false });
    assert.deepEqual(await keys.answer('k', 'f', first), { answer: ACCEPTED, replayed: true });
    assert.equal(runs, 1);
    assert.deepEqual(await keys.answer('other', 'f', first), { answer: ACCEPTED, replayed: false }, 'another key is another request');
    assert.equal(runs, 2);
  });

  it('refuses the same key for another request (422), and keeps the first answer', async () => {
    const keys = cache();
    await keys.answer('k', 'f1', async () => ACCEPTED);
    let ran = false;
    const err = await rejects(
      keys.answer('k', 'f2', async () => {
        ran = true;
        return ACCEPTED;
      }),
      IdempotencyKeyReusedError,
    );
    assert.equal(ran, false);
    assert.match(err.message, /"k".*another event type or body.*new key/);
    assert.deepEqual(await keys.answer('k', 'f1', async () => assert.fail('must not run')), { answer: ACCEPTED, replayed: true });
  });

  it('runs concurrent requests with one key once: the others wait for its answer', async () => {
    const keys = cache();
    const held = deferred<StoredAnswer>();
    let runs = 0;
    const first = (): Promise<StoredAnswer> => {
      runs++;
      return held.promise;
    };
    const answers = Array.from({ length: 10 }, () => keys.answer('k', 'f', first));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(runs, 1, 'only the first runs while it is in flight');
    held.resolve(ACCEPTED);
    const settled = await Promise.all(answers);
    assert.equal(runs, 1);
    assert.equal(settled.filter((a) => !a.replayed).length, 1);
    for (const a of settled) assert.deepEqual(a.answer, ACCEPTED);
  });

  it('a request that failed is not remembered: a waiting or later retry runs again', async () => {
    const keys = cache();
    const held = deferred<StoredAnswer>();
    const firstTry = keys.answer('k', 'f', () => held.promise);
    let retried = 0;
    const waiting = keys.answer('k', 'f', async () => {
      retried++;
      return ACCEPTED;
    });
    held.reject(new Error('disk full'));
    await assert.rejects(firstTry, /disk full/);
    assert.deepEqual(await waiting, { answer: ACCEPTED, replayed: false }, 'the waiting retry ran itself');
    assert.equal(retried, 1);
    assert.equal(keys.size, 1);
  });

  it('a request waiting on one with another fingerprint gets 422 once that one succeeds', async () => {
    const keys = cache();
    const held = deferred<StoredAnswer>();
    const firstTry = keys.answer('k', 'f1', () => held.promise);
    const other = keys.answer('k', 'f2', async () => assert.fail('must not run'));
    held.resolve(ACCEPTED);
    await firstTry;
    await rejects(other, IdempotencyKeyReusedError);
  });

  it('forgets an answer once its window has passed: the key runs again', async () => {
    const clock = { now: 1_000 };
    const keys = cache({ windowMs: 5_000, clock });
    let runs = 0;
    const first = async (): Promise<StoredAnswer> => {
      runs++;
      return ACCEPTED;
    };
    await keys.answer('k', 'f', first);
    clock.now += 4_999;
    assert.equal((await keys.answer('k', 'f', first)).replayed, true);
    clock.now += 1;
    assert.deepEqual(await keys.answer('k', 'f2', first), { answer: ACCEPTED, replayed: false }, 'past the window the key is free, even for another body');
    assert.equal(runs, 2);
    assert.equal(keys.size, 1);
  });

  it('keeps at most maxKeys answers, forgetting the oldest first', async () => {
    const keys = cache({ maxKeys: 3 });
    for (const key of ['a', 'b', 'c', 'd']) await keys.answer(key, 'f', async () => ACCEPTED);
    assert.equal(keys.size, 3);
    assert.equal((await keys.answer('a', 'f', async () => ACCEPTED)).replayed, false, 'the oldest was forgotten');
    assert.equal((await keys.answer('d', 'f', async () => ACCEPTED)).replayed, true);
  });
});

describe('idempotencyKeyOf', () => {
  it('takes 1 to 255 printable ASCII characters, and no key at all', () => {
    assert.equal(idempotencyKeyOf({}), undefined);
    assert.equal(idempotencyKeyOf({ 'idempotency-key': 'order-17 retry #2 ~!' }), 'order-17 retry #2 ~!');
    assert.equal(idempotencyKeyOf({ 'idempotency-key': 'x'.repeat(255) }), 'x'.repeat(255));
  });

  it('refuses an empty, long, non-ASCII, control-character or repeated key (400)', () => {
    for (const value of ['', 'x'.repeat(256), 'café', 'tab\there', 'del\x7f', ['a', 'b']]) {
      assert.throws(() => idempotencyKeyOf({ 'idempotency-key': value }), InvalidIdempotencyKeyError, JSON.stringify(value));
    }
  });
});

describe('fingerprintOf', () => {
  const record = (key: string, value: string): OutRecord => ({ topic: 'deposits', partition: 0, timestamp: Date.now(), key: Buffer.from(key), value: Buffer.from(value) });

  it('depends on the event type and every record key and value, in order, not on timestamps', () => {
    const base = fingerprintOf('bank.Deposit', [record('a', '1'), record('b', '2')]);
    assert.equal(fingerprintOf('bank.Deposit', [{ ...record('a', '1'), timestamp: 1 }, record('b', '2')]), base);
    assert.notEqual(fingerprintOf('bank.Withdrawal', [record('a', '1'), record('b', '2')]), base);
    assert.notEqual(fingerprintOf('bank.Deposit', [record('b', '2'), record('a', '1')]), base);
    assert.notEqual(fingerprintOf('bank.Deposit', [record('a', '12')]), fingerprintOf('bank.Deposit', [record('a1', '2')]), 'lengths separate the parts');
    assert.notEqual(fingerprintOf('bank.Deposit', [record('a', '1')]), base);
  });
});

// ---- where a key is kept ------------------------------------------------------------------------

function directory(roles: Record<number, PartitionRole>, owners: Record<number, string>): PartitionDirectory {
  return {
    clustered: true,
    local: (p) => (roles[p] === undefined ? undefined : { role: roles[p]!, state: undefined }),
    ownerUrl: (p) => owners[p],
  };
}

describe('keyOwner', () => {
  const dir = directory({ 0: 'active', 1: 'restoring' }, { 2: 'http://b:8080', 3: workerUrl(1) });

  it('keeps a key here when its partition is active here, whoever sent it', () => {
    for (const hop of ['client', 'instance', 'sibling'] as const) assert.deepEqual(keyOwner(dir, 0, hop), { kind: 'here' });
  });

  it('forwards a client request to the owning instance or sibling', () => {
    assert.deepEqual(keyOwner(dir, 2, 'client'), { kind: 'forward', url: 'http://b:8080' });
    assert.deepEqual(keyOwner(dir, 3, 'client'), { kind: 'forward', url: workerUrl(1) });
  });

  it('never sends a forwarded request to a third instance, nor a sibling\'s on to anyone', () => {
    assert.deepEqual(keyOwner(dir, 3, 'instance'), { kind: 'forward', url: workerUrl(1) }, 'instance → the sibling that owns it');
    assert.throws(() => keyOwner(dir, 2, 'instance'), PartitionUnavailableError);
    assert.throws(() => keyOwner(dir, 3, 'sibling'), PartitionUnavailableError);
  });

  it('answers 503 (retry with the same key) while the owner cannot be reached', () => {
    const err = (() => {
      try {
        keyOwner(dir, 1, 'client');
      } catch (e) {
        return e as PartitionUnavailableError;
      }
      return assert.fail('expected a refusal');
    })();
    assert.ok(err instanceof PartitionUnavailableError);
    assert.match(err.message, /partition 1\) is restoring here; nothing was appended, retry shortly with the same key/);
    assert.throws(() => keyOwner(dir, 5, 'client'), /no reachable owner/);
  });

  it('reads the hop from the forwarded header', () => {
    assert.equal(hopOf({}), 'client');
    assert.equal(hopOf({ 'x-farad-forwarded': '1' }), 'instance');
    assert.equal(hopOf({ 'x-farad-forwarded': 'worker' }), 'sibling');
  });
});

// ---- positions -------------------------------------------------------------------------------------

const Deposit = record<{ account: string; amount: number }>({
  type: 'record',
  name: 'Deposit',
  namespace: 'bank',
  fields: [
    { name: 'account', type: 'string' },
    { name: 'amount', type: 'long' },
  ],
});
const Balance = record<{ balance: number }>({ type: 'record', name: 'Balance', namespace: 'bank', fields: [{ name: 'balance', type: 'long' }] });
const app = compileApp(
  defineApp({
    name: 'bank',
    partitions: 4,
    events: { Deposit },
    tables: { balances: table({ key: 'string', value: Balance }) },
    inputs: [{ topic: 'deposits', events: ['Deposit'] }],
    procedures: { Deposit: { partitionKey: (d) => d.account, handle: (ctx, d) => ctx.tables.balances.put(d.account, { balance: d.amount }) } },
  }),
);

describe('positions', () => {
  it('round-trip through their text', () => {
    const position = [
      { topic: 'deposits', partition: 3, offset: 1042 },
      { topic: 'deposits', partition: 0, offset: 7 },
    ];
    assert.equal(formatPosition(position), 'deposits:3:1042,deposits:0:7');
    assert.deepEqual(parsePosition(formatPosition(position)), position);
    assert.deepEqual(parsePosition('a.b-c_d:1:5,a.b-c_d:1:9'), [{ topic: 'a.b-c_d', partition: 1, offset: 9 }], 'one partition named twice: the later offset');
  });

  it('refuse text farad never answers (400 bad_wait_for)', () => {
    for (const text of ['', 'garbage', 'deposits:1', 'deposits:-1:5', 'deposits:1:x', 'deposits:1:5,', 'dep osits:1:5', 'deposits:1:99999999999999999', ['deposits:0:1', 'deposits:0:2'], 42]) {
      assert.throws(() => parsePosition(text), InvalidPositionError, JSON.stringify(text));
    }
  });

  it('must name the app\'s input topics and partitions', () => {
    checkPosition(app, parsePosition('deposits:3:1'));
    assert.throws(() => checkPosition(app, parsePosition('votes:0:1')), /topic "votes", which this app does not read \(inputs: deposits\)/);
    assert.throws(() => checkPosition(app, parsePosition('deposits:4:1')), /partition 4 of "deposits", which has 4/);
  });

  it('come with a read\'s mode: waitFor and waitMs, never with a stale read', () => {
    const now = Date.now();
    const mode = readModeOf({ waitFor: 'deposits:1:5' }, {});
    assert.deepEqual(mode.waitFor?.position, [{ topic: 'deposits', partition: 1, offset: 5 }]);
    assert.ok(mode.waitFor!.deadline >= now + WAIT_FOR_LIMIT_MS && mode.waitFor!.deadline <= Date.now() + WAIT_FOR_LIMIT_MS);
    const short = readModeOf({ waitFor: 'deposits:1:5', waitMs: '250' }, {});
    assert.ok(short.waitFor!.deadline <= Date.now() + 250);
    assert.ok(readModeOf({ waitFor: 'deposits:1:5', waitMs: '999999' }, {}).waitFor!.deadline <= Date.now() + WAIT_FOR_LIMIT_MS, 'waitMs cannot lengthen the wait');
    assert.equal(readModeOf({}, {}).waitFor, undefined);
    assert.throws(() => readModeOf({ waitFor: 'deposits:1:5', stale: 'true' }, {}), InvalidPositionError);
    assert.throws(() => readModeOf({ waitFor: 'deposits:1:5' }, { 'x-farad-accept-stale': 'true' }), InvalidPositionError);
    assert.throws(() => readModeOf({ waitFor: 'deposits:1:5', waitMs: 'soon' }, {}), InvalidPositionError);
  });
});

// ---- committed input progress ---------------------------------------------------------------------

const never = (): Promise<ReadonlyMap<string, number>> => new Promise(() => undefined);
const targets = (offset: number): ReadonlyMap<string, number> => new Map([['deposits', offset]]);

describe('InputProgress', () => {
  it('wakes a wait on the commit that reaches its offset, not before', async () => {
    const progress = new InputProgress();
    let outcome: string | undefined;
    const waiting = progress.until(targets(10), new AbortController().signal, never).then((o) => (outcome = o));
    progress.commitStarted();
    progress.commitEnded([{ topic: 'deposits', offset: 9 }]);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(outcome, undefined);
    progress.commitStarted();
    progress.commitEnded([{ topic: 'deposits', offset: 10 }]);
    await waiting;
    assert.equal(outcome, 'reached');
    assert.equal(await progress.until(targets(3), new AbortController().signal, never), 'reached', 'an offset already reached answers at once');
  });

  it('learns input committed before this owner from the log, once, holding it back while a commit of its own is in flight', async () => {
    const progress = new InputProgress();
    const log = deferred<ReadonlyMap<string, number>>();
    let asked = 0;
    const learn = (): Promise<ReadonlyMap<string, number>> => {
      asked++;
      return log.promise;
    };
    let outcome: string | undefined;
    const waiting = progress.until(targets(20), new AbortController().signal, learn).then((o) => (outcome = o));
    void progress.until(targets(30), new AbortController().signal, learn);
    assert.equal(asked, 1, 'the log is asked once per activation');
    // The log already counts this owner's commit, whose state is not readable yet.
    progress.commitStarted();
    log.resolve(new Map([['deposits', 25]]));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(outcome, undefined, 'not while the commit is in flight');
    progress.commitEnded([{ topic: 'deposits', offset: 25 }]);
    await waiting;
    assert.equal(outcome, 'reached');
    assert.equal(progress.offsetOf('deposits'), 25);
  });

  it('a failed commit counts for nothing, nor does what the log answered while it ran; the next wait asks the log again', async () => {
    const progress = new InputProgress();
    const log = deferred<ReadonlyMap<string, number>>();
    void progress.until(targets(5), new AbortController().signal, () => log.promise);
    progress.commitStarted();
    log.resolve(new Map([['deposits', 5]]));
    await new Promise((resolve) => setImmediate(resolve));
    progress.commitFailed();
    assert.equal(progress.offsetOf('deposits'), undefined);
    const again = progress.until(targets(5), new AbortController().signal, async () => new Map([['deposits', 5]]));
    assert.equal(await again, 'reached');
  });

  it('ends every wait when the partition stops being active here, and on abort', async () => {
    const progress = new InputProgress();
    const moved = progress.until(targets(5), new AbortController().signal, never);
    const controller = new AbortController();
    const aborted = progress.until(targets(5), controller.signal, never);
    controller.abort();
    assert.equal(await aborted, 'aborted');
    progress.end();
    assert.equal(await moved, 'moved');
    assert.equal(await progress.until(targets(1), new AbortController().signal, never), 'moved');
  });
});

describe('WriteVisibility', () => {
  /** A watch over one InputProgress per partition. */
  class Watch implements InputWatch {
    readonly progress = new Map<number, InputProgress>();
    readonly asked: number[] = [];
    awaitInput(partition: number, offsets: ReadonlyMap<string, number>, signal: AbortSignal) {
      this.asked.push(partition);
      const progress = this.progress.get(partition);
      return progress ? progress.until(offsets, signal, never) : Promise.resolve('moved' as const);
    }
    committedInput(partition: number, topic: string): number | undefined {
      return this.progress.get(partition)?.offsetOf(topic);
    }
  }

  it('waits only for the partitions read here, then answers', async () => {
    const watch = new Watch();
    const p1 = new InputProgress();
    watch.progress.set(1, p1);
    const visibility = new WriteVisibility(app, watch);
    const wait = { position: parsePosition('deposits:1:3,deposits:2:9'), deadline: Date.now() + 5_000 };
    const done = visibility.here([0, 1], wait);
    setTimeout(() => {
      p1.commitStarted();
      p1.commitEnded([{ topic: 'deposits', offset: 3 }]);
    }, 20);
    await done;
    assert.deepEqual(watch.asked, [1], 'partition 2 is not read here; partition 0 has nothing to wait for');
    await visibility.here([0, 1], undefined);
  });

  it('answers 503 write_not_visible_yet past the deadline, naming the partition and where it stands', async () => {
    const watch = new Watch();
    const p2 = new InputProgress();
    p2.commitStarted();
    p2.commitEnded([{ topic: 'deposits', offset: 4 }]);
    watch.progress.set(2, p2);
    const visibility = new WriteVisibility(app, watch);
    const started = Date.now();
    const err = await rejects(visibility.here([2], { position: parsePosition('deposits:2:9'), deadline: Date.now() + 50 }), WriteNotVisibleError);
    assert.ok(Date.now() - started >= 45);
    assert.deepEqual(err.details, { partition: 2, topic: 'deposits', offset: 9 });
    assert.match(err.message, /partition 2 has not processed the write yet \(deposits committed up to 4, the write ends at 9\)/);
  });

  it('refuses a position for another app before waiting', async () => {
    await rejects(new WriteVisibility(app, new Watch()).here([0], { position: parsePosition('votes:0:1'), deadline: Date.now() + 1000 }), InvalidPositionError);
  });
});
