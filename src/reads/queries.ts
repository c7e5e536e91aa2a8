import { describeError, QueryFailedError, QueryParamsError, UnknownQueryError } from '../errors.js';
import { queryContext, type CompiledApp, type CompiledQuery } from '../procedures/index.js';
import type { PartitionState, TableReader } from '../state/index.js';

/**
 * The app's named queries: each partition's partial answer over a committed state, and their
 * merge. What the query's code throws comes out typed: a QueryParamsError (of any copy of farad)
 * as this copy's, so the caller gets 400 with the query's message; anything else as a
 * QueryFailedError saying where it failed.
 */
export class QueryRunner {
  constructor(
    private readonly app: CompiledApp,
    /** Read-only views of the global tables, shared by every partition. */
    private readonly globals: Record<string, TableReader>,
  ) {}

  /** The query called `name`; throws UnknownQueryError naming the app's queries. */
  find(name: string): CompiledQuery {
    const query = this.app.queries.get(name);
    if (query) return query;
    throw new UnknownQueryError(`no query "${name}"; this app has ${[...this.app.queries.keys()].join(', ') || 'none'}`);
  }

  /**
   * One partition's partial answer, as JSON: partials from other instances cross the network as
   * JSON, so local ones take the same round trip and merge sees one shape.
   */
  partial(name: string, query: CompiledQuery, state: PartitionState, params: Readonly<Record<string, string>>): unknown {
    try {
      const value = query.partition(queryContext(this.app, state, this.globals), params);
      return JSON.parse(JSON.stringify(value) ?? 'null');
    } catch (err) {
      throw queryError(err, `query "${name}" failed on partition ${state.partition}`, state.partition);
    }
  }

  /** The answer to the caller: the partials, in partition order, merged. */
  merge(name: string, query: CompiledQuery, parts: unknown[], params: Readonly<Record<string, string>>): unknown {
    try {
      return query.merge(parts, params);
    } catch (err) {
      throw queryError(err, `query "${name}" failed in its merge`, undefined);
    }
  }
}

/** What a query's code threw, typed: the caller's parameters refused, or the query's own failure. */
function queryError(err: unknown, where: string, partition: number | undefined): QueryParamsError | QueryFailedError {
  return QueryParamsError.of(err) ?? new QueryFailedError(`${where}: ${describeError(err)}`, { partition }, { cause: err });
}
