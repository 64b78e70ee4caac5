/**
 * The public API against its documentation: docs/architecture.md lists every exported name
 * (tables after `<!-- public-api:exports -->`), the members the contract names
 * (`<!-- public-api:members -->`) and the contract's environment variables
 * (`<!-- public-api:env -->`). Nothing is copied here: the doc is the list.
 *
 * Values are checked at run time (class, function or const, and each error class's `code`);
 * type-only exports and members through the TypeScript checker on src/index.ts. Names with
 * status `planned` are asserted NOT to exist yet, so the doc has
 * to change when they land.
 */
import { expect } from 'chai';
import path from 'node:path';
import ts from 'typescript';
import * as api from '../../src/index.js';
import { ENV_VARS, loadConfig } from '../../src/index.js';
import { ROOT, readRepoFile, tablesAfter, unquote } from './docs/markdown.js';

const DOC = 'docs/architecture.md';
const STATUSES = ['contract', 'added', 'planned'] as const;
type Status = (typeof STATUSES)[number];
const EXPORT_KINDS = ['class', 'function', 'const', 'type'] as const;
type ExportKind = (typeof EXPORT_KINDS)[number];
const MEMBER_KINDS = ['method', 'property'] as const;
type MemberKind = (typeof MEMBER_KINDS)[number];

interface DocExport {
  name: string;
  kind: ExportKind;
  code: string | undefined;
  status: Status;
}
interface DocMember {
  owner: string;
  name: string;
  kind: MemberKind;
  status: Status;
}
interface DocEnvVar {
  name: string;
  key: string;
  status: Status;
}

function oneOf<T extends string>(allowed: readonly T[], value: string, where: string): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new Error(`${DOC}: ${where}: "${value}" is not one of ${allowed.join(', ')}`);
  return value as T;
}

function readDoc(): { exports: DocExport[]; members: DocMember[]; env: DocEnvVar[] } {
  const markdown = readRepoFile(DOC);
  const exports = tablesAfter(markdown, 'public-api:exports')
    .flat()
    .map(([name = '', kind = '', code = '', status = '']) => ({
      name: unquote(name),
      kind: oneOf(EXPORT_KINDS, kind, `kind of ${name}`),
      code: code === '—' ? undefined : unquote(code),
      status: oneOf(STATUSES, status, `status of ${name}`),
    }));
  const members = tablesAfter(markdown, 'public-api:members')
    .flat()
    .map(([member = '', kind = '', status = '']) => {
      const [owner = '', name = ''] = unquote(member).split('.');
      return {
        owner,
        name,
        kind: oneOf(MEMBER_KINDS, kind, `kind of ${member}`),
        status: oneOf(STATUSES, status, `status of ${member}`),
      };
    });
  const env = tablesAfter(markdown, 'public-api:env')
    .flat()
    .map(([name = '', key = '', status = '']) => ({
      name: unquote(name),
      key: unquote(key),
      status: oneOf(STATUSES, status, `status of ${name}`),
    }));
  return { exports, members, env };
}

const doc = readDoc();
const runtime = api as Record<string, unknown>;
const documented = doc.exports.filter((e) => e.status !== 'planned');
const planned = doc.exports.filter((e) => e.status === 'planned');
const plannedNames = new Set(planned.map((e) => e.name));

/** What a runtime value is: `class` (ES class syntax), `function`, or `const` (anything else). */
function runtimeKind(value: unknown): 'class' | 'function' | 'const' {
  if (typeof value !== 'function') return 'const';
  return /^class\b/.test(Function.prototype.toString.call(value)) ? 'class' : 'function';
}

/** An instance of an error class whose constructor arguments we do not know: try a few shapes. */
function instantiate(cls: new (...args: unknown[]) => unknown): unknown {
  const attempts: unknown[][] = [[], [['an issue']], ['a message'], [1]];
  for (const args of attempts) {
    try {
      return new cls(...args);
    } catch {
      // the next shape
    }
  }
  throw new Error(`cannot construct ${cls.name} with any of ${JSON.stringify(attempts)}`);
}

/** The exports of src/index.ts as the type checker sees them, aliases resolved. */
interface TypeView {
  checker: ts.TypeChecker;
  exports: Map<string, ts.Symbol>;
}

function typeView(): TypeView {
  const configPath = path.join(ROOT, 'tsconfig.json');
  const { config } = ts.readConfigFile(configPath, (file) => ts.sys.readFile(file)) as { config: unknown };
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, ROOT);
  const entry = path.join(ROOT, 'src/index.ts');
  const program = ts.createProgram([entry], { ...options, noEmit: true });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  const exports = new Map<string, ts.Symbol>();
  for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
    exports.set(symbol.name, symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol);
  }
  return { checker, exports };
}

