import { REDACTED } from '../config/redact-config.js';

// Every pattern below runs on client-controlled text (Fastify logs each request's URL and Host),
// so each must cost time linear in the text: a pattern may scan forward only from a fixed
// anchor (`://`, a password keyword, a quote), never from every position over a run that
// another start position would scan again. The old forms began with `\b[a-z0-9+.-]*` and
// `\b[\w.-]*` before the anchor, which on `a.a.a.…` rescanned the whole run from each of its
// word boundaries: quadratic (docs/failure-modes.md). Hence the one-character lookbehind for
// the scheme and no key prefix at all: the prefix is left in place, only the value changes.

// user:password@ inside any URL ("postgres://app:s3cret@db:5432/app"). The password may contain
// "@" (greedy up to the last one before the host) but not a quote, so a JSON line stays valid.
// Each scan stops at the next "/", so two `://` anchors never scan the same text.
const URL_PASSWORD = /(?<=[a-z0-9+.-]):\/\/([^\s:/?#@"]*):([^\s/?#"]*)@/gi;
// password=... in keyword DSNs, query strings and env dumps ("host=db password='x y'", "DB_PASSWORD=x").
// A value's scan ends at its closing quote at the latest, and the next keyword's value opens
// with an unescaped quote or none, so scans from two keywords do not overlap.
const KEYWORD_PASSWORD =
  /(password|passwd|pwd)(\s*=\s*)(\\"(?:[^"\\]|\\[^"])*\\"|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s,;&"']+)/gi;
// "password": "..." (and *secret, *token, authorization, cookie) at any depth of a JSON text.
// Starts only at a quote, and the key's scan stops at the next quote: linear.
const JSON_SECRET =
  /"([\w.-]*(?:password|passwd|secret|token)|authorization|cookie|set-cookie)"(\s*:\s*)"(?:[^"\\]|\\.)*"/gi;

/**
 * Replaces credentials in free text with `[REDACTED]`: the password of any `scheme://user:pw@`
 * URL, `password=...` in keyword DSNs and query strings, and the values of password-, secret-
 * and token-named keys in JSON. Use it on any text that may have seen a connection string
 * before it goes into an error message or a log; the logger applies it to every line.
 * It is a safety net, not a parser: keep secrets out of text in the first place.
 * Time is linear in the length of `text`, whatever the text (it is run on client input).
 */
export function scrubSecrets(text: string): string {
  return text
    .replace(URL_PASSWORD, `://$1:${REDACTED}@`)
    .replace(KEYWORD_PASSWORD, `$1$2${REDACTED}`)
    .replace(JSON_SECRET, `"$1"$2"${REDACTED}"`);
}
