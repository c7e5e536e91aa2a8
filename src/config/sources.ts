import { isMapping } from './raw.js';

/**
 * Where each configured value came from (`config file x.yaml`, `overrides`, `environment
 * variable FARAD_X`), by dotted path. Errors and warnings name it; a path with no source was
 * left at its default.
 */
export class Sources {
  private readonly byPath = new Map<string, string>();
  private readonly leaves = new Set<string>();

  /** Records `source` for every path in `value`: its mappings and their leaves. */
  markAll(value: Record<string, unknown>, source: string, prefix = ''): void {
    for (const [key, inner] of Object.entries(value)) {
      if (inner === undefined) continue; // merge() skips it too
      const path = prefix ? `${prefix}.${key}` : key;
      if (isMapping(inner)) {
        this.byPath.set(path, source);
        this.markAll(inner, source, path);
      } else this.set(path, source);
    }
  }

  /** Records `source` for one leaf, replacing what set it before. */
  set(path: string, source: string): void {
    this.byPath.set(path, source);
    this.leaves.add(path);
  }

  /** The source of `path`, or of its closest ancestor (an unknown key's mapping). */
  of(path: string): string | undefined {
    for (let parts = path.split('.'); parts.length > 0; parts = parts.slice(0, -1)) {
      const hit = this.byPath.get(parts.join('.'));
      if (hit) return hit;
    }
    return undefined;
  }

  /** The source of a leaf set explicitly, or undefined when it kept its default. */
  explicit(path: string): string | undefined {
    return this.leaves.has(path) ? this.byPath.get(path) : undefined;
  }

  /** Leaves set explicitly, in the order they were first set. */
  explicitPaths(): string[] {
    return [...this.leaves];
  }

  /** An independent copy: what was known at this point, unchanged by later sets. */
  copy(): Sources {
    const out = new Sources();
    for (const [path, source] of this.byPath) out.byPath.set(path, source);
    for (const leaf of this.leaves) out.leaves.add(leaf);
    return out;
  }

  /** The source of every leaf set explicitly, by path (frozen), for {@link Config.sources}. */
  toRecord(): Readonly<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const path of this.leaves) out[path] = this.byPath.get(path)!;
    return Object.freeze(out);
  }
}
