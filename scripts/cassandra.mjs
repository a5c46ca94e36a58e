#!/usr/bin/env node
// One real single-node Cassandra 5.0 for tests and local development, with no Docker and no
// tarball: the jars come from Maven Central through `mvn`, the daemon runs on OpenJDK 17.
//
//   node scripts/cassandra.mjs start|stop|status
//   node scripts/cassandra.mjs start|stop|status --nodes 3   (a cluster: scripts/cassandra/cluster.mjs)
//
// The node keeps its data in a fresh temporary dir and is described by a state file
// (<tmpdir>/omnibus-cassandra-<port>.json) holding its pid, so `stop` only ever ends the node
// this script started. Setup and recipe notes: scripts/cassandra/ and
// /work/shared/reference/cassandra-embed.md.
//
// Environment:
//   OMNIBUS_CASSANDRA_PORT            CQL port (9042)
//   OMNIBUS_CASSANDRA_STORAGE_PORT    internode port (7000, or CQL port + 1 when that is overridden)
//   OMNIBUS_CASSANDRA_HEAP            JVM heap (512m), e.g. 1g
//   OMNIBUS_CASSANDRA_CONTACT_POINT   host:port of an existing cluster: use it, never start or stop one
//   JAVA17_HOME                       the JDK to run Cassandra with (else found under /usr/lib/jvm)

import { execFile, spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { ensureMavenJars, jarsIn } from './maven-jars.mjs';

export const CASSANDRA_VERSION = '5.0.8';
const HOST = '127.0.0.1';
export const SUPPORT_DIR = join(dirname(fileURLToPath(import.meta.url)), 'cassandra');
export const DAEMON_CLASS = 'org.apache.cassandra.service.CassandraDaemon';
// Marks the JVM's command line with its run dir, so a recycled pid is never mistaken for ours.
export const RUN_DIR_PROPERTY = '-Domnibus.cassandra.run=';
// A first start on 2 cores takes 10-20 s; the margin covers a loaded CI machine.
const START_TIMEOUT_MS = 180_000;
// Cassandra drains (flushes memtables) on SIGTERM; a few seconds is normal.
const STOP_TIMEOUT_MS = 30_000;

const execFileAsync = promisify(execFile);

/**
 * @typedef {import('./cassandra.d.mts').CassandraEndpoint} CassandraEndpoint
 * @typedef {import('./cassandra.d.mts').CassandraStatus} CassandraStatus
 * @typedef {import('./cassandra.d.mts').Log} Log
 *
 * @typedef {object} RunState  what start leaves in the state file for stop and status
 * @property {number} pid
 * @property {number} port
 * @property {string} runDir
 * @property {string} startedAt
 */

/** @param {string} name @param {number} fallback */
export function portFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name}=${raw} is not a TCP port`);
  return port;
}

function settings() {
  const port = portFromEnv('OMNIBUS_CASSANDRA_PORT', 9042);
  // A second node on another CQL port must not collide on the internode port either.
  const storagePort = portFromEnv('OMNIBUS_CASSANDRA_STORAGE_PORT', port === 9042 ? 7000 : port + 1);
  const heap = process.env.OMNIBUS_CASSANDRA_HEAP || '512m';
  if (!/^\d+[mMgG]$/.test(heap)) throw new Error(`OMNIBUS_CASSANDRA_HEAP=${heap} is not a JVM size such as 512m or 1g`);
  const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return {
    port,
    storagePort,
    heap,
    contactPoint: `${HOST}:${port}`,
    libDir: join(cacheHome, 'omnibus', `cassandra-${CASSANDRA_VERSION}`, 'lib'),
    statePath: join(tmpdir(), `omnibus-cassandra-${port}.json`),
  };
}

/** @param {number} ms */
const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`;

// ---------------------------------------------------------------------------------------------
// JDK 17

