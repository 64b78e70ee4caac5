import { DEFAULTS } from './defaults.js';
import { fromSource, type SourceMap } from './format-issues.js';
import { suggestKey } from './suggest-key.js';

/**
 * A validator of an application's own top-level config section: any Standard Schema
 * (zod 3.24+/4, valibot, arktype) whose validation is synchronous.
 */
export interface SectionSchema<Output = unknown> {
  readonly '~standard': {
    readonly validate: (value: unknown) => SectionResult<Output> | Promise<SectionResult<Output>>;
  };
}

type SectionResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | {
      readonly issues: ReadonlyArray<{
        readonly message: string;
        readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
      }>;
    };

/** The application's sections, by top-level key. */
export type SectionSchemas = Record<string, SectionSchema>;

/** What `loadConfig` returns for the declared sections: each schema's output. */
export type SectionsOutput<S extends SectionSchemas> = {
  readonly [K in keyof S]: S[K] extends SectionSchema<infer O> ? O : never;
};

/** The layer's own top-level sections; `profile` is set by the loader. */
const OWNED = Object.keys(DEFAULTS);
/** Keys that are never an application section: a typo of ours or a prototype's name. */
const NEVER_APP = new Set(['profile', '__proto__', 'constructor', 'prototype']);

/**
 * Splits the merged layers into the layer's own sections (left in `merged`) and the
 * application's (removed from it and returned). A top-level key the layer does not own is the
 * application's, unless it looks like a misspelling of one of ours (`databse`, `logging`), which
 * stays for the layer's validation to report with a suggestion. Declared sections are validated
 * with their schema; each problem becomes an issue `section.path: message [from source]`.
 */
export function takeAppSections(
  merged: Record<string, unknown>,
  schemas: SectionSchemas,
  sources: SourceMap,
  issues: string[],
): Record<string, unknown> {
  const sections: Record<string, unknown> = {};
  for (const key of Object.keys(merged)) {
    if (OWNED.includes(key) || NEVER_APP.has(key)) continue;
    if (!Object.hasOwn(schemas, key) && looksLikeOurs(key)) continue;
    const value = merged[key];
    delete merged[key];
    const schema = Object.hasOwn(schemas, key) ? schemas[key] : undefined;
    Object.defineProperty(sections, key, {
      value: schema ? validateSection(key, schema, value, sources, issues) : value,
      enumerable: true,
    });
  }
  // A declared section absent from every file is validated too (its schema may supply defaults).
  for (const [key, schema] of Object.entries(schemas)) {
    if (OWNED.includes(key) || NEVER_APP.has(key)) {
      issues.push(`sections.${key}: "${key}" is the data layer's own section, not an application's`);
    } else if (!Object.hasOwn(sections, key)) {
      sections[key] = validateSection(key, schema, undefined, sources, issues);
    }
  }
  return sections;
}

function looksLikeOurs(key: string): boolean {
  const lower = key.toLowerCase();
  return (
    suggestKey(key, OWNED) !== undefined ||
    OWNED.some((own) => lower.startsWith(own.toLowerCase()) || own.toLowerCase().startsWith(lower))
  );
}

function validateSection(
  key: string,
  schema: SectionSchema,
  value: unknown,
  sources: SourceMap,
  issues: string[],
): unknown {
  const result = schema['~standard'].validate(value);
  if (result instanceof Promise) {
    issues.push(`${key}: the section's schema validates asynchronously; loadConfig needs a synchronous one`);
    return undefined;
  }
  if (!result.issues) return result.value;
  for (const issue of result.issues) {
    const keys = (issue.path ?? []).map((step) => String(typeof step === 'object' ? step.key : step));
    const path = [key, ...keys].join('.');
    issues.push(`${path}: ${issue.message}${fromSource(path, sources)}`);
  }
  return undefined;
}
