import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { PortcullisError } from '../../src/errors.js';
import { scanDockerfile } from '../../src/misconfig/dockerfile.js';

const SHA = `sha256:${'a'.repeat(64)}`;
const FROM = `FROM debian:12.5@${SHA}`;

/** A Dockerfile that passes every check, with `middle` lines between FROM (line 1) and USER/HEALTHCHECK. */
function clean(...middle: string[]): string {
  return [FROM, ...middle, 'USER 10001', 'HEALTHCHECK CMD ["/app/health"]'].join('\n');
}

function hits(text: string): [string, number | undefined][] {
  return scanDockerfile(text, 'Dockerfile').map((m) => [m.id, m.line]);
}

interface Case {
  id: string;
  bad: { text: string; expect: [string, number][] }[];
  good: string;
}

const CASES: Case[] = [
  {
    id: 'PC-IMG-001',
    bad: [
      { text: [FROM, 'HEALTHCHECK CMD ["/x"]'].join('\n'), expect: [['PC-IMG-001', 1]] },
      {
        text: [FROM, 'USER 10001', 'USER root', 'HEALTHCHECK CMD ["/x"]'].join('\n'),
        expect: [['PC-IMG-001', 3]],
      },
      { text: [FROM, 'USER 0:0', 'HEALTHCHECK CMD ["/x"]'].join('\n'), expect: [['PC-IMG-001', 2]] },
    ],
    good: clean(),
  },
  {
    id: 'PC-IMG-002',
    bad: [
      { text: clean('EXPOSE 8080 22/tcp'), expect: [['PC-IMG-002', 2]] },
      { text: clean('EXPOSE 20-25'), expect: [['PC-IMG-002', 2]] },
    ],
    good: clean('EXPOSE 8080 2222 22/udp'),
  },
  {
    id: 'PC-IMG-003',
    bad: [
      {
        text: clean(
          'RUN apt-get update && apt-get install -y --no-install-recommends openssh-server && rm -rf /var/lib/apt/lists/*',
        ),
        expect: [['PC-IMG-003', 2]],
      },
      { text: clean('RUN apk add --no-cache openssh'), expect: [['PC-IMG-003', 2]] },
    ],
    good: clean('RUN apk add --no-cache openssh-client'),
  },
  {
    id: 'PC-IMG-005',
    bad: [
      { text: [FROM, 'USER 10001'].join('\n'), expect: [['PC-IMG-005', 1]] },
      { text: [FROM, 'USER 10001', 'HEALTHCHECK NONE'].join('\n'), expect: [['PC-IMG-005', 3]] },
    ],
    good: clean(),
  },
  {
    id: 'PC-IMG-006',
    bad: [{ text: clean('ADD https://example.com/app.tar.gz /opt/'), expect: [['PC-IMG-006', 2]] }],
    good: clean(`ADD --checksum=${SHA} https://example.com/app.tar.gz /opt/`),
  },
  {
    id: 'PC-IMG-007',
    bad: [
      { text: clean('ENV APP_MODE=prod DB_PASSWORD=hunter2'), expect: [['PC-IMG-007', 2]] },
      { text: clean('ARG GITHUB_TOKEN=ghp_abcdef'), expect: [['PC-IMG-007', 2]] },
      { text: clean('ENV A=1 \\', '    AWS_SECRET_ACCESS_KEY=abc'), expect: [['PC-IMG-007', 3]] },
    ],
    good: clean('ENV DB_PASSWORD_FILE=/run/secrets/db', 'ARG NPM_TOKEN', 'ENV API_KEY=""'),
  },
  {
    id: 'PC-IMG-008',
    bad: [
      { text: clean('RUN apk add --no-cache sudo'), expect: [['PC-IMG-008', 2]] },
      { text: clean('RUN dnf install -y sudo && dnf clean all'), expect: [['PC-IMG-008', 2]] },
    ],
    good: clean('RUN apk add --no-cache su-exec'),
  },
  {
    id: 'PC-IMG-009',
    bad: [
      {
        text: clean('RUN apt-get update && apt-get install -y --no-install-recommends curl'),
        expect: [['PC-IMG-009', 2]],
      },
      { text: clean('RUN apk add curl'), expect: [['PC-IMG-009', 2]] },
      { text: clean('RUN pip install flask'), expect: [['PC-IMG-009', 2]] },
      { text: clean('RUN python3 -m pip install -r requirements.txt'), expect: [['PC-IMG-009', 2]] },
      { text: clean('RUN yum install -y curl'), expect: [['PC-IMG-009', 2]] },
    ],
    good: clean(
      'RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*',
      'RUN apk add --no-cache curl',
      'RUN pip install --no-cache-dir flask',
      'RUN dnf install -y curl && dnf clean all',
      'RUN --mount=type=cache,target=/var/lib/apt apt-get install -y --no-install-recommends git',
      'ENV PIP_NO_CACHE_DIR=1',
      'RUN pip3 install requests',
    ),
  },
  {
    id: 'PC-IMG-010',
    bad: [
      { text: clean('RUN curl -fsSL https://get.example.com | sh'), expect: [['PC-IMG-010', 2]] },
      {
        text: clean('RUN wget -qO- https://get.example.com | tee /tmp/log | sudo bash -s --'),
        expect: [['PC-IMG-010', 2]],
      },
      { text: clean('RUN sh -c "$(curl -fsSL https://get.example.com)"'), expect: [['PC-IMG-010', 2]] },
    ],
    good: clean(
      'RUN curl -fsSLo /tmp/i.sh https://get.example.com && echo "abc  /tmp/i.sh" | sha256sum -c - && sh /tmp/i.sh',
      'RUN curl -fsSL https://example.com/x.tgz | tar -xz -C /opt',
    ),
  },
  {
    id: 'PC-IMG-012',
    bad: [
      {
        text: clean().replace(FROM, 'FROM debian'),
        expect: [
          ['PC-DF-001', 1],
          ['PC-IMG-012', 1],
        ],
      },
      {
        text: clean().replace(FROM, 'FROM docker.io/library/debian:latest'),
        expect: [
          ['PC-DF-001', 1],
          ['PC-IMG-012', 1],
        ],
      },
      {
        text: clean().replace(FROM, 'FROM localhost:5000/app'),
        expect: [
          ['PC-DF-001', 1],
          ['PC-IMG-012', 1],
        ],
      },
    ],
    good: clean().replace(FROM, `FROM debian@${SHA}`),
  },
  {
    id: 'PC-DF-001',
    bad: [{ text: clean().replace(FROM, 'FROM debian:12.5'), expect: [['PC-DF-001', 1]] }],
    good: clean().replace(FROM, `FROM --platform=linux/amd64 debian:12.5@${SHA}`),
  },
  {
    id: 'PC-DF-002',
    bad: [
      {
        text: clean('RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*'),
        expect: [['PC-DF-002', 2]],
      },
    ],
    good: clean(
      'RUN apt-get update && apt-get -o APT::Install-Recommends=false install -y curl && rm -rf /var/lib/apt/lists/*',
    ),
  },
  {
    id: 'PC-DF-003',
    bad: [
      { text: clean('ADD app.py /app/'), expect: [['PC-DF-003', 2]] },
      { text: clean('ADD ["app.py", "/app/"]'), expect: [['PC-DF-003', 2]] },
    ],
    good: clean('ADD rootfs.tar.xz /', 'COPY app.py /app/'),
  },
  {
    id: 'PC-DF-004',
    bad: [
      {
        text: clean('RUN apt-get update && apt-get -y dist-upgrade && rm -rf /var/lib/apt/lists/*'),
        expect: [['PC-DF-004', 2]],
      },
      {
        text: clean('RUN apt-get update && apt-get upgrade -y && rm -rf /var/lib/apt/lists/*'),
        expect: [['PC-DF-004', 2]],
      },
    ],
    good: clean(
      'RUN apt-get update && apt-get install -y --no-install-recommends --only-upgrade openssl && rm -rf /var/lib/apt/lists/*',
    ),
  },
  {
    id: 'PC-DF-005',
    bad: [{ text: clean('RUN cd /tmp && make'), expect: [['PC-DF-005', 2]] }],
    good: clean('WORKDIR /tmp', 'RUN make && echo cd'),
  },
  {
    id: 'PC-DF-006',
    bad: [{ text: clean('MAINTAINER a@example.com'), expect: [['PC-DF-006', 2]] }],
    good: clean('LABEL org.opencontainers.image.authors="a@example.com"'),
  },
];

