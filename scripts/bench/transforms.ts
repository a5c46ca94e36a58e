/**
 * `pnpm bench`'s transforms section: the CPU cost per message of a three-transform chain
 * (transform-chain.ts) and of rendering templates at produce and on a sink (template-render.ts).
 * In process, no server: a few seconds.
 */
import { benchTemplateRender, describeTemplateRender, type TemplateRenderFigures } from './template-render.ts';
import { benchTransformChain, describeTransformChain, type TransformChainFigures } from './transform-chain.ts';

export interface TransformsFigures {
  chain: TransformChainFigures;
  templates: TemplateRenderFigures;
}

export async function benchTransforms(options: { quick?: boolean; log: (line: string) => void }): Promise<TransformsFigures> {
  const chain = benchTransformChain(options.quick ? 50_000 : 200_000);
  for (const line of describeTransformChain(chain)) options.log(`transforms: ${line}`);
  const templates = await benchTemplateRender(options.quick ? 5_000 : 20_000);
  for (const line of describeTemplateRender(templates)) options.log(`transforms: ${line}`);
  return { chain, templates };
}
