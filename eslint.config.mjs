// ESLint (flat config) with typescript-eslint on lib/ and test/: `npm run lint`, part of `npm test`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'build/**', 'build-cuda/**', 'packages/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['lib/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      // Unused names are errors, except the _-prefixed ones (kept for a signature's shape).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Tests and fixtures load the built package and optional tools with require().
      '@typescript-eslint/no-require-imports': ['error', { allow: ['^node:', '^\\.\\./', '^\\./', '@tensorflow/'] }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // CommonJS fixtures run by `gradcomp run` and mpirun.
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off', '@typescript-eslint/no-explicit-any': 'off' },
  },
);
