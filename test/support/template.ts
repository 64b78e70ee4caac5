/**
 * Fills the template database every suite database is cloned from (migrations and the
 * test seed, once per run). The template must have no open connections when this returns.
 */
export async function prepareTemplate(_templateUrl: string): Promise<void> {
  // Migrations and the test seed arrive with the schema issue.
}
