/**
 * The HTTP floor (http-floor-server.ts): the benchmark's produce workload sent, by the same
 * client, to a server that only parses and answers it. Its rate and CPU per message bound what
 * any REST ingest reaches on this machine; the rest of a worker's cost per message is Omnibus's.
 */
import { fileURLToPath } from 'node:url';
import { WorkerProcess } from '../test-support/src/worker-process.ts';
import { produceAll } from './omnibus.ts';

export interface HttpFloorFigures {
  msgPerSec: number;
  /** The server's CPU time (all threads) per message. */
  serverCpuMicros: number;
  /** This process's CPU time per message: the client's share, the same for a worker. */
  clientCpuMicros: number;
}

const SERVER = fileURLToPath(new URL('./http-floor-server.ts', import.meta.url));

export async function benchHttpFloor(options: { messages: number; clients: number }): Promise<HttpFloorFigures> {
  const { messages, clients } = options;
  const server = await WorkerProcess.start({ name: 'HTTP floor server', store: 'none', logLevel: 'warn', script: SERVER });
  try {
    // A first pass warms the server's code up, as a worker's first round does for it.
    await produceAll(server, 'floor', 0, messages, clients);
    const cpuBefore = await server.cpuSeconds();
    const { msgPerSec, clientCpuMicros } = await produceAll(server, 'floor', 0, messages, clients);
    return { msgPerSec, serverCpuMicros: (((await server.cpuSeconds()) - cpuBefore) * 1e6) / messages, clientCpuMicros };
  } finally {
    await server.stop();
  }
}
