/**
 * The Markdown reference of the built-in transformations and predicates (`pnpm docs` writes
 * it to packages/core/docs/transforms.md), from their config specs and descriptions.
 */
import { ConfigSpec, type Predicate, type Transformation } from '@omnibus/sdk';
import { BUILTIN_PREDICATES, BUILTIN_TRANSFORMATIONS } from './catalog.ts';

const INTRO = `A connector config names a chain of transformations with Kafka Connect's keys, and a
transformation may apply only to the records a predicate holds for:

\`\`\`properties
transforms=route,tag
transforms.route.type=org.apache.kafka.connect.transforms.Filter
transforms.route.predicate=isUk
transforms.route.negate=true
transforms.tag.type=org.apache.kafka.connect.transforms.InsertHeader
transforms.tag.header=routed-by
transforms.tag.value.literal=sms-uk
predicates=isUk
predicates.isUk.type=io.omnibus.predicates.ValueFieldMatches
predicates.isUk.field=to
predicates.isUk.pattern=\\+44.*
\`\`\`

A sink runs its chain on each record before handing it to the connector: a record the chain
drops ends \`filtered\` for that connector (shown by \`GET /messages/{id}\` and \`GET /groups/{g}\`),
and a record a stage cannot transform fails permanently (dead-lettered when
\`errors.deadletterqueue.topic.name\` is set). A source runs its chain on each polled record
before publishing it: a dropped record is not published (its offset is still committed), and
a router's topic is the topic it is published to.

Records are schemaless JSON, so each transformation behaves as Kafka's does without a schema.
Omnibus keys are strings: a stage that makes the key another JSON value (ValueToKey) leaves it
as canonical JSON once the chain has run. Header values are strings. Regular expressions are
RE2's (linear time: no backreferences or lookaround). Each class is also accepted by its short
name (\`InsertField$Value\`, \`TopicNameMatches\`); a bare \`InsertField\` means \`InsertField$Value\`.
Third-party transformations and predicates are found through \`plugin.path\`
(\`"omnibus": {"transforms": [...], "predicates": [...]}\` in their package.json).`;

function section(plugin: Transformation<unknown> | Predicate<unknown>): string {
  const names = [plugin.className, ...(plugin.aliases ?? [])].map((n) => `\`${n}\``).join(', ');
  const spec = new ConfigSpec(plugin.config.keys);
  const keys =
    spec.keys.length === 0
      ? 'No configuration keys.'
      : spec
          .toMarkdown('x')
          .split('\n')
          .filter((line) => line.startsWith('|'))
          .join('\n');
  return [`### ${plugin.className.split('.').pop()}`, '', plugin.description, '', `Names: ${names}.`, '', keys, ''].join('\n');
}

export function transformsReference(): string {
  return [
    '# Transformations and predicates',
    '',
    INTRO,
    '',
    '## Transformations',
    '',
    ...BUILTIN_TRANSFORMATIONS.map(section),
    '## Predicates',
    '',
    ...BUILTIN_PREDICATES.map(section),
  ].join('\n');
}
