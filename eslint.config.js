import tseslint from 'typescript-eslint';

/**
 * Core's layers, one direction only: store ← transforms ← bus ← runtime ← rest ← worker (the
 * transformation chain is the part of the bus that knows records only). A layer imports
 * the layers below it and the shared bottom modules (src/errors.ts, src/metrics.ts,
 * src/logging.ts, src/version.ts, src/linear-regex.ts), never one above it; worker/ is the composition root, the
 * only place that imports every layer. The built-in connectors (src/connectors) are plugins
 * like any other: they use the SDK and the shared modules only.
 */
const CORE = 'packages/core/src';
const LAYERS = ['store', 'transforms', 'bus', 'runtime', 'rest', 'worker'];
const OUTSIDE = ['connectors', 'cli'];

function forbidden(folders, why) {
  return {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            group: folders.flatMap((folder) => [`../${folder}/*`, `./${folder}/*`]),
            message: why,
          },
          { group: ['../di.ts', '../index.ts', './index.ts'], message: 'only the composition root (worker/) wires the worker; the package index is for other packages' },
        ],
      },
    ],
  };
}

const layerRules = LAYERS.map((layer, index) => {
  const above = LAYERS.slice(index + 1);
  const folders = layer === 'worker' ? OUTSIDE.filter((f) => f === 'cli') : [...above, ...OUTSIDE];
  return {
    files: [`${CORE}/${layer}/**/*.ts`],
    rules: forbidden(folders, `core's layers go one way (store ← transforms ← bus ← runtime ← rest ← worker): ${layer}/ must not import ${folders.join(', ')}`),
  };
});

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '**/.omnibus/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
      eqeqeq: ['error', 'smart'],
    },
  },
  ...layerRules,
  {
    files: [`${CORE}/connectors/**/*.ts`],
    rules: forbidden([...LAYERS, 'cli'], 'a built-in connector is a plugin like any other: it uses the SDK and the shared modules only'),
  },
  {
    // The shared bottom modules, importable from every layer.
    files: [`${CORE}/errors.ts`, `${CORE}/metrics.ts`, `${CORE}/logging.ts`, `${CORE}/version.ts`, `${CORE}/linear-regex.ts`],
    rules: forbidden([...LAYERS, ...OUTSIDE], 'a shared bottom module imports no layer'),
  },
);
