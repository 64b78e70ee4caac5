/**
 * Gives `target` a `password` that code can read but nothing prints, and returns `target`.
 * The property becomes a non-enumerable, non-configurable getter, as pg-pool hides its
 * `password`: JSON.stringify, object spread, pino and util.inspect (even with `showHidden`,
 * and util.format's `%o`, which the debug module uses) leave it out or show `[Getter]`, which
 * keeps it out of logs, printed configs and error reports that serialize an object.
 *
 * An existing `password` (a plain property) is replaced. A spread copy of the result has no
 * password at all: hide it again on the copy.
 */
export function hidePassword<T extends object>(
  target: T,
  password: string,
): T & { readonly password: string } {
  return hideSecret(target, 'password', password);
}

/** {@link hidePassword} for a secret under another key (`server.cursorSecret`). */
export function hideSecret<T extends object, K extends string>(
  target: T,
  key: K,
  value: string,
): T & { readonly [P in K]: string } {
  Reflect.deleteProperty(target, key);
  // An accessor rather than a data property: showHidden prints a data property's value.
  Object.defineProperty(target, key, { get: () => value, enumerable: false, configurable: false });
  return target as T & { readonly [P in K]: string };
}
