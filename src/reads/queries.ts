import { UnknownQueryError } from '../errors.js';
import { queryContext, type CompiledApp, type CompiledQuery } from '../procedures/index.js';
import type { PartitionState, TableReader } from '../state/index.js';

/** The app's named queries: each partition's partial answer over a committed state, and their merge. */
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
  partial(query: CompiledQuery, state: PartitionState, params: Readonly<Record<string, string>>): unknown {
    const value = query.partition(queryContext(this.app, state, this.globals), params);
    return JSON.parse(JSON.stringify(value) ?? 'null');
  }

  /** The answer to the caller: the partials, in partition order, merged. */
  merge(query: CompiledQuery, parts: unknown[], params: Readonly<Record<string, string>>): unknown {
    return query.merge(parts, params);
  }
}
