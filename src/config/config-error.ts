import { AppError } from '../app-error.js';

/**
 * The configuration is invalid. `issues` lists every problem found in every layer (YAML files,
 * `.env`, environment, `DATABASE_URL`), one sentence each, starting with the key path or the
 * variable it concerns, e.g. `database.postgres.port: must be between 1 and 65535 (got 70000)`.
 * Neither the message nor the issues ever contain a secret value.
 */
export class ConfigError extends AppError {
  readonly code = 'CONFIG_ERROR';
  /** Every problem, one sentence each, starting with its key path or variable. */
  readonly issues: string[];

  constructor(issues: readonly string[], options?: ErrorOptions) {
    const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
    super(`Invalid configuration (${count}):\n${issues.map((issue) => `  - ${issue}`).join('\n')}`, options);
    this.issues = [...issues];
  }
}
