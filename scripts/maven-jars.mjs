// Jars from Maven Central through `mvn`, copied once into a lib/ directory of the user's cache so
// that later runs need neither Maven nor the network: Cassandra's daemon (scripts/cassandra.mjs)
// and the benchmark's Kafka (scripts/bench/kafka-process.ts) take their classpaths from here.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.6.1';

/**
 * @param {string} command @param {string[]} args
 * @returns {Promise<{ code: number | null, output: string }>}
 */
function run(command, args) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (/** @type {Buffer} */ chunk) => { output += chunk.toString(); };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    // Maven prints colour resets even in batch mode; they only clutter an error message.
    child.on('close', (code) => resolvePromise({ code, output: output.replace(/\x1b\[[0-9;]*m/g, '').trim() }));
  });
}

/** @param {string} dir */
export function jarsIn(dir) {
  return readdirSync(dir).filter((name) => name.endsWith('.jar'));
}

/**
 * @typedef {object} MavenJars
 * @property {string} libDir     where the jars end up (created whole, or not at all)
 * @property {string} pom        a throwaway POM whose runtime dependencies are the jars wanted
 * @property {Record<string, string>} properties  -D properties of the POM (e.g. the version)
 * @property {string} markerJar  a jar whose presence in libDir means the copy is complete
 * @property {string} m2Jar      the same jar in ~/.m2: when there, a first offline attempt needs no network
 * @property {string} what       what is fetched, for the log (e.g. "cassandra-all 5.0.8")
 * @property {(line: string) => void} log
 */

/**
 * The POM's runtime dependencies in `libDir`, fetched on the first call only.
 * @param {MavenJars} jars @returns {Promise<string>} libDir
 */
export async function ensureMavenJars({ libDir, pom, properties, markerJar, m2Jar, what, log }) {
  if (existsSync(join(libDir, markerJar))) return libDir;

  const began = Date.now();
  await mkdir(dirname(libDir), { recursive: true });
  // Copy into a private dir and rename it into place, so a cut-short copy is never taken as complete.
  const partial = await mkdtemp(`${libDir}.partial-`);
  const args = [
    '-B', '-q', '-f', pom, ...Object.entries(properties).map(([name, value]) => `-D${name}=${value}`),
    `${DEPENDENCY_PLUGIN}:copy-dependencies`, '-DincludeScope=runtime', `-DoutputDirectory=${partial}`,
  ];
  // Offline first when ~/.m2 already holds the jars: no network round trips for ~100 POMs.
  const offline = existsSync(m2Jar);
  log(offline
    ? `copying ${what} and its dependencies from ~/.m2 (mvn -o)...`
    : `fetching ${what} and its dependencies from Maven Central (mvn, first run only)...`);
  try {
    let result = offline ? await run('mvn', ['-o', ...args]) : undefined;
    if (!result || result.code !== 0) {
      if (result) log('offline copy failed, fetching from Maven Central...');
      result = await run('mvn', args);
    }
    if (result.code !== 0) throw new Error(`mvn failed (exit ${result.code}):\n${result.output}`);
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    if (/** @type {NodeJS.ErrnoException} */ (error).code === 'ENOENT') {
      throw new Error(`mvn not found: Maven 3 is needed to fetch ${what} from Maven Central (apt-get install maven)`);
    }
    throw error;
  }
  try {
    await rename(partial, libDir);
  } catch (error) {
    // Another start got there first with the same jars.
    await rm(partial, { recursive: true, force: true });
    if (!existsSync(libDir)) throw error;
  }
  const jars = jarsIn(libDir);
  const bytes = jars.reduce((sum, name) => sum + statSync(join(libDir, name)).size, 0);
  log(`${jars.length} jars (${(bytes / 2 ** 20).toFixed(0)} MiB) in ${libDir} after ${((Date.now() - began) / 1000).toFixed(1)}s`);
  return libDir;
}
