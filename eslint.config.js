import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: [
      "node_modules",
      "coverage",
      "dist",
      ".dist-*",
      ".iac",
      ".venv",
      ".venv-contract",
      "src/gen",
      "runner",
      "secrets",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: "readonly", console: "readonly", URL: "readonly", Buffer: "readonly" },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      "no-restricted-properties": [
        "error",
        {
          object: "process",
          property: "env",
          message:
            "Read settings through src/kernel/config.ts (loadConfig); nothing else reads process.env.",
        },
      ],
    },
  },
  {
    files: ["src/kernel/config.ts", "test/**", "bench/**", "vitest.config.ts"],
    rules: { "no-restricted-properties": "off" },
  },
);
