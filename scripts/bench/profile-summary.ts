/**
 * Summarises a .cpuprofile (node --cpu-prof): self time by function and by file, the
 * functions of this repository marked, as µs per message when `--messages` is given.
 *
 *   node --import tsx scripts/bench/profile-summary.ts FILE.cpuprofile [--messages N] [--top N] [--filter TEXT]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { messages: { type: 'string' }, top: { type: 'string', default: '40' }, filter: { type: 'string' } },
});
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile;
const messages = values.messages === undefined ? undefined : Number(values.messages);
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfMicros = new Map<number, number>();
profile.samples.forEach((id, i) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfMicros.values()].reduce((a, b) => a + b, 0);

const shortUrl = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, 'npm:').replace(/^.*?\/packages\//, 'packages/');
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
for (const [id, micros] of selfMicros) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const file = shortUrl(url) || '(native)';
  const key = `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + micros);
  byFile.set(file, (byFile.get(file) ?? 0) + micros);
}
const show = (title: string, rows: Map<string, number>) => {
  console.log(`\n${title}`);
  const sorted = [...rows].filter(([key]) => !values.filter || key.includes(values.filter)).sort((a, b) => b[1] - a[1]);
  for (const [key, micros] of sorted.slice(0, Number(values.top))) {
    const share = ((micros / total) * 100).toFixed(1).padStart(5);
    const perMessage = messages === undefined ? '' : `${(micros / messages).toFixed(2).padStart(7)} µs/msg `;
    console.log(`${share}% ${perMessage}${key}`);
  }
};
console.log(`${(total / 1e6).toFixed(2)} s sampled${messages === undefined ? '' : `, ${(total / messages).toFixed(1)} µs per message`}`);
show('self time by function', byFunction);
show('self time by file', byFile);
