import { expect } from 'chai';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ROOT, fencedBlocks, markdownFiles, readRepoFile } from './markdown.js';

/** Every `<!-- example: examples/x.ts -->` block in README.md and docs/, with where it is. */
function shownExamples(): Array<{ file: string; page: string; line: number; body: string }> {
  return markdownFiles().flatMap((page) =>
    fencedBlocks(readRepoFile(page))
      .filter((block) => block.marker?.startsWith('example: '))
      .map((block) => ({
        file: block.marker!.slice('example: '.length),
        page,
        line: block.line,
        body: block.body,
      })),
  );
}

describe('examples/ and the pages that show them', () => {
  const shown = shownExamples();

  it('shows every example file verbatim, on the page that names it', () => {
    const differing = shown
      .filter((s) => !existsSync(path.join(ROOT, s.file)) || readRepoFile(s.file) !== s.body)
      .map(
        (s) =>
          `${s.page}:${s.line} shows ${s.file}, which ${existsSync(path.join(ROOT, s.file)) ? 'differs' : 'does not exist'}`,
      );
    expect(differing).to.deep.equal([]);
  });

  it('shows every file in examples/ somewhere, and tells how to run it', () => {
    const files = readdirSync(path.join(ROOT, 'examples'))
      .filter((name) => name.endsWith('.ts'))
      .map((name) => `examples/${name}`);
    expect(
      files.filter((file) => !shown.some((s) => s.file === file)),
      'examples no page shows',
    ).to.deep.equal([]);
    expect(
      files.filter((file) => !readRepoFile(file).includes(`npx tsx ${file}`)),
      'examples without a run line',
    ).to.deep.equal([]);
  });
});
