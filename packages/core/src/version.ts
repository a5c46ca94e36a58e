import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = dirname(dirname(fileURLToPath(import.meta.url)));
const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string };

/** Omnibus's own version, as `GET /` reports it in `omnibus_version`. */
export const VERSION: string = manifest.version;

/**
 * The Kafka Connect REST API level Omnibus implements, as `GET /` reports it in `version`
 * (clients gate features on it: stop and offsets need 3.5, PATCH of a config 3.8). 3.9: every
 * endpoint of 3.9 is served, and `GET /connectors/{c}/tasks-config`, which 4.0 removed, still is.
 */
export const KAFKA_CONNECT_API_VERSION = '3.9.0';

/**
 * The commit Omnibus runs from, as Kafka's 16 hex digits: the repository's HEAD when core runs
 * from its git checkout (read once, at load, from .git's files), else a stable hex digest of the
 * version (an installed package has no repository).
 */
export const COMMIT_ID: string = checkoutCommit(packageDir) ?? createHash('sha256').update(`omnibus ${VERSION}`).digest('hex').slice(0, 16);

function checkoutCommit(dir: string): string | undefined {
  // Only the workspace layout (<repo>/packages/core): an installed core's ../.. is node_modules,
  // and a repository above that is the user's, not ours.
  if (basename(dirname(dir)) !== 'packages') return undefined;
  const dotGit = join(dir, '../../.git');
  try {
    if (statSync(dotGit).isDirectory()) return headOf(dotGit);
    // A linked worktree: .git is a file naming its git directory.
    const pointer = /^gitdir: (.+)$/m.exec(readFileSync(dotGit, 'utf8'))?.[1];
    return pointer === undefined ? undefined : headOf(resolve(dirname(dotGit), pointer.trim()));
  } catch {
    return undefined;
  }
}

function headOf(gitDir: string): string | undefined {
  try {
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
    const ref = /^ref: (.+)$/.exec(head)?.[1];
    const commit = ref === undefined ? head : refCommit(gitDir, ref);
    return commit !== undefined && /^[0-9a-f]{40}$/.test(commit) ? commit.slice(0, 16) : undefined;
  } catch {
    return undefined;
  }
}

/** A ref's commit: loose, or in packed-refs; a linked worktree keeps its refs in the common dir. */
function refCommit(gitDir: string, ref: string): string | undefined {
  const commonFile = join(gitDir, 'commondir');
  const dirs = [gitDir, ...(existsSync(commonFile) ? [resolve(gitDir, readFileSync(commonFile, 'utf8').trim())] : [])];
  for (const d of dirs) {
    const loose = join(d, ref);
    if (existsSync(loose)) return readFileSync(loose, 'utf8').trim();
    const packed = join(d, 'packed-refs');
    if (existsSync(packed)) {
      const line = readFileSync(packed, 'utf8')
        .split('\n')
        .find((l) => l.endsWith(` ${ref}`));
      if (line) return line.slice(0, 40);
    }
  }
  return undefined;
}
