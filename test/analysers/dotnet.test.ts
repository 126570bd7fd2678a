import { describe, expect, it } from 'vitest';
import { dotnetAnalyser } from '../../src/analyse/analysers/dotnet.js';
import type { FileFacts } from '../../src/analyse/types.js';

async function run(path: string, content: string): Promise<FileFacts> {
  const buf = Buffer.from(content, 'utf8');
  return dotnetAnalyser.analyse(
    { path, size: buf.length, mode: 0o644, content: buf },
    { scratchDir: '/tmp' },
  );
}

describe('dotnetAnalyser', () => {
  it('wants only *.deps.json', () => {
    const info = { size: 1, mode: 0o644 };
    expect(dotnetAnalyser.wants('app/Shop.Api.deps.json', info)).toBe(true);
    expect(dotnetAnalyser.wants('app/Shop.Api.runtimeconfig.json', info)).toBe(false);
    expect(dotnetAnalyser.wants('app/deps.json.bak', info)).toBe(false);
  });

  it('reports package libraries only', async () => {
    const deps = {
      runtimeTarget: { name: '.NETCoreApp,Version=v8.0', signature: '' },
      compilationOptions: {},
      targets: { '.NETCoreApp,Version=v8.0': {} },
      libraries: {
        'Shop.Api/1.0.0': { type: 'project', serviceable: false, sha512: '' },
        'Newtonsoft.Json/13.0.3': {
          type: 'package',
          serviceable: true,
          sha512:
            'sha512-HrC5BXdl00IP9zeV+0Z848QWPAoCr9P3bDEZguI+gkLcBKAOxix/tLEAAHC+UvDNPv4a2d18lOReHMOagPa+zQ==',
          path: 'newtonsoft.json/13.0.3',
          hashPath: 'newtonsoft.json.13.0.3.nupkg.sha512',
        },
        'Microsoft.Extensions.Logging/8.0.0-rc.2.23479.6': { type: 'package', serviceable: true },
        'System.Xml.ReaderWriter/4.0.0.0': { type: 'reference' },
      },
    };
    expect(await run('app/Shop.Api.deps.json', JSON.stringify(deps))).toEqual({
      packages: [
        { type: 'nuget', name: 'Newtonsoft.Json', version: '13.0.3', paths: ['app/Shop.Api.deps.json'] },
        {
          type: 'nuget',
          name: 'Microsoft.Extensions.Logging',
          version: '8.0.0-rc.2.23479.6',
          paths: ['app/Shop.Api.deps.json'],
        },
      ],
    });
  });

  it('warns on malformed input', async () => {
    expect((await run('app/x.deps.json', '{"libraries": ')).warnings?.[0]).toMatch(
      /^app\/x\.deps\.json: invalid JSON: /,
    );
    expect(await run('app/x.deps.json', '{"targets": {}}')).toEqual({
      warnings: ['app/x.deps.json: no "libraries" object'],
    });
  });
});

describe('dotnet JSON bounds', () => {
  const doc = (extra: string) => `{"libraries":{"Newtonsoft.Json/13.0.3":{"type":"package","extra":${extra}}}}`;
  it('refuses JSON nested deeper than any lockfile, with a warning', async () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    expect(await run('app/App.deps.json', doc(deep))).toEqual({ warnings: ['app/App.deps.json: JSON nested deeper than 1000 levels; skipped'] });
  });

  it('still reads a file nested a few hundred levels deep', async () => {
    const facts = await run('app/App.deps.json', doc(`${'['.repeat(500)}${']'.repeat(500)}`));
    expect(facts.packages).toEqual([expect.objectContaining({ name: 'Newtonsoft.Json', version: '13.0.3' })]);
  });
});
