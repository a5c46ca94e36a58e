// A real multi-node Cassandra 5.0 cluster on one machine, for the tests that need replication,
// quorum and node failures: node i listens on 127.0.0.<i> (Linux routes all of 127.0.0.0/8 to
// the loopback interface), every node on the same ports, each with its own data directory and a
// small heap.
//
//   node scripts/cassandra.mjs start|stop|status --nodes 3
//
// The cluster is described by a state file (<tmpdir>/omnibus-cassandra-cluster-<port>.json) with
// each node's pid and run dir, so `stop` only ever ends the nodes this script started, and a test
// can kill, pause or restart one node (startClusterNode restarts it on its data).
//
// Ports: OMNIBUS_CASSANDRA_PORT (CQL, default 19042 so that a cluster and the single test node on
// 9042 can run side by side) and OMNIBUS_CASSANDRA_STORAGE_PORT (internode, default 17000, or CQL
// port + 1 when the CQL port is overridden). OMNIBUS_CASSANDRA_HEAP is each node's heap (384m).
// No node opens JMX: nothing here needs nodetool, so no JMX port can collide.

import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import {
  CASSANDRA_VERSION, DAEMON_CLASS, RUN_DIR_PROPERTY, SUPPORT_DIR,
  ensureJars, findJava, isOurNode, jarsIn, logExcerpt, portAnswers, portFromEnv, readState, sendSignal,
} from '../cassandra.mjs';

const CLUSTER_NAME = 'omnibus-cluster';
// SimpleSnitch puts every node in datacenter1 / rack1.
const DATA_CENTER = 'datacenter1';
const START_TIMEOUT_MS = 240_000;
const STOP_TIMEOUT_MS = 30_000;
const MAX_NODES = 9;

/**
 * @typedef {import('../cassandra.d.mts').Log} Log
 * @typedef {import('./cluster.d.mts').ClusterNode} ClusterNode
 * @typedef {import('./cluster.d.mts').ClusterState} ClusterState
 */

export function clusterSettings() {
  const port = portFromEnv('OMNIBUS_CASSANDRA_PORT', 19042);
  const storagePort = portFromEnv('OMNIBUS_CASSANDRA_STORAGE_PORT', port === 19042 ? 17000 : port + 1);
  const heap = process.env.OMNIBUS_CASSANDRA_HEAP || '384m';
  if (!/^\d+[mMgG]$/.test(heap)) throw new Error(`OMNIBUS_CASSANDRA_HEAP=${heap} is not a JVM size such as 384m or 1g`);
  const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return {
    port,
    storagePort,
    heap,
    libDir: join(cacheHome, 'omnibus', `cassandra-${CASSANDRA_VERSION}`, 'lib'),
    statePath: join(tmpdir(), `omnibus-cassandra-cluster-${port}.json`),
  };
}

/** @param {number} index 0-based */
const hostOf = (index) => `127.0.0.${index + 1}`;

/** The cluster's state file: the single node's reader, typed for the cluster. @param {string} statePath @returns {Promise<ClusterState | undefined>} */
const readClusterState = (statePath) => readState(statePath);

/**
 * Evenly spaced Murmur3 tokens, one per node: each node owns a third of the ring, and no node
 * needs token allocation (which would make the joins sequential).
 * @param {number} index @param {number} count
 */
function tokenOf(index, count) {
  const span = 2n ** 64n / BigInt(count);
  return String(-(2n ** 63n) + BigInt(index) * span);
}

/** @param {string} statePath @param {ClusterState} state */
async function writeClusterState(statePath, state) {
  await writeFile(statePath, `${JSON.stringify(state, null, 2)}\n`);
}

/**
 * The node's cassandra.yaml: the single node's, with its own addresses and token, the first
 * node as seed (on the cluster's storage port), and no bootstrap streaming (the cluster is new:
 * there is nothing to stream, and bootstrapping nodes must join one at a time).
 * @param {number} index @param {number} count @param {number} storagePort
 */
function nodeYaml(index, count, storagePort) {
  const host = hostOf(index);
  const replacements = /** @type {const} */ ([
    [/^cluster_name: .*$/m, `cluster_name: ${CLUSTER_NAME}`],
    [/^initial_token: .*$/m, `initial_token: ${tokenOf(index, count)}\nauto_bootstrap: false`],
    [/^listen_address: .*$/m, `listen_address: ${host}`],
    [/^rpc_address: .*$/m, `rpc_address: ${host}`],
    [/^( *- seeds: ).*$/m, `$1"${hostOf(0)}:${storagePort}"`],
    // A node that was down gets the writes it missed replayed, as on a production cluster.
    [/^hinted_handoff_enabled: .*$/m, 'hinted_handoff_enabled: true'],
  ]);
  let yaml = readFileSync(join(SUPPORT_DIR, 'cassandra.yaml'), 'utf8');
  for (const [pattern, value] of replacements) {
    if (!pattern.test(yaml)) throw new Error(`scripts/cassandra/cassandra.yaml no longer has ${pattern}`);
    yaml = yaml.replace(pattern, value);
  }
  return `# Node ${index + 1} of ${count} of a test cluster, written by scripts/cassandra/cluster.mjs.\n${yaml}`;
}

