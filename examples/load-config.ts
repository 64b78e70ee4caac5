// Prints the configuration this directory resolves to, passwords redacted (durations in ms).
// Run from the repository root: npx tsx examples/load-config.ts (it touches no database).
import { ConfigError, createLogger, loadConfig, redactConfig, type AppConfig } from '../src/index.js';

function loadOrExit(): AppConfig {
  try {
    return loadConfig(); // tests: loadConfig({ env, configDir, profile, envFile })
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message); // every problem, one per line, no secrets
    process.exit(78); // EX_CONFIG
  }
}

const config = loadOrExit();
const logger = createLogger(config.log);
logger.info({ config: redactConfig(config) }, 'configuration loaded');
