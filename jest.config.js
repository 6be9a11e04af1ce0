// ESM throughout: client-node 2.x is ESM-only, so tests load the same modules production does.
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'es6' },
    sourceMaps: 'inline',
  },
];

const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
};

export default {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/{sidecar,operator,crds,test/bench}/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
    },
    {
      // One real etcd + kube-apiserver per run (test/support/global-setup.ts), shared by all
      // e2e tests; each test works in its own namespace (test/support/e2e.ts).
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      // jest ignores a project's testTimeout; e2e.ts raises it with jest.setTimeout.
      setupFilesAfterEnv: ['<rootDir>/test/support/e2e.ts'],
    },
  ],
};