describe('scanDockerfile: every check', () => {
  for (const c of CASES) {
    it(`${c.id} fires on bad examples`, () => {
      for (const b of c.bad) expect(hits(b.text), b.text).toEqual(b.expect);
    });
    it(`${c.id} is silent on a good example`, () => {
      expect(hits(c.good)).toEqual([]);
    });
  }

  it('fills the finding fields and never echoes a secret', () => {
    const [m] = scanDockerfile(clean('ENV DB_PASSWORD=hunter2'), 'app/Dockerfile');
    expect(m).toMatchObject({
      id: 'PC-IMG-007',
      severity: 'high',
      cis: '4.10',
      target: 'app/Dockerfile',
      line: 2,
    });
    expect(m?.title).toBeTruthy();
    expect(m?.remedy).toBeTruthy();
    expect(JSON.stringify(m)).not.toContain('hunter2');
  });
});

describe('scanDockerfile: structure', () => {
  const base = `golang:1.22@${SHA}`;

  it('applies image checks to the final stage only and treats stage names as built here', () => {
    const text = [
      `ARG GO=${base}`, // 1
      'FROM ${GO} AS build', // 2
      'RUN apt-get update && apt-get install -y sudo', // 3: builder packages do not ship
      'RUN cd /src && go build', // 4
      'USER root', // 5
      'FROM build AS test', // 6
      'RUN go test ./...', // 7
      `FROM gcr.io/distroless/static:nonroot@${SHA}`, // 8
      'COPY --from=build /out /app', // 9
      'USER 65532', // 10
      'HEALTHCHECK CMD ["/app", "health"]', // 11
    ].join('\n');
    expect(hits(text)).toEqual([['PC-DF-005', 4]]);
  });

  it('inherits USER and installed packages when the final stage is built FROM an earlier one', () => {
    const text = [
      `FROM ${base} AS Build`, // 1
      'RUN apt-get update && apt-get install -y sudo', // 2
      'USER root', // 3
      'FROM build', // 4: stage names are case-insensitive
      'HEALTHCHECK CMD ["/app"]', // 5
    ].join('\n');
    expect(hits(text)).toEqual([
      ['PC-DF-002', 2],
      ['PC-IMG-008', 2],
      ['PC-IMG-009', 2],
      ['PC-IMG-001', 3],
    ]);
  });

  it('follows line continuations, skips comment lines in them, and reports the line of the command', () => {
    const text = clean(
      'RUN apt-get update && \\', // 2
      '    # install the tools', // 3
      '    apt-get install -y --no-install-recommends \\', // 4
      '      curl && \\', // 5
      '    curl -fsSL https://x.example | bash', // 6
    );
    expect(hits(text)).toEqual([
      ['PC-IMG-009', 4],
      ['PC-IMG-010', 6],
    ]);
  });

  it('handles CRLF line endings', () => {
    expect(hits(clean('RUN apk add \\', '  sudo').replace(/\n/g, '\r\n'))).toEqual([
      ['PC-IMG-008', 2],
      ['PC-IMG-009', 2],
    ]);
  });

  it('reads a heredoc RUN as a script, but a heredoc fed to cat as data', () => {
    const text = clean(
      'RUN <<EOF', // 2
      'set -e', // 3
      'apk add sudo', // 4
      'EOF', // 5
      'RUN cat <<EOF > /etc/motd', // 6
      'apt-get install openssh-server', // 7: file content, not a command
      'EOF', // 8
      'RUN ["/bin/sh", "-c", "apk add --no-cache sudo"]', // 9: exec form
    );
    expect(hits(text)).toEqual([
      ['PC-IMG-008', 4],
      ['PC-IMG-009', 4],
      ['PC-IMG-008', 9],
    ]);
  });

  it('reports on what it could parse in a broken Dockerfile', () => {
    const text = ['FROM', 'RUN', 'BOGUS x y', 'USER', 'RUN apk add sudo \\'].join('\n');
    const ids = hits(text).map(([id]) => id);
    expect(ids).toContain('PC-IMG-008');
  });

  it('rejects binary content and files without FROM with a PortcullisError naming the file', () => {
    for (const text of ['\0\0\x7fELF', '# just a comment\nRUN echo hi\n', '']) {
      let err: unknown;
      try {
        scanDockerfile(text, 'dir/Dockerfile.bad');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PortcullisError);
      expect((err as Error).message).toContain('dir/Dockerfile.bad');
    }
  });
});

