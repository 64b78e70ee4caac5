export { loadConfig, type LoadConfigOptions } from './load-config.js';
export { ConfigError } from './config-error.js';
export { redactConfig, REDACTED } from './redact-config.js';
export { DEFAULTS, PROFILE_DEFAULTS } from './defaults.js';
export { ENV_VARS } from './env-vars.js';
export { parseDuration } from './parse-duration.js';
export {
  SSL_MODES,
  CHANNEL_BINDING_MODES,
  LOG_LEVELS,
  FOREIGN_CONNECTION_GUARD_MODES,
  TARGET_SESSION_ATTRS,
  POOLER_MODES,
} from './app-config.js';
export type * from './app-config.js';
