import type { AppConfig } from './app-config.js';

/**
 * Hides the passwords and deep-freezes the config. A password stays a readable own property
 * but becomes a non-enumerable getter, as pg-pool hides its `password`: JSON.stringify,
 * util.inspect (even with showHidden), object spread and pino then leave it out, which keeps it out of logs, printed
 * configs and error reports that serialize an object.
 */
export function freezeConfig(config: AppConfig): AppConfig {
  hide(config.database.postgres, 'password');
  hide(config.database.migrations, 'password');
  return deepFreeze(config);
}

function hide(target: object, key: string): void {
  const value: unknown = Reflect.get(target, key);
  Reflect.deleteProperty(target, key);
  // An accessor rather than a data property: even util.inspect with showHidden (and util.format's
  // %o, which the debug module uses) prints it as [Getter], not its value.
  Object.defineProperty(target, key, { get: () => value, enumerable: false, configurable: false });
}

function deepFreeze<T extends object>(value: T): T {
  for (const key of Reflect.ownKeys(value)) {
    const child: unknown = Reflect.get(value, key);
    if (typeof child === 'object' && child !== null && !Object.isFrozen(child)) deepFreeze(child);
  }
  return Object.freeze(value);
}
