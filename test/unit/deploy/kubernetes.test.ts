/**
 * deploy/kubernetes checked against the service it deploys, without a cluster (kubectl is not
 * installed here): every YAML document parses; the probes name the service's own liveness and
 * readiness routes (read from src/http/health-routes.ts, which does not export them) on the port
 * the configuration really listens on (loadConfig over config/default.yaml, the ConfigMap's file,
 * the image's ENV and the container's env); no Secret carries a value; images are pinned;
 * resources and a non-root securityContext are set; the migration Job connects as another role;
 * NetworkPolicies admit only the ingress controller (HTTP) and monitoring (admin port) and let
 * the pods reach only PostgreSQL and DNS.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { resolveCursorSecret } from '../../../src/config/cursor-secret.js';
import { loadConfig, type AppConfig } from '../../../src/config/index.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const DIR = 'deploy/kubernetes';

/* The slice of the Kubernetes API these manifests use, as far as the checks read it. */
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Probe {
  httpGet?: { path?: string; port?: number | string };
}
interface Container {
  name: string;
  image?: string;
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: EnvVar[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    runAsNonRoot?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string }>;
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; runAsGroup?: number };
  volumes?: Array<{ name: string; secret?: { secretName: string }; configMap?: { name: string } }>;
}
interface PodTemplate {
  metadata?: { labels?: Record<string, string> };
  spec: PodSpec;
}
interface PolicyPeer {
  namespaceSelector?: { matchLabels?: Record<string, string> };
  podSelector?: { matchLabels?: Record<string, string> };
  ipBlock?: { cidr: string };
}
interface PolicyRule {
  from?: PolicyPeer[];
  to?: PolicyPeer[];
  ports?: Array<{ protocol?: string; port?: number | string }>;
}
interface Manifest {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; labels?: Record<string, string> };
  data?: Record<string, unknown>;
  stringData?: Record<string, unknown>;
  spec?: {
    podSelector?: { matchLabels?: Record<string, string> };
    policyTypes?: string[];
    ingress?: PolicyRule[];
    egress?: PolicyRule[];
    replicas?: number;
    minAvailable?: number | string;
    selector?: { matchLabels?: Record<string, string> } & Record<string, unknown>;
    template?: PodTemplate;
    ports?: Array<{ port: number; targetPort?: number | string }>;
  };
}
interface Generator {
  name: string;
  files?: string[];
  envs?: string[];
  literals?: string[];
}
interface Kustomization {
  resources?: string[];
  configMapGenerator?: Generator[];
  secretGenerator?: Generator[];
  images?: Array<{ name: string; newName?: string; newTag?: string; digest?: string }>;
}

/** Every document of a YAML file in deploy/kubernetes, failing on any parse error or warning. */
function readYaml(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(path.join(ROOT, DIR, file), 'utf8'));
  return docs.map((doc, i) => {
    const problems = [...doc.errors, ...doc.warnings].map((e) => e.message);
    expect(problems, `${file}, document ${i + 1}`).to.deep.equal([]);
    return doc.toJS() as unknown;
  });
}

/** The file part of a generator source (`key=path` or `path`). */
function sourcePath(entry: string): string {
  return entry.includes('=') ? entry.slice(entry.indexOf('=') + 1) : entry;
}

/**
 * The routes that health-routes.ts registers, and which of them its doc comment calls the
 * liveness and the readiness probe (`GET /healthz` liveness, `GET /readyz` readiness).
 */
