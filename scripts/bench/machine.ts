/**
 * How fast this machine is at the moment of a measurement, so that figures taken minutes apart
 * can be compared. On the virtual machines this benchmark has run on, speed drifts by up to 2×
 * from minute to minute, and memory the process has not touched before is several times slower
 * to write than memory it has (each new page faults into the guest, and a host that reclaims
 * idle guest memory makes the next touch fault again). A store that grows its file and heap,
 * as every phase here does, pays that on every new page.
 */
import { batches, median } from './workload.ts';

export interface MachineSpeed {
  /**
   * JSON round trips of the benchmark's own messages, median of 5 (ms; lower is faster). Work
   * that touches memory, like the runtime's: a loop in registers alone hardly notices the slow
   * minutes that this and token() show.
   */
  jsonRoundTripsMs: number;
  /** Filling memory just allocated, median of 3 rounds of 256 MiB. */
  freshMemoryMiBPerSec: number;
  /** Filling memory already touched, the same way. */
  touchedMemoryMiBPerSec: number;
}

const MIB = 1024 * 1024;
const FILL_MIB = 256;

const SAMPLE = batches(0, 500)[0]!;

function jsonRoundTripsMs(): number {
  const started = performance.now();
  let length = 0;
  for (let i = 0; i < 100; i++) length += (JSON.parse(JSON.stringify(SAMPLE)) as unknown[]).length;
  const elapsed = performance.now() - started;
  // Keeps the work from being optimised away.
  if (length !== 100 * SAMPLE.length) throw new Error('unreachable');
  return elapsed;
}

function fillMiBPerSec(buffer: Buffer, byte: number): number {
  const started = performance.now();
  buffer.fill(byte);
  return FILL_MIB / ((performance.now() - started) / 1000);
}

export function probeMachine(): MachineSpeed {
  jsonRoundTripsMs(); // warms the JIT up
  const loops = Array.from({ length: 5 }, jsonRoundTripsMs);
  const touched = Buffer.alloc(FILL_MIB * MIB);
  const fresh: number[] = [];
  const again: number[] = [];
  for (let round = 1; round <= 3; round++) {
    fresh.push(fillMiBPerSec(Buffer.allocUnsafeSlow(FILL_MIB * MIB), round));
    again.push(fillMiBPerSec(touched, round));
  }
  return { jsonRoundTripsMs: median(loops), freshMemoryMiBPerSec: median(fresh), touchedMemoryMiBPerSec: median(again) };
}

export const describeSpeed = (speed: MachineSpeed): string =>
  `JSON round trips ${speed.jsonRoundTripsMs.toFixed(0)} ms (lower is faster); writing new memory ${Math.round(speed.freshMemoryMiBPerSec).toLocaleString('en-US')} MiB/s, memory already touched ${Math.round(speed.touchedMemoryMiBPerSec).toLocaleString('en-US')} MiB/s`;
