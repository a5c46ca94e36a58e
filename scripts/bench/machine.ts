/**
 * How fast this machine is at the moment of a measurement, so that figures taken minutes apart
 * can be compared. On the virtual machines this benchmark has run on, speed drifts by up to 2×
 * from minute to minute, and memory the process has not touched before is several times slower
 * to write than memory it has (each new page faults into the guest, and a host that reclaims
 * idle guest memory makes the next touch fault again). A store that grows its file and heap,
 * as every phase here does, pays that on every new page.
 */

export interface MachineSpeed {
  /** A fixed integer loop, median of 5 (ms; lower is faster). */
  cpuLoopMs: number;
  /** Filling memory just allocated, median of 3 rounds of 256 MiB. */
  freshMemoryMiBPerSec: number;
  /** Filling memory already touched, the same way. */
  touchedMemoryMiBPerSec: number;
}

const MIB = 1024 * 1024;
const FILL_MIB = 256;

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

function cpuLoopMs(): number {
  const started = performance.now();
  let x = 0;
  for (let i = 0; i < 20_000_000; i++) x = (x + i * 7) % 1_000_003;
  const elapsed = performance.now() - started;
  // Keeps the loop from being optimised away.
  if (x < 0) throw new Error('unreachable');
  return elapsed;
}

function fillMiBPerSec(buffer: Buffer, byte: number): number {
  const started = performance.now();
  buffer.fill(byte);
  return FILL_MIB / ((performance.now() - started) / 1000);
}

export function probeMachine(): MachineSpeed {
  const loops = Array.from({ length: 5 }, cpuLoopMs);
  const touched = Buffer.alloc(FILL_MIB * MIB);
  const fresh: number[] = [];
  const again: number[] = [];
  for (let round = 1; round <= 3; round++) {
    fresh.push(fillMiBPerSec(Buffer.allocUnsafeSlow(FILL_MIB * MIB), round));
    again.push(fillMiBPerSec(touched, round));
  }
  return { cpuLoopMs: median(loops), freshMemoryMiBPerSec: median(fresh), touchedMemoryMiBPerSec: median(again) };
}

export const describeSpeed = (speed: MachineSpeed): string =>
  `CPU loop ${speed.cpuLoopMs.toFixed(0)} ms (lower is faster); writing new memory ${Math.round(speed.freshMemoryMiBPerSec).toLocaleString('en-US')} MiB/s, memory already touched ${Math.round(speed.touchedMemoryMiBPerSec).toLocaleString('en-US')} MiB/s`;