function healthRoutes(): { registered: string[]; liveness: string; readiness: string } {
  const source = readFileSync(path.join(ROOT, 'src/http/health-routes.ts'), 'utf8');
  const registered = [...source.matchAll(/app\.get\(\s*'([^']+)'/g)].map((m) => m[1]!);
  const role = (word: string): string => {
    const found = new RegExp('`GET (/[^`]*)` ' + word).exec(source);
    if (!found) expect.fail(`health-routes.ts names no ${word} route`);
    return found[1]!;
  };
  return { registered, liveness: role('liveness'), readiness: role('readiness') };
}

/** `ENV` of the Dockerfile stage `stage` (KEY=VALUE pairs; no quoting used there). */
function dockerfileEnv(stage: string): Record<string, string> {
  const lines = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').split('\n');
  const start = lines.findIndex((l) => new RegExp(`^FROM \\S+ AS ${stage}\\s*$`, 'i').test(l));
  expect(start, `Dockerfile stage ${stage}`).to.be.above(-1);
  const env: Record<string, string> = {};
  for (const line of lines.slice(start + 1)) {
    if (/^FROM /i.test(line)) break;
    if (!/^ENV /.test(line)) continue;
    for (const pair of line.slice(4).trim().split(/\s+/)) {
      const [key = '', value = ''] = pair.split('=');
      env[key] = value;
    }
  }
  return env;
}

/** `USER` of the Dockerfile stage `stage`. */
function dockerfileUser(stage: string): string | undefined {
  const lines = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').split('\n');
  const start = lines.findIndex((l) => new RegExp(`^FROM \\S+ AS ${stage}\\s*$`, 'i').test(l));
  let user: string | undefined;
  for (const line of lines.slice(start + 1)) {
    if (/^FROM /i.test(line)) break;
    const m = /^USER (\S+)/.exec(line);
    if (m) user = m[1];
  }
  return user;
}

describe('deploy/kubernetes', () => {
  const kustomization = readYaml('kustomization.yaml')[0] as Kustomization;
  const manifests = (kustomization.resources ?? []).flatMap((file) =>
    readYaml(file).map((doc) => ({ file, doc: doc as Manifest })),
  );
  const byKind = (kind: string): Manifest[] => manifests.filter((m) => m.doc.kind === kind).map((m) => m.doc);
  const deployment = byKind('Deployment')[0]!;
  const job = byKind('Job')[0]!;
  const podSpecs = manifests
    .filter((m) => m.doc.spec?.template)
    .map((m) => ({ name: `${m.doc.kind}/${m.doc.metadata?.name}`, spec: m.doc.spec!.template!.spec }));
  const containers = podSpecs.flatMap(({ name, spec }) =>
    [...(spec.initContainers ?? []), ...spec.containers].map((c) => ({ pod: name, spec, c })),
  );
  const app = deployment.spec!.template!.spec.containers[0]!;

  let tmp: string;
  /**
   * The configuration a pod's container loads: config/default.yaml and the ConfigMap's
   * production.yaml in its config directory, the runtime stage's ENV under the container's
   * env, each *_FILE variable pointing at a stand-in file.
   */
  const podConfig = (c: Container, stage: string): AppConfig => {
    const env: Record<string, string> = { ...dockerfileEnv(stage) };
    for (const v of c.env ?? []) {
      if (v.value === undefined) continue;
      if (v.name.endsWith('_FILE')) {
        const file = path.join(tmp, v.name);
        writeFileSync(file, `stand-in for ${v.value}\n`);
        env[v.name] = file;
      } else env[v.name] = v.value;
    }
    return loadConfig({ env, configDir: path.join(tmp, 'config'), envFile: false });
  };

  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'pgdl-k8s-'));
    const configDir = path.join(tmp, 'config');
    mkdirSync(configDir);
    copyFileSync(path.join(ROOT, 'config/default.yaml'), path.join(configDir, 'default.yaml'));
    const configMap = kustomization.configMapGenerator?.find((g) => g.name === 'pg-data-layer-config');
    const file = sourcePath(configMap?.files?.[0] ?? '');
    copyFileSync(path.join(ROOT, DIR, file), path.join(configDir, 'production.yaml'));
  });

  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('parses every YAML document, each one a named Kubernetes object, and lists every YAML file it holds', () => {
    const generated = [...(kustomization.configMapGenerator ?? []), ...(kustomization.secretGenerator ?? [])]
      .flatMap((g) => [...(g.files ?? []), ...(g.envs ?? [])])
      .map(sourcePath);
    const unlisted = readdirSync(path.join(ROOT, DIR))
      .filter((f) => /\.ya?ml$/.test(f))
      .filter(
        (f) => f !== 'kustomization.yaml' && !kustomization.resources?.includes(f) && !generated.includes(f),
      );
    expect(unlisted, 'YAML files kustomization.yaml does not use').to.deep.equal([]);
    for (const f of generated.filter((g) => /\.ya?ml$/.test(g) && !g.startsWith('secrets/'))) readYaml(f);
    expect(manifests.length).to.be.at.least(4);
    for (const { file, doc } of manifests) {
      expect([doc.apiVersion, doc.kind, doc.metadata?.name].every(Boolean), `${file}: apiVersion, kind, name`)
        .to.be.true;
    }
    expect(manifests.map((m) => m.doc.kind)).to.include.members([
      'Deployment',
      'Service',
      'PodDisruptionBudget',
      'Job',
      'NetworkPolicy',
    ]);
  });

  it('probes the liveness and readiness routes the service registers', () => {
    const routes = healthRoutes();
    expect(routes.registered).to.include.members([routes.liveness, routes.readiness]);
    expect(app.livenessProbe?.httpGet?.path).to.equal(routes.liveness);
    expect(app.readinessProbe?.httpGet?.path).to.equal(routes.readiness);
    // Starting means listening: the liveness route answers as soon as the server does.
    expect(app.startupProbe?.httpGet?.path).to.equal(routes.liveness);
  });

  it('probes, exposes and targets the port the configuration listens on', () => {
    const cfg = podConfig(app, 'runtime');
    expect(cfg.profile).to.equal('production');
    expect(cfg.server.host).to.equal('0.0.0.0');
    const portOf = (port: number | string | undefined): number | undefined =>
      typeof port === 'number' ? port : app.ports?.find((p) => p.name === port)?.containerPort;
    expect(app.ports?.map((p) => p.containerPort)).to.deep.equal([cfg.server.port]);
    for (const probe of [app.livenessProbe, app.readinessProbe, app.startupProbe]) {
      expect(portOf(probe?.httpGet?.port)).to.equal(cfg.server.port);
    }
    const service = byKind('Service')[0]!;
    expect(service.spec?.ports?.map((p) => portOf(p.targetPort))).to.deep.equal([cfg.server.port]);
  });

  it('has no Secret with an inline value, and generates Secrets only from files git ignores', () => {
    const inline = byKind('Secret').filter(
      (s) => Object.keys(s.data ?? {}).length > 0 || Object.keys(s.stringData ?? {}).length > 0,
    );
    expect(inline.map((s) => s.metadata?.name)).to.deep.equal([]);
    const generators = kustomization.secretGenerator ?? [];
    expect(generators.flatMap((g) => g.literals ?? [])).to.deep.equal([]);
    const files = generators
      .flatMap((g) => [...(g.files ?? []), ...(g.envs ?? [])])
      .map((f) => `${DIR}/${sourcePath(f)}`);
    expect(files).to.have.length.above(0);
    const ignored = execFileSync('git', ['check-ignore', '--no-index', ...files], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(ignored.trim().split('\n')).to.deep.equal(files);
    expect(execFileSync('git', ['ls-files', '--', ...files], { cwd: ROOT, encoding: 'utf8' })).to.equal('');
  });

  it('passes passwords only as *_FILE paths inside mounted Secret volumes', () => {
    for (const { pod, spec, c } of containers) {
      const secretMounts = (c.volumeMounts ?? [])
        .filter((m) => spec.volumes?.find((v) => v.name === m.name)?.secret)
        .map((m) => m.mountPath);
      for (const v of c.env ?? []) {
        const secretish = /PASSWORD|SECRET|DATABASE_URL/.test(v.name);
        if (secretish && !v.name.endsWith('_FILE')) expect.fail(`${pod} ${c.name}: ${v.name} is set inline`);
        if (v.name.endsWith('_FILE') && secretish) {
          expect(
            secretMounts.some((dir) => v.value?.startsWith(`${dir}/`)),
            `${pod} ${c.name}: ${v.name}=${v.value} is inside a mounted Secret`,
          ).to.be.true;
        }
      }
    }
  });

  it('connects with sslMode verify-full in every pod, trusting the CA the kustomization mounts (never committed)', () => {
    const caGenerator = kustomization.configMapGenerator?.find((g) =>
      (g.files ?? []).some((f) => f.startsWith('ca.crt=')),
    );
    expect(caGenerator, 'a configMapGenerator with a ca.crt key').not.to.equal(undefined);
    for (const [c, stage, spec] of [
      [app, 'runtime', deployment.spec!.template!.spec],
      [job.spec!.template!.spec.containers[0]!, 'migrate', job.spec!.template!.spec],
    ] as const) {
      const pg = podConfig(c, stage).database.postgres;
      expect(pg.sslMode, c.name).to.equal('verify-full');
      expect(pg.channelBinding, c.name).not.to.equal('disable');
      expect(pg.allowInsecurePasswordAuth, c.name).to.equal(false);
      const mount = (c.volumeMounts ?? []).find((m) => pg.sslRootCert === `${m.mountPath}/ca.crt`);
      expect(mount, `${c.name}: sslRootCert ${pg.sslRootCert} inside a mount`).not.to.equal(undefined);
      const volume = spec.volumes?.find((v) => v.name === mount?.name);
      expect(volume?.configMap?.name, c.name).to.equal(caGenerator?.name);
    }
    const caFile = `${DIR}/${sourcePath(caGenerator!.files!.find((f) => f.startsWith('ca.crt='))!)}`;
    const ignored = execFileSync('git', ['check-ignore', '--no-index', caFile], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(ignored.trim()).to.equal(caFile);
  });

  it('pins every image to a version, never latest, in the manifests and in the kustomization', () => {
    const TAG = /^\w[\w.-]{0,127}$/; // Docker's tag grammar
    const tagOf = (image: string): string => /^[^@]+:([^:/@]+)$/.exec(image)?.[1] ?? '';
    for (const { pod, c } of containers) {
      const where = `${pod} ${c.name}: ${c.image}`;
      expect(tagOf(c.image ?? ''), where)
        .to.match(TAG)
        .and.not.equal('latest');
      // What the cluster runs: kustomize's images override, when it names this image.
      const override = kustomization.images?.find((i) => i.name === c.image?.split(':')[0]);
      if (override && !override.digest) expect(override.newTag, where).to.match(TAG).and.not.equal('latest');
    }
  });

  it('sets CPU and memory requests and a memory limit on every container', () => {
    for (const { pod, c } of containers) {
      const where = `${pod} ${c.name}`;
      expect(c.resources?.requests?.cpu, `${where}: requests.cpu`).to.be.a('string');
      expect(c.resources?.requests?.memory, `${where}: requests.memory`).to.be.a('string');
      expect(c.resources?.limits?.memory, `${where}: limits.memory`).to.be.a('string');
    }
  });

  it('runs every pod as the images’ non-root user, without privilege escalation, on a read-only root', () => {
    const imageUsers = ['runtime', 'migrate'].map((stage) => dockerfileUser(stage));
    for (const { name, spec } of podSpecs) {
      expect(spec.securityContext?.runAsNonRoot, `${name}: runAsNonRoot`).to.equal(true);
      expect(spec.securityContext?.runAsUser, `${name}: runAsUser`).to.be.above(0);
      const { runAsUser, runAsGroup } = spec.securityContext ?? {};
      for (const user of imageUsers)
        expect(user, `${name}: the images' USER`).to.equal(`${runAsUser}:${runAsGroup}`);
    }
    for (const { pod, c } of containers) {
      expect(c.securityContext?.allowPrivilegeEscalation, `${pod} ${c.name}`).to.equal(false);
      expect(c.securityContext?.readOnlyRootFilesystem, `${pod} ${c.name}`).to.equal(true);
      expect(c.securityContext?.capabilities?.drop, `${pod} ${c.name}`).to.deep.equal(['ALL']);
    }
  });

  it('migrates in a Job as another role than the service, with a password the service never mounts', () => {
    const migrate = job.spec!.template!.spec.containers[0]!;
    expect(migrate.image?.split(':')[0]).to.equal('pg-data-layer-migrate');
    const jobCfg = podConfig(migrate, 'migrate');
    const appCfg = podConfig(app, 'runtime');
    // knexMigrationConfig connects as database.migrations.username when set, else as the app's user.
    const migrationRole = jobCfg.database.migrations.username || jobCfg.database.postgres.username;
    expect(migrationRole).not.to.equal(appCfg.database.postgres.username);
    expect(jobCfg.database.postgres.host).to.equal(appCfg.database.postgres.host);
    const secretsOf = (spec: PodSpec): string[] =>
      (spec.volumes ?? []).flatMap((v) => (v.secret ? [v.secret.secretName] : []));
    const jobSecrets = secretsOf(job.spec!.template!.spec);
    const appSecrets = secretsOf(deployment.spec!.template!.spec);
    expect(jobSecrets).to.have.length(1);
    // The service's database password and its cursor-signing key; never the owner's password.
    expect(appSecrets).to.deep.equal(['pg-data-layer-db', 'pg-data-layer-cursor']);
    expect(appSecrets).not.to.include.members(jobSecrets);
    const generated = (kustomization.secretGenerator ?? []).map((g) => g.name);
    expect(generated).to.include.members([...jobSecrets, ...appSecrets]);
  });

  it('selects the Deployment’s pods in its Service and PodDisruptionBudget, keeping one available', () => {
    const podLabels = deployment.spec!.template!.metadata?.labels ?? {};
    const matches = (selector: Record<string, unknown> | undefined): boolean =>
      Object.entries(selector ?? {}).every(([k, v]) => podLabels[k] === v) &&
      Object.keys(selector ?? {}).length > 0;
    expect(matches(deployment.spec?.selector?.matchLabels)).to.be.true;
    const service = byKind('Service')[0]!;
    expect(matches(service.spec?.selector)).to.be.true;
    const pdb = byKind('PodDisruptionBudget')[0]!;
    expect(matches(pdb.spec?.selector?.matchLabels)).to.be.true;
    expect(pdb.spec?.minAvailable)
      .to.be.a('number')
      .and.below(deployment.spec?.replicas ?? 0);
    expect(existsSync(path.join(ROOT, DIR, 'secrets/.gitignore'))).to.be.true;
  });

  it('gives the service the cursor-signing key production requires, from a mounted Secret', () => {
    const cfg = podConfig(app, 'runtime');
    expect(cfg.server.cursorSecret).to.match(/^stand-in for \/var\/run\/secrets\//);
    expect(() => resolveCursorSecret(cfg)).not.to.throw();
  });

  describe('NetworkPolicy', () => {
    const policies = byKind('NetworkPolicy');
    const DNS = { 'kubernetes.io/metadata.name': 'kube-system' };
    /** The policy whose podSelector selects exactly the pods of `template`. */
    const policyFor = (template: PodTemplate): Manifest => {
      const labels = template.metadata?.labels ?? {};
      const found = policies.filter((p) => {
        const selector = p.spec?.podSelector?.matchLabels ?? {};
        return (
          Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v)
        );
      });
      expect(found, 'one NetworkPolicy per pod template').to.have.length(1);
      return found[0]!;
    };
    /** Egress allows TCP to the database port (any address) and DNS to kube-dns, nothing else. */
    const expectDatabaseAndDnsOnly = (policy: Manifest, dbPort: number): void => {
      expect(policy.spec?.policyTypes).to.have.members(['Ingress', 'Egress']);
      const rules = policy.spec?.egress ?? [];
      for (const rule of rules) expect(rule.ports, 'every egress rule names its ports').to.not.be.empty;
      const ports = rules.flatMap((r) => (r.ports ?? []).map((p) => `${p.protocol}/${p.port}`));
      expect(ports).to.have.members([`TCP/${dbPort}`, 'UDP/53', 'TCP/53']);
      const dns = rules.find((r) => r.ports?.some((p) => p.port === 53));
      expect(dns?.to?.map((t) => t.namespaceSelector?.matchLabels)).to.deep.equal([DNS]);
      expect(dns?.to?.[0]?.podSelector?.matchLabels).to.deep.equal({ 'k8s-app': 'kube-dns' });
    };

    it('admits the HTTP port only from the ingress controller, and the admin port only from monitoring', () => {
      const policy = policyFor(deployment.spec!.template!);
      const rules = policy.spec?.ingress ?? [];
      for (const rule of rules) {
        expect(rule.from, 'no ingress rule open to every source').to.not.be.empty;
        expect(rule.ports, 'every ingress rule names its port').to.have.length(1);
      }
      const byPort = Object.fromEntries(rules.map((r) => [String(r.ports![0]!.port), r.from]));
      expect(Object.keys(byPort)).to.have.members(['http', 'admin']);
      expect(app.ports?.map((p) => p.name)).to.include('http');
      expect(byPort.http).to.deep.equal([
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } },
          podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ingress-nginx' } },
        },
      ]);
      expect(byPort.admin).to.deep.equal([
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
      ]);
    });

    it('lets the service reach only PostgreSQL (its configured port) and DNS', () => {
      const cfg = podConfig(app, 'runtime');
      expectDatabaseAndDnsOnly(policyFor(deployment.spec!.template!), cfg.database.postgres.port);
    });

    it('admits nothing to the migration Job and lets it reach only PostgreSQL and DNS', () => {
      const migrate = job.spec!.template!.spec.containers[0]!;
      const policy = policyFor(job.spec!.template!);
      expect(policy.spec?.ingress).to.deep.equal([]);
      expectDatabaseAndDnsOnly(policy, podConfig(migrate, 'migrate').database.postgres.port);
    });
  });
});
