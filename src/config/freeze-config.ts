import type { AppConfig } from './app-config.js';

/**
 * Hides the passwords and deep-freezes the config. A password stays a readable own property
 * but becomes non-enumerable, as pg-pool does with its `password`: JSON.stringify,
 * util.inspect, object spread and pino then leave it out, which keeps it out of logs, printed
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
  Object.defineProperty(target, key, { value, enumerable: false, writable: false, configurable: false });
}

function deepFreeze<T extends object>(value: T): T {
  for (const key of Reflect.ownKeys(value)) {
    const child: unknown = Reflect.get(value, key);
    if (typeof child === 'object' && child !== null && !Object.isFrozen(child)) deepFreeze(child);
  }
  return Object.freeze(value);
}
