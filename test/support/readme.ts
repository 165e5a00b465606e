/** Reading the commands out of README.md and docs/, so tests run them exactly as written. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { projectFile } from '../../src/project-files.js';

/** The `nth` (0-based) ```sh block after `heading` in `file` (README.md by default). */
export function shBlock(heading: string, nth = 0, file = 'README.md'): string {
  const text = readFileSync(projectFile(file), 'utf8');
  const at = text.indexOf(heading);
  assert.ok(at >= 0, `${file} has ${heading}`);
  const blocks = [...text.slice(at).matchAll(/```sh\n([\s\S]*?)```/g)];
  const m = blocks[nth];
  assert.ok(m, `${file}: sh block ${nth} after ${heading}`);
  return m[1] as string;
}

/** Every ```lang block of `file`, with the nearest heading above it. */
export function codeBlocks(file: string, lang: string): { heading: string; text: string }[] {
  const text = readFileSync(projectFile(file), 'utf8');
  const out: { heading: string; text: string }[] = [];
  let inFence = false;
  let heading = '';
  let current: string[] | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) {
      if (!inFence && line === '```' + lang) current = [];
      else if (inFence && current) {
        out.push({ heading, text: current.join('\n') + '\n' });
        current = null;
      }
      inFence = !inFence;
    } else if (inFence) {
      current?.push(line);
    } else if (/^#{1,6} /.test(line)) {
      heading = line;
    }
  }
  return out;
}

/** The README's first ```sh block after a heading. */
export function readmeBlock(heading: string): string {
  return shBlock(heading);
}

/** Resolves with the first match of `re` in what `stream` prints, or rejects after `timeoutMs`. */
export function waitForLine(stream: NodeJS.ReadableStream, re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`no ${re} within ${timeoutMs} ms; got: ${buf.slice(-2000)}`)), timeoutMs);
    stream.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    });
  });
}

/** The curl tour's expected fragments (the tour's `# →` comments), shared by the tests that run it. */
export const TOUR_EXPECTS = [
  '{"path":"/tasks/task-0000000000"}',
  '"data":"cmd","encoding":"utf8"',
  '"code":"BAD_VERSION"',
  '"code":"NOT_EMPTY"',
  '{"path":"/blob"}',
  '{"path":"/jobs"}',
  '{"path":"/heartbeat"}',
  '"perms":"cdrwa"',
  '"synced":true',
  '{"status":"ok"}',
] as const;
