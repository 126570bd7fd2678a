#!/usr/bin/env node
// Hostile and oversized inputs against `portcullis sbom`: time and peak memory of one scan each,
// to keep "bad input ends quickly, in bounded memory" measured rather than assumed. Every input is
// generated here (nothing from outside), within the analysers' size limits, in the shapes reviews
// found expensive: zip bombs, huge lockfiles, regex-hostile blank runs, many findings, a status
// file rewritten in several layers.
//
//   npm run build && node bench/hostile/run.mjs [--only NAME[,NAME]] [--root DIR]...
//
// --root points at another checkout's build (e.g. a git worktree of an older commit, built), to
// put its figures beside this one's; give it more than once to compare several. Inputs are cached
// in .bench-tmp/hostile. Peak RSS is GNU time's %M (the largest process of the scan).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..');
const WORK = join(REPO, '.bench-tmp', 'hostile');

const args = process.argv.slice(2);
const only = new Set();
const roots = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--only') for (const n of (args[++i] ?? '').split(',')) only.add(n);
  else if (args[i] === '--root') roots.push(resolve(args[++i] ?? '.'));
  else {
    console.error('usage: node bench/hostile/run.mjs [--only NAME[,NAME]] [--root DIR]...');
    process.exit(2);
  }
}
if (roots.length === 0 || !roots.includes(REPO)) roots.unshift(REPO);

// ---------------------------------------------------------------------------------------------
// Generators: each writes its input under `dir` and returns the image reference to scan.

function writeTree(dir, files) {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return `dir:${dir}`;
}

/** A zip of `entries` [{name, data, method}], optionally every directory entry pointing at the first local entry. */
function zip(entries, { shareFirst = false } = {}) {
  const locals = [];
  const parts = [];
  let offset = 0;
  for (const e of entries) {
    if (shareFirst && locals.length > 0) {
      locals.push(locals[0]);
      continue;
    }
    const data = e.method === 8 ? deflateRawSync(e.data, { level: 9 }) : e.data;
    const name = Buffer.from(e.name);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt16LE(e.method, 8);
    h.writeUInt32LE(data.length, 18);
    h.writeUInt32LE(e.data.length, 22);
    h.writeUInt16LE(name.length, 26);
    locals.push({ offset, compressed: data.length, size: e.data.length, method: e.method });
    parts.push(h, name, data);
    offset += 30 + name.length + data.length;
  }
  const cd = entries.map((e, i) => {
    const l = locals[i];
    const name = Buffer.from(e.name);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(l.method, 10);
    c.writeUInt32LE(l.compressed, 20);
    c.writeUInt32LE(l.size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(l.offset, 42);
    return Buffer.concat([c, name]);
  });
  const dir = Buffer.concat(cd);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, dir, end]);
}

/** Writes `lines()` (a generator of strings) to a file without holding it all. */
function writeStreamed(path, lines) {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'w');
  let pending = [];
  let size = 0;
  for (const s of lines()) {
    pending.push(s);
    size += s.length;
    if (size > 1 << 20) {
      writeSync(fd, pending.join(''));
      pending = [];
      size = 0;
    }
  }
  writeSync(fd, pending.join(''));
  closeSync(fd);
}

async function tarOf(entries) {
  const p = pack();
  const chunks = [];
  p.on('data', (c) => chunks.push(c));
  const done = new Promise((res, rej) => {
    p.on('end', res);
    p.on('error', rej);
  });
  for (const e of entries) {
    await new Promise((res, rej) => p.entry({ name: e.name, mode: 0o644, size: e.content.length }, e.content, (err) => (err ? rej(err) : res())));
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** An OCI image layout of gzip layers, each a list of {name, content}. */
async function ociLayout(dir, layers) {
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (buf) => {
    const hex = createHash('sha256').update(buf).digest('hex');
    writeFileSync(join(blobs, hex), buf);
    return { digest: `sha256:${hex}`, size: buf.length };
  };
  const diffIds = [];
  const layerDescs = [];
  for (const entries of layers) {
    const tar = await tarOf(entries);
    diffIds.push(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
    layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(gzipSync(tar)) });
  }
  const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, config: {} })));
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: layerDescs,
      }),
    ),
  );
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest }] }),
  );
  return `oci:${dir}`;
}

