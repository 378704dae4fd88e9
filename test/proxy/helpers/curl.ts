// Runs curl with a time limit and returns status, headers and body.
import { execFile } from 'node:child_process';

export interface CurlResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  code: number;
  stderr: string;
}

export function curl(args: string[], timeoutMs = 8000): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '-D', '-', '--max-time', String(Math.ceil(timeoutMs / 1000)), ...args],
      { timeout: timeoutMs + 2000, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        // Header blocks (there may be several with 1xx); the last one precedes the body.
        let rest = stdout;
        let status = 0;
        let headers: Record<string, string> = {};
        while (/^HTTP\/[\d.]+ \d{3}/.test(rest)) {
          const end = rest.indexOf('\r\n\r\n');
          if (end < 0) break;
          const block = rest.slice(0, end).split('\r\n');
          status = Number(block[0].split(' ')[1]);
          headers = {};
          for (const line of block.slice(1)) {
            const i = line.indexOf(':');
            if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
          }
          rest = rest.slice(end + 4);
        }
        resolve({ status, headers, body: rest, code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr });
      },
    );
  });
}
