/**
 * Import rules for lib/ (dependency-cruiser; checked by test/architecture/imports.test.ts and
 * `npm run lint:deps`). The layers, bottom up: native -> backend -> tensor -> ops ->
 * {compress, comm, optim, checkpoint} -> algorithms -> {train, integrations, analysis} -> cli.
 * docs/ARCHITECTURE.md describes them.
 */
const layer = (name, path, forbidden) => ({
  name, severity: 'error', comment: `${path} must not import ${forbidden}`,
  from: { path: `^lib/${path}/` }, to: { path: `^lib/(${forbidden})/` },
});

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'no import cycles in lib/', from: { path: '^lib/' }, to: { circular: true } },
    {
      name: 'raw-binding-below-ops', severity: 'error',
      comment: 'only the backend layer loads the kernel addon; lib/comm loads the MPI addon; nothing else imports the loader or the raw binding types',
      from: { path: '^lib/', pathNot: '^lib/(backend|native)/|^lib/comm/(init|mpi)\\.ts$' },
      to: { path: '^lib/native/(loader|binding)\\.ts$' },
    },
    layer('native-is-the-bottom', 'native', 'backend|tensor|ops|compress|comm|optim|checkpoint|algorithms|train|integrations|analysis|cli'),
    layer('backend-below-tensor', 'backend', 'tensor|ops|compress|comm|optim|checkpoint|algorithms|train|integrations|analysis|cli'),
    layer('tensor-below-ops', 'tensor', 'ops|compress|comm|optim|checkpoint|algorithms|train|integrations|analysis|cli'),
    layer('ops-below-compress', 'ops', 'compress|comm|optim|checkpoint|algorithms|train|integrations|analysis|cli'),
    layer('compress-below-algorithms', 'compress', 'comm|optim|algorithms|train|integrations|analysis|cli'),
    layer('optim-below-algorithms', 'optim', 'compress|comm|algorithms|train|integrations|analysis|cli'),
    layer('comm-below-algorithms', 'comm', 'compress|optim|algorithms|train|integrations|analysis|cli'),
    layer('checkpoint-below-algorithms', 'checkpoint', 'compress|comm|optim|algorithms|train|integrations|analysis|cli'),
    layer('algorithms-below-jobs', 'algorithms', 'train|integrations|analysis|cli'),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|node_modules|test|bench)/' },
  },
};