/**
 * Starts the JVM of one node on its run dir (a fresh one on first start, its old one on restart).
 * @param {ReturnType<typeof clusterSettings>} config @param {ClusterNode} node @param {number} count @param {Log} log
 */
async function launchNode(config, node, count, log) {
  const java = await findJava();
  const libDir = await ensureJars(config.libDir, log);
  const yamlPath = join(node.runDir, 'cassandra.yaml');
  await writeFile(yamlPath, nodeYaml(node.index, count, config.storagePort));
  const jvmOptions = readFileSync(join(SUPPORT_DIR, 'jvm17.options'), 'utf8')
    .split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  const jamm = jarsIn(libDir).find((name) => /^jamm-[\d.]+\.jar$/.test(name));
  const args = [
    `-Xms${config.heap}`, `-Xmx${config.heap}`,
    ...jvmOptions,
    ...(jamm ? [`-javaagent:${join(libDir, jamm)}`] : []),
    `${RUN_DIR_PROPERTY}${node.runDir}`,
    `-Dcassandra.config=${pathToFileURL(yamlPath).href}`,
    `-Dlogback.configurationFile=${join(SUPPORT_DIR, 'logback.xml')}`,
    `-Dcassandra.storagedir=${join(node.runDir, 'data')}`,
    `-Dcassandra.logdir=${node.runDir}`,
    `-Dcassandra.native_transport_port=${config.port}`,
    `-Dcassandra.storage_port=${config.storagePort}`,
    // Nodes 2 and 3 join at the same time; with fixed tokens and no streaming that is safe.
    '-Dcassandra.consistent.rangemovement=false',
    '-cp', `${libDir}/*`,
    DAEMON_CLASS,
  ];
  const logFd = openSync(join(node.runDir, 'cassandra.log'), 'a');
  const child = spawn(java, args, { cwd: node.runDir, detached: true, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not run ${java}`);
  node.pid = child.pid;
  node.startedAt = new Date().toISOString();
  log(`starting node ${node.index + 1} at ${node.host} (pid ${node.pid}, heap ${config.heap}, data in ${node.runDir})...`);
}

/** @returns {Promise<typeof import('cassandra-driver')>} */
async function driver() {
  try {
    return (await import('cassandra-driver')).default;
  } catch {
    throw new Error('cassandra-driver is not installed: run pnpm install');
  }
}

/**
 * What one node says of the ring over CQL: its own address and the peers it has seen join
 * (a peer appears in system.peers_v2 once it is NORMAL with tokens).
 * @param {string} host @param {number} port
 */
async function ringSeenBy(host, port) {
  const cassandra = await driver();
  const client = new cassandra.Client({
    contactPoints: [`${host}:${port}`],
    protocolOptions: { port },
    // Only this node: the question is what it sees, not what the cluster's first answer says.
    policies: { loadBalancing: new cassandra.policies.loadBalancing.AllowListPolicy(new cassandra.policies.loadBalancing.RoundRobinPolicy(), [`${host}:${port}`]) },
    socketOptions: { connectTimeout: 5000, readTimeout: 10_000 },
  });
  try {
    await client.connect();
    const local = (await client.execute('SELECT release_version, data_center FROM system.local')).first();
    const peers = (await client.execute('SELECT peer FROM system.peers_v2')).rows.map((row) => String(row.get('peer')));
    return { releaseVersion: String(local.get('release_version')), dataCenter: String(local.get('data_center')), peers };
  } finally {
    await client.shutdown();
  }
}

/**
 * Waits until every node answers CQL and sees all the others as peers, and a driver connected
 * to the cluster holds every node up: what `nodetool status` would show as UN on each line.
 * @param {ReturnType<typeof clusterSettings>} config @param {ClusterState} state @param {number} timeoutMs
 */
async function waitForRing(config, state, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const hosts = state.nodes.map((node) => node.host);
  let lastProblem = 'not asked yet';
  while (Date.now() < deadline) {
    for (const node of state.nodes) {
      if (!(await isOurNode(/** @type {any} */ (node)))) {
        throw new Error(`node ${node.index + 1} (pid ${node.pid}) exited:\n${logExcerpt(node.runDir)}`);
      }
    }
    try {
      let version = '';
      for (const node of state.nodes) {
        if (!(await portAnswers(node.host, config.port))) throw new Error(`${node.host}:${config.port} does not answer yet`);
        const seen = await ringSeenBy(node.host, config.port);
        const missing = hosts.filter((host) => host !== node.host && !seen.peers.includes(host));
        if (missing.length > 0) throw new Error(`${node.host} does not see ${missing.join(', ')} yet`);
        version = seen.releaseVersion;
      }
      const cassandra = await driver();
      const client = new cassandra.Client({
        contactPoints: hosts.map((host) => `${host}:${config.port}`),
        localDataCenter: DATA_CENTER,
        // The driver reaches the peers it discovers on this port, not on the address they announce.
        protocolOptions: { port: config.port },
        socketOptions: { connectTimeout: 5000, readTimeout: 10_000 },
      });
      try {
        await client.connect();
        const down = client.hosts.values().filter((host) => !host.isUp()).map((host) => host.address);
        if (client.hosts.length !== hosts.length || down.length > 0) {
          throw new Error(`the driver sees ${client.hosts.length} nodes, down: ${down.join(', ') || 'none'}`);
        }
      } finally {
        await client.shutdown();
      }
      return version;
    } catch (error) {
      lastProblem = /** @type {Error} */ (error).message;
    }
    await sleep(500);
  }
  throw new Error(`the cluster did not come up within ${timeoutMs / 1000}s (${lastProblem})`);
}

/**
 * The cluster's endpoint for a store URL or a driver.
 * @param {ReturnType<typeof clusterSettings>} config @param {ClusterState} state @param {string} releaseVersion @param {boolean} startedHere
 */
function endpointOf(config, state, releaseVersion, startedHere) {
  return {
    contactPoints: state.nodes.map((node) => `${node.host}:${config.port}`),
    port: config.port,
    localDataCenter: DATA_CENTER,
    releaseVersion,
    startedHere,
    nodes: state.nodes.map((node) => ({ ...node })),
  };
}

/**
 * Makes sure a cluster of `count` nodes started by this script runs, starting it if need be, and
 * waits until every node is up and sees the others.
 * @param {{ nodes: number, log?: Log }} options
 * @returns {Promise<import('./cluster.d.mts').ClusterEndpoint>}
 */
export async function ensureCluster({ nodes: count, log = () => {} }) {
  if (!Number.isInteger(count) || count < 2 || count > MAX_NODES) throw new Error(`--nodes must be 1 to ${MAX_NODES}`);
  const config = clusterSettings();
  const began = Date.now();
  const existing = await readClusterState(config.statePath);
  if (existing) {
    if (existing.nodes.length !== count) {
      throw new Error(`a cluster of ${existing.nodes.length} nodes started by this script already runs on port ${config.port}: stop it first (node scripts/cassandra.mjs stop --nodes ${existing.nodes.length})`);
    }
    // Nodes that died (a test's SIGKILL, a reboot) come back on their data.
    for (const node of existing.nodes) {
      if (!(await isOurNode(/** @type {any} */ (node)))) await launchNode(config, node, count, log);
    }
    await writeClusterState(config.statePath, existing);
    const version = await waitForRing(config, existing, START_TIMEOUT_MS);
    log(`cassandra cluster of ${count} already running on ${existing.nodes.map((node) => node.host).join(', ')} port ${config.port}`);
    return endpointOf(config, existing, version, false);
  }
  for (let index = 0; index < count; index++) {
    if (await portAnswers(hostOf(index), config.port)) {
      throw new Error(`${hostOf(index)}:${config.port} is taken by something this script did not start; set OMNIBUS_CASSANDRA_PORT to another port`);
    }
  }

  /** @type {ClusterState} */
  const state = { port: config.port, storagePort: config.storagePort, nodes: [] };
  for (let index = 0; index < count; index++) {
    const runDir = await mkdtemp(join(tmpdir(), `omnibus-cassandra-cluster-${config.port}-n${index + 1}-`));
    state.nodes.push({ index, host: hostOf(index), pid: 0, runDir, startedAt: '' });
  }
  try {
    await writeFile(config.statePath, `${JSON.stringify(state, null, 2)}\n`, { flag: 'wx' });
  } catch (error) {
    for (const node of state.nodes) await rm(node.runDir, { recursive: true, force: true });
    throw error;
  }
  try {
    // The seed first: the others learn the ring from it.
    await launchNode(config, state.nodes[0], count, log);
    await writeClusterState(config.statePath, state);
    await waitForNodeCql(config, state.nodes[0]);
    for (const node of state.nodes.slice(1)) await launchNode(config, node, count, log);
    await writeClusterState(config.statePath, state);
    const version = await waitForRing(config, state, START_TIMEOUT_MS);
    log(`cassandra ${version} cluster of ${count} nodes ready on ${state.nodes.map((node) => node.host).join(', ')} port ${config.port} (dc ${DATA_CENTER}) in ${((Date.now() - began) / 1000).toFixed(1)}s`);
    return endpointOf(config, state, version, true);
  } catch (error) {
    await stopCluster({ log });
    throw error;
  }
}

/** @param {ReturnType<typeof clusterSettings>} config @param {ClusterNode} node */
async function waitForNodeCql(config, node) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!(await isOurNode(/** @type {any} */ (node)))) throw new Error(`node ${node.index + 1} (pid ${node.pid}) exited during start:\n${logExcerpt(node.runDir)}`);
    if (await portAnswers(node.host, config.port)) return;
    await sleep(250);
  }
  throw new Error(`node ${node.index + 1} did not answer CQL on ${node.host}:${config.port} within ${START_TIMEOUT_MS / 1000}s:\n${logExcerpt(node.runDir)}`);
}

/** @param {ClusterNode} node @param {number} timeoutMs */
async function waitGone(node, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isOurNode(/** @type {any} */ (node)))) return true;
    await sleep(100);
  }
  return false;
}

/** SIGTERM (Cassandra drains), then SIGKILL if it hangs. @param {ClusterNode} node @param {Log} log */
async function endNode(node, log) {
  if (!(await isOurNode(/** @type {any} */ (node)))) return false;
  // A paused node (a test's SIGSTOP) must run again to handle SIGTERM.
  sendSignal(node.pid, 'SIGCONT');
  sendSignal(node.pid, 'SIGTERM');
  if (!(await waitGone(node, STOP_TIMEOUT_MS))) {
    log(`node ${node.index + 1} (pid ${node.pid}) still running after ${STOP_TIMEOUT_MS / 1000}s; killing it`);
    sendSignal(node.pid, 'SIGKILL');
    await waitGone(node, 10_000);
  }
  return true;
}

/**
 * Stops every node of the cluster this script started on the configured port and deletes their
 * data. Never touches a node it did not start.
 * @param {{ log?: Log }} [options]
 */
export async function stopCluster({ log = () => {} } = {}) {
  const config = clusterSettings();
  const state = await readClusterState(config.statePath);
  if (!state) {
    log(`no cassandra cluster started by this script on port ${config.port}`);
    return { stopped: false };
  }
  const began = Date.now();
  const ended = await Promise.all(state.nodes.map((node) => endNode(node, log)));
  for (const node of state.nodes) await rm(node.runDir, { recursive: true, force: true });
  await rm(config.statePath, { force: true });
  log(`stopped ${ended.filter(Boolean).length} of ${state.nodes.length} cluster nodes in ${((Date.now() - began) / 1000).toFixed(1)}s; removed their data`);
  return { stopped: ended.some(Boolean) };
}

/** The cluster's nodes as the state file records them (pids as last started). */
export async function clusterNodes() {
  const state = await readClusterState(clusterSettings().statePath);
  if (!state) throw new Error('no cassandra cluster started by this script: run node scripts/cassandra.mjs start --nodes 3');
  return state.nodes;
}

/**
 * Stops one node gracefully (SIGTERM), keeping its data for startClusterNode.
 * @param {number} index 0-based @param {{ log?: Log }} [options]
 */
export async function stopClusterNode(index, { log = () => {} } = {}) {
  const node = (await clusterNodes())[index];
  if (!node) throw new Error(`no node ${index + 1} in the cluster`);
  await endNode(node, log);
}

/**
 * Starts nodes again on their data (after a kill or a stop), those already running left as they
 * are, and waits until the whole ring is up.
 * @param {number | number[]} indexes 0-based @param {{ log?: Log }} [options]
 */
export async function startClusterNode(indexes, { log = () => {} } = {}) {
  const config = clusterSettings();
  const state = await readClusterState(config.statePath);
  if (!state) throw new Error('no cassandra cluster started by this script');
  for (const index of [indexes].flat()) {
    const node = state.nodes[index];
    if (!node) throw new Error(`no node ${index + 1} in the cluster`);
    if (!(await isOurNode(/** @type {any} */ (node)))) await launchNode(config, node, state.nodes.length, log);
  }
  await writeClusterState(config.statePath, state);
  await waitForRing(config, state, START_TIMEOUT_MS);
}

/** @returns {Promise<import('./cluster.d.mts').ClusterStatus>} */
export async function clusterStatus() {
  const config = clusterSettings();
  const state = await readClusterState(config.statePath);
  if (!state) return { port: config.port, nodes: [] };
  const nodes = [];
  for (const node of state.nodes) {
    const alive = await isOurNode(/** @type {any} */ (node));
    nodes.push({ ...node, alive, answers: alive && (await portAnswers(node.host, config.port)) });
  }
  return { port: config.port, nodes };
}
