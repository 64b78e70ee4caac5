/**
 * The base class of every error this project throws on purpose. `code` is stable across
 * releases (match on it, not on the message); the underlying error travels as `cause`.
 * Messages are short sentences and never carry secrets or bind values.
 */
export abstract class AppError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