const dpkgStanza = (i, descriptionLines = 0) =>
  `Package: pkg${i}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.${i}\nDescription: package ${i}\n${' lorem ipsum dolor sit amet consectetur adipiscing elit\n'.repeat(descriptionLines)}\n`;

function awsKeyId(i) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let x = (i + 1) * 2654435761;
  let s = 'AKIA';
  for (let k = 0; k < 16; k++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += alphabet[(x >>> 16) % 32];
  }
  return s;
}

const CASES = [
  {
    name: 'jar-overlap',
    what: '9 KB jar: nested jars whose 3,000 entries all point at one local entry, four levels deep',
    make: (dir) => {
      let inner = zip([
        { name: 'META-INF/maven/g/a/pom.properties', data: Buffer.from('groupId=g\nartifactId=a\nversion=1.0\n'), method: 8 },
        { name: 'pad', data: Buffer.alloc(4 << 20), method: 8 },
      ]);
      for (let level = 0; level < 4; level++) {
        const n = level === 3 ? 150 : 3000;
        inner = zip(Array.from({ length: n }, () => ({ name: `n${level}.jar`, data: inner, method: 8 })), { shareFirst: true });
      }
      return writeTree(dir, { 'app/bomb.jar': inner });
    },
  },
  {
    name: 'jar-many',
    what: '1.2 MB jar of 1,000 distinct deflated 1 MiB jars (1 GiB to inflate; the budget stops it)',
    make: (dir) => {
      const nested = zip([{ name: 'pad', data: Buffer.alloc(1 << 20), method: 0 }]);
      return writeTree(dir, { 'app/many.jar': zip(Array.from({ length: 1000 }, (_, i) => ({ name: `lib/n${i}-1.0.jar`, data: nested, method: 8 }))) });
    },
  },
  {
    name: 'pnpm-16mb',
    what: 'pnpm-lock.yaml v9, 60,000 packages and snapshots (16 MB)',
    make: (dir) => {
      const n = 60_000;
      writeStreamed(join(dir, 'app/pnpm-lock.yaml'), function* () {
        yield "lockfileVersion: '9.0'\n\nimporters:\n  .:\n    dependencies:\n";
        for (let i = 0; i < 2000; i++) yield `      pkg-${i}:\n        specifier: ^1.0.${i}\n        version: 1.0.${i}\n`;
        yield '\npackages:\n';
        for (let i = 0; i < n; i++) yield `  pkg-${i}@1.0.${i}:\n    resolution: {integrity: sha512-${'A'.repeat(86)}==}\n    engines: {node: '>=14'}\n\n`;
        yield '\nsnapshots:\n';
        for (let i = 0; i < n; i++) yield `  pkg-${i}@1.0.${i}:\n    dependencies:\n      pkg-${(i + 1) % n}: 1.0.${(i + 1) % n}\n\n`;
      });
      return `dir:${dir}`;
    },
  },
  {
    name: 'dpkg-127mib',
    what: 'dpkg status of about 8,000 packages with long descriptions (127 MiB, under the 128 MiB limit)',
    make: (dir) => {
      writeStreamed(join(dir, 'var/lib/dpkg/status'), function* () {
        for (let i = 0, total = 0; total < 127 * 1024 * 1024; i++) {
          const s = dpkgStanza(i, 290);
          total += s.length;
          yield s;
        }
      });
      return `dir:${dir}`;
    },
  },
  {
    name: 'squash-dpkg-4-layers',
    what: 'four layers, each rewriting a dpkg status of 20,000 packages (as apt-get layers do)',
    make: async (dir) => {
      const layers = [0, 1, 2, 3].map((l) => [
        { name: 'var/lib/dpkg/status', content: Buffer.from(Array.from({ length: 20_000 + l }, (_, i) => dpkgStanza(i)).join('')) },
      ]);
      return ociLayout(dir, layers);
    },
  },
  {
    name: 'secrets-90k',
    what: '2 MB text file of 90,000 AWS access key ids, one per line (`scan --scanners secret`)',
    command: ['scan', '--scanners', 'secret'],
    make: (dir) => writeTree(dir, { 'app/keys.txt': Array.from({ length: 90_000 }, (_, i) => awsKeyId(i)).join('\n') }),
  },
  {
    name: 'secrets-generic-120k',
    what: '2 MB text file of 120,000 short `pwd=` assignments, one per line (`scan --scanners secret`)',
    command: ['scan', '--scanners', 'secret'],
    make: (dir) => {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
      let x = 7;
      const lines = [];
      for (let i = 0; i < 120_000; i++) {
        let v = '';
        for (let k = 0; k < 9; k++) {
          x = (x * 1103515245 + 12345) % 2147483648;
          v += alphabet[(x >>> 16) % 62];
        }
        lines.push(`pwd=${v}a1Z`);
      }
      return writeTree(dir, { 'app/pw.txt': lines.join('\n') });
    },
  },
  {
    name: 'gemspec-blank-lines',
    what: 'gemspec with 80,000 blank lines before its fields',
    make: (dir) =>
      writeTree(dir, {
        'usr/lib/ruby/gems/3.1.0/specifications/x-1.0.gemspec': `${'\n'.repeat(80_000)}Gem::Specification.new do |s|\n  s.name = "x"\n  s.version = "1.0"\nend\n`,
      }),
  },
  {
    name: 'metadata-classifiers',
    what: 'Python METADATA with 200,000 distinct licence classifiers',
    make: (dir) =>
      writeTree(dir, {
        'usr/lib/python3/dist-packages/x-1.0.dist-info/METADATA': `Metadata-Version: 2.1\nName: x\nVersion: 1.0\n${Array.from({ length: 200_000 }, (_, i) => `Classifier: License :: L${i}`).join('\n')}\n`,
      }),
  },
  {
    name: 'apk-63mib',
    what: 'apk installed database: one package owning 3.5 million files (63 MiB, under the 64 MiB limit)',
    make: (dir) => {
      writeStreamed(join(dir, 'lib/apk/db/installed'), function* () {
        yield 'P:big\nV:1.0-r0\nA:x86_64\n';
        for (let f = 0, total = 0; total < 63 * 1024 * 1024; f++) {
          const s = f % 1000 === 0 ? `F:usr/share/big/d${f / 1000}\nR:file${f}\n` : `R:file${f}\n`;
          total += s.length;
          yield s;
        }
        yield '\n';
      });
      return `dir:${dir}`;
    },
  },
  {
    name: 'dpkg-list-72mib',
    what: 'dpkg info/big.list naming 2.4 million files (72 MiB)',
    make: (dir) => {
      writeStreamed(join(dir, 'var/lib/dpkg/info/big.list'), function* () {
        for (let f = 0, total = 0; total < 72 * 1024 * 1024; f++) {
          const s = `/usr/share/big/d${Math.floor(f / 1000)}/file-${f}\n`;
          total += s.length;
          yield s;
        }
      });
      return `dir:${dir}`;
    },
  },
  {
    name: 'poetry-dotted-13mib',
    what: 'poetry.lock of 13 MiB of dotted keys (`a1.b.c.d.e.f.g = 1`)',
    make: (dir) => {
      writeStreamed(join(dir, 'app/poetry.lock'), function* () {
        for (let i = 0, total = 0; total < 13 * 1024 * 1024; i++) {
          const s = `a${i}.b.c.d.e.f.g = 1\n`;
          total += s.length;
          yield s;
        }
      });
      return `dir:${dir}`;
    },
  },
  {
    name: 'json-nested-16mib',
    what: 'package-lock.json of 16 MiB of nested arrays (`[[[[...]]]]`)',
    make: (dir) => writeTree(dir, { 'app/package-lock.json': `${'['.repeat(8 << 20)}${']'.repeat(8 << 20)}` }),
  },
  {
    name: 'npm-v1-200k',
    what: 'package-lock.json v1 of 200,000 dependencies (6.5 MiB, under the JSON bounds)',
    make: (dir) => {
      writeStreamed(join(dir, 'app/package-lock.json'), function* () {
        yield '{"name":"app","lockfileVersion":1,"dependencies":{';
        for (let i = 0; i < 200_000; i++) yield `${i > 0 ? ',' : ''}"p${i}":{"version":"1.0.${i}"}`;
        yield '}}';
      });
      return `dir:${dir}`;
    },
  },
  {
    name: 'k8s-configmap-40k',
    what: 'Kubernetes ConfigMap with 40,000 keys (`scan k8s:`)',
    command: ['scan'],
    make: (dir) => {
      const file = join(dir, 'cm.yaml');
      writeStreamed(file, function* () {
        yield 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n';
        for (let i = 0; i < 40_000; i++) yield `  key${i}: value${i}\n`;
      });
      return `k8s:${file}`;
    },
  },
  {
    name: 'dockerfile-pipes-64k',
    what: 'Dockerfile RUN of 64,000 `curl x |` ending in `| cat` (`scan dockerfile:`)',
    command: ['scan'],
    make: (dir) => {
      const file = join(dir, 'Dockerfile');
      writeFileSync(file, `FROM alpine:3.20\nRUN ${'curl x | '.repeat(64_000)}cat\n`);
      return `dockerfile:${file}`;
    },
  },
  {
    name: 'dockerfile-exec-nested-8mib',
    what: 'Dockerfile RUN whose exec form is 8 MiB of nested brackets (`scan dockerfile:`)',
    command: ['scan'],
    make: (dir) => {
      const file = join(dir, 'Dockerfile');
      writeFileSync(file, `FROM alpine:3.20\nRUN ${'['.repeat(4 << 20)}${']'.repeat(4 << 20)}\n`);
      return `dockerfile:${file}`;
    },
  },
  {
    name: 'files-200k',
    what: 'one layer of 200,000 one-byte files',
    make: async (dir) => ociLayout(dir, [Array.from({ length: 200_000 }, (_, i) => ({ name: `app/d${Math.floor(i / 1000)}/f${i}.txt`, content: Buffer.from('x') }))]),
  },
];