/** @param {string} java @returns {Promise<number | undefined>} the feature release, e.g. 17 */
async function javaFeatureVersion(java) {
  try {
    const { stderr } = await execFileAsync(java, ['-version']);
    const match = /version "(?:1\.)?(\d+)/.exec(stderr);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

// Cassandra 5.0 runs on Java 11 and 17 only; JDK 24+ cannot even install its security manager.
export async function findJava() {
  const override = process.env.JAVA17_HOME;
  if (override) {
    const java = join(override, 'bin', 'java');
    const version = await javaFeatureVersion(java);
    if (version !== 17 && version !== 11) {
      throw new Error(`JAVA17_HOME=${override}: ${java} is ${version ? `Java ${version}` : 'not runnable'}; Cassandra 5.0 needs Java 17 (or 11)`);
    }
    return java;
  }
  const jvmRoot = '/usr/lib/jvm';
  const candidates = existsSync(jvmRoot)
    ? readdirSync(jvmRoot).filter((name) => name.startsWith('java-17-openjdk')).sort().map((name) => join(jvmRoot, name, 'bin', 'java'))
    : [];
  for (const java of [...candidates, 'java']) {
    const version = await javaFeatureVersion(java);
    if (version === 17 || version === 11) return java;
  }
  throw new Error('no Java 17 found: set JAVA17_HOME, or install OpenJDK 17 (apt-get install openjdk-17-jdk-headless)');
}

// ---------------------------------------------------------------------------------------------
// Jars from Maven Central

export { jarsIn };

/**
 * The daemon's classpath: cassandra-all and its runtime dependencies, copied once into the user's
 * cache so later starts need neither Maven nor the network.
 * @param {string} libDir @param {Log} log
 */
export function ensureJars(libDir, log) {
  return ensureMavenJars({
    libDir,
    pom: join(SUPPORT_DIR, 'pom.xml'),
    properties: { 'cassandra.version': CASSANDRA_VERSION },
    markerJar: `cassandra-all-${CASSANDRA_VERSION}.jar`,
    m2Jar: join(homedir(), '.m2', 'repository', 'org', 'apache', 'cassandra', 'cassandra-all', CASSANDRA_VERSION, `cassandra-all-${CASSANDRA_VERSION}.jar`),
    what: `cassandra-all ${CASSANDRA_VERSION}`,
    log,
  });
}

// ---------------------------------------------------------------------------------------------
// Talking to a node

/** @param {string} host @param {number} port */
export function portAnswers(host, port) {
  return new Promise((resolvePromise) => {
    const socket = connect({ host, port, timeout: 3000 });
    const done = (/** @type {boolean} */ open) => { socket.destroy(); resolvePromise(open); };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

/** @param {string} contactPoint @returns {[string, number]} */
function splitContactPoint(contactPoint) {
  const match = /^(.+):(\d+)$/.exec(contactPoint);
  return match ? [match[1] ?? contactPoint, Number(match[2])] : [contactPoint, 9042];
}

/**
 * Asks the node itself which version and data center it is; the driver needs the latter.
 * @param {string} contactPoint
 * @returns {Promise<{ releaseVersion: string, localDataCenter: string }>}
 */
async function queryLocal(contactPoint) {
  /** @type {typeof import('cassandra-driver')} */
  let driver;
  try {
    driver = (await import('cassandra-driver')).default;
  } catch {
    throw new Error('cassandra-driver is not installed: run pnpm install');
  }
  const client = new driver.Client({
    contactPoints: [contactPoint],
    // Round robin needs no localDataCenter, which is what this query finds out.
    policies: { loadBalancing: new driver.policies.loadBalancing.RoundRobinPolicy() },
    socketOptions: { connectTimeout: 5000, readTimeout: 10_000 },
  });
  try {
    await client.connect();
    const result = await client.execute('SELECT release_version, data_center FROM system.local');
    const row = result.first();
    return { releaseVersion: String(row.get('release_version')), localDataCenter: String(row.get('data_center')) };
  } finally {
    await client.shutdown();
  }
}

// ---------------------------------------------------------------------------------------------
// The node this script starts

/** @param {number} pid */
async function commandLineOf(pid) {
  try {
    if (existsSync('/proc/self/cmdline')) return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
    // macOS has no /proc.
    return (await execFileAsync('ps', ['-ww', '-o', 'args=', '-p', String(pid)])).stdout;
  } catch {
    return '';
  }
}

/** Signals a process that may have exited since it was last seen alive. @param {number} pid @param {NodeJS.Signals} name */
export function sendSignal(pid, name) {
  try {
    process.kill(pid, name);
  } catch (error) {
    if (/** @type {NodeJS.ErrnoException} */ (error).code !== 'ESRCH') throw error;
  }
}

/** Alive, and still the JVM we started (not a recycled pid, not a zombie). @param {RunState} state */
export async function isOurNode(state) {
  try {
    process.kill(state.pid, 0);
  } catch {
    return false;
  }
  const args = await commandLineOf(state.pid);
  return args.includes(DAEMON_CLASS) && args.includes(`${RUN_DIR_PROPERTY}${state.runDir}`);
}

/**
 * A state file written by `start` (a node's, or a cluster's), or undefined when there is none.
 * @template [T=RunState] @param {string} statePath @returns {Promise<T | undefined>}
 */
export async function readState(statePath) {
  try {
    return JSON.parse(await readFile(statePath, 'utf8'));
  } catch {
    return undefined;
  }
}

/** @param {string} statePath @param {RunState} state */
async function forget(statePath, state) {
  await rm(state.runDir, { recursive: true, force: true });
  await rm(statePath, { force: true });
}

/**
 * The part of a node's log that explains a failed start: its first ERROR with the stack trace
 * under it, else its last lines.
 * @param {string} runDir
 */
export function logExcerpt(runDir) {
  let lines;
  try {
    lines = readFileSync(join(runDir, 'cassandra.log'), 'utf8').trimEnd().split('\n');
  } catch {
    return '(no log)';
  }
  const firstError = lines.findIndex((line) => line.startsWith('ERROR'));
  return (firstError >= 0 ? lines.slice(firstError, firstError + 20) : lines.slice(-40)).join('\n');
}

const REUSE_GRACE_MS = 30_000;

/**
 * Waits until the node answers CQL, failing early if its process is gone.
 * @param {string} contactPoint @param {RunState} state
 */
async function waitForCql(contactPoint, state) {
  const [host, port] = splitContactPoint(contactPoint);
  // A node started long ago still gets a grace period: on a loaded machine one probe can miss.
  const deadline = Math.max(Date.parse(state.startedAt) + START_TIMEOUT_MS, Date.now() + REUSE_GRACE_MS);
  let lastError = 'CQL port not open';
  while (Date.now() < deadline) {
    if (!(await isOurNode(state))) {
      throw new Error(`cassandra (pid ${state.pid}) exited during start:\n${logExcerpt(state.runDir)}`);
    }
    // The CQL port opens last, once the node can serve; before that a driver connect only burns time.
    if (await portAnswers(host, port)) {
      try {
        return await queryLocal(contactPoint);
      } catch (error) {
        lastError = /** @type {Error} */ (error).message;
      }
    }
    await sleep(250);
  }
  throw new Error(`cassandra (pid ${state.pid}) did not answer CQL on ${contactPoint} within ${seconds(START_TIMEOUT_MS)} (${lastError}):\n${logExcerpt(state.runDir)}`);
}

/**
 * Starts the JVM and records it; undefined if a concurrent start claimed the port first.
 * @param {ReturnType<typeof settings>} config @param {Log} log @returns {Promise<RunState | undefined>}
 */
async function launch(config, log) {
  const java = await findJava();
  const libDir = await ensureJars(config.libDir, log);
  const runDir = await mkdtemp(join(tmpdir(), `omnibus-cassandra-${config.port}-`));
  const jvmOptions = readFileSync(join(SUPPORT_DIR, 'jvm17.options'), 'utf8')
    .split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  // jamm as an agent measures memtables exactly (the tarball's launcher always loads it).
  const jamm = jarsIn(libDir).find((name) => /^jamm-[\d.]+\.jar$/.test(name));
  const args = [
    `-Xms${config.heap}`, `-Xmx${config.heap}`,
    ...jvmOptions,
    ...(jamm ? [`-javaagent:${join(libDir, jamm)}`] : []),
    `${RUN_DIR_PROPERTY}${runDir}`,
    // A URL, not a path: a bare path fails with "Expecting URI in variable: [cassandra.config]".
    `-Dcassandra.config=${pathToFileURL(join(SUPPORT_DIR, 'cassandra.yaml')).href}`,
    `-Dlogback.configurationFile=${join(SUPPORT_DIR, 'logback.xml')}`,
    `-Dcassandra.storagedir=${join(runDir, 'data')}`,
    `-Dcassandra.logdir=${runDir}`,
    `-Dcassandra.native_transport_port=${config.port}`,
    `-Dcassandra.storage_port=${config.storagePort}`,
    '-cp', `${libDir}/*`,
    DAEMON_CLASS,
  ];
  const logFd = openSync(join(runDir, 'cassandra.log'), 'a');
  // Detached, in its own process group: the node outlives `cassandra:start` and ignores the
  // Ctrl-C aimed at a test run; `stop` ends it by pid.
  const child = spawn(java, args, { cwd: runDir, detached: true, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) {
    await rm(runDir, { recursive: true, force: true });
    throw new Error(`could not run ${java}`);
  }
  const state = { pid, port: config.port, runDir, startedAt: new Date().toISOString() };
  try {
    // 'wx' claims the port: of two concurrent starts, only one keeps its node.
    await writeFile(config.statePath, `${JSON.stringify(state, null, 2)}\n`, { flag: 'wx' });
  } catch (error) {
    sendSignal(pid, 'SIGKILL');
    await rm(runDir, { recursive: true, force: true });
    if (/** @type {NodeJS.ErrnoException} */ (error).code === 'EEXIST') return undefined;
    throw error;
  }
  log(`starting cassandra ${CASSANDRA_VERSION} (pid ${pid}, heap ${config.heap}, ${java}, data in ${runDir})...`);
  return state;
}

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Makes sure a Cassandra answers CQL, starting one if none does: an existing cluster named by
 * OMNIBUS_CASSANDRA_CONTACT_POINT, else a node this script started earlier (maybe still
 * starting), else whatever already answers on the port, else a new node.
 * @param {{ log?: Log }} [options]
 * @returns {Promise<CassandraEndpoint>}
 */
export async function ensureCassandra({ log = () => {} } = {}) {
  const external = process.env.OMNIBUS_CASSANDRA_CONTACT_POINT;
  if (external) {
    let info;
    try {
      info = await queryLocal(external);
    } catch (error) {
      throw new Error(`OMNIBUS_CASSANDRA_CONTACT_POINT=${external} does not answer CQL: ${/** @type {Error} */ (error).message}`);
    }
    log(`using cassandra ${info.releaseVersion} at ${external} (dc ${info.localDataCenter}, from OMNIBUS_CASSANDRA_CONTACT_POINT)`);
    return { contactPoint: external, ...info, startedHere: false };
  }

  const config = settings();
  const began = Date.now();
  const existing = await readState(config.statePath);
  if (existing && (await isOurNode(existing))) {
    const info = await waitForCql(config.contactPoint, existing);
    log(`cassandra ${info.releaseVersion} already running at ${config.contactPoint} (dc ${info.localDataCenter}, pid ${existing.pid})`);
    return { contactPoint: config.contactPoint, ...info, startedHere: false, pid: existing.pid };
  }
  // Its node is gone (reboot, kill -9): the state and data dir are all that is left of it.
  if (existing) await forget(config.statePath, existing);

  if (await portAnswers(HOST, config.port)) {
    let info;
    try {
      info = await queryLocal(config.contactPoint);
    } catch (error) {
      throw new Error(`${config.contactPoint} is taken by something that does not answer CQL: ${/** @type {Error} */ (error).message}`);
    }
    log(`cassandra ${info.releaseVersion} already running at ${config.contactPoint} (dc ${info.localDataCenter}, not started by this script)`);
    return { contactPoint: config.contactPoint, ...info, startedHere: false };
  }

  const state = await launch(config, log);
  if (!state) return ensureCassandra({ log });
  try {
    const info = await waitForCql(config.contactPoint, state);
    log(`cassandra ${info.releaseVersion} ready at ${config.contactPoint} (dc ${info.localDataCenter}) in ${seconds(Date.now() - began)}`);
    return { contactPoint: config.contactPoint, ...info, startedHere: true, pid: state.pid };
  } catch (error) {
    // Leave nothing running, but keep the whole log for whoever reads the error.
    const keptLog = join(tmpdir(), `omnibus-cassandra-${config.port}-failed.log`);
    await copyFile(join(state.runDir, 'cassandra.log'), keptLog).catch(() => {});
    if (await isOurNode(state)) sendSignal(state.pid, 'SIGKILL');
    await forget(config.statePath, state);
    throw new Error(`${/** @type {Error} */ (error).message}\n(full log: ${keptLog})`);
  }
}

/**
 * Stops the node this script started on the configured port, and deletes its data. Never touches
 * a node it did not start.
 * @param {{ log?: Log }} [options]
 * @returns {Promise<{ stopped: boolean }>}
 */
export async function stopCassandra({ log = () => {} } = {}) {
  const config = settings();
  const state = await readState(config.statePath);
  if (!state) {
    const other = await portAnswers(HOST, config.port);
    log(other
      ? `no cassandra started by this script; the one at ${config.contactPoint} was started elsewhere and is left alone`
      : `no cassandra started by this script on port ${config.port}`);
    return { stopped: false };
  }
  const began = Date.now();
  let stopped = false;
  if (await isOurNode(state)) {
    sendSignal(state.pid, 'SIGTERM');
    const gone = async (/** @type {number} */ timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (!(await isOurNode(state))) return true;
        await sleep(100);
      }
      return false;
    };
    if (!(await gone(STOP_TIMEOUT_MS))) {
      log(`cassandra (pid ${state.pid}) still running after ${seconds(STOP_TIMEOUT_MS)}; killing it`);
      sendSignal(state.pid, 'SIGKILL');
      await gone(10_000);
    }
    stopped = true;
  }
  await forget(config.statePath, state);
  log(stopped
    ? `stopped cassandra (pid ${state.pid}) in ${seconds(Date.now() - began)}; removed ${state.runDir}`
    : `cassandra (pid ${state.pid}) had already exited; removed ${state.runDir}`);
  return { stopped };
}

/** @returns {Promise<CassandraStatus>} */
export async function cassandraStatus() {
  const config = settings();
  const contactPoint = process.env.OMNIBUS_CASSANDRA_CONTACT_POINT || config.contactPoint;
  const state = await readState(config.statePath);
  const managed = state !== undefined && (await isOurNode(state));
  const [host, port] = splitContactPoint(contactPoint);
  /** @type {CassandraStatus} */
  const status = { running: false, managed, contactPoint, ...(managed && state ? { pid: state.pid, runDir: state.runDir } : {}) };
  if (await portAnswers(host, port)) {
    try {
      Object.assign(status, await queryLocal(contactPoint), { running: true });
    } catch {
      // Port open but no CQL: reported as not running.
    }
  }
  return status;
}

// ---------------------------------------------------------------------------------------------
// CLI

/**
 * `--nodes N` (or `--nodes=N`) among the arguments after the command; 1 when absent.
 * @param {string[]} args
 */
function nodesOption(args) {
  let value = '1';
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--nodes') value = args[++i] ?? '';
    else if (arg.startsWith('--nodes=')) value = arg.slice('--nodes='.length);
    else throw new Error(`unknown option ${arg}`);
  }
  const nodes = Number(value);
  if (!/^\d+$/.test(value) || nodes < 1) throw new Error(`--nodes ${value} is not a node count`);
  return nodes;
}

/** A cluster of several nodes: scripts/cassandra/cluster.mjs. @param {string | undefined} command @param {number} nodes */
async function clusterMain(command, nodes) {
  const log = (/** @type {string} */ line) => console.log(line);
  const cluster = await import('./cassandra/cluster.mjs');
  switch (command) {
    case 'start':
      await cluster.ensureCluster({ nodes, log });
      return 0;
    case 'stop':
      await cluster.stopCluster({ log });
      return 0;
    case 'status': {
      const status = await cluster.clusterStatus();
      if (status.nodes.length === 0) {
        console.log(`no cluster started by this script on port ${status.port}`);
        return 3;
      }
      for (const node of status.nodes) {
        console.log(`node ${node.index + 1} ${node.host}:${status.port} pid ${node.pid}: ${node.answers ? 'answers CQL' : node.alive ? 'running, not answering CQL' : 'not running'} (data in ${node.runDir})`);
      }
      return status.nodes.every((node) => node.answers) ? 0 : 3;
    }
    default:
      console.error('usage: node scripts/cassandra.mjs start|stop|status [--nodes N]');
      return 2;
  }
}

/** @param {string | undefined} command @param {string[]} args */
async function main(command, args) {
  const nodes = nodesOption(args);
  if (nodes > 1) return clusterMain(command, nodes);
  const log = (/** @type {string} */ line) => console.log(line);
  switch (command) {
    case 'start':
      await ensureCassandra({ log });
      return 0;
    case 'stop':
      await stopCassandra({ log });
      return 0;
    case 'status': {
      const status = await cassandraStatus();
      const owner = status.managed ? `pid ${status.pid}, started by this script, data in ${status.runDir}` : 'not started by this script';
      if (status.running) {
        console.log(`running: cassandra ${status.releaseVersion} at ${status.contactPoint} (dc ${status.localDataCenter}; ${owner})`);
        return 0;
      }
      console.log(status.managed ? `not running yet: starting (${owner})` : `not running (nothing answers CQL at ${status.contactPoint})`);
      return 3;
    }
    default:
      console.error('usage: node scripts/cassandra.mjs start|stop|status [--nodes N]');
      return 2;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv[2], process.argv.slice(3)).then(
    (code) => { process.exitCode = code; },
    (error) => {
      console.error(`scripts/cassandra.mjs: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    },
  );
}
