// knip preprocessor used by `npm run lint`: findings in files that other people were editing
// when knip was introduced are reported (as warnings) but do not fail the run; every other
// finding fails it. Plain `npx knip` still fails on all of them. Remove an entry once its
// owner has dealt with its findings, and this file (with the --preprocessor flag of the lint
// script in package.json) once both lists are empty. See docs/testing.md, "Unused code".
'use strict';
const path = require('node:path');

/** Paths under active edit by others (transaction core, users, HTTP, benchmarks). */
const REPORT_ONLY_PATHS = ['src/db/tx/', 'src/users/', 'src/http/', 'bench/'];

/** Dependencies reported against package.json whose only user is under those paths. */
const REPORT_ONLY_DEPENDENCIES = [
  'autocannon', // bench/http/load-generator.ts loads it lazily, out of knip's sight
];

module.exports = function reportOnly(options) {
  const held = [];
  for (const [type, records] of Object.entries(options.issues)) {
    for (const [filePath, byName] of Object.entries(records)) {
      const file = path.relative(options.cwd, filePath).split(path.sep).join('/');
      for (const issue of Object.values(byName)) {
        const reportOnly =
          REPORT_ONLY_PATHS.some((dir) => file.startsWith(dir)) ||
          (file === 'package.json' && REPORT_ONLY_DEPENDENCIES.includes(issue.symbol));
        if (!reportOnly || issue.severity === 'warn') continue;
        issue.severity = 'warn'; // the reporters show it, dimmed where colour is on
        options.counters[type] -= 1; // and the exit code no longer counts it
        held.push(`${file}: ${issue.symbol}`);
      }
    }
  }
  if (held.length > 0) {
    process.stdout.write(
      `knip: ${held.length} finding(s) under ${REPORT_ONLY_PATHS.join(', ')} (and their dependencies) ` +
        'are reported below without failing lint (.ci/knip-report-only.cjs):\n' +
        held.map((line) => `  ${line}\n`).join(''),
    );
  }
  return options;
};