// ---------------------------------------------------------------------------------------------

function scan(root, ref, command = ['sbom']) {
  const cache = mkdtempSync(join(tmpdir(), 'portcullis-hostile-cache-'));
  const started = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', process.execPath, join(root, 'bin', 'portcullis.js'), ...command, ref, '--format', 'json', '--cache-dir', cache], {
    encoding: 'utf8',
    maxBuffer: 512 << 20,
    env: { ...process.env, PORTCULLIS_CODE_CACHE: '0' },
  });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  rmSync(cache, { recursive: true, force: true });
  const timeLine = r.stderr.trim().split('\n').pop() ?? '';
  const [, kb] = timeLine.split(' ').map(Number);
  let found = '-';
  let warnings;
  try {
    const out = JSON.parse(r.stdout);
    found = `${out.packages?.length ?? 0}${out.secrets ? ` + ${out.secrets.length} secrets` : ''}${out.misconfigurations ? ` + ${out.misconfigurations.length} misconfigurations` : ''}`;
    warnings = out.warnings ?? [];
  } catch {
    warnings = [r.stderr.trim().split('\n')[0] ?? ''];
  }
  return { seconds: wallMs / 1000, rssMb: kb / 1024, exit: r.status, found, warning: (warnings[0] ?? '').slice(0, 90) };
}

