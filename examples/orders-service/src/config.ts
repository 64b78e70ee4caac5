import { fileURLToPath } from 'node:url';
import { loadConfig } from 'pg-data-layer';
import { z } from 'zod';

/** The service's own section of config/*.yaml, validated with the layer's. */
const orders = z.strictObject({ maxItemsPerOrder: z.int().min(1).default(10) });

/** The layer's configuration plus `orders`, typed; every problem in one ConfigError. */
export function loadServiceConfig(opts: { env?: Record<string, string | undefined> } = {}) {
  return loadConfig({
    configDir: fileURLToPath(new URL('../config', import.meta.url)),
    sections: { orders },
    ...opts,
  });
}
