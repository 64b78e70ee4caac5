import { randomBytes } from 'node:crypto';
import type { AppConfig } from './app-config.js';
import { ConfigError } from './config-error.js';

/** The key that signs list cursors, and whether it was made up for this process. */
export interface CursorSecret {
  secret: string;
  /** True when none was configured and a random per-process key is used. */
  generated: boolean;
}

/**
 * The list-cursor signing key of a service started with `cfg`: `server.cursorSecret` when set.
 * Otherwise, outside production, a random key for this process: cursors stay signed (an edited
 * one is refused), but one issued before a restart, or by another replica, is refused too. In
 * production that would break paging behind a load balancer, so there it must be configured.
 *
 * @throws ConfigError in the production profile when `server.cursorSecret` is empty, naming
 *   `SERVER_CURSOR_SECRET` and `SERVER_CURSOR_SECRET_FILE`.
 */
export function resolveCursorSecret(cfg: Pick<AppConfig, 'profile' | 'server'>): CursorSecret {
  // `?? ''`: a structuredClone or spread copy of a loaded config has lost the hidden key.
  const configured = cfg.server.cursorSecret ?? '';
  if (configured !== '') return { secret: configured, generated: false };
  if (cfg.profile === 'production') {
    throw new ConfigError([
      'server.cursorSecret: must be set in the production profile (SERVER_CURSOR_SECRET or ' +
        'SERVER_CURSOR_SECRET_FILE, at least 32 characters, the same on every replica): it signs list cursors',
    ]);
  }
  return { secret: randomBytes(32).toString('base64url'), generated: true };
}
