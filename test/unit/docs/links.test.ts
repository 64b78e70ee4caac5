import { expect } from 'chai';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT, headingAnchors, inlineCode, linkTargets, markdownFiles, readRepoFile } from './markdown.js';

/** Paths into the repository that the docs name in inline code (placeholders such as `<profile>` excluded). */
const REPO_PATH =
  /^(src|test|bench|examples|migrations|seeds|config|docs|deploy|\.ci)\/[\w./-]*$|^(knexfile\.ts|package\.json|tsconfig(\.build)?\.json|docker-compose\.yml|Dockerfile|eslint\.config\.js|\.mocharc\.yml|\.env\.example)$/;

/** Every file under a directory, as paths from the repository root. */
function walk(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(`${dir}/${entry.name}`) : [`${dir}/${entry.name}`],
  );
}

describe('README.md and docs/: links and paths', () => {
  const pages = markdownFiles();

  it('links only to files inside the repository that exist, and to headings that exist', () => {
    const broken = pages.flatMap((page) =>
      linkTargets(readRepoFile(page))
        .filter((target) => !/^[a-z]+:/i.test(target)) // https:, mailto:
        .flatMap((target) => {
          const [file = '', anchor] = target.split('#');
          const resolved =
            file === '' ? page : path.posix.normalize(path.posix.join(path.posix.dirname(page), file));
          if (resolved.startsWith('..') || path.isAbsolute(resolved))
            return [`${page}: ${target} points outside the repository`];
          if (!existsSync(path.join(ROOT, resolved))) return [`${page}: ${target} does not exist`];
          if (anchor === undefined) return [];
          if (!resolved.endsWith('.md') || statSync(path.join(ROOT, resolved)).isDirectory())
            return [`${page}: ${target} has an anchor on a file that is not a page`];
          return headingAnchors(readRepoFile(resolved)).has(anchor)
            ? []
            : [`${page}: ${target}: no heading #${anchor} in ${resolved}`];
        }),
    );
    expect(broken).to.deep.equal([]);
  });

  it('names only repository paths that exist', () => {
    const missing = pages.flatMap((page) =>
      inlineCode(readRepoFile(page))
        .filter((code) => REPO_PATH.test(code))
        .filter((code) => !existsSync(path.join(ROOT, code)))
        .map((code) => `${page}: ${code}`),
    );
    expect(missing).to.deep.equal([]);
  });

  it('names, for every guarded failure mode, test files that exist', () => {
    const tests = new Set(
      [...walk('test/unit'), ...walk('test/integration')].map((file) => path.posix.basename(file)),
    );
    const entries = failureModeEntries(readRepoFile('docs/failure-modes.md'));
    expect(entries.length, 'entries after <!-- failure-modes -->').to.be.above(20);
    const problems = entries.flatMap(({ problem, where, cited }) => {
      const files = [...cited.matchAll(/`([\w.-]+\.test\.ts)`/g)].map((m) => m[1]!);
      if (files.length === 0) return [`${problem}: no test named`];
      if (where === '') return [`${problem}: no place named`];
      return files.filter((file) => !tests.has(file)).map((file) => `${problem}: ${file} does not exist`);
    });
    expect(problems).to.deep.equal([]);
  });
});

/**
 * The failure entries of docs/failure-modes.md: each `### problem` heading after
 * `<!-- failure-modes -->` (up to the next `## ` section), with its `**Where**:` and `**Tests**:` lines.
 */
function failureModeEntries(markdown: string): Array<{ problem: string; where: string; cited: string }> {
  const start = markdown.indexOf('<!-- failure-modes -->');
  if (start < 0) throw new Error('no <!-- failure-modes --> marker in docs/failure-modes.md');
  const rest = markdown.slice(start);
  const end = rest.search(/^## /m);
  const section = end < 0 ? rest : rest.slice(0, end);
  return section
    .split(/^### /m)
    .slice(1)
    .map((entry) => ({
      problem: entry.split('\n', 1)[0]!.trim(),
      where: /^- \*\*Where\*\*: (.*)$/m.exec(entry)?.[1]?.trim() ?? '',
      cited: /^- \*\*Tests\*\*: (.*)$/m.exec(entry)?.[1]?.trim() ?? '',
    }));
}
