/**
 * Keeps one element per item in a container, keyed: an item seen before keeps its element (and
 * its state: an expanded row stays expanded), is updated in place, and is moved only when the
 * order changed. Elements of items gone are removed.
 */
export interface Keyed {
  readonly el: HTMLElement;
}

export class KeyedList<T, R extends Keyed> {
  private readonly rows = new Map<string, R>();

  constructor(
    private readonly container: HTMLElement,
    private readonly keyOf: (item: T) => string,
    private readonly create: (item: T) => R,
    private readonly update: (row: R, item: T) => void,
  ) {}

  sync(items: readonly T[]): void {
    const seen = new Set<string>();
    let cursor: ChildNode | null = this.container.firstChild;
    for (const item of items) {
      const key = this.keyOf(item);
      seen.add(key);
      let row = this.rows.get(key);
      if (row === undefined) {
        row = this.create(item);
        this.rows.set(key, row);
      }
      this.update(row, item);
      if (row.el === cursor) cursor = cursor.nextSibling;
      else this.container.insertBefore(row.el, cursor);
    }
    for (const [key, row] of this.rows) {
      if (seen.has(key)) continue;
      row.el.remove();
      this.rows.delete(key);
    }
  }

  get size(): number {
    return this.rows.size;
  }

  values(): IterableIterator<R> {
    return this.rows.values();
  }
}
