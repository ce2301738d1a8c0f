import { defineConfig } from "vitest/config";

// In `make test` (project "smoke"); the integration and faults projects leave them out.
const SMOKE = [
  "test/integration/e2e.test.ts",
  "test/integration/images.test.ts",
  "test/integration/terraform.test.ts",
  "test/integration/docker-smoke.test.ts",
  "test/integration/cli-link.test.ts",
  "test/integration/envoy-validate.test.ts",
  "test/faults/input.test.ts",
  "test/faults/lock.test.ts",
  "test/faults/syserrors.test.ts",
];

export default defineConfig({
  test: {
    reporters: ["default"],
    // A temp IAC_STATE_DIR per test process: tests never touch ~/.local/state/iac-wrapper.
    setupFiles: ["test/helpers/state-dir.ts"],
    // The CLI tests spawn run the compiled dist/: built here when src/ changed.
    globalSetup: ["test/helpers/build-dist.ts"],
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts"],
      exclude: ["src/gen/**"],
      reporter: ["text-summary", "html"],
    },
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 10_000,
        },
      },
      {
        extends: true,
        test: {
          // Real servers on loopback (admin API, local GitHub/Supabase stand-ins, git), no Docker.
          name: "component",
          include: ["test/component/**/*.test.ts"],
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          // Issue 11: table-driven hostile inputs (links, git config, tokens, bodies, env, ...).
          // No Docker: real git, real local servers, temp folders.
          name: "hostile",
          include: ["test/hostile/**/*.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          // The Docker-backed part of `make test` (issue 14: `make test` <= ~90 s warm): the
          // end-to-end deploy through Envoy with mTLS and gRPC health, plus the quick files that
          // talk to the real engine and terraform without deploying.
          name: "smoke",
          include: SMOKE,
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          // The rest of the real-Docker suite: `make test-integration` (CI runs it).
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          exclude: SMOKE,
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          // Issue 18's fault injection: `make test-faults` (CI runs it).
          name: "faults",
          include: ["test/faults/**/*.test.ts"],
          exclude: SMOKE,
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
      // Issue 18: schemathesis against GET /openapi.json of a real `iac serve` on loopback
      // (~1 min): `make test-contract`, which .ci/run runs after `make test`.
      ...(process.env.IAC_CONTRACT_TEST === "1"
        ? [
            {
              extends: true as const,
              test: {
                name: "contract",
                include: ["test/contract/**/*.test.ts"],
                testTimeout: 300_000,
                hookTimeout: 120_000,
              },
            },
          ]
        : []),
      // The real-world corpus built and run (issue 12): ~15 image builds and runs, ~1 min warm,
      // several cold or under load: `make test-corpus` (CI runs it after `make test`).
      ...(process.env.IAC_CORPUS_TEST === "1"
        ? [
            {
              extends: true as const,
              test: {
                name: "corpus",
                include: ["test/corpus/**/*.test.ts"],
                testTimeout: 600_000,
                hookTimeout: 900_000,
              },
            },
          ]
        : []),
      // Heavy (3 dockerd in network namespaces, ~8 min): only with `make test-swarm`.
      ...(process.env.IAC_SWARM_TEST === "1"
        ? [
            {
              extends: true as const,
              test: {
                name: "swarm",
                include: ["test/swarm/**/*.test.ts"],
                testTimeout: 600_000,
                hookTimeout: 600_000,
                fileParallelism: false,
              },
            },
          ]
        : []),
    ],
  },
});