/** The documented name's type: a class's instance type, an interface or a type alias. */
function typeOf(view: TypeView, symbol: ts.Symbol): ts.Type {
  return view.checker.getDeclaredTypeOfSymbol(symbol);
}

describe('public API (src/index.ts) against docs/architecture.md', () => {
  let view: TypeView;

  before(function () {
    this.timeout(60_000); // one TypeScript program over src/: about 2 s
    view = typeView();
  });

  it('reads the tables of exports, members and environment variables', () => {
    expect(doc.exports.length, 'exported names').to.be.above(50);
    expect(doc.members.length, 'members').to.be.above(20);
    expect(doc.env.length, 'environment variables').to.be.above(10);
    const names = doc.exports.map((e) => e.name);
    expect(
      names.filter((n, i) => names.indexOf(n) !== i),
      'names listed twice',
    ).to.deep.equal([]);
  });

  it('exports every documented value with its documented kind', () => {
    const wrong = documented
      .filter((e) => e.kind !== 'type')
      .filter((e) => !(e.name in runtime) || runtimeKind(runtime[e.name]) !== e.kind)
      .map((e) =>
        e.name in runtime
          ? `${e.name}: documented as ${e.kind}, exported as ${runtimeKind(runtime[e.name])}`
          : `${e.name}: documented as ${e.kind}, not exported`,
      );
    expect(wrong).to.deep.equal([]);
  });

  it('exports every documented type, as a type only', () => {
    const wrong = documented
      .filter((e) => e.kind === 'type')
      .flatMap((e) => {
        const symbol = view.exports.get(e.name);
        if (!symbol) return [`${e.name}: documented as a type, not exported`];
        if (e.name in runtime) return [`${e.name}: documented as a type, exported as a value too`];
        if (!(symbol.flags & ts.SymbolFlags.Type)) return [`${e.name}: exported, but not a type`];
        return [];
      });
    expect(wrong).to.deep.equal([]);
  });

  it('gives every documented error class its documented code, on an AppError', () => {
    const wrong = documented
      .filter((e) => e.code !== undefined)
      .flatMap((e) => {
        const cls = runtime[e.name];
        if (typeof cls !== 'function') return [`${e.name}: not exported`];
        const error = instantiate(cls as new (...args: unknown[]) => unknown);
        const code = (error as { code?: unknown }).code;
        if (!(error instanceof api.AppError)) return [`${e.name}: not an AppError`];
        return code === e.code ? [] : [`${e.name}: code ${String(code)}, documented ${e.code}`];
      });
    expect(wrong).to.deep.equal([]);
  });

  it('documents every name src/index.ts exports', () => {
    const listed = new Set(documented.map((e) => e.name));
    const exported = new Set([...Object.keys(runtime), ...view.exports.keys()]);
    const undocumented = [...exported].filter((name) => !listed.has(name)).sort();
    expect(undocumented, `exports missing from the tables of ${DOC}`).to.deep.equal([]);
  });

  it('has every documented member, with its documented kind', () => {
    const wrong = doc.members
      .filter((m) => m.status !== 'planned' && !plannedNames.has(m.owner))
      .flatMap((m) => {
        const owner = view.exports.get(m.owner);
        if (!owner) return [`${m.owner}.${m.name}: ${m.owner} is not exported`];
        const member = typeOf(view, owner).getProperty(m.name);
        if (!member) return [`${m.owner}.${m.name}: no such member`];
        const kind: MemberKind = member.flags & ts.SymbolFlags.Method ? 'method' : 'property';
        return kind === m.kind ? [] : [`${m.owner}.${m.name}: documented as ${m.kind}, is a ${kind}`];
      });
    expect(wrong).to.deep.equal([]);
  });

  it('maps every contract environment variable to its documented key', () => {
    // APP_ENV and DATABASE_URL are read by the loader itself, not through ENV_VARS: probe them.
    const probes: Record<string, () => boolean> = {
      APP_ENV: () => loadConfig({ env: { APP_ENV: 'test' }, envFile: false }).profile === 'test',
      DATABASE_URL: () => {
        const env = { APP_ENV: 'test', DATABASE_URL: 'postgres://u:p@db.example:6543/orders' };
        const pg = loadConfig({ env, envFile: false }).database.postgres;
        return pg.host === 'db.example' && pg.port === 6543 && pg.name === 'orders' && pg.password === 'p';
      },
    };
    const wrong = doc.env
      .filter((v) => v.status !== 'planned')
      .filter((v) => {
        const base = v.name.replace(/_FILE$/, '');
        if (ENV_VARS[base] !== undefined) return ENV_VARS[base] !== v.key;
        const probe = probes[v.name];
        return probe === undefined || !probe();
      })
      .map((v) => `${v.name} -> ${v.key}`);
    expect(wrong).to.deep.equal([]);
  });

  describe('planned, not exported yet', () => {
    it('lists the planned names it checks below', () => {
      const names = [
        ...planned.map((e) => e.name),
        ...doc.members
          .filter((m) => m.status === 'planned' || plannedNames.has(m.owner))
          .map((m) => `${m.owner}.${m.name}`),
        ...doc.env.filter((v) => v.status === 'planned').map((v) => v.name),
      ];
      // Every scale-out name has landed; a name designed ahead of its code is listed here.
      expect(names).to.deep.equal([]);
    });

    it('exports none of the planned names yet (docs/architecture.md changes when one lands)', () => {
      const landed = [
        ...planned.filter((e) => e.name in runtime || view.exports.has(e.name)).map((e) => e.name),
        ...doc.members
          .filter((m) => m.status === 'planned' && !plannedNames.has(m.owner))
          .filter((m) => {
            const owner = view.exports.get(m.owner);
            return owner !== undefined && typeOf(view, owner).getProperty(m.name) !== undefined;
          })
          .map((m) => `${m.owner}.${m.name}`),
        ...doc.env.filter((v) => v.status === 'planned' && v.name in ENV_VARS).map((v) => v.name),
      ];
      expect(landed, `planned in ${DOC}, but already there: mark them contract or added`).to.deep.equal([]);
    });
  });

  it('accepts a multi-host DATABASE_URL with target_session_attrs (libpq syntax)', () => {
    const env = {
      APP_ENV: 'test',
      DATABASE_URL: 'postgres://u:p@h1:5432,h2:5433/db?target_session_attrs=read-write',
    };
    const pg = loadConfig({ env, envFile: false }).database.postgres;
    expect(pg.hosts).to.deep.equal(['h1:5432', 'h2:5433']);
    expect(pg.targetSessionAttrs).to.equal('read-write');
  });
});

