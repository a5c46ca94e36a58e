/**
 * Regular expressions from users (topic schemas' patterns, transforms' and predicates'
 * regexes) run on RE2 (re2js): matching time is linear in the input, so no pattern can stall a
 * worker the way a backtracking `^(a+)+$` stalls `new RegExp`. RE2 has no backreferences or
 * lookarounds; patterns that need them are refused.
 *
 * Linear has a constant, the size of the compiled pattern: when RE2's lazy DFA gives up
 * (counted repetitions such as `(?:[ab]{0,1000}){30}c`), each character costs a few
 * nanoseconds per instruction, and a 500-character pattern can take seconds per value. So
 * patterns are limited in size too: enough for `^\d{1,1000}$` (2,003 instructions).
 */
import { RE2JS } from 're2js';

export const MAX_PATTERN_INSTRUCTIONS = 2_500;

/** A pattern the linear engine will not run; the message says why. */
export class UnsupportedPatternError extends Error {}

export interface LinearPattern {
  readonly pattern: RE2JS;
  /** The compiled program's size: what one character of input costs, at worst. */
  readonly instructions: number;
}

/** Compiles `source` (RE2 syntax; `flags` are RE2JS's), or throws an UnsupportedPatternError saying why not. */
export function compileLinear(source: string, flags = 0): LinearPattern {
  let pattern: RE2JS;
  try {
    pattern = RE2JS.compile(source, flags);
  } catch (error) {
    throw new UnsupportedPatternError(
      `patterns run on a linear-time engine (RE2 syntax), which has no backreferences or lookarounds (${(error as Error).message})`,
    );
  }
  const instructions = instructionsOf(pattern);
  if (instructions > MAX_PATTERN_INSTRUCTIONS) {
    throw new UnsupportedPatternError(
      `it compiles to ${instructions} instructions of the linear-time engine, more than the ${MAX_PATTERN_INSTRUCTIONS} allowed (use smaller repetition counts)`,
    );
  }
  return { pattern, instructions };
}

/** The size of RE2's compiled program (re2js keeps it on a field its types leave untyped). */
function instructionsOf(compiled: RE2JS): number {
  const program = (compiled.re2() as { prog?: { numInst?: () => number } }).prog;
  const count = program?.numInst?.();
  if (typeof count !== 'number') throw new Error('re2js no longer exposes its program size; update instructionsOf');
  return count;
}
