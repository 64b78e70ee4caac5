/**
 * Just enough Markdown reading for the tests that keep README.md and docs/ honest: tables that
 * follow a `<!-- marker -->` comment, fenced blocks, links, inline code and heading anchors.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** A file's text, by its path from the repository root. */
export function readRepoFile(relPath: string): string {
  return readFileSync(path.join(ROOT, relPath), 'utf8');
}

/** README.md and every page under docs/, as paths from the repository root. */
export function markdownFiles(): string[] {
  const docs = readdirSync(path.join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs];
}

/** One table row: its cells, trimmed, with `\|` unescaped. */
export type Row = string[];

/** The table after each `<!-- marker -->` comment, header and separator dropped. */
export function tablesAfter(markdown: string, marker: string): Row[][] {
  const lines = markdown.split('\n');
  const tables: Row[][] = [];
  lines.forEach((line, index) => {
    if (line.trim() !== `<!-- ${marker} -->`) return;
    let i = index + 1;
    while (i < lines.length && lines[i]!.trim() === '') i++;
    const rows: Row[] = [];
    for (; i < lines.length && lines[i]!.trimStart().startsWith('|'); i++) rows.push(splitRow(lines[i]!));
    if (rows.length < 2) throw new Error(`no table after <!-- ${marker} --> (line ${index + 1})`);
    tables.push(rows.slice(2));
  });
  return tables;
}

function splitRow(line: string): Row {
  const cells = line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/);
  return cells.map((cell) => cell.trim().replace(/\\\|/g, '|'));
}

/** A cell's text without the backticks around it: `` `loadConfig` `` -> `loadConfig`. */
export function unquote(cell: string): string {
  return cell.replace(/^`(.*)`$/, '$1');
}

/** A fenced code block: its info string, its text and the comment line right before it, if any. */
export interface FencedBlock {
  lang: string;
  body: string;
  /** The `<!-- ... -->` comment on the last non-blank line before the fence. */
  marker: string | undefined;
  /** 1-based line of the opening fence. */
  line: number;
}

export function fencedBlocks(markdown: string): FencedBlock[] {
  const lines = markdown.split('\n');
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, , fence, info] = open;
    let j = i + 1;
    while (j < lines.length && lines[j]!.trim() !== fence) j++;
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const comment = k >= 0 ? /^<!--\s*(.*?)\s*-->$/.exec(lines[k]!.trim()) : null;
    blocks.push({
      lang: info!.trim(),
      body: lines.slice(i + 1, j).join('\n') + '\n',
      marker: comment?.[1],
      line: i + 1,
    });
    i = j;
  }
  return blocks;
}

/** The text outside fenced blocks (fences replaced by blank lines, so line numbers hold). */
function prose(markdown: string): string {
  const lines = markdown.split('\n');
  let fence: string | undefined;
  return lines
    .map((line) => {
      const open = /^\s*(`{3,})/.exec(line);
      if (fence === undefined && open) {
        fence = open[1];
        return '';
      }
      if (fence !== undefined) {
        if (line.trim() === fence) fence = undefined;
        return '';
      }
      return line;
    })
    .join('\n');
}

/** Every `[text](target)` link target in the prose (inline code removed first). */
export function linkTargets(markdown: string): string[] {
  const text = prose(markdown).replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
}

/** Every inline code span in the prose. */
export function inlineCode(markdown: string): string[] {
  return [...prose(markdown).matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
}

/** The anchors GitHub gives the headings of a page (github-slugger's rules, duplicates numbered). */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of prose(markdown).split('\n')) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1]!);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** A heading's anchor: lower case, punctuation dropped (`-` and `_` kept), spaces to `-`. */
function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}