describe('the other entry points (pg-data-layer/testing, pg-data-layer/fastify) against docs/architecture.md', () => {
  const entries = [
    {
      marker: 'public-api:testing',
      file: 'src/testing/index.ts',
      load: () => import('../../src/testing/index.js'),
    },
    {
      marker: 'public-api:fastify',
      file: 'src/fastify/index.ts',
      load: () => import('../../src/fastify/index.js'),
    },
  ];
  for (const entry of entries) {
    it(`${entry.file}: exports exactly the documented names, with their kinds`, async function () {
      this.timeout(60_000);
      const rows = tablesAfter(readRepoFile(DOC), entry.marker)
        .flat()
        .map(([name = '', kind = '']) => ({
          name: unquote(name),
          kind: oneOf(EXPORT_KINDS, kind, `kind of ${name}`),
        }));
      expect(rows.length, `rows after <!-- ${entry.marker} -->`).to.be.above(3);
      const values = (await entry.load()) as Record<string, unknown>;
      const configPath = path.join(ROOT, 'tsconfig.json');
      const { config } = ts.readConfigFile(configPath, (f) => ts.sys.readFile(f)) as { config: unknown };
      const { options } = ts.parseJsonConfigFileContent(config, ts.sys, ROOT);
      const program = ts.createProgram([path.join(ROOT, entry.file)], { ...options, noEmit: true });
      const checker = program.getTypeChecker();
      const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(path.join(ROOT, entry.file))!)!;
      const exported = checker.getExportsOfModule(moduleSymbol).map((s) => s.name);
      const wrong = rows.flatMap((row) => {
        if (row.kind === 'type')
          return exported.includes(row.name) && !(row.name in values)
            ? []
            : [`${row.name}: not a type-only export`];
        return row.name in values && runtimeKind(values[row.name]) === row.kind
          ? []
          : [`${row.name}: documented as ${row.kind}`];
      });
      expect(wrong).to.deep.equal([]);
      const documentedNames = new Set(rows.map((r) => r.name));
      expect(
        exported.filter((name) => !documentedNames.has(name)).sort(),
        'undocumented exports',
      ).to.deep.equal([]);
    });
  }
});
