import { expect } from 'chai';
import { fencedBlocks, readRepoFile } from './markdown.js';

const EXAMPLE = 'examples/quick-start.ts';

describe('README.md quick start', () => {
  const readme = readRepoFile('README.md');

  it(`shows ${EXAMPLE} verbatim`, () => {
    const shown = fencedBlocks(readme).filter((block) => block.marker === `example: ${EXAMPLE}`);
    expect(shown, `one fenced block after <!-- example: ${EXAMPLE} -->`).to.have.lengthOf(1);
    expect(shown[0]!.lang).to.equal('ts');
    expect(shown[0]!.body, `README.md line ${shown[0]!.line} differs from ${EXAMPLE}`).to.equal(
      readRepoFile(EXAMPLE),
    );
  });

  it('says how to run it from the repository root', () => {
    expect(readme).to.include(`npx tsx ${EXAMPLE}`);
    expect(readRepoFile(EXAMPLE)).to.include(`npx tsx ${EXAMPLE}`);
  });
});
