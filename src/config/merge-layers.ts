/** One source of configuration values, named the way an issue should point at it. */
export interface ConfigSource {
  /** `config/default.yaml`, `DB_PORT`, `DATABASE_URL`; empty for the built-in defaults. */
  name: string;
  /** A plain object of (possibly invalid, possibly unknown) keys, or a per-key source map. */
  values: Record<string, unknown>;
  /** When set, the source of each leaf by key path (the environment layer: one variable per key). */
  leafSources?: ReadonlyMap<string, string>;
}

/** True for an object that is neither null nor an array (a YAML mapping, a parsed JSON object). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Deep-merges the layers, lowest first: objects merge key by key, anything else replaces.
 * Records which source set each leaf, so an issue can say where a bad value came from.
 * Keys are defined as own properties, so a YAML key `__proto__` stays an (unknown) key
 * instead of changing a prototype.
 */
export function mergeLayers(layers: readonly ConfigSource[]): {
  merged: Record<string, unknown>;
  sources: Map<string, string>;
} {
  const merged: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  const assign = (
    target: Record<string, unknown>,
    values: Record<string, unknown>,
    prefix: string,
    layer: ConfigSource,
  ) => {
    for (const [key, value] of Object.entries(values)) {
      const path = prefix ? `${prefix}.${key}` : key;
      if (isPlainObject(value)) {
        const current = Object.hasOwn(target, key) ? target[key] : undefined;
        const child = isPlainObject(current) ? current : {};
        define(target, key, child);
        // Sections get a source too, so an unknown (or empty) section can say where it came from.
        sources.set(path, layer.leafSources?.get(path) ?? layer.name);
        assign(child, value, path, layer);
      } else {
        define(target, key, value);
        sources.set(path, layer.leafSources?.get(path) ?? layer.name);
      }
    }
  };
  for (const layer of layers) assign(merged, layer.values, '', layer);
  return { merged, sources };
}

function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Reads a dotted key path from a nested object; undefined when any step is missing. */
export function getPath(root: unknown, path: string): unknown {
  let node: unknown = root;
  for (const key of path.split('.')) {
    if (!isPlainObject(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return node;
}

/** Sets a dotted key path, creating plain objects on the way. */
export function setPath(root: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = root;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (isPlainObject(next)) node = next;
    else define(node, key, (node = {}));
  }
  define(node, keys[keys.length - 1] ?? '', value);
}