console.error(`[hostile] inputs in ${WORK}`);
const rows = [];
for (const c of CASES) {
  if (only.size > 0 && !only.has(c.name)) continue;
  const dir = join(WORK, c.name);
  const refFile = join(WORK, `${c.name}.ref`);
  if (!existsSync(refFile)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    console.error(`[hostile] generating ${c.name} ...`);
    writeFileSync(refFile, await c.make(dir));
  }
  const ref = (await import('node:fs')).readFileSync(refFile, 'utf8');
  for (const root of roots) {
    const r = scan(root, ref, c.command);
    console.error(`[hostile] ${c.name} @ ${root}: ${r.seconds.toFixed(2)} s, ${r.rssMb.toFixed(0)} MB, exit ${r.exit}`);
    rows.push({ name: c.name, what: c.what, root, ...r });
  }
}

const rev = (root) => spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() || root;
console.log(`Hostile inputs ${new Date().toISOString()}: nproc ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}`);
console.log('One `portcullis sbom --format json` per input (`scan` where said), fresh cache, code cache off; peak RSS from GNU time.\n');
console.log('| input | build | seconds | peak RSS | exit | found | first warning |');
console.log('|-------|-------|---------|----------|------|----------|---------------|');
for (const r of rows) {
  console.log(`| ${r.name} | ${rev(r.root)} | ${r.seconds.toFixed(2)} | ${r.rssMb.toFixed(0)} MB | ${r.exit} | ${r.found} | ${r.warning.replace(/\|/g, '\\|')} |`);
}
console.log('\nInputs:');
for (const c of CASES) if (only.size === 0 || only.has(c.name)) console.log(`- ${c.name}: ${c.what}`);
