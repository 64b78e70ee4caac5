import type { AppConfig } from './app-config.js';
import { hidePassword, hideSecret } from './hide-password.js';

/**
 * Hides the passwords (and `server.cursorSecret`) and deep-freezes the config, in place. A password stays a readable own
 * property but becomes a non-enumerable getter (see `hidePassword`), so logs, printed configs
 * and serialized error reports never show it.
 */
export function freezeConfig(config: AppConfig, appSections: Record<string, unknown> = {}): AppConfig {
  // The application's sections first, so the layer's own keys always win.
  config = { ...appSections, ...config };
  const { postgres, migrations } = config.database;
  hidePassword(postgres, postgres.password);
  hidePassword(migrations, migrations.password);
  hideSecret(config.server, 'cursorSecret', config.server.cursorSecret);
  return deepFreeze(config);
}

function deepFreeze<T extends object>(value: T): T {
  for (const key of Reflect.ownKeys(value)) {
    const child: unknown = Reflect.get(value, key);
    if (typeof child === 'object' && child !== null && !Object.isFrozen(child)) deepFreeze(child);
  }
  return Object.freeze(value);
}
