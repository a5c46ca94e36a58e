/**
 * Kafka's topic routers. RegexRouter: when the whole topic matches `regex`, the topic becomes
 * `replacement` with `$1`-style group references (Java's `Matcher.replaceFirst`). Patterns are
 * RE2 (see regex.ts). TimestampRouter: the topic becomes `topic.format` with `${topic}` and
 * `${timestamp}` (the record's timestamp in UTC, formatted with `timestamp.format`, a Java
 * SimpleDateFormat pattern of the letters y Y M d H m s S and quoted text).
 *
 * On a source, the new topic is where the record is published; on a sink, it is the topic the
 * task sees in the record (the message stays where it is on the bus).
 */
import { ConfigSpec, validators, type Validator } from '@omnibus/sdk';
import { single } from './define.ts';
import { KAFKA_TRANSFORMS, TransformError } from './record.ts';
import { compilePattern, validPattern } from './regex.ts';

export const RegexRouter = single({
  className: `${KAFKA_TRANSFORMS}.RegexRouter`,
  aliases: ['RegexRouter'],
  description: 'Updates the record topic using the configured regular expression and replacement string.',
  config: ConfigSpec.builder()
    .string('regex', { documentation: 'Regular expression to use for matching.', validator: validPattern })
    .string('replacement', { documentation: 'Replacement string.' }),
  create({ regex, replacement }) {
    const pattern = compilePattern(regex);
    return {
      apply(record) {
        const matcher = pattern.matcher(record.topic);
        if (!matcher.matches()) return record;
        return { ...record, topic: matcher.replaceFirst(replacement) };
      },
    };
  },
});

type Piece = { literal: string } | { letter: string; width: number };

const LETTERS = new Set(['y', 'Y', 'M', 'd', 'H', 'm', 's', 'S']);

/** Parses a SimpleDateFormat pattern into pieces; throws on a letter this router does not format. */
export function parseDatePattern(pattern: string): Piece[] {
  const pieces: Piece[] = [];
  for (let i = 0; i < pattern.length; ) {
    const c = pattern[i]!;
    if (c === "'") {
      const end = pattern.indexOf("'", i + 1);
      if (end === -1) throw new Error(`Unterminated quote in date format ${pattern}`);
      pieces.push({ literal: end === i + 1 ? "'" : pattern.slice(i + 1, end) });
      i = end + 1;
    } else if (/[A-Za-z]/.test(c)) {
      if (!LETTERS.has(c)) throw new Error(`Illegal pattern character '${c}' (supported: y Y M d H m s S)`);
      let j = i;
      while (pattern[j] === c) j++;
      pieces.push({ letter: c, width: j - i });
      i = j;
    } else {
      pieces.push({ literal: c });
      i++;
    }
  }
  return pieces;
}

/** Java's week year of the US locale (weeks start on Sunday; week 1 holds January 1st). */
function weekYear(date: Date): number {
  const year = date.getUTCFullYear();
  const saturday = new Date(date.getTime() + (6 - date.getUTCDay()) * 86_400_000);
  return saturday.getUTCFullYear() > year ? year + 1 : year;
}

export function formatDate(pieces: readonly Piece[], ms: number): string {
  const date = new Date(ms);
  const pad = (n: number, width: number) => String(n).padStart(width, '0');
  return pieces
    .map((piece) => {
      if ('literal' in piece) return piece.literal;
      const { letter, width } = piece;
      switch (letter) {
        case 'y':
        case 'Y': {
          const year = letter === 'y' ? date.getUTCFullYear() : weekYear(date);
          return width === 2 ? pad(year % 100, 2) : pad(year, width);
        }
        case 'M':
          return pad(date.getUTCMonth() + 1, width);
        case 'd':
          return pad(date.getUTCDate(), width);
        case 'H':
          return pad(date.getUTCHours(), width);
        case 'm':
          return pad(date.getUTCMinutes(), width);
        case 's':
          return pad(date.getUTCSeconds(), width);
        default:
          return pad(date.getUTCMilliseconds(), width);
      }
    })
    .join('');
}

const datePattern: Validator<string> = {
  describe: 'a SimpleDateFormat pattern of y Y M d H m s S and quoted text',
  check: (pattern) => {
    try {
      parseDatePattern(pattern);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  },
};

export const TimestampRouter = single({
  className: `${KAFKA_TRANSFORMS}.TimestampRouter`,
  aliases: ['TimestampRouter'],
  description: "Updates the record's topic field as a function of the original topic value and the record timestamp.",
  config: ConfigSpec.builder()
    .string('topic.format', {
      documentation: 'Format string which can contain ${topic} and ${timestamp} as placeholders for the topic and timestamp, respectively.',
      default: '${topic}-${timestamp}',
      validator: validators.nonEmptyString(),
    })
    .string('timestamp.format', {
      documentation: 'Format string for the timestamp that is compatible with java.text.SimpleDateFormat (in UTC).',
      default: 'yyyyMMdd',
      validator: datePattern,
    }),
  create(config) {
    const pieces = parseDatePattern(config['timestamp.format']);
    const format = config['topic.format'];
    return {
      apply(record) {
        if (record.timestamp === undefined) throw new TransformError(`Timestamp missing on record: topic ${record.topic}`);
        const timestamp = formatDate(pieces, record.timestamp);
        return { ...record, topic: format.replaceAll('${topic}', record.topic).replaceAll('${timestamp}', timestamp) };
      },
    };
  },
});
