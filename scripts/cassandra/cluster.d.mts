// Types for scripts/cassandra/cluster.mjs (plain JavaScript, like scripts/cassandra.mjs).
import type { Log } from '../cassandra.d.mts';

export interface ClusterNode {
  /** 0-based; node i listens on 127.0.0.<i + 1> */
  index: number;
  host: string;
  pid: number;
  runDir: string;
  startedAt: string;
}

export interface ClusterState {
  port: number;
  storagePort: number;
  nodes: ClusterNode[];
}

export interface ClusterEndpoint {
  /** host:port of every node */
  contactPoints: string[];
  port: number;
  localDataCenter: string;
  releaseVersion: string;
  /** true if this call started the cluster, and so its caller should stop it */
  startedHere: boolean;
  nodes: ClusterNode[];
}

export interface ClusterStatus {
  port: number;
  nodes: Array<ClusterNode & { alive: boolean; answers: boolean }>;
}

export function clusterSettings(): { port: number; storagePort: number; heap: string; libDir: string; statePath: string };
export function ensureCluster(options: { nodes: number; log?: Log }): Promise<ClusterEndpoint>;
export function stopCluster(options?: { log?: Log }): Promise<{ stopped: boolean }>;
export function clusterNodes(): Promise<ClusterNode[]>;
export function stopClusterNode(index: number, options?: { log?: Log }): Promise<void>;
export function startClusterNode(indexes: number | number[], options?: { log?: Log }): Promise<void>;
export function clusterStatus(): Promise<ClusterStatus>;