describe('scanDockerfile: robustness', () => {
  it('never throws anything but a PortcullisError on arbitrary text', () => {
    const piece = fc.constantFrom(
      'FROM ',
      'RUN ',
      'ADD ',
      'ENV ',
      'ARG ',
      'USER ',
      'EXPOSE ',
      '\\\n',
      '<<EOF\n',
      'EOF\n',
      '"',
      "'",
      '$(',
      ')',
      '|',
      '&&',
      ' ',
      '\n',
      '# c\n',
      '[',
      ']',
      'curl',
      'sh',
      'apt-get install',
      'a=b',
      '@sha256:',
      ':',
    );
    fc.assert(
      fc.property(fc.array(fc.oneof(piece, fc.string()), { maxLength: 40 }), (parts) => {
        try {
          scanDockerfile(parts.join(''), 'Dockerfile');
        } catch (e) {
          expect(e).toBeInstanceOf(PortcullisError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('scanDockerfile: scaling', () => {
  it('finds a download run through command substitution in time linear in the RUN line', () => {
    // A lazy regex retried from every shell word: 40,000 words on one line took 3.3 s, 80,000 12 s.
    const words = `RUN ${Array<string>(40_000).fill('sh').join(' ')}`;
    const started = Date.now();
    expect(hits(clean(words))).toEqual([]);
    expect(hits(clean(`${words}; sh -c "$(curl -fsSL https://x.example)"`))).toEqual([['PC-IMG-010', 2]]);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('follows pipe chains from curl to an interpreter in time linear in their length', () => {
    // Walking forward from every curl: 64,000 pipes took 11.5 s.
    const chain = `RUN ${Array<string>(32_000).fill('curl x').join(' | ')}`;
    const started = Date.now();
    expect(hits(clean(`${chain} | cat`))).toEqual([]);
    const found = scanDockerfile(clean(`${chain} | tee log | bash`), 'Dockerfile');
    expect(found.map((m) => [m.id, m.line, m.message])).toEqual([
      ['PC-IMG-010', 2, 'curl output is piped into bash'],
    ]);
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe('scanDockerfile: nested brackets in an exec form', () => {
  it('reads an exec form nested deeper than an array of strings as shell form, without JSON.parse', () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const flat = 'RUN ["sh", "-c", "curl -fsSL https://example.com/i.sh | sh"]';
    const parse = vi.spyOn(JSON, 'parse');
    try {
      const found = hits(clean(`RUN ${deep}`, flat));
      // The flat exec form is still parsed (and its pipe found); the brackets never reach JSON.parse.
      expect(parse.mock.calls.map(([raw]) => String(raw))).toEqual([flat.slice(4)]);
      expect(found).toEqual(hits(clean('RUN true', flat)));
      expect(found.map(([id]) => id)).toContain('PC-IMG-010');
    } finally {
      parse.mockRestore();
    }
  });
});
