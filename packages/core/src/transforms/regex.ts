/**
 * Operator-supplied regular expressions run on re2js, a linear-time engine: a pattern in a
 * connector config can never make a worker spend exponential time on a record (ReDoS), which
 * `new RegExp` allows. The syntax is RE2's (Java's without backreferences and lookaround).
 */
import type { RE2JS } from 're2js';
import type { Validator } from '@omnibus/sdk';
import { compileLinear } from '../linear-regex.ts';

export type Pattern = RE2JS;

/** Compiles `source`, or throws an Error whose message says why it is not a pattern. */
export function compilePattern(source: string): Pattern {
  return compileLinear(source).pattern;
}

/** Why `source` is not a valid pattern, or undefined when it is. */
export function patternProblem(source: string): string | undefined {
  try {
    compileLinear(source);
    return undefined;
  } catch (error) {
    return `Invalid regex: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** A config validator: the value compiles as a pattern. */
export const validPattern: Validator<string> = { describe: 'a regular expression (RE2 syntax)', check: patternProblem };

/** Java's `Matcher.matches()`: the whole input matches, as Kafka's RegexRouter and TopicNameMatches require. */
export function matchesWhole(pattern: Pattern, input: string): boolean {
  return pattern.matcher(input).matches();
}
