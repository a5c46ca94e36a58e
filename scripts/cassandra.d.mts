// Types for scripts/cassandra.mjs, which stays plain JavaScript so `node scripts/cassandra.mjs`
// needs no TypeScript loader; the test harness imports it from strict TypeScript.

export interface CassandraEndpoint {
  /** host:port, e.g. "127.0.0.1:9042" */
  contactPoint: string;
  /** e.g. "datacenter1" */
  localDataCenter: string;
  /** e.g. "5.0.8" */
  releaseVersion: string;
  /** true if this call started the node, and so its caller should stop it */
  startedHere: boolean;
  /** the node's process, when it is one this script started (now or earlier) */
  pid?: number;
}

export interface CassandraStatus {
  /** CQL answers on the contact point */
  running: boolean;
  /** a node started by this script is alive (possibly still starting) */
  managed: boolean;
  contactPoint: string;
  pid?: number;
  runDir?: string;
  localDataCenter?: string;
  releaseVersion?: string;
}

export type Log = (line: string) => void;

export function ensureCassandra(options?: { log?: Log }): Promise<CassandraEndpoint>;
export function stopCassandra(options?: { log?: Log }): Promise<{ stopped: boolean }>;
export function cassandraStatus(): Promise<CassandraStatus>;
/** The path of a Java 17 (or 11) runtime: JAVA17_HOME's, else one under /usr/lib/jvm, else `java` on PATH. */
export function findJava(): Promise<string>;
/** Whether something accepts TCP connections on host:port. */
export function portAnswers(host: string, port: number): Promise<boolean>;
